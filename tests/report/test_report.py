#!/usr/bin/env python3
"""`scimguard report` on a generated trail: every section's numbers against the generator's.

Usage: test_report.py [--bin target/debug/scimguard] [--keep DIR]
Prints one line per check and a closing `N passed, N failed`; exit 1 on any failure.
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def eq(what, got, want):
    if got != want:
        diff = ""
        if isinstance(got, dict) and isinstance(want, dict):
            keys = sorted(set(got) | set(want), key=str)
            bad = [(k, got.get(k), want.get(k)) for k in keys if got.get(k) != want.get(k)]
            diff = f" ({len(bad)} differ; first: {bad[:3]})"
        elif isinstance(got, (list, set)) and isinstance(want, (list, set)):
            diff = f" (only in report: {sorted(set(got) - set(want))[:5]}, only expected: {sorted(set(want) - set(got))[:5]})"
        else:
            diff = f": got {got!r}, want {want!r}"
        raise AssertionError(f"{what}{diff}")


class Ctx:
    def __init__(self, binary, trail):
        self.binary = binary
        self.trail = trail
        self.expected = json.loads((trail / "expected.json").read_text())
        self.files = [str(trail / f) for f in self.expected["files"]]
        self.runs = {}

    def run(self, case, fmt="json"):
        if (case, fmt) not in self.runs:
            args = [self.binary, "report", "--now", self.expected["now"], "--stale-after", self.expected["stale_after"],
                    "--format", fmt]
            if case == "since":
                args += ["--since", self.expected["since"]]
            p = subprocess.run(args + self.files, capture_output=True, text=True, check=False)
            self.runs[(case, fmt)] = p
        return self.runs[(case, fmt)]

    def report(self, case):
        p = self.run(case)
        if p.returncode != 0:
            raise AssertionError(f"exit {p.returncode}: {p.stderr[-500:]}")
        return json.loads(p.stdout)


def both(fn):
    """Runs a check for the whole trail and for `--since`."""
    def run(ctx):
        for case in ("all", "since"):
            fn(ctx, case, ctx.report(case), ctx.expected["cases"][case])
    run.__name__ = fn.__name__
    return check(run)


@check
def input_counts(ctx):
    got = ctx.report("all")["input"]
    want = ctx.expected["input"]
    for k in ("lines", "scim_writes", "access_events", "duplicates", "foreign_lines", "malformed_lines"):
        eq(f"input.{k}", got[k], want[k])


@check
def malformed_lines_named_on_stderr(ctx):
    err = ctx.run("all").stderr
    for m in ctx.expected["input"]["malformed"]:
        place = f"{ctx.trail / m['file']}:{m['line']}: skipped:"
        if place not in err:
            raise AssertionError(f"stderr lacks `{place}` ({m['why']}); stderr: {err[:800]}")
    places = {(Path(x["source"]).name, x["line"]) for x in ctx.report("all")["input"]["malformed"]}
    eq("malformed samples in the report", places, {(m["file"], m["line"]) for m in ctx.expected["input"]["malformed"]})


@both
def summary(ctx, case, got, want):
    eq(f"[{case}] summary", got["summary"], want["summary"])


@both
def lifecycle_events_by_kind(ctx, case, got, want):
    events = {k["kind"]: {o: k[o] for o in ("applied", "blocked", "failed", "unknown")} for k in got["lifecycle"]["events"]}
    eq(f"[{case}] lifecycle.events", events, want["events"])


@both
def lifecycle_timelines(ctx, case, got, want):
    t = want["timelines"]
    l = got["lifecycle"]
    eq(f"[{case}] user timelines", len(l["users"]), t["users"])
    eq(f"[{case}] group timelines", len(l["groups"]), t["groups"])
    rows = [e for tl in l["users"] + l["groups"] for e in tl["events"]]
    eq(f"[{case}] timeline rows", len(rows), t["rows"])
    eq(f"[{case}] omitted entries", sum(tl["events_omitted"] for tl in l["users"] + l["groups"]), t["omitted"])
    by_kind = {}
    for e in rows:
        by_kind[e["kind"]] = by_kind.get(e["kind"], 0) + 1
    eq(f"[{case}] timeline rows by kind", by_kind, t["rows_by_kind"])
    cap = got["parameters"]["timeline_cap"]
    for tl in l["users"] + l["groups"]:
        if len(tl["events"]) > cap or tl["events_total"] != len(tl["events"]) + tl["events_omitted"]:
            raise AssertionError(f"timeline {tl['id']} breaks the cap: {len(tl['events'])} kept, {tl['events_omitted']} omitted")
        times = [e["time"] for e in tl["events"]]
        if times != sorted(times):
            raise AssertionError(f"timeline {tl['id']} is not in time order")


@both
def activity_per_day(ctx, case, got, want):
    eq(f"[{case}] activity", {d["day"]: d["kinds"] for d in got["activity"]}, want["activity"])


@both
def privileged_groups_and_members(ctx, case, got, want):
    groups = {g["id"]: sorted(m["id"] for m in g["members"]) for g in got["privileged"]["groups"]}
    eq(f"[{case}] privileged groups", sorted(groups), sorted(want["privileged_groups"]))
    for gid, members in want["privileged_groups"].items():
        eq(f"[{case}] members of {gid}", groups[gid], members)
    eq(f"[{case}] deleted privileged groups", got["privileged"]["deleted_groups"], want["privileged_deleted_groups"])
    for g in got["privileged"]["groups"]:
        for m in g["members"]:
            if not (m["granted_by"] and m["granted_at"]):
                raise AssertionError(f"member {m['id']} of {g['id']} has no grantor")


@both
def admin_roles(ctx, case, got, want):
    roles = sorted(f"{r['user_id']}|{r['kind']}|{r['value']}" for r in got["privileged"]["roles"])
    eq(f"[{case}] admin-like roles", roles, want["roles"])


@both
def stale_accounts(ctx, case, got, want):
    stale = {a["id"]: {"idle_days": a["idle_days"], "never": a["last_access"] is None} for a in got["stale"]["inactive"]}
    eq(f"[{case}] stale accounts", stale, want["stale"])
    idle = [a["idle_days"] for a in got["stale"]["inactive"]]
    eq(f"[{case}] stale sorted by idle days", idle, sorted(idle, reverse=True))


@both
def blocked_deprovision_and_reactivation(ctx, case, got, want):
    s = got["stale"]
    eq(f"[{case}] active after blocked deprovision", sorted(a["target_id"] for a in s["active_after_blocked_deprovision"]), want["active_after_blocked_deprovision"])
    eq(f"[{case}] reactivated", sorted(a["id"] for a in s["reactivated"]), want["reactivated"])


@both
def high_risk(ctx, case, got, want):
    h = got["high_risk"]
    classes = ("blocked", "monitor_only", "tagged", "logged")
    eq(f"[{case}] high-risk per day", {d["label"]: {c: d[c] for c in classes} for d in h["daily"]}, want["high_risk_daily"])
    eq(f"[{case}] high-risk per week", {d["label"]: {c: d[c] for c in classes} for d in h["weekly"]}, want["high_risk_weekly"])
    eq(f"[{case}] high-risk by rule", {f"{r['rule']}|{r['severity']}": {c: r[c] for c in classes} for r in h["by_rule"]}, want["high_risk_by_rule"])
    for r in h["by_rule"]:
        eq(f"[{case}] weekly sum of {r['rule']}", sum(c for _, c in r["weekly"]), r["total"])


@check
def text_format(ctx):
    p = ctx.run("all", "text")
    eq("text exit code", p.returncode, 0)
    s = ctx.expected["cases"]["all"]["summary"]
    for needle in (f"{s['users_known']} known: {s['users_active']} active",
                   f"{s['stale_accounts']} inactive ({s['stale_never_accessed']} never accessed)",
                   f"{s['high_risk_writes']} writes: {s['high_risk_blocked']} blocked, {s['high_risk_monitor_only']} monitor-only",
                   "1. LIFECYCLE", "2. PRIVILEGED ACCESS REVIEW", "3. STALE ACCOUNTS", "4. HIGH-RISK CHANGES"):
        if needle not in p.stdout:
            raise AssertionError(f"text output lacks `{needle}`")


@check
def order_of_files_does_not_matter(ctx):
    a = ctx.report("all")
    args = [ctx.binary, "report", "--now", ctx.expected["now"], "--format", "json"] + list(reversed(ctx.files))
    b = json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)
    for part in ("summary", "lifecycle", "privileged", "stale", "high_risk", "activity"):
        eq(f"{part} with the files reversed", b[part] == a[part], True)


@check
def unreadable_input_is_reported_and_the_rest_still_counts(ctx):
    missing = str(ctx.trail / "no-such-file.log")
    args = [ctx.binary, "report", "--now", ctx.expected["now"], "--format", "json", missing] + ctx.files
    p = subprocess.run(args, capture_output=True, text=True, check=False)
    eq("exit code with a missing input", p.returncode, 2)
    if "cannot open" not in p.stderr or "no-such-file.log" not in p.stderr:
        raise AssertionError(f"stderr does not name the missing file: {p.stderr[-300:]}")
    eq("summary without the missing file", json.loads(p.stdout)["summary"], ctx.expected["cases"]["all"]["summary"])


@check
def usage_errors(ctx):
    for bad in (["--since", "last tuesday"], ["--stale-after", "90"], ["--privileged-pattern", "(admin"]):
        p = subprocess.run([ctx.binary, "report", *bad, ctx.files[0]], capture_output=True, text=True, check=False)
        eq(f"exit code for {bad}", p.returncode, 2)
        if bad[1] not in p.stderr:
            raise AssertionError(f"error for {bad} does not quote the value: {p.stderr}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "target/debug/scimguard"))
    ap.add_argument("--trail", type=Path, help="use (or generate, if it has no expected.json) the trail here")
    ap.add_argument("--users", type=int, default=3000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="scimguard-trail-") as tmp:
        trail = a.trail or Path(tmp)
        if not (trail / "expected.json").exists():
            subprocess.run([sys.executable, str(HERE / "trail.py"), str(trail), "--users", str(a.users)], check=True)
        ctx = Ctx(a.bin, trail)
        passed = failed = 0
        for fn in CHECKS:
            try:
                fn(ctx)
                passed += 1
                print(f"ok     {fn.__name__}")
            except Exception as e:  # noqa: BLE001 - every failure is reported, then counted
                failed += 1
                print(f"FAILED {fn.__name__}: {e}")
        print(f"report: {passed} passed, {failed} failed")
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
