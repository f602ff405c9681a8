//! `audit::compact` releases values no audit output reads: the record, the OCSF events and the
//! notification of every shared case, and of Bulks far past the record's limits, must come out
//! byte-identical with and without it (the filter compacts every evaluation once it is decided).

use scimguard::audit::compact::compact;
use scimguard::audit::notify::Origin;
use scimguard::audit::{Completion, RequestFacts};
use scimguard::scim::HttpRequest;
use scimguard::{Engine, Evaluation, Facts};
use serde_json::json;

fn outputs(e: &Evaluation, req: &RequestFacts, done: &Completion) -> (String, String, String) {
    let events = e.ocsf_events(req, done);
    let notice = Origin {
        node: "test",
        traceparent: None,
    };
    let notification = e.notification(req, done, &notice, &events);
    (
        e.audit_record(req, done),
        serde_json::to_string(&events).unwrap(),
        notification.to_string(),
    )
}

fn assert_unchanged(name: &str, engine: &Engine, r: &HttpRequest, facts: &Facts) {
    let mut e = engine.evaluate_request(r, facts);
    let req = RequestFacts {
        method: r.method.clone(),
        path: r.path.clone(),
        audit_id: "6f1c2a7b-9e01-4b1e-9d0e-000000000001".into(),
        ..RequestFacts::default()
    };
    let done = Completion {
        status: Some(e.reply().map_or(200, |r| r.status)),
        created_id: None,
        duration_ms: Some(3),
    };
    let before = outputs(&e, &req, &done);
    if let Some(n) = e.normalized.as_mut() {
        compact(n);
    }
    assert_eq!(before, outputs(&e, &req, &done), "{name}");
}

#[test]
fn every_shared_case_audits_the_same_after_compaction() {
    let engine = crate::default_engine();
    let mut n = 0;
    for (name, r, facts) in crate::shared_requests() {
        assert_unchanged(&name, &engine, &r, &facts);
        n += 1;
    }
    assert!(n > 100, "expected the shared cases, got {n}");
}

#[test]
fn large_bulks_audit_the_same_and_hold_less() {
    // Sensitive attributes configured, so redacted values lie past the record's first 100 changes.
    let engine = crate::default_engine_with(|p| {
        p["sensitive_attributes"] =
            json!(["password", "x509Certificates", "employeeNumber", "roles"]);
    });
    for (ops, deletes) in [(150, 0), (1000, 0), (1000, 20)] {
        // Every kind of operation whose changes OCSF and notifications read past the first 100:
        // group updates (attribute lists), role grants by filter, string booleans (flags),
        // creates with redacted attributes.
        let operations: Vec<_> = (0..ops)
            .map(|i| match i {
                i if i < deletes => {
                    json!({"method": "DELETE", "path": format!("/Users/d{i}"), "bulkId": format!("q{i}")})
                }
                i if i % 4 == 1 => json!({"method": "PATCH", "path": format!("/Groups/g{i}"), "data": {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "displayName", "value": format!("Team {i}")},
                                   {"op": "add", "path": "members", "value": [{"value": format!("u{i}")}]}]}}),
                i if i % 4 == 2 => json!({"method": "PATCH", "path": format!("/Users/u{i}"), "data": {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "roles[primary eq true].value", "value": "auditor"},
                                   {"op": "Replace", "path": "active", "value": "False"}]}}),
                _ => json!({"method": "POST", "path": "/Users", "bulkId": format!("q{i}"), "data": {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": format!("user{i}@example.com"), "password": "never-logged",
                    "roles": [{"value": "admin"}], "displayName": "x".repeat(300),
                    "emails": [{"value": format!("user{i}@example.com"), "type": "work", "primary": true}],
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": format!("{i}")}}}),
            })
            .collect();
        let r: HttpRequest = serde_json::from_value(json!({
            "method": "POST", "path": "/scim/v2/Bulk",
            "headers": {"content-type": "application/scim+json"},
            "body": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": operations}}))
        .unwrap();
        assert_unchanged(&format!("bulk of {ops}"), &engine, &r, &Facts::default());
        let mut e = engine.evaluate_request(&r, &Facts::default());
        let n = e.normalized.as_mut().unwrap();
        let held = |n: &scimguard::scim::Normalized| serde_json::to_string(n).unwrap().len();
        let full = held(n);
        compact(n);
        // What stays is the structure OCSF reads per operation (attribute names, flags, events).
        if ops >= 1000 {
            let kept = held(n);
            assert!(
                kept * 4 < full * 3,
                "bulk of {ops}: {kept} of {full} bytes kept"
            );
        }
    }
}
