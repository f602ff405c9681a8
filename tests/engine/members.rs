//! Who a membership write names (issue 12, classes 2–4): member ids from `value` or `$ref`, a
//! User's `groups` read as operations on each group, the names a Bulk gives a group, and the
//! settings `scim.user_groups` and `limits.max_values_per_operation`. The case files check the
//! decisions; these check the ids and operations behind them, which the case format does not show.

use scimguard::engine::Facts;
use scimguard::policy::Decision;
use scimguard::scim::{EventKind, HttpRequest, Operation};
use scimguard::Engine;
use serde_json::{json, Value};

use crate::{default_engine, default_engine_with};

fn request(method: &str, path: &str, body: Value) -> HttpRequest {
    serde_json::from_value(json!({"method": method, "path": path, "body": body})).unwrap()
}

fn operations(engine: &Engine, r: &HttpRequest) -> Vec<Operation> {
    let e = engine.evaluate_request(r, &Facts::default());
    assert!(e.error.is_none(), "{:?}", e.error);
    e.normalized.unwrap().operations
}

fn members_of(op: &Operation, kind: EventKind) -> Vec<String> {
    op.events
        .iter()
        .filter(|e| e.kind == kind)
        .flat_map(|e| e.members.clone())
        .collect()
}

#[test]
fn a_ref_names_the_member_it_ends_with_percent_decoded() {
    let r = request(
        "PATCH",
        "/scim/v2/Groups/g1",
        json!({"Operations": [{"op": "add", "path": "members", "value": [
            {"$ref": "https://h/scim/v2/Users/u%201?x=1"}, {"value": "u2", "$ref": "/Users/u2"}, "u3"]}]}),
    );
    let ops = operations(&default_engine(), &r);
    assert_eq!(
        members_of(&ops[0], EventKind::GroupMemberAdded),
        ["u 1", "u2", "u3"]
    );
}

#[test]
fn a_ref_write_adds_the_new_member_and_removes_the_listed_one() {
    let r = request(
        "PATCH",
        "/scim/v2/Groups/g1",
        json!({"Operations": [{"op": "replace", "path": "members[value eq \"u1\"].$ref", "value": "https://h/Users/u2"}]}),
    );
    let ops = operations(&default_engine(), &r);
    assert_eq!(members_of(&ops[0], EventKind::GroupMemberAdded), ["u2"]);
    assert_eq!(members_of(&ops[0], EventKind::GroupMemberRemoved), ["u1"]);
}

#[test]
fn user_groups_become_one_operation_per_group_with_the_user_as_member() {
    let r = request(
        "PATCH",
        "/scim/v2/Users/u1",
        json!({"Operations": [{"op": "add", "path": "groups", "value": [
            {"value": "g1"}, {"$ref": "https://h/scim/v2/Groups/g2"}]}]}),
    );
    let engine = default_engine();
    let ops = operations(&engine, &r);
    assert_eq!(ops.len(), 3);
    for (op, id) in ops[1..].iter().zip(["g1", "g2"]) {
        assert_eq!(op.resource_id.as_deref(), Some(id));
        assert_eq!(op.via, Some("user_groups"));
        assert_eq!(op.resource_type.as_str(), "Groups");
        assert_eq!(members_of(op, EventKind::GroupMemberAdded), ["u1"]);
    }
    // The filter looks up the names of the groups a User's `groups` names.
    let n = engine
        .evaluate_request(&r, &Facts::default())
        .normalized
        .unwrap();
    assert_eq!(engine.names_needed(&n, &Facts::default()), ["g1", "g2"]);
    let ordinary = Facts {
        group_names: [
            ("g1".into(), "Sales".into()),
            ("g2".into(), "Support".into()),
        ]
        .into(),
        ..Default::default()
    };
    assert_eq!(
        engine.evaluate_request(&r, &ordinary).decision,
        Decision::Allow
    );
    let privileged = Facts {
        group_names: [
            ("g1".into(), "Sales".into()),
            ("g2".into(), "Okta Administrators".into()),
        ]
        .into(),
        ..Default::default()
    };
    assert_eq!(
        engine.evaluate_request(&r, &privileged).decision,
        Decision::Block
    );
}

#[test]
fn a_bulk_user_create_names_its_bulk_id_as_the_member() {
    let r = request(
        "POST",
        "/scim/v2/Bulk",
        json!({"Operations": [
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "Marketing"}},
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"userName": "a", "groups": [{"value": "bulkId:g"}]}}]}),
    );
    let ops = operations(&default_engine(), &r);
    let derived = ops.iter().find(|o| o.via.is_some()).unwrap();
    assert_eq!(derived.bulk_id.as_deref(), Some("g"));
    assert_eq!(derived.bulk_index, Some(1));
    assert_eq!(derived.names_in_bulk, ["Marketing"]);
    assert_eq!(
        members_of(derived, EventKind::GroupMemberAdded),
        ["bulkId:u"]
    );
}

