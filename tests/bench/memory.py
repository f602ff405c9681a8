"""Idle resident memory of Envoy with each given `.wasm`, beside the baseline and the empty filter:
what a module costs at rest, and where in the process it sits.

Each variant's Envoy is started alone with the bench's configuration (bench.py renders it: the same
config, one worker unless --workers), waited for until `/ready` and SETTLE seconds more, measured,
and stopped; variants are started in rotated order, REPEAT times, and medians are reported. Per
start it reads:
  - VmRSS, RssAnon, RssFile (/proc/<pid>/status);
  - tcmalloc's own counters (admin `/memory`): live bytes, free pages kept, per-CPU/thread caches;
  - the anonymous mappings by what they are (/proc/<pid>/smaps): executable ones (V8's code:
    the Wasm code space and its builtins), the committed part of a Wasm linear memory (a read-write
    mapping followed by the guard region V8 reserves for it, at least 1 GiB of PROT_NONE), and the
    rest (tcmalloc's heap, V8's isolate heaps, stacks).

    python3 tests/bench/memory.py --wasm shipped=target/wasm32-wasip1/release/scimguard.wasm \
        [--wasm z=other.wasm ...] [--repeat 3] [--workers 1] [--release-bytes N] [--out FILE]

Writes JSON (stdout, or --out) and prints one line per variant. Needs no upstream: nothing is
sent, the figures are the process at rest after start-up.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import bench

SETTLE_S = 2.0
GUARD_MIN = 1 << 30  # a PROT_NONE mapping this large follows each Wasm memory (V8's guard region)


def smaps_anon(pid: int) -> dict[str, int]:
    """Resident bytes of the anonymous mappings, split into code, Wasm memory and the rest."""
    maps: list[tuple[str, int, int, bool]] = []  # perms, size, rss, anonymous
    perms, size, anon = "", 0, False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if "-" in head[0] and len(head) >= 5 and ":" in head[3]:
            start, end = (int(x, 16) for x in head[0].split("-"))
            perms, size = head[1], end - start
            anon = len(head) < 6 or head[5].startswith("[heap") or head[5].startswith("[anon")
        elif head[0] == "Rss:":
            maps.append((perms, size, int(head[1]) * 1024, anon))
    out = {"anon_code": 0, "anon_wasm_memory": 0, "anon_other": 0, "wasm_memories": 0}
    for i, (perms, size, rss, anonymous) in enumerate(maps):
        if not anonymous:
            continue
        following = maps[i + 1] if i + 1 < len(maps) else None
        if "x" in perms:
            out["anon_code"] += rss
        elif perms.startswith("rw") and following and following[0].startswith("---") and following[1] >= GUARD_MIN:
            out["anon_wasm_memory"] += rss
            out["wasm_memories"] += 1
        else:
            out["anon_other"] += rss
    return out


def render(variant: str, label: str, wasm: Path | None, policy: Path, work: Path,
           release_bytes: int) -> tuple[Path, dict[str, int]]:
    """bench.py's config for `variant` (with `wasm` as scimguard's module), plus the optional
    tcmalloc release (bootstrap `memory_allocator_manager`)."""
    ports = {"admin": bench.free_port(), "listen": bench.free_port()}
    if wasm is not None:
        bench.LOADED_WASM[0] = wasm
    config = bench.render_under_test(variant, ports, bench.free_port(), policy, work / label)
    if release_bytes:
        text = config.read_text()
        text += ("memory_allocator_manager:\n"
                 f"  bytes_to_release: {release_bytes}\n  memory_release_interval: 1s\n")
        config.write_text(text)
    return config, ports


def measure_once(variant: str, label: str, wasm: Path | None, policy: Path, work: Path, workers: int,
                 release_bytes: int, settle: float) -> dict[str, int]:
    config, ports = render(variant, label, wasm, policy, work, release_bytes)
    envoy = bench.start_envoy(f"memory-{label}", config, ports, bench.ENVOY_CPU, work / label / "run",
                              concurrency=workers)
    try:
        bench.wait_ready([envoy], timeout=90)
        time.sleep(settle)
        found = envoy.memory()
        found.update(smaps_anon(envoy.pid))
        return found
    finally:
        envoy.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wasm", action="append", default=[], metavar="LABEL=PATH",
                        help="a scimguard .wasm to measure (repeatable)")
    parser.add_argument("--empty", type=Path, default=bench.EMPTY_WASM, help="the empty filter (the floor)")
    parser.add_argument("--no-references", action="store_true", help="skip the baseline and the empty filter")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--settle", type=float, default=SETTLE_S, help="seconds after /ready before measuring")
    parser.add_argument("--release-bytes", type=int, default=0,
                        help="add memory_allocator_manager (tcmalloc release of N bytes per second)")
    parser.add_argument("--work", type=Path, default=bench.ROOT / ".run" / "bench-memory")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    args.work.mkdir(parents=True, exist_ok=True)
    policy = bench.bench_policy(args.work)
    bench.EMPTY_WASM = args.empty.resolve()
    variants: list[tuple[str, str, Path | None]] = []
    if not args.no_references:
        variants += [("baseline", "baseline", None), ("wasm-empty", "wasm-empty", None)]
    for item in args.wasm:
        label, _, path = item.partition("=")
        variants.append(("scimguard", label, Path(path).resolve()))

    runs: dict[str, list[dict[str, int]]] = {label: [] for _, label, _ in variants}
    for round_ in range(args.repeat):
        rotated = variants[round_ % len(variants):] + variants[:round_ % len(variants)]
        for variant, label, wasm in rotated:
            runs[label].append(measure_once(variant, label, wasm, policy, args.work, args.workers,
                                            args.release_bytes, args.settle))
    medians = {label: {k: int(statistics.median(r[k] for r in rs)) for k in rs[0]} for label, rs in runs.items()}
    base = medians.get("baseline")
    result: dict[str, Any] = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "workers": args.workers, "repeat": args.repeat, "settle_s": args.settle,
        "release_bytes": args.release_bytes,
        "wasm": {label: {"bytes": w.stat().st_size, "sha256": hashlib.sha256(w.read_bytes()).hexdigest()}
                 for _, label, w in variants if w},
        "median": medians,
        "runs_vm_rss": {label: [r["VmRSS"] for r in rs] for label, rs in runs.items()},
    }
    mb = lambda b: f"{b / 1e6:6.1f}"  # noqa: E731
    for label, m in medians.items():
        over = f" (+{mb(m['VmRSS'] - base['VmRSS']).strip()} MB over baseline)" if base and label != "baseline" else ""
        print(f"memory: {label:16} VmRSS {mb(m['VmRSS'])} MB{over}  anon {mb(m['RssAnon'])} file {mb(m['RssFile'])}"
              f"  tcmalloc: live {mb(m['tcmalloc_allocated'])} free {mb(m['tcmalloc_pageheap_free'])}"
              f" caches {mb(m['tcmalloc_total_thread_cache'])}  code {mb(m['anon_code'])}"
              f" wasm-mem {mb(m['anon_wasm_memory'])} ({m['wasm_memories']})", file=sys.stderr)
    text = json.dumps(result, indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
