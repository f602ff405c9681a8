//! The audit record round trip (issue 13, point 4): every shared case's request → engine → record
//! line → `scimguard report`'s reader (`report::parse_line`) gives back what the engine judged. The
//! facts are compared with the engine's `Evaluation`, not with the line, so a field the writer
//! names one way and the reader another (or drops) fails here.

use std::borrow::Cow;

use scimguard::audit::record::{EventEntry, Record, WriteRecord};
use scimguard::audit::{AccessFacts, Completion, Fit, RequestFacts};
use scimguard::engine::Evaluation;
use scimguard::report::{parse_line, Parsed};
use scimguard::scim::endpoint::{printable, without_query};
use scimguard::scim::HttpRequest;
use scimguard::{Engine, Facts};
use serde_json::json;

const TIME_MS: u64 = 1_767_225_600_123;

/// The facts the host would give request `i` (every third without a status, every fourth
/// creating a resource).
fn host(i: usize, r: &HttpRequest) -> (RequestFacts, Completion) {
    let mut req = RequestFacts::from_headers(format!("rt-{i}"), &r.method, &r.path, &r.headers());
    req.time_ms = TIME_MS + i as u64;
    req.source_ip = Some("192.0.2.7".into());
    // Every field filled, whatever headers the case has.
    req.request_id.get_or_insert_with(|| format!("req-{i}"));
    req.user_agent
        .get_or_insert_with(|| "Okta SCIM Client 1.0.0".into());
    req.trace_id
        .get_or_insert_with(|| format!("{:032x}", i + 1));
    let done = Completion {
        status: [Some(200), Some(403), None][i % 3],
        created_id: (i % 4 == 0).then(|| format!("created-{i}")),
        duration_ms: Some(i as u64),
    };
    (req, done)
}

/// `facts`, with an actor for every other case that names none (so records carry one).
fn with_actor(i: usize, mut facts: Facts) -> Facts {
    if i % 2 == 0 && facts.actor.is_none() {
        facts.actor = Some(format!("provisioner-{i}@example.com"));
    }
    facts
}

/// The one record a line holds, as the report reads it.
fn read_back(line: &str) -> (u64, Record<'static>) {
    match parse_line(line) {
        Parsed::Records(mut records) if records.len() == 1 => {
            let r = records.remove(0);
            (r.time_ms, r.record)
        }
        other => panic!("the report did not read one record: {other:?}\n{line}"),
    }
}

fn write_record(line: &str) -> (u64, WriteRecord<'static>) {
    match read_back(line) {
        (t, Record::ScimWrite(w)) => (t, w),
        (_, other) => panic!("not a scim_write record: {other:?}"),
    }
}

fn some(s: &str) -> Option<Cow<'_, str>> {
    Some(Cow::Borrowed(s))
}

/// What every record says, whole or cut: who, when, what was decided, by which policy.
fn assert_head(
    name: &str,
    w: &WriteRecord<'_>,
    engine: &Engine,
    e: &Evaluation,
    host: (&RequestFacts, &Completion),
) {
    let (req, done) = host;
    let h = &w.head;
    assert_eq!(h.v, 1, "{name}");
    assert_eq!(h.audit_id, req.audit_id, "{name}");
    assert_eq!(
        h.request_id.as_deref(),
        req.request_id.as_deref().map(printable).as_deref(),
        "{name}"
    );
    assert_eq!(h.trace_id.as_deref(), req.trace_id.as_deref(), "{name}");
    assert_eq!(
        h.source_ip.clone().flatten().as_deref(),
        Some("192.0.2.7"),
        "{name}"
    );
    assert_eq!(
        h.user_agent.as_deref(),
        req.user_agent.as_deref().map(printable).as_deref(),
        "{name}"
    );
    assert_eq!(
        h.actor.as_deref(),
        e.actor.as_deref().map(printable).as_deref(),
        "{name}"
    );
    assert_eq!(h.method, printable(&req.method), "{name}");
    assert_eq!(h.path, printable(without_query(&req.path)), "{name}");
    assert_eq!(h.policy.sha256, engine.stamp().policy.sha256, "{name}");
    assert_eq!(h.policy.version, engine.stamp().policy.version, "{name}");
    assert_eq!(w.decision, some(e.decision.as_str()), "{name}");
    assert_eq!(
        w.risk.as_deref(),
        Some(e.risk.map_or("none", |r| r.as_str())),
        "{name}"
    );
    assert_eq!(w.mode, some(e.mode.as_str()), "{name}");
    assert_eq!(
        (w.status.flatten(), w.duration_ms),
        (done.status, done.duration_ms),
        "{name}"
    );
    let n = e.normalized.as_ref();
    assert_eq!(
        w.resource_type.as_deref(),
        n.map(|n| n.resource_type.as_str()),
        "{name}"
    );
    assert_eq!(
        w.resource_id.as_deref(),
        n.and_then(|n| n.resource_id.as_deref())
            .or(done.created_id.as_deref()),
        "{name}"
    );
    assert_eq!(w.bulk, n.is_some_and(|n| n.bulk), "{name}");
    let error = w.error.as_ref().map(|x| (x.status, x.scim_type.as_deref()));
    assert_eq!(
        error,
        e.error.as_ref().map(|x| (x.status, x.scim_type)),
        "{name}"
    );
    // Rules: all of them, or (last resort) the first ten and the total.
    let listed: Vec<_> = w
        .rules
        .iter()
        .map(|r| {
            (
                r.id.as_ref(),
                r.severity.as_deref(),
                r.action.as_deref(),
                r.mode.as_deref(),
                r.notify,
            )
        })
        .collect();
    let judged: Vec<_> = e
        .matches
        .iter()
        .take(listed.len())
        .map(|m| {
            (
                m.id.as_str(),
                Some(m.severity.as_str()),
                Some(m.action.as_str()),
                Some(m.mode.as_str()),
                m.notify,
            )
        })
        .collect();
    assert_eq!(listed, judged, "{name}");
    assert_eq!(
        w.rules_total.unwrap_or(w.rules.len()),
        e.matches.len(),
        "{name}"
    );
}

