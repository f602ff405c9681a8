"""Guest µs per request of several builds of the filter, side by side in V8: which build is faster.

Each round runs tests/bench/filter-v8.mjs once per `.wasm` (a fresh node each time, on Envoy's
core), in rotated order, so a neighbour's load falls on every build alike, timed by the process's
CPU time (filter-v8.mjs --cpu: time the core was held by a neighbour is not counted); the figure per
build and workload is the median over the rounds of filter-v8.mjs's own median. Node runs with `--no-liftoff`
by default, as Envoy's V8 does (every function compiled by TurboFan up front, no tier-up feedback).

    python3 tests/bench/interleave.py A=a.wasm B=b.wasm [--rounds 5] [--only entra_patch,group_patch_100]

Prints one line per build with its bytes and medians (and the ratio to the first build), and the
JSON on stdout (or --out).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import bench


def run(wasm: Path, policy: Path, work: Path, only: str, seconds: float, node_flags: list[str]) -> dict[str, float]:
    done = subprocess.run(["taskset", "-c", bench.ENVOY_CPU, "node", "--no-warnings", *node_flags,
                           str(bench.HERE / "filter-v8.mjs"), str(wasm), str(policy), str(work),
                           "--only", only, "--seconds", str(seconds), "--cpu"],
                          capture_output=True, text=True, cwd=bench.ROOT, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"interleave: filter-v8.mjs failed on {wasm}:\n{done.stderr[-1500:]}")
    lines = [json.loads(l.split(" ", 1)[1]) for l in done.stdout.splitlines() if l.startswith("FILTER_V8 ")]
    return {d["workload"]: d["us_per_request"] for d in lines}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("builds", nargs="+", metavar="LABEL=PATH")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="entra_patch,group_patch_100")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="filter-v8.mjs --seconds per run, also its warm-up (V8 compiles the module in the "
                             "background for over a second, which would land on the first workload)")
    parser.add_argument("--liftoff", action="store_true", help="let node tier up from Liftoff (its default)")
    parser.add_argument("--work", type=Path, default=bench.ROOT / ".run" / "bench-interleave")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    args.work.mkdir(parents=True, exist_ok=True)
    bench.write_payloads(args.work)
    policy = bench.bench_policy(args.work)
    builds = [(label, Path(path).resolve()) for label, _, path in (b.partition("=") for b in args.builds)]
    node_flags = [] if args.liftoff else ["--no-liftoff"]
    samples: dict[str, list[dict[str, float]]] = {label: [] for label, _ in builds}
    for round_ in range(args.rounds):
        shift = round_ % len(builds)
        for label, wasm in builds[shift:] + builds[:shift]:
            samples[label].append(run(wasm, policy, args.work, args.only, args.seconds, node_flags))
    workloads = args.only.split(",")
    medians = {label: {w: round(statistics.median(s[w] for s in runs), 2) for w in workloads}
               for label, runs in samples.items()}
    first = medians[builds[0][0]]
    for label, wasm in builds:
        cells = "  ".join(f"{w} {medians[label][w]:7.2f} µs ({medians[label][w] / first[w]:.3f}×)" for w in workloads)
        print(f"interleave: {label:14} {wasm.stat().st_size:8,} B  {cells}", file=sys.stderr)
    result: dict[str, Any] = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "node_flags": node_flags, "rounds": args.rounds, "seconds": args.seconds,
        "builds": {label: {"path": str(w), "bytes": w.stat().st_size, "us_per_request": medians[label],
                           "runs": samples[label]} for label, w in builds},
    }
    text = json.dumps(result, indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
