"""The audit trail in real Envoy 1.40 (issue 4): central shipping to a collector, signed webhook
notifications, access auditing of application routes with a JWT actor, stateful detections, and
correlation ids, with policies/audit-trail.json (tuned for test speed: short flush and backoff,
small detection thresholds).

Contract under test:
  * every SCIM write's record reaches the collector exactly once in a normal run, with the ids of
    the access log; during a collector outage (503, then connection refused) every request is still
    served, failures and retries are counted in /stats/prometheus, and once it is back the records
    arrive; enqueued = delivered + dropped + failed + pending at all times;
  * a blocked request and a monitor-mode match each send one CloudEvent whose Standard Webhooks
    signature verifies (checked here with hmac/hashlib, independently of the filter); the secret
    is in no log;
  * `/api/` requests give `kind: access` records with route templates and the JWT `sub` as actor;
    reads are sampled (rate 0: none; rate 1: all), writes and denials (403 from the app, 401 from
    jwt_authn) never are;
  * N+1 deprovisions within the window trip the storm: the (N+1)th is refused (429, detail names
    the detection) until cleared on the operator listener; blocked attempts raise one actor's risk;
  * audit id, x-request-id and the traceparent trace id are the same in the upstream's headers,
    the record, the OCSF events and the notification of one request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import payloads
import pytest
from clients import client
from conftest import require_inputs
from harness import ROOT, Gateway, free_port, render_config, start_gateway, validate_config, wait_for
from sinks import AppUpstream, Sink

POLICY = ROOT / "policies" / "audit-trail.json"
SECRET = json.loads(POLICY.read_text())["notify"]["secret"]
JWT_KEY = base64.urlsafe_b64encode(b"e2e-demo-hs256-key-0123456789abcd").decode().rstrip("=")
STORM_MAX = 3
RISK_ATTEMPTS = 2


# --- fixtures --------------------------------------------------------------------------------


def tuned_policy(workdir: Path, collector: dict[str, Any] | None = None, secret_env: str | None = None,
                 **access: Any) -> Path:
    """policies/audit-trail.json with test-speed delivery and small detection thresholds (and, with
    `secret_env`, the webhook key read from that VM environment variable instead of the policy)."""
    policy = json.loads(POLICY.read_text())
    if secret_env:
        del policy["notify"]["secret"]
        policy["notify"]["secret_env"] = secret_env
    policy["audit"]["collector"].update(flush_interval_ms=100, backoff_initial_ms=100, backoff_max_ms=400, max_retries=40)
    policy["audit"]["collector"].update(collector or {})
    policy["notify"].update(backoff_initial_ms=100, backoff_max_ms=400)
    policy["access"].update({"sample_rate": 0.0, **access})
    policy["detections"]["deprovision_storm"].update(max=STORM_MAX)
    policy["detections"]["actor_risk"].update(blocked_attempts=RISK_ATTEMPTS)
    path = workdir / "policy.json"
    path.write_text(json.dumps(policy, indent=1))
    return path


class Trail:
    """A gateway with the audit-trail policy and its sinks."""

    def __init__(self, workdir: Path, collector: dict[str, Any] | None = None,
                 vm_env: dict[str, str] | None = None, secret_env: str | None = None, **access: Any) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.collector, self.webhook, self.app = Sink("collector"), Sink("webhook"), AppUpstream()
        ports = {"collector": self.collector.port, "webhook": self.webhook.port, "app": self.app.port}
        try:
            policy = tuned_policy(workdir, collector, secret_env=secret_env, **access)
            self.gw = start_gateway(workdir, policy=policy, ports=ports, jwt_key=JWT_KEY, vm_env=vm_env)
        except BaseException:
            self.stop_sinks()
            raise

    def stop_sinks(self) -> None:
        self.collector.stop()
        self.webhook.stop()
        self.app.stop()

    def stop(self) -> None:
        self.gw.stop()
        self.stop_sinks()

    def stats(self) -> dict[str, float]:
        return {k.removesuffix("{}"): v for k, v in self.gw.prometheus().items() if k.startswith("scimguard_")}

    def collected(self, audit_id: str) -> list[dict[str, Any]]:
        """The project records (not OCSF events) the collector accepted for one request."""
        return [r for r in self.collector.lines() if r.get("kind") and r.get("audit_id") == audit_id]

    def wait_collected(self, audit_ids: list[str], timeout: float = 15) -> None:
        wait_for(lambda: all(self.collected(a) for a in audit_ids), timeout, f"{len(audit_ids)} records at the collector")


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trail]:
    require_inputs()
    t = Trail(tmp_path_factory.mktemp("trail"))
    yield t
    t.stop()


@pytest.fixture
def scim(trail: Trail) -> Iterator[httpx.Client]:
    with client(trail.gw.url, "http/1.1") as c:
        yield c


# --- helpers ---------------------------------------------------------------------------------


def traceparent() -> tuple[str, str]:
    trace = hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:32]
    return f"00-{trace}-00f067aa0ba902b7-01", trace


def create_user(scim: httpx.Client, **headers: str) -> httpx.Response:
    response = scim.post("/Users", content=payloads.user(), headers=headers)
    assert response.status_code == 201, response.text
    return response


def mint_jwt(sub: str, key: str = JWT_KEY) -> str:
    """An HS256 JWT for the demo provider, minted with the stdlib (RFC 7515 compact form)."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "demo"}).encode())
    claims = b64(json.dumps({"iss": "scimguard-demo", "sub": sub, "exp": int(time.time()) + 600}).encode())
    raw_key = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    signature = hmac.new(raw_key, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64(signature)}"


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> None:
    """The Standard Webhooks check, written from the spec: HMAC-SHA256 over `id.timestamp.body`
    with the base64-decoded key after `whsec_`; `webhook-signature` is space-separated `v1,<b64>`."""
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    assert abs(time.time() - int(timestamp)) <= tolerance, "timestamp outside the replay window"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in headers["webhook-signature"].split() if s.startswith("v1,")]
    assert any(hmac.compare_digest(expected, s) for s in offered), "no valid v1 signature"


