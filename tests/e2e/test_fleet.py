"""Fleet detections (docs/fleet.md): two Envoys with scimguard share one deprovision threshold
through Envoy's ratelimit filter, Limitador and Redis, all on loopback free ports.

Envoy A has `failure_mode_deny: true`, Envoy B `false` (both shipped behaviours, one run); a
third Envoy C has no fleet section, for the latency comparison. Limitador is built by
`make limitador` from ../shared/vendor/limitador; where that source is absent the module skips
and says so. The limit comes from the shipped deploy/fleet/limits.yaml with max_value set to 5.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import payloads  # noqa: E402
from clients import client  # noqa: E402
from sinks import Sink  # noqa: E402
from harness import (ROOT, RENDER, Process, free_port, http_ok, parse_prometheus, read_json_lines,  # noqa: E402
                     spawn, start_envoy, start_upstream, wait_for, wait_until_ready, wasm_path)

LIMITADOR = ROOT / ".tools" / "bin" / "limitador-server"
LIMITADOR_SRC = Path(os.environ.get("LIMITADOR_SRC", ROOT.parent / "shared" / "vendor" / "limitador"))
LIMIT = 5
RULE = "detection.fleet.deprovision_storm"
FLEET_POLICY = {"fleet": [{"name": "deprovision_storm", "events": ["user_deprovisioned", "user_deleted"],
                           "descriptor": "deprovision"}]}


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Envoy:
    name: str
    workdir: Path
    port: int
    admin_port: int
    process: Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/scim/v2"

    def stats(self) -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/stats/prometheus", timeout=5) as r:
            return parse_prometheus(r.read().decode())

    def rls_calls(self) -> float:
        """gRPC requests Envoy sent to the rate-limit service's cluster."""
        return sum(v for k, v in self.stats().items()
                   if k.startswith("envoy_cluster_upstream_rq_total") and 'envoy_cluster_name="rate_limit_service"' in k)

    def audit_records(self) -> list[dict[str, Any]]:
        return read_json_lines(self.workdir / "audit.log")


@dataclass
class Fleet:
    workdir: Path
    a: Envoy
    b: Envoy
    c: Envoy
    upstream_port: int
    recording: Path
    redis_port: int
    limitador_argv: list[str]
    rls_port: int
    redis: Process
    limitador: Process
    procs: list[Process]
    # Envoy A's audit collector and webhook receiver.
    collector: Sink | None = None
    webhook: Sink | None = None

    def flush(self) -> None:
        """Counts restart from zero (each test its own storm)."""
        subprocess.run(["redis-cli", "-p", str(self.redis_port), "FLUSHALL"], check=True, capture_output=True)

    def start_limitador(self) -> None:
        self.limitador = spawn("limitador", self.limitador_argv, self.workdir)
        self.procs.append(self.limitador)
        wait_until_ready(self.limitador, lambda: listening(self.rls_port), 30, self.limitador.output)

    def start_redis(self) -> None:
        argv = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir)]
        self.redis = spawn("redis", argv, self.workdir)
        self.procs.append(self.redis)
        wait_until_ready(self.redis, lambda: listening(self.redis_port), 15, self.redis.output)


