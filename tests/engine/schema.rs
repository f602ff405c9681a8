//! The attribute schema through the engine: `on_error.unknown_attribute` both ways, and what
//! leaves the engine about an unknown attribute (its name and a flag, never its values).

use scimguard::audit::{Completion, RequestFacts};
use scimguard::scim::HttpRequest;
use scimguard::{Engine, Facts};
use serde_json::{json, Value};

fn allowing(edit: impl FnOnce(&mut Value)) -> Engine {
    crate::default_engine_with(|p| {
        p["on_error"]["unknown_attribute"] = json!("allow");
        edit(p);
    })
}

fn eval(e: &Engine, method: &str, path: &str, body: Value) -> scimguard::engine::Evaluation {
    let r: HttpRequest = serde_json::from_value(
        json!({"method": method, "path": path, "headers": {"content-type": "application/scim+json"}, "body": body}),
    )
    .unwrap();
    e.evaluate_request(&r, &Facts::default())
}

fn record(ev: &scimguard::engine::Evaluation) -> String {
    ev.audit_record(
        &RequestFacts {
            time_ms: 1,
            audit_id: "a".into(),
            method: "POST".into(),
            path: "/scim/v2/Users".into(),
            ..Default::default()
        },
        &Completion::default(),
    )
}

#[test]
fn allow_flags_the_change_and_never_records_its_values() {
    let e = allowing(|_| {});
    let cert = "MIIDdzCCAl-not-for-logs";
    let ev = eval(
        &e,
        "POST",
        "/scim/v2/Users",
        json!({"userName": "svc", "x509_certificates": [{"value": cert}]}),
    );
    let out = ev.to_json();
    assert_eq!(out["decision"], "allow", "{out}");
    let change = &out["changes"][1];
    assert_eq!(change["attribute"], "x509_certificates");
    assert_eq!(change["flags"], json!(["unknown_attribute"]));
    assert_eq!(change["values"], json!(["[redacted]"]));
    assert!(!out.to_string().contains(cert));
    assert!(!record(&ev).contains(cert));
    assert!(record(&ev).contains("unknown_attribute"));
}

#[test]
fn block_refuses_whatever_on_invalid_says() {
    let e = crate::default_engine_with(|p| p["on_error"]["invalid"] = json!("tag"));
    let ev = eval(
        &e,
        "PATCH",
        "/scim/v2/Groups/g1",
        json!({"Operations": [{"op": "replace", "path": "display_name", "value": "Domain Admins"}]}),
    );
    let out = ev.to_json();
    assert_eq!(out["decision"], "block", "{out}");
    assert_eq!(out["error"]["scimType"], "invalidPath");
    let reply = ev.reply().unwrap();
    assert_eq!(reply.status, 400);
    assert!(reply
        .body
        .contains("`display_name` is not an attribute of Groups"));
    // An ordinary invalid request still follows `on_error.invalid`.
    let ev = eval(&e, "PATCH", "/scim/v2/Groups/g1", json!({"Operations": []}));
    assert_eq!(ev.to_json()["decision"], "tag");
}

#[test]
fn a_rule_can_block_unknown_attributes_where_they_matter() {
    let e = allowing(|p| {
        p["rules"].as_array_mut().unwrap().insert(
            0,
            json!({"id": "unknown-attribute-on-group", "description": "d", "severity": "high", "action": "block",
                   "when": {"all": [{"resource_type": "Groups"}, {"change": {"flag": "unknown_attribute"}}]}}),
        );
    });
    let group = eval(
        &e,
        "POST",
        "/scim/v2/Groups",
        json!({"displayName": "Marketing", "display_name": "Domain Admins"}),
    );
    assert_eq!(group.rule_ids(), ["unknown-attribute-on-group"]);
    let user = eval(
        &e,
        "POST",
        "/scim/v2/Users",
        json!({"userName": "a", "badge": "b"}),
    );
    assert_eq!(user.to_json()["decision"], "allow");
}

