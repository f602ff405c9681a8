//! The request lifecycle (`engine::Session`) against the one-shot `Engine::evaluate`, over every
//! shared case request: the same verdict, a blocked write never reaches the upstream, a forwarded
//! one always carries its decision, and every judged write leaves exactly one record. Then the
//! same for arbitrary bodies (never a panic, never a write let through unjudged).

use scimguard::engine::{remember_group_name, strip_ours, Head, MemoryHost, Session, Step};
use scimguard::scim::HttpRequest;
use scimguard::{Engine, Facts};
use serde_json::Value;

/// Every shared case request with its file's policy text: (policy, `file: case`, request, facts).
fn shared_cases() -> Vec<(String, String, HttpRequest, Facts)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("tests/cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.push(root.join("policies/default.cases.json"));
    let mut out = Vec::new();
    for f in files {
        let (policy, reqs) =
            scimguard::suite::requests(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let policy = std::fs::read_to_string(f.parent().unwrap().join(policy)).unwrap();
        let stem = f.file_name().unwrap().to_string_lossy().to_string();
        for (name, r, facts) in reqs {
            out.push((policy.clone(), format!("{stem}: {name}"), r, facts));
        }
    }
    out
}

/// What a host saw of one request: the verdict's step and the record written at the end.
struct Seen {
    step: Step,
    record: Option<Value>,
}

fn drive(engine: &Engine, host: &mut MemoryHost, request: &HttpRequest) -> Seen {
    let pairs: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    let (headers, _) = strip_ours(pairs);
    let body = request.body_bytes();
    let head = Head {
        method: request.method.clone(),
        path: request.path.clone(),
        headers,
    };
    let mut session = Session::new();
    let mut step = session.on_request_headers(engine, host, head, body.is_none());
    for _ in 0..8 {
        step = match step {
            Step::Pause => {
                session.on_request_body(engine, host, body.as_ref().map_or(0, Vec::len), true)
            }
            Step::ReadBody(_) => session.on_body(engine, host, Ok(body.as_deref())),
            Step::Lookup(lookups) => {
                // Every lookup times out: the names stay unknown, as `evaluate` sees them.
                let mut last = None;
                for l in lookups {
                    last = session.lookup_done(engine, host, &l.id, None);
                }
                last.expect("the last lookup gives the verdict")
            }
            done => {
                step = done;
                break;
            }
        };
    }
    host.set_int("response.code", 200);
    let record = session
        .on_log(engine, host)
        .record
        .map(|(r, _)| serde_json::from_str(&r).expect("the record is JSON"));
    Seen { step, record }
}

fn decision_header(step: &Step) -> Option<&str> {
    let headers = match step {
        Step::Forward { headers, .. } | Step::Reply { headers, .. } => headers,
        _ => return None,
    };
    headers
        .iter()
        .find(|(k, _)| *k == "x-scim-decision")
        .map(|(_, v)| v.as_str())
}

#[test]
fn the_session_and_the_one_shot_evaluation_agree_on_every_shared_case() {
    let mut checked = 0;
    for (policy, name, request, facts) in shared_cases() {
        if facts.actor.is_some() {
            continue; // an actor the host knows better than the headers: not a session input
        }
        let engine = Engine::from_json(&policy).unwrap();
        let want = engine.evaluate_request(&request, &facts);
        // The names the case knows are names the host learned earlier.
        let mut host = MemoryHost::at(1_700_000_000_000_000_000);
        for (id, name) in &facts.group_names {
            remember_group_name(&mut host, id, name, 1_700_000_000);
        }
        let seen = drive(&engine, &mut host, &request);
        let judged = want.normalized.is_some() || want.error.is_some();
        match (&seen.step, judged) {
            (Step::Reply { status, .. }, true) => {
                assert_eq!(
                    want.decision.as_str(),
                    "block",
                    "{name}: replied but not blocked"
                );
                assert_eq!(Some(*status), want.reply().map(|r| r.status), "{name}");
            }
            (Step::Forward { .. }, true) => {
                assert_ne!(
                    want.decision.as_str(),
                    "block",
                    "{name}: a block went upstream"
                );
                assert_eq!(
                    decision_header(&seen.step),
                    Some(want.decision.as_str()),
                    "{name}"
                );
            }
            (Step::Continue, false) => {}
            (step, _) => panic!("{name}: unexpected step {step:?} (judged: {judged})"),
        }
        let record = seen.record.as_ref();
        assert_eq!(
            record.is_some(),
            judged,
            "{name}: one record per judged write"
        );
        if let Some(r) = record {
            assert_eq!(r["decision"], want.decision.as_str(), "{name}");
        }
        checked += 1;
    }
    assert!(checked > 200, "only {checked} shared cases checked");
}

#[test]
fn arbitrary_bodies_are_never_let_through_unjudged() {
    let engine = Engine::from_json(include_str!("../../policies/default.json")).unwrap();
    let mut host = MemoryHost::at(1_700_000_000_000_000_000);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 200) as usize;
        const ALPHABET: &[u8] = b"{}[]\",:0aA \\u\x00opvaluemembers";
        let body: String = (0..len)
            .map(|j| ALPHABET[((x >> (j % 50)) as usize + j) % ALPHABET.len()] as char)
            .collect();
        let path = ["/scim/v2/Users/u1", "/scim/v2/Groups/g1", "/scim/v2/Bulk"][i % 3];
        let request = HttpRequest {
            method: ["PATCH", "PUT", "POST"][i % 3].to_string(),
            path: path.to_string(),
            headers: Default::default(),
            body: None,
            raw_body: Some(body),
        };
        let seen = drive(&engine, &mut host, &request);
        assert!(
            matches!(seen.step, Step::Reply { .. } | Step::Forward { .. }),
            "write {i} was not judged: {:?}",
            seen.step
        );
        assert!(
            decision_header(&seen.step).is_some(),
            "write {i} carries no decision"
        );
        assert!(seen.record.is_some(), "write {i} left no record");
    }
}