def access_records(gw: Gateway) -> list[dict[str, Any]]:
    return [r for r in gw.audit_records() if r.get("kind") == "access"]


def wait_access(gw: Gateway, predicate: Any, what: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def probe() -> bool:
        found[:] = [r for r in access_records(gw) if predicate(r)]
        return bool(found)

    wait_for(probe, 5, what)
    assert len(found) == 1, found
    return found[0]


# --- central shipping ------------------------------------------------------------------------


def test_a_normal_run_delivers_every_record_once(trail: Trail, scim: httpx.Client) -> None:
    ids = [create_user(scim).headers["x-scim-audit-id"] for _ in range(8)]
    trail.wait_collected(ids)
    for audit_id in ids:
        shipped = trail.collected(audit_id)
        assert len(shipped) == 1, shipped
        assert shipped[0]["kind"] == "scim_write"
        local = [r for r in trail.gw.audit_records() if r.get("audit_id") == audit_id]
        assert local == shipped, "the collector gets exactly the access log's record"
    # format "both": the OCSF events of each request ride along, correlated by request id.
    ocsf = [e for e in trail.collector.lines() if "class_uid" in e]
    request_ids = {trail.collected(a)[0]["request_id"] for a in ids}
    assert request_ids <= {e["metadata"]["correlation_uid"] for e in ocsf}
    batch = trail.collector.accepted()[-1]
    assert batch.headers["content-type"] == "application/x-ndjson"
    assert batch.headers["idempotency-key"] and batch.path == "/v1/records"
    # Counters are published on the VM's tick, after the answer that moved them.
    stats = wait_for(lambda: (s := trail.stats())["scimguard_audit_delivered_total"] >= len(ids) * 2 and s, 3, "delivered")
    assert_conserved(stats)


def assert_conserved(stats: dict[str, float]) -> None:
    accounted = sum(stats[f"scimguard_audit_{k}"] for k in ("delivered_total", "dropped_total", "delivery_failed_total", "pending"))
    assert stats["scimguard_audit_enqueued_total"] == accounted, stats


def test_a_collector_outage_loses_no_request_and_is_counted(trail: Trail, scim: httpx.Client) -> None:
    before = trail.stats()
    trail.collector.fail()  # 503
    during = [create_user(scim).headers["x-scim-audit-id"] for _ in range(3)]
    wait_for(lambda: trail.stats()["scimguard_audit_retries_total"] > before["scimguard_audit_retries_total"], 10, "retries")
    trail.collector.down()  # connection refused
    during += [create_user(scim).headers["x-scim-audit-id"] for _ in range(3)]
    time.sleep(1)
    stats = trail.stats()
    assert_conserved(stats)
    assert stats["scimguard_audit_pending"] > 0, "records wait while the collector is away"
    assert not any(trail.collected(a) for a in during)
    trail.collector.fail(False)
    trail.collector.up()
    trail.wait_collected(during, timeout=20)
    for audit_id in during:
        assert len(trail.collected(audit_id)) == 1
    wait_for(lambda: trail.stats()["scimguard_audit_pending"] == 0, 10, "the queue to drain")
    after = trail.stats()
    assert after["scimguard_audit_delivery_failed_total"] == before["scimguard_audit_delivery_failed_total"]
    assert after["scimguard_audit_dropped_total"] == before["scimguard_audit_dropped_total"]
    assert_conserved(after)
    retried = [r for r in trail.collector.attempts() if int(r.headers.get("x-scimguard-attempt", "0")) > 0]
    assert retried, "the records came back through retries"
    keys = {r.headers["idempotency-key"] for r in trail.collector.attempts() if r.status != 200}
    assert keys & {r.headers["idempotency-key"] for r in retried if r.status == 200}, "a retry keeps its key"


def test_records_past_the_last_retry_or_the_queue_bound_are_counted_not_lost_silently(tmp_path: Path) -> None:
    t = Trail(tmp_path / "lossy", collector={"queue_max": 2, "batch_max": 2, "max_retries": 1})
    try:
        t.collector.down()
        with client(t.gw.url, "http/1.1") as scim:
            ids = [create_user(scim).headers["x-scim-audit-id"] for _ in range(20)]
        assert len(set(ids)) == 20, "every request was served"
        # format both: the record + one OCSF event per request; then nothing left waiting.
        wait_for(lambda: t.stats()["scimguard_audit_enqueued_total"] == 20 * 2, 10, "every item to be counted")
        wait_for(lambda: t.stats()["scimguard_audit_pending"] == 0, 10, "the queue to settle")
        stats = t.stats()
        assert stats["scimguard_audit_dropped_total"] > 0, "drop-oldest beyond queue_max"
        assert stats["scimguard_audit_delivery_failed_total"] > 0, "given up after the last retry"
        assert stats["scimguard_audit_delivered_total"] == 0
        assert_conserved(stats)
        assert len(t.gw.audit_records()) == 20, "the access log is the durable local copy"
    finally:
        t.stop()


# --- notifications ---------------------------------------------------------------------------


def notifications_for(trail: Trail, audit_id: str) -> list[Any]:
    return [r for r in trail.webhook.accepted() if r.headers.get("webhook-id") == audit_id]


def test_blocked_and_monitor_matches_notify_with_a_valid_signature(trail: Trail, scim: httpx.Client) -> None:
    group = scim.post("/Groups", content=payloads.group("Administrators"))
    assert group.status_code == 201, group.text
    member = create_user(scim).json()["id"]
    tp, trace = traceparent()
    blocked = scim.patch(f"/Groups/{group.json()['id']}", content=payloads.add_members(member),
                         headers={"traceparent": tp, "x-client-id": "notify-idp"})
    assert blocked.status_code == 403
    role = {"schemas": [payloads.PATCH_OP], "Operations": [{"op": "add", "path": "roles", "value": [{"value": "billing-admin"}]}]}
    monitored = scim.patch(f"/Users/{member}", content=json.dumps(role).encode(), headers={"x-client-id": "notify-idp"})
    assert monitored.status_code in (200, 204), monitored.text
    assert monitored.headers["x-scim-decision"] == "tag"
    benign = create_user(scim)
    ids = {"blocked": blocked.headers["x-scim-audit-id"], "monitor": monitored.headers["x-scim-audit-id"]}
    wait_for(lambda: all(notifications_for(trail, i) for i in ids.values()), 10, "two notifications")
    for kind, audit_id in ids.items():
        (hook,) = notifications_for(trail, audit_id)
        verify_standard_webhook(SECRET, hook.headers, hook.body)
        event = hook.json()
        assert event["specversion"] == "1.0" and event["id"] == audit_id
        assert hook.headers["content-type"].startswith("application/cloudevents+json")
        assert event["data"]["blocked"] is (kind == "blocked")
        assert event["data"]["monitor_only"] is (kind == "monitor")
    blocked_event = notifications_for(trail, ids["blocked"])[0].json()
    assert blocked_event["traceparent"] == tp and blocked_event["data"]["trace_id"] == trace
    assert "privileged-group-member-add" in [r["id"] for r in blocked_event["data"]["rules"]]
    time.sleep(0.5)
    assert not notifications_for(trail, benign.headers["x-scim-audit-id"]), "a benign write does not notify"
    tampered = dict(notifications_for(trail, ids["blocked"])[0].headers)
    with pytest.raises(AssertionError):
        verify_standard_webhook(SECRET, tampered, notifications_for(trail, ids["blocked"])[0].body + b" ")


def test_a_notification_retry_keeps_its_webhook_id(trail: Trail, scim: httpx.Client) -> None:
    group = scim.post("/Groups", content=payloads.group("Administrators")).json()["id"]
    member = create_user(scim).json()["id"]
    trail.webhook.fail()
    try:
        blocked = scim.patch(f"/Groups/{group}", content=payloads.add_members(member))
        assert blocked.status_code == 403
        audit_id = blocked.headers["x-scim-audit-id"]
        wait_for(lambda: len([r for r in trail.webhook.attempts() if r.headers["webhook-id"] == audit_id]) >= 2, 10, "a retry")
    finally:
        trail.webhook.fail(False)
    wait_for(lambda: notifications_for(trail, audit_id), 10, "the delivery after the retries")
    attempts = [r for r in trail.webhook.attempts() if r.headers["webhook-id"] == audit_id]
    assert len({r.body for r in attempts}) == 1, "the same event every time"
    for attempt in attempts:
        verify_standard_webhook(SECRET, attempt.headers, attempt.body)
    assert trail.stats()["scimguard_notify_retries_total"] >= 1


def test_the_webhook_secret_is_in_no_log(trail: Trail) -> None:
    assert trail.webhook.accepted(), "run after a notification was sent"
    key = SECRET.removeprefix("whsec_")
    texts = trail.gw.logs_text() + (trail.gw.workdir / "envoy.log").read_text(errors="replace")
    texts += "".join(r.body.decode(errors="replace") for r in trail.collector.attempts())
    texts += "".join(r.body.decode(errors="replace") + json.dumps(r.headers) for r in trail.webhook.attempts())
    assert key not in texts and SECRET not in texts


def test_the_webhook_key_can_stay_out_of_the_plugin_config(tmp_path: Path) -> None:
    """notify.secret_env: the key comes from the VM's environment, so /config_dump's plugin
    configuration does not hold it; notifications are still signed with it."""
    t = Trail(tmp_path / "env", vm_env={"SCIMGUARD_WEBHOOK_SECRET": SECRET}, secret_env="SCIMGUARD_WEBHOOK_SECRET")
    try:
        with client(t.gw.url, "http/1.1") as scim:
            group = scim.post("/Groups", content=payloads.group("Administrators")).json()["id"]
            member = create_user(scim).json()["id"]
            blocked = scim.patch(f"/Groups/{group}", content=payloads.add_members(member))
        assert blocked.status_code == 403
        audit_id = blocked.headers["x-scim-audit-id"]
        wait_for(lambda: notifications_for(t, audit_id), 10, "the notification")
        (hook,) = notifications_for(t, audit_id)
        verify_standard_webhook(SECRET, hook.headers, hook.body)
        dump = httpx.get(f"http://127.0.0.1:{t.gw.admin_port}/config_dump").json()
        plugin_configs = [c["configuration"]["value"] for c in wasm_plugin_configs(dump)]
        assert plugin_configs, "the dump shows the scimguard plugin configurations"
        assert all("secret_env" in c and SECRET.removeprefix("whsec_") not in c for c in plugin_configs)
    finally:
        t.stop()


def wasm_plugin_configs(node: Any) -> Iterator[dict[str, Any]]:
    """Every wasm `PluginConfig` (the `config` of an envoy.filters.http.wasm) in a config dump."""
    if isinstance(node, dict):
        if "configuration" in node and "vm_config" in node:
            yield node
        for value in node.values():
            yield from wasm_plugin_configs(value)
    elif isinstance(node, list):
        for value in node:
            yield from wasm_plugin_configs(value)


def test_a_missing_webhook_key_variable_refuses_the_configuration(tmp_path: Path) -> None:
    policy = tuned_policy(tmp_path, secret_env="SCIMGUARD_WEBHOOK_SECRET")
    config = render_config(tmp_path, policy=policy, ports={"listen": free_port(), "admin": free_port()})
    result = validate_config(config)
    assert result.returncode != 0
    assert "SCIMGUARD_WEBHOOK_SECRET" in result.stdout + result.stderr
    assert "is not set" in result.stdout + result.stderr


# --- access auditing -------------------------------------------------------------------------


def test_access_records_sample_reads_but_never_writes_or_denials(trail: Trail) -> None:
    gw = trail.gw
    with httpx.Client(base_url=gw.app_url, timeout=10) as app:
        for _ in range(5):
            assert app.get("/projects/42", headers={"x-user": "reader"}).status_code == 200
        jwt = mint_jwt("alice@example.com")
        created = app.post("/projects/7/members/9", json={}, headers={"authorization": f"Bearer {jwt}", "x-user": "spoofed"})
        assert created.status_code == 201
        denied = app.get("/forbidden/thing", headers={"x-user": "eve"})
        assert denied.status_code == 403
        bad_token = app.get("/projects/1", headers={"authorization": f"Bearer {mint_jwt('mallory', key=JWT_KEY[::-1])}"})
        assert bad_token.status_code == 401
    write = wait_access(gw, lambda r: r["method"] == "POST", "the POST's access record")
    assert write["route"] == "/api/projects/{id}/members/{member}"
    assert write["actor"] == "alice@example.com", "the JWT claim wins over the header"
    assert write["status"] == 201 and write["sampled"] is False
    assert write["request_id"] and write["audit_id"] and isinstance(write["duration_ms"], int)
    forbidden = wait_access(gw, lambda r: r["status"] == 403, "the 403's access record")
    assert (forbidden["route"], forbidden["actor"], forbidden["method"]) == ("/api/*", "eve", "GET")
    unauthenticated = wait_access(gw, lambda r: r["status"] == 401, "jwt_authn's 401")
    assert unauthenticated["route"] == "/api/projects/{id}" and unauthenticated["actor"] is None
    time.sleep(0.3)
    assert not [r for r in access_records(gw) if r["actor"] == "reader"], "rate 0: no read is sampled"
    assert not [r for r in access_records(gw) if "42" in r["route"]], "records carry templates, not ids"
    trail.wait_collected([write["audit_id"], forbidden["audit_id"]])
    stats = wait_for(lambda: (s := trail.stats())["scimguard_access_records_total"] >= 3 and s, 3, "access counters")
    assert stats["scimguard_access_requests_total"] >= 8


def test_sample_rate_one_records_every_read(tmp_path: Path) -> None:
    t = Trail(tmp_path / "rate1", sample_rate=1.0)
    try:
        with httpx.Client(base_url=t.gw.app_url, timeout=10) as app:
            for i in range(4):
                assert app.get(f"/projects/{i}", headers={"x-user": "reader"}).status_code == 200
        wait_for(lambda: len(access_records(t.gw)) >= 4, 5, "4 access records")
        reads = access_records(t.gw)
        assert len(reads) == 4 and all(r["sampled"] and r["route"] == "/api/projects/{id}" for r in reads)
    finally:
        t.stop()


# --- detections ------------------------------------------------------------------------------


def delete_user(scim: httpx.Client, user_id: str, actor: str) -> httpx.Response:
    return scim.delete(f"/Users/{user_id}", headers={"x-client-id": actor})


def test_a_deprovision_storm_is_blocked_until_an_operator_clears_it(trail: Trail, scim: httpx.Client) -> None:
    users = [create_user(scim).json()["id"] for _ in range(STORM_MAX + 3)]
    for user_id in users[:STORM_MAX]:
        assert delete_user(scim, user_id, "storm-idp").status_code == 204
    stormed = delete_user(scim, users[STORM_MAX], "storm-idp")
    assert stormed.status_code == 429, stormed.text
    assert "detection.deprovision_storm" in stormed.json()["detail"]
    deactivate = {"schemas": [payloads.PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    also = scim.patch(f"/Users/{users[STORM_MAX + 1]}", content=json.dumps(deactivate).encode(), headers={"x-client-id": "storm-idp"})
    assert also.status_code == 429, "a deactivation is a deprovision too"
    assert create_user(scim).status_code == 201, "other writes are not affected"
    assert not [r for r in trail.gw.upstream_records() if r["method"] == "DELETE" and r["path"].endswith(users[STORM_MAX])]
    record = [r for r in trail.gw.audit_records() if r.get("audit_id") == stormed.headers["x-scim-audit-id"]]
    wait_for(lambda: [r for r in trail.gw.audit_records() if r.get("audit_id") == stormed.headers["x-scim-audit-id"]], 5, "record")
    record = [r for r in trail.gw.audit_records() if r.get("audit_id") == stormed.headers["x-scim-audit-id"]]
    assert [r["id"] for r in record[0]["rules"]] == ["user-offboarded", "detection.deprovision_storm"]
    wait_for(lambda: notifications_for(trail, stormed.headers["x-scim-audit-id"]), 10, "the storm's notification")

    with httpx.Client(timeout=10) as ops:
        state = ops.get(f"{trail.gw.ops_url}/detections").json()
        assert state["deprovision_storm"]["tripped"] is True
        # The same path on the public listener is an ordinary path: nothing is cleared.
        public = ops.post(f"http://127.0.0.1:{trail.gw.port}/scimguard/detections/deprovision_storm/clear")
        assert public.status_code != 200 or "cleared" not in public.text
        assert delete_user(scim, users[STORM_MAX], "storm-idp").status_code == 429
        cleared = ops.post(f"{trail.gw.ops_url}/detections/deprovision_storm/clear", headers={"x-client-id": "oncall"})
        assert cleared.status_code == 200 and cleared.json()["cleared"] is True
        assert ops.get(f"{trail.gw.ops_url}/detections").json()["deprovision_storm"]["tripped"] is False
    assert delete_user(scim, users[STORM_MAX], "storm-idp").status_code == 204
    operator = wait_access(trail.gw, lambda r: r["route"].endswith("/deprovision_storm/clear"), "the clear's record")
    assert operator["actor"] == "oncall" and operator["method"] == "POST"
    stats = wait_for(lambda: (s := trail.stats())["scimguard_detection_storm_hits_total"] >= 3 and s, 3, "storm counters")
    assert stats["scimguard_detection_storm_trips_total"] >= 1


def test_blocked_attempts_raise_that_actors_risk_only(trail: Trail, scim: httpx.Client) -> None:
    group = scim.post("/Groups", content=payloads.group("Domain Admins")).json()["id"]
    member = create_user(scim).json()["id"]
    for _ in range(RISK_ATTEMPTS):
        attempt = scim.patch(f"/Groups/{group}", content=payloads.add_members(member), headers={"x-client-id": "mallory"})
        assert attempt.status_code == 403
    risky = create_user(scim, **{"x-client-id": "mallory"})
    calm = create_user(scim, **{"x-client-id": "bob"})
    assert risky.headers["x-scim-decision"] == "tag"
    assert calm.headers["x-scim-decision"] == "allow"
    seen = {r["headers"].get("x-scim-audit-id"): r["headers"] for r in trail.gw.upstream_records()}
    mallory = seen[risky.headers["x-scim-audit-id"]]
    assert mallory["x-scim-risk"] == "high" and "detection.actor_risk" in mallory["x-scim-rules"]
    assert "x-scim-risk" not in seen[calm.headers["x-scim-audit-id"]]
    wait_for(lambda: trail.collected(risky.headers["x-scim-audit-id"]), 10, "the risky write's record")
    rules = [r["id"] for r in trail.collected(risky.headers["x-scim-audit-id"])[0]["rules"]]
    assert rules == ["detection.actor_risk"]


def test_a_scim_write_takes_its_actor_from_a_jwt_claim(trail: Trail, scim: httpx.Client) -> None:
    with_jwt = create_user(scim, authorization=f"Bearer {mint_jwt('okta-provisioner@example.com')}", **{"x-client-id": "header-actor"})
    opaque = create_user(scim, authorization="Bearer opaque-idp-token", **{"x-client-id": "header-actor"})
    ids = [r.headers["x-scim-audit-id"] for r in (with_jwt, opaque)]
    trail.wait_collected(ids)
    assert trail.collected(ids[0])[0]["actor"] == "okta-provisioner@example.com"
    assert trail.collected(ids[1])[0]["actor"] == "header-actor", "an opaque IdP token is not a JWT: the header applies"


# --- correlation -----------------------------------------------------------------------------


def test_one_request_has_the_same_ids_everywhere(trail: Trail, scim: httpx.Client) -> None:
    tp, trace = traceparent()
    group = scim.post("/Groups", content=payloads.group("Global Administrators")).json()["id"]
    member = create_user(scim).json()["id"]
    response = scim.patch(f"/Groups/{group}", content=payloads.add_members(member), headers={"traceparent": tp})
    assert response.status_code == 403
    audit_id = response.headers["x-scim-audit-id"]
    trail.wait_collected([audit_id])
    (record,) = trail.collected(audit_id)
    request_id = record["request_id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", request_id) and record["trace_id"] == trace
    local = [r for r in trail.gw.audit_records() if r.get("audit_id") == audit_id]
    assert [(r["request_id"], r["trace_id"]) for r in local] == [(request_id, trace)]
    access_log = [json.loads(line) for line in (trail.gw.workdir / "access.log").read_text().splitlines()]
    assert [a["scim_audit_id"] for a in access_log if a["request_id"] == request_id] == [audit_id]
    ocsf = [e for e in trail.collector.lines() if e.get("metadata", {}).get("correlation_uid") == request_id]
    assert ocsf, "the OCSF events carry the request id"
    wait_for(lambda: notifications_for(trail, audit_id), 10, "the notification")
    data = notifications_for(trail, audit_id)[0].json()["data"]
    assert (data["audit_id"], data["request_id"], data["trace_id"]) == (audit_id, request_id, trace)
    # A forwarded write: the upstream sees the same three ids.
    tp, trace = traceparent()
    forwarded = create_user(scim, traceparent=tp)
    seen = [r["headers"] for r in trail.gw.upstream_records() if r["headers"].get("x-scim-audit-id") == forwarded.headers["x-scim-audit-id"]]
    assert len(seen) == 1 and seen[0]["traceparent"] == tp
    trail.wait_collected([forwarded.headers["x-scim-audit-id"]])
    (record,) = trail.collected(forwarded.headers["x-scim-audit-id"])
    assert (record["request_id"], record["trace_id"]) == (seen[0]["x-request-id"], trace)
