"""scimguard in the shapes Istio and Envoy Gateway deliver it, in real Envoy 1.40.

* `code.remote`: the module fetched over HTTP from 127.0.0.1 (Envoy Gateway serves modules so),
  judged the same as from a local file; a module server that comes up late is retried; a wrong
  sha256 fails closed (every request on the listener 503, nothing reaches the upstream).
* the EnvoyFilter's ECDS resource (deploy/istio/envoyfilter.yaml, rendered for the image built
  here) delivered by file-based ECDS, its code being the module pulled from a registry and
  unpacked by Istio's rules, as Istio's agent rewrites it: a blocked write never reaches the
  upstream.
* the WasmPlugin shape (no `allow_on_headers_stop_iteration`): the bytes the application
  receives for a body-phase block, recorded on the wire.
* live policy reload through ECDS under steady traffic, and a rejected invalid update.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import payloads
import pytest
import yaml
from conftest import require_inputs
from deployed import (
    MODULE_CLUSTER, ModuleServer, eg_listener_edit, Shape, WireUpstream, deploy_render, ecds_file_source, module_cluster,
    replace_scim_filter, scim_filters, sha256_hex, start_shaped, stat, write_ecds,
)
from harness import ROOT, Gateway, http_ok, policy_path, wait_for, wasm_path

WASM_FILTER = "envoy.filters.http.wasm"
ADMIN_ROLE = payloads.patch({"op": "add", "path": "roles", "value": [{"value": "admin", "type": "admin"}]})


# --- helpers ---------------------------------------------------------------------------------


def local_code() -> dict[str, Any]:
    return {"local": {"filename": str(wasm_path().resolve())}}


def with_code(code: dict[str, Any]) -> Shape:
    """envoy.yaml's SCIM filter with another code source (and the module server's cluster)."""
    def edit(config: dict[str, Any]) -> None:
        wasm = next(f for f in scim_filters(config) if f["name"] == WASM_FILTER)
        wasm["typed_config"]["config"]["vm_config"]["code"] = code
    return Shape(edit)


def by_ecds(ecds: Path, *, upstream_port: int | None = None) -> Shape:
    """envoy.yaml's SCIM filter replaced by the EnvoyFilter's HTTP_FILTER patch, loading its
    config from `ecds` (the file stands in for istiod's ADS stream)."""
    return Shape(lambda config: replace_scim_filter(config, deploy_render.ecds_filter(ecds_file_source(ecds))),
                 upstream_port=upstream_port)


def create_user(gateway: Gateway) -> str:
    response = httpx.post(f"{gateway.upstream_url}/Users", content=payloads.user(payloads.unique("dep")),
                          headers={"content-type": "application/scim+json"}, timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def scim(gateway: Gateway, method: str, path: str, body: bytes | None = None) -> httpx.Response:
    return httpx.request(method, gateway.url + path, content=body, timeout=10,
                         headers={"content-type": "application/scim+json"})


def through_envoy(gateway: Gateway) -> list[dict[str, Any]]:
    """The upstream's records of requests Envoy forwarded (not the harness's readiness probe)."""
    return [r for r in gateway.upstream_records() if "x-request-id" in r["headers"]]


def behaviour(gateway: Gateway) -> dict[str, Any]:
    """What the filter did for one blocked, one tagged and one allowed write: statuses, whether
    the upstream saw each, the decisions and rules in the audit records."""
    user = create_user(gateway)
    mark = gateway.audit_mark()
    sent = {
        "block": scim(gateway, "PATCH", f"/Users/{user}", ADMIN_ROLE),
        "tag": scim(gateway, "PATCH", f"/Users/{user}", payloads.replace("active", True)),
        "allow": scim(gateway, "PATCH", f"/Users/{user}", payloads.replace("displayName", "Dep")),
    }
    records = gateway.wait_audit(mark + 3)[mark:]
    seen = {r["headers"].get("x-scim-audit-id") for r in gateway.upstream_records()}
    return {
        name: {
            "status": response.status_code,
            "decision": response.headers.get("x-scim-decision"),
            "reached_upstream": response.headers.get("x-scim-audit-id") in seen,
            "audit": [(r["decision"], sorted(rule["id"] for rule in r["rules"])) for r in records
                      if r["audit_id"] == response.headers.get("x-scim-audit-id")],
        }
        for name, response in sent.items()
    }


# --- code.remote -------------------------------------------------------------------------------


def test_remote_module_judges_like_a_local_file(tmp_path: Path, summary: list[str]) -> None:
    require_inputs()
    wasm = wasm_path().read_bytes()
    server = ModuleServer({"/scimguard.wasm": wasm}).start()
    remote = deploy_render.remote_code(f"http://127.0.0.1:{server.port}/scimguard.wasm", sha256_hex(wasm),
                                       cluster=MODULE_CLUSTER, timeout="5s")
    shapes = {"local": with_code(local_code()), "remote": with_code(remote)}
    shapes["remote"].extra_clusters.append(module_cluster(server.port))
    results = {}
    try:
        for name, shape in shapes.items():
            gateway = start_shaped(tmp_path / name, shape)
            try:
                results[name] = behaviour(gateway)
            finally:
                gateway.stop()
    finally:
        server.stop()
    assert server.gets >= 1
    assert results["remote"] == results["local"]
    local = results["local"]
    assert (local["block"]["status"], local["block"]["reached_upstream"]) == (403, False)
    assert local["tag"]["decision"] == "tag" and local["tag"]["reached_upstream"]
    assert local["allow"]["decision"] == "allow" and local["allow"]["reached_upstream"]
    summary.append(f"deploy: code.remote judges as a local file: {json.dumps(results['remote'], sort_keys=True)}")


def test_late_module_server_is_retried(tmp_path: Path, summary: list[str]) -> None:
    require_inputs()
    wasm = wasm_path().read_bytes()
    server = ModuleServer({"/scimguard.wasm": wasm})
    remote = deploy_render.remote_code(f"http://127.0.0.1:{server.port}/scimguard.wasm", sha256_hex(wasm),
                                       cluster=MODULE_CLUSTER, timeout="2s", retries=20)
    shape = with_code(remote)
    shape.extra_clusters.append(module_cluster(server.port))
    gateway = start_shaped(tmp_path, shape, wait_ready=False)
    refused = f"cluster.{MODULE_CLUSTER}.upstream_cx_connect_fail"
    try:
        ready = f"http://127.0.0.1:{gateway.admin_port}/ready"
        # The admin answers during initialisation: wait until a fetch has been refused.
        wait_for(lambda: http_ok(f"http://127.0.0.1:{gateway.admin_port}/stats") and stat(gateway, refused) >= 1,
                 30, "Envoy's first fetch of the module to be refused")
        assert not http_ok(ready), "Envoy was ready before its module could be fetched"
        server.start()
        late = time.monotonic()
        wait_for(lambda: http_ok(ready), 30, "Envoy to come up once the module server is up")
        came_up = time.monotonic() - late
        user = create_user(gateway)
        assert scim(gateway, "PATCH", f"/Users/{user}", ADMIN_ROLE).status_code == 403
        assert scim(gateway, "PATCH", f"/Users/{user}", payloads.replace("active", True)).status_code in (200, 204)
        assert stat(gateway, "wasm.remote_load_fetch_successes") == 1 and server.gets >= 1
        attempts = stat(gateway, refused)
    finally:
        gateway.stop()
        server.stop()
    summary.append(f"deploy: module server late: {attempts} refused fetch(es) retried, Envoy ready "
                   f"{came_up:.1f} s after the server came up, judging")


def test_wrong_sha256_fails_closed(tmp_path: Path, summary: list[str]) -> None:
    require_inputs()
    wasm = wasm_path().read_bytes()
    server = ModuleServer({"/scimguard.wasm": wasm}).start()
    wrong = hashlib.sha256(b"not the module").hexdigest()
    shape = with_code(deploy_render.remote_code(f"http://127.0.0.1:{server.port}/scimguard.wasm", wrong,
                                                cluster=MODULE_CLUSTER, timeout="2s", retries=1))
    shape.extra_clusters.append(module_cluster(server.port))
    gateway = start_shaped(tmp_path, shape)
    try:
        statuses = [scim(gateway, "POST", "/Users", payloads.user(payloads.unique("sha"))).status_code,
                    scim(gateway, "GET", "/Users").status_code,
                    httpx.get(f"{gateway.app_url}/x", timeout=5).status_code]
        assert statuses == [503, 503, 503]
        assert through_envoy(gateway) == []
        log = gateway.envoy_log.read_text()
    finally:
        gateway.stop()
        server.stop()
    assert "sha256" in log.lower() or "hash" in log.lower(), log[-2000:]
    summary.append("deploy: wrong sha256: Envoy live, every request on the listener 503, upstream saw nothing")


# --- ECDS: the EnvoyFilter's resource -------------------------------------------------------------


@pytest.fixture(scope="module")
def pulled_module(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """(module file, EXTENSION_CONFIG resource) as Istio's agent would hand them to Envoy: the
    EnvoyFilter rendered for the image `make oci` built, the image pushed with skopeo into a
    private registry, pulled by its manifest digest, unpacked by Istio's rules, and the code
    source rewritten to the local file."""
    sys.path.insert(0, str(ROOT / "tests" / "deploy"))
    from imagefetch import fetch
    from registry import OCI_LAYOUT, layout_tag, local_registry, missing_tools, skopeo_push
    require_inputs()
    if missing_tools() or not (OCI_LAYOUT / "index.json").is_file():
        pytest.fail("needs `make oci` and `make deploy-tools` (docker-registry, skopeo)", pytrace=False)
    workdir = tmp_path_factory.mktemp("pulled")
    digest = (ROOT / "target" / "oci.digest").read_text().strip()
    with local_registry(workdir) as (registry, host):
        image = f"{host}/scimguard:{layout_tag()}"
        values = {**deploy_render.load_values(ROOT / "deploy" / "values.json"), "image": image, "manifest_digest": digest}
        envoyfilter = deploy_render.istio_envoyfilter(policy_path().read_text(encoding="utf-8"), values,
                                                      deploy_render.envoy_parts())
        resource = envoyfilter["spec"]["configPatches"][0]["patch"]["value"]
        remote = resource["typed_config"]["config"]["vm_config"]["code"]["remote"]
        skopeo_push(OCI_LAYOUT, layout_tag(), image)
        module, _ = fetch(registry, "scimguard", layout_tag(), remote["sha256"])
    path = workdir / "scimguard.wasm"
    path.write_bytes(module)
    resource["typed_config"]["config"]["vm_config"]["code"] = {"local": {"filename": str(path)}}
    return path, resource


def with_policy(resource: dict[str, Any], policy_text: str, *, flag: bool = True) -> dict[str, Any]:
    changed = json.loads(json.dumps(resource))
    config = changed["typed_config"]["config"]
    config["configuration"]["value"] = policy_text
    if not flag:
        del config["allow_on_headers_stop_iteration"]
    return changed


def test_envoyfilter_ecds_resource_blocks_before_the_upstream(tmp_path: Path, pulled_module: tuple[Path, dict[str, Any]]) -> None:
    _, resource = pulled_module
    ecds = tmp_path / "ecds" / "scimguard.json"
    ecds.parent.mkdir(parents=True)
    write_ecds(ecds, resource, "1")
    gateway = start_shaped(tmp_path / "gw", by_ecds(ecds))
    try:
        result = behaviour(gateway)
        assert stat(gateway, "extension_config_discovery.http_filter.scimguard.config_reload") >= 1
    finally:
        gateway.stop()
    assert (result["block"]["status"], result["block"]["reached_upstream"]) == (403, False)
    assert result["block"]["audit"] == [("block", ["admin-role-granted"])]
    assert result["tag"]["reached_upstream"] and result["allow"]["reached_upstream"]


def wire_outcome(gateway: Gateway, wire: WireUpstream, method: str, body: bytes | None,
                 records: Callable[[], list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Status (or "no answer"), what the application received, and how many audit lines the write
    left (in `records()`, by default the audit log file) for one write."""
    records = records or gateway.audit_records
    gateway.audit_mark()
    mark = len(records())
    wire.connections.clear()
    try:
        status: int | str = httpx.request(method, gateway.url + "/Users/2819c223-7f76-453a-919d-413861904646",
                                          content=body, timeout=3,
                                          headers={"content-type": "application/scim+json"}).status_code
    except httpx.ReadTimeout:
        status = "no answer in 3 s"
    time.sleep(0.5)  # let the last bytes and the audit line land
    received = b"".join(bytes(c) for c in wire.connections)
    return {"status": status, "upstream_bytes": len(received), "upstream_body": received.partition(b"\r\n\r\n")[2],
            "audit_lines": len(records()) - mark}


def test_wasmplugin_shape_stalls_writes_with_a_body(
        tmp_path: Path, pulled_module: tuple[Path, dict[str, Any]], summary: list[str]) -> None:
    """Without the flag (what a WasmPlugin or an EnvoyExtensionPolicy alone gives), Envoy 1.40
    turns the filter's Pause in the headers callback into StopAllIteration: the body callbacks
    never come, so a SCIM write with a body is never judged, never forwarded and never answered
    (the client times out; Envoy's stream_idle_timeout ends it after 5 min by default). The
    application receives nothing of it. Bodyless writes (DELETE) and reads still work. With the
    flag, the same block is a 403 and the application still receives nothing."""
    _, resource = pulled_module
    seen: dict[bool, dict[str, dict[str, Any]]] = {}
    for flag in (False, True):
        wire = WireUpstream()
        ecds = tmp_path / f"ecds-{flag}" / "scimguard.json"
        ecds.parent.mkdir(parents=True)
        write_ecds(ecds, with_policy(resource, policy_path().read_text(encoding="utf-8"), flag=flag), "1")
        gateway = start_shaped(tmp_path / f"gw-{flag}", by_ecds(ecds, upstream_port=wire.port))
        try:
            seen[flag] = {
                "blocked PATCH": wire_outcome(gateway, wire, "PATCH", ADMIN_ROLE),
                "allowed PATCH": wire_outcome(gateway, wire, "PATCH", payloads.replace("displayName", "Dep")),
                "DELETE": wire_outcome(gateway, wire, "DELETE", None),
            }
        finally:
            gateway.stop()
            wire.stop()
    stalled = {"status": "no answer in 3 s", "upstream_bytes": 0, "upstream_body": b"", "audit_lines": 0}
    assert seen[False]["blocked PATCH"] == stalled
    assert seen[False]["allowed PATCH"] == stalled
    assert seen[False]["DELETE"]["status"] == 200 and seen[False]["DELETE"]["audit_lines"] == 1
    assert seen[True]["blocked PATCH"] == {"status": 403, "upstream_bytes": 0, "upstream_body": b"", "audit_lines": 1}
    assert seen[True]["allowed PATCH"]["status"] == 200
    assert seen[True]["allowed PATCH"]["upstream_body"] == payloads.replace("displayName", "Dep")
    summary.append("deploy: no flag (WasmPlugin / EnvoyExtensionPolicy alone): writes with a body stall "
                   "(never judged, forwarded or answered; 0 bytes upstream, no audit line); DELETE works. "
                   "With the flag: block 403, 0 bytes upstream")


# --- Envoy Gateway ---------------------------------------------------------------------------------


def test_envoy_gateway_shape_needs_the_patch_policy(tmp_path: Path, summary: list[str]) -> None:
    """deploy/envoy-gateway/ as Envoy Gateway v1.9 turns it into Envoy config (replicated from its
    translator, tests/e2e/deployed.py `eg_listener_edit`): the EnvoyExtensionPolicy alone stalls
    writes with a body; with the shipped EnvoyPatchPolicy applied, its JSONPaths find the filter
    and a blocked write is a 403 the application never sees."""
    require_inputs()
    documents = {name: yaml.safe_load((ROOT / "deploy" / "envoy-gateway" / f"{name}.yaml").read_text())
                 for name in ("envoyextensionpolicy", "envoypatchpolicy")}
    values = deploy_render.load_values(ROOT / "deploy" / "values.json")
    listener_name = "/".join(values["gateway"][key] for key in ("namespace", "name", "listener"))
    wasm = wasm_path().read_bytes()
    server = ModuleServer({"/scimguard.wasm": wasm}).start()
    outcomes = {}
    try:
        for patched in (False, True):
            wire = WireUpstream()
            edit = eg_listener_edit(documents["envoyextensionpolicy"], f"http://127.0.0.1:{server.port}/scimguard.wasm",
                                    sha256_hex(wasm), listener_name, documents["envoypatchpolicy"] if patched else None)
            shape = Shape(edit, [module_cluster(server.port)], upstream_port=wire.port)
            gateway = start_shaped(tmp_path / f"eg-{patched}", shape)
            # The patched audit access log writes to Envoy's stdout (a pod's log), as shipped.
            stdout = gateway.processes[-1].stdout

            def stdout_records() -> list[dict[str, Any]]:
                return [json.loads(line) for line in stdout.read_text().splitlines() if line.startswith("{")]

            try:
                outcomes[patched] = {
                    "blocked PATCH": wire_outcome(gateway, wire, "PATCH", ADMIN_ROLE, stdout_records),
                    "allowed PATCH": wire_outcome(gateway, wire, "PATCH", payloads.replace("displayName", "Dep"),
                                                  stdout_records),
                }
                oversize = httpx.post(gateway.url + "/Users", content=payloads.oversize_user(1_100_000),
                                      headers={"content-type": "application/scim+json"}, timeout=10) if patched else None
            finally:
                gateway.stop()
                wire.stop()
    finally:
        server.stop()
    stalled = {"status": "no answer in 3 s", "upstream_bytes": 0, "upstream_body": b"", "audit_lines": 0}
    assert outcomes[False]["blocked PATCH"] == stalled and outcomes[False]["allowed PATCH"] == stalled
    assert outcomes[True]["blocked PATCH"] == {"status": 403, "upstream_bytes": 0, "upstream_body": b"", "audit_lines": 1}
    assert outcomes[True]["allowed PATCH"]["status"] == 200 and outcomes[True]["allowed PATCH"]["audit_lines"] == 1
    # The patched buffer limit: over the policy's 1 MiB cap, scimguard's own SCIM 413, not Envoy's.
    assert oversize is not None and oversize.status_code == 413
    assert oversize.headers["content-type"].startswith("application/scim+json")
    summary.append("deploy: Envoy Gateway shape: EnvoyExtensionPolicy alone stalls writes with a body; with the "
                   "shipped EnvoyPatchPolicy: block 403, 0 bytes upstream, audit line, SCIM 413 over 1 MiB")


# --- live policy reload -------------------------------------------------------------------------


def reactivation_blocking_policy() -> str:
    """The default policy with `user-reactivated` turned from tag into block."""
    policy = json.loads(policy_path().read_text(encoding="utf-8"))
    for rule in policy["rules"]:
        if rule["id"] == "user-reactivated":
            rule["action"] = "block"
    return json.dumps(policy, indent=2) + "\n"


class Traffic:
    """Steady writes from one keep-alive client until stopped: (sent at, status, audit id)."""

    def __init__(self, gateway: Gateway, user: str) -> None:
        self.gateway, self.user = gateway, user
        self.results: list[tuple[float, int, str]] = []
        self.errors: list[str] = []
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        with httpx.Client(base_url=self.gateway.url, timeout=10,
                          headers={"content-type": "application/scim+json"}) as client:
            while self.running:
                sent = time.monotonic()
                try:
                    response = client.patch(f"/Users/{self.user}", content=payloads.replace("active", True))
                    self.results.append((sent, response.status_code, response.headers.get("x-scim-audit-id", "")))
                except httpx.HTTPError as error:
                    self.errors.append(f"{type(error).__name__}: {error}")
                time.sleep(0.01)

    def stop(self) -> None:
        self.running = False
        self.thread.join(15)


def test_live_policy_reload_under_traffic(tmp_path: Path, pulled_module: tuple[Path, dict[str, Any]],
                                          summary: list[str]) -> None:
    _, resource = pulled_module
    old_text = policy_path().read_text(encoding="utf-8")
    new_text = reactivation_blocking_policy()
    old_sha, new_sha = (hashlib.sha256(t.encode()).hexdigest() for t in (old_text, new_text))
    ecds = tmp_path / "ecds" / "scimguard.json"
    ecds.parent.mkdir(parents=True)
    write_ecds(ecds, with_policy(resource, old_text), "1")
    gateway = start_shaped(tmp_path / "gw", by_ecds(ecds))
    reloads = "extension_config_discovery.http_filter.scimguard.config_reload"
    fails = "extension_config_discovery.http_filter.scimguard.config_fail"
    try:
        user = create_user(gateway)
        traffic = Traffic(gateway, user)
        try:
            time.sleep(1.0)
            reloads_before = stat(gateway, reloads)
            switched = time.monotonic()
            write_ecds(ecds, with_policy(resource, new_text), "2")
            wait_for(lambda: any(s == 403 and t > switched for t, s, _ in traffic.results), 10, "the new policy")
            time.sleep(1.0)
            reloads_after = stat(gateway, reloads)
            # An invalid update: the filter's on_configure refuses it, Envoy rejects the resource.
            fails_before = stat(gateway, fails)
            invalid = json.loads(new_text) | {"version": 2}
            write_ecds(ecds, with_policy(resource, json.dumps(invalid)), "3")
            wait_for(lambda: stat(gateway, fails) > fails_before, 10, "the ECDS rejection counter")
            rejected = time.monotonic()
            time.sleep(1.0)
        finally:
            traffic.stop()
        assert reloads_after > reloads_before
        records = {r["audit_id"]: r for r in gateway.wait_audit(len(traffic.results))}
    finally:
        gateway.stop()
    assert traffic.errors == [], traffic.errors[:5]
    statuses = {s for _, s, _ in traffic.results}
    assert statuses <= {200, 204, 403}, statuses
    # Sent well before the switch (a request in flight at the rename may meet either policy).
    before = [r for r in traffic.results if r[0] < switched - 0.05]
    after = [r for r in traffic.results if r[0] >= switched]
    first_new = min(t for t, s, _ in after if s == 403)
    bound = first_new - switched
    assert before and all(s in (200, 204) for _, s, _ in before)
    assert all(s == 403 for t, s, _ in after if t > first_new + 0.5), "old policy still judging 0.5 s after the new one"
    assert all(s == 403 for t, s, _ in traffic.results if t > rejected), "the invalid update changed the verdicts"
    assert bound < 5.0
    summary.append(f"deploy: live reload under traffic: {len(traffic.results)} writes, 0 failed; new policy judging "
                   f"{bound * 1000:.0f} ms after the ECDS file was replaced; invalid update rejected "
                   f"({fails} +1), old policy kept")
    # Every record names the policy that judged it (field `policy.sha256`, sha256 of the policy bytes).
    for sent, status, audit_id in traffic.results:
        expected = new_sha if status == 403 else old_sha
        record = records[audit_id]
        assert "policy" in record, f"the audit record has no `policy` field: {sorted(record)}"
        assert record["policy"]["sha256"] == expected, (sent - switched, status)
