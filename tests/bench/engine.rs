//! Native engine benchmark: normalise + evaluate the default policy on the workloads the overhead
//! budget names. Prints one JSON object per workload (median of rounds) so `make bench` can collect it.
//! Besides `evaluate` (normalise + judge), it times `evaluate` + `audit_record`: the filter also writes
//! that record for every judged write, so that is the engine work the filter does per request; and
//! `audit_record` alone (`ns_audit_record`), the writer's own cost.
//!
//! Budgets (issue 2): a typical one-operation Entra PATCH ≤ 5 µs; a 1 MiB Bulk of 1,000 operations
//! ≤ 10 ms; cost linear in body size.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::Instant;

use scimguard::audit::{Completion, RequestFacts};
use scimguard::scim::{Headers, RequestView};
use scimguard::{Engine, Facts};
use serde_json::json;

fn main() {
    let policy = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/default.json"
    ))
    .unwrap();
    let engine = Engine::from_json(&policy).unwrap();
    let facts = Facts {
        group_names: [("g1".to_string(), "Engineering".to_string())].into(),
        ..Default::default()
    };
    let headers = Headers::from_pairs([("content-type".into(), "application/scim+json".into())]);
    let quick = std::env::args().any(|a| a == "--quick");
    // `--once NAME`: evaluate one workload 10 times (with its audit record) and exit (callgrind / perf).
    let once = std::env::args().skip_while(|a| a != "--once").nth(1);
    for (name, method, path, body) in workloads() {
        if let Some(only) = &once {
            if only == name {
                let view = RequestView {
                    method,
                    path: &path,
                    headers: &headers,
                    body: Some(body.as_bytes()),
                };
                let request = RequestFacts {
                    method: method.into(),
                    path: path.clone(),
                    ..RequestFacts::default()
                };
                for _ in 0..10 {
                    let d = engine.evaluate(black_box(&view), &facts);
                    black_box(d.audit_record(&request, &Completion::default()));
                }
            }
            continue;
        }
        let view = RequestView {
            method,
            path: &path,
            headers: &headers,
            body: Some(body.as_bytes()),
        };
        let d = engine.evaluate(&view, &facts);
        assert!(d.error.is_none(), "{name}: {:?}", d.error);
        let per_op = measure(
            || black_box(engine.evaluate(black_box(&view), &facts)),
            quick,
        );
        let request = RequestFacts {
            method: method.into(),
            path: path.clone(),
            ..RequestFacts::default()
        };
        let done = Completion {
            status: Some(200),
            ..Completion::default()
        };
        let audit_bytes = d.audit_record(&request, &done).len();
        let with_audit = measure(
            || {
                black_box(
                    engine
                        .evaluate(black_box(&view), &facts)
                        .audit_record(&request, &done),
                )
            },
            quick,
        );
        // The record alone (the evaluation is reused): the writer's own cost, without the noise of
        // evaluating again.
        let audit_only = measure(|| black_box(d.audit_record(&request, &done)), quick);
        println!(
            "{}",
            json!({"workload": name, "bytes": body.len(), "ns_per_request": per_op, "decision": d.decision.as_str(),
                   "mb_per_s": body.len() as f64 / per_op * 1e3,
                   "ns_per_request_with_audit": with_audit, "ns_audit_record": audit_only,
                   "audit_record_bytes": audit_bytes})
        );
    }
}

/// Median nanoseconds per call over 7 rounds of ~200 ms each (after a warm-up round).
fn measure<T>(mut f: impl FnMut() -> T, quick: bool) -> f64 {
    let target = if quick { 0.02 } else { 0.2 };
    let mut iters = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..iters {
            black_box(f());
        }
        if t.elapsed().as_secs_f64() > target / 4.0 {
            break;
        }
        iters *= 2;
    }
    let mut rounds: Vec<f64> = (0..8)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters * 4 {
                black_box(f());
            }
            t.elapsed().as_nanos() as f64 / (iters * 4) as f64
        })
        .skip(1)
        .collect();
    rounds.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rounds[rounds.len() / 2]
}

fn workloads() -> Vec<(&'static str, &'static str, String, String)> {
    let entra = json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations":[{"op":"Replace","path":"active","value":"False"}]});
    let members: Vec<_> = (0..100)
        .map(|i| json!({"value": format!("2819c223-7f76-453a-919d-4138619{i:05}")}))
        .collect();
    let group = json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations":[{"op":"Add","path":"members","value": members}]});
    let user_put = json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bjensen@example.com",
        "name":{"givenName":"Barbara","familyName":"Jensen"},"active":true,
        "emails":[{"value":"bjensen@example.com","type":"work","primary":true}]});
    vec![
        (
            "entra_patch_1op",
            "PATCH",
            "/scim/v2/Users/2819c223-7f76-453a-919d-413861904646".into(),
            entra.to_string(),
        ),
        (
            "group_patch_100_members",
            "PATCH",
            "/scim/v2/Groups/g1".into(),
            group.to_string(),
        ),
        (
            "user_put",
            "PUT",
            "/scim/v2/Users/u1".into(),
            user_put.to_string(),
        ),
        (
            "bulk_1000_ops_1mib",
            "POST",
            "/scim/v2/Bulk".into(),
            bulk(1000, 1024 * 1024),
        ),
        (
            "bulk_100_ops_100kib",
            "POST",
            "/scim/v2/Bulk".into(),
            bulk(100, 100 * 1024),
        ),
    ]
}

/// A Bulk of `n` user creates padded to about `size` bytes (realistic attributes, no rule fires).
fn bulk(n: usize, size: usize) -> String {
    let pad = "x".repeat((size / n).saturating_sub(420));
    let ops: Vec<_> = (0..n)
        .map(|i| {
            json!({"method":"POST","path":"/Users","bulkId":format!("q{i}"),
                   "data":{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":format!("user{i}@example.com"),
                           "name":{"givenName":"Given","familyName":"Family"},"displayName": pad,
                           "emails":[{"value":format!("user{i}@example.com"),"type":"work","primary":true}],
                           "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Engineering","employeeNumber":format!("{i}")}}})
        })
        .collect();
    json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":ops})
        .to_string()
}
