//! Access auditing on application routes: who called which route, when, with what outcome.
//!
//! When the policy enables `access`, a request whose path is not SCIM and matches one of
//! `access.routes` (or any path, when the list is empty) is remembered from its request headers
//! (already read for the SCIM decision: no extra host call), and finished in `on_log`, once the
//! status is known: reads (GET/HEAD) answered with anything but 401/403 are kept at
//! `access.sample_rate` (deterministic per `x-request-id`); writes and denials always. A kept access
//! becomes a `kind: "access"` record in filter state (the access log) and in the collector queue.
//!
//! A request an earlier filter answered itself (jwt_authn's 401) never reaches our headers callback;
//! `on_log` still runs, so `late` reads the headers there and records the denial.
//!
//! Host calls per request on an audited route (counted from the code paths; Envoy 1.40):
//! - headers callback (as for any non-SCIM path): `get_map`, `get_current_time` (the start) = 2
//!   (counters are published on the root's tick, not per request), + `set_map_value` (the
//!   `x-scim-audit-id` mark, see `mark`) for a write or a read sampled in;
//! - `on_log`, read sampled out: `get_property` (response.code) = 1, so **3 in all**;
//! - `on_log`, kept: + `get_property` (source.address), `get_current_time`, `get_property` (actor
//!   metadata, when configured), `set_property` (filter state) = 4–5, so **7–8 in all**; queueing
//!   for a collector adds none.
//!
//! Nothing reads or buffers a body; a route the policy does not audit costs the 1 of the headers
//! callback, and a route with the filter disabled in Envoy costs 0.

use proxy_wasm::types::MapType;

use super::audit::{self, metadata_actor};
use super::host;
use super::metrics::Metric;
use super::root::Shared;
use super::ship;
use crate::audit::detect::{keep, Keep};
use crate::audit::{access_record, AccessFacts, RequestFacts};
use crate::scim::endpoint::{classify, without_query, Route};
use crate::scim::Headers;

/// The request header that marks a request the audit log must record (see `mark`).
const AUDIT_ID: &str = "x-scim-audit-id";

/// An access to audit, as the request headers described it.
pub struct Access {
    facts: RequestFacts,
    /// The clock when the request headers reached the filter (`None` for a `late` access).
    started_ns: Option<u64>,
    route: String,
    header_actor: Option<String>,
    /// Recorded whatever the sampling (an operator action).
    always: bool,
}

/// The access to audit for this request, if the policy audits its route (pure, no host call).
pub fn begin(shared: &Shared, method: &str, path: &str, headers: &Headers) -> Option<Access> {
    let s = &shared.engine.policy().settings;
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

impl Access {
    /// The headers phase: the start of the access is now (one clock read). A `late` access has
    /// none and takes Envoy's `request.time` at the end.
    pub fn start(&mut self) {
        self.started_ns = audit::started();
    }
}

/// Marks an access that will be recorded unless its status says otherwise (a write, a read sampled
/// in) with its audit id in the request header `x-scim-audit-id`: one host call. The shipped audit
/// log tests that header before any CEL, and asks CEL only for requests that are not successful
/// reads; an unmarked successful read (sampled out) costs the log nothing. The upstream sees the
/// audit id too, as it does for SCIM writes.
pub fn mark(shared: &Shared, access: &mut Access) {
    let s = &shared.engine.policy().settings.access;
    let request_id = access.facts.request_id.as_deref();
    if keep(&access.facts.method, None, request_id, s.sample_rate) == Keep::Skip {
        return;
    }
    access.facts.audit_id = shared.ids.next();
    if let Err(e) = host::set_header(
        MapType::HttpRequestHeaders,
        AUDIT_ID,
        &access.facts.audit_id,
    ) {
        shared.host_error(e);
    }
}

/// An operator action on the ops route: always recorded, actor from the policy's actor header.
pub fn operator(shared: &Shared, method: &str, path: &str, headers: &Headers) -> Access {
    let s = &shared.engine.policy().settings;
    let route = without_query(path).to_string();
    of(
        method,
        path,
        route,
        headers,
        s.actor_header.as_deref(),
        true,
    )
}

/// `on_log` without a headers callback (an earlier filter answered): read the headers now.
pub fn late(shared: &Shared) -> Option<Access> {
    if !shared.engine.policy().settings.access.enabled {
        return None;
    }
    let pairs = host::headers(MapType::HttpRequestHeaders)
        .map_err(|e| shared.host_error(e))
        .ok()?;
    let headers = Headers::from_pairs(pairs);
    let method = headers.get(":method").unwrap_or_default().to_string();
    let path = headers.get(":path").unwrap_or_default().to_string();
    begin(shared, &method, &path, &headers)
}

/// The end of the stream: sample, and record what is kept.
pub fn finish(shared: &Shared, access: Access) {
    let s = &shared.engine.policy().settings;
    shared.metrics.count(Metric::AccessRequests);
    let status = audit::status().unwrap_or_else(|e| {
        shared.host_error(e);
        None
    });
    let kept = keep(
        &access.facts.method,
        status,
        access.facts.request_id.as_deref(),
        s.access.sample_rate,
    );
    if kept == Keep::Skip && !access.always {
        return;
    }
    let Access {
        mut facts,
        started_ns,
        route,
        header_actor,
        ..
    } = access;
    if facts.audit_id.is_empty() {
        facts.audit_id = shared.ids.next();
    }
    let duration_ms = audit::times(&mut facts, started_ns).unwrap_or_else(|e| {
        shared.host_error(e);
        None
    });
    let jwt_actor = s.access.actor.metadata.as_deref().and_then(|path| {
        metadata_actor(path).unwrap_or_else(|e| {
            shared.host_error(e);
            None
        })
    });
    let actor = jwt_actor.or(header_actor);
    let record = access_record(
        &facts,
        &AccessFacts {
            actor,
            route,
            status,
            duration_ms,
            sampled: kept == Keep::Sampled,
        },
        shared.engine.stamp(),
    );
    match host::set_filter_state(&s.filter.audit_property, record.as_bytes()) {
        Ok(()) => shared.metrics.count(Metric::AccessRecords),
        Err(e) => shared.host_error(e),
    }
    // OCSF has no class for these in our mapping yet: access records ship in the project's format.
    ship::record(shared, record);
}

fn of(
    method: &str,
    path: &str,
    route: String,
    headers: &Headers,
    actor_header: Option<&str>,
    always: bool,
) -> Access {
    let facts = audit::from_headers(String::new(), method, path, headers);
    let header_actor = actor_header
        .and_then(|h| headers.get(h))
        .map(|v| crate::scim::endpoint::printable(v.trim()))
        .filter(|v| !v.is_empty());
    Access {
        facts,
        started_ns: None,
        route,
        header_actor,
        always,
    }
}