def start_fleet_envoy(name: str, workdir: Path, upstream_port: int, policy: Path, rls_port: int | None,
                      deny: bool = True, ports: dict[str, int] | None = None) -> Envoy:
    workdir.mkdir(parents=True, exist_ok=True)
    port, admin = free_port(), free_port()
    out = workdir / "envoy.yaml"
    argv = [sys.executable, str(RENDER), "--out", str(out), "--policy", str(policy), "--wasm", str(wasm_path()),
            "--log-dir", str(workdir), "--listen-port", str(port), "--admin-port", str(admin),
            "--upstream-port", str(upstream_port)]
    for key in ("app", "ops", "collector", "webhook"):
        argv += [f"--{key}-port", str((ports or {}).get(key) or free_port())]
    if rls_port is not None:
        argv += ["--fleet-port", str(rls_port)] + ([] if deny else ["--fleet-allow"])
    subprocess.run(argv, check=True, cwd=ROOT)
    return Envoy(name, workdir, port, admin, start_envoy(workdir, out, base_id=port, admin_port=admin))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if not LIMITADOR.is_file():
        if not LIMITADOR_SRC.is_dir():
            pytest.skip(f"Limitador source not found at {LIMITADOR_SRC}: the fleet test needs ../shared/vendor/limitador")
        pytest.fail(f"{LIMITADOR} is missing: run `make limitador`", pytrace=False)
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is missing: apt-get install -y redis-server", pytrace=False)
    workdir = tmp_path_factory.mktemp("fleet")
    policy_doc = json.loads((ROOT / "policies" / "default.json").read_text())
    # The audit trail's outputs (collector with OCSF, signed webhook) at test speed, and the
    # per-process storm as backstop above the fleet limit.
    trail = json.loads((ROOT / "policies" / "audit-trail.json").read_text())
    policy_doc["audit"], policy_doc["notify"] = trail["audit"], trail["notify"]
    policy_doc["audit"]["collector"].update(flush_interval_ms=100, backoff_initial_ms=100, backoff_max_ms=400)
    policy_doc["notify"].update(backoff_initial_ms=100, backoff_max_ms=400)
    policy_doc["detections"] = {**FLEET_POLICY, "deprovision_storm": {"max": 500, "window_secs": 60, "action": "block"}}
    policy = workdir / "fleet-policy.json"
    policy.write_text(json.dumps(policy_doc, indent=2))
    limits = yaml.safe_load((ROOT / "deploy" / "fleet" / "limits.yaml").read_text())
    limits[0]["max_value"] = LIMIT
    limits_file = workdir / "limits.yaml"
    limits_file.write_text(yaml.safe_dump(limits))
    redis_port, rls_port, http_port = free_port(), free_port(), free_port()
    argv = [str(LIMITADOR), "--rls-ip", "127.0.0.1", "--rls-port", str(rls_port), "--http-ip", "127.0.0.1",
            "--http-port", str(http_port), str(limits_file), "redis", f"redis://127.0.0.1:{redis_port}"]
    procs: list[Process] = []
    collector, webhook = Sink("collector"), Sink("webhook")
    upstream, upstream_port, recording = start_upstream(workdir)
    procs.append(upstream)
    f = Fleet(workdir, None, None, None, upstream_port, recording, redis_port, argv, rls_port,  # type: ignore[arg-type]
              None, None, procs, collector, webhook)  # type: ignore[arg-type]
    try:
        f.start_redis()
        f.start_limitador()
        sinks = {"collector": collector.port, "webhook": webhook.port}
        for name, rls, deny in (("a", rls_port, True), ("b", rls_port, False), ("c", None, True)):
            envoy = start_fleet_envoy(name, workdir / name, upstream_port, policy, rls, deny, sinks if name == "a" else None)
            procs.append(envoy.process)
            setattr(f, name, envoy)
        yield f
    finally:
        for p in reversed(procs):
            p.stop()
        collector.stop()
        webhook.stop()


def make_users(f: Fleet, n: int) -> list[str]:
    ids = []
    with client(f"http://127.0.0.1:{f.upstream_port}/v2", "http/1.1") as direct:
        for _ in range(n):
            r = direct.post("/Users", content=payloads.user())
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
    return ids


def delete(envoy: Envoy, user_id: str) -> httpx.Response:
    with client(envoy.url, "http/1.1") as c:
        return c.delete(f"/Users/{user_id}")


def bulk_delete(envoy: Envoy, ids: list[str]) -> httpx.Response:
    body = payloads.encode({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                            "Operations": [{"method": "DELETE", "path": f"/Users/{i}"} for i in ids]})
    with client(envoy.url, "http/1.1") as c:
        return c.post("/Bulk", content=body)


def fleet_blocks(envoy: Envoy) -> list[dict[str, Any]]:
    return [r for r in envoy.audit_records() if RULE in [m["id"] for m in r.get("rules", [])]]


