"""Audit lines that log pipelines accept, in real Envoy 1.40 (issue 15, point 5): with the default
`audit.max_record_bytes` (64 KiB), a blocked 1 MiB Bulk and a PATCH adding 100,000 members to a
privileged group each leave exactly one audit-log line no longer than the bound, which still
names the block, its rule, the privileged group and the first members, with totals and the digest
of the whole record; every OCSF event and record the collector receives and the signed webhook
notification fit too; every output names the policy that judged it (the SHA-256 of the policy
bytes Envoy was given). Policy: policies/audit-trail.json (collector in `both` formats, webhook),
with a body limit raised for the 100,000-member PATCH and one privileged group id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from clients import client
from conftest import require_inputs
from harness import ROOT, Gateway, start_gateway, wait_for
from sinks import Sink

BOUND = 64 * 1024
GROUP = "g-admins-e2e"
RULE = "privileged-group-member-add"


class Bounds:
    """A gateway with the audit-trail policy, its collector and its webhook receiver."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.collector, self.webhook = Sink("collector"), Sink("webhook")
        policy = json.loads((ROOT / "policies" / "audit-trail.json").read_text())
        # Below Envoy's 2 MiB per-connection buffer (envoy.yaml), above a 100,000-member PATCH.
        policy["limits"] = {"max_body_bytes": 2_090_000, "max_values_per_operation": 100_000}
        policy["privileged_groups"]["ids"] = [GROUP]
        policy["audit"]["collector"].update(flush_interval_ms=100)
        policy["detections"]["actor_risk"]["blocked_attempts"] = 100
        self.policy_text = json.dumps(policy, indent=1)
        path = workdir / "policy.json"
        path.write_text(self.policy_text)
        ports = {"collector": self.collector.port, "webhook": self.webhook.port}
        try:
            self.gw: Gateway = start_gateway(workdir, policy=path, ports=ports)
        except BaseException:
            self.stop_sinks()
            raise

    def stop_sinks(self) -> None:
        self.collector.stop()
        self.webhook.stop()

    def stop(self) -> None:
        self.gw.stop()
        self.stop_sinks()


@pytest.fixture(scope="module")
def bounds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bounds]:
    require_inputs()
    b = Bounds(tmp_path_factory.mktemp("bounds"))
    yield b
    b.stop()


def big_bulk(tag: str) -> bytes:
    """Just under 1 MiB: 999 user creates and, at position 700, 50 members added to GROUP."""
    pad = "x" * 900
    ops: list[dict[str, Any]] = []
    for i in range(1000):
        if i == 700:
            members = [{"value": f"{tag}-intruder-{m}"} for m in range(50)]
            ops.append({"method": "PATCH", "path": f"/Groups/{GROUP}", "bulkId": "grant",
                        "data": {"Operations": [{"op": "add", "path": "members", "value": members}]}})
        else:
            ops.append({"method": "POST", "path": "/Users", "bulkId": f"q{i}",
                        "data": {"userName": f"{tag}-user{i}@example.com", "nickName": pad}})
    body = json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                       "Operations": ops}, separators=(",", ":")).encode()
    assert 1_000_000 < len(body) < 1 << 20, len(body)
    return body


def huge_patch() -> bytes:
    members = [{"value": f"u{m:05d}"} for m in range(100_000)]
    body = json.dumps({"Operations": [{"op": "add", "path": "members", "value": members}]},
                      separators=(",", ":")).encode()
    assert 1 << 20 < len(body) < 2_090_000, len(body)
    return body


def raw_lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().split(b"\n") if line.strip()]


