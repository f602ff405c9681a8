//! One HTTP stream: headers → (body) → (group lookups) → verdict applied → audit record.
//!
//! Reads and non-SCIM paths pass in the headers callback: no body buffering, nothing more to do
//! (except learning group names from the responses of Groups endpoints). SCIM writes are held
//! (`Pause` with `allow_on_headers_stop_iteration`), their body buffered by Envoy up to the policy's
//! limit and read once at end of stream (body callback, or trailers for HTTP/2), then judged; a
//! bodyless write (DELETE) is judged in the headers callback.
//!
//! Host calls per request (counted on Envoy 1.40; each is a host↔VM crossing, the dominant cost).
//! Counters cost none here: they are counted in the VM and published on the root's tick (`metrics`).
//! - read or non-SCIM path (not Groups): 1 — `get_map` request headers; +1 `remove_map_value` per
//!   distinct client-sent `x-scim-*` header. (With the shipped `envoy.yaml`, non-SCIM routes disable
//!   the filter: 0.)
//! - read of a Groups endpoint: 2 + one `get_buffer` per response body chunk, then
//!   `get_current_time` + one `set_shared_data` per group learned.
//! - SCIM PATCH of a User, allowed, body in one chunk: 11 — request headers: `get_map`,
//!   `get_current_time` (the record's start); body: `get_buffer`, 2 `set_map_value` (tags; 4 for a
//!   tag decision); response headers: 2 `set_map_value`; `on_log`: 2 `get_property` (source.address,
//!   response.code), `get_current_time`, `set_property`.
//! - a PATCH of a Group adds `get_current_time` + one `get_shared_data` per id whose name a rule needs,
//!   and `get_map` of the response headers; a lookup adds per id `dispatch_http_call`, `get_map` +
//!   `get_buffer` of the answer, `set_shared_data`, and one `resume_http_request`.
//!
//! - the audit-trail sections add: `filter.actor_metadata` one `get_property` per SCIM write;
//!   `detections` see `detect` (none for a write without deprovisions from an untracked actor);
//!   shipping and notifications none (an in-VM queue; the root context sends); access auditing on
//!   application routes see `access` (3 host calls for a read sampled out, 7–8 for a kept one).
//!
//! Not every call costs the same (instructions per call, callgrind over Envoy 1.40 + V8): a call
//! that returns data (`get_map` ≈ 23k for 9 headers, `get_property` ≈ 12k, `get_buffer` ≈ 10k) makes
//! Envoy call back into the VM to allocate the copy; `set_map_value` ≈ 3k; `get_current_time` ≈ 1k.
//! Hence the clock, not the `request.time` property, for the start.
//!
//! The audit record goes into filter state in `on_log`, once the final status and duration are
//! known. Checked in Envoy 1.40: the HCM access log sees filter state set in `on_log`, because filter
//! access loggers (the wasm `on_log`) run before the HCM's own (PR #35959; its runtime guard
//! `http_separate_config_and_filter_access_loggers` is no longer in the 1.40 binary, the order is
//! unconditional). Before Envoy 1.32 the order was reversed (envoy#30859); we already require 1.35
//! for `allow_on_headers_stop_iteration`.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, LogLevel, MapType};

use super::access::{self, Access};
use super::audit;
use super::detect;
use super::fleet;
use super::groups::{self, MAX_LOOKUPS};
use super::host::{self, HostError};
use super::metrics::Metric;
use super::ops::{self, Handled};
use super::root::Shared;
use super::ship;
use super::verdict;
use crate::audit::compact::compact;
use crate::audit::notify::{cloudevent, should_notify, Origin};
use crate::audit::{bound, ocsf, Completion, Fit, RequestFacts};
use crate::engine::{Evaluation, Facts, Plan, Target};
use crate::policy::Decision;
use crate::scim::response::{created_id, group_names};
use crate::scim::{Headers, Normalized, RequestView, ScimError};

/// A Groups response body larger than this is not copied (learning is opportunistic; lookups remain).
const MAX_LEARN_BYTES: usize = 256 * 1024;

pub struct Stream {
    shared: Option<Rc<Shared>>,
    phase: Phase,
    /// The request as the engine sees it (SCIM writes only).
    request: Option<Request>,
    verdict: Option<Verdict>,
    /// Group names may be learned from this response (Groups endpoints only).
    learning: Option<Learning>,
    /// An application access to record at the end (access auditing).
    access: Option<Access>,
    /// The request-headers callback ran (an earlier filter may answer before it does).
    seen_headers: bool,
}

