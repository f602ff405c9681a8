"""The gateway plumbing, independent of scimguard's decisions: routing, prefix rewrite,
forwarded prefix, both protocols, and scim2-cli compliance through Envoy + filter equal to
the direct run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import payloads
import pytest
from clients import expected_http_version
from conftest import require_inputs
from harness import Gateway, start_gateway

SCIM2 = str(Path(sys.executable).parent / "scim2")
CHECK_LINE = re.compile(r"^(SUCCESS|ERROR) (\S+)")


def test_reads_go_through_with_the_right_protocol(scim: httpx.Client, protocol: str) -> None:
    response = scim.get("/ServiceProviderConfig")
    assert response.status_code == 200
    assert response.http_version == expected_http_version(protocol)


def test_location_carries_the_gateway_prefix(scim: httpx.Client, direct: httpx.Client, gateway: Gateway) -> None:
    created = direct.post("/Users", content=payloads.user())
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    response = scim.get(f"/Users/{user_id}")
    assert response.status_code == 200
    assert response.json()["meta"]["location"] == f"{gateway.url}/Users/{user_id}"
    assert response.headers["content-location"] == f"{gateway.url}/Users/{user_id}"


def test_upstream_sees_the_rewritten_path_and_forwarded_prefix(scim: httpx.Client, gateway: Gateway) -> None:
    marker = payloads.unique("probe")
    scim.get("/Users", params={"filter": f'userName eq "{marker}"'})
    seen = [r for r in gateway.upstream_records() if marker in r["query"]]
    assert len(seen) == 1
    assert seen[0]["path"] == "/v2/Users"
    assert seen[0]["headers"]["x-forwarded-prefix"] == "/scim"


def scim2_checks(url: str) -> tuple[int, list[str]]:
    """Run `scim2 --url URL test`; return its rc and its sorted SUCCESS/ERROR lines."""
    result = subprocess.run([SCIM2, "--url", url, "test"], capture_output=True, text=True, timeout=300)
    lines = [m.group(0) for m in map(CHECK_LINE.match, result.stdout.splitlines()) if m]
    return result.returncode, sorted(lines)


def passed(lines: list[str]) -> int:
    return sum(line.startswith("SUCCESS") for line in lines)


@pytest.mark.parametrize("patch_200", [False, True], ids=["patch-204", "patch-200"])
def test_scim2_compliance_is_unchanged_by_the_gateway(
    patch_200: bool, tmp_path: Path, summary: list[str]
) -> None:
    require_inputs()
    gateway = start_gateway(tmp_path, patch_200=patch_200)
    try:
        direct_rc, direct = scim2_checks(gateway.upstream_url)
        via_rc, via = scim2_checks(gateway.url)
    finally:
        gateway.stop()
    mode = "PATCH 200" if patch_200 else "PATCH 204"
    summary.append(
        f"scim2 compliance ({mode} upstream): direct {passed(direct)}/{len(direct)} SUCCESS rc={direct_rc}; "
        f"via Envoy+scimguard {passed(via)}/{len(via)} SUCCESS rc={via_rc}; "
        f"{'identical' if direct == via else 'DIFFERENT'}"
    )
    assert direct, "scim2 printed no SUCCESS/ERROR lines against the upstream"
    assert via == direct
    assert via_rc == direct_rc


def test_non_scim_routes_skip_the_filter(gateway: Gateway) -> None:
    """The catch-all route disables the wasm filter: no judgement, no tags, no audit line."""
    before = gateway.audit_mark()
    with httpx.Client(base_url=f"http://127.0.0.1:{gateway.port}", timeout=10) as c:
        response = c.post("/app/Users", content=payloads.user(), headers={"content-type": "application/json"})
    assert response.status_code == 503  # nothing listens on the app port in tests
    assert not any(name.startswith("x-scim-") for name in response.headers)
    assert gateway.audit_mark() == before