#[test]
fn the_default_schema_knows_every_rfc7643_attribute() {
    let e = crate::default_engine();
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "x", "userName": "u", "displayName": "d", "nickName": "n", "profileUrl": "p", "title": "t",
        "userType": "e", "preferredLanguage": "en", "locale": "en-US", "timezone": "UTC", "active": true, "password": "p",
        "name": {"formatted": "f", "familyName": "f", "givenName": "g", "middleName": "m", "honorificPrefix": "h", "honorificSuffix": "h"},
        "emails": [{"value": "a@b", "display": "d", "type": "work", "primary": true}],
        "phoneNumbers": [{"value": "1", "type": "work"}], "ims": [{"value": "i", "type": "aim"}],
        "photos": [{"value": "https://p", "type": "photo"}],
        "addresses": [{"formatted": "f", "streetAddress": "s", "locality": "l", "region": "r", "postalCode": "p", "country": "c", "type": "work", "primary": true}],
        "groups": [{"value": "g", "$ref": "https://example.com/scim/v2/Groups/g", "display": "d", "type": "direct"}],
        "entitlements": [{"value": "e"}], "roles": [{"value": "r", "primary": true}], "x509Certificates": [{"value": "c"}],
        "meta": {"resourceType": "User", "created": "c", "lastModified": "l", "location": "l", "version": "v"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "1", "costCenter": "c", "organization": "o", "division": "d", "department": "d",
            "manager": {"value": "m", "$ref": "r", "displayName": "M"}}
    });
    let out = eval(&e, "POST", "/scim/v2/Users", user).to_json();
    assert!(out["error"].is_null(), "{out}");
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "g", "externalId": "x",
                       "members": [{"value": "u", "$ref": "https://example.com/scim/v2/Users/u", "display": "d", "type": "User"}]});
    let out = eval(&e, "POST", "/scim/v2/Groups", group).to_json();
    assert!(out["error"].is_null(), "{out}");
}

#[test]
fn a_pasted_core_schema_adds_to_its_resource_type() {
    let e = crate::default_engine_with(|p| {
        p["schema"] = json!({"schemas": [{
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": "urn:ietf:params:scim:schemas:core:2.0:User",
            "attributes": [{"name": "badge", "type": "complex", "mutability": "readWrite",
                            "subAttributes": [{"name": "site", "type": "string"}]}]}]});
    });
    let ok = eval(
        &e,
        "POST",
        "/scim/v2/Users",
        json!({"userName": "a", "badge": {"site": "HQ"}}),
    );
    assert!(ok.to_json()["error"].is_null(), "{}", ok.to_json());
    let sub = eval(
        &e,
        "POST",
        "/scim/v2/Users",
        json!({"userName": "a", "badge": {"room": "1"}}),
    );
    assert_eq!(sub.to_json()["error"]["scimType"], "invalidPath");
    let group = eval(
        &e,
        "POST",
        "/scim/v2/Groups",
        json!({"displayName": "g", "badge": {"site": "HQ"}}),
    );
    assert_eq!(group.to_json()["error"]["scimType"], "invalidPath");
}

#[test]
fn schema_errors_name_field_and_line() {
    let text = r#"{
  "version": 1,
  "on_error": {"unknown_attribute": "alow"},
  "schema": {
    "attributes": {"Users": ["badge number"], "Group": []},
    "extensions": {"urn:ietf:params:scim:schemas:core:2.0:User": ["a"], "acme": ["b"]},
    "schemas": {"Resources": [{"id": "urn:x:y:User", "attributes": [{"type": "string"}]}]}
  },
  "rules": []
}"#;
    let errors = Engine::from_json(text).unwrap_err().0;
    let got: Vec<(String, Option<usize>)> =
        errors.iter().map(|e| (e.pointer.clone(), e.line)).collect();
    for (pointer, line) in [
        ("/on_error/unknown_attribute", 3),
        ("/schema/attributes/Users/0", 5),
        ("/schema/attributes/Group", 5),
        (
            "/schema/extensions/urn:ietf:params:scim:schemas:core:2.0:User",
            6,
        ),
        ("/schema/extensions/acme", 6),
        ("/schema/schemas/Resources/0/attributes/0", 7),
    ] {
        assert!(
            got.contains(&(pointer.to_string(), Some(line))),
            "{pointer} at line {line} not in {got:?}"
        );
    }
    assert_eq!(errors.len(), 6, "{errors:?}");
}