enum Phase {
    /// Not (yet) a SCIM write under judgement.
    Passing,
    /// A SCIM write whose body Envoy is buffering; `seen` is the cumulative `body_size`.
    Buffering { max_body_bytes: usize, seen: usize },
    /// Held until every group-name lookup has answered.
    LookingUp(Box<Lookup>),
    /// The verdict has been applied.
    Decided,
}

struct Request {
    method: String,
    path: String,
    headers: Headers,
    /// The actor a metadata path named (`filter.actor_metadata`, e.g. a JWT claim).
    actor: Option<String>,
    /// Endpoint and method as the headers phase resolved them (writes under judgement only).
    target: Option<Target>,
    /// The clock when the request headers reached the filter: the record's `time` and the start
    /// of its `duration_ms`.
    started_ns: Option<u64>,
}

impl Request {
    /// The host facts every judgement of this request starts from.
    fn facts(&self) -> Facts {
        Facts {
            actor: self.actor.clone(),
            ..Facts::default()
        }
    }
}

struct Lookup {
    /// (token, group id) of the calls still out.
    pending: Vec<(u32, String)>,
    normalized: Normalized,
    facts: Facts,
    now_secs: u64,
}

struct Verdict {
    evaluation: Evaluation,
    facts: RequestFacts,
    /// We answered with a local reply (the upstream never saw the request).
    blocked: bool,
    location: Option<String>,
    audited: bool,
    /// Marked for the fleet's rate-limit service (a write going upstream with a fleet event).
    fleet: Option<fleet::Mark>,
}

#[derive(Default)]
struct Learning {
    /// The response body so far (`None` until a 2xx response starts, or after it grew too large).
    copy: Option<Vec<u8>>,
    /// The names in it have been stored.
    done: bool,
}

impl Stream {
    pub fn new(shared: Option<Rc<Shared>>) -> Stream {
        Stream {
            shared,
            phase: Phase::Passing,
            request: None,
            verdict: None,
            learning: None,
            access: None,
            seen_headers: false,
        }
    }

    /// The request must not move on: a lookup is out, or we answered it ourselves.
    fn held(&self) -> bool {
        matches!(self.phase, Phase::LookingUp(_))
            || self.verdict.as_ref().is_some_and(|v| v.blocked)
    }

    /// Applies an evaluation: a local reply for a block, tags and (when held) a resume otherwise.
    fn apply(&mut self, shared: &Shared, mut evaluation: Evaluation, resume: bool) -> Action {
        self.phase = Phase::Decided;
        detect::apply(shared, &mut evaluation);
        let fleet = fleet::mark(shared, &evaluation);
        // Judged: from here on only the audit outputs read it, and it is held until the stream ends.
        if let Some(n) = evaluation.normalized.as_mut() {
            compact(n);
        }
        let m = &shared.metrics;
        m.decision(evaluation.decision);
        evaluation
            .matches
            .iter()
            .for_each(|r| m.rule_match(r.severity));
        match &evaluation.error {
            Some(e) if e.status == 413 => m.count(Metric::BodyTooLarge),
            Some(_) => m.count(Metric::ParseErrors),
            None => {}
        }
        let audit_id = shared.ids.next();
        let facts = match &self.request {
            Some(r) => audit::from_headers(audit_id, &r.method, &r.path, &r.headers),
            None => RequestFacts {
                audit_id,
                ..RequestFacts::default()
            },
        };
        let reply = evaluation.reply();
        let tags = verdict::tags(&evaluation, &facts.audit_id);
        let blocked = reply.is_some();
        self.verdict = Some(Verdict {
            evaluation,
            facts,
            blocked,
            location: None,
            audited: false,
            fleet,
        });
        match reply {
            Some(reply) => verdict::block(shared, &reply, &tags),
            None => verdict::forward(shared, &tags, resume),
        }
    }