/// The events and changes of a whole record are the engine's, one for one.
fn assert_lists(name: &str, w: &WriteRecord<'_>, e: &Evaluation, done: &Completion) {
    let n = e.normalized.as_ref();
    let created = n
        .filter(|n| !n.bulk && n.resource_id.is_none())
        .and(done.created_id.as_deref());
    let events: Vec<EventEntry<'_>> = e
        .events()
        .map(|ev| EventEntry {
            kind: ev.kind.as_str().into(),
            resource_type: some(ev.resource_type.as_str()),
            resource_id: ev.resource_id.as_deref().or(created).map(Cow::Borrowed),
            bulk_id: ev.bulk_id.as_deref().map(Cow::Borrowed),
            members: Cow::Borrowed(&ev.members),
            members_total: None,
            values: Cow::Borrowed(&ev.values),
            user_name: ev.user_name.as_deref().map(Cow::Borrowed),
            display_name: ev.display_name.as_deref().map(Cow::Borrowed),
            scope: ev.scope.map(Cow::Borrowed),
        })
        .collect();
    assert_eq!(w.events, events, "{name}");
    let changes: Vec<_> = n
        .iter()
        .flat_map(|n| n.operations.iter())
        .flat_map(|o| o.changes.iter())
        .collect();
    assert_eq!(w.changes.len(), changes.len().min(100), "{name}");
    assert_eq!(
        w.changes_total.unwrap_or(w.changes.len()),
        changes.len(),
        "{name}"
    );
    for (got, c) in w.changes.iter().zip(&changes) {
        let got = (
            got.resource_type.as_deref(),
            got.op.as_ref(),
            got.attribute.as_ref(),
            got.sub_attribute.as_deref(),
            got.filter.as_deref(),
        );
        let want = (
            Some(c.resource_type.as_str()),
            c.op.as_str(),
            c.attribute.as_str(),
            c.sub_attribute.as_deref(),
            c.filter.as_deref(),
        );
        assert_eq!(got, want, "{name}");
    }
    assert_eq!(
        w.group_names_unknown.as_ref(),
        e.unknown_groups.as_slice(),
        "{name}"
    );
    assert!(w.truncated.is_none() && w.events_total.is_none(), "{name}");
}

#[test]
fn every_shared_case_record_reads_back_as_judged() {
    let engine = crate::default_engine();
    for (i, (name, r, facts)) in crate::shared_requests().into_iter().enumerate() {
        let facts = with_actor(i, facts);
        let e = engine.evaluate_request(&r, &facts);
        let (req, done) = host(i, &r);
        let line = e.audit_line(&req, &done);
        assert_eq!(line.fit, Fit::Whole, "{name}");
        let (time_ms, w) = write_record(&line.text);
        assert_eq!(time_ms, req.time_ms, "{name}");
        assert_head(&name, &w, &engine, &e, (&req, &done));
        assert_lists(&name, &w, &e, &done);
    }
}

