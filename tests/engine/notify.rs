//! Notifications: which requests notify, the CloudEvents envelope, and the Standard Webhooks
//! signature checked against the reference libraries' test vector.

use scimguard::audit::notify::{self, NotifyError, Origin};
use scimguard::audit::{parse_secret, sign, webhook_headers, Completion, RequestFacts};
use scimguard::policy::Severity;
use scimguard::scim::HttpRequest;
use scimguard::{Engine, Evaluation, Facts};
use serde_json::{json, Value};

/// The reference example of the Standard Webhooks libraries: `TestWebhookSign` in
/// standard-webhooks/standard-webhooks `libraries/go/webhook_test.go`, and `test_sign_function` in
/// `libraries/python/tests/test_webhooks.py` (same key, id, timestamp, payload and signature).
const REF_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const REF_MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const REF_TIMESTAMP: u64 = 1_614_265_330;
const REF_PAYLOAD: &str = r#"{"test": 2432232314}"#;
const REF_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

#[test]
fn signature_matches_the_standard_webhooks_reference_example() {
    let key = parse_secret(REF_SECRET).unwrap();
    assert_eq!(
        sign(&key, REF_MSG_ID, REF_TIMESTAMP, REF_PAYLOAD),
        REF_SIGNATURE
    );
    // The prefix is optional, as in the reference libraries.
    let bare = parse_secret(REF_SECRET.trim_start_matches("whsec_")).unwrap();
    assert_eq!(
        sign(&bare, REF_MSG_ID, REF_TIMESTAMP, REF_PAYLOAD),
        REF_SIGNATURE
    );
    // Any change to id, time or body changes the signature.
    assert_ne!(
        sign(&key, REF_MSG_ID, REF_TIMESTAMP + 1, REF_PAYLOAD),
        REF_SIGNATURE
    );
    assert_ne!(
        sign(&key, REF_MSG_ID, REF_TIMESTAMP, r#"{"test":2432232314}"#),
        REF_SIGNATURE
    );
}

#[test]
fn headers_carry_id_timestamp_and_signature() {
    let key = parse_secret(REF_SECRET).unwrap();
    let h = webhook_headers(&key, REF_MSG_ID, REF_TIMESTAMP, REF_PAYLOAD).unwrap();
    assert_eq!(
        h,
        [
            ("webhook-id", REF_MSG_ID.to_string()),
            ("webhook-timestamp", "1614265330".to_string()),
            ("webhook-signature", REF_SIGNATURE.to_string()),
        ]
    );
    for bad in ["", "a.b", "has space", "new\nline"] {
        assert_eq!(
            webhook_headers(&key, bad, 1, "{}"),
            Err(NotifyError::BadMessageId),
            "{bad:?}"
        );
    }
}

#[test]
fn secrets_never_print() {
    let key = parse_secret(REF_SECRET).unwrap();
    let debug = format!("{key:?}");
    assert_eq!(debug, "WebhookKey([secret elided])");
    for bad in [
        "whsec_",
        "",
        "whsec_not base64!!",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS%",
    ] {
        let e = parse_secret(bad).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(
            !shown.contains("MfKQ9r8") && !shown.contains("base64!!"),
            "{shown}"
        );
    }
    assert_eq!(
        parse_secret("whsec_").unwrap_err(),
        NotifyError::EmptySecret
    );
    assert_eq!(
        parse_secret("whsec_***").unwrap_err(),
        NotifyError::SecretNotBase64
    );
}

fn engine(mode: &str) -> Engine {
    let mut p = crate::default_policy();
    p["mode"] = json!(mode);
    Engine::from_json(&p.to_string()).unwrap()
}

fn eval(engine: &Engine, r: Value, facts: &Facts) -> Evaluation {
    engine.evaluate_request(&serde_json::from_value::<HttpRequest>(r).unwrap(), facts)
}

fn admins() -> Facts {
    Facts {
        group_names: [("g1".to_string(), "Domain Admins".to_string())].into(),
        ..Default::default()
    }
}

fn member_add() -> Value {
    json!({"method":"PATCH","path":"/scim/v2/Groups/g1?x=1","headers":{"x-client-id":"okta-prod"},
           "body":{"Operations":[{"op":"add","path":"members","value":[{"value":"u1"}]}]}})
}

fn req_facts() -> RequestFacts {
    RequestFacts {
        time_ms: 1_767_225_600_123,
        audit_id: "0f8e6a52-3f5c-4b1e-9d0e-6f1c2a7b9e01".into(),
        request_id: Some("a3c1f0d2-9b7e-4c55-8e21-1d2f3a4b5c6d".into()),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        source_ip: Some("203.0.113.10".into()),
        user_agent: Some("Okta SCIM Client 1.0.0".into()),
        method: "PATCH".into(),
        path: "/scim/v2/Groups/g1?x=1".into(),
    }
}

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn which_requests_notify() {
    let e = engine("enforce");
    let blocked = eval(&e, member_add(), &admins());
    assert!(blocked.should_notify(None), "the rule asks for it");
    let monitored = eval(&engine("monitor"), member_add(), &admins());
    assert!(
        monitored.should_notify(None),
        "monitor-mode matches notify too"
    );
    let plain = eval(
        &e,
        json!({"method":"PATCH","path":"/scim/v2/Users/u1","body":{"Operations":[{"op":"replace","path":"title","value":"x"}]}}),
        &Facts::default(),
    );
    assert!(
        !plain.should_notify(Some(Severity::Low)),
        "no rule, no risk"
    );
    let reactivated = eval(
        &e,
        json!({"method":"PATCH","path":"/scim/v2/Users/u1","body":{"Operations":[{"op":"replace","path":"active","value":true}]}}),
        &Facts::default(),
    );
    assert_eq!(reactivated.risk, Some(Severity::Medium));
    assert!(
        !reactivated.should_notify(None),
        "user-reactivated does not ask"
    );
    assert!(reactivated.should_notify(Some(Severity::Medium)));
    assert!(!reactivated.should_notify(Some(Severity::High)));
}

#[test]
fn a_blocked_request_notifies_as_a_cloudevent_that_says_blocked() {
    let ev = eval(&engine("enforce"), member_add(), &admins());
    let done = Completion {
        status: Some(403),
        created_id: None,
        duration_ms: Some(2),
    };
    let ocsf = ev.ocsf_events(&req_facts(), &done);
    let ce = ev.notification(
        &req_facts(),
        &done,
        &Origin {
            node: "edge-1",
            traceparent: Some(TRACEPARENT),
        },
        &ocsf,
    );
    assert_eq!(ce["specversion"], "1.0");
    assert_eq!(ce["id"], "0f8e6a52-3f5c-4b1e-9d0e-6f1c2a7b9e01");
    assert_eq!(ce["source"], "//envoy/scimguard/edge-1");
    assert_eq!(ce["type"], "io.scimguard.group.member_added.v1");
    assert_eq!(ce["subject"], "Groups/g1");
    assert_eq!(ce["time"], "2026-01-01T00:00:00.123Z");
    assert_eq!(ce["datacontenttype"], "application/json");
    assert_eq!(ce["traceparent"], TRACEPARENT);
    let d = &ce["data"];
    assert_eq!(
        (
            d["decision"].clone(),
            d["blocked"].clone(),
            d["monitor_only"].clone()
        ),
        (json!("block"), json!(true), json!(false))
    );
    assert_eq!(d["rules"][0]["id"], "privileged-group-member-add");
    assert_eq!(d["rules"][0]["mode"], "enforce");
    assert!(d["rules"][0]["description"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert_eq!(d["actor"], "okta-prod");
    assert_eq!(d["path"], "/scim/v2/Groups/g1", "no query string");
    assert_eq!(
        (d["resource_type"].clone(), d["resource_id"].clone()),
        (json!("Groups"), json!("g1"))
    );
    assert_eq!(d["events"][0]["type"], "group_member_added");
    assert_eq!(d["events"][0]["members"], json!(["u1"]));
    // Correlation: the same three ids as the audit record and the OCSF events.
    assert_eq!(d["audit_id"], ce["id"]);
    assert_eq!(d["request_id"], "a3c1f0d2-9b7e-4c55-8e21-1d2f3a4b5c6d");
    assert_eq!(d["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(d["ocsf"], json!(ocsf));
    assert_eq!(d["ocsf"][0]["metadata"]["correlation_uid"], d["request_id"]);
    assert_eq!(d["ocsf"][0]["type_uid"], 300603);
}

#[test]
fn a_monitor_mode_match_notifies_as_monitor_only() {
    let ev = eval(&engine("monitor"), member_add(), &admins());
    let ce = ev.notification(
        &req_facts(),
        &Completion {
            status: Some(204),
            ..Default::default()
        },
        &Origin {
            node: "edge 1/α",
            traceparent: Some("garbage"),
        },
        &[],
    );
    let d = &ce["data"];
    assert_eq!(
        (
            d["decision"].clone(),
            d["blocked"].clone(),
            d["monitor_only"].clone()
        ),
        (json!("tag"), json!(false), json!(true))
    );
    assert_eq!(d["rules"][0]["mode"], "monitor");
    assert_eq!(ce["source"], "//envoy/scimguard/edge-1--");
    assert!(
        ce.get("traceparent").is_none(),
        "a malformed traceparent is not copied"
    );
}

#[test]
fn event_types_and_subjects() {
    let e = engine("enforce");
    let cases = [
        (
            json!({"method":"PATCH","path":"/scim/v2/Users/u1","body":{"Operations":[{"op":"replace","path":"active","value":false}]}}),
            "io.scimguard.user.deprovisioned.v1",
            Some("Users/u1"),
        ),
        (
            json!({"method":"PATCH","path":"/scim/v2/Users/u1","body":{"Operations":[{"op":"add","path":"roles","value":["admin"]}]}}),
            "io.scimguard.user.role_changed.v1",
            Some("Users/u1"),
        ),
        (
            json!({"method":"DELETE","path":"/scim/v2/Groups/g1"}),
            "io.scimguard.group.deleted.v1",
            Some("Groups/g1"),
        ),
        (
            json!({"method":"PATCH","path":"/scim/v2/Users/u1","body":"{"}),
            "io.scimguard.request.invalid.v1",
            None,
        ),
    ];
    for (r, ty, subject) in cases {
        let ev = eval(&e, r, &admins());
        let ce = ev.notification(
            &RequestFacts::default(),
            &Completion::default(),
            &Origin::default(),
            &[],
        );
        assert_eq!(ce["type"], ty);
        assert_eq!(ce["subject"].as_str(), subject);
        assert_eq!(
            ce["id"], "unknown",
            "no audit or request id: still a non-empty id"
        );
        assert_eq!(ce["source"], "//envoy/scimguard/unknown");
    }
    let create = eval(
        &e,
        json!({"method":"POST","path":"/scim/v2/Users","body":{"userName":"bjensen"}}),
        &Facts::default(),
    );
    let ce = create.notification(
        &req_facts(),
        &Completion {
            created_id: Some("2819c223".into()),
            ..Default::default()
        },
        &Origin::default(),
        &[],
    );
    assert_eq!(
        (ce["type"].clone(), ce["subject"].clone()),
        (
            json!("io.scimguard.user.provisioned.v1"),
            json!("Users/2819c223")
        )
    );
    assert_eq!(ce["data"]["resource_id"], "2819c223");
}

#[test]
fn a_signed_notification_verifies_and_holds_no_secret() {
    let password = "S3cr3t-Hunter2-xyz";
    let ev = eval(
        &engine("enforce"),
        json!({"method":"PATCH","path":"/scim/v2/Users/u1","body":{"Operations":[
        {"op":"replace","path":"password","value":password},{"op":"add","path":"roles","value":["admin"]}]}}),
        &Facts::default(),
    );
    assert!(ev.should_notify(None));
    let done = Completion {
        status: Some(403),
        ..Default::default()
    };
    let body = ev
        .notification(
            &req_facts(),
            &done,
            &Origin::default(),
            &ev.ocsf_events(&req_facts(), &done),
        )
        .to_string();
    let key = parse_secret(REF_SECRET).unwrap();
    let headers = webhook_headers(&key, &req_facts().audit_id, 1_767_225_601, &body).unwrap();
    let all = format!("{body} {headers:?} {key:?}");
    for secret in [password, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
        assert!(!all.contains(secret), "{secret} leaked");
    }
    // A receiver recomputes the signature over exactly the bytes it got.
    let sig = &headers[2].1;
    assert_eq!(
        sig,
        &notify::sign(&key, &req_facts().audit_id, 1_767_225_601, &body)
    );
}

#[test]
fn values_of_configured_sensitive_attributes_never_reach_events_or_notifications() {
    let e = crate::default_engine_with(|p| {
        p["sensitive_attributes"] = json!(["password", "roles", "userName"])
    });
    for r in [
        json!({"method":"PATCH","path":"/scim/v2/Users/u1","body":{"Operations":[{"op":"add","path":"roles","value":["TOPSECRET-ROLE"]}]}}),
        json!({"method":"PATCH","path":"/scim/v2/Users/u1","body":{"Operations":[{"op":"replace","path":"userName","value":"TOPSECRET-NAME"}]}}),
    ] {
        let ev = eval(&e, r, &Facts::default());
        let ocsf = ev.ocsf_events(&req_facts(), &Completion::default());
        let ce = ev
            .notification(
                &req_facts(),
                &Completion::default(),
                &Origin::default(),
                &ocsf,
            )
            .to_string();
        assert!(!ce.contains("TOPSECRET"), "{ce}");
        assert!(ce.contains("[redacted]"));
    }
}
