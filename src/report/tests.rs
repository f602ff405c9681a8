//! Hand-made trails with exact expected numbers, and the properties the report promises:
//! input order does not matter, duplicates count once, a bad line never stops the report.

use serde_json::{json, Value};

use super::when::parse_instant;
use super::{parse_line, Aggregator, Options, Parsed, Place, Report};

fn at(t: &str) -> u64 {
    parse_instant(t).unwrap_or_default()
}

/// A `scim_write` line.
#[allow(clippy::too_many_arguments)]
fn write(
    id: &str,
    time: &str,
    rt: &str,
    rid: &str,
    events: Value,
    changes: Value,
    rules: Value,
    decision: &str,
    status: u16,
) -> String {
    json!({
        "kind": "scim_write", "v": 1, "time": format!("{time}T10:00:00.000Z"), "audit_id": id,
        "request_id": id, "trace_id": null, "actor": "okta-provisioning", "source_ip": "203.0.113.10",
        "user_agent": "Okta SCIM Client", "method": "PATCH", "path": format!("/scim/v2/{rt}/{rid}"),
        "resource_type": rt, "resource_id": rid, "bulk": false, "events": events, "changes": changes,
        "rules": rules, "decision": decision, "risk": "none", "mode": "enforce",
        "status": if decision == "block" { 403 } else { status }, "duration_ms": 3
    })
    .to_string()
}

fn access(time: &str, actor: &str) -> String {
    json!({"kind": "access", "v": 1, "time": format!("{time}T09:00:00.000Z"), "audit_id": format!("a-{time}-{actor}"),
        "request_id": null, "trace_id": null, "actor": actor, "source_ip": "198.51.100.7", "user_agent": "Mozilla",
        "method": "GET", "path": "/api/projects", "route": "/api/projects", "status": 200, "duration_ms": 12, "sampled": false})
    .to_string()
}

fn ev(kind: &str, rt: &str, rid: &str) -> Value {
    json!({"type": kind, "resource_type": rt, "resource_id": rid})
}

fn rule(id: &str, severity: &str, action: &str, mode: &str) -> Value {
    json!({"id": id, "severity": severity, "action": action, "mode": mode, "notify": true})
}

fn provision(id: &str, time: &str, uid: &str, name: &str) -> String {
    let e = json!([{"type": "user_provisioned", "resource_type": "Users", "resource_id": uid, "user_name": name}]);
    write(
        id,
        time,
        "Users",
        uid,
        e,
        json!([]),
        json!([]),
        "allow",
        201,
    )
}

fn members(kind: &str, gid: &str, ids: &[&str]) -> Value {
    json!([{"type": kind, "resource_type": "Groups", "resource_id": gid, "members": ids}])
}

