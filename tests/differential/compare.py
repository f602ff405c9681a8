"""What a write changed on an implementation, and whether scimguard's reading covers it.

Owns: `observe(before, after, response, request)`, the security-relevant changes an implementation
made (read from its state before and after, never from its reply): group membership (a member's
identity is its `value`, else the id at the end of its `$ref`, else the anonymous `∅`), a group's
displayName, creation and deletion, and a user's `active`, `userName`, `externalId`, emails (added
addresses), password (set), roles, entitlements and user-side `groups`; and `disagreements(observed,
reading)`, each observed change scimguard's reading (`scimguard eval --detail` JSON: events with
members and scope, changes with attribute, op, values and flags) does not cover, with its class.
Does not: judge anything else (names, addresses, extension attributes are not security-relevant here).

Coverage, per resource (an existing id, `bulkId:<id>` for a Bulk-created one, `<new>` for a POST):
- member M added: a `group_member_added`/`group_members_replaced` event naming M (an anonymous entry:
  any such event); a member event naming others is `wrong_member`;
- member M removed: a `group_member_removed` event naming M or with scope `all`/`filter`/
  `listed_or_all` (an ambiguous removal covers every removal), a `group_members_replaced` or
  `group_deleted` event, or a `members` change flagged `possible_clear` (PUT);
- displayName set to N: the last `displayName` change on the resource says N (`order_differs` when
  only an earlier one does: informational, not a failure; else `wrong_value`);
- active: to `false` needs `user_deprovisioned`; any other change needs an `active` change or event;
- userName/externalId: a change of that attribute whose last value is the new one (`wrong_value`
  otherwise), or an `identity_changed` event naming it; emails added: an `emails` change or
  `identity_changed`; password set: `credential_changed` or a `password` change; roles/entitlements:
  a change of the attribute or its event, and each added value present in the reading's values;
- user-side `groups`: a member event naming the user on the group (`not_membership` if only an
  attribute change); deletion: `user_deleted`/`group_deleted`.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

NEW = "<new>"
# Reasons that are reported but are not failures: the reading covers the change.
INFO_REASONS = {"order_differs"}
AMBIGUOUS_SCOPES = {"all", "filter", "listed_or_all"}
ANON = "∅"


# ---- observed changes -------------------------------------------------------------------------
def member_id(entry: Any) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        value = entry.get("value")
        if isinstance(value, str) and value:
            return value
        ref = entry.get("$ref")
        if isinstance(ref, str) and "/" in ref:
            return ref.rstrip("/").rsplit("/", 1)[1]
    return ANON


def member_counter(resource: dict[str, Any] | None) -> Counter[str]:
    members = (resource or {}).get("members")
    return Counter(member_id(m) for m in members) if isinstance(members, list) else Counter()


def new_id_keys(before: dict[str, Any], after: dict[str, Any], request: dict[str, Any] | None,
                response: Any) -> dict[str, str]:
    """Maps every id created by the write to its key: `bulkId:<id>` in a Bulk (by the response's
    `location`; without one, the Bulk POST of that type whose data shares the most strings with the
    resource, since a server may create a resource and still answer an error), else `<new>`."""
    located: dict[str, str] = {}
    for op in (response.get("Operations") or []) if isinstance(response, dict) else []:
        loc, bid = op.get("location"), op.get("bulkId")
        if isinstance(loc, str) and isinstance(bid, str):
            located[loc.rstrip("/").rsplit("/", 1)[-1]] = f"bulkId:{bid}"
    posts: dict[str, list[tuple[str, Any]]] = {"Users": [], "Groups": []}
    body = (request or {}).get("body")
    is_bulk = bool(request and request["path"].rstrip("/").endswith("/Bulk") and isinstance(body, dict))
    for op in (body.get("Operations") or []) if is_bulk else []:
        rtype = str(op.get("path", "")).strip("/")
        if str(op.get("method", "")).upper() == "POST" and rtype in posts and isinstance(op.get("bulkId"), str):
            if f"bulkId:{op['bulkId']}" not in located.values():
                posts[rtype].append((f"bulkId:{op['bulkId']}", op.get("data")))
    keys = {}
    for rtype in ("Users", "Groups"):
        created = sorted((rid for rid in after.get(rtype, {}) if rid not in before.get(rtype, {})),
                         key=lambda i: (len(i), i))
        for rid in created:
            if rid in located:
                keys[rid] = located[rid]
            elif posts[rtype]:
                have = _leaves(after[rtype][rid])
                best = max(posts[rtype], key=lambda p: len(_leaves(p[1]) & have))
                posts[rtype].remove(best)
                keys[rid] = best[0]
            else:
                keys[rid] = NEW
    return keys


def _leaves(v: Any) -> set[str]:
    if isinstance(v, dict):
        return set().union(*(_leaves(x) for x in v.values())) if v else set()
    if isinstance(v, list):
        return set().union(*(_leaves(x) for x in v)) if v else set()
    return {v} if isinstance(v, str) else set()


def observe(before: dict[str, Any], after: dict[str, Any] | None, request: dict[str, Any] | None = None,
            response: Any = None) -> list[dict[str, Any]]:
    """The security-relevant changes from `before` to `after`, one dict each."""
    if not after:
        return []
    keys = new_id_keys(before, after, request, response)
    rename = lambda i: keys.get(i, i)  # noqa: E731
    out: list[dict[str, Any]] = []
    for gid in set(before["Groups"]) | set(after["Groups"]):
        out += _group_changes(rename(gid), before["Groups"].get(gid), after["Groups"].get(gid), rename)
    for uid in set(before["Users"]) | set(after["Users"]):
        out += _user_changes(rename(uid), before["Users"].get(uid), after["Users"].get(uid), rename)
    return sorted(out, key=lambda o: json.dumps(o, sort_keys=True))


def _group_changes(key: str, b: Any, a: Any, rename: Any) -> list[dict[str, Any]]:
    if a is not None and not isinstance(a, dict):
        return [{"what": "resource_clobbered", "resource": key, "value": a}]
    if a is None:
        return [{"what": "group_deleted", "resource": key}] if b is not None else []
    out = []
    mb = Counter({rename(k): v for k, v in member_counter(b).items()})
    ma = Counter({rename(k): v for k, v in member_counter(a).items()})
    out += [{"what": "member_added", "resource": key, "member": m} for m in sorted(ma - mb)]
    out += [{"what": "member_removed", "resource": key, "member": m} for m in sorted(mb - ma)]
    name_b, name_a = (b or {}).get("displayName"), a.get("displayName")
    if name_a != name_b:
        out.append({"what": "group_renamed", "resource": key, "value": name_a})
    return out


def _values(resource: Any, attr: str) -> list[str]:
    """The granted values of a multi-valued attribute (each entry's `value`, or the bare entry), as
    JSON: what a rule matches on. Other sub-attributes (`primary`, `type`, a `VALUE` key) are not grants."""
    v = (resource or {}).get(attr)
    entries = v if isinstance(v, list) else ([] if v is None else [v])
    return sorted(json.dumps(e.get("value") if isinstance(e, dict) else e, sort_keys=True) for e in entries)


def _user_changes(key: str, b: Any, a: Any, rename: Any) -> list[dict[str, Any]]:
    if a is not None and not isinstance(a, dict):
        return [{"what": "resource_clobbered", "resource": key, "value": a}]
    if a is None:
        return [{"what": "user_deleted", "resource": key}] if b is not None else []
    out = []
    created = b is None
    b = b or {}
    if not created and a.get("active") != b.get("active"):
        out.append({"what": "active", "resource": key, "value": a.get("active"), "before": b.get("active")})
    for attr in ("userName", "externalId"):
        if a.get(attr) != b.get(attr) and not (created and a.get(attr) is None):
            out.append({"what": attr, "resource": key, "value": a.get(attr)})
    emails_b = {str(e.get("value")).lower() for e in b.get("emails") or [] if isinstance(e, dict)}
    added = sorted({str(e.get("value")).lower() for e in a.get("emails") or [] if isinstance(e, dict)} - emails_b)
    if added:
        out.append({"what": "emails", "resource": key, "value": added})
    if a.get("password") is not None and a.get("password") != b.get("password"):
        out.append({"what": "password", "resource": key})
    for attr in ("roles", "entitlements"):
        vb, va = _values(b, attr), _values(a, attr)
        if va != vb:
            out.append({"what": attr, "resource": key, "value": sorted(set(va) - set(vb))})
    gb = {rename(member_id(g)) for g in b.get("groups") or [] if isinstance(b.get("groups"), list)}
    ga = {rename(member_id(g)) for g in a.get("groups") or [] if isinstance(a.get("groups"), list)}
    for g in sorted(ga - gb):
        out.append({"what": "user_groups", "resource": key, "group": g, "added": True})
    for g in sorted(gb - ga):
        out.append({"what": "user_groups", "resource": key, "group": g, "added": False})
    return out


# ---- the reading ------------------------------------------------------------------------------
def reading_key(item: dict[str, Any]) -> str:
    rid, bid = item.get("resource_id"), item.get("bulk_id")
    if rid:
        return rid
    if bid:
        return bid if bid.startswith("bulkId:") else f"bulkId:{bid}"
    return NEW


class Reading:
    """scimguard's reading of one write, indexed by resource key."""

    def __init__(self, evaluation: dict[str, Any]) -> None:
        self.evaluation = evaluation
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.changes: dict[str, list[dict[str, Any]]] = {}
        for e in evaluation.get("event_details") or []:
            self.events.setdefault(reading_key(e), []).append(e)
        for c in evaluation.get("changes") or []:
            self.changes.setdefault(reading_key(c), []).append(c)

    @property
    def refused(self) -> bool:
        return self.evaluation.get("decision") == "block" or self.evaluation.get("error") is not None

    def ev(self, key: str, *types: str) -> list[dict[str, Any]]:
        return [e for e in self.events.get(key, []) if e.get("type") in types]

    def ch(self, key: str, attr: str) -> list[dict[str, Any]]:
        return [c for c in self.changes.get(key, []) if str(c.get("attribute", "")).lower() == attr.lower()]


def disagreements(observed: list[dict[str, Any]], reading: Reading) -> list[dict[str, Any]]:
    """Each observed change the reading does not cover, with `class` = `<what>:<reason>`."""
    out = []
    for o in observed:
        reason = _uncovered(o, reading)
        if reason:
            out.append({**o, "class": f"{o['what']}:{reason}"})
    return out


def _uncovered(o: dict[str, Any], r: Reading) -> str | None:
    key, what = o["resource"], o["what"]
    if what == "resource_clobbered":
        # The implementation replaced the whole resource by a non-object (scim-patch given a
        # path-less op whose `value` is not an object): nothing in a reading covers that.
        return "unreported"
    if what in ("group_deleted", "user_deleted"):
        return None if r.ev(key, what) else "unreported"
    if what == "member_added":
        evs = r.ev(key, "group_member_added", "group_members_replaced")
        if any(o["member"] in e.get("members", []) for e in evs) or (o["member"] == ANON and evs):
            return None
        return "wrong_member" if evs else "unreported"
    if what == "member_removed":
        removed = r.ev(key, "group_member_removed")
        if any(o["member"] in e.get("members", []) or e.get("scope") in AMBIGUOUS_SCOPES for e in removed):
            return None
        if r.ev(key, "group_members_replaced", "group_deleted"):
            return None
        if any("possible_clear" in (c.get("flags") or []) for c in r.ch(key, "members")):
            return None
        return "wrong_member" if removed else "unreported"
    if what == "group_renamed":
        return _last_value(r.ch(key, "displayName"), o["value"])
    if what == "active":
        return _active(o, r)
    if what in ("userName", "externalId"):
        found = _last_value(r.ch(key, what), o["value"])
        if found == "unreported" and any(what in (e.get("values") or []) for e in r.ev(key, "identity_changed")):
            return None
        return found
    if what == "emails":
        ok = r.ch(key, "emails") or any("emails" in (e.get("values") or []) for e in r.ev(key, "identity_changed"))
        return None if ok else "unreported"
    if what == "password":
        return None if r.ev(key, "credential_changed") or r.ch(key, "password") else "unreported"
    if what in ("roles", "entitlements"):
        return _grants(o, r)
    if what == "user_groups":
        kind = "group_member_added" if o["added"] else "group_member_removed"
        if any(key in e.get("members", []) or e.get("scope") in AMBIGUOUS_SCOPES for e in r.ev(o["group"], kind)):
            return None
        return "not_membership" if r.ch(key, "groups") else "unreported"
    return None


def _last_value(changes: list[dict[str, Any]], value: Any) -> str | None:
    if not changes:
        return "unreported"
    last = changes[-1]
    if value is None:
        if _clears(last):
            return None
        return "order_differs" if any(_clears(c) for c in changes) else "wrong_value"
    if _sets(last, value):
        return None
    # The value is in the reading, but not as the last write: the implementation skipped or
    # reordered a later one (a failed Bulk operation, a key it spells differently). Reported, but
    # what a gateway learns from the request (the last name) differs from the upstream's state.
    return "order_differs" if any(_sets(c, value) for c in changes) else "wrong_value"


def _clears(change: dict[str, Any]) -> bool:
    return change.get("op") == "remove" or "possible_clear" in (change.get("flags") or [])


def _sets(change: dict[str, Any], value: Any) -> bool:
    values = change.get("values") or []
    return change.get("op") in ("add", "replace") and bool(values) and values[-1] == value


def _active(o: dict[str, Any], r: Reading) -> str | None:
    key = o["resource"]
    if o["value"] is False:
        if r.ev(key, "user_deprovisioned"):
            return None
        return "no_deprovision_event" if r.ch(key, "active") else "unreported"
    if r.ch(key, "active") or r.ev(key, "user_reactivated", "user_deprovisioned"):
        return None
    return "unreported"


def _strings(v: Any) -> set[str]:
    if isinstance(v, str):
        found = {v}
        try:
            found |= _strings(json.loads(v)) if v[:1] in "{[" else set()
        except ValueError:
            pass
        return found
    if isinstance(v, dict):
        return set().union(*(_strings(x) for x in v.values())) if v else set()
    if isinstance(v, list):
        return set().union(*(_strings(x) for x in v)) if v else set()
    return {json.dumps(v)}


def _grants(o: dict[str, Any], r: Reading) -> str | None:
    key, attr = o["resource"], o["what"]
    event = "role_changed" if attr == "roles" else "entitlement_changed"
    changes, events = r.ch(key, attr), r.ev(key, event)
    if not changes and not events:
        return "unreported"
    reported = set().union(*(_strings(c.get("values")) for c in changes), *(_strings(e.get("values")) for e in events))
    for entry in o["value"]:
        value = json.loads(entry)
        # An entry without a value grants nothing a rule could match; the attribute change covers it.
        wanted = _strings(value) if value is not None else set()
        if wanted and not (wanted & reported):
            return "value_unreported"
    return None
