//! The `eval` output contract and audit-record redaction.

use scimguard::audit::{Completion, RequestFacts};
use scimguard::scim::HttpRequest;
use scimguard::{Engine, Facts};
use serde_json::{json, Value};

fn engine() -> Engine {
    crate::default_engine()
}

fn request(v: Value) -> HttpRequest {
    serde_json::from_value(v).unwrap()
}

#[test]
fn eval_output_keeps_its_keys() {
    let out = engine()
        .evaluate_request(
            &request(json!({"method":"DELETE","path":"/scim/v2/Users/u1"})),
            &Facts::default(),
        )
        .to_json();
    let keys: Vec<&str> = out
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["decision", "risk", "rules", "events", "changes", "error"]
    );
}

#[test]
fn passwords_never_reach_output_records_or_replies() {
    let secret = "S3cr3t-Hunter2-xyz";
    let e = engine();
    for body in [
        json!({"userName":"a","password":secret}),
        json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","PASSWORD":secret}),
    ] {
        let r = request(
            json!({"method":"POST","path":"/scim/v2/Users","headers":{"content-type":"application/scim+json"},"body":body}),
        );
        let ev = e.evaluate_request(&r, &Facts::default());
        let rec = ev.audit_record(
            &RequestFacts {
                time_ms: 1,
                audit_id: "a".into(),
                method: "POST".into(),
                path: "/scim/v2/Users?token=abc".into(),
                ..Default::default()
            },
            &Completion::default(),
        );
        assert!(!ev.to_json().to_string().contains(secret));
        assert!(!rec.contains(secret));
        assert!(
            !rec.contains("token=abc"),
            "query strings are dropped from records"
        );
        assert!(
            !format!("{ev:?}").contains(secret),
            "not even in Debug output"
        );
    }
    for ops in [
        json!([{"op":"replace","path":"password","value":secret}]),
        json!([{"op":"replace","value":{"password":secret}}]),
        json!([{"op":"add","path":"urn:ietf:params:scim:schemas:core:2.0:User:password","value":secret}]),
    ] {
        let r =
            request(json!({"method":"PATCH","path":"/scim/v2/Users/u1","body":{"Operations":ops}}));
        let ev = e.evaluate_request(&r, &Facts::default());
        assert!(
            !ev.to_json().to_string().contains(secret),
            "{}",
            ev.to_json()
        );
        assert!(!format!("{ev:?}").contains(secret));
    }
}

#[test]
fn audit_record_fields() {
    let e = engine();
    let r = request(
        json!({"method":"PATCH","path":"/scim/v2/Groups/g1","headers":{"x-client-id":"okta-prod"},"body":{"Operations":[{"op":"add","path":"members","value":[{"value":"u1"}]}]}}),
    );
    let ev = e.evaluate_request(
        &r,
        &Facts {
            group_names: [("g1".to_string(), "Administrators".to_string())].into(),
            ..Default::default()
        },
    );
    let rec: Value = serde_json::from_str(&ev.audit_record(
        &RequestFacts {
            time_ms: 1_767_225_600_000,
            audit_id: "aid".into(),
            request_id: Some("rid".into()),
            method: "PATCH".into(),
            path: "/scim/v2/Groups/g1".into(),
            ..Default::default()
        },
        &Completion {
            status: Some(403),
            created_id: None,
            duration_ms: Some(2),
        },
    ))
    .unwrap();
    assert_eq!(rec["kind"], "scim_write");
    assert_eq!(rec["time"], "2026-01-01T00:00:00.000Z");
    assert_eq!(rec["actor"], "okta-prod");
    assert_eq!(rec["decision"], "block");
    assert_eq!(rec["resource_type"], "Groups");
    assert_eq!(rec["resource_id"], "g1");
    assert_eq!(rec["rules"][0]["id"], "privileged-group-member-add");
    assert_eq!(rec["events"][0]["type"], "group_member_added");
    assert_eq!(rec["events"][0]["members"][0], "u1");
    assert_eq!(rec["status"], 403);
    let reply = ev.reply().unwrap();
    assert_eq!(reply.status, 403);
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(
        body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(body["status"], "403");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("privileged-group-member-add"));
}

#[test]
fn creates_take_the_id_from_completion() {
    let e = engine();
    let r = request(json!({"method":"POST","path":"/scim/v2/Users","body":{"userName":"bjensen"}}));
    let ev = e.evaluate_request(&r, &Facts::default());
    let rec: Value = serde_json::from_str(&ev.audit_record(
        &RequestFacts::default(),
        &Completion {
            created_id: Some("new-id".into()),
            status: Some(201),
            duration_ms: None,
        },
    ))
    .unwrap();
    assert_eq!(rec["resource_id"], "new-id");
    assert_eq!(rec["events"][0]["resource_id"], "new-id");
    assert_eq!(rec["events"][0]["user_name"], "bjensen");
}

#[test]
fn operator_sensitive_attributes_leave_no_trace_in_events() {
    let e = crate::default_engine_with(|p| {
        p["sensitive_attributes"] = json!(["password", "roles", "userName"])
    });
    for r in [
        json!({"method":"PATCH","path":"/scim/v2/Users/u1","body":{"Operations":[{"op":"add","path":"roles","value":[{"value":"secret-role-x"}]}]}}),
        json!({"method":"PATCH","path":"/scim/v2/Users/u1","body":{"Operations":[{"op":"replace","path":"userName","value":"secret-role-x"}]}}),
        json!({"method":"POST","path":"/scim/v2/Users","body":{"userName":"secret-role-x","roles":["secret-role-x"]}}),
    ] {
        let ev = e.evaluate_request(&request(r), &Facts::default());
        let rec = ev.audit_record(&RequestFacts::default(), &Completion::default());
        assert!(!rec.contains("secret-role-x"), "{rec}");
        assert!(!ev.to_json().to_string().contains("secret-role-x"));
        assert!(!format!("{ev:?}").contains("secret-role-x"));
    }
}

#[test]
fn large_bulk_records_stay_bounded_but_keep_every_event() {
    let pad = "x".repeat(600);
    let ops: Vec<Value> = (0..150)
        .map(|i| {
            json!({"method":"POST","path":"/Users","bulkId":format!("q{i}"),
                        "data":{"userName":format!("user{i}"),"displayName":pad}})
        })
        .collect();
    let r = request(json!({"method":"POST","path":"/scim/v2/Bulk","body":{"Operations":ops}}));
    let ev = engine().evaluate_request(&r, &Facts::default());
    let line = ev.audit_record(&RequestFacts::default(), &Completion::default());
    let rec: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        rec["events"].as_array().unwrap().len(),
        150,
        "every event is kept"
    );
    assert_eq!(rec["changes"].as_array().unwrap().len(), 100);
    assert_eq!(rec["changes_total"], 300);
    let display = rec["changes"][1]["values"][0].as_str().unwrap();
    assert_eq!(
        display.chars().count(),
        257,
        "cut to 256 characters and an ellipsis"
    );
    assert!(display.ends_with('…'));
    assert!(line.len() < 100_000, "{} bytes", line.len());
}