/// The small trail every test starts from (see the expected numbers in `small_trail_numbers`).
fn small_trail() -> Vec<String> {
    let guard = rule("privileged-group-add", "high", "block", "monitor");
    let guard_enforced = rule("privileged-group-add", "high", "block", "enforce");
    let freeze = rule("deprovision-freeze", "critical", "block", "enforce");
    let admin = rule("admin-role-grant", "high", "tag", "enforce");
    let role_change = json!([{"resource_type": "Users", "resource_id": "u2", "op": "add", "attribute": "roles",
        "values": [{"value": "GlobalAdmin", "display": "Global admin"}, "reader"]}]);
    let role_event = json!([{"type": "role_changed", "resource_type": "Users", "resource_id": "u2",
        "values": [{"value": "GlobalAdmin"}, "reader"]}]);
    vec![
        provision("w01", "2026-01-01", "u1", "alice@example.com"),
        provision("w02", "2026-01-01", "u2", "bob@example.com"),
        provision("w03", "2026-01-01", "u3", "Carol@Example.com"),
        write("w04", "2026-01-01", "Groups", "g1", json!([{"type": "group_created", "resource_type": "Groups", "resource_id": "g1", "display_name": "Domain Admins"}]), json!([]), json!([]), "allow", 201),
        write("w05", "2026-01-01", "Groups", "g2", json!([{"type": "group_created", "resource_type": "Groups", "resource_id": "g2", "display_name": "Engineering"}]), json!([]), json!([]), "allow", 201),
        write("w06", "2026-01-02", "Groups", "g1", members("group_member_added", "g1", &["u1", "u2"]), json!([]), json!([guard]), "tag", 200),
        write("w07", "2026-01-03", "Groups", "g1", members("group_member_added", "g1", &["u3"]), json!([]), json!([guard_enforced]), "block", 403),
        write("w08", "2026-01-04", "Users", "u2", role_event, role_change, json!([admin]), "tag", 200),
        write("w09", "2026-01-05", "Users", "u3", json!([ev("user_deprovisioned", "Users", "u3")]), json!([]), json!([freeze]), "block", 403),
        write("w10", "2026-01-06", "Users", "u2", json!([ev("user_deprovisioned", "Users", "u2")]), json!([]), json!([]), "allow", 200),
        write("w11", "2026-01-07", "Users", "u2", json!([ev("user_reactivated", "Users", "u2")]), json!([]), json!([]), "allow", 200),
        write("w12", "2026-01-08", "Groups", "g1", members("group_member_removed", "g1", &["u1"]), json!([]), json!([]), "allow", 204),
        write("w13", "2026-01-09", "Groups", "g2", members("group_member_added", "g2", &["u1", "u3"]), json!([]), json!([]), "allow", 500),
        access("2026-03-30", "ALICE@example.com"),
        access("2026-01-10", "carol@example.com"),
        "{\"kind\":\"scim_write\",\"time\":\"2026-01-0".to_string(),
        json!({"time": "2026-01-02T00:00:00Z", "status": "200", "method": "GET", "path": "/healthz"}).to_string(),
        "-".to_string(),
        provision("w02", "2026-01-01", "u2", "bob@example.com"),
    ]
}

fn run_with(lines: &[String], opts: Options) -> Report {
    let mut agg = Aggregator::new(opts);
    let place = Place {
        source: "trail".into(),
        line: 0,
    };
    for l in lines {
        agg.feed_line(&place, l);
    }
    agg.finish()
}

fn run(lines: &[String]) -> Report {
    run_with(lines, Options::new(at("2026-05-01")))
}

#[test]
fn small_trail_numbers() {
    let r = run(&small_trail());
    let s = &r.summary;
    let i = &r.input.stats;
    assert_eq!(
        (i.lines, i.scim_writes, i.access_events, i.duplicates),
        (19, 13, 2, 1)
    );
    assert_eq!((i.malformed_lines, i.foreign_lines), (1, 2));
    assert_eq!(
        (
            s.users_known,
            s.users_active,
            s.users_deprovisioned,
            s.users_deleted
        ),
        (3, 3, 0, 0)
    );
    assert_eq!((s.groups_known, s.groups_privileged), (2, 1));
    // g1 now: u1 added then removed, u2 added, u3 blocked.
    assert_eq!(s.privileged_memberships, 1);
    assert_eq!(
        s.admin_role_grants, 1,
        "GlobalAdmin matches the pattern, reader does not"
    );
    assert_eq!(s.privileged_principals, 1);
    assert_eq!(s.privileged_blocked_attempts, 1);
    assert_eq!((s.stale_accounts, s.stale_never_accessed), (2, 1));
    assert_eq!(s.active_after_blocked_deprovision, 1);
    assert_eq!(s.reactivated_after_deprovision, 1);
    assert_eq!(
        (
            s.high_risk_writes,
            s.high_risk_blocked,
            s.high_risk_monitor_only,
            s.high_risk_tagged,
            s.high_risk_logged
        ),
        (4, 2, 1, 1, 0)
    );
    assert_eq!(
        (s.events_applied, s.events_blocked, s.events_failed),
        (10, 2, 1)
    );
}

