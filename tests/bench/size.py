"""The `.wasm` size budget, measured: what each optimisation level gives in bytes and in µs/request,
and which parts of the module the bytes are.

For each level the filter is built exactly as `make wasm WASM_OPT_LEVEL=<level>` builds it (rustc
opt-level, then binaryen's wasm-opt with the Makefile's flags), then timed in V8 with
tests/bench/filter-v8.mjs (the guest's own work per request in CPU time, medians of 5 runs after
warm-up). The breakdown comes from the shipped level rebuilt with its name section kept, measured by
twiggy (`twiggy top`: each function body's and data segment's own bytes), grouped by the first crate
(and for scimguard the module) that each symbol names. The name section itself is not shipped and not
counted.

    python3 tests/bench/size.py --twiggy PATH [--out tests/bench/results]

Writes `size.json` into the results folder; bench.py's report includes it when it was measured on
the same shipped `.wasm`. About 3 minutes here (three release builds).
"""

from __future__ import annotations

import argparse
import collections
import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import bench

LEVELS = ["3", "s", "z"]
SHIPPED = "3"
TARGET = "wasm32-wasip1"
WORKLOADS = ["scim_get", "entra_patch", "group_patch_100", "bulk_100kib"]
# The module's own parts are shown by module; dependencies by crate.
OWN_MODULES = re.compile(r"^scimguard::(scim|policy|audit|engine|filter)(?:::(\w+))?")


def wasm_opt_flags(level: str) -> list[str]:
    """The Makefile's WASM_OPT_FLAGS for `level` (read from `make -n`, so the two cannot drift)."""
    dry = subprocess.run(["make", "-n", "-s", "wasm", f"WASM_OPT_LEVEL={level}"], cwd=bench.ROOT,
                         capture_output=True, text=True, check=True).stdout
    line = next((l for l in dry.splitlines() if l.startswith("wasm-opt ")), None)
    if line is None:
        raise SystemExit("size: `make -n wasm` shows no wasm-opt command; update tests/bench/size.py")
    words = line.split()
    # wasm-opt FLAGS... IN -o OUT && mv ...
    return words[1:words.index("-o") - 1]


def build(level: str, work: Path, keep_names: bool) -> Path:
    target_dir = bench.ROOT / "target" / "bench-size" / level
    env = dict(os.environ, CARGO_PROFILE_RELEASE_OPT_LEVEL=level,
               CARGO_PROFILE_RELEASE_STRIP="false" if keep_names else "true")
    subprocess.run(["cargo", "rustc", "--quiet", "--release", "--locked", "--target", TARGET, "--lib",
                    "--no-default-features", "--features", "filter", "--crate-type", "cdylib",
                    "--target-dir", str(target_dir)], cwd=bench.ROOT, env=env, check=True)
    raw = target_dir / TARGET / "release" / "scimguard.wasm"
    out = work / f"scimguard-{level}{'-names' if keep_names else ''}.wasm"
    names = ["-g", "--strip-dwarf"] if keep_names else []
    subprocess.run(["wasm-opt", *wasm_opt_flags(level), *names, str(raw), "-o", str(out)], check=True,
                   stderr=subprocess.DEVNULL if keep_names else None)
    return out


def v8_us(wasm: Path, work: Path) -> dict[str, float]:
    # 2 s: each workload's warm-up too (V8 compiles the module in the background for over a second,
    # and that time would land on the first workload); --cpu: a busy neighbour's time is not counted.
    lines = bench.filter_v8(wasm, work / "bench-policy.json", work, "FILTER_V8",
                            "--only", ",".join(WORKLOADS), "--seconds", "2", "--cpu")
    if lines is None:
        raise SystemExit(f"size: could not time {wasm} in V8 (see above)")
    return {d["workload"]: d["us_per_request"] for d in lines}


