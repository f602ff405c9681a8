//! `audit.max_record_bytes`: every record, OCSF event and notification fits the bound, a cut one
//! keeps what a reviewer needs (rules, the privileged group, the notable operations' events, the
//! first members) with totals and the digest of the whole output, and every output names the
//! policy that judged it.

use scimguard::audit::notify::Origin;
use scimguard::audit::ocsf::OcsfContext;
use scimguard::audit::{AccessFacts, Completion, Fit, RequestFacts};
use scimguard::scim::HttpRequest;
use scimguard::{Engine, Evaluation, Facts};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The default policy with larger body and values-per-operation limits (a 100,000-member PATCH is
/// ~2 MB), and `max`.
fn policy(max: Option<usize>) -> String {
    let mut p = crate::default_policy();
    p["limits"]["max_body_bytes"] = json!(8 << 20);
    p["limits"]["max_values_per_operation"] = json!(100_000);
    p["limits"]["max_operations"] = json!(1000);
    if let Some(max) = max {
        p["audit"] = json!({ "max_record_bytes": max });
    }
    serde_json::to_string_pretty(&p).unwrap()
}

fn admins() -> Facts {
    Facts {
        group_names: [("g-admins".to_string(), "Domain Admins".to_string())].into(),
        ..Default::default()
    }
}

/// A Bulk of just under 1 MiB: 999 user creates and, at position 700, 50 members added to the
/// privileged group `g-admins`.
pub fn big_bulk() -> HttpRequest {
    let pad = "x".repeat(900);
    let ops: Vec<Value> = (0..1000)
        .map(|i| match i {
            700 => json!({"method":"PATCH","path":"/Groups/g-admins","bulkId":"grant",
                "data":{"Operations":[{"op":"add","path":"members",
                    "value":(0..50).map(|m| json!({"value": format!("intruder-{m}")})).collect::<Vec<_>>()}]}}),
            i => json!({"method":"POST","path":"/Users","bulkId":format!("q{i}"),
                "data":{"userName":format!("user{i}@example.com"),"nickName":pad}}),
        })
        .collect();
    let body =
        json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":ops});
    let len = body.to_string().len();
    assert!((1_000_000..1 << 20).contains(&len), "{len} bytes");
    request(json!({"method":"POST","path":"/scim/v2/Bulk","body":body}))
}

/// A PATCH adding 100,000 members to the privileged group `g-admins`.
pub fn huge_patch() -> HttpRequest {
    let members: Vec<Value> = (0..100_000)
        .map(|m| json!({"value": format!("2819c223-7f76-453a-919d-{m:012}")}))
        .collect();
    request(json!({"method":"PATCH","path":"/scim/v2/Groups/g-admins",
        "body":{"Operations":[{"op":"add","path":"members","value":members}]}}))
}

fn request(v: Value) -> HttpRequest {
    serde_json::from_value(v).unwrap()
}

fn facts(r: &HttpRequest) -> RequestFacts {
    RequestFacts {
        time_ms: 1_767_225_600_000,
        audit_id: "6f1c2a7b-9e01-4b1e-9d0e-000000000001".into(),
        request_id: Some("req-1".into()),
        method: r.method.clone(),
        path: r.path.clone(),
        ..RequestFacts::default()
    }
}

fn done(e: &Evaluation) -> Completion {
    Completion {
        status: Some(e.reply().map_or(200, |r| r.status)),
        created_id: None,
        duration_ms: Some(3),
    }
}

/// Every output of one request: (record, OCSF lines, notification), each checked against `max`.
fn outputs(engine: &Engine, r: &HttpRequest, max: usize) -> (Value, Vec<Value>, Value) {
    let e = engine.evaluate_request(r, &admins());
    let (req, done) = (facts(r), done(&e));
    let line = e.audit_line(&req, &done);
    assert!(line.text.len() <= max, "record {} > {max}", line.text.len());
    assert_ne!(line.fit, Fit::Dropped);
    let ocsf: Vec<Value> = e
        .ocsf_lines(&req, &done, &OcsfContext::default())
        .iter()
        .map(|l| {
            assert!(l.text.len() <= max, "OCSF event {} > {max}", l.text.len());
            serde_json::from_str(&l.text).unwrap()
        })
        .collect();
    let notice = Origin {
        node: "test",
        traceparent: None,
    };
    let events = e.ocsf_events(&req, &done);
    let body = e.notification_body(&req, &done, &notice, &events);
    assert!(
        body.text.len() <= max,
        "notification {} > {max}",
        body.text.len()
    );
    (
        serde_json::from_str(&line.text).unwrap(),
        ocsf,
        serde_json::from_str(&body.text).unwrap(),
    )
}

fn rule_ids(record: &Value) -> Vec<&str> {
    record["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

#[test]
fn a_blocked_one_mib_bulk_fits_and_keeps_what_a_reviewer_needs() {
    let engine = Engine::from_json(&policy(None)).unwrap();
    let (rec, ocsf, notification) = outputs(&engine, &big_bulk(), 65536);
    assert_eq!(rec["decision"], "block");
    assert!(rule_ids(&rec).contains(&"privileged-group-member-add"));
    let events = rec["events"].as_array().unwrap();
    assert!(events.len() > 50 && events.len() < 1000, "{}", events.len());
    assert_eq!(rec["events_total"], 1000);
    assert_eq!(
        rec["events_by_type"],
        json!({"user_provisioned": 999, "group_member_added": 1})
    );
    // The privileged group's event is kept, with every member, though it is the 701st event.
    let grant: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "group_member_added")
        .collect();
    assert_eq!(grant.len(), 1);
    assert_eq!(grant[0]["resource_id"], "g-admins");
    assert_eq!(grant[0]["members"].as_array().unwrap().len(), 50);
    assert!(grant[0].get("members_total").is_none());
    // Kept events stay in request order: the creates before the grant come first.
    assert_eq!(events[0]["bulk_id"], "q0");
    assert!(rec["changes"].as_array().unwrap().len() < 100);
    assert_eq!(
        rec["changes_total"], 1999,
        "userName and nickName per create, and the grant"
    );
    assert_eq!(rec["truncated"]["cut"], json!(["events", "changes"]));
    assert!(rec["truncated"]["bytes"].as_u64().unwrap() > 65536);
    assert!(!ocsf.is_empty());
    assert_eq!(notification["data"]["decision"], "block");
}

#[test]
fn a_hundred_thousand_member_patch_fits_with_its_group_and_first_members() {
    let engine = Engine::from_json(&policy(None)).unwrap();
    let (rec, ocsf, notification) = outputs(&engine, &huge_patch(), 65536);
    assert_eq!(rec["decision"], "block");
    assert_eq!(rec["resource_id"], "g-admins");
    assert!(rule_ids(&rec).contains(&"privileged-group-member-add"));
    let ev = &rec["events"][0];
    assert_eq!(ev["type"], "group_member_added");
    assert_eq!(ev["resource_id"], "g-admins");
    assert_eq!(ev["members_total"], 100_000);
    let members = ev["members"].as_array().unwrap();
    assert!(members.len() > 1000, "{} members kept", members.len());
    assert_eq!(members[0], "2819c223-7f76-453a-919d-000000000000");
    assert_eq!(rec["truncated"]["cut"], json!(["members"]));
    assert!(rec.get("events_total").is_none(), "its one event is kept");
    // OCSF: one event per member up to its cap; each names the group and one member.
    assert_eq!(ocsf.len(), 1000);
    assert_eq!(ocsf[0]["group"]["uid"], "g-admins");
    assert_eq!(ocsf[0]["unmapped"]["events_total"], 100_000);
    assert_eq!(notification["data"]["events"][0]["members_total"], 100_000);
}

#[test]
fn the_digest_pins_the_whole_record() {
    let text = policy(None);
    let engine = Engine::from_json(&text).unwrap();
    // The same policy with a bound nothing reaches: the whole record, but another policy digest.
    let roomy_text = policy(Some(16 << 20));
    let roomy = Engine::from_json(&roomy_text).unwrap();
    for r in [big_bulk(), huge_patch()] {
        let cut: Value = serde_json::from_str(
            &engine
                .evaluate_request(&r, &admins())
                .audit_record(&facts(&r), &done(&engine.evaluate_request(&r, &admins()))),
        )
        .unwrap();
        let e = roomy.evaluate_request(&r, &admins());
        let whole = e.audit_record(&facts(&r), &done(&e)).replace(
            &sha256_hex(roomy_text.as_bytes()),
            &sha256_hex(text.as_bytes()),
        );
        assert!(whole.len() > 100_000, "{}", whole.len());
        assert_eq!(cut["truncated"]["bytes"], whole.len());
        assert_eq!(cut["truncated"]["sha256"], sha256_hex(whole.as_bytes()));
    }
}

#[test]
fn every_output_fits_every_bound() {
    for max in [4096, 262_144] {
        let engine = Engine::from_json(&policy(Some(max))).unwrap();
        for r in [big_bulk(), huge_patch()] {
            let (rec, ocsf, notification) = outputs(&engine, &r, max);
            assert_eq!(rec["decision"], "block", "max {max}");
            assert!(rule_ids(&rec).contains(&"privileged-group-member-add"));
            let whole = rec["truncated"]["bytes"].as_u64().map_or(0, |b| b as usize);
            assert!(whole > max || rec.get("truncated").is_none());
            for ev in &ocsf {
                assert_eq!(ev["class_uid"], ev["class_uid"].as_u64().unwrap());
            }
            assert_eq!(notification["specversion"], "1.0");
            if max == 4096 {
                assert!(notification["data"]["truncated"]["sha256"].is_string());
            }
        }
    }
}

#[test]
fn small_outputs_are_written_whole() {
    let engine = Engine::from_json(&policy(None)).unwrap();
    let r = request(json!({"method":"PATCH","path":"/scim/v2/Groups/g-admins",
        "body":{"Operations":[{"op":"add","path":"members","value":[{"value":"u1"}]}]}}));
    let e = engine.evaluate_request(&r, &admins());
    let line = e.audit_line(&facts(&r), &done(&e));
    assert_eq!(line.fit, Fit::Whole);
    assert!(!line.text.contains("truncated"));
    for l in e.ocsf_lines(&facts(&r), &done(&e), &OcsfContext::default()) {
        assert_eq!(l.fit, Fit::Whole);
        assert!(!l.text.contains("is_truncated"));
    }
}

#[test]
fn the_last_resort_record_fits_when_the_cut_one_cannot() {
    // Forty matching rules with 200-character ids: their list alone is longer than the bound.
    let mut p: Value = serde_json::from_str(&policy(Some(4096))).unwrap();
    p["rules"] = (0..40)
        .map(|i| {
            json!({"id": format!("r{i:02}-{}", "x".repeat(200)), "description": "d",
            "severity": "low", "action": "log", "when": {"method": ["PATCH"]}})
        })
        .collect();
    let engine = Engine::from_json(&p.to_string()).unwrap();
    let r = huge_patch();
    let e = engine.evaluate_request(&r, &admins());
    let line = e.audit_line(&facts(&r), &done(&e));
    assert_eq!(line.fit, Fit::Minimal);
    assert!(line.text.len() <= 4096, "{}", line.text.len());
    let rec: Value = serde_json::from_str(&line.text).unwrap();
    assert_eq!(rec["truncated"]["minimal"], true);
    assert_eq!(rec["rules_total"], 40);
    assert_eq!(rec["rules"].as_array().unwrap().len(), 10);
    assert_eq!(rec["events"], json!([]));
    assert_eq!(rec["events_total"], 1);
    assert_eq!(rec["events_by_type"], json!({"group_member_added": 1}));
    assert_eq!(rec["resource_id"], "g-admins");
}

#[test]
fn every_output_names_the_policy_that_judged_it() {
    let text = policy(None);
    let digest = sha256_hex(text.as_bytes());
    let engine = Engine::from_json(&text).unwrap();
    assert_eq!(engine.stamp().policy.sha256, digest);
    for r in [
        request(json!({"method":"DELETE","path":"/scim/v2/Users/u1"})),
        request(json!({"method":"PATCH","path":"/scim/v2/Groups/g-admins",
            "body":{"Operations":[{"op":"add","path":"members","value":[{"value":"u1"}]}]}})),
        huge_patch(),
    ] {
        let (rec, ocsf, notification) = outputs(&engine, &r, 65536);
        assert_eq!(rec["policy"], json!({"sha256": digest, "version": 1}));
        for ev in &ocsf {
            assert_eq!(ev["policy"]["uid"], digest);
            assert_eq!(ev["policy"]["version"], "1");
            assert_eq!(ev["metadata"]["profiles"], json!(["security_control"]));
        }
        assert_eq!(notification["data"]["policy"]["sha256"], digest);
    }
    let access = scimguard::audit::access_record(
        &RequestFacts::default(),
        &AccessFacts::default(),
        engine.stamp(),
    );
    let access: Value = serde_json::from_str(&access).unwrap();
    assert_eq!(access["policy"]["sha256"], digest);
    // One byte more (a trailing newline) is another policy.
    let other = Engine::from_json(&format!("{text}\n")).unwrap();
    assert_ne!(other.stamp().policy.sha256, digest);
}

#[test]
fn max_record_bytes_is_validated() {
    for bad in [
        json!(100),
        json!(0),
        json!(-1),
        json!("64k"),
        json!(1 << 30),
    ] {
        let mut p = crate::default_policy();
        p["audit"] = json!({ "max_record_bytes": bad });
        let errs = Engine::from_json(&p.to_string()).unwrap_err().0;
        assert_eq!(errs.len(), 1, "{bad}: {errs:?}");
        assert_eq!(errs[0].pointer, "/audit/max_record_bytes");
        assert!(
            errs[0].message.contains("from 4096 to 16777216"),
            "{}",
            errs[0].message
        );
        assert!(errs[0].help.as_deref().unwrap().contains("65536"));
    }
    let mut p = crate::default_policy();
    p["audit"] = json!({ "max_record_bytes": 4096 });
    assert_eq!(
        Engine::from_json(&p.to_string()).unwrap().stamp().max_bytes,
        4096
    );
}

#[test]
fn outputs_that_fit_are_the_same_under_any_bound() {
    // Every shared case fits the smallest bound (4096): its outputs must be byte for byte those
    // written under a bound nothing reaches, but for the policy digest they name.
    let (small_text, roomy_text) = (policy(Some(4096)), policy(Some(16 << 20)));
    let small = Engine::from_json(&small_text).unwrap();
    let roomy = Engine::from_json(&roomy_text).unwrap();
    let digest = |t: &str| sha256_hex(t.as_bytes());
    let mut n = 0;
    for (name, r, host) in crate::shared_requests() {
        let (a, b) = (
            small.evaluate_request(&r, &host),
            roomy.evaluate_request(&r, &host),
        );
        let (req, done) = (facts(&r), done(&a));
        let line = a.audit_line(&req, &done);
        assert_eq!(line.fit, Fit::Whole, "{name}");
        let same = b
            .audit_record(&req, &done)
            .replace(&digest(&roomy_text), &digest(&small_text));
        assert_eq!(line.text, same, "{name}");
        let ocsf = |e: &Evaluation| -> Vec<String> {
            e.ocsf_lines(&req, &done, &OcsfContext::default())
                .into_iter()
                .map(|l| l.text.replace(&digest(&roomy_text), &digest(&small_text)))
                .collect()
        };
        assert_eq!(ocsf(&a), ocsf(&b), "{name}");
        n += 1;
    }
    assert!(n > 100, "{n}");
}
