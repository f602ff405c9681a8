#!/usr/bin/env python3
"""Deterministic audit-trail generator for `scimguard report`, with the expected report numbers.

It *simulates* an organisation: users are provisioned, join groups, get admin roles, go stale,
are deprovisioned, reactivated and deleted; a policy tags, blocks or only monitors the risky writes;
applications log access events. Every write is emitted as the audit record the filter writes
(src/audit/record.rs), and the world state is updated only when the write really happened (not
blocked, upstream 2xx). The expected numbers come from that simulated world and from counting the
emitted records; nothing here calls or mirrors the report's code.

Files written to OUT (read in this order, which is deliberately not chronological):
  collector.jsonl   collector batches (JSON arrays and {"records": [...]}) holding days 40-49
                    plus copies of earlier/later writes (duplicates)
  audit-3.jsonl     plain JSON lines, days >= 110 (some records wrapped in a JSON string)
  audit-1.jsonl.gz  gzip, days < 75
  audit-2.log       gzip without a .gz name (detected by magic bytes), days 75-109
plus expected.json: {"files": [...], "now": ..., "cases": {"all": {...}, "since": {...}}}.

Usage: trail.py OUT [--seed N] [--users N] [--days N]
"""
import argparse
import gzip
import json
import random
import re
from datetime import datetime, timezone
from pathlib import Path

DAY = 86_400_000
START = 1_780_272_000_000  # 2026-06-01T00:00:00Z
PATTERN = re.compile(r"admin|owner|root|superuser|privileged|global", re.I)
KINDS = ["user_provisioned", "user_updated", "user_deprovisioned", "user_reactivated", "user_deleted",
         "group_created", "group_updated", "group_deleted", "group_member_added", "group_member_removed",
         "group_members_replaced", "role_changed", "entitlement_changed", "credential_changed",
         "identity_changed", "manager_changed"]
CLASSES = ["blocked", "monitor_only", "tagged", "logged"]
PROVISIONERS = ["okta-provisioning", "entra-sync"]
REGULAR_GROUPS = ["Engineering", "Sales", "Marketing", "Finance", "Support", "Design", "Research",
                  "Legal", "People Ops", "Data Science", "Mobile", "Platform", "Security Champions",
                  "Interns", "Contractors", "Berlin Office", "Paris Office", "Remote", "On-call", "QA"]
NAME_PRIVILEGED = ["Domain Admins", "Global Administrators", "Root Access", "Billing Owners", "Privileged Support"]
RULE_PRIVILEGED = ["Payments Approvers"]  # privileged only because the policy says so
RENAMED = ("Infra", "Infra Admins")  # becomes privileged by name when renamed
DELETED = "Legacy Admins"  # privileged, has members, then deleted

R_PRIV = ("privileged-group-add", "high")
R_ROLE = ("admin-role-grant", "high")
R_SCRIPT = ("admin-grant-by-script", "critical")
R_FREEZE = ("deprovision-freeze", "critical")
R_DELETE = ("user-delete", "medium")
R_MASS = ("mass-membership-change", "medium")