#[test]
fn small_trail_details() {
    let r = run(&small_trail());
    let g = r
        .privileged
        .groups
        .first()
        .map(|g| (g.id.as_str(), g.name.as_deref(), g.privileged_by.clone()));
    assert_eq!(
        g,
        Some((
            "g1",
            Some("Domain Admins"),
            vec!["name".to_string(), "rule:privileged-group-add".to_string()]
        ))
    );
    let m: Vec<(&str, &str, &str)> = r
        .privileged
        .groups
        .iter()
        .flat_map(|g| {
            g.members
                .iter()
                .map(|m| (m.id.as_str(), m.status, m.granted_at.as_str()))
        })
        .collect();
    assert_eq!(m, vec![("u2", "active", "2026-01-02T10:00:00.000Z")]);
    let roles: Vec<(&str, &str)> = r
        .privileged
        .roles
        .iter()
        .map(|h| (h.user_id.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(roles, vec![("u2", "GlobalAdmin")]);
    let stale: Vec<(&str, u64, Option<&str>)> = r
        .stale
        .inactive
        .iter()
        .map(|a| (a.id.as_str(), a.idle_days, a.last_access.as_deref()))
        .collect();
    assert_eq!(
        stale,
        vec![
            ("u2", 113, None),
            ("u3", 110, Some("2026-01-10T09:00:00.000Z"))
        ]
    );
    let blocked: Vec<&str> = r
        .stale
        .active_after_blocked_deprovision
        .iter()
        .map(|a| a.target_id.as_str())
        .collect();
    assert_eq!(blocked, vec!["u3"]);
    let re: Vec<(&str, &str, &str)> = r
        .stale
        .reactivated
        .iter()
        .map(|a| {
            (
                a.id.as_str(),
                a.deprovisioned_at.get(..10).unwrap_or(""),
                a.reactivated_at.get(..10).unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(re, vec![("u2", "2026-01-06", "2026-01-07")]);
    let rules: Vec<(&str, &str, u64)> = r
        .high_risk
        .by_rule
        .iter()
        .map(|x| (x.rule.as_str(), x.severity.as_str(), x.counts.total))
        .collect();
    assert_eq!(
        rules,
        vec![
            ("deprovision-freeze", "critical", 1),
            ("privileged-group-add", "high", 2),
            ("admin-role-grant", "high", 1)
        ]
    );
    // u1's timeline: provisioned, added to g1, removed from g1, failed add to g2.
    let u1 = r.lifecycle.users.iter().find(|t| t.id == "u1").map(|t| {
        t.events
            .iter()
            .map(|e| (e.kind, e.outcome))
            .collect::<Vec<_>>()
    });
    assert_eq!(
        u1,
        Some(vec![
            ("user_provisioned", "applied"),
            ("group_member_added", "applied"),
            ("group_member_removed", "applied"),
            ("group_member_added", "failed")
        ])
    );
}

#[test]
fn order_does_not_matter() {
    let lines = small_trail();
    let expected = serde_json::to_string(&run(&lines)).unwrap_or_default();
    let mut reversed = lines.clone();
    reversed.reverse();
    assert_eq!(
        serde_json::to_string(&run(&reversed)).unwrap_or_default(),
        expected
    );
    for k in [3, 7, 11] {
        let mut rotated = lines.clone();
        rotated.rotate_left(k);
        assert_eq!(
            serde_json::to_string(&run(&rotated)).unwrap_or_default(),
            expected,
            "rotated by {k}"
        );
    }
}

#[test]
fn since_limits_lists_not_state() {
    let mut o = Options::new(at("2026-05-01"));
    o.since_ms = Some(at("2026-01-06"));
    let r = run_with(&small_trail(), o);
    let s = &r.summary;
    // State is the same as over the whole trail...
    assert_eq!(
        (
            s.users_active,
            s.privileged_memberships,
            s.admin_role_grants,
            s.active_after_blocked_deprovision
        ),
        (3, 1, 1, 1)
    );
    // ...but only changes from 2026-01-06 on are listed.
    assert_eq!(
        (
            s.high_risk_writes,
            s.privileged_blocked_attempts,
            s.reactivated_after_deprovision
        ),
        (0, 0, 1)
    );
    assert_eq!((s.events_applied, s.events_failed), (3, 1));
    assert_eq!(r.input.stats.before_since, 9);
}

#[test]
fn until_is_the_review_instant() {
    let mut o = Options::new(at("2026-01-06"));
    o.until_ms = Some(at("2026-01-06"));
    let r = run_with(&small_trail(), o);
    // As of 2026-01-06: u1 and u2 in g1, nobody stale yet, bob not yet deprovisioned.
    assert_eq!(
        (
            r.summary.privileged_memberships,
            r.summary.stale_accounts,
            r.summary.reactivated_after_deprovision
        ),
        (2, 0, 0)
    );
    assert_eq!(r.input.stats.after_until, 6);
}

#[test]
fn replace_and_remove_all() {
    let mut lines = small_trail();
    lines.push(write(
        "w20",
        "2026-01-10",
        "Groups",
        "g1",
        members("group_members_replaced", "g1", &["u1", "u3"]),
        json!([]),
        json!([]),
        "allow",
        200,
    ));
    lines.push(write(
        "w21",
        "2026-01-11",
        "Groups",
        "g1",
        members("group_member_removed", "g1", &["u3"]),
        json!([]),
        json!([]),
        "allow",
        200,
    ));
    let r = run(&lines);
    let ids: Vec<&str> = r
        .privileged
        .groups
        .iter()
        .flat_map(|g| g.members.iter().map(|m| m.id.as_str()))
        .collect();
    assert_eq!(ids, vec!["u1"]);
    lines.push(write("w22", "2026-01-12", "Groups", "g1", json!([{"type": "group_member_removed", "resource_type": "Groups", "resource_id": "g1", "scope": "all"}]), json!([]), json!([]), "allow", 200));
    assert_eq!(run(&lines).summary.privileged_memberships, 0);
}

#[test]
fn role_removal_by_filter_and_replace() {
    let mut lines = small_trail();
    let remove = json!([{"resource_type": "Users", "resource_id": "u2", "op": "remove", "attribute": "roles", "filter": "value eq \"GlobalAdmin\"", "values": []}]);
    lines.push(write(
        "w30",
        "2026-01-20",
        "Users",
        "u2",
        json!([]),
        remove,
        json!([]),
        "allow",
        204,
    ));
    assert_eq!(run(&lines).summary.admin_role_grants, 0);
    let replace = json!([{"resource_type": "Users", "resource_id": "u1", "op": "replace", "attribute": "roles", "values": ["Owner", "SuperUser", "viewer"]}]);
    lines.push(write(
        "w31",
        "2026-01-21",
        "Users",
        "u1",
        json!([]),
        replace,
        json!([]),
        "allow",
        200,
    ));
    assert_eq!(run(&lines).summary.admin_role_grants, 2);
}

#[test]
fn deleted_users_and_groups_leave_the_review() {
    let mut lines = small_trail();
    lines.push(write(
        "w40",
        "2026-02-01",
        "Users",
        "u2",
        json!([ev("user_deleted", "Users", "u2")]),
        json!([]),
        json!([]),
        "allow",
        204,
    ));
    let r = run(&lines);
    assert_eq!(
        (
            r.summary.privileged_memberships,
            r.summary.admin_role_grants,
            r.summary.users_deleted
        ),
        (0, 0, 1)
    );
    lines.push(write(
        "w41",
        "2026-02-02",
        "Groups",
        "g1",
        json!([ev("group_deleted", "Groups", "g1")]),
        json!([]),
        json!([]),
        "allow",
        204,
    ));
    let r = run(&lines);
    assert_eq!(
        (
            r.summary.groups_privileged,
            r.privileged.deleted_groups,
            r.summary.groups_known
        ),
        (0, 1, 1)
    );
}

#[test]
fn timelines_keep_the_newest_entries() {
    let mut lines = vec![provision("p", "2026-01-01", "u9", "dave")];
    for d in 1..=30 {
        let e = json!([ev("user_updated", "Users", "u9")]);
        lines.push(write(
            &format!("x{d:02}"),
            &format!("2026-02-{:02}", d.min(28)),
            "Users",
            "u9",
            e,
            json!([]),
            json!([]),
            "allow",
            200,
        ));
    }
    let r = run(&lines);
    let t = r.lifecycle.users.first();
    assert_eq!(
        t.map(|t| (t.events.len(), t.events_omitted, t.events_total)),
        Some((25, 6, 31))
    );
    assert_eq!(
        t.and_then(|t| t.events.last()).map(|e| e.audit_id.as_str()),
        Some("x30")
    );
}

#[test]
fn lines_are_classified() {
    let rec = access("2026-01-01", "a");
    let count = |p: Parsed| match p {
        Parsed::Records(r) => r.len() as i64,
        Parsed::Foreign => 0,
        Parsed::Malformed(_) => -1,
    };
    assert_eq!(count(parse_line(&rec)), 1);
    assert_eq!(count(parse_line(&format!("[{rec},{rec}]"))), 2);
    assert_eq!(
        count(parse_line(&format!("{{\"records\":[{rec},{rec},{rec}]}}"))),
        3
    );
    assert_eq!(
        count(parse_line(&serde_json::to_string(&rec).unwrap_or_default())),
        1
    );
    assert_eq!(count(parse_line("")), 0);
    assert_eq!(count(parse_line("-")), 0);
    assert_eq!(count(parse_line("{\"time\":\"x\",\"status\":\"200\"}")), 0);
    assert_eq!(count(parse_line("{\"kind\":\"other\"}")), 0);
    assert_eq!(
        count(parse_line("{\"kind\":\"access\",\"time\":\"yesterday\"}")),
        -1
    );
    assert_eq!(count(parse_line("{\"kind\":\"access\"}")), -1);
    assert_eq!(
        count(parse_line(
            "{\"kind\":\"scim_write\",\"time\":\"2026-01-01T00:00:00Z\",\"status\":\"ok\"}"
        )),
        -1
    );
    assert_eq!(count(parse_line("{\"kind\":\"access\",\"ti")), -1);
    assert_eq!(count(parse_line("GET /x 200")), -1);
    assert!(
        matches!(parse_line("{\"kind\":\"access\",\"ti"), Parsed::Malformed(m) if m.starts_with("truncated JSON"))
    );
}

#[test]
fn never_panics_on_arbitrary_lines() {
    let mut agg = Aggregator::new(Options::new(0));
    let place = Place {
        source: "fuzz".into(),
        line: 1,
    };
    let seeds = small_trail();
    for s in &seeds {
        for cut in (0..s.len()).step_by(7) {
            if let Some(prefix) = s.get(..cut) {
                agg.feed_line(&place, prefix);
            }
        }
    }
    for junk in [
        "[",
        "[]",
        "{}",
        "null",
        "1",
        "\"\"",
        "[1,2]",
        "{\"records\":5}",
        "{\"records\":[{\"kind\":\"access\"}]}",
        "\u{0}",
    ] {
        agg.feed_line(&place, junk);
    }
    let r = agg.finish();
    assert!(r.input.stats.malformed_lines > 0);
    assert!(!super::render_html(&r).is_empty());
    assert!(!super::render_text(&r).is_empty());
}

#[test]
fn html_is_self_contained_and_marked() {
    let html = super::render_html(&run(&small_trail()));
    for hook in [
        "id=\"kpi-stale_accounts\" data-value=\"2\"",
        "id=\"kpi-high_risk_blocked\" data-value=\"2\"",
        "id=\"summary-privileged_memberships\" data-value=\"1\"",
        "id=\"events-match\"",
        "data-section=\"privileged\"",
    ] {
        assert!(html.contains(hook), "missing {hook}");
    }
    for fetch in ["src=\"http", "href=\"http", "@import", "url(http", "<link"] {
        assert!(!html.contains(fetch), "fetches: {fetch}");
    }
    let data = html
        .split("id=\"report-data\">")
        .nth(1)
        .and_then(|s| s.split("</script>").next())
        .unwrap_or_default();
    assert!(serde_json::from_str::<Value>(data).is_ok());
}

#[test]
fn default_pattern_compiles() {
    assert!(regex_lite::Regex::new(super::DEFAULT_PRIVILEGED_PATTERN).is_ok());
}

/// Records the engine cut to fit `audit.max_record_bytes` still count right: kinds by
/// `events_by_type`, member counts by `members_total`; the blocked grant keeps its rule and first
/// members; the input section says how much is counted but not listed.
#[test]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
fn cut_records_count_right() {
    use crate::audit::{Completion, RequestFacts};
    use crate::scim::HttpRequest;
    let mut p: Value = serde_json::from_str(include_str!("../../policies/default.json")).unwrap();
    p["limits"]["max_body_bytes"] = json!(8 << 20);
    p["limits"]["max_values_per_operation"] = json!(20_000);
    let engine = crate::Engine::from_json(&p.to_string()).unwrap();
    let facts = crate::Facts {
        group_names: [("g-admins".to_string(), "Domain Admins".to_string())].into(),
        ..Default::default()
    };
    let bulk: Vec<Value> = (0..1000)
        .map(|i| {
            json!({"method":"POST","path":"/Users","bulkId":format!("q{i}"),
            "data":{"userName":format!("user{i}@example.com"),"nickName":"x".repeat(600)}})
        })
        .collect();
    let members: Vec<Value> = (0..20_000)
        .map(|m| json!({"value": format!("2819c223-7f76-453a-919d-{m:012}")}))
        .collect();
    let requests = [
        (
            json!({"method":"POST","path":"/scim/v2/Bulk","body":{"Operations":bulk}}),
            200,
        ),
        (
            json!({"method":"PATCH","path":"/scim/v2/Groups/g-admins",
            "body":{"Operations":[{"op":"add","path":"members","value":members}]}}),
            403,
        ),
    ];
    let mut lines = Vec::new();
    for (i, (r, status)) in requests.into_iter().enumerate() {
        let r: HttpRequest = serde_json::from_value(r).unwrap();
        let e = engine.evaluate_request(&r, &facts);
        let req = RequestFacts {
            time_ms: at("2026-04-01") + i as u64,
            audit_id: format!("cut-{i}"),
            method: r.method.clone(),
            path: r.path.clone(),
            ..RequestFacts::default()
        };
        let done = Completion {
            status: Some(status),
            ..Completion::default()
        };
        let line = e.audit_record(&req, &done);
        assert!(line.len() <= 65536, "{}", line.len());
        lines.push(line);
    }
    let listed = |i: usize, f: &dyn Fn(&Value) -> usize| {
        f(&serde_json::from_str::<Value>(&lines[i]).unwrap())
    };
    let events_listed = listed(0, &|r| r["events"].as_array().unwrap().len());
    let members_listed = listed(1, &|r| r["events"][0]["members"].as_array().unwrap().len());
    assert!(events_listed < 1000 && members_listed < 20_000);

    let r = run(&lines);
    let count = |kind: &str| {
        r.lifecycle
            .events
            .iter()
            .find(|k| k.kind == kind)
            .map(|k| (k.applied, k.blocked))
    };
    assert_eq!(count("user_provisioned"), Some((1000, 0)));
    assert_eq!(count("group_member_added"), Some((0, 1)));
    assert_eq!(r.summary.events_applied, 1000);
    let i = &r.input.stats;
    assert_eq!(i.truncated_records, 2);
    assert_eq!(i.events_not_listed, (1000 - events_listed) as u64);
    assert_eq!(i.members_not_listed, (20_000 - members_listed) as u64);
    let attempt = &r.privileged.blocked_attempts[0];
    assert_eq!(attempt.target_id, "g-admins");
    assert!(attempt
        .rules
        .contains(&"privileged-group-member-add".to_string()));
    assert_eq!(attempt.values[0], "2819c223-7f76-453a-919d-000000000000");
    let group = r
        .lifecycle
        .groups
        .iter()
        .find(|g| g.id == "g-admins")
        .unwrap();
    assert!(
        group.events[0].detail.contains("20000"),
        "{}",
        group.events[0].detail
    );
    assert!(super::text::render_text(&r).contains("2 records were cut to fit"));
}
