"""The differential oracle: seeded SCIM writes applied to real implementations, compared with scimguard.

    run.py [--n N] [--seed S] [--impl scim2-server,scimmy,scim-patch] [--out DIR] [--findings K] [--check]
    run.py to-case FINDING.json [...]     # findings → a case file (tests/cases format) on stdout

Owns: one campaign. It generates N writes (generate.py), runs them all through one
`scimguard eval --detail` process with the default policy (plus the seed's group names as
`known_names`), applies each to every implementation from the same seed state (scim2-server in
process; scimmy and scim-patch in one long-lived Node process, node/harness.mjs), compares what
each changed with the reading (compare.py), writes up to K minimised findings per implementation
and class to DIR/findings/, and a report (DIR/report.json, DIR/report.md) that it also prints.
A write scimguard refuses (decision `block`, or an error) may do anything upstream: its gaps are
counted apart, as reading gaps of refused writes, and do not fail `--check`.
Does not: start Envoy (scimguard is the CLI, the same engine), or talk to the network.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

from compare import INFO_REASONS, Reading, disagreements, observe  # noqa: E402
from generate import GROUP_NAMES, SEED_STATE, writes  # noqa: E402

IMPLS = ("scim2-server", "scimmy", "scim-patch")
SCIMGUARD = ROOT / "target/release/scimguard"


# ---- scimguard ---------------------------------------------------------------------------------
def policy_file(out: Path, base: Path) -> Path:
    """The default policy with the seed's group names known (as a gateway that has learned them)."""
    policy = json.loads(base.read_text())
    policy.setdefault("privileged_groups", {}).setdefault("known_names", {}).update(GROUP_NAMES)
    path = out / "policy.json"
    path.write_text(json.dumps(policy, indent=1))
    return path


