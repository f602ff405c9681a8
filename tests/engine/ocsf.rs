//! OCSF 1.8.0 events checked against the class definitions (`tests/ocsf/schema-1.8.0.json`, the
//! facts scimguard uses, taken from the ocsf-schema 1.8.0 sources): every event of every shared
//! case request, in enforce and monitor mode, plus the mapping and correlation promises.

use std::collections::BTreeSet;
use std::path::Path;

use scimguard::audit::ocsf;
use scimguard::audit::{Completion, RequestFacts};
use scimguard::scim::{Event, EventKind, HttpRequest, ResourceType};
use scimguard::{Engine, Evaluation, Facts};
use serde_json::{json, Value};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn schema() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(Path::new(ROOT).join("tests/ocsf/schema-1.8.0.json")).unwrap(),
    )
    .unwrap()
}

fn policy_text(mode: &str) -> String {
    let mut p = crate::default_policy();
    p["mode"] = json!(mode);
    p.to_string()
}

fn engine() -> Engine {
    Engine::from_json(&policy_text("enforce")).unwrap()
}

fn request(v: Value) -> HttpRequest {
    serde_json::from_value(v).unwrap()
}

pub fn facts(i: usize) -> RequestFacts {
    RequestFacts {
        time_ms: 1_767_225_600_000 + i as u64,
        audit_id: format!("6f1c2a7b-9e01-4b1e-9d0e-{i:012}"),
        request_id: Some(format!("req-{i}")),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        source_ip: Some("203.0.113.10".into()),
        user_agent: Some("Okta SCIM Client 1.0.0".into()),
        method: String::new(),
        path: String::new(),
    }
}

/// What the client would have received: the block reply's status, else a success.
fn completion(e: &Evaluation) -> Completion {
    let status = e.reply().map_or(200, |r| r.status);
    Completion {
        status: Some(status),
        created_id: None,
        duration_ms: Some(3),
    }
}

/// Checks one event against the schema facts; returns every problem.
pub fn check_event(s: &Value, ev: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let mut err = |m: String| errs.push(m);
    let Some(obj) = ev.as_object() else {
        return vec!["not an object".into()];
    };
    let class_uid = ev["class_uid"].as_u64().unwrap_or(0);
    let Some(class) = s["classes"].get(class_uid.to_string()) else {
        return vec![format!("class_uid {class_uid} not in the schema facts")];
    };
    for r in class["required"].as_array().unwrap() {
        let r = r.as_str().unwrap();
        if ev.get(r).is_none_or(Value::is_null) {
            err(format!("required `{r}` missing"));
        }
    }
    let profiles: Vec<&str> = ev["metadata"]["profiles"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut allowed: BTreeSet<&str> = class["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    if profiles.contains(&"security_control") {
        allowed.extend(
            s["profiles"]["security_control"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap()),
        );
    }
    for k in obj.keys() {
        if !allowed.contains(k.as_str()) {
            err(format!(
                "unknown top-level attribute `{k}` for class {class_uid}"
            ));
        }
    }
    if ev["class_name"] != class["name"] {
        err(format!(
            "class_name {} != {}",
            ev["class_name"], class["name"]
        ));
    }
    if ev["category_uid"] != s["category"]["uid"] || ev["category_name"] != s["category"]["name"] {
        err(format!(
            "category {} {}",
            ev["category_uid"], ev["category_name"]
        ));
    }
    let activity_id = ev["activity_id"].as_u64().unwrap_or(u64::MAX);
    match class["activities"].get(activity_id.to_string()) {
        None => err(format!(
            "activity_id {activity_id} not defined for class {class_uid}"
        )),
        // 99 Other: the source-specific name goes in `activity_name`.
        Some(_) if activity_id == 99 => {
            if ev["activity_name"].as_str().is_none_or(str::is_empty) {
                err("activity 99 without an activity_name".into());
            }
        }
        Some(name) if *name != ev["activity_name"] => {
            err(format!("activity_name {} != {name}", ev["activity_name"]))
        }
        Some(_) => {}
    }
    if ev["type_uid"].as_u64() != Some(class_uid * 100 + activity_id) {
        err(format!(
            "type_uid {} != {class_uid}*100+{activity_id}",
            ev["type_uid"]
        ));
    }
    let type_name = format!(
        "{}: {}",
        class["name"].as_str().unwrap(),
        ev["activity_name"].as_str().unwrap_or("")
    );
    if ev["type_name"] != json!(type_name) {
        err(format!("type_name {} != {type_name}", ev["type_name"]));
    }
    if !ev["time"].is_u64() {
        err("time is not epoch ms".into());
    }
    for (id, caption, path) in [
        ("severity_id", "severity", "severity_id"),
        ("status_id", "status", "status_id"),
        ("action_id", "action", "action_id"),
        ("disposition_id", "disposition", "disposition_id"),
    ] {
        let Some(v) = ev.get(id) else { continue };
        match s["enums"][path].get(v.to_string()) {
            None => err(format!("{id} {v} not in the enum")),
            Some(c) if ev.get(caption).is_some_and(|got| got != c) => {
                err(format!("{caption} {} != {c}", ev[caption]))
            }
            Some(_) => {}
        }
    }
    if let Some(t) = ev["actor"]["user"].get("type_id") {
        if s["enums"]["user.type_id"].get(t.to_string()).is_none() {
            err(format!("actor.user.type_id {t} not in the enum"));
        }
    }
    for (attr, object) in s["object_of"].as_object().unwrap() {
        if let Some(v) = ev.get(attr) {
            check_object(s, attr, object.as_str().unwrap(), v, &mut err);
        }
    }
    if let Some(u) = ev["http_request"].get("url") {
        check_object(s, "http_request.url", "url", u, &mut err);
    }
    if let Some(p) = ev["metadata"].get("product") {
        check_object(s, "metadata.product", "product", p, &mut err);
    }
    if let Some(u) = ev["actor"].get("user") {
        check_object(s, "actor.user", "user", u, &mut err);
    }
    if ev["metadata"]["version"] != s["version"] {
        err(format!("metadata.version {}", ev["metadata"]["version"]));
    }
    for path in s["string_arrays"].as_array().unwrap() {
        let v = path.as_str().unwrap().split('.').fold(ev, |v, k| &v[k]);
        if !v.is_null() && !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
            err(format!("{path} is not a string array: {v}"));
        }
    }
    if ev.get("action_id").is_some() && !profiles.contains(&"security_control") {
        err("security-control attributes without the security_control profile".into());
    }
    errs
}

