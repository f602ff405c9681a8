"""Operators' monitoring with real parts: Debian's Prometheus scrapes a real Envoy + scimguard,
ingests the `scimguard_*` series with their types and sees them move; it loads the shipped
alert rules, which `promtool` checks and unit-tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
import payloads  # noqa: E402
from harness import Gateway, free_port, http_ok, spawn, start_gateway, wait_for, wait_until_ready, wasm_path  # noqa: E402

ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yaml"
COUNTS_RS = ROOT / "src" / "engine" / "counts.rs"
METRICS_RS = ROOT / "src" / "filter" / "metrics.rs"


def require(tool: str) -> str:
    found = shutil.which(tool)
    if not found:
        pytest.fail(f"`{tool}` is missing: run `make deploy-tools` (Debian package prometheus)", pytrace=False)
    return found


def emitted_metrics() -> dict[str, str]:
    """{name: counter|gauge}: the engine's counters (src/engine/counts.rs, `Variant => "name"`)
    and the filter's queue gauges (src/filter/metrics.rs, the GAUGES array)."""
    import re
    counters = re.findall(r'^\s*[A-Z][A-Za-z]* => "([a-z_]+)",', COUNTS_RS.read_text(), re.M)
    gauges = re.search(r"const GAUGES: \[&str; \d+\] = \[(.*?)\];", METRICS_RS.read_text(), re.S)
    assert len(counters) > 30 and gauges, "the metric definitions moved: update this reader"
    return {**{n: "counter" for n in counters},
            **{n: "gauge" for n in re.findall(r'"([a-z_]+)"', gauges.group(1))}}


def test_alert_rules_pass_promtool_check() -> None:
    result = subprocess.run([require("promtool"), "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_rules_unit_tests_pass() -> None:
    result = subprocess.run([require("promtool"), "test", "rules", str(ALERT_TESTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_name_only_metrics_the_filter_emits() -> None:
    """Every `scimguard_*` name an alert uses is one src/filter/metrics.rs defines."""
    import re
    used = set(re.findall(r"\bscimguard_[a-z_]+", ALERTS.read_text())) - {"scimguard_config_fail", "scimguard_vm_reload"}
    assert used and used <= set(emitted_metrics()), used - set(emitted_metrics())


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, str]]:
    """(gateway, Prometheus base URL): Prometheus scraping the gateway's admin every second."""
    prometheus = require("prometheus")
    if not wasm_path().is_file():
        pytest.fail(f"{wasm_path()} is missing: run `make wasm`", pytrace=False)
    workdir = tmp_path_factory.mktemp("monitoring")
    gateway = start_gateway(workdir / "gateway")
    port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{"job_name": "envoy", "metrics_path": "/stats/prometheus",
                            "static_configs": [{"targets": [f"127.0.0.1:{gateway.admin_port}"]}]}],
    }))
    process = spawn("prometheus", [prometheus, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
                                   f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"], workdir)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, lambda: http_ok(f"{base}/-/ready"), 60, process.output)
        yield gateway, base
    finally:
        process.stop()
        gateway.stop()


def api(base: str, path: str, **params: str) -> Any:
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def value(base: str, query: str) -> float | None:
    result = api(base, "query", query=query)["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_ingests_scimguard_series_that_move(scraped: tuple[Gateway, str], summary: list[str]) -> None:
    gateway, base = scraped
    wait_for(lambda: value(base, "scimguard_requests_block_total") is not None, 30, "the first scrape")
    blocked_before = value(base, "scimguard_requests_block_total") or 0.0
    headers = {"content-type": "application/scim+json"}
    user = httpx.post(f"{gateway.upstream_url}/Users", content=payloads.user(payloads.unique("prom")),
                      headers=headers, timeout=10).json()["id"]
    admin_role = payloads.patch({"op": "add", "path": "roles", "value": [{"value": "admin"}]})
    for _ in range(3):
        assert httpx.patch(f"{gateway.url}/Users/{user}", content=admin_role, headers=headers, timeout=10).status_code == 403
    assert httpx.patch(f"{gateway.url}/Users/{user}", content=payloads.replace("active", True),
                       headers=headers, timeout=10).status_code in (200, 204)
    # The filter publishes on a 1 s tick, Prometheus scrapes every 1 s.
    wait_for(lambda: (value(base, "scimguard_requests_block_total") or 0) >= blocked_before + 3
             and (value(base, "scimguard_requests_tag_total") or 0) >= 1
             and (value(base, "scimguard_audit_records_total") or 0) >= 4, 30,
             "Prometheus to see the 3 blocks, the tag and 4 audit records")
    # increase() over the series works, which needs the counter type and several samples.
    wait_for(lambda: (value(base, "increase(scimguard_requests_block_total[1m])") or 0) > 0, 30, "increase() > 0")

    names = emitted_metrics()
    metadata = api(base, "metadata")
    ingested = {name: entries[0]["type"] for name, entries in metadata.items() if name.startswith("scimguard_")}
    assert ingested == names, {n: (ingested.get(n), t) for n, t in names.items() if ingested.get(n) != t}
    rules = [rule for group in api(base, "rules")["groups"] for rule in group["rules"]]
    assert {rule["name"] for rule in rules} >= {"ScimguardBlockedWriteSurge", "ScimguardPolicyUpdateRejected"}
    assert all(rule["health"] in ("ok", "unknown") for rule in rules), [(r["name"], r.get("lastError")) for r in rules]
    summary.append(f"deploy: Prometheus ingested {len(ingested)} scimguard_* series with their types "
                   f"({sum(t == 'counter' for t in ingested.values())} counters, "
                   f"{sum(t == 'gauge' for t in ingested.values())} gauges); blocks moved "
                   f"{blocked_before:.0f} -> {value(base, 'scimguard_requests_block_total'):.0f}; "
                   f"{len(rules)} alert rules loaded")