def wait_blocks(envoy: Envoy, n: int) -> list[dict[str, Any]]:
    return wait_for(lambda: (b := fleet_blocks(envoy)) and len(b) >= n and b, 5, f"{n} fleet blocks in {envoy.name}")


def test_a_storm_spread_across_two_envoys_stops_at_the_fleet_threshold(fleet: Fleet) -> None:
    fleet.flush()
    before = {e.name: len(fleet_blocks(e)) for e in (fleet.a, fleet.b)}
    ids = make_users(fleet, LIMIT + 3)
    statuses = []
    for i, user_id in enumerate(ids):
        envoy = (fleet.a, fleet.b)[i % 2]
        r = delete(envoy, user_id)
        statuses.append((envoy.name, r.status_code, r.headers.get("x-envoy-ratelimited")))
        if r.status_code == 429:
            assert r.headers.get("x-scim-decision") == "block", "scimguard tags Envoy's refusal too"
    # Each Envoy saw at most 4 deprovisions, fewer than the limit: only a shared count stops them.
    assert [s for _, s, _ in statuses] == [204] * LIMIT + [429] * 3, statuses
    assert all(rl is not None for _, s, rl in statuses if s == 429)
    # The audit trail names every fleet block, in the Envoy that answered it.
    for envoy in (fleet.a, fleet.b):
        blocked = sum(1 for name, s, _ in statuses if name == envoy.name and s == 429)
        records = wait_blocks(envoy, before[envoy.name] + blocked)[before[envoy.name]:]
        assert len(records) == blocked
        for rec in records:
            assert rec["decision"] == "block" and rec["status"] == 429, rec
    # The upstream never saw the blocked deletes, nor any marker.
    seen = read_json_lines(fleet.recording)
    deleted = {r["path"].rsplit("/", 1)[-1] for r in seen if r["method"] == "DELETE"}
    assert deleted >= set(ids[:LIMIT]) and not deleted & set(ids[LIMIT:])
    assert not [r for r in seen if "x-scim-fleet" in r["headers"]]


def test_a_fleet_block_reaches_the_collector_as_ocsf_and_the_webhook(fleet: Fleet) -> None:
    assert fleet.collector and fleet.webhook
    fleet.flush()
    ids = make_users(fleet, LIMIT + 1)
    responses = [delete(fleet.a, i) for i in ids]
    assert [r.status_code for r in responses] == [204] * LIMIT + [429]
    audit_id = responses[-1].headers["x-scim-audit-id"]
    hooks = wait_for(lambda: [h for h in fleet.webhook.accepted() if h.json()["id"] == audit_id], 10, "the notification")
    event = hooks[0].json()
    assert RULE in [r["id"] for r in event["data"]["rules"]] and event["data"]["blocked"] is True, event
    shipped = wait_for(lambda: [r for r in fleet.collector.lines() if r.get("audit_id") == audit_id], 10, "the shipped record")
    assert RULE in [m["id"] for m in shipped[0]["rules"]]
    request_id = shipped[0]["request_id"]
    ocsf = wait_for(lambda: [e for e in fleet.collector.lines() if "class_uid" in e
                             and e["metadata"]["correlation_uid"] == request_id], 10, "the OCSF events")
    assert RULE in json.dumps(ocsf), ocsf
    # The counters (published on the VM's tick).
    stats = wait_for(lambda: (st := fleet.a.stats()).get("scimguard_fleet_blocks_total{}", 0) >= 1 and st, 5, "counters")
    assert stats["scimguard_fleet_marked_total{}"] >= LIMIT + 1


def test_a_bulk_counts_by_its_deprovisions(fleet: Fleet) -> None:
    fleet.flush()
    ids = make_users(fleet, 6)
    first = bulk_delete(fleet.a, ids[:3])
    assert first.status_code == 200, first.text
    # 3 + 3 > 5: refused, though it is only the second request.
    second = bulk_delete(fleet.b, ids[3:])
    assert second.status_code == 429 and second.headers.get("x-envoy-ratelimited"), second.text
    rec = wait_blocks(fleet.b, 1)[-1]
    assert rec["decision"] == "block"


