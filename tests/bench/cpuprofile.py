"""Summarises a V8 `.cpuprofile` (from `node --cpu-prof`) by function: self and inclusive share of samples,
Rust symbols demangled enough to read. Used by `make bench-profile` on the filter under tests/bench/filter-v8.mjs.

    python3 tests/bench/cpuprofile.py PROFILE.cpuprofile [--top N] [--match REGEX]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path


def readable(name: str) -> str:
    """`_ZN9scimguard4scim8endpoint8classify17h…E` -> `scimguard::scim::endpoint::classify` (legacy mangling);
    v0 symbols and JS names are returned as they are, minus the hash."""
    m = re.fullmatch(r"_ZN((?:\d+[^\d].*?)+)17h[0-9a-f]{16}E", name)
    if not m:
        return name or "(anonymous)"
    parts, rest = [], m.group(1)
    while rest and rest[0].isdigit():
        n = re.match(r"\d+", rest)
        if not n:
            break
        length = int(n.group(0))
        start = len(n.group(0))
        parts.append(rest[start:start + length])
        rest = rest[start + length:]
    text = "::".join(parts).removeprefix("_")
    for code, char in (("$LT$", "<"), ("$GT$", ">"), ("$RF$", "&"), ("$u20$", " "), ("$C$", ","), ("..", "::"), ("$u7b$", "{"), ("$u7d$", "}")):
        text = text.replace(code, char)
    return text


def summarise(profile: dict, top: int, match: str | None) -> list[str]:
    nodes = {n["id"]: n for n in profile["nodes"]}
    parent = {c: n["id"] for n in profile["nodes"] for c in n.get("children", [])}
    samples = Counter(profile["samples"])
    total = sum(samples.values()) or 1
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for node_id, count in samples.items():
        self_time[readable(nodes[node_id]["callFrame"]["functionName"])] += count
        seen: set[str] = set()
        current: int | None = node_id
        while current is not None:
            name = readable(nodes[current]["callFrame"]["functionName"])
            if name not in seen:
                inclusive[name] += count
                seen.add(name)
            current = parent.get(current)
    pattern = re.compile(match) if match else None
    lines = [f"{total} samples; inclusive % / self % per function (top {top})"]
    for name, count in inclusive.most_common():
        if pattern and not pattern.search(name):
            continue
        lines.append(f"{100 * count / total:6.1f} {100 * self_time[name] / total:6.1f}  {name[:140]}")
        if len(lines) > top:
            break
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match")
    args = parser.parse_args()
    print("\n".join(summarise(json.loads(args.profile.read_text()), args.top, args.match)))


if __name__ == "__main__":
    main()
