"""scimguard's behaviour inside real Envoy 1.40, over HTTP/1.1 and h2c, against the filter
contract and the default policy (policies/default.json).

Contract under test:
  * to upstream on a judged write: x-scim-audit-id, x-scim-decision, x-scim-risk, x-scim-rules
    (at least when a tag rule fires); client-sent x-scim-* never reach the upstream;
  * to the client: x-scim-audit-id and x-scim-decision on every SCIM write response;
  * block = local reply, 403 (or the rule's status), application/scim+json, SCIM Error body whose
    detail names the rule; over-limit body 413; malformed JSON / duplicate keys 400
    invalidSyntax; unsupported Content-Encoding 415 or 400; none of these reach the upstream;
  * exactly one audit JSON line per SCIM write, with the keys in AUDIT_KEYS; no password in any log;
  * Prometheus counters named scimguard_*; an invalid policy stops Envoy from starting.
Default policy rules: privileged-group-member-add (block), user-reactivated, identity-attribute-changed,
password-set-via-scim (tag).
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import httpx
import payloads
import pytest
from clients import client, h2_request_with_trailers
from harness import Gateway, free_port, policy_path, render_config, start_envoy, validate_config, wait_for

AUDIT_KEYS = {
    "kind", "time", "audit_id", "request_id", "actor", "method", "path", "resource_type",
    "resource_id", "events", "changes", "rules", "decision", "mode", "status", "duration_ms",
}
SPOOF = "spoofed-by-client"
ONE_MIB = 1024 * 1024


# --- helpers ---------------------------------------------------------------------------------


def upstream_saw(gateway: Gateway, method: str, path_suffix: str) -> list[dict[str, Any]]:
    return [r for r in gateway.upstream_records() if r["method"] == method and r["path"].endswith(path_suffix)]


def assert_scim_error(response: httpx.Response, status: int | tuple[int, ...], scim_type: str | None = None) -> dict[str, Any]:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, f"{response.status_code} {response.text[:500]}"
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert body["schemas"] == [payloads.ERROR]
    assert body["status"] == str(response.status_code)
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


def create_admin_group(scim: httpx.Client) -> str:
    """POST a group named Administrators through the gateway; returns its id."""
    response = scim.post("/Groups", content=payloads.group("Administrators"))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def create_user(scim: httpx.Client, **kwargs: Any) -> str:
    response = scim.post("/Users", content=payloads.user(**kwargs))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def audit_for(gateway: Gateway, audit_id: str) -> dict[str, Any]:
    matches = []

    def found() -> bool:
        matches[:] = [r for r in gateway.audit_records() if r.get("audit_id") == audit_id]
        return bool(matches)

    try:
        wait_for(found, 5, f"the audit line {audit_id}")
    except TimeoutError:
        pytest.fail(f"no audit line with audit_id {audit_id}; audit log has {len(gateway.audit_records())} lines")
    assert len(matches) == 1, matches
    return matches[0]


# --- blocking --------------------------------------------------------------------------------


def test_member_add_to_privileged_group_is_blocked_before_the_upstream(scim: httpx.Client, gateway: Gateway, direct: httpx.Client) -> None:
    group_id = create_admin_group(scim)
    member_id = create_user(scim)
    response = scim.patch(f"/Groups/{group_id}", content=payloads.add_members(member_id))
    body = assert_scim_error(response, 403)
    assert "privileged-group-member-add" in body["detail"]
    assert response.headers.get("x-scim-decision") == "block"
    assert response.headers.get("x-scim-audit-id")
    assert upstream_saw(gateway, "PATCH", f"/Groups/{group_id}") == []
    assert "members" not in direct.get(f"/Groups/{group_id}").json()
    record = audit_for(gateway, response.headers["x-scim-audit-id"])
    assert record["decision"] == "block"
    assert record["resource_id"] == group_id
    assert "privileged-group-member-add" in [rule["id"] for rule in record["rules"]]


def test_trailers_do_not_bypass_the_decision(gateway: Gateway) -> None:
    with client(gateway.url, "http/1.1") as scim:
        group_id = create_admin_group(scim)
        member_id = create_user(scim)
    blocked = h2_request_with_trailers(
        f"{gateway.url}/Groups/{group_id}", "PATCH", payloads.add_members(member_id), [("x-trailer", "1")])
    assert blocked.status == 403, blocked.body[:500]
    assert blocked.headers["content-type"].startswith("application/scim+json")
    assert "privileged-group-member-add" in blocked.json()["detail"]
    assert upstream_saw(gateway, "PATCH", f"/Groups/{group_id}") == []

    body = payloads.user()
    allowed = h2_request_with_trailers(f"{gateway.url}/Users", "POST", body, [("x-trailer", "1")])
    assert allowed.status == 201, allowed.body[:500]
    assert [r for r in gateway.upstream_records() if r["body"] == body.decode()], "benign body with trailers never arrived"


# --- passing through -------------------------------------------------------------------------


def test_benign_user_create_reaches_the_upstream_unchanged(scim: httpx.Client, gateway: Gateway) -> None:
    body = payloads.user(name={"givenName": "Barbara", "familyName": "Jensen"}, active=True)
    response = scim.post("/Users", content=body)
    assert response.status_code == 201, response.text
    assert response.headers.get("x-scim-decision") == "allow"
    audit_id = response.headers.get("x-scim-audit-id")
    assert audit_id
    received = [r for r in gateway.upstream_records() if r["body"] == body.decode()]
    assert len(received) == 1
    assert received[0]["body_b64"] == base64.b64encode(body).decode()
    assert received[0]["method"] == "POST" and received[0]["path"] == "/v2/Users"
    record = audit_for(gateway, audit_id)
    assert record["decision"] == "allow"
    assert record["resource_type"] == "Users"  # endpoint names, as in the policy language
    assert record["resource_id"] == response.json()["id"]


def test_tagged_write_carries_the_tags_to_the_upstream(scim: httpx.Client, gateway: Gateway) -> None:
    body = payloads.user(password="Tag-Me-Pa55word!")
    response = scim.post("/Users", content=body)
    assert response.status_code == 201, response.text
    assert response.headers.get("x-scim-decision") == "tag"
    received = [r for r in gateway.upstream_records() if r["body"] == body.decode()]
    assert len(received) == 1, "tagging must not change the body"
    headers = received[0]["headers"]
    assert headers["x-scim-decision"] == "tag"
    assert headers["x-scim-audit-id"] == response.headers["x-scim-audit-id"]
    assert "password-set-via-scim" in headers["x-scim-rules"]
    assert headers.get("x-scim-risk")


def test_delete_is_decided_and_audited(scim: httpx.Client, gateway: Gateway) -> None:
    user_id = create_user(scim)
    response = scim.delete(f"/Users/{user_id}")
    assert response.status_code == 204, response.text
    assert response.headers.get("x-scim-decision")
    record = audit_for(gateway, response.headers["x-scim-audit-id"])
    assert record["method"] == "DELETE"
    assert record["resource_type"] == "Users"  # endpoint names, as in the policy language
    assert record["resource_id"] == user_id
    assert record["events"] and all("type" in event for event in record["events"])
    assert len(upstream_saw(gateway, "DELETE", f"/Users/{user_id}")) == 1


def test_client_cannot_spoof_scim_headers(scim: httpx.Client, gateway: Gateway) -> None:
    spoofed = {"x-scim-decision": "allow", "x-scim-audit-id": SPOOF, "x-scim-rules": SPOOF,
               "x-scim-risk": SPOOF, "x-scim-anything": SPOOF}
    marker = payloads.unique("spoof")
    write = scim.post("/Users", content=payloads.user(marker), headers=spoofed)
    assert write.status_code == 201, write.text
    read = scim.get("/Users", params={"filter": f'userName eq "{marker}"'}, headers=spoofed)
    assert read.status_code == 200
    arrived = [r for r in gateway.upstream_records() if marker in r["body"] or marker in r["query"]]
    assert len(arrived) == 2
    for record in arrived:
        scim_headers = {k: v for k, v in record["headers"].items() if k.startswith("x-scim-")}
        assert SPOOF not in json.dumps(scim_headers), scim_headers
        assert "x-scim-anything" not in scim_headers
    assert write.headers.get("x-scim-audit-id") != SPOOF


def test_a_client_cannot_forge_an_audit_line(scim: httpx.Client, gateway: Gateway) -> None:
    """The audit log's cheap test is the `x-scim-audit-id` request header scimguard sets on what it let
    through (envoy.yaml); Envoy removes a client's own before any filter runs, so a request scimguard
    never judged leaves no line, not even on a route where the filter is off."""
    before = gateway.audit_mark()
    forged = {"x-scim-audit-id": SPOOF}
    with httpx.Client(timeout=10) as raw:
        raw.get(f"http://127.0.0.1:{gateway.port}/static/page", headers=forged)  # filter disabled here
        raw.get(f"{gateway.app_url}/projects", headers=forged)
    assert scim.get("/Users", headers=forged).status_code == 200
    assert gateway.audit_mark() == before
    text = gateway.audit_log.read_text() if gateway.audit_log.exists() else ""
    assert SPOOF not in text
    assert not [line for line in text.splitlines() if not line.startswith("{")], "a line that is not a record"


# --- refusing what cannot be judged ----------------------------------------------------------


def test_oversize_body_is_refused_with_413(scim: httpx.Client, gateway: Gateway) -> None:
    body = payloads.oversize_user(ONE_MIB + 1)
    response = scim.post("/Users", content=body)
    assert_scim_error(response, 413)
    assert not [r for r in gateway.upstream_records() if len(r["body_b64"]) > ONE_MIB]


MALFORMED = {
    "truncated": lambda name: b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "' + name.encode(),
    "duplicate-key": lambda name: (
        b'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"%s","userName":"%s-2"}'
        % (name.encode(), name.encode())
    ),
}


@pytest.mark.parametrize("shape", sorted(MALFORMED))
def test_malformed_json_is_refused_with_400(scim: httpx.Client, gateway: Gateway, shape: str) -> None:
    body = MALFORMED[shape](payloads.unique("malformed"))
    response = scim.post("/Users", content=body)
    assert_scim_error(response, 400, "invalidSyntax")
    assert not [r for r in gateway.upstream_records() if r["body"] == body.decode()]


def test_unsupported_content_encoding_is_refused(scim: httpx.Client, gateway: Gateway) -> None:
    marker = payloads.unique("gzip")
    response = scim.post("/Users", content=gzip.compress(payloads.user(marker)),
                         headers={"content-encoding": "gzip"})
    assert_scim_error(response, (415, 400))
    assert not [r for r in gateway.upstream_records() if r["headers"].get("content-encoding") == "gzip"]


# --- audit trail, secrets, metrics -----------------------------------------------------------


def test_every_write_leaves_exactly_one_audit_line(scim: httpx.Client, gateway: Gateway) -> None:
    before = gateway.audit_mark()
    group_id = create_admin_group(scim)
    writes = [
        scim.post("/Users", content=payloads.user()),
        scim.post("/Groups", content=payloads.group(payloads.unique("team"))),
    ]
    user_id = writes[0].json()["id"]
    writes += [
        scim.put(f"/Users/{user_id}", content=payloads.user(payloads.unique("renamed"))),
        scim.patch(f"/Users/{user_id}", content=payloads.replace("displayName", "B. Jensen")),
        scim.patch(f"/Groups/{group_id}", content=payloads.add_members(user_id)),  # blocked
        scim.post("/Users", content=b"{not json"),  # 400
        scim.post("/Users", content=payloads.oversize_user(ONE_MIB + 1)),  # 413
        scim.delete(f"/Users/{user_id}"),
    ]
    scim.get(f"/Users/{user_id}")  # reads leave no audit line
    records = gateway.wait_audit(before + 1 + len(writes))[before:]
    assert len(records) == 1 + len(writes), [r.get("method") for r in records]
    ids = [r["audit_id"] for r in records]
    assert len(set(ids)) == len(ids)
    for response in writes:
        assert response.headers.get("x-scim-audit-id") in ids, (response.status_code, response.text[:200])
    for record in records:
        assert AUDIT_KEYS <= record.keys(), AUDIT_KEYS - record.keys()
        assert record["kind"] == "scim_write"
        assert isinstance(record["events"], list) and all("type" in e for e in record["events"])
        assert isinstance(record["rules"], list) and all("id" in r for r in record["rules"])


def test_passwords_never_reach_any_log(scim: httpx.Client, gateway: Gateway) -> None:
    before = gateway.audit_mark()
    secret = payloads.unique("Pa55word-NEVER-LOG")
    user_id = create_user(scim, password=secret)
    assert scim.patch(f"/Users/{user_id}", content=payloads.replace("password", secret + "2")).status_code in (200, 204)
    assert scim.put(f"/Users/{user_id}", content=payloads.user(payloads.unique("u"), password=secret + "3")).status_code == 200
    gateway.wait_audit(before + 3)
    logs = gateway.logs_text()
    assert secret not in logs
    assert any(secret in r["body"] for r in gateway.upstream_records()), "the upstream must still get the password"


def test_counters_are_exported_and_increase(scim: httpx.Client, gateway: Gateway) -> None:
    def scimguard_total() -> float:
        return sum(v for k, v in gateway.prometheus().items() if k.startswith("scimguard_"))

    before = scimguard_total()
    assert any(k.startswith("scimguard_") for k in gateway.prometheus()), "no scimguard_* metric exported"
    create_user(scim)
    scim.post("/Users", content=b"{not json")
    # Counted in the VM, published on its tick (at most a second later).
    wait_for(lambda: scimguard_total() > before, 3, "the counters to be published")


# --- configuration ---------------------------------------------------------------------------


def test_invalid_policy_stops_envoy_with_a_reason(tmp_path: Path) -> None:
    policy = json.loads(policy_path().read_text())
    policy["frobnicate_setting"] = True
    bad = tmp_path / "bad-policy.json"
    bad.write_text(json.dumps(policy))
    admin = free_port()
    config = render_config(tmp_path, policy=bad, ports={"listen": free_port(), "admin": admin,
                                                         "upstream": free_port(), "app": free_port()})
    validation = validate_config(config)
    assert validation.returncode != 0
    assert "frobnicate_setting" in validation.stdout + validation.stderr
    with pytest.raises(RuntimeError, match="frobnicate_setting"):
        start_envoy(tmp_path, config, base_id=admin, admin_port=admin).stop()


# --- group names the filter never saw, Bulk, path tricks --------------------------------------


def test_unseen_group_name_is_looked_up_on_the_lookup_cluster(scim: httpx.Client, direct: httpx.Client, gateway: Gateway) -> None:
    """Groups created behind the gateway's back: the filter asks `scim_lookup` for the name."""
    ordinary = direct.post("/Groups", content=payloads.group(payloads.unique("Engineering"))).json()["id"]
    admins = direct.post("/Groups", content=payloads.group("Administrators")).json()["id"]
    member_id = direct.post("/Users", content=payloads.user()).json()["id"]

    allowed = scim.patch(f"/Groups/{ordinary}", content=payloads.add_members(member_id))
    assert allowed.status_code in (200, 204), allowed.text
    lookups = [r for r in upstream_saw(gateway, "GET", f"/Groups/{ordinary}") if "displayName" in r["query"]]
    assert lookups, "an allowed PATCH on an unseen group proves a lookup; none reached the upstream"
    assert len(upstream_saw(gateway, "PATCH", f"/Groups/{ordinary}")) == 1

    blocked = scim.patch(f"/Groups/{admins}", content=payloads.add_members(member_id))
    assert_scim_error(blocked, 403)
    assert upstream_saw(gateway, "PATCH", f"/Groups/{admins}") == []