def iso(ms):
    d = datetime.fromtimestamp(ms // 1000, timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def day_label(ms):
    return iso(ms)[:10]


def week_label(ms):
    day = ms // DAY
    return day_label(((day + 3) // 7 * 7 - 3) * DAY)


class World:
    def __init__(self, rng, cap):
        self.rng = rng
        self.cap = cap
        self.seq = 0
        self.records = []  # (time_ms, record dict)
        self.facts = []  # one per write: what a window count needs
        self.users = {}  # id -> dict
        self.groups = {}  # id -> dict
        self.roles = {}  # (uid, kind, value) -> (time, actor)
        self.timelines = {}  # ("user"|"group", id) -> [(time, audit, idx, kind, outcome)]
        self.access_actors = set()

    # ---- emitting ------------------------------------------------------------------------
    def write(self, t, actor, rt, rid, events, changes=(), rules=(), fail_ok=True, bulk=False, method="PATCH"):
        """Emits one scim_write; returns its outcome ('applied', 'blocked', 'failed', 'unknown')."""
        self.seq += 1
        audit = f"w{self.seq:07d}"
        blocked = any(r[2] == "block" and r[3] == "enforce" for r in rules)
        would_block = any(r[2] == "block" and r[3] == "monitor" for r in rules)
        tagged = any(r[2] == "tag" for r in rules)
        decision = "block" if blocked else "tag" if (would_block or tagged) else "allow"
        roll = self.rng.random() if fail_ok else 1.0
        if blocked:
            outcome, status = "blocked", 403
        elif roll < 0.015:
            outcome, status = "failed", self.rng.choice([409, 500, 503])
        elif roll < 0.02:
            outcome, status = "unknown", None
        else:
            outcome, status = "applied", 201 if method == "POST" else 200
        rec = {
            "kind": "scim_write", "v": 1, "time": iso(t), "audit_id": audit, "request_id": f"req-{self.seq}",
            "trace_id": None, "actor": actor, "source_ip": "203.0.113.10", "user_agent": "Okta SCIM Client 1.0.0",
            "method": method, "path": f"/scim/v2/{rt}" + (f"/{rid}" if rid and method != "POST" else ""),
            "resource_type": rt, "resource_id": rid, "bulk": bulk, "events": events, "changes": list(changes),
            "rules": [{"id": r[0], "severity": r[1], "action": r[2], "mode": r[3], "notify": True} for r in rules],
            "decision": decision, "risk": max((r[1] for r in rules), default="none"), "mode": "enforce",
            "status": status, "duration_ms": self.rng.randint(2, 90),
        }
        self.records.append((t, rec))
        cls = None
        if rules:
            cls = "blocked" if blocked else "monitor_only" if would_block else "tagged" if tagged else "logged"
        rule_classes = []
        for r in rules:
            rc = "blocked" if blocked else "monitor_only" if (r[2] == "block" and r[3] == "monitor") else \
                "tagged" if decision == "tag" else "logged"
            rule_classes.append((r[0], r[1], rc))
        self.facts.append({"t": t, "events": [e["type"] for e in events], "outcome": outcome,
                           "class": cls, "rules": rule_classes})
        for i, e in enumerate(events):
            self.timeline_entries(t, audit, i, e, outcome)
        return outcome

    def timeline_entries(self, t, audit, i, e, outcome):
        entity = "group" if e["resource_type"] == "Groups" else "user"
        self.timelines.setdefault((entity, e["resource_id"]), []).append((t, audit, i, e["type"], outcome))
        if e["type"].startswith("group_member"):
            for m in e.get("members", []):
                self.timelines.setdefault(("user", m), []).append((t, audit, i, e["type"], outcome))

    def access(self, t, actor):
        self.seq += 1
        rec = {"kind": "access", "v": 1, "time": iso(t), "audit_id": f"a{self.seq:08d}", "request_id": None,
               "trace_id": None, "actor": actor, "source_ip": "198.51.100.7", "user_agent": "Mozilla/5.0",
               "method": "GET", "path": "/api/projects/42", "route": "/api/projects/{id}", "status": 200,
               "duration_ms": 14, "sampled": self.rng.random() < 0.5}
        self.records.append((t, rec))

    # ---- world actions (each emits a write; state changes only when applied) --------------
    def create_group(self, t, gid, name, privileged_rule=False):
        ev = [{"type": "group_created", "resource_type": "Groups", "resource_id": gid, "display_name": name}]
        self.groups[gid] = {"name": name, "names": set(), "deleted": False, "members": {}, "rule": False,
                            "policy": privileged_rule, "blocked": []}
        if self.write(t, "okta-provisioning", "Groups", gid, ev, method="POST", fail_ok=False) == "applied":
            self.groups[gid]["names"].add(name)

    def group_rules(self, gid, actor, enforce):
        g = self.groups[gid]
        if g["policy"] or any(PATTERN.search(n) for n in g["names"]):
            g["rule"] = True  # a privileged-group rule matched a write on it
            return [R_PRIV + ("block", "enforce" if enforce else "monitor")]
        return []

    def add_members(self, t, actor, gid, uids, enforce=False):
        ev = [{"type": "group_member_added", "resource_type": "Groups", "resource_id": gid, "members": uids}]
        rules = self.group_rules(gid, actor, enforce)
        out = self.write(t, actor, "Groups", gid, ev, rules=rules)
        if out == "applied":
            for u in uids:
                self.groups[gid]["members"][u] = (t, actor, "group_member_added")
        elif out == "blocked":
            self.groups[gid]["blocked"].append(t)
        return out

    def remove_member(self, t, actor, gid, uid):
        ev = [{"type": "group_member_removed", "resource_type": "Groups", "resource_id": gid, "members": [uid]}]
        if self.write(t, actor, "Groups", gid, ev) == "applied":
            self.groups[gid]["members"].pop(uid, None)

    def replace_members(self, t, actor, gid, uids):
        ev = [{"type": "group_members_replaced", "resource_type": "Groups", "resource_id": gid, "members": uids}]
        rules = [R_MASS + ("log", "enforce")] + self.group_rules(gid, actor, False)
        out = self.write(t, actor, "Groups", gid, ev, rules=rules)
        if out == "applied":
            self.groups[gid]["members"] = {u: (t, actor, "group_members_replaced") for u in uids}
        elif out == "blocked":
            self.groups[gid]["blocked"].append(t)

    def rename_group(self, t, gid, name):
        ev = [{"type": "group_updated", "resource_type": "Groups", "resource_id": gid, "display_name": name}]
        if self.write(t, "okta-provisioning", "Groups", gid, ev, fail_ok=False) == "applied":
            self.groups[gid]["names"].add(name)
            self.groups[gid]["name"] = name

    def delete_group(self, t, gid):
        ev = [{"type": "group_deleted", "resource_type": "Groups", "resource_id": gid}]
        if self.write(t, "okta-provisioning", "Groups", gid, ev, method="DELETE", fail_ok=False) == "applied":
            self.groups[gid]["deleted"] = True
            self.groups[gid]["members"] = {}

    def provision(self, t, uid, name, actor, bulk_with=()):
        """POST /Users, or one Bulk with several creates when `bulk_with` lists (uid, name) pairs."""
        people = [(uid, name)] + list(bulk_with)
        events = [{"type": "user_provisioned", "resource_type": "Users", "resource_id": u, "user_name": n}
                  for u, n in people]
        if bulk_with:
            self.write(t, actor, "Bulk", None, events, bulk=True, method="POST", fail_ok=False)
        else:
            self.write(t, actor, "Users", uid, events, method="POST", fail_ok=False)
        for u, n in people:
            self.users[u] = {"name": n, "aliases": {n.lower()}, "status": "active", "active_since": t,
                             "provisioned_by": actor, "deprovs": [], "reactivations": [], "blocked_deprov": None,
                             "status_t": t, "last_access": None}

    def user_event(self, t, actor, uid, kind, rules=(), extra=None, changes=(), fail_ok=True):
        ev = {"type": kind, "resource_type": "Users", "resource_id": uid}
        ev.update(extra or {})
        method = "DELETE" if kind == "user_deleted" else "PATCH"
        out = self.write(t, actor, "Users", uid, [ev], changes=changes, rules=rules, fail_ok=fail_ok, method=method)
        u = self.users[uid]
        if out == "applied":
            if kind == "user_deprovisioned":
                u["status"], u["status_t"] = "deprovisioned", t
                u["deprovs"].append((t, actor))
            elif kind == "user_reactivated":
                u["status"], u["status_t"], u["active_since"] = "active", t, t
                u["reactivations"].append((t, actor))
            elif kind == "user_deleted":
                u["status"], u["status_t"] = "deleted", t
            if extra and "user_name" in extra:
                u["name"] = extra["user_name"]
                u["aliases"].add(extra["user_name"].lower())
        elif out == "blocked" and kind in ("user_deprovisioned", "user_deleted"):
            u["blocked_deprov"] = t
        return out

    def grant_role(self, t, actor, uid, value):
        values = [{"value": value, "display": value}, "reader"]
        change = {"resource_type": "Users", "resource_id": uid, "op": "add", "attribute": "roles", "values": values}
        rules = [R_ROLE + ("tag", "enforce")]
        if actor == "rogue-script":
            rules.append(R_SCRIPT + ("block", "enforce"))
        out = self.user_event(t, actor, uid, "role_changed", rules, {"values": values}, [change])
        if out == "applied" and PATTERN.search(value):
            self.roles[(uid, "role", value)] = (t, actor)
        return out

    def revoke_role(self, t, actor, uid, value):
        change = {"resource_type": "Users", "resource_id": uid, "op": "remove", "attribute": "roles",
                  "filter": f'value eq "{value}"', "values": []}
        if self.user_event(t, actor, uid, "role_changed", (), None, [change]) == "applied":
            self.roles.pop((uid, "role", value), None)

    def grant_entitlement(self, t, actor, uid, value):
        change = {"resource_type": "Users", "resource_id": uid, "op": "add", "attribute": "entitlements",
                  "values": [value]}
        if self.user_event(t, actor, uid, "entitlement_changed", (), {"values": [value]}, [change]) == "applied":
            if PATTERN.search(value):
                self.roles[(uid, "entitlement", value)] = (t, actor)


def simulate(seed, n_users, days, cap):
    rng = random.Random(seed)
    w = World(rng, cap)
    first = ["ada", "alan", "grace", "linus", "margaret", "ken", "barbara", "edsger", "frances", "donald",
             "radia", "tim", "katherine", "john", "hedy", "claude", "sophie", "dennis", "annie", "guido"]
    last = ["lovelace", "turing", "hopper", "torvalds", "hamilton", "thompson", "liskov", "dijkstra", "allen",
            "knuth", "perlman", "berners", "johnson", "backus", "lamarr", "shannon", "wilson", "ritchie", "easley"]
    uid_of = lambda i: f"{rng.getrandbits(32):08x}-{i:05d}"  # noqa: E731
    people = []
    for i in range(n_users):
        name = f"{rng.choice(first)}.{rng.choice(last)}{i}@corp.example"
        if rng.random() < 0.2:
            name = name.title()  # access actors are matched case-insensitively
        profile = rng.choices(["regular", "stops", "never"], [70, 20, 10])[0]
        day = rng.randint(0, 4) if rng.random() < 0.5 else rng.randint(0, days - 1)
        people.append({"uid": uid_of(i), "name": name, "day": day, "profile": profile,
                       "stop": rng.randint(0, days), "by_id": rng.random() < 0.2})

    t0 = START + 3_600_000
    gids = {}
    for n, name in enumerate(REGULAR_GROUPS + NAME_PRIVILEGED + RULE_PRIVILEGED + [RENAMED[0], DELETED]):
        gids[name] = f"g{n:03d}-{rng.getrandbits(24):06x}"
        w.create_group(t0 + n * 1000, gids[name], name, privileged_rule=name in RULE_PRIVILEGED)
    privileged = NAME_PRIVILEGED + RULE_PRIVILEGED + [DELETED]
    regular = [gids[g] for g in REGULAR_GROUPS]

    by_day = {}
    for p in people:
        by_day.setdefault(p["day"], []).append(p)
    for d in range(days):
        base = START + d * DAY
        actions = []
        todays = by_day.get(d, [])
        for k in range(0, len(todays), 7):
            chunk = todays[k:k + 7]
            actions.append((base + rng.randint(7, 9) * 3_600_000 + rng.randint(0, 3_599_999), "provision", chunk))
        for _ in range(max(1, len(w.users) // 60)):
            actions.append((base + rng.randint(0, DAY - 1), "random", None))
        if d % 7 == 3:
            actions.append((base + rng.randint(0, DAY - 1), "blocked_deprov", None))
        if d % 20 == 10:
            actions.append((base + rng.randint(0, DAY - 1), "replace", None))
        if d == days // 3:
            actions.append((base + 43_200_000, "rename", None))
        if d == 100 % days:
            actions.append((base + 50_000_000, "delete_group", None))
        actions.sort(key=lambda a: a[0])
        for t, what, arg in actions:
            act(w, rng, t, what, arg, gids, regular, privileged)
        emit_access(w, rng, base, d, people)
    return w, people


def act(w, rng, t, what, arg, gids, regular, privileged):
    active = lambda: [u for u, v in w.users.items() if v["status"] == "active"]  # noqa: E731
    if what == "provision":
        actor = rng.choice(PROVISIONERS)
        if len(arg) > 3 and rng.random() < 0.5:
            w.provision(t, arg[0]["uid"], arg[0]["name"], actor, [(p["uid"], p["name"]) for p in arg[1:]])
        else:
            for k, p in enumerate(arg):
                w.provision(t + k, p["uid"], p["name"], actor)
        for k, p in enumerate(arg):
            for g in rng.sample(regular, rng.randint(1, 2)):
                w.add_members(t + 100 + k * 10, actor, g, [p["uid"]])
        return
    if what == "rename":
        w.rename_group(t, gids[RENAMED[0]], RENAMED[1])
        return
    if what == "delete_group":
        w.delete_group(t, gids[DELETED])
        return
    pool = active()
    if not pool:
        return
    uid = rng.choice(pool)
    actor = rng.choice(PROVISIONERS)
    if what == "blocked_deprov":
        w.user_event(t, actor, uid, "user_deprovisioned", [R_FREEZE + ("block", "enforce")])
        return
    if what == "replace":
        g = rng.choice(regular + [gids[RENAMED[0]]])
        w.replace_members(t, actor, g, rng.sample(pool, min(len(pool), rng.randint(2, 6))))
        return
    roll = rng.random()
    if roll < 0.40:
        w.user_event(t, actor, uid, rng.choice(["user_updated", "user_updated", "manager_changed", "credential_changed"]))
    elif roll < 0.47:
        u = w.users[uid]
        new = "renamed." + u["name"].split("@")[0].lower() + "@corp.example"
        w.user_event(t, actor, uid, "identity_changed", extra={"user_name": new, "values": ["userName"]})
    elif roll < 0.60:
        g = rng.choice(regular + [gids[RENAMED[0]]])
        w.add_members(t, actor, g, rng.sample(pool, min(len(pool), rng.randint(1, 3))))
    elif roll < 0.66:
        g = gids[rng.choice(privileged)]
        if not w.groups[g]["deleted"]:
            human = rng.random() < 0.3
            w.add_members(t, "admin@corp.example" if human else actor, g, [uid], enforce=rng.random() < 0.45)
    elif roll < 0.69:
        g = gids[rng.choice(privileged)]
        members = list(w.groups[g]["members"])
        if members:
            w.remove_member(t, actor, g, rng.choice(sorted(members)))
    elif roll < 0.74:
        grantor = "rogue-script" if rng.random() < 0.25 else "admin@corp.example"
        w.grant_role(t, grantor, uid, rng.choice(["GlobalAdmin", "Owner", "BillingAdmin", "editor"]))
    elif roll < 0.76:
        held = sorted(k for k in w.roles if k[1] == "role")
        if held:
            h = rng.choice(held)
            if w.users[h[0]]["status"] != "deleted":
                w.revoke_role(t, "admin@corp.example", h[0], h[2])
    elif roll < 0.78:
        w.grant_entitlement(t, actor, uid, rng.choice(["SuperUser-Console", "read-only", "Root-Shell"]))
    elif roll < 0.90:
        w.user_event(t, actor, uid, "user_deprovisioned")
    else:
        gone = [u for u, v in w.users.items() if v["status"] == "deprovisioned"]
        if gone:
            u = rng.choice(sorted(gone))
            if rng.random() < 0.6:
                w.user_event(t, actor, u, "user_reactivated")
            else:
                w.user_event(t, actor, u, "user_deleted", [R_DELETE + ("tag", "enforce")])


def emit_access(w, rng, base, d, people):
    for p in people:
        u = w.users.get(p["uid"])
        if not u or u["status"] != "active" or p["profile"] == "never":
            continue
        if p["profile"] == "stops" and d >= p["stop"]:
            continue
        if rng.random() < 0.12:
            t = base + rng.randint(0, DAY - 1)
            if t <= u["status_t"]:
                continue
            actor = p["uid"] if p["by_id"] else rng.choice([u["name"], u["name"].lower(), u["name"].upper()])
            w.access(t, actor)
            u["last_access"] = max(u["last_access"] or 0, t)
    if rng.random() < 0.5:
        w.access(base + rng.randint(0, DAY - 1), rng.choice(["svc-backup", "ci-bot@corp.example"]))


# ---- expected numbers ---------------------------------------------------------------------
def expect(w, now, stale_after, since):
    in_win = lambda t: since is None or t >= since  # noqa: E731
    facts = [f for f in w.facts if in_win(f["t"])]
    kinds = {}
    daily = {}
    for f in facts:
        for k in f["events"]:
            c = kinds.setdefault(k, {"applied": 0, "blocked": 0, "failed": 0, "unknown": 0})
            c[f["outcome"]] += 1
            if f["outcome"] == "applied":
                daily.setdefault(day_label(f["t"]), {}).setdefault(k, 0)
                daily[day_label(f["t"])][k] += 1
    users = {u: v for u, v in w.users.items()}
    status = lambda u: users[u]["status"] if u in users else "unknown"  # noqa: E731

    groups_priv = {}
    blocked_attempts = 0
    deleted_priv = 0
    for gid, g in w.groups.items():
        if not (g["rule"] or any(PATTERN.search(n) for n in g["names"])):
            continue
        blocked_attempts += sum(1 for t in g["blocked"] if in_win(t))
        if g["deleted"]:
            deleted_priv += 1
            continue
        groups_priv[gid] = sorted(m for m in g["members"] if status(m) != "deleted")
    roles = sorted(f"{u}|{k}|{v}" for (u, k, v) in w.roles if status(u) != "deleted")
    role_blocked = sum(1 for t, r in w.records if r["kind"] == "scim_write" and r["decision"] == "block"
                       and in_win(t) and any(e["type"] in ("role_changed", "entitlement_changed")
                                             and any(PATTERN.search(v if isinstance(v, str) else v["value"])
                                                     for v in e.get("values", [])) for e in r["events"]))
    blocked_attempts += role_blocked

    stale, after_blocked, reactivated = {}, [], []
    for uid, u in users.items():
        re_in = [r for r in u["reactivations"] if in_win(r[0]) and any(d[0] < r[0] for d in u["deprovs"])]
        if re_in:
            reactivated.append(uid)
        if u["status"] != "active":
            continue
        if u["blocked_deprov"] is not None and u["blocked_deprov"] > u["status_t"]:
            after_blocked.append(uid)
        seen = max(u["last_access"] or 0, u["active_since"])
        if seen < now - stale_after:
            stale[uid] = {"idle_days": (now - seen) // DAY, "never": u["last_access"] is None}

    hr_records = {c: 0 for c in CLASSES}
    hr_daily, hr_weekly, by_rule = {}, {}, {}
    for f in facts:
        if f["class"] is None:
            continue
        hr_records[f["class"]] += 1
        hr_daily.setdefault(day_label(f["t"]), {c: 0 for c in CLASSES})[f["class"]] += 1
        hr_weekly.setdefault(week_label(f["t"]), {c: 0 for c in CLASSES})[f["class"]] += 1
        for rid, sev, rc in f["rules"]:
            by_rule.setdefault(f"{rid}|{sev}", {c: 0 for c in CLASSES})[rc] += 1

    members_now = {m for ms in groups_priv.values() for m in ms}
    principals = members_now | {r.split("|")[0] for r in roles}
    rows = timeline_rows(w, since)
    summary = {
        "users_known": len(users),
        "users_active": sum(1 for u in users.values() if u["status"] == "active"),
        "users_deprovisioned": sum(1 for u in users.values() if u["status"] == "deprovisioned"),
        "users_deleted": sum(1 for u in users.values() if u["status"] == "deleted"),
        "users_status_unknown": 0,
        "groups_known": sum(1 for g in w.groups.values() if not g["deleted"]),
        "groups_privileged": len(groups_priv),
        "privileged_memberships": sum(len(m) for m in groups_priv.values()),
        "admin_role_grants": len(roles),
        "privileged_principals": len(principals),
        "privileged_blocked_attempts": blocked_attempts,
        "stale_accounts": len(stale),
        "stale_never_accessed": sum(1 for s in stale.values() if s["never"]),
        "active_after_blocked_deprovision": len(after_blocked),
        "reactivated_after_deprovision": len(reactivated),
        "high_risk_writes": sum(hr_records.values()),
        "high_risk_blocked": hr_records["blocked"],
        "high_risk_monitor_only": hr_records["monitor_only"],
        "high_risk_tagged": hr_records["tagged"],
        "high_risk_logged": hr_records["logged"],
        "events_applied": sum(c["applied"] for c in kinds.values()),
        "events_blocked": sum(c["blocked"] for c in kinds.values()),
        "events_failed": sum(c["failed"] for c in kinds.values()),
        "events_unknown": sum(c["unknown"] for c in kinds.values()),
    }
    return {
        "summary": summary,
        "events": kinds,
        "activity": daily,
        "privileged_groups": groups_priv,
        "privileged_deleted_groups": deleted_priv,
        "roles": roles,
        "stale": stale,
        "active_after_blocked_deprovision": sorted(after_blocked),
        "reactivated": sorted(reactivated),
        "high_risk_daily": hr_daily,
        "high_risk_weekly": hr_weekly,
        "high_risk_by_rule": by_rule,
        "timelines": rows,
    }


def timeline_rows(w, since):
    """What the timelines keep: the newest `cap` window entries of each user and group."""
    kept_by_kind = {}
    out = {"users": 0, "groups": 0, "rows": 0, "omitted": 0}
    for (entity, _), entries in w.timelines.items():
        win = sorted(e for e in entries if since is None or e[0] >= since)
        if not win:
            continue
        out["users" if entity == "user" else "groups"] += 1
        kept = win[-w.cap:]
        out["rows"] += len(kept)
        out["omitted"] += len(win) - len(kept)
        for e in kept:
            kept_by_kind[e[3]] = kept_by_kind.get(e[3], 0) + 1
    out["rows_by_kind"] = kept_by_kind
    return out


# ---- files -------------------------------------------------------------------------------
NOISE = [
    lambda t: json.dumps({"time": iso(t), "request_id": "r-x", "client": "10.0.0.7", "protocol": "HTTP/1.1",
                          "method": "GET", "path": "/healthz", "status": "200", "flags": "-", "duration_ms": "1"}),
    lambda t: "-",
    lambda t: "",
]
MALFORMED = [
    (b'{"kind":"scim_write","v":1,"time":"2026-0', "truncated JSON"),
    (b"GET /scim/v2/Users 200 12ms", "not JSON"),
    (b'{"kind":"access","v":1,"time":"31/12/2026 10:00","actor":"x"}', "bad `time`"),
    (b'{"kind":"scim_write","v":1,"time":"2026-07-01T00:00:00Z","status":"OK"}', "bad field"),
    (b"\xff\xfe{\"kind\":\"access\"}", "not UTF-8"),
    (b'[{"kind":"access","v":1,"time":"2026-07-02T00:00:00Z"},', "truncated JSON"),
    (b'{"kind":"access","v":1,"time":"2026-07-03T00:00:00.000Z","actor":"a" "b"}', "not JSON"),
]


def write_files(w, rng, out, days):
    out.mkdir(parents=True, exist_ok=True)
    recs = sorted(w.records, key=lambda r: (r[0], r[1]["audit_id"]))
    day = lambda t: (t - START) // DAY  # noqa: E731
    main = {1: [], 2: [], 3: []}
    collector = []
    for t, r in recs:
        d = day(t)
        if 40 <= d < 50:
            collector.append(r)
        else:
            main[1 if d < 75 else 2 if d < 110 else 3].append((t, r))
    writes = [r for t, r in recs if r["kind"] == "scim_write" and not 40 <= day(t) < 50]
    dups = rng.sample(writes, min(300, len(writes)))
    batches = collector + dups
    rng.shuffle(batches)
    col_lines = []
    i = 0
    while i < len(batches):
        n = rng.randint(1, 20)
        chunk = batches[i:i + n]
        i += n
        col_lines.append(json.dumps(chunk) if rng.random() < 0.5 else json.dumps({"records": chunk}))
    malformed_places = []
    lines_total = 0
    foreign = 0
    files = []
    for name, content, gz in [("collector.jsonl", None, False), ("audit-3.jsonl", 3, False),
                              ("audit-1.jsonl.gz", 1, True), ("audit-2.log", 2, True)]:
        if content is None:
            lines = [ln.encode() for ln in col_lines]
        else:
            lines = []
            for t, r in main[content]:
                s = json.dumps(r)
                if content == 3 and rng.random() < 0.01:
                    s = json.dumps(s)  # a record serialised into a JSON string
                lines.append(s.encode())
                if rng.random() < 0.004:
                    lines.append(rng.choice(NOISE)(t).encode())
                    foreign += 1
        bad = MALFORMED[len(malformed_places):len(malformed_places) + (2 if content != 2 else 1)]
        for b, why in bad:
            at = rng.randint(0, len(lines))
            lines.insert(at, b)
        # recompute places after all insertions
        for b, why in bad:
            malformed_places.append({"file": name, "line": lines.index(b) + 1, "why": why})
        data = b"\n".join(lines) + b"\n"
        path = out / name
        path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
        lines_total += len(lines)
        files.append(name)
    n_access = sum(1 for _, r in recs if r["kind"] == "access")
    n_writes = sum(1 for _, r in recs if r["kind"] == "scim_write")
    return {"files": files, "lines": lines_total, "scim_writes": n_writes, "access_events": n_access,
            "duplicates": len(dups), "foreign_lines": foreign, "malformed_lines": len(malformed_places),
            "malformed": malformed_places}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--days", type=int, default=150)
    ap.add_argument("--cap", type=int, default=25)
    a = ap.parse_args()
    w, _ = simulate(a.seed, a.users, a.days, a.cap)
    rng = random.Random(a.seed + 1)
    inputs = write_files(w, rng, a.out, a.days)
    now = START + (a.days + 20) * DAY
    stale_after = 90 * DAY
    since = START + 120 * DAY
    expected = {
        "files": inputs["files"], "input": inputs, "now": iso(now), "stale_after": "90d", "since": iso(since),
        "cases": {"all": expect(w, now, stale_after, None), "since": expect(w, now, stale_after, since)},
    }
    (a.out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True))
    s = expected["cases"]["all"]["summary"]
    print(f"trail: {inputs['lines']} lines in {len(inputs['files'])} files, {inputs['scim_writes']} writes, "
          f"{inputs['access_events']} access events; {s['users_known']} users, {s['stale_accounts']} stale, "
          f"{s['privileged_memberships']} privileged memberships, {s['high_risk_writes']} high-risk writes")


if __name__ == "__main__":
    main()
