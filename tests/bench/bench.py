"""`make bench`: the cost of scimguard in Envoy, side by side with a baseline, a floor and a peer.

Owns: the whole measurement. It renders one Envoy config per variant from tests/bench/envoy/
(same binary, same config apart from the filter), starts them and a fast upstream (a second Envoy
that reads every body, then answers 200), pins Envoy to CPU 0 and the load generator (wrk, h2load)
with the upstream to CPU 1, runs every workload against every variant in rotated order over several
rounds, checks the counts (client vs Envoy vs upstream, status classes, connections), and writes
raw numbers, medians, ratios against the baseline and the empty-wasm floor measured in the same
run, the budget table and a chart to tests/bench/results/ (or --out).

    python tests/bench/bench.py                      # the committed run (make bench)
    python tests/bench/bench.py --smoke --out DIR    # ~20 s, 1 round: proves the harness works

Variants (the filter in front of the router; nothing else differs):
    baseline     no filter: the ceiling
    wasm-empty   tests/bench/empty-filter: holds the headers and buffers the body, no host call: the floor
    lua          tests/bench/envoy/lua-filter.lua: body() + string.find: the hand-written peer
    scimguard    target/wasm32-wasip1/release/scimguard.wasm, policies/default.json (+ the bench
                 group's name), the filter block and the audit access log taken from envoy.yaml
Diagnostics, beside them in the BREAKDOWN measurements only (where scimguard's time goes):
    wasm-hostcalls     the empty filter making scimguard's host calls of a PATCH (7 with envoy.yaml), no guest work
    scimguard-noaudit  scimguard without the audit access log

Also: the upstream loaded directly (is it the ceiling?), host calls per request counted from
Envoy's wasm trace log, Envoy memory per variant, the decision time from scimguard's own audit
records, and the engine alone: natively (cargo bench --bench engine) and in Node's V8.

Why CPU time per request: on a 2-core machine shared with compilers, throughput moves with the
neighbours; the CPU time Envoy spent (summed over its threads, /proc/<pid>/task/*/schedstat) divided by
the requests it served moves much less, and it is the cost an operator pays. Both are reported.

Does not: judge anything about scimguard's decisions beyond the status class each workload must get.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared ports.py
from ports import free_port  # noqa: E402  (re-exported: instructions.py and size.py use bench.free_port)

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "bench"
ENVOY = ROOT / ".venv" / "bin" / "envoy"
SCIMGUARD_WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "scimguard.wasm"
EMPTY_WASM = ROOT / "target" / "bench-empty-filter" / "wasm32-wasip1" / "release" / "bench_empty_filter.wasm"
POLICY = ROOT / "policies" / "default.json"
SHIPPED = ROOT / "envoy.yaml"
WRK_SCRIPT = HERE / "wrk" / "request.lua"
HCM = "envoy.filters.network.http_connection_manager"
WASM_FILTER = "envoy.filters.http.wasm"
LUA_FILTER = "envoy.filters.http.lua"
ENVOY_CPU, CLIENT_CPU = "0", "1"

VARIANTS = ["baseline", "wasm-empty", "lua", "scimguard"]
# Diagnostics, run only in the BREAKDOWN measurements: where scimguard's time goes beyond the floor.
#   wasm-hostcalls     the empty filter making scimguard's host calls (same count and sizes), no work
#   scimguard-noaudit  scimguard without the audit access log (the logger's share)
DIAGNOSTIC_VARIANTS = ["wasm-hostcalls", "scimguard-noaudit"]
BREAKDOWN = {("entra_patch", "h1"), ("entra_patch", "c1"), ("scim_get", "h1")}
# The scimguard.wasm the Envoys load: main() copies the build output here first.
LOADED_WASM = [SCIMGUARD_WASM]
BENCH_GROUP = "6c5bb468-14b2-4183-baf2-06d523e03bd3"
USER_ID = "2819c223-7f76-453a-919d-413861904646"


# ---- workloads -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    name: str
    method: str
    path: str
    body: str | None  # file name in the work dir
    label: str
    # The status class each variant must get (default 2xx).
    expect: dict[str, int] = field(default_factory=dict)

    def expected(self, variant: str) -> int:
        return self.expect.get(variant.split("-")[0] if variant.startswith("scimguard") else variant, 2)


WORKLOADS = {w.name: w for w in [
    Workload("nonscim_get", "GET", "/app/health", None, "non-SCIM GET, filter off per route"),
    Workload("filter_on_get", "GET", "/api/items/42", None, "non-SCIM GET, filter on"),
    Workload("scim_get", "GET", f"/scim/v2/Users/{USER_ID}", None, "SCIM GET"),
    Workload("entra_patch", "PATCH", f"/scim/v2/Users/{USER_ID}", "entra_patch.json", "Entra PATCH, 1 op"),
    Workload("group_patch_100", "PATCH", f"/scim/v2/Groups/{BENCH_GROUP}", "group_patch_100.json",
             "Group PATCH, +100 members"),
    Workload("bulk_100kib", "POST", "/scim/v2/Bulk", "bulk_100kib.json", "Bulk 100 creates, 100 KiB"),
    Workload("bulk_1mib", "POST", "/scim/v2/Bulk", "bulk_1mib.json", "Bulk 1000 creates, 1 MiB"),
    Workload("bulk_1mib_blocked", "POST", "/scim/v2/Bulk", "bulk_1mib_blocked.json",
             "Bulk 1 MiB with 20 deletes (blocked)", expect={"scimguard": 4}),
]}

# (workload, mode): h1 = wrk -c32 (throughput, latency under load), h2 = h2load h2c -c4 -m8,
# c1 = wrk -c1 (service time). Seconds per run.
MEASUREMENTS: list[tuple[str, str, int]] = [
    ("nonscim_get", "h1", 2), ("filter_on_get", "h1", 2), ("scim_get", "h1", 2), ("entra_patch", "h1", 2),
    ("group_patch_100", "h1", 2), ("bulk_1mib", "h1", 2),
    ("entra_patch", "h2", 2),
    ("nonscim_get", "c1", 1), ("filter_on_get", "c1", 1), ("scim_get", "c1", 1), ("entra_patch", "c1", 1),
    ("group_patch_100", "c1", 1), ("bulk_100kib", "c1", 1), ("bulk_1mib", "c1", 2), ("bulk_1mib_blocked", "c1", 1),
]
SMOKE_MEASUREMENTS: list[tuple[str, str, int]] = [
    ("entra_patch", "h1", 1), ("entra_patch", "h2", 1), ("bulk_1mib_blocked", "c1", 1),
]
H1_CONNECTIONS = 32


def entra_patch() -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}


def group_patch(n: int) -> dict[str, Any]:
    members = [{"value": f"2819c223-7f76-453a-919d-4138619{i:05}"} for i in range(n)]
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Add", "path": "members", "value": members}]}


def bulk(n: int, size: int, deletes: int = 0) -> dict[str, Any]:
    """As tests/bench/engine.rs `bulk`: `n` user creates padded to about `size` bytes; the first
    `deletes` operations are user DELETEs instead (the default policy blocks 10 or more)."""
    pad = "x" * max(size // n - 420, 0)
    ops: list[dict[str, Any]] = []
    for i in range(n):
        if i < deletes:
            ops.append({"method": "DELETE", "path": f"/Users/d{i}", "bulkId": f"q{i}"})
            continue
        ops.append({"method": "POST", "path": "/Users", "bulkId": f"q{i}",
                    "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"user{i}@example.com",
                             "name": {"givenName": "Given", "familyName": "Family"}, "displayName": pad,
                             "emails": [{"value": f"user{i}@example.com", "type": "work", "primary": True}],
                             "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                                 {"department": "Engineering", "employeeNumber": f"{i}"}}})
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}


def compact(value: Any) -> bytes:
    """serde_json's `to_string` with `preserve_order`: the bytes tests/bench/engine.rs evaluates."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def write_payloads(work: Path) -> dict[str, int]:
    bodies = {
        "entra_patch.json": compact(entra_patch()),
        "group_patch_100.json": compact(group_patch(100)),
        "bulk_100kib.json": compact(bulk(100, 100 * 1024)),
        "bulk_1mib.json": compact(bulk(1000, 1024 * 1024)),
        "bulk_1mib_blocked.json": compact(bulk(1000, 1024 * 1024, deletes=20)),
    }
    for name, body in bodies.items():
        (work / name).write_bytes(body)
    return {name: len(body) for name, body in bodies.items()}