def test_bulk_cannot_smuggle_a_privileged_member_add(scim: httpx.Client, gateway: Gateway) -> None:
    group_id = create_admin_group(scim)
    member_id = create_user(scim)
    bulk = payloads.encode({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": json.loads(payloads.user())},
            {"method": "PATCH", "path": f"/Groups/{group_id}", "data": json.loads(payloads.add_members(member_id))},
        ],
    })
    response = scim.post("/Bulk", content=bulk)
    body = assert_scim_error(response, 403)
    assert "privileged-group-member-add" in body["detail"]
    # Other tests of the session send Bulks that pass; this one must not have reached the upstream.
    assert [r for r in upstream_saw(gateway, "POST", "/Bulk") if group_id in r["body"]] == []


PATH_TRICKS = {
    "double-slash": "/scim/v2//Groups/{id}",
    "dot-dot": "/scim/v2/Users/../Groups/{id}",
    "dot": "/scim/v2/./Groups/{id}",
    "query": "/scim/v2/Groups/{id}?attributes=members",
    "scim-suffix": "/scim/v2/Groups/{id}.scim",  # scim2-server strips `.scim` (RFC 7644 §3.8)
}


@pytest.mark.parametrize("trick", sorted(PATH_TRICKS))
def test_path_tricks_do_not_bypass_the_block(gateway: Gateway, trick: str) -> None:
    """Raw paths via http.client (httpx would normalise them before sending)."""
    with client(gateway.url, "http/1.1") as scim:
        group_id = create_admin_group(scim)
        member_id = create_user(scim)
    path = PATH_TRICKS[trick].format(id=group_id)
    status, _ = raw_http1(gateway.port, "PATCH", path, payloads.add_members(member_id))
    assert status == 403
    assert upstream_saw(gateway, "PATCH", group_id) == []
    assert upstream_saw(gateway, "PATCH", f"{group_id}.scim") == []


def test_escaped_slash_is_rejected_by_envoy(gateway: Gateway) -> None:
    with client(gateway.url, "http/1.1") as scim:
        group_id = create_admin_group(scim)
    status, _ = raw_http1(gateway.port, "PATCH", f"/scim/v2/Groups%2F{group_id}", payloads.add_members("x"))
    assert status == 400
    assert not [r for r in gateway.upstream_records() if r["method"] == "PATCH" and group_id in r["path"]]


def raw_http1(port: int, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    import http.client  # noqa: PLC0415 - only these tests need a client that sends paths verbatim

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"content-type": "application/scim+json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