    /// The body is complete (`size` bytes buffered by Envoy): read it once, normalise, judge.
    fn finish(&mut self, shared: &Shared, size: usize, resume: bool) -> Action {
        let Some((request, target)) = self
            .request
            .as_ref()
            .and_then(|r| Some((r, r.target.as_ref()?)))
        else {
            return Action::Continue;
        };
        let body = match size {
            0 => None,
            _ => match host::buffer(BufferType::HttpRequestBody, size) {
                Ok(b) => Some(b),
                Err(e) => return self.host_failure(shared, e, resume),
            },
        };
        let view = RequestView {
            method: &request.method,
            path: &request.path,
            headers: &request.headers,
            body: body.as_deref(),
        };
        match shared.engine.normalize(&view, target) {
            Ok(normalized) => self.judge(shared, normalized, resume),
            Err(error) => {
                let e = shared
                    .engine
                    .unreadable(error, &request.headers, &request.facts());
                self.apply(shared, e, resume)
            }
        }
    }

    /// Fills in the group names a rule may need (shared data, then lookups), then judges.
    fn judge(&mut self, shared: &Shared, normalized: Normalized, resume: bool) -> Action {
        let engine = &shared.engine;
        let Some(request) = &self.request else {
            return Action::Continue;
        };
        let needed = engine.names_needed(&normalized, &Facts::default());
        let (mut facts, now_secs) = cached_names(shared, needed);
        facts.actor.clone_from(&request.actor);
        let settings = &engine.policy().settings.filter;
        // Without a clock no name's age can be known: lookups are skipped too (the names stay
        // unknown and the fail-closed `on_unknown_group` applies).
        if let (Some(cluster), Some(now_secs)) = (&settings.lookup_cluster, now_secs) {
            let missing = engine.names_needed(&normalized, &facts);
            let authorization = request.headers.get("authorization");
            let pending = start_lookups(shared, cluster, missing, authorization);
            if !pending.is_empty() {
                self.phase = Phase::LookingUp(Box::new(Lookup {
                    pending,
                    normalized,
                    facts,
                    now_secs,
                }));
                return Action::Pause;
            }
        }
        // Names still unknown get the policy's `on_unknown_group`; the evaluation lists them.
        let e = engine.judge(normalized, &request.headers, &facts);
        self.apply(shared, e, resume)
    }

    fn too_large(&mut self, shared: &Shared, max_body_bytes: usize) -> Action {
        let Some(request) = &self.request else {
            return Action::Continue;
        };
        let error = ScimError::too_large(format!("the body is larger than {max_body_bytes} bytes"));
        let e = shared
            .engine
            .unreadable(error, &request.headers, &request.facts());
        self.apply(shared, e, false)
    }

    /// A host call the verdict depends on failed: block (fail closed), never forward unjudged.
    fn host_failure(&mut self, shared: &Shared, error: HostError, resume: bool) -> Action {
        shared.host_error(error);
        let Some(request) = &self.request else {
            return Action::Continue;
        };
        let reason = ScimError::new(503, None, "the gateway could not read the request");
        let mut e = shared
            .engine
            .unreadable(reason, &request.headers, &request.facts());
        e.decision = Decision::Block;
        self.apply(shared, e, resume)
    }

    /// Writes the audit record into filter state, once (see the module docs for why in `on_log`).
    fn write_audit(&mut self, shared: &Shared) {
        let Some(v) = self.verdict.as_mut().filter(|v| !v.audited) else {
            return;
        };
        v.audited = true;
        let started_ns = self.request.as_ref().and_then(|r| r.started_ns);
        let (duration_ms, status) =
            audit::from_host(&mut v.facts, started_ns).unwrap_or_else(|e| {
                shared.host_error(e);
                (None, None)
            });
        let created = status.is_some_and(|s| (200..300).contains(&s))
            && v.facts.method.eq_ignore_ascii_case("POST");
        let body = self.learning.as_ref().and_then(|l| l.copy.as_deref());
        let created_id = created
            .then(|| created_id(v.location.as_deref(), body))
            .flatten();
        let done = Completion {
            status,
            created_id,
            duration_ms,
        };
        let line = v.evaluation.audit_line(&v.facts, &done);
        count_fit(shared, line.fit);
        let record = line.text;
        let settings = &shared.engine.policy().settings.filter;
        // An empty record was dropped (counted by `count_fit`); the other outputs still go.
        let kept = !record.is_empty();
        if kept {
            match host::set_filter_state(&settings.audit_property, record.as_bytes()) {
                Ok(()) => shared.metrics.count(Metric::AuditRecords),
                Err(e) => shared.host_error(e),
            }
        }
        if settings.audit_to_log && kept {
            host::log(LogLevel::Info, &format!("scimguard audit: {record}"));
        }
        let traceparent = self
            .request
            .as_ref()
            .and_then(|r| r.headers.get("traceparent"));
        queue_outbound(shared, &v.evaluation, &v.facts, &done, record, traceparent);
    }