#[test]
fn every_name_a_bulk_gives_a_group_reaches_every_operation_on_it() {
    let rename = |name: &str| json!({"method": "PATCH", "path": "/Groups/g1", "data": {"Operations": [{"op": "replace", "path": "displayName", "value": name}]}});
    let add = json!({"method": "PATCH", "path": "/Groups/g1", "data": {"Operations": [{"op": "add", "path": "members", "value": [{"value": "u1"}]}]}});
    let other = json!({"method": "PATCH", "path": "/Groups/g2", "data": {"Operations": [{"op": "add", "path": "members", "value": [{"value": "u1"}]}]}});
    let r = request(
        "POST",
        "/scim/v2/Bulk",
        json!({"Operations": [rename("A"), add, rename("B"), other]}),
    );
    let ops = operations(&default_engine(), &r);
    assert_eq!(ops[0].names_in_bulk, ["B"]);
    assert_eq!(ops[1].names_in_bulk, ["A", "B"]);
    assert_eq!(ops[2].names_in_bulk, ["A"]);
    assert!(ops[3].names_in_bulk.is_empty());
}

#[test]
fn user_groups_refuse_refuses_named_groups_and_passes_an_empty_list() {
    let engine = default_engine_with(|p| p["scim"]["user_groups"] = json!("refuse"));
    let named = request(
        "PATCH",
        "/scim/v2/Users/u1",
        json!({"Operations": [{"op": "add", "path": "groups", "value": [{"value": "g1"}]}]}),
    );
    let e = engine.evaluate_request(&named, &Facts::default());
    let err = e.error.unwrap();
    assert_eq!((err.status, err.scim_type), (400, Some("mutability")));
    assert!(err.detail.contains("`groups`"), "{}", err.detail);
    let okta = request(
        "POST",
        "/scim/v2/Users",
        json!({"userName": "a", "groups": []}),
    );
    assert_eq!(
        engine.evaluate_request(&okta, &Facts::default()).decision,
        Decision::Allow
    );
    assert!(Engine::from_json(&{
        let mut p = crate::default_policy();
        p["scim"]["user_groups"] = json!("ignore");
        p.to_string()
    })
    .is_err());
}

#[test]
fn one_operation_writes_at_most_1000_values_by_default() {
    // 250,000 empty entries once took the upstream 7 s; the cap stays above mass-member-add (100).
    let body = |n: usize| {
        let v: Vec<Value> = (0..n).map(|i| json!({"value": format!("u{i}")})).collect();
        json!({"Operations": [{"op": "add", "path": "members", "value": v}]})
    };
    let facts = Facts {
        group_names: [("g1".into(), "Sales".into())].into(),
        ..Default::default()
    };
    let engine = default_engine();
    let at = engine.evaluate_request(&request("PATCH", "/scim/v2/Groups/g1", body(1000)), &facts);
    assert_eq!(at.decision, Decision::Tag);
    assert_eq!(at.rule_ids(), ["mass-member-add"]);
    let over = engine.evaluate_request(&request("PATCH", "/scim/v2/Groups/g1", body(1001)), &facts);
    let err = over.error.unwrap();
    assert_eq!(err.status, 413);
    assert!(
        err.detail.contains("more than 1000 values"),
        "{}",
        err.detail
    );
    assert_eq!(over.decision, Decision::Block);
}

#[test]
fn max_values_per_operation_is_a_setting() {
    let engine = default_engine_with(|p| p["limits"]["max_values_per_operation"] = json!(2));
    let body = |n: usize| {
        let v: Vec<Value> = (0..n).map(|i| json!({"value": format!("u{i}")})).collect();
        json!({"Operations": [{"op": "add", "path": "members", "value": v}]})
    };
    let facts = Facts {
        group_names: [("g1".into(), "Sales".into())].into(),
        ..Default::default()
    };
    let two = engine.evaluate_request(&request("PATCH", "/scim/v2/Groups/g1", body(2)), &facts);
    assert_eq!(two.decision, Decision::Allow);
    let three = engine.evaluate_request(&request("PATCH", "/scim/v2/Groups/g1", body(3)), &facts);
    assert_eq!(three.error.map(|e| e.status), Some(413));
}
