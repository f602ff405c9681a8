"""Issue 12, classes 1 and 5, through real Envoy 1.40 with the default policy: judged by the
UPSTREAM's state afterwards, not only by the gateway's answer.

Class 1: scim2-server reads its Python field names (`display_name`, `user_name`,
`x509_certificates`) as attributes. Every alias route (POST, PUT, Bulk, PATCH path, path-less,
URN-qualified path) that would create or rename a group to a privileged name with a member is
refused with 400 invalidPath, and afterwards no group upstream holds the member under a privileged
name; the benign twins (the same writes with schema names) go through and change the upstream.
Class 5: OneLogin's SCIM 1.0 enterprise template and SCIM 1.1 partial-resource PATCHes are judged
with their events (scim2-server, SCIM 2.0 only, then refuses them itself with 400): a member added
to a privileged group that way is blocked before the upstream.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import payloads
import pytest
from harness import Gateway, wait_for

PRIVILEGED = "Domain Admins"
S1 = ["urn:scim:schemas:core:1.0"]


def upstream_saw(gateway: Gateway, method: str, path_suffix: str) -> list[dict[str, Any]]:
    return [r for r in gateway.upstream_records() if r["method"] == method and r["path"].endswith(path_suffix)]


def audit_for(gateway: Gateway, audit_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def present() -> bool:
        found[:] = [r for r in gateway.audit_records() if r.get("audit_id") == audit_id]
        return bool(found)

    wait_for(present, 5, f"the audit line {audit_id}")
    return found[0]


def create(direct: httpx.Client, path: str, body: bytes) -> str:
    response = direct.post(path, content=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def groups_holding(direct: httpx.Client, member_id: str) -> list[str]:
    """displayNames of every upstream group with `member_id` as a member."""
    listing = direct.get("/Groups", params={"count": "1000"}).json()
    return [
        g.get("displayName", "")
        for g in listing.get("Resources", [])
        if any(m.get("value") == member_id for m in g.get("members", []))
    ]


def assert_unknown_attribute(response: httpx.Response, name: str) -> None:
    assert response.status_code == 400, f"{response.status_code} {response.text[:300]}"
    body = response.json()
    assert body.get("scimType") == "invalidPath", body
    assert f"`{name}`" in body["detail"], body
    assert response.headers.get("x-scim-decision") == "block"


# --- class 1: aliases ---------------------------------------------------------------------------


def alias_attacks(group_id: str, member_id: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """(method, path, body) of every route by which an alias could name a privileged group."""
    members = [{"value": member_id}]
    ordinary = payloads.unique("Marketing")
    patch = lambda *ops: {"schemas": [payloads.PATCH_OP], "Operations": list(ops)}  # noqa: E731
    return {
        "post-beside-displayName": ("POST", "/Groups", {"schemas": [payloads.GROUP], "displayName": ordinary, "display_name": PRIVILEGED, "members": members}),
        "post-alias-only": ("POST", "/Groups", {"schemas": [payloads.GROUP], "display_name": PRIVILEGED, "members": members}),
        "put": ("PUT", f"/Groups/{group_id}", {"schemas": [payloads.GROUP], "displayName": ordinary, "display_name": PRIVILEGED, "members": members}),
        "patch-path": ("PATCH", f"/Groups/{group_id}", patch({"op": "replace", "path": "display_name", "value": PRIVILEGED}, {"op": "add", "path": "members", "value": members})),
        "patch-pathless": ("PATCH", f"/Groups/{group_id}", patch({"op": "replace", "value": {"display_name": PRIVILEGED, "members": members}})),
        "patch-urn-path": ("PATCH", f"/Groups/{group_id}", patch({"op": "replace", "path": f"{payloads.GROUP}:display_name", "value": PRIVILEGED}, {"op": "add", "path": "members", "value": members})),
        "bulk": ("POST", "/Bulk", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
            {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {"schemas": [payloads.GROUP], "display_name": PRIVILEGED, "members": members}}]}),
    }


ATTACKS = sorted(alias_attacks("g", "u"))


@pytest.mark.parametrize("attack", ATTACKS)
def test_an_alias_cannot_make_a_privileged_group_with_a_member(attack: str, scim: httpx.Client, direct: httpx.Client, gateway: Gateway) -> None:
    group_id = create(direct, "/Groups", payloads.group(payloads.unique("Engineering")))
    member_id = create(direct, "/Users", payloads.user())
    method, path, body = alias_attacks(group_id, member_id)[attack]
    seen = len(upstream_saw(gateway, method, path))
    response = scim.request(method, path, content=payloads.encode(body))
    assert_unknown_attribute(response, "display_name")
    assert len(upstream_saw(gateway, method, path)) == seen, "the refused write reached the upstream"
    assert groups_holding(direct, member_id) == [], "a group upstream gained the member"
    assert direct.get(f"/Groups/{group_id}").json()["displayName"].startswith("Engineering")


def test_benign_twins_go_through_and_change_the_upstream(scim: httpx.Client, direct: httpx.Client) -> None:
    member_id = create(direct, "/Users", payloads.user())
    name = payloads.unique("Marketing")
    created = scim.post("/Groups", content=payloads.encode({"schemas": [payloads.GROUP], "displayName": name, "members": [{"value": member_id}]}))
    assert created.status_code == 201, created.text
    assert created.headers.get("x-scim-decision") == "allow"
    assert groups_holding(direct, member_id) == [name]
    renamed = payloads.unique("Marketing Ops")
    group_id = created.json()["id"]
    response = scim.patch(f"/Groups/{group_id}", content=payloads.replace(f"{payloads.GROUP}:displayName", renamed))
    assert response.status_code in (200, 204), response.text
    assert direct.get(f"/Groups/{group_id}").json()["displayName"] == renamed


def test_a_refused_alias_rename_leaves_no_stale_name_to_exploit(scim: httpx.Client, direct: httpx.Client, gateway: Gateway) -> None:
    """The learned name stays right because the alias rename never reaches the upstream."""
    name = payloads.unique("Engineering")
    created = scim.post("/Groups", content=payloads.group(name))
    assert created.status_code == 201, created.text
    group_id = created.json()["id"]
    refused = scim.patch(f"/Groups/{group_id}", content=payloads.replace("display_name", PRIVILEGED))
    assert_unknown_attribute(refused, "display_name")
    member_id = create(direct, "/Users", payloads.user())
    added = scim.patch(f"/Groups/{group_id}", content=payloads.add_members(member_id))
    assert added.status_code in (200, 204), added.text
    assert groups_holding(direct, member_id) == [name], "the group kept its ordinary name upstream"


def test_identity_aliases_are_refused_and_leave_the_user_unchanged(scim: httpx.Client, direct: httpx.Client) -> None:
    user_name = payloads.unique("alice")
    user_id = create(direct, "/Users", payloads.user(user_name))
    response = scim.patch(f"/Users/{user_id}", content=payloads.replace("user_name", payloads.unique("ceo")))
    assert_unknown_attribute(response, "user_name")
    assert direct.get(f"/Users/{user_id}").json()["userName"] == user_name
    twin = scim.patch(f"/Users/{user_id}", content=payloads.replace("userName", payloads.unique("alice2")))
    assert twin.status_code in (200, 204), twin.text
    assert twin.headers.get("x-scim-decision") == "tag", "identity_changed fires on the schema name"


def test_a_certificate_under_an_alias_reaches_no_log(scim: httpx.Client, direct: httpx.Client, gateway: Gateway) -> None:
    secret = payloads.unique("MIIDdzCCAl-secret")
    user_name = payloads.unique("svc")
    response = scim.post("/Users", content=payloads.user(user_name, x509_certificates=[{"value": secret}]))
    assert_unknown_attribute(response, "x509_certificates")
    assert audit_for(gateway, response.headers["x-scim-audit-id"])["decision"] == "block"
    assert secret not in gateway.logs_text()
    listing = direct.get("/Users", params={"filter": f'userName eq "{user_name}"'}).json()
    assert listing.get("totalResults", 0) == 0


# --- class 5: SCIM 1.x --------------------------------------------------------------------------


def test_onelogin_scim1_enterprise_template_is_judged_not_refused(scim: httpx.Client, gateway: Gateway) -> None:
    body = {
        "schemas": ["urn:scim:schemas:core:1.0", "urn:scim:schemas:extension:enterprise:1.0"],
        "userName": payloads.unique("jdoe"),
        "name": {"familyName": "Doe", "givenName": "John", "formatted": "John Doe"},
        "emails": {"value": "jdoe@example.com", "type": "work", "primary": True},
        "title": "Engineer",
        "urn:scim:schemas:extension:enterprise:1.0": {"department": "Engineering", "manager": {"managerId": "m-42"}},
    }
    seen = len(upstream_saw(gateway, "POST", "/Users"))
    response = scim.post("/Users", content=payloads.encode(body))
    assert response.headers.get("x-scim-decision") == "allow", response.text
    assert len(upstream_saw(gateway, "POST", "/Users")) == seen + 1, "the gateway forwarded it"
    # scim2-server speaks SCIM 2.0 only: it refuses the 1.0 extension key itself.
    assert response.status_code == 400, response.text
    record = audit_for(gateway, response.headers["x-scim-audit-id"])
    assert [e["type"] for e in record["events"]] == ["user_provisioned"]


def test_scim11_patch_cannot_add_a_member_to_a_privileged_group(scim: httpx.Client, direct: httpx.Client, gateway: Gateway) -> None:
    created = scim.post("/Groups", content=payloads.group("Administrators"))
    assert created.status_code == 201, created.text
    group_id = created.json()["id"]
    member_id = create(direct, "/Users", payloads.user())
    for body in (
        {"schemas": S1, "members": [{"value": member_id}]},
        {"schemas": S1, "meta": {"attributes": ["members"]}, "members": [{"value": member_id}]},
    ):
        response = scim.patch(f"/Groups/{group_id}", content=payloads.encode(body))
        assert response.status_code == 403, response.text
        assert "privileged-group-member-add" in response.json()["detail"]
    assert upstream_saw(gateway, "PATCH", f"/Groups/{group_id}") == []
    assert groups_holding(direct, member_id) == []


def test_scim11_patch_removals_are_read_with_their_events(scim: httpx.Client, direct: httpx.Client, gateway: Gateway) -> None:
    member_id = create(direct, "/Users", payloads.user())
    group_id = create(direct, "/Groups", payloads.group(payloads.unique("Engineering"), [member_id]))
    body = {"schemas": S1, "members": [{"value": member_id, "operation": "delete"}]}
    response = scim.patch(f"/Groups/{group_id}", content=payloads.encode(body))
    assert response.headers.get("x-scim-decision") == "allow", response.text
    assert len(upstream_saw(gateway, "PATCH", f"/Groups/{group_id}")) == 1
    record = audit_for(gateway, response.headers["x-scim-audit-id"])
    removed = [e for e in record["events"] if e["type"] == "group_member_removed"]
    assert removed and removed[0].get("members") == [member_id], json.dumps(record)[:800]
    user_id = create(direct, "/Users", payloads.user())
    deprovision = scim.patch(f"/Users/{user_id}", content=payloads.encode({"schemas": S1, "active": False}))
    record = audit_for(gateway, deprovision.headers["x-scim-audit-id"])
    assert "user_deprovisioned" in [e["type"] for e in record["events"]]
