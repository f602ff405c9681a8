"""Issue 12, classes 2, 3, 4 and 6, judged by the upstream's own state: each bypass is attempted
through real Envoy + scimguard with policies/default.json, then the group is read back from
scim2-server directly. An attack must leave the privileged group without the new member; its benign
twin must go through and be applied by the upstream.

  class 2  members named only by `$ref`, `members[…].$ref` writes, id-less entries, the value cap;
  class 3  a rename in one Bulk operation carried to the member add of a later one;
  class 4  a User's readOnly `groups` read as membership of the groups it names (scim2-server ignores
           `groups`, permissive servers apply it: the twin checks the write reached the upstream);
  class 6  ordinary names such as "Root Cause Analysis" are no longer privileged; real admin names are.

Groups are created directly on the upstream, so the gateway learns their names by its lookup.
"""

from __future__ import annotations

from typing import Any

import httpx
import payloads
from harness import Gateway

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


# --- helpers ---------------------------------------------------------------------------------


def create_group(direct: httpx.Client, name: str) -> str:
    response = direct.post("/Groups", content=payloads.group(name))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def create_user(direct: httpx.Client) -> str:
    response = direct.post("/Users", content=payloads.user())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def group_state(direct: httpx.Client, group_id: str) -> dict[str, Any]:
    response = direct.get(f"/Groups/{group_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def member_ids(direct: httpx.Client, group_id: str) -> set[str]:
    """Who the upstream holds as members: each entry's `value`, or the id its `$ref` ends with."""
    members = group_state(direct, group_id).get("members") or []
    return {m.get("value") or str(m.get("$ref", "")).rstrip("/").rsplit("/", 1)[-1] for m in members}


def blocked(response: httpx.Response, status: int = 403, scim_type: str | None = None) -> None:
    assert response.status_code == status, f"{response.status_code} {response.text[:300]}"
    assert response.headers.get("x-scim-decision") == "block"
    if scim_type is not None:
        assert response.json().get("scimType") == scim_type, response.text


def passed(response: httpx.Response) -> None:
    assert response.status_code in (200, 201, 204), f"{response.status_code} {response.text[:300]}"
    assert response.headers.get("x-scim-decision") in ("allow", "tag")


def upstream_got(gateway: Gateway, method: str, path_suffix: str) -> int:
    return sum(1 for r in gateway.upstream_records() if r["method"] == method and r["path"].endswith(path_suffix))


def ref_only(gateway: Gateway, user_id: str) -> bytes:
    return payloads.patch({"op": "add", "path": "members", "value": [{"$ref": f"{gateway.upstream_url}/Users/{user_id}"}]})


def bulk(*operations: dict[str, Any]) -> bytes:
    return payloads.encode({"schemas": [BULK], "Operations": list(operations)})


def bulk_patch(group: str, *operations: dict[str, Any]) -> dict[str, Any]:
    return {"method": "PATCH", "path": f"/Groups/{group}", "data": {"schemas": [payloads.PATCH_OP], "Operations": list(operations)}}


# --- class 2: members named by `$ref` ----------------------------------------------------------


def test_a_ref_only_member_cannot_join_a_privileged_group(scim: httpx.Client, direct: httpx.Client, gateway: Gateway) -> None:
    admins = create_group(direct, payloads.unique("Domain Admins"))
    user = create_user(direct)
    blocked(scim.patch(f"/Groups/{admins}", content=ref_only(gateway, user)))
    assert member_ids(direct, admins) == set()


def test_twin_a_ref_only_member_joins_an_ordinary_group(scim: httpx.Client, direct: httpx.Client, gateway: Gateway) -> None:
    team = create_group(direct, payloads.unique("Marketing"))
    user = create_user(direct)
    passed(scim.patch(f"/Groups/{team}", content=ref_only(gateway, user)))
    assert member_ids(direct, team) == {user}


def test_a_ref_write_cannot_swap_a_member_of_a_privileged_group(scim: httpx.Client, direct: httpx.Client, gateway: Gateway) -> None:
    old, new = create_user(direct), create_user(direct)
    admins = create_group(direct, payloads.unique("Okta Administrators"))
    assert direct.patch(f"/Groups/{admins}", content=payloads.add_members(old)).status_code in (200, 204)
    swap = payloads.replace(f'members[value eq "{old}"].$ref', f"{gateway.upstream_url}/Users/{new}")
    blocked(scim.patch(f"/Groups/{admins}", content=swap))
    assert member_ids(direct, admins) == {old}


def test_a_privileged_group_cannot_be_posted_with_a_ref_only_member(scim: httpx.Client, direct: httpx.Client, gateway: Gateway) -> None:
    name, user = payloads.unique("Super Admins"), create_user(direct)
    body = payloads.encode({"schemas": [payloads.GROUP], "displayName": name,
                            "members": [{"$ref": f"{gateway.upstream_url}/Users/{user}"}]})
    blocked(scim.post("/Groups", content=body))
    found = direct.get("/Groups", params={"filter": f'displayName eq "{name}"'}).json()
    assert found["totalResults"] == 0


def test_empty_member_entries_and_too_many_values_never_reach_the_upstream(scim: httpx.Client, direct: httpx.Client, gateway: Gateway) -> None:
    team = create_group(direct, payloads.unique("Engineering"))
    before = upstream_got(gateway, "PATCH", f"/Groups/{team}")
    empty = payloads.patch({"op": "add", "path": "members", "value": [{}] * 500})
    blocked(scim.patch(f"/Groups/{team}", content=empty), 400, "invalidValue")
    many = payloads.add_members(*[f"u{i}" for i in range(1001)])
    blocked(scim.patch(f"/Groups/{team}", content=many), 413)
    assert upstream_got(gateway, "PATCH", f"/Groups/{team}") == before
    assert member_ids(direct, team) == set()


# --- class 3: names carried inside one Bulk ----------------------------------------------------


def test_a_bulk_rename_then_member_add_is_judged_as_one_patch(scim: httpx.Client, direct: httpx.Client) -> None:
    name, user = payloads.unique("Engineering"), create_user(direct)
    group = create_group(direct, name)
    body = bulk(
        bulk_patch(group, {"op": "replace", "path": "displayName", "value": payloads.unique("Domain Admins")}),
        bulk_patch(group, {"op": "add", "path": "members", "value": [{"value": user}]}),
    )
    blocked(scim.post("/Bulk", content=body))
    state = group_state(direct, group)
    assert state["displayName"] == name
    assert member_ids(direct, group) == set()


def test_a_bulk_rename_away_cannot_launder_a_member_add(scim: httpx.Client, direct: httpx.Client) -> None:
    name, user = payloads.unique("Domain Admins"), create_user(direct)
    group = create_group(direct, name)
    body = bulk(
        bulk_patch(group, {"op": "replace", "path": "displayName", "value": payloads.unique("Marketing")}),
        bulk_patch(group, {"op": "add", "path": "members", "value": [{"value": user}]}),
        bulk_patch(group, {"op": "replace", "path": "displayName", "value": name}),
    )
    blocked(scim.post("/Bulk", content=body))
    assert member_ids(direct, group) == set()


def test_twin_a_bulk_rename_to_an_ordinary_name_and_a_member_add_are_applied(scim: httpx.Client, direct: httpx.Client) -> None:
    user, group = create_user(direct), create_group(direct, payloads.unique("Engineering"))
    new_name = payloads.unique("Engineering Platform")
    body = bulk(
        bulk_patch(group, {"op": "replace", "path": "displayName", "value": new_name}),
        bulk_patch(group, {"op": "add", "path": "members", "value": [{"value": user}]}),
    )
    passed(scim.post("/Bulk", content=body))
    assert group_state(direct, group)["displayName"] == new_name
    assert member_ids(direct, group) == {user}


# --- class 4: membership written from the user side -------------------------------------------


def test_a_users_groups_naming_a_privileged_group_is_blocked(scim: httpx.Client, direct: httpx.Client, gateway: Gateway) -> None:
    admins, user = create_group(direct, payloads.unique("Global Administrators")), create_user(direct)
    before = upstream_got(gateway, "PATCH", f"/Users/{user}")
    body = payloads.patch({"op": "add", "path": "groups", "value": [{"value": admins}]})
    blocked(scim.patch(f"/Users/{user}", content=body))
    assert upstream_got(gateway, "PATCH", f"/Users/{user}") == before
    assert member_ids(direct, admins) == set()


def test_a_user_posted_with_a_privileged_group_is_blocked(scim: httpx.Client, direct: httpx.Client) -> None:
    admins, name = create_group(direct, payloads.unique("jira-administrators")), payloads.unique("mallory")
    blocked(scim.post("/Users", content=payloads.user(name, groups=[{"value": admins}])))
    assert direct.get("/Users", params={"filter": f'userName eq "{name}"'}).json()["totalResults"] == 0
    assert member_ids(direct, admins) == set()


def test_twin_a_users_groups_naming_an_ordinary_group_reaches_the_upstream(scim: httpx.Client, direct: httpx.Client, gateway: Gateway) -> None:
    team, user = create_group(direct, payloads.unique("Marketing")), create_user(direct)
    before = upstream_got(gateway, "PATCH", f"/Users/{user}")
    body = payloads.patch({"op": "add", "path": "groups", "value": [{"value": team}]})
    response = scim.patch(f"/Users/{user}", content=body)
    assert response.headers.get("x-scim-decision") == "allow", response.text
    # scim2-server answers as it reads a readOnly attribute; the point is that it was asked.
    assert upstream_got(gateway, "PATCH", f"/Users/{user}") == before + 1


# --- class 6: the default privileged-name patterns ---------------------------------------------


def test_an_ordinary_group_named_root_cause_analysis_takes_members(scim: httpx.Client, direct: httpx.Client) -> None:
    rca, user = create_group(direct, payloads.unique("Root Cause Analysis")), create_user(direct)
    passed(scim.patch(f"/Groups/{rca}", content=payloads.add_members(user)))
    assert member_ids(direct, rca) == {user}


def test_aws_admin_group_names_stay_privileged(scim: httpx.Client, direct: httpx.Client) -> None:
    aws, user = create_group(direct, "AWSAdministratorAccess-" + payloads.unique("x")), create_user(direct)
    blocked(scim.patch(f"/Groups/{aws}", content=payloads.add_members(user)))
    assert member_ids(direct, aws) == set()
