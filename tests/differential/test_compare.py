"""The oracle's own rules: what counts as covered, what is a disagreement (run by make test-differential).

Each case is a seed change (before → after) and a hand-written reading; a broken rule in compare.py
either raises a false alarm (covered cases fail) or hides a gap (uncovered cases fail).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import Reading, disagreements, observe  # noqa: E402
from generate import SEED_STATE, writes  # noqa: E402


def after(mutate) -> dict:
    state = copy.deepcopy(SEED_STATE)
    mutate(state)
    return state


def classes(state: dict, events: list[dict], changes: list[dict] | None = None, decision: str = "allow") -> list[str]:
    reading = Reading({"decision": decision, "event_details": events, "changes": changes or [], "error": None})
    return sorted(d["class"] for d in disagreements(observe(SEED_STATE, state), reading))


def ev(kind: str, rid: str, **kw) -> dict:
    return {"type": kind, "resource_id": rid, **kw}


def ch(attr: str, rid: str, op: str = "replace", values: list | None = None, **kw) -> dict:
    return {"attribute": attr, "resource_id": rid, "op": op, "values": values or [], **kw}


ADD_U4 = after(lambda s: s["Groups"]["g2"].setdefault("members", []).append({"value": "u4"}))
REF_U4 = after(lambda s: s["Groups"]["g2"]["members"].append({"$ref": "https://x/scim/v2/Users/u4"}))
EMPTY = after(lambda s: s["Groups"]["g2"]["members"].append({}))
REMOVE_ALL = after(lambda s: s["Groups"]["g1"].pop("members"))


def test_member_add() -> None:
    assert classes(ADD_U4, [ev("group_member_added", "g2", members=["u4"])]) == []
    assert classes(ADD_U4, [ev("group_members_replaced", "g2", members=["u3", "u4"])]) == []
    assert classes(ADD_U4, [ev("group_member_added", "g2", members=["u9"])]) == ["member_added:wrong_member"]
    assert classes(ADD_U4, [ev("group_member_added", "g1", members=["u4"])]) == ["member_added:unreported"]
    assert classes(ADD_U4, []) == ["member_added:unreported"]
    # A member named only by `$ref` is the id at its end; an empty entry needs some member event.
    assert classes(REF_U4, [ev("group_member_added", "g2", members=["u4"])]) == []
    assert classes(REF_U4, [ev("group_members_replaced", "g2")]) == ["member_added:wrong_member"]
    assert classes(EMPTY, [ev("group_member_added", "g2", members=["u1"])]) == []
    assert classes(EMPTY, [], [ch("members", "g2", "add", [{}])]) == ["member_added:unreported"]


def test_member_removal_scopes() -> None:
    for scope in ("all", "filter", "listed_or_all"):
        assert classes(REMOVE_ALL, [ev("group_member_removed", "g1", scope=scope)]) == []
    listed = [ev("group_member_removed", "g1", members=["u1"], scope="listed")]
    assert classes(REMOVE_ALL, listed) == ["member_removed:wrong_member"]
    both = [ev("group_member_removed", "g1", members=["u1", "u2"], scope="listed")]
    assert classes(REMOVE_ALL, both) == []
    assert classes(REMOVE_ALL, [], [ch("members", "g1", "remove", flags=["possible_clear"])]) == []
    assert classes(REMOVE_ALL, [ev("group_deleted", "g1")]) == []


def test_rename_and_identity() -> None:
    renamed = after(lambda s: s["Groups"]["g3"].update(displayName="Domain Admins"))
    assert classes(renamed, [], [ch("displayName", "g3", values=["Domain Admins"])]) == []
    assert classes(renamed, [], [ch("displayName", "g3", values=["Marketing"])]) == ["group_renamed:wrong_value"]
    later = [ch("displayName", "g3", values=["Domain Admins"]), ch("displayName", "g3", values=["Sales"])]
    assert classes(renamed, [], later) == ["group_renamed:order_differs"]
    cleared = after(lambda s: s["Groups"]["g3"].pop("displayName"))
    assert classes(cleared, [], [ch("displayName", "g3", "remove")]) == []
    assert classes(cleared, [], [ch("displayName", "g3", "remove"), ch("displayName", "g3", values=["X"])]) == [
        "group_renamed:order_differs"]
    assert classes(cleared, [], [ch("displayName", "g3", values=["X"])]) == ["group_renamed:wrong_value"]
    assert classes(renamed, [], [ch("display_name", "g3", values=["Domain Admins"])]) == ["group_renamed:unreported"]
    user = after(lambda s: s["Users"]["u1"].update(userName="eve@example.com"))
    assert classes(user, [ev("identity_changed", "u1", values=["userName"])]) == []
    assert classes(user, [], [ch("userName", "u1", values=["x@example.com"])]) == ["userName:wrong_value"]


def test_active_and_grants() -> None:
    off = after(lambda s: s["Users"]["u1"].update(active=False))
    assert classes(off, [ev("user_deprovisioned", "u1")]) == []
    assert classes(off, [], [ch("active", "u1", values=["no"])]) == ["active:no_deprovision_event"]
    stored_string = after(lambda s: s["Users"]["u1"].update(active="False"))  # scim-patch stores as given
    assert classes(stored_string, [ev("user_deprovisioned", "u1")], [ch("active", "u1", values=["False"])]) == []
    admin = after(lambda s: s["Users"]["u2"]["roles"].append({"value": '{"id":"1","value":"admin"}'}))
    assert classes(admin, [ev("role_changed", "u2", values=[{"value": "admin"}])]) == []
    assert classes(admin, [ev("role_changed", "u2", values=[{"value": "reader"}])]) == ["roles:value_unreported"]
    pw = after(lambda s: s["Users"]["u2"].update(password="x"))
    assert classes(pw, [ev("credential_changed", "u2")]) == []
    assert classes(pw, []) == ["password:unreported"]


def test_bulk_created_ids() -> None:
    # scimmy creates the second POST (lower-case `post`) yet answers it with an error and no location.
    request = {"method": "POST", "path": "/scim/v2/Bulk", "body": {"Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "q2", "data": {"userName": "first@example.com"}},
        {"method": "post", "path": "/Users", "bulkId": "q3", "data": {"userName": "second@example.com"}},
        {"method": "POST", "path": "/Groups", "bulkId": "q4", "data": {"displayName": "G", "members": [{"value": "bulkId:q3"}]}}]}}
    response = {"Operations": [{"bulkId": "q2", "status": "400"}, {"bulkId": "q3", "status": "400"},
                               {"bulkId": "q4", "status": "201", "location": "/scim/v2/Groups/new-9"}]}
    state = after(lambda s: (s["Users"].update({"new-1": {"userName": "second@example.com"}}),
                             s["Groups"].update({"new-9": {"displayName": "G", "members": [{"value": "new-1"}]}})))
    seen = observe(SEED_STATE, state, request, response)
    assert {"what": "userName", "resource": "bulkId:q3", "value": "second@example.com"} in seen
    assert {"what": "member_added", "resource": "bulkId:q4", "member": "bulkId:q3"} in seen


def test_generator_is_seeded() -> None:
    assert writes(5, 50) == writes(5, 50)
    assert writes(5, 50) != writes(6, 50)


if __name__ == "__main__":
    for name, fn in sorted(globals().items()):
        if name.startswith("test_"):
            fn()
            print(f"ok  {name}")