def evaluate(policy: Path, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One `scimguard eval --detail` process for the whole batch; one result per request, in order."""
    text = "".join(json.dumps(r) + "\n" for r in requests)
    proc = subprocess.run([str(SCIMGUARD), "eval", "--policy", str(policy), "--detail"], input=text,
                          capture_output=True, text=True, check=False)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if len(results) != len(requests):
        raise SystemExit(f"scimguard eval answered {len(results)} of {len(requests)} requests: {proc.stderr[:2000]}")
    return results


# ---- implementations ---------------------------------------------------------------------------
class Node:
    """node/harness.mjs, one process for scimmy and scim-patch, lines in, lines out."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["node", str(HERE / "node/harness.mjs")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self.lock = threading.Lock()

    def apply_many(self, impl: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        assert self.proc.stdin and self.proc.stdout
        seed = copy.deepcopy(SEED_STATE)

        def feed() -> None:
            for r in requests:
                self.proc.stdin.write(json.dumps({"impl": impl, "state": seed, "request": r}) + "\n")
            self.proc.stdin.flush()

        with self.lock:
            writer = threading.Thread(target=feed)
            writer.start()
            results = [json.loads(self.proc.stdout.readline()) for _ in requests]
            writer.join()
        return results

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


class Implementations:
    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.node = Node() if any(n != "scim2-server" for n in names) else None
        self.scim2 = None
        if "scim2-server" in names:
            from scim2server import Scim2Server  # noqa: PLC0415 - needs the project .venv

            self.scim2 = Scim2Server()
            self.scim2.seed(SEED_STATE)
        self.seed_states: dict[str, dict[str, Any]] = {}

    def before(self, impl: str) -> dict[str, Any]:
        """The seed as the implementation holds it: scim2-server's read back from its storage; the
        Node ones hold the seed as given (each write starts from it)."""
        if impl not in self.seed_states:
            fresh = self.scim2.state() if impl == "scim2-server" and self.scim2 else copy.deepcopy(SEED_STATE)
            self.seed_states[impl] = fresh
        return self.seed_states[impl]

    def apply_many(self, impl: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if impl == "scim2-server" and self.scim2:
            return [self.scim2.apply(r) for r in requests]
        assert self.node
        return self.node.apply_many(impl, requests)

    def close(self) -> None:
        if self.node:
            self.node.close()


# ---- one campaign ------------------------------------------------------------------------------
def applied(result: dict[str, Any]) -> bool:
    status = result.get("status")
    return isinstance(status, int) and status < 400 and result.get("state") is not None


def judge(before: dict[str, Any], request: dict[str, Any], result: dict[str, Any],
          evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    if result.get("state") is None:
        return []
    return disagreements(observe(before, result["state"], request, result.get("response")), Reading(evaluation))


def campaign(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    (out / "findings").mkdir(parents=True, exist_ok=True)
    for old in (out / "findings").glob("*.json"):
        old.unlink()
    policy = policy_file(out, Path(args.policy))
    started = time.monotonic()
    generated = writes(args.seed, args.n)
    requests = [w["request"] for w in generated]
    evaluations = evaluate(policy, requests)
    impls = Implementations(args.impl)
    report: dict[str, Any] = {"seed": args.seed, "n": args.n, "policy": args.policy, "implementations": {}}
    try:
        for impl in args.impl:
            t0 = time.monotonic()
            print(f"differential: {impl}: applying {len(requests)} writes", file=sys.stderr, flush=True)
            results = impls.apply_many(impl, requests)
            before = impls.before(impl)
            stats = Counter()
            classes: dict[str, Counter[str]] = {"allowed": Counter(), "refused": Counter(), "info": Counter()}
            examples: dict[tuple[str, str], list[int]] = defaultdict(list)
            for w, ev, res in zip(generated, evaluations, results):
                stats["generated"] += 1
                if res.get("status") is None:
                    stats["not_applicable"] += 1
                    continue
                stats["applied" if applied(res) else "rejected_by_implementation"] += 1
                reading = Reading(ev)
                stats["refused_by_scimguard"] += reading.refused
                if ev.get("error") is not None:
                    # Refused unread (syntax, duplicate keys, a non-boolean `active`…): no reading
                    # to compare, and whatever the implementation does with it never passes.
                    stats["refused_by_scimguard_unread"] += 1
                    continue
                side = "refused" if reading.refused else "allowed"
                found = judge(before, w["request"], res, ev)
                serious = {d["class"] for d in found if d["class"].split(":")[1] not in INFO_REASONS}
                if serious:
                    stats[f"writes_with_disagreement_{side}"] += 1
                for cls in sorted({d["class"] for d in found}):
                    bucket = side if cls in serious else "info"
                    classes[bucket][cls] += 1
                    examples[(bucket, cls)].append(w["n"])
            stats["seconds"] = round(time.monotonic() - t0, 1)
            report["implementations"][impl] = {"counts": dict(stats), **{k: dict(v) for k, v in classes.items()}}
            print(f"differential: {impl}: minimising findings", file=sys.stderr, flush=True)
            write_findings(out, impl, impls, policy, generated, evaluations, results, before, examples, args.findings)
    finally:
        impls.close()
    report["seconds"] = round(time.monotonic() - started, 1)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    md = markdown(report)
    (out / "report.md").write_text(md)
    print(md)
    return report


# ---- findings ----------------------------------------------------------------------------------
def write_findings(out: Path, impl: str, impls: Implementations, policy: Path, generated: list[dict[str, Any]],
                   evaluations: list[dict[str, Any]], results: list[dict[str, Any]], before: dict[str, Any],
                   examples: dict[tuple[str, str], list[int]], per_class: int) -> None:
    for (side, cls), ns in sorted(examples.items()):
        for i, n in enumerate(ns[:per_class]):
            request = minimise(impl, impls, policy, before, generated[n]["request"], cls, side)
            ev = evaluate(policy, [request])[0]
            res = impls.apply_many(impl, [request])[0]
            found = judge(before, request, res, ev)
            finding = {
                "implementation": impl, "class": cls, "scimguard": side, "seed_write": n,
                "kind": generated[n]["kind"], "request": request, "original_request": generated[n]["request"],
                "disagreements": found, "status": res.get("status"), "error": res.get("error"),
                "state_before": touched(before, before, res.get("state")),
                "state_after": touched(res.get("state"), before, res.get("state")),
                "reading": {k: ev.get(k) for k in ("decision", "rules", "event_details", "changes", "error")},
                "group_names": GROUP_NAMES,
            }
            name = f"{impl}--{side}--{cls.replace(':', '-')}--{i}.json"
            (out / "findings" / name).write_text(json.dumps(finding, indent=1, ensure_ascii=False))


def touched(state: dict[str, Any] | None, before: dict[str, Any], after: dict[str, Any] | None) -> dict[str, Any]:
    """Only the resources that differ between before and after (the rest is SEED_STATE)."""
    if not state or not after:
        return {}
    keep: dict[str, Any] = {}
    for rtype in ("Users", "Groups"):
        for rid in set(before[rtype]) | set(after[rtype]):
            if _strip(before[rtype].get(rid)) != _strip(after[rtype].get(rid)) and rid in state[rtype]:
                keep.setdefault(rtype, {})[rid] = state[rtype][rid]
    return keep


def _strip(resource: Any) -> Any:
    return {k: v for k, v in resource.items() if k != "meta"} if isinstance(resource, dict) else resource


def minimise(impl: str, impls: Implementations, policy: Path, before: dict[str, Any], request: dict[str, Any],
             cls: str, side: str) -> dict[str, Any]:
    """Greedily drops Bulk operations, PATCH operations, body keys, value keys and list entries while
    the write still shows the same disagreement class on the same side."""
    current = request
    for _ in range(40):
        # One round: every one-element-smaller variant, judged in one eval process and one batch.
        candidates = shrinks(current)
        if not candidates:
            return current
        evaluations = evaluate(policy, candidates)
        results = impls.apply_many(impl, candidates)
        for candidate, ev, res in zip(candidates, evaluations, results):
            if ev.get("error") is not None or side not in ("info", "refused" if Reading(ev).refused else "allowed"):
                continue
            if any(d["class"] == cls for d in judge(before, candidate, res, ev)):
                current = candidate
                break
        else:
            return current
    return current


def shrinks(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Smaller variants of a request: one element less somewhere in its body."""
    out = []
    body = request.get("body")

    def paths(v: Any, at: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        found = []
        if isinstance(v, dict):
            for k, x in v.items():
                if k not in ("schemas", "method", "path", "op", "Op") or at == ():
                    found.append(at + (k,))
                found += paths(x, at + (k,))
        elif isinstance(v, list) and len(v) > 1:
            for i, x in enumerate(v):
                found.append(at + (i,))
                found += paths(x, at + (i,))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                found += paths(x, at + (i,))
        return found

    for p in paths(body, ()):
        if p and p[0] == "schemas":
            continue
        candidate = copy.deepcopy(request)
        node = candidate["body"]
        for step in p[:-1]:
            node = node[step]
        del node[p[-1]]
        out.append(candidate)
    return out


# ---- report ------------------------------------------------------------------------------------
def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Differential campaign: seed {report['seed']}, {report['n']} writes, {report.get('seconds', '?')} s", ""]
    for impl, r in report["implementations"].items():
        c = r["counts"]
        lines.append(f"## {impl}")
        lines.append("")
        lines.append(", ".join(f"{k} {v}" for k, v in c.items()))
        lines.append("")
        for side, title in (("allowed", "FAILURES: allowed by scimguard, change not covered by its reading"),
                            ("refused", "reading gaps of writes scimguard blocked by a rule (not failures)"),
                            ("info", "covered, but not as the last write (informational, either side)")):
            count = r["counts"].get(f"writes_with_disagreement_{side}", sum(r[side].values()))
            lines.append(f"{title}: {count} writes")
            for cls, k in sorted(r[side].items(), key=lambda x: -x[1]):
                lines.append(f"  {k:6d}  {cls}")
            lines.append("")
    return "\n".join(lines)


# ---- findings → case files ---------------------------------------------------------------------
EXPECTED_EVENT = {
    "member_added": "group_member_added", "member_removed": "group_member_removed",
    "group_deleted": "group_deleted", "user_deleted": "user_deleted", "active": None,
    "userName": "identity_changed", "externalId": "identity_changed", "emails": "identity_changed",
    "password": "credential_changed", "roles": "role_changed", "entitlements": "entitlement_changed",
    "user_groups": "group_member_added",
}


def to_case(finding: dict[str, Any]) -> dict[str, Any]:
    """A draft case in tests/cases format. It states what the implementation did: today's event kinds
    plus the ones its change implies (today's engine fails it), and `block` when the write touches
    the privileged group or names a privileged one. A draft: review the expectation (a fix may
    rightly refuse the write instead) before committing it under tests/cases/."""
    request = finding["request"]
    # `events` in a case is the exact set: today's kinds plus the ones the implementation's change implies.
    events = {e["type"] for e in finding["reading"].get("event_details") or []}
    for d in finding["disagreements"]:
        kind = EXPECTED_EVENT.get(d["what"])
        if d["what"] == "active":
            kind = "user_deprovisioned" if d.get("value") is False else "user_reactivated"
        if kind and not (kind == "identity_changed" and request["method"] != "PATCH"):
            events.add(kind)
    privileged = any(d.get("resource") == "g2" or d.get("group") == "g2" or
                     (d["what"] == "group_renamed" and d.get("value") in ("Administrators", "Domain Admins"))
                     for d in finding["disagreements"])
    expect: dict[str, Any] = {"decision": "block" if privileged else finding["reading"]["decision"]}
    if events:
        expect["events"] = sorted(events)
    classes = ", ".join(sorted({d["class"] for d in finding["disagreements"]}))
    return {
        "name": f"differential ({finding['implementation']}): {classes}",
        "request": request,
        "facts": {"group_names": finding.get("group_names", GROUP_NAMES)},
        "expect": expect,
    }


def cases_main(files: list[str]) -> None:
    cases = [to_case(json.loads(Path(f).read_text())) for f in files]
    doc = {"description": "DRAFT cases from differential findings (tests/differential/run.py to-case); not run from "
                          "here. Review each expectation (a fix may rightly refuse the write; a wrong value is not "
                          "expressible as an event kind), then move it under tests/cases/.",
           "policy": "../../policies/default.json", "cases": cases}
    print(json.dumps(doc, indent=1, ensure_ascii=False))


def main(argv: list[str]) -> int:
    if argv[:1] == ["to-case"]:
        cases_main(argv[1:])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--impl", type=lambda s: s.split(","), default=list(IMPLS))
    p.add_argument("--out", default=str(ROOT / ".run/differential"))
    p.add_argument("--policy", default=str(ROOT / "policies/default.json"))
    p.add_argument("--findings", type=int, default=3, help="minimised findings written per class and side")
    p.add_argument("--check", action="store_true", help="exit 1 on any failure (a disagreement on an allowed write)")
    args = p.parse_args(argv)
    for impl in args.impl:
        if impl not in IMPLS:
            p.error(f"unknown implementation `{impl}` (known: {', '.join(IMPLS)})")
    report = campaign(args)
    failures = sum(r["counts"].get("writes_with_disagreement_allowed", 0) for r in report["implementations"].values())
    if args.check and failures:
        print(f"differential: FAILED: {failures} allowed writes changed more than scimguard read "
              f"(findings: {args.out}/findings/)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