    /// The whole Groups response is in: remember every name it carries. The copy stays (a create's
    /// id may be in it).
    fn learn(&mut self, shared: &Shared) {
        let Some(l) = self.learning.as_mut().filter(|l| !l.done) else {
            return;
        };
        l.done = true;
        let learned = l.copy.as_deref().map(group_names).unwrap_or_default();
        if learned.is_empty() {
            return;
        }
        let now_secs = match host::now_ns() {
            Ok(ns) => ns / 1_000_000_000,
            Err(e) => return shared.host_error(e),
        };
        for (id, name) in &learned {
            match groups::remember(id, name, now_secs) {
                Ok(()) => shared.metrics.count(Metric::GroupNamesLearned),
                Err(e) => shared.host_error(e),
            }
        }
    }
}

impl Context for Stream {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let Phase::LookingUp(lookup) = &mut self.phase else {
            return;
        };
        let Some(i) = lookup.pending.iter().position(|(t, _)| *t == token) else {
            return;
        };
        let (_, id) = lookup.pending.swap_remove(i);
        match groups::answer(&id, body_size) {
            Ok(Some(name)) => {
                if let Err(e) = groups::remember(&id, &name, lookup.now_secs) {
                    shared.host_error(e);
                }
                shared.metrics.count(Metric::GroupNamesLearned);
                lookup.facts.group_names.insert(id, name);
            }
            Ok(None) => shared.metrics.count(Metric::GroupLookupFailures),
            Err(e) => {
                shared.metrics.count(Metric::GroupLookupFailures);
                shared.host_error(e);
            }
        }
        if !lookup.pending.is_empty() {
            return;
        }
        let Phase::LookingUp(lookup) = std::mem::replace(&mut self.phase, Phase::Decided) else {
            return;
        };
        let Some(request) = &self.request else { return };
        // A failed lookup leaves the name unknown: `on_unknown_group` applies, the record says so.
        let e = shared
            .engine
            .judge(lookup.normalized, &request.headers, &lookup.facts);
        self.apply(&shared, e, true);
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return verdict::refuse_unjudged();
        };
        let pairs = match host::headers(MapType::HttpRequestHeaders) {
            Ok(p) => p,
            Err(e) => {
                shared.host_error(e);
                return verdict::refuse_unjudged();
            }
        };
        self.seen_headers = true;
        let headers = verdict::strip_spoofed(&shared, pairs);
        let method = headers.get(":method").unwrap_or_default().to_string();
        let path = headers.get(":path").unwrap_or_default().to_string();
        if let Handled::Replied { audit } = ops::handle(&shared, &method, &path) {
            self.access = audit.then(|| access::operator(&shared, &method, &path, &headers));
            if let Some(a) = self.access.as_mut() {
                a.start();
            }
            return Action::Pause;
        }
        let plan = shared.engine.plan(&method, &path, &headers);
        let s = &shared.engine.policy().settings;
        self.learning =
            groups::teaches_names(&path, &s.base_paths, &s.resource_types).then(Learning::default);
        match plan {
            Plan::Pass => {
                shared.metrics.count(Metric::Passthrough);
                self.access = access::begin(&shared, &method, &path, &headers);
                if let Some(a) = self.access.as_mut() {
                    a.start();
                    access::mark(&shared, a);
                }
                Action::Continue
            }
            Plan::Decided(e) => {
                let actor = metadata_actor(&shared);
                // Decided from the headers alone, where the engine knew only the actor header: the
                // metadata actor (which the engine prefers when it has one) takes its place.
                let mut e = *e;
                if actor.is_some() {
                    e.actor.clone_from(&actor);
                }
                self.request = Some(Request {
                    method,
                    path,
                    headers,
                    actor,
                    target: None,
                    started_ns: audit::started(),
                });
                self.apply(&shared, e, false)
            }
            Plan::Inspect {
                max_body_bytes,
                target,
            } => {
                let actor = metadata_actor(&shared);
                self.request = Some(Request {
                    method,
                    path,
                    headers,
                    actor,
                    target: Some(target),
                    started_ns: audit::started(),
                });
                if end_of_stream {
                    return self.finish(&shared, 0, false);
                }
                self.phase = Phase::Buffering {
                    max_body_bytes,
                    seen: 0,
                };
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return Action::Pause;
        };
        let Phase::Buffering {
            max_body_bytes,
            seen,
        } = &mut self.phase
        else {
            return if self.held() {
                Action::Pause
            } else {
                Action::Continue
            };
        };
        *seen = body_size;
        let max = *max_body_bytes;
        if body_size > max {
            self.too_large(&shared, max)
        } else if end_of_stream {
            self.finish(&shared, body_size, false)
        } else {
            Action::Pause
        }
    }

    fn on_http_request_trailers(&mut self, _trailers: usize) -> Action {
        let Some(shared) = self.shared.clone() else {
            return Action::Pause;
        };
        // HTTP/2 with trailers: the body callback never saw end_of_stream; the body ends here.
        match self.phase {
            Phase::Buffering { seen, .. } => self.finish(&shared, seen, false),
            _ if self.held() => Action::Pause,
            _ => Action::Continue,
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return Action::Continue;
        };
        // Our own local reply re-enters here: it already carries its headers; nothing to judge.
        if self.verdict.as_ref().is_some_and(|v| v.blocked) {
            return Action::Continue;
        }
        let renamed = self
            .verdict
            .as_ref()
            .map(|v| groups::renamed(&v.evaluation))
            .unwrap_or_default();
        let created = self.verdict.is_some()
            && self
                .request
                .as_ref()
                .is_some_and(|r| r.method.eq_ignore_ascii_case("POST"));
        let marked = self.verdict.as_ref().is_some_and(|v| v.fleet.is_some());
        // Reads and non-SCIM paths other than Groups end here, without a host call.
        let response = if self.learning.is_none() && renamed.is_empty() && !created && !marked {
            Vec::new()
        } else {
            host::headers(MapType::HttpResponseHeaders).unwrap_or_else(|e| {
                shared.host_error(e);
                Vec::new()
            })
        };
        // The fleet's rate-limit service refused a write we marked: Envoy answered; we record it.
        if let Some(v) = self.verdict.as_mut() {
            if let (Some(mark), true) = (&v.fleet, fleet::refused(&response)) {
                fleet::record_block(&shared, &mut v.evaluation, mark);
            }
            verdict::tag_response(&shared, &v.facts.audit_id, v.evaluation.decision);
        }
        if self.learning.is_none() && renamed.is_empty() && !created {
            return Action::Continue;
        }
        let find = |name: &str| {
            response
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let success = find(":status")
            .and_then(|s| s.parse::<u16>().ok())
            .is_some_and(|s| (200..300).contains(&s));
        if let Some(v) = self.verdict.as_mut() {
            v.location = find("location");
        }
        if !success {
            self.learning = None;
            return Action::Continue;
        }
        // The upstream applied a write that may have renamed these groups: forget their names, so
        // that the next request needing one looks it up again.
        for id in renamed {
            if let Err(e) = groups::forget(&id) {
                shared.host_error(e);
            }
        }
        match self.learning.as_mut() {
            Some(_) if end_of_stream => self.learn(&shared),
            Some(l) => l.copy = Some(Vec::new()),
            None => {}
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return Action::Continue;
        };
        let Some(l) = self.learning.as_mut().filter(|l| !l.done) else {
            return Action::Continue;
        };
        let Some(copy) = l.copy.as_mut() else {
            return Action::Continue;
        };
        if copy.len().saturating_add(body_size) > MAX_LEARN_BYTES {
            self.learning = None;
            return Action::Continue;
        }
        // Returning Continue each time, the buffer holds just this chunk: copy it as it passes.
        match host::buffer(BufferType::HttpResponseBody, body_size) {
            Ok(chunk) => copy.extend_from_slice(&chunk),
            Err(e) => {
                shared.host_error(e);
                self.learning = None;
                return Action::Continue;
            }
        }
        if end_of_stream {
            self.learn(&shared);
        }
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _trailers: usize) -> Action {
        // With trailers, the body callback never saw end_of_stream.
        if let Some(shared) = self.shared.clone() {
            self.learn(&shared);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        self.write_audit(&shared);
        let access = match self.access.take() {
            Some(a) => Some(a),
            None if !self.seen_headers => access::late(&shared),
            None => None,
        };
        if let Some(a) = access {
            access::finish(&shared, a);
        }
    }
}

/// The fresh names shared data holds for `needed`, and the time (epoch s) they were judged fresh at
/// (`None`: nothing was needed, or the clock failed).
fn cached_names(shared: &Shared, needed: Vec<String>) -> (Facts, Option<u64>) {
    let mut facts = Facts::default();
    if needed.is_empty() {
        return (facts, None);
    }
    let now_secs = match host::now_ns() {
        Ok(ns) => ns / 1_000_000_000,
        Err(e) => {
            shared.host_error(e);
            return (facts, None);
        }
    };
    let ttl = shared.engine.policy().settings.filter.group_name_ttl_secs;
    for id in needed {
        match groups::cached(&id, now_secs, ttl) {
            Ok(Some(name)) => {
                facts.group_names.insert(id, name);
            }
            Ok(None) => {}
            Err(e) => shared.host_error(e),
        }
    }
    (facts, Some(now_secs))
}

/// Starts a lookup per missing name (at most `MAX_LOOKUPS`); returns (token, id) of those sent.
fn start_lookups(
    shared: &Shared,
    cluster: &str,
    missing: Vec<String>,
    authorization: Option<&str>,
) -> Vec<(u32, String)> {
    let settings = &shared.engine.policy().settings.filter;
    let mut pending = Vec::new();
    for id in missing.into_iter().take(MAX_LOOKUPS) {
        shared.metrics.count(Metric::GroupLookups);
        match groups::dispatch(settings, cluster, &id, authorization) {
            Ok(token) => pending.push((token, id)),
            Err(e) => {
                shared.metrics.count(Metric::GroupLookupFailures);
                host::log(
                    LogLevel::Warn,
                    &format!("scimguard: group lookup not sent: {e}"),
                );
            }
        }
    }
    pending
}

/// The actor `filter.actor_metadata` names, when configured (one property read).
fn metadata_actor(shared: &Shared) -> Option<String> {
    let path = shared
        .engine
        .policy()
        .settings
        .filter
        .actor_metadata
        .as_deref()?;
    audit::metadata_actor(path).unwrap_or_else(|e| {
        shared.host_error(e);
        None
    })
}

/// Queues what leaves the VM for one judged write: the record and/or its OCSF events for the
/// collector, and the signed notification when the request is high-risk (no host call but counters).
fn queue_outbound(
    shared: &Shared,
    e: &Evaluation,
    facts: &RequestFacts,
    done: &Completion,
    record: String,
    traceparent: Option<&str>,
) {
    let s = &shared.engine.policy().settings;
    let collect = shared.sinks.has_collector();
    let notify = shared.sinks.has_webhook()
        && s.notify
            .as_ref()
            .is_some_and(|n| should_notify(&e.matches, e.risk, Some(n.min_severity)));
    if !collect && !notify {
        return;
    }
    let judged = e.judged();
    let max = e.stamp.max_bytes;
    let events = if (collect && s.audit.format.ocsf()) || notify {
        ocsf::events(&judged, facts, done, &ocsf::OcsfContext::default())
    } else {
        Vec::new()
    };
    if collect && s.audit.format.records() && !record.is_empty() {
        ship::record(shared, record);
    }
    if collect && s.audit.format.ocsf() {
        for event in &events {
            let line = bound::ocsf(event, max);
            count_fit(shared, line.fit);
            if !line.text.is_empty() {
                ship::record(shared, line.text);
            }
        }
    }
    if notify {
        let notice = Origin {
            node: &shared.node,
            traceparent,
        };
        let line = bound::notification(&cloudevent(&judged, facts, done, &notice, &events), max);
        count_fit(shared, line.fit);
        if line.text.is_empty() {
            return;
        }
        ship::notify(
            shared,
            ship::Notice {
                id: facts.audit_id.clone(),
                body: line.text,
            },
        );
    }
}

/// Counts an output cut to fit `audit.max_record_bytes`, or (never expected) dropped.
fn count_fit(shared: &Shared, fit: Fit) {
    match fit {
        Fit::Whole => {}
        Fit::Cut | Fit::Minimal => shared.metrics.count(Metric::AuditCut),
        Fit::Dropped => {
            shared.metrics.count(Metric::AuditOversizeDropped);
            host::log(
                LogLevel::Error,
                "scimguard: an audit output did not fit audit.max_record_bytes and was dropped",
            );
        }
    }
}