def test_a_client_sent_marker_is_stripped_and_unmarked_traffic_never_calls_the_service(fleet: Fleet) -> None:
    fleet.flush()
    calls = fleet.a.rls_calls()
    with client(fleet.a.url, "http/1.1") as c:
        for _ in range(3):
            assert c.get("/Users", headers={"x-scim-fleet": "deprovision"}).status_code == 200
            r = c.post("/Users", content=payloads.user(), headers={"x-scim-fleet": "deprovision"})
            assert r.status_code == 201, r.text
    time.sleep(0.2)
    assert fleet.a.rls_calls() == calls, "reads and non-deprovision writes made a call to the rate-limit service"
    seen = read_json_lines(fleet.recording)
    assert not [r for r in seen if "x-scim-fleet" in r["headers"]]
    # ...and nothing was counted: the full threshold of deprovisions still passes.
    ids = make_users(fleet, LIMIT)
    assert [delete(fleet.a, i).status_code for i in ids] == [204] * LIMIT
    assert fleet.a.rls_calls() == calls + LIMIT


def p50_ms(envoy: Envoy, ids: list[str]) -> float:
    times = []
    with client(envoy.url, "http/1.1") as c:
        for i in ids:
            t = time.perf_counter()
            assert c.delete(f"/Users/{i}").status_code == 204
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def test_the_added_latency_is_measured(fleet: Fleet, summary: list[str]) -> None:
    n = 40
    limits_ok = n <= 10 * LIMIT  # flushing between rounds keeps the marked ones under the limit
    assert limits_ok
    marked, plain = [], []
    for _ in range(n // LIMIT):
        fleet.flush()
        marked.append(p50_ms(fleet.a, make_users(fleet, LIMIT)))
        plain.append(p50_ms(fleet.c, make_users(fleet, LIMIT)))
    m, p = statistics.median(marked), statistics.median(plain)
    summary.append(f"fleet: DELETE p50 {m:.2f} ms marked (ratelimit filter + Limitador + Redis) vs "
                   f"{p:.2f} ms unmarked (no fleet section): {m - p:+.2f} ms (reported, not asserted)")


def test_limitador_down_denies_marked_writes_only_where_configured(fleet: Fleet) -> None:
    fleet.flush()
    fleet.limitador.stop()
    try:
        ids = make_users(fleet, 2)
        refused = delete(fleet.a, ids[0])
        assert refused.status_code == 503, "failure_mode_deny: true"
        assert delete(fleet.b, ids[1]).status_code == 204, "failure_mode_deny: false"
        with client(fleet.a.url, "http/1.1") as c:
            assert c.post("/Users", content=payloads.user()).status_code == 201, "unmarked writes pass"
            assert c.get("/Users").status_code == 200
        # The trail has the refused write with its status, not as a fleet block (nothing was counted).
        audit_id = refused.headers["x-scim-audit-id"]
        rec = wait_for(lambda: [r for r in fleet.a.audit_records() if r["audit_id"] == audit_id], 5, "the 503's record")[0]
        assert rec["status"] == 503 and RULE not in [m["id"] for m in rec["rules"]], rec
    finally:
        fleet.start_limitador()


def test_redis_down_denies_marked_writes_only_where_configured(fleet: Fleet) -> None:
    ids = make_users(fleet, 3)
    assert delete(fleet.a, ids[0]).status_code == 204
    fleet.redis.stop()
    try:
        assert delete(fleet.a, ids[1]).status_code == 503, "failure_mode_deny: true"
        assert delete(fleet.b, ids[2]).status_code == 204, "failure_mode_deny: false"
        with client(fleet.a.url, "http/1.1") as c:
            assert c.post("/Users", content=payloads.user()).status_code == 201, "unmarked writes pass"
    finally:
        fleet.start_redis()