def part_of(name: str) -> str:
    """The part a twiggy item belongs to: `scimguard::<module>`, a crate, or a kind of section."""
    if name.startswith("data segment"):
        return "data (string literals, tables)"
    if name.startswith(("custom section", '"function names"', "type[", "import ", "export ", "table[",
                        "elem[", "global[", "memory[", "code section headers")):
        return "wasm structure (types, imports, exports, tables)"
    if name.startswith("proxy_on_") or name == "proxy_abi_version_0_2_1":
        return "proxy_wasm"  # the ABI's exported callbacks
    if name.startswith("byn$mgfn-shared$"):
        # wasm-opt's merge of similar functions keeps the first one's mangled name: `_ZN9hashbrown3raw...`
        # or `_ZN71_$LT$core..hash..`; its crate is the first path segment.
        return mangled_crate(name) or "other"
    if re.match(r"^<(char|u8|u16|u32|u64|usize|i64|f64|str|bool)>::", name):
        return "core"
    # The first path `a::b` in the symbol: for `<T as Trait>::f` and generics that is T's crate.
    path = re.search(r"([a-z_][a-z0-9_]*)(?:\[[0-9a-f]+\])?::([A-Za-z_][A-Za-z0-9_]*)", name)
    if not path:
        # wasi-libc's functions (dlmalloc behind Rust's allocator, memcpy, ...) carry C names.
        return "libc (malloc, memcpy...)" if re.match(r"^[a-z_][a-z0-9_]*$", name) else "other"
    crate = path.group(1)
    if crate == "scimguard":
        own = OWN_MODULES.match(name[path.start():])
        return f"scimguard::{own.group(1)}" if own else "scimguard (other)"
    return crate


def mangled_crate(symbol: str) -> str | None:
    """The first crate a mangled Rust symbol names (legacy `_ZN<len><segment>...` or v0 `...Cs<hash>_<len><crate>`)."""
    legacy = re.search(r"_ZN(\d+)", symbol)
    if legacy:
        segment = symbol[legacy.end():legacy.end() + int(legacy.group(1))]
        inner = re.search(r"([a-z_][a-z0-9_]*)\.\.", segment)  # `_$LT$core..hash..sip..Hasher...`
        return inner.group(1) if inner else segment.lstrip("_") or None
    v0 = re.search(r"Cs[0-9A-Za-z]+_(\d+)", symbol)
    if v0:
        return symbol[v0.end():v0.end() + int(v0.group(1))] or None
    return None


def breakdown(twiggy: Path, wasm: Path) -> list[dict[str, Any]]:
    text = subprocess.run([str(twiggy), "top", "-n", "1000000", "--format", "csv", str(wasm)],
                          capture_output=True, text=True, check=True).stdout
    parts: collections.Counter[str] = collections.Counter()
    for row in csv.DictReader(io.StringIO(text)):
        name = row["Name"]
        if name.startswith(("custom section", "Σ")) or name.endswith("subsection"):
            continue  # the name section and debug sections are not shipped
        parts[part_of(name)] += int(row["ShallowSize"])
    return [{"part": p, "bytes": b} for p, b in parts.most_common()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--twiggy", type=Path, required=True, help="the twiggy binary (make bench-size installs it)")
    parser.add_argument("--out", type=Path, default=bench.HERE / "results")
    args = parser.parse_args(argv)
    started = time.monotonic()
    work = bench.ROOT / ".run" / "bench-size"
    work.mkdir(parents=True, exist_ok=True)
    bench.write_payloads(work)
    bench.bench_policy(work)

    levels = []
    for level in LEVELS:
        wasm = build(level, work, keep_names=False)
        levels.append({"opt_level": level, "bytes": wasm.stat().st_size,
                       "sha256": hashlib.sha256(wasm.read_bytes()).hexdigest(), "us_per_request": v8_us(wasm, work)})
        print(f"size: opt-level {level}: {levels[-1]['bytes']:,} bytes, {levels[-1]['us_per_request']}", file=sys.stderr)
    named = build(SHIPPED, work, keep_names=True)
    parts = breakdown(args.twiggy, named)
    shipped = next(l for l in levels if l["opt_level"] == SHIPPED)
    result = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "make bench-size",
        "shipped_opt_level": SHIPPED,
        "wasm_sha256": shipped["sha256"],
        "levels": levels,
        "empty_filter_bytes": bench.EMPTY_WASM.stat().st_size if bench.EMPTY_WASM.exists() else None,
        "parts_of_shipped": parts,
        "wall_seconds": round(time.monotonic() - started),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "size.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"size: wrote {args.out / 'size.json'} in {result['wall_seconds']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