fn check_object(s: &Value, at: &str, object: &str, v: &Value, err: &mut impl FnMut(String)) {
    let o = &s["objects"][object];
    let Some(fields) = v.as_object() else {
        return err(format!("{at} is not an object"));
    };
    let attrs: BTreeSet<&str> = o["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for k in fields.keys() {
        if !attrs.contains(k.as_str()) {
            err(format!("{at}.{k} is not an attribute of `{object}`"));
        }
    }
    for r in o["required"].as_array().unwrap() {
        if v.get(r.as_str().unwrap()).is_none_or(Value::is_null) {
            err(format!("{at}.{} is required", r.as_str().unwrap()));
        }
    }
    let one: Vec<&str> = o["at_least_one"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    if !one.is_empty()
        && !one
            .iter()
            .any(|k| v.get(*k).is_some_and(|x| !x.is_null() && x != ""))
    {
        err(format!("{at} needs at least one of {one:?}"));
    }
}

fn events_for(engine: &Engine, r: &HttpRequest, f: &Facts, i: usize) -> (Evaluation, Vec<Value>) {
    let e = engine.evaluate_request(r, f);
    let mut rf = facts(i);
    rf.method = r.method.clone();
    rf.path = r.path.clone();
    let evs = e.ocsf_events(&rf, &completion(&e));
    (e, evs)
}

#[test]
fn every_shared_case_yields_valid_ocsf_events() {
    let s = schema();
    let mut problems = Vec::new();
    let mut classes = BTreeSet::new();
    let mut count = 0;
    for mode in ["enforce", "monitor"] {
        let engine = Engine::from_json(&policy_text(mode)).unwrap();
        for (i, (name, r, f)) in crate::shared_requests().into_iter().enumerate() {
            let (e, evs) = events_for(&engine, &r, &f, i);
            let is_write = e.normalized.is_some() || e.error.is_some();
            if is_write && evs.is_empty() {
                problems.push(format!("{mode} {name}: a write without OCSF events"));
            }
            let uids: BTreeSet<&str> = evs
                .iter()
                .filter_map(|v| v["metadata"]["uid"].as_str())
                .collect();
            if uids.len() != evs.len() {
                problems.push(format!("{mode} {name}: metadata.uid not unique"));
            }
            for ev in &evs {
                count += 1;
                classes.insert((
                    ev["class_uid"].as_u64().unwrap(),
                    ev["activity_id"].as_u64().unwrap(),
                ));
                problems.extend(
                    check_event(&s, ev)
                        .into_iter()
                        .map(|p| format!("{mode} {name}: {p}\n    {ev}")),
                );
                // Correlation: every event of one request names the same request, audit and trace ids.
                let rid = format!("req-{i}");
                assert_eq!(ev["metadata"]["correlation_uid"], json!(rid), "{name}");
                assert_eq!(ev["http_request"]["uid"], json!(rid), "{name}");
                assert_eq!(
                    ev["unmapped"]["audit_id"],
                    json!(facts(i).audit_id),
                    "{name}"
                );
                assert_eq!(
                    ev["unmapped"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
                    "{name}"
                );
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // The shared cases exercise every class the mapping uses.
    let used: BTreeSet<u64> = classes.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        used,
        BTreeSet::from([3001, 3004, 3005, 3006]),
        "{classes:?}"
    );
    assert!(count > 150, "{count} events");
}

#[test]
fn the_mapping_table_names_only_defined_activities() {
    let s = schema();
    for kind in EventKind::ALL {
        for scope in [None, Some("add"), Some("replace"), Some("remove")] {
            let mut e = Event::new(kind, ResourceType::Users, Some("u1".into()));
            e.scope = scope;
            let a = ocsf::activity(&e);
            let class = &s["classes"][a.class.uid().to_string()];
            assert_eq!(class["name"], a.class.name());
            let defined = &class["activities"][a.id.to_string()];
            assert!(
                !defined.is_null(),
                "{kind:?}: activity {} not in class {}",
                a.id,
                a.class.uid()
            );
            if a.id != 99 {
                assert_eq!(defined, a.name, "{kind:?}");
            }
            assert_eq!(
                a.type_uid(),
                u64::from(a.class.uid()) * 100 + u64::from(a.id)
            );
        }
    }
    let revoke = Event {
        scope: Some("remove"),
        ..Event::new(EventKind::RoleChanged, ResourceType::Users, None)
    };
    assert_eq!(ocsf::activity(&revoke).type_uid(), 300502);
}

fn types(evs: &[Value]) -> Vec<u64> {
    evs.iter()
        .map(|e| e["type_uid"].as_u64().unwrap())
        .collect()
}

#[test]
fn one_patch_touching_active_and_roles_is_two_events_with_one_correlation() {
    let r = request(
        json!({"method":"PATCH","path":"/scim/v2/Users/u1","headers":{"x-client-id":"okta-prod"},"body":{"Operations":[
        {"op":"replace","path":"active","value":false},{"op":"add","path":"roles","value":[{"value":"admin","display":"Admin"}]}]}}),
    );
    let (e, evs) = events_for(&engine(), &r, &Facts::default(), 7);
    assert_eq!(e.rule_ids(), ["admin-role-granted"]);
    assert_eq!(
        types(&evs),
        [300105, 300501],
        "no separate Update: nothing else changed"
    );
    for ev in &evs {
        assert!(
            check_event(&schema(), ev).is_empty(),
            "{:?}",
            check_event(&schema(), ev)
        );
        assert_eq!(ev["metadata"]["correlation_uid"], "req-7");
        assert_eq!(ev["user"]["uid"], "u1");
        assert_eq!(
            ev["actor"]["user"],
            json!({"uid":"okta-prod","type_id":4,"type":"Service"})
        );
        assert_eq!(ev["actor"]["app_name"], "Okta SCIM Client 1.0.0");
        assert_eq!(ev["status_id"], 2);
        assert_eq!(ev["status_detail"], "policy admin-role-granted");
        assert_eq!(ev["http_response"]["code"], 403);
        assert_eq!(
            (
                ev["action_id"].clone(),
                ev["disposition_id"].clone(),
                ev["is_alert"].clone()
            ),
            (json!(2), json!(2), json!(true))
        );
        assert_eq!(ev["metadata"]["profiles"], json!(["security_control"]));
        assert_eq!(
            ev["severity_id"], 5,
            "a blocked high-risk request is a denied escalation"
        );
        assert_eq!(ev["unmapped"]["rules"], json!(["admin-role-granted"]));
    }
    assert_eq!(evs[1]["privileges"], json!(["admin"]));
    assert_ne!(evs[0]["metadata"]["uid"], evs[1]["metadata"]["uid"]);
}

#[test]
fn monitor_mode_would_block_is_allowed_logged_and_an_alert() {
    let monitor = Engine::from_json(&policy_text("monitor")).unwrap();
    let r = request(
        json!({"method":"PATCH","path":"/scim/v2/Groups/g1","body":{"Operations":[{"op":"add","path":"members","value":[{"value":"u1"},{"value":"u2"}]}]}}),
    );
    let f = Facts {
        group_names: [("g1".to_string(), "Domain Admins".to_string())].into(),
        ..Default::default()
    };
    let (e, evs) = events_for(&monitor, &r, &f, 1);
    assert_eq!(e.decision.as_str(), "tag");
    assert_eq!(
        types(&evs),
        [300603, 300603],
        "one Add User event per member"
    );
    assert_eq!(
        evs.iter()
            .map(|e| e["user"]["uid"].clone())
            .collect::<Vec<_>>(),
        [json!("u1"), json!("u2")]
    );
    for ev in &evs {
        assert_eq!(ev["status_id"], 1);
        assert!(ev.get("status_detail").is_none());
        assert_eq!(
            (
                ev["action_id"].clone(),
                ev["disposition_id"].clone(),
                ev["is_alert"].clone()
            ),
            (json!(1), json!(17), json!(true))
        );
        assert_eq!(ev["severity_id"], 4, "privileged-group add: high");
        assert_eq!(ev["group"]["uid"], "g1");
        assert!(
            ev["message"].as_str().unwrap().contains("would be blocked"),
            "{}",
            ev["message"]
        );
    }
}

#[test]
fn group_names_come_from_the_request_or_the_host() {
    let r = request(
        json!({"method":"PATCH","path":"/scim/v2/Groups/g1","body":{"Operations":[{"op":"remove","path":"members[value eq \"u9\"]"}]}}),
    );
    let e = engine().evaluate_request(&r, &Facts::default());
    let names = [("g1".to_string(), "Engineering".to_string())].into();
    let ctx = ocsf::OcsfContext {
        vendor_name: "Example Corp",
        group_names: Some(&names),
    };
    let evs = e.ocsf_events_with(
        &facts(0),
        &Completion {
            status: Some(204),
            ..Default::default()
        },
        &ctx,
    );
    assert_eq!(types(&evs), [300604]);
    assert_eq!(evs[0]["group"], json!({"uid":"g1","name":"Engineering"}));
    assert_eq!(evs[0]["user"]["uid"], "u9");
    assert_eq!(evs[0]["severity_id"], 2, "a removal is Low");
    assert_eq!(evs[0]["metadata"]["product"]["vendor_name"], "Example Corp");
    assert_eq!(
        evs[0]["metadata"]["product"]["version"],
        env!("CARGO_PKG_VERSION")
    );
}

#[test]
fn a_bulk_yields_events_per_operation_in_order() {
    let r = request(
        json!({"method":"POST","path":"/scim/v2/Bulk","body":{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[
        {"method":"POST","path":"/Users","bulkId":"q1","data":{"userName":"alice"}},
        {"method":"PATCH","path":"/Users/u2","data":{"Operations":[{"op":"replace","path":"active","value":true}]}},
        {"method":"DELETE","path":"/Groups/g3"},
        {"method":"PATCH","path":"/Groups/g4","data":{"Operations":[{"op":"add","path":"members","value":[{"value":"bulkId:q1"}]}]}}]}}),
    );
    let f = Facts {
        group_names: [("g3".into(), "Sales".into()), ("g4".into(), "Sales".into())].into(),
        ..Default::default()
    };
    let (e, evs) = events_for(&engine(), &r, &f, 2);
    assert_eq!(e.decision.as_str(), "tag", "{:?}", e.rule_ids());
    assert_eq!(types(&evs), [300101, 300102, 300605, 300603]);
    assert_eq!(evs[0]["user"], json!({"name":"alice"}));
    assert_eq!(evs[0]["unmapped"]["scim"]["bulk_id"], "q1");
    assert_eq!(evs[3]["user"]["uid"], "bulkId:q1");
    assert_eq!(evs[3]["unmapped"]["scim"]["bulk_index"], 3);
    assert!(evs
        .iter()
        .all(|e| e["metadata"]["correlation_uid"] == "req-2"
            && e["http_request"]["http_method"] == "POST"));
}

#[test]
fn creates_take_the_server_id_and_updates_fold_into_one() {
    let r = request(
        json!({"method":"POST","path":"/scim/v2/Users","body":{"userName":"bjensen","roles":[{"value":"viewer"}]}}),
    );
    let e = engine().evaluate_request(&r, &Facts::default());
    let evs = e.ocsf_events(
        &facts(0),
        &Completion {
            status: Some(201),
            created_id: Some("2819c223".into()),
            duration_ms: None,
        },
    );
    assert_eq!(types(&evs), [300101, 300501]);
    assert_eq!(evs[0]["user"], json!({"uid":"2819c223","name":"bjensen"}));
    assert_eq!(
        (evs[0]["status_id"].clone(), evs[0]["severity_id"].clone()),
        (json!(1), json!(1))
    );
    assert!(
        evs[0].get("action_id").is_none(),
        "no rule matched: no security-control outcome"
    );

    let r = request(
        json!({"method":"PATCH","path":"/scim/v2/Users/u1","body":{"Operations":[
        {"op":"replace","path":"userName","value":"new@example.com"},{"op":"replace","path":"title","value":"CTO"}]}}),
    );
    let (_, evs) = events_for(&engine(), &r, &Facts::default(), 0);
    assert_eq!(
        types(&evs),
        [300199],
        "user_updated and identity_changed are one Update"
    );
    assert_eq!(evs[0]["activity_name"], "Update");
    assert_eq!(evs[0]["user_result"], json!({"name":"new@example.com"}));
    assert_eq!(
        evs[0]["unmapped"]["scim"]["events"],
        json!(["user_updated", "identity_changed"])
    );
    assert_eq!(
        evs[0]["unmapped"]["scim"]["attributes"],
        json!(["userName", "title"])
    );
}

#[test]
fn unreadable_requests_are_one_failed_entity_management_event() {
    let r = request(
        json!({"method":"PATCH","path":"/scim/v2/Users/u1?access_token=abc","body":"{not json"}),
    );
    let (e, evs) = events_for(&engine(), &r, &Facts::default(), 3);
    assert!(e.error.is_some());
    assert_eq!(types(&evs), [300403]);
    let ev = &evs[0];
    assert!(
        check_event(&schema(), ev).is_empty(),
        "{:?}",
        check_event(&schema(), ev)
    );
    assert_eq!(ev["status_id"], 2);
    assert!(
        ev["status_detail"]
            .as_str()
            .unwrap()
            .starts_with("unreadable request: "),
        "{}",
        ev["status_detail"]
    );
    assert_eq!(
        ev["entity"],
        json!({"name":"/scim/v2/Users/u1","type":"SCIM request"})
    );
    assert!(
        !ev.to_string().contains("access_token"),
        "query strings never reach events"
    );
}

#[test]
fn reads_yield_no_events() {
    let r = request(json!({"method":"GET","path":"/scim/v2/Users?filter=userName%20eq%20%22a%22"}));
    let (_, evs) = events_for(&engine(), &r, &Facts::default(), 0);
    assert!(evs.is_empty());
}

#[test]
fn a_huge_membership_change_is_capped_and_says_so() {
    // Two operations of 750 members: one operation may write at most 1000 values.
    let members = |from: usize| -> Vec<Value> {
        (from..from + 750)
            .map(|i| json!({"value": format!("u{i}")}))
            .collect()
    };
    let r = request(
        json!({"method":"PATCH","path":"/scim/v2/Groups/g1","body":{"Operations":[
            {"op":"add","path":"members","value":members(0)},
            {"op":"add","path":"members","value":members(750)}]}}),
    );
    let f = Facts {
        group_names: [("g1".into(), "Sales".into())].into(),
        ..Default::default()
    };
    let (_, evs) = events_for(&engine(), &r, &f, 0);
    assert_eq!(evs.len(), ocsf::MAX_EVENTS);
    assert_eq!(evs[0]["unmapped"]["events_total"], 1500);
    assert_eq!(evs[0]["unmapped"]["events_elided"], 500);
}

#[test]
fn passwords_never_reach_ocsf_events() {
    let secret = "S3cr3t-Hunter2-xyz";
    for body in [
        json!({"method":"POST","path":"/scim/v2/Users","body":{"userName":"a","password":secret}}),
        json!({"method":"PATCH","path":"/scim/v2/Users/u1","body":{"Operations":[{"op":"replace","path":"password","value":secret}]}}),
        json!({"method":"PATCH","path":"/scim/v2/Users/u1","body":{"Operations":[{"op":"replace","value":{"password":secret,"active":false}}]}}),
    ] {
        let (_, evs) = events_for(&engine(), &request(body), &Facts::default(), 0);
        assert!(!evs.is_empty());
        assert!(!Value::Array(evs.clone()).to_string().contains(secret));
    }
    let (_, evs) = events_for(
        &engine(),
        &request(
            json!({"method":"PATCH","path":"/scim/v2/Users/u1","body":{"Operations":[{"op":"replace","path":"password","value":secret}]}}),
        ),
        &Facts::default(),
        0,
    );
    assert_eq!(types(&evs), [300103], "Password Change, no separate Update");
}

#[test]
fn without_a_request_id_the_audit_id_correlates() {
    let r = request(json!({"method":"DELETE","path":"/scim/v2/Users/u1"}));
    let e = engine().evaluate_request(&r, &Facts::default());
    let rf = RequestFacts {
        request_id: None,
        ..facts(5)
    };
    let evs = e.ocsf_events(&rf, &Completion::default());
    assert_eq!(types(&evs), [300106]);
    assert_eq!(evs[0]["metadata"]["correlation_uid"], json!(rf.audit_id));
    assert_eq!(
        evs[0]["metadata"]["uid"],
        json!(format!("{}-0", rf.audit_id))
    );
    assert_eq!(evs[0]["status_id"], 0, "no status known: Unknown");
    assert_eq!(evs[0]["severity_id"], 2, "a delete is Low");
}

#[test]
fn the_checker_rejects_what_the_schema_forbids() {
    let r = request(json!({"method":"DELETE","path":"/scim/v2/Users/u1"}));
    let (_, evs) = events_for(&engine(), &r, &Facts::default(), 0);
    let good = evs[0].clone();
    assert!(check_event(&schema(), &good).is_empty());
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut ev = good.clone();
        f(&mut ev);
        check_event(&schema(), &ev)
    };
    assert!(
        !broken(&|e| e["foo"] = json!(1)).is_empty(),
        "unknown attribute"
    );
    assert!(
        !broken(&|e| {
            e["action_id"] = json!(2);
            e["metadata"].as_object_mut().unwrap().remove("profiles");
        })
        .is_empty(),
        "profile attribute without the profile"
    );
    assert!(
        !broken(&|e| e["policy"] = json!({"sha256": "x"})).is_empty(),
        "not an attribute of the policy object"
    );
    assert!(
        !broken(&|e| e["activity_name"] = json!("Remove")).is_empty(),
        "activity name"
    );
    assert!(
        !broken(&|e| e["type_uid"] = json!(300107)).is_empty(),
        "type_uid"
    );
    assert!(
        !broken(&|e| e["severity_id"] = json!(7)).is_empty(),
        "severity enum"
    );
    assert!(
        !broken(&|e| e["status"] = json!("Failure")).is_empty(),
        "status caption"
    );
    assert!(
        !broken(&|e| {
            e.as_object_mut().unwrap().remove("user");
        })
        .is_empty(),
        "required user"
    );
    assert!(
        !broken(&|e| e["user"] = json!({"type_id": 1})).is_empty(),
        "user needs uid or name"
    );
    assert!(
        !broken(&|e| e["user"]["login"] = json!("x")).is_empty(),
        "unknown user attribute"
    );
    assert!(
        !broken(&|e| e["metadata"]["product"] = json!({"vendor_name": "x"})).is_empty(),
        "product needs name or uid"
    );
    assert!(
        !broken(&|e| e["class_uid"] = json!(3002)).is_empty(),
        "class"
    );
}
