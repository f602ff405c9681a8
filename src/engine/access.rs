//! Access auditing on application routes: who called which route, when, with what outcome.
//!
//! When the policy enables `access`, a request whose path is not SCIM and matches one of
//! `access.routes` (or any path, when the list is empty) is remembered from its request headers,
//! and finished at the end of the stream, once the status is known: reads (GET/HEAD) answered with
//! anything but 401/403 are kept at `access.sample_rate` (deterministic per `x-request-id`); writes
//! and denials always. A kept access becomes a `kind: "access"` record.
//!
//! A request an earlier filter answered itself (jwt_authn's 401) never reaches the headers phase;
//! the session is then started `late`, at the end, from the request headers the host still has.
//!
//! Host reads at the end: the status (one property); for a kept access also the clock, the client
//! address and, when configured, the metadata actor.

use super::completion::{self, metadata_actor};
use super::host::Host;
use super::{Count, Engine};
use crate::audit::detect::{keep, Keep};
use crate::audit::{access_record, AccessFacts, HostFields, RequestFacts};
use crate::policy::Policy;
use crate::scim::endpoint::{classify, printable, without_query, Route};
use crate::scim::Headers;

/// An access to audit, as the request headers described it.
#[derive(Debug, Clone)]
pub struct Access {
    pub facts: RequestFacts,
    /// The clock when the request headers were seen (`None` for a `late` access).
    pub started_ns: Option<u64>,
    route: String,
    header_actor: Option<String>,
    /// Recorded whatever the sampling (an operator action).
    always: bool,
}

/// The access to audit for this request, if the policy audits its route.
pub fn begin(policy: &Policy, method: &str, path: &str, headers: &Headers) -> Option<Access> {
    let s = &policy.settings;
    let a = &s.access;
    if !a.enabled
        || !matches!(
            classify(path, &s.base_paths, &s.resource_types),
            Ok(Route::NotScim)
        )
    {
        return None;
    }
    let clean = without_query(path);
    let route = if a.routes.is_empty() {
        clean.to_string()
    } else {
        a.routes.iter().find_map(|r| r.route_of(clean))?
    };
    Some(of(
        method,
        path,
        route,
        headers,
        a.actor.header.as_deref(),
        false,
    ))
}

/// An operator action on the ops route: always recorded, actor from the policy's actor header.
pub fn operator(policy: &Policy, method: &str, path: &str, headers: &Headers) -> Access {
    let route = without_query(path).to_string();
    let actor_header = policy.settings.actor_header.as_deref();
    of(method, path, route, headers, actor_header, true)
}

/// Whether an access will be recorded unless its status says otherwise (a write, a read sampled
/// in). Such an access gets its audit id now, which the host puts in the request header
/// `x-scim-audit-id`: the shipped audit log tests that header before any CEL, so an unmarked
/// successful read (sampled out) costs the log nothing. The upstream sees the audit id too.
pub fn mark(policy: &Policy, host: &mut dyn Host, access: &mut Access) -> bool {
    let rate = policy.settings.access.sample_rate;
    let request_id = access.facts.request_id.as_deref();
    if keep(&access.facts.method, None, request_id, rate) == Keep::Skip {
        return false;
    }
    access.facts.audit_id = host.audit_id();
    true
}

/// The end of the stream: sample, and the record of what is kept, as the access log gets it, with
/// the whole record when it differs from that and a collector takes it (`Offload::log_fields`).
pub fn finish(
    engine: &Engine,
    host: &mut dyn Host,
    access: Access,
) -> Option<(String, Option<String>)> {
    let s = &engine.policy().settings;
    host.count(Count::AccessRequests, 1);
    let status = completion::status(host).ok().flatten();
    let kept = keep(
        &access.facts.method,
        status,
        access.facts.request_id.as_deref(),
        s.access.sample_rate,
    );
    if kept == Keep::Skip && !access.always {
        return None;
    }
    let Access {
        mut facts,
        started_ns,
        route,
        header_actor,
        ..
    } = access;
    if facts.audit_id.is_empty() {
        facts.audit_id = host.audit_id();
    }
    let in_log = engine.offload().log_fields;
    let shipped = s.audit.collector.is_some();
    let duration_ms = completion::clock(host, &mut facts, started_ns)
        .ok()
        .flatten();
    if !in_log || shipped {
        let _ = completion::source(host, &mut facts);
    }
    let jwt_actor = s
        .access
        .actor
        .metadata
        .as_deref()
        .and_then(|path| metadata_actor(host, path));
    let mut access = AccessFacts {
        actor: jwt_actor.or(header_actor),
        route,
        status,
        duration_ms,
        sampled: kept == Keep::Sampled,
        host_fields: HostFields::InRecord,
    };
    let whole = (!in_log || shipped).then(|| access_record(&facts, &access, engine.stamp()));
    if !in_log {
        return whole.map(|w| (w, None));
    }
    access.host_fields = HostFields::InLog;
    Some((access_record(&facts, &access, engine.stamp()), whole))
}

fn of(
    method: &str,
    path: &str,
    route: String,
    headers: &Headers,
    actor_header: Option<&str>,
    always: bool,
) -> Access {
    let facts = RequestFacts::from_headers(String::new(), method, path, headers);
    let header_actor = actor_header
        .and_then(|h| headers.get(h))
        .map(|v| printable(v.trim()))
        .filter(|v| !v.is_empty());
    Access {
        facts,
        started_ns: None,
        route,
        header_actor,
        always,
    }
}