def bench_policy(work: Path) -> Path:
    """policies/default.json with the bench group's name known ("Engineering"): the Group PATCH is
    judged without a lookup and allowed (tagged `mass-member-add` at 100 members). Edited as text, so
    every other byte is the shipped policy's."""
    text = POLICY.read_text(encoding="utf-8")
    new, count = re.subn(r'"known_names"\s*:\s*\{\s*\}', f'"known_names": {{"{BENCH_GROUP}": "Engineering"}}', text)
    if count != 1:
        raise SystemExit("bench: policies/default.json has no empty `known_names` object to fill in")
    out = work / "bench-policy.json"
    out.write_text(new, encoding="utf-8")
    return out


# ---- configs -------------------------------------------------------------------------------------

def find(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for item in items:
        if item.get("name") == name:
            return item
    raise SystemExit(f"bench: `{name}` not found; has a config changed shape?")


def shipped_scimguard(policy: Path, work: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The wasm filter block and the audit access log of envoy.yaml, filled in as render.py does."""
    shipped = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    listener = shipped["static_resources"]["listeners"][0]
    hcm = find(listener["filter_chains"][0]["filters"], HCM)["typed_config"]
    wasm = find(hcm["http_filters"], WASM_FILTER)
    config = wasm["typed_config"]["config"]
    config["configuration"]["value"] = policy.read_text(encoding="utf-8")
    # A private copy (bench.py copies it at start): a rebuild during the run must not change what is measured.
    config["vm_config"]["code"]["local"]["filename"] = str(LOADED_WASM[0])
    audit = None
    for log in hcm.get("access_log", []):
        if "filter" in log:  # the audit log: only requests that carry scimguard's filter state
            audit = log
            log["typed_config"]["path"] = str(work / "audit.log")
    return wasm, audit


def variant_filter(variant: str, policy: Path, work: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    if variant == "baseline":
        return None, []
    if variant == "scimguard":
        wasm, audit = shipped_scimguard(policy, work)
        return wasm, [audit] if audit else []
    if variant == "scimguard-noaudit":  # diagnostic: the filter without the audit access log
        return shipped_scimguard(policy, work)[0], []
    if variant in ("wasm-empty", "wasm-hostcalls"):
        config: dict[str, Any] = {
            "name": "empty", "root_id": "empty", "failure_policy": "FAIL_RELOAD", "allow_on_headers_stop_iteration": True,
            "vm_config": {"vm_id": "empty", "runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": str(EMPTY_WASM)}}}}
        if variant == "wasm-hostcalls":
            config["configuration"] = {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "mimic-scimguard"}
        return {"name": WASM_FILTER, "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm", "config": config}}, []
    if variant == "lua":
        return {"name": LUA_FILTER, "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": (HERE / "envoy" / "lua-filter.lua").read_text()}}}, []
    raise SystemExit(f"bench: unknown variant {variant}")


def set_port(address: dict[str, Any], port: int) -> None:
    address["socket_address"]["port_value"] = port


def render_under_test(variant: str, ports: dict[str, int], upstream_port: int, policy: Path, work: Path) -> Path:
    config = yaml.safe_load((HERE / "envoy" / "under-test.yaml").read_text())
    set_port(config["admin"]["address"], ports["admin"])
    listener = find(config["static_resources"]["listeners"], "bench")
    set_port(listener["address"], ports["listen"])
    hcm = find(listener["filter_chains"][0]["filters"], HCM)["typed_config"]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    app_route = next(r for r in routes if r["match"].get("prefix") == "/app/")
    flt, logs = variant_filter(variant, policy, work / variant)
    if variant.startswith("scimguard"):
        # As shipped: the early header mutation that keeps clients from sending scimguard's mark.
        shipped = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
        shipped_hcm = find(shipped["static_resources"]["listeners"][0]["filter_chains"][0]["filters"], HCM)["typed_config"]
        if "early_header_mutation_extensions" in shipped_hcm:
            hcm["early_header_mutation_extensions"] = shipped_hcm["early_header_mutation_extensions"]
        # As shipped: the SCIM route adds the response tags from the request (SCIMGUARD_RESPONSE_TAGS).
        shipped_routes = shipped_hcm["route_config"]["virtual_hosts"][0]["routes"]
        shipped_scim = next(r for r in shipped_routes if r["match"].get("prefix") == "/scim/v2/")
        scim_route = next(r for r in routes if r["match"].get("prefix") == "/scim/v2/")
        if "response_headers_to_add" in shipped_scim:
            scim_route["response_headers_to_add"] = shipped_scim["response_headers_to_add"]
    if flt is None:
        app_route.pop("typed_per_filter_config")
    else:
        hcm["http_filters"].insert(0, flt)
        app_route["typed_per_filter_config"] = {flt["name"]: {
            "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}}
    if logs:
        hcm["access_log"] = logs
    for cluster in config["static_resources"]["clusters"]:
        set_port(cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"], upstream_port)
    out = work / variant / "envoy.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# Rendered by tests/bench/bench.py for variant {variant}. Do not edit.\n"
                   + yaml.safe_dump(config, sort_keys=False, width=1 << 20))
    return out


def render_upstream(ports: dict[str, int], work: Path) -> Path:
    config = yaml.safe_load((HERE / "envoy" / "upstream.yaml").read_text())
    set_port(config["admin"]["address"], ports["admin"])
    set_port(config["static_resources"]["listeners"][0]["address"], ports["listen"])
    out = work / "upstream" / "envoy.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(config, sort_keys=False, width=1 << 20))
    return out


# ---- processes -----------------------------------------------------------------------------------

@dataclass
class Envoy:
    name: str
    popen: subprocess.Popen[bytes]
    admin: int
    port: int
    workdir: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)

    def stats(self, regex: str) -> dict[str, float]:
        url = f"http://127.0.0.1:{self.admin}/stats?format=json&filter={urllib.request.quote(regex)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            data = json.load(response)
        return {s["name"]: s["value"] for s in data.get("stats", []) if "value" in s}

    def cpu_ns(self) -> int:
        """CPU time of all Envoy threads so far (ns, from the scheduler's accounting)."""
        total = 0
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        return total

    def memory(self) -> dict[str, int]:
        status = Path(f"/proc/{self.pid}/status").read_text()
        found = {k: int(v) * 1024 for k, v in re.findall(r"^(VmRSS|VmHWM|RssAnon|RssFile):\s+(\d+) kB", status, re.M)}
        # tcmalloc's view (admin /memory): live bytes vs heap kept from the OS (freed but retained).
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/memory", timeout=10) as response:
            found.update({f"tcmalloc_{k}": int(v) for k, v in json.load(response).items()})
        return found


def start_envoy(name: str, config: Path, ports: dict[str, int], cpu: str | None, workdir: Path,
                extra: list[str] | None = None, concurrency: int = 1) -> Envoy:
    workdir.mkdir(parents=True, exist_ok=True)
    argv = ([ "taskset", "-c", cpu] if cpu else []) + [
        str(ENVOY), "-c", str(config), "--concurrency", str(concurrency), "--disable-hot-restart",
        "--log-level", "warn", "--log-path", str(workdir / "envoy.log"), *(extra or [])]
    with open(workdir / "envoy.stdout", "wb") as out:
        popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
    return Envoy(name, popen, ports["admin"], ports["listen"], workdir)


def wait_ready(envoys: list[Envoy], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    pending = list(envoys)
    while pending:
        for envoy in list(pending):
            if envoy.popen.poll() is not None:
                log = (envoy.workdir / "envoy.log").read_text(errors="replace")[-3000:]
                raise SystemExit(f"bench: Envoy `{envoy.name}` exited ({envoy.popen.returncode}):\n{log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{envoy.admin}/ready", timeout=1) as r:
                    if r.status == 200:
                        pending.remove(envoy)
            except OSError:
                pass
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {[e.name for e in pending]}")
        time.sleep(0.1)


# ---- load generators -----------------------------------------------------------------------------

def run_wrk(url: str, workload: Workload, work: Path, connections: int, seconds: int) -> dict[str, Any]:
    env = dict(os.environ, BENCH_METHOD=workload.method, BENCH_BODY=str(work / workload.body) if workload.body else "",
               BENCH_AGENT=f"scimguard-bench/c{connections}")
    argv = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
            "-s", str(WRK_SCRIPT), url + workload.path]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=seconds + 60)
    line = next((l for l in done.stdout.splitlines() if l.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"bench: wrk failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    result = json.loads(line.split(" ", 1)[1])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["non2xx"] = result["errors"]["status"]
    result["socket_errors"] = sum(v for k, v in result["errors"].items() if k != "status")
    return result


H2_SUMMARY = re.compile(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s")
H2_REQUESTS = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout")
H2_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
H2_TIME = re.compile(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)")


def to_us(value: str, unit: str) -> float:
    return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]


def run_h2load(url: str, workload: Workload, work: Path, seconds: int) -> dict[str, Any]:
    argv = ["taskset", "-c", CLIENT_CPU, "h2load", "-t1", "-c4", "-m8", "-D", str(seconds),
            "-H", f":method: {workload.method}", url + workload.path]
    if workload.body:
        argv[5:5] = ["-d", str(work / workload.body), "-H", "content-type: application/scim+json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    out = done.stdout
    summary, requests, status = H2_SUMMARY.search(out), H2_REQUESTS.search(out), H2_STATUS.search(out)
    if done.returncode != 0 or not (summary and requests and status):
        raise SystemExit(f"bench: h2load failed ({done.returncode}): {out[-2000:]} {done.stderr[-2000:]}")
    total, _, done_n, ok, failed, errored, timeout = map(int, requests.groups())
    s2, s3, s4, s5 = map(int, status.groups())
    timing = H2_TIME.search(out)
    return {"requests": done_n, "rps": float(summary.group(3)), "non2xx": s3 + s4 + s5, "status": [s2, s3, s4, s5],
            "socket_errors": failed + errored + timeout,
            "latency_us": {"mean": to_us(timing.group(5), timing.group(6))} if timing else {}}


# ---- one measurement -----------------------------------------------------------------------------

DOWNSTREAM = r"^http\.(bench|upstream)\.downstream_(rq_total|rq_[1-5]xx|cx_total)$"
WASMCUSTOM = r"^wasmcustom\.scimguard_"


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}


def settle(envoy: Envoy, timeout: float = 3.0) -> None:
    """Wait until Envoy has no request in flight: the client stops with requests under way (a blocked
    1 MiB Bulk takes 20 ms), and their responses must count in this run, not in the next one's."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not envoy.stats(r"^http\.bench\.downstream_rq_active$").get("http.bench.downstream_rq_active"):
            return
        time.sleep(0.02)


def measure(envoy: Envoy, upstream: Envoy, workload: Workload, mode: str, seconds: int, work: Path) -> dict[str, Any]:
    url = f"http://127.0.0.1:{envoy.port}"
    before = envoy.stats(DOWNSTREAM + "|" + WASMCUSTOM)
    up_before = upstream.stats(DOWNSTREAM)
    cpu0, t0 = envoy.cpu_ns(), time.monotonic()
    if mode == "h2":
        client = run_h2load(url, workload, work, seconds)
    else:
        client = run_wrk(url, workload, work, 1 if mode == "c1" else H1_CONNECTIONS, seconds)
    cpu1, t1 = envoy.cpu_ns(), time.monotonic()
    settle(envoy)
    served = delta(envoy.stats(DOWNSTREAM + "|" + WASMCUSTOM), before)
    up_served = delta(upstream.stats(DOWNSTREAM), up_before)
    rq = served.get("http.bench.downstream_rq_total", 0)
    expected = workload.expected(envoy.name)
    answered = {n: served.get(f"http.bench.downstream_rq_{n}xx", 0) for n in range(1, 6)}
    unexpected = sum(v for n, v in answered.items() if n != expected)
    # The client stops with requests in flight (up to its concurrency): Envoy counted them, no
    # response was completed. wrk counts completed responses; h2load those inside its window.
    slack = 1 if mode == "c1" else H1_CONNECTIONS
    cut_off = rq - sum(answered.values())
    problems = []
    if client["socket_errors"]:
        problems.append(f"{client['socket_errors']} client socket errors")
    if client["non2xx"] and expected == 2:
        problems.append(f"client saw {client['non2xx']} non-2xx responses")
    if unexpected:
        problems.append(f"Envoy answered {unexpected:.0f} responses other than {expected}xx")
    if cut_off > slack:
        problems.append(f"{cut_off:.0f} requests without a response")
    if rq < client["requests"] or (mode != "h2" and rq > client["requests"] + slack):
        problems.append(f"Envoy served {rq:.0f}, client counted {client['requests']}")
    cx = served.get("http.bench.downstream_cx_total", 0)
    # wrk opens one extra connection at start (its address check), hence + 1.
    if cx > (1 if mode == "c1" else H1_CONNECTIONS if mode == "h1" else 4) + 1:
        problems.append(f"{cx:.0f} downstream connections opened (expected keep-alive)")
    return {
        "client": client,
        "envoy": served,
        "upstream": up_served,
        "cpu_s": (cpu1 - cpu0) / 1e9,
        "cpu_util": (cpu1 - cpu0) / 1e9 / (t1 - t0),
        "cpu_us_per_request": (cpu1 - cpu0) / 1e3 / rq if rq else None,
        "loadavg_1min": os.getloadavg()[0],
        "problems": problems,
    }


# ---- host calls ----------------------------------------------------------------------------------

VM_TO_HOST = re.compile(r"\[vm->host\] (?:env\.)?([\w.]+)\((\d*)")
# The first argument says which map or buffer: 0 request headers / request body, 2 response headers,
# 1 response body (proxy-wasm ABI 0.2.1 MapType / BufferType).
BY_FIRST_ARG = ("proxy_get_header_map_pairs", "proxy_get_buffer_bytes", "proxy_replace_header_map_value",
                "proxy_add_header_map_value", "proxy_remove_header_map_value")
HOST_TO_VM = re.compile(r"\[host->vm\] (\w+)\(")
THREAD = re.compile(r"^\[[^\]]*\]\[(\d+)\]")


def tally(text: str) -> tuple[dict[str, int], dict[str, int]]:
    """VM->host calls and host->VM callbacks in a wasm trace log excerpt, by function. The root's
    tick (counters published, audit shipped) is not a request's: what a thread does between
    entering and leaving `proxy_on_tick` is skipped."""
    calls: dict[str, int] = {}
    callbacks: dict[str, int] = {}
    ticking: set[str] = set()
    for line in text.splitlines():
        thread = m.group(1) if (m := THREAD.search(line)) else ""
        if "[host->vm] proxy_on_tick(" in line:
            ticking.add(thread)
            continue
        if "[host<-vm] proxy_on_tick return" in line:
            ticking.discard(thread)
            continue
        if thread in ticking:
            continue
        if m := VM_TO_HOST.search(line):
            key = f"{m.group(1)}({m.group(2)})" if m.group(1) in BY_FIRST_ARG else m.group(1)
            calls[key] = calls.get(key, 0) + 1
        elif m := HOST_TO_VM.search(line):
            callbacks[m.group(1)] = callbacks.get(m.group(1), 0) + 1
    return calls, callbacks


def count_host_calls(variant: str, policy: Path, work: Path, workloads: list[Workload]) -> dict[str, Any]:
    """Envoy with wasm trace logging (proxy-wasm-cpp-host logs every crossing), one request per
    workload after one warm-up request; counts the crossings in the log lines of the second."""
    tdir = work / f"hostcalls-{variant}"
    ports = {"admin": free_port(), "listen": free_port()}
    up_ports = {"admin": free_port(), "listen": free_port()}
    upstream = start_envoy("upstream", render_upstream(up_ports, tdir), up_ports, None, tdir / "upstream")
    config = render_under_test(variant, ports, up_ports["listen"], policy, tdir)
    envoy = start_envoy(variant, config, ports, None, tdir / variant,
                        ["--component-log-level", "wasm:trace", "--file-flush-interval-msec", "20"])
    log = tdir / variant / "envoy.log"
    counts: dict[str, Any] = {}
    try:
        wait_ready([upstream, envoy])
        for workload in workloads:
            body = (work / workload.body).read_bytes() if workload.body else None
            for attempt in range(2):
                time.sleep(0.3)
                start = log.stat().st_size
                send(envoy.port, workload, body)
                time.sleep(0.3)
            with open(log, "rb") as f:
                f.seek(start)
                text = f.read().decode(errors="replace")
            calls, callbacks = tally(text)
            counts[workload.name] = {"host_calls": sum(calls.values()), "by_function": dict(sorted(calls.items())),
                                     "callbacks": sum(callbacks.values()), "callbacks_by_function": dict(sorted(callbacks.items()))}
    finally:
        envoy.stop()
        upstream.stop()
    return counts


def send(port: int, workload: Workload, body: bytes | None) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{workload.path}", data=body, method=workload.method,
                                     headers={"content-type": "application/scim+json", "authorization": "Bearer bench"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code


# ---- the run -------------------------------------------------------------------------------------

def machine(load_before: list[float]) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mhz = re.search(r"^cpu MHz\s*:\s*(.+)$", cpuinfo, re.M)
    version = subprocess.run([str(ENVOY), "--version"], capture_output=True, text=True).stdout.strip()
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    h2load = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model.group(1) if model else "unknown",
        "cpu_mhz": mhz.group(1) if mhz else None,
        "kernel": platform.release(),
        "memory_total_kib": int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)),
        "envoy_version": version.split("version:")[-1].strip(),
        "wrk": (wrk.stdout + wrk.stderr).splitlines()[0],
        "h2load": h2load,
        "git_commit": commit,
        "work_tree_changes_in_src": subprocess.run(["git", "status", "--short", "--", "src", "Cargo.toml", "Cargo.lock", "envoy.yaml"],
                                                   capture_output=True, text=True, cwd=ROOT).stdout.count("\n"),
        "loadavg_before": load_before,
        "pinning": f"Envoy under test on CPU {ENVOY_CPU}; wrk/h2load and the upstream Envoy on CPU {CLIENT_CPU}",
    }


def ceiling_check(upstream: Envoy, work: Path, seconds: int) -> dict[str, Any]:
    """Load the upstream directly, with wrk on the same core as in the run: the most CPU 1 can serve."""
    url = f"http://127.0.0.1:{upstream.port}"
    out = {}
    for name in ("scim_get", "entra_patch", "bulk_1mib"):
        result = run_wrk(url, WORKLOADS[name], work, H1_CONNECTIONS, seconds)
        out[name] = {"rps": result["rps"], "non2xx": result["non2xx"], "socket_errors": result["socket_errors"]}
    return out


def native_engine(quick: bool) -> list[dict[str, Any]]:
    argv = ["taskset", "-c", ENVOY_CPU, "cargo", "bench", "--quiet", "--bench", "engine", "--", *(["--quick"] if quick else [])]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"bench: cargo bench failed:\n{done.stderr[-3000:]}")
    return [json.loads(l) for l in done.stdout.splitlines() if l.startswith("{")]


def startup(variants: list[str], policy: Path, upstream_port: int, work: Path, times: int = 3) -> dict[str, Any]:
    """Per variant, each Envoy started alone: seconds from process start to `/ready` (median of
    `times`: what loading the module costs at every start or hot restart), and the idle RSS with
    1 and with 4 workers (a VM per worker: what each more worker costs)."""
    out: dict[str, Any] = {}
    for variant in variants:
        seconds, rss = [], {}
        for i, workers in enumerate([1] * times + [4]):
            ports = {"admin": free_port(), "listen": free_port()}
            config = render_under_test(variant, ports, upstream_port, policy, work / "startup")
            t0 = time.monotonic()
            envoy = start_envoy(f"startup-{variant}", config, ports, ENVOY_CPU, work / "startup" / f"{variant}-{i}",
                                concurrency=workers)
            try:
                wait_ready([envoy], timeout=60)
                if workers == 1:
                    seconds.append(time.monotonic() - t0)
                time.sleep(1)
                rss[workers] = envoy.memory()["VmRSS"]
            finally:
                envoy.stop()
        out[variant] = {"ready_s": round(statistics.median(seconds), 3),
                        "rss_idle_1_worker": rss[1], "rss_idle_4_workers": rss[4]}
    return out


def filter_v8(wasm: Path, policy: Path, work: Path, prefix: str, *options: str) -> list[dict[str, Any]] | None:
    """Runs tests/bench/filter-v8.mjs on `wasm` (on Envoy's core) and returns its `prefix` lines,
    parsed; None, with the reason logged, when node is missing or the run failed."""
    if not shutil.which("node"):
        log("node not found: the filter-in-V8 figures are skipped")
        return None
    run = subprocess.run(["taskset", "-c", ENVOY_CPU, "node", "--no-warnings", str(HERE / "filter-v8.mjs"),
                          str(wasm), str(policy), str(work), *options],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    if run.returncode != 0:
        log(f"filter-v8.mjs {' '.join(options)} failed: {run.stderr[-1500:]}")
        return None
    return [json.loads(l.split(" ", 1)[1]) for l in run.stdout.splitlines() if l.startswith(prefix + " ")]


def filter_memory_in_v8(policy: Path, work: Path, in_flight: int = 32) -> list[dict[str, Any]]:
    """The VM's linear memory with `in_flight` judged requests awaiting their upstream at once
    (tests/bench/filter-v8.mjs --in-flight): what a worker keeps after such a burst."""
    return filter_v8(LOADED_WASM[0], policy, work, "FILTER_V8_MEMORY", "--in-flight", str(in_flight),
                     "--only", "entra_patch,group_patch_100,bulk_100kib,bulk_1mib") or []


def filter_in_v8(policy: Path, work: Path) -> list[dict[str, Any]]:
    """The filter itself (the .wasm Envoy loads) under a minimal proxy-wasm host in Node's V8
    (tests/bench/filter-v8.mjs): the guest's own work per request, with no Envoy around it."""
    return filter_v8(LOADED_WASM[0], policy, work, "FILTER_V8") or []


def engine_in_v8() -> list[dict[str, Any]]:
    """The same engine bench compiled for wasm32-wasip1, run in Node's V8 (tests/bench/engine-wasi.mjs)."""
    if not shutil.which("node"):
        log("node not found: the engine-in-V8 figures are skipped")
        return []
    build = ["cargo", "bench", "--bench", "engine", "--no-run", "--target", "wasm32-wasip1", "--no-default-features",
             "--target-dir", str(ROOT / "target" / "bench-wasm"), "--message-format", "json"]
    done = subprocess.run(build, capture_output=True, text=True, cwd=ROOT, timeout=900)
    wasm = None
    for line in done.stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if message.get("reason") == "compiler-artifact" and message.get("target", {}).get("name") == "engine":
            wasm = message.get("executable") or next((f for f in message.get("filenames", []) if f.endswith(".wasm")), None)
    if done.returncode != 0 or not wasm:
        log(f"engine bench for wasm32-wasip1 did not build: {done.stderr[-1500:]}")
        return []
    run = subprocess.run(["taskset", "-c", ENVOY_CPU, "node", "--no-warnings", str(HERE / "engine-wasi.mjs"), wasm],
                         capture_output=True, text=True, cwd=ROOT, timeout=900)
    if run.returncode != 0:
        log(f"engine bench in Node failed: {run.stderr[-1500:]}")
        return []
    return [json.loads(l) for l in run.stdout.splitlines() if l.startswith("{")]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.payloads:
        args.payloads.mkdir(parents=True, exist_ok=True)
        write_payloads(args.payloads)
        bench_policy(args.payloads)
        return 0
    started = time.monotonic()
    load_before = list(os.getloadavg())
    for tool in ("wrk", "h2load", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: `{tool}` not found (make bench installs wrk and nghttp2-client)")
    for path in (ENVOY, SCIMGUARD_WASM, EMPTY_WASM):
        if not path.exists():
            raise SystemExit(f"bench: {path} missing (run `make bench`, which builds it)")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("bench: needs 2 CPUs (Envoy and the load generator on different cores)")
    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sizes = write_payloads(work)
    policy = bench_policy(work)
    shutil.copyfile(SCIMGUARD_WASM, work / "scimguard.wasm")
    LOADED_WASM[0] = work / "scimguard.wasm"
    wasm_bytes = LOADED_WASM[0].read_bytes()
    measurements = SMOKE_MEASUREMENTS if args.smoke else MEASUREMENTS
    if args.only:
        measurements = [m for m in measurements if m[0] in args.only.split(",")]
    variants = args.variants.split(",")
    diagnostics = [] if args.smoke or args.no_breakdown else DIAGNOSTIC_VARIANTS
    seconds_scale = args.seconds

    up_ports = {"admin": free_port(), "listen": free_port()}
    upstream = start_envoy("upstream", render_upstream(up_ports, work), up_ports, CLIENT_CPU, work / "upstream")
    envoys: dict[str, Envoy] = {}
    try:
        for variant in variants + diagnostics:
            ports = {"admin": free_port(), "listen": free_port()}
            config = render_under_test(variant, ports, up_ports["listen"], policy, work)
            envoys[variant] = start_envoy(variant, config, ports, ENVOY_CPU, work / variant)
        wait_ready([upstream, *envoys.values()])
        log(f"ready: upstream + {', '.join(variants + diagnostics)} ({time.monotonic() - started:.0f} s)")
        memory_idle = {v: e.memory() for v, e in envoys.items()}

        ceiling = {} if args.smoke else ceiling_check(upstream, work, 2)
        log("ceiling (upstream loaded directly): " + ", ".join(f"{k} {v['rps']:.0f}/s" for k, v in ceiling.items()))

        # Warm-up, discarded: every variant, every workload once (1 s), so the VMs have tiered up and
        # the connection pools and buffers exist.
        for variant in variants + diagnostics:
            for name in dict.fromkeys(m[0] for m in measurements):
                if (not args.smoke or name == measurements[0][0]) and (variant in variants or name == "entra_patch"):
                    run_wrk(f"http://127.0.0.1:{envoys[variant].port}", WORKLOADS[name], work, 8, 1)
        memory_warm = {v: e.memory() for v, e in envoys.items()}
        log(f"warm-up done ({time.monotonic() - started:.0f} s)")

        runs: list[dict[str, Any]] = []
        for round_no in range(args.rounds):
            for index, (name, mode, seconds) in enumerate(measurements):
                these = variants + (diagnostics if (name, mode) in BREAKDOWN else [])
                shift = (round_no + index) % len(these)
                for variant in these[shift:] + these[:shift]:
                    secs = max(1, round(seconds * seconds_scale))
                    result = measure(envoys[variant], upstream, WORKLOADS[name], mode, secs, work)
                    result.update(round=round_no, workload=name, mode=mode, variant=variant, seconds=secs)
                    runs.append(result)
                    if result["problems"]:
                        log(f"  PROBLEM {variant} {name} {mode}: {'; '.join(result['problems'])}")
            log(f"round {round_no + 1}/{args.rounds} done ({time.monotonic() - started:.0f} s, load {os.getloadavg()[0]:.2f})")
        memory_end = {v: e.memory() for v, e in envoys.items()}
        audit_durations = audit_duration_ms(work / "scimguard" / "audit.log")
        for envoy in envoys.values():
            envoy.stop()
        # Start-up and idle memory are the deployable variants' (the diagnostics load the same modules).
        ready_seconds = {} if args.smoke else startup(variants, policy, up_ports["listen"], work)
        log("startup: " + ", ".join(f"{k} {v['ready_s']:.2f} s" for k, v in ready_seconds.items()))
    finally:
        for envoy in envoys.values():
            envoy.stop()
        upstream.stop()

    hostcalls = {}
    if not args.no_hostcalls:
        hc_workloads = [WORKLOADS[n] for n in dict.fromkeys(m[0] for m in measurements)]
        for variant in ("wasm-empty", "wasm-hostcalls", "scimguard"):
            if variant in variants + diagnostics:
                hostcalls[variant] = count_host_calls(variant, policy, work, hc_workloads)
        log("host calls counted")
    native = [] if args.no_native or args.smoke else native_engine(False)
    # The engine bench in V8 builds and runs the engine bench again for wasm32 (about 45 s); the
    # filter-in-V8 figures below already give the guest's cost in V8, so it is asked for by flag.
    in_v8 = engine_in_v8() if args.engine_in_v8 and not args.smoke else []
    filter_v8 = [] if args.no_native or args.smoke else filter_in_v8(policy, work)
    filter_v8_memory = [] if args.no_native or args.smoke else filter_memory_in_v8(policy, work)
    load_after = list(os.getloadavg())

    results = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "make bench" if not args.smoke else "make test-bench-smoke",
        "machine": {**machine(load_before), "loadavg_after": load_after},
        "upstream": "a second Envoy (same binary, --concurrency 1, CPU 1 with the load generator): buffer filter + direct_response 200",
        "settings": {"rounds": args.rounds, "variants": variants, "diagnostic_variants": diagnostics,
                     "breakdown": sorted(list(m) for m in BREAKDOWN), "h1_connections": H1_CONNECTIONS,
                     "h2": "h2load -c4 -m8 (h2c, prior knowledge)", "c1": "wrk -t1 -c1",
                     "measurements": [list(m) for m in measurements], "seconds_scale": seconds_scale},
        "workloads": {n: {"method": w.method, "path": w.path, "label": w.label,
                          "bytes": sizes.get(w.body or "", 0)} for n, w in WORKLOADS.items()},
        "wasm_bytes": {"scimguard": len(wasm_bytes), "wasm-empty": EMPTY_WASM.stat().st_size},
        "wasm_sha256": hashlib.sha256(wasm_bytes).hexdigest(),
        "ceiling": ceiling,
        "memory": {"idle": memory_idle, "warm": memory_warm, "end": memory_end},
        "audit_duration_ms_blocked_bulk": audit_durations,
        "hostcalls": hostcalls,
        "native_engine": native,
        "engine_in_node_v8": in_v8,
        "filter_in_node_v8": filter_v8,
        "filter_memory_in_node_v8": filter_v8_memory,
        "startup_seconds": ready_seconds,
        "runs": runs,
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    # Imported here so a broken report never costs a finished measurement: the JSON is written first.
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=1) + "\n")
    import report  # noqa: PLC0415  (tests/bench/report.py)
    for note in report.attach_companions(results, args.out):
        log(note)
    (args.out / "latest.json").write_text(json.dumps(results, indent=1) + "\n")
    summary = report.write(results, args.out)
    problems = [r for r in runs if r["problems"]]
    log(f"wrote {args.out}/latest.json, latest.md, ratios.svg ({results['wall_seconds']:.0f} s); "
        f"{len(problems)} runs with problems")
    print(summary)
    return 1 if problems else 0


def audit_duration_ms(path: Path) -> dict[str, Any]:
    """duration_ms of the audit records of the blocked Bulk requests sent at one connection: the time
    from the request's start to `on_log` (receiving 1 MiB, normalising, judging, the local reply),
    measured by the filter itself in whole ms, before it builds the record."""
    values = []
    if path.exists():
        with open(path, errors="replace") as f:
            for line in f:
                if '"scimguard-bench/c1"' not in line or '"decision":"block"' not in line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("path") == "/scim/v2/Bulk" and isinstance(record.get("duration_ms"), int):
                    values.append(record["duration_ms"])
    if not values:
        return {"count": 0}
    values.sort()
    return {"count": len(values), "p50": values[len(values) // 2], "p99": values[min(len(values) - 1, len(values) * 99 // 100)],
            "max": values[-1]}


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, help="default 5 (1 with --smoke)")
    parser.add_argument("--seconds", type=float, default=1.0, help="scale every run's duration (default 1)")
    parser.add_argument("--smoke", action="store_true", help="1 round of 3 measurements, 1 s each; no native bench, no ceiling check")
    parser.add_argument("--only", help="comma-separated workloads")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--no-hostcalls", action="store_true")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the diagnostic variants")
    parser.add_argument("--no-native", action="store_true")
    parser.add_argument("--engine-in-v8", action="store_true",
                        help="also build the engine bench for wasm32-wasip1 and run it in Node's V8 (about 45 s more)")
    parser.add_argument("--payloads", type=Path, metavar="DIR",
                        help="only write the workloads' bodies and the bench policy into DIR (for filter-v8.mjs), then exit")
    parser.add_argument("--work", type=Path, default=ROOT / ".run" / "bench")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.smoke else 5
    if args.variants.split(",")[0] != "baseline" or "wasm-empty" not in args.variants:
        parser.error("--variants must start with baseline and include wasm-empty (ratios are against them)")
    return args


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