/// Requests whose records do not fit 4096 bytes: many members, many events, many changes.
fn large_requests() -> Vec<(String, HttpRequest, scimguard::Facts)> {
    let members: Vec<_> = (0..900)
        .map(|m| json!({"value": format!("2819c223-7f76-453a-919d-{m:012}")}))
        .collect();
    let creates: Vec<_> = (0..300)
        .map(|i| {
            json!({"method":"POST","path":"/Users","bulkId":format!("q{i}"),
            "data":{"userName":format!("user{i}@example.com"),"nickName":"x".repeat(300)}})
        })
        .collect();
    let ops: Vec<_> = (0..150)
        .map(|i| json!({"op":"replace","path":format!("emails[value eq \"{i}@example.com\"].primary"),"value":true}))
        .collect();
    let requests = [
        (
            "900 members",
            json!({"method":"PATCH","path":"/scim/v2/Groups/g-admins",
            "body":{"Operations":[{"op":"add","path":"members","value":members}]}}),
        ),
        (
            "300 creates",
            json!({"method":"POST","path":"/scim/v2/Bulk","body":{"Operations":creates}}),
        ),
        (
            "150 changes",
            json!({"method":"PATCH","path":"/scim/v2/Users/u1","body":{"Operations":ops}}),
        ),
    ];
    requests
        .into_iter()
        .map(|(name, r)| {
            (
                name.to_string(),
                serde_json::from_value(r).unwrap(),
                scimguard::Facts::default(),
            )
        })
        .collect()
}

/// Cut to a small bound, every record still reads, and what it lists plus what it counts is what
/// the engine judged.
#[test]
fn cut_records_read_back_with_their_totals() {
    let engine = crate::default_engine_with(|p| p["audit"] = json!({"max_record_bytes": 4096}));
    let mut cut = 0;
    let requests = crate::shared_requests().into_iter().chain(large_requests());
    for (i, (name, r, facts)) in requests.enumerate() {
        let facts = with_actor(i, facts);
        let e = engine.evaluate_request(&r, &facts);
        let (req, done) = host(i, &r);
        let line = e.audit_line(&req, &done);
        let (_, w) = write_record(&line.text);
        assert_head(&name, &w, &engine, &e, (&req, &done));
        if line.fit == Fit::Whole {
            assert_lists(&name, &w, &e, &done);
            continue;
        }
        cut += 1;
        assert!(w.truncated.is_some(), "{name}");
        let events: Vec<_> = e.events().collect();
        assert_eq!(
            w.events_total.unwrap_or(w.events.len()),
            events.len(),
            "{name}"
        );
        assert_eq!(
            w.events.len() as u64 + w.events_not_listed(),
            events.len() as u64,
            "{name}"
        );
        let by_type: u64 = w.events_by_type.0.iter().map(|(_, n)| n).sum();
        assert!(
            w.events_by_type.is_empty() || by_type == events.len() as u64,
            "{name}"
        );
        // With every event listed, each keeps its kind and its member count.
        if w.events_total.is_none() {
            assert_eq!(w.events.len(), events.len(), "{name}");
            for (kept, ev) in w.events.iter().zip(&events) {
                assert_eq!(kept.kind, ev.kind.as_str(), "{name}");
                assert_eq!(kept.member_count(), ev.members.len(), "{name}");
            }
        }
    }
    assert!(cut >= 3, "only {cut} records were cut at 4096 bytes");
}

#[test]
fn access_records_read_back() {
    let engine = crate::default_engine();
    let r: HttpRequest = serde_json::from_value(json!({
        "method": "GET", "path": "/api/projects/7?token=x",
        "headers": {"x-request-id": "req-9", "user-agent": "curl/8"}
    }))
    .unwrap();
    let (req, _) = host(1, &r);
    let access = AccessFacts {
        actor: Some("alice@example.com".into()),
        route: "/api/projects/{id}".into(),
        status: Some(200),
        duration_ms: Some(4),
        sampled: true,
        host_fields: Default::default(),
    };
    let line = scimguard::audit::access_record(&req, &access, engine.stamp());
    let (time_ms, rec) = read_back(&line);
    let Record::Access(a) = rec else {
        panic!("not an access record: {line}")
    };
    assert_eq!(time_ms, req.time_ms);
    assert_eq!(
        (
            a.head.audit_id.as_ref(),
            a.head.request_id.as_deref(),
            a.head.actor.as_deref(),
            a.head.path.as_ref()
        ),
        (
            "rt-1",
            Some("req-9"),
            Some("alice@example.com"),
            "/api/projects/7"
        )
    );
    assert_eq!(
        (
            a.route.as_ref(),
            a.status.flatten(),
            a.duration_ms,
            a.sampled
        ),
        ("/api/projects/{id}", Some(200), Some(4), true)
    );
    assert_eq!(a.head.policy.sha256, engine.stamp().policy.sha256);
}