def test_big_blocked_writes_leave_one_bounded_line_each_that_keeps_the_block(bounds: Bounds) -> None:
    gw = bounds.gw
    mark = gw.audit_mark()
    upstream_before = len(gw.upstream_records())
    headers = {"content-type": "application/scim+json"}
    with client(gw.url, "http/1.1") as scim:
        bulk = scim.post("/Bulk", content=big_bulk("b1"), headers={**headers, "x-client-id": "bulk-e2e"},
                         timeout=60)
        patch = scim.patch(f"/Groups/{GROUP}", content=huge_patch(),
                           headers={**headers, "x-client-id": "patch-e2e"}, timeout=60)
    assert (bulk.status_code, patch.status_code) == (403, 403), (bulk.text[:300], patch.text[:300])
    assert RULE in bulk.text and RULE in patch.text

    records = gw.wait_audit(mark + 2, timeout=30)
    assert len(records) == mark + 2, "one line per request, none lost, none extra"
    lines = raw_lines(gw.audit_log)
    assert len(lines) == mark + 2
    assert max(len(line) for line in lines) <= BOUND, [len(line) for line in lines if len(line) > BOUND]
    policy_sha = hashlib.sha256(bounds.policy_text.encode()).hexdigest()

    by_actor = {r["actor"]: r for r in records[mark:]}
    for actor in ("bulk-e2e", "patch-e2e"):
        r = by_actor[actor]
        assert r["decision"] == "block" and r["status"] == 403
        assert RULE in [m["id"] for m in r["rules"]]
        assert r["policy"] == {"sha256": policy_sha, "version": 1}
        assert len(r["truncated"]["sha256"]) == 64 and r["truncated"]["bytes"] > BOUND
    bulk_rec, patch_rec = by_actor["bulk-e2e"], by_actor["patch-e2e"]
    grant = [e for e in bulk_rec["events"] if e["type"] == "group_member_added"]
    assert grant and grant[0]["resource_id"] == GROUP and len(grant[0]["members"]) == 50
    assert bulk_rec["events_total"] == 1000
    assert bulk_rec["events_by_type"] == {"user_provisioned": 999, "group_member_added": 1}
    event = patch_rec["events"][0]
    assert (event["resource_id"], event["members_total"], event["members"][0]) == (GROUP, 100_000, "u00000")
    assert len(event["members"]) > 1000
    assert len(gw.upstream_records()) == upstream_before, "blocked writes never reach the upstream"

    # What left the VM for the collector (records and OCSF events) and the webhook fits too.
    ids = {bulk_rec["audit_id"], patch_rec["audit_id"]}

    def shipped() -> list[bytes] | None:
        got = [line for r in bounds.collector.accepted() for line in r.body.split(b"\n") if line.strip()]
        ours = [line for line in got if any(i.encode() in line for i in ids)]
        kinds = [json.loads(line).get("kind") for line in ours]
        return ours if kinds.count("scim_write") == 2 and len(ours) > 2 else None

    collected = wait_for(shipped, 30, "both records and their OCSF events at the collector")
    assert max(len(line) for line in collected) <= BOUND
    ocsf = [json.loads(line) for line in collected if b'"class_uid"' in line]
    assert ocsf and all(e["policy"]["uid"] == policy_sha for e in ocsf)
    assert any(e.get("group", {}).get("uid") == GROUP for e in ocsf)

    def notified() -> list[Any] | None:
        ours = [r for r in bounds.webhook.accepted() if r.json()["id"] in ids]
        return ours if len(ours) == 2 else None

    for n in wait_for(notified, 30, "two notifications"):
        assert len(n.body) <= BOUND
        assert n.json()["data"]["policy"]["sha256"] == policy_sha
        assert RULE in [m["id"] for m in n.json()["data"]["rules"]]

    def stats() -> dict[str, float]:
        return {k.removesuffix("{}"): v for k, v in gw.prometheus().items() if k.startswith("scimguard_")}

    def counted() -> float | None:
        cut = stats().get("scimguard_audit_outputs_cut_total", 0)
        return cut if cut >= 2 else None

    wait_for(counted, 10, "the cut outputs counted")
    assert stats()["scimguard_audit_outputs_oversize_dropped_total"] == 0
