//! One HTTP stream: headers → (body) → (group lookups) → verdict applied → audit record.
//!
//! Reads and non-SCIM paths pass in the headers callback: no body buffering, nothing more to do
//! (except learning group names from the responses of Groups endpoints). SCIM writes are held
//! (`Pause` with `allow_on_headers_stop_iteration`), their body buffered by Envoy up to the policy's
//! limit and read once at end of stream (body callback, or trailers for HTTP/2), then judged; a
//! bodyless write (DELETE) is judged in the headers callback.
//!
//! Host calls per request (Envoy 1.40, counted on the paths below):
//! - non-SCIM or read, no learning: 2 (`get_map` request headers, `increment_metric` passthrough);
//!   +1 per client-sent `x-scim-*` header removed.
//! - GET of a Groups endpoint: 2 + `get_map` response headers + one `get_buffer` per response body
//!   chunk + one `set_shared_data` per group learned.
//! - SCIM PATCH, allowed, body in one chunk, no lookup: 13 — request: `get_map`, `get_buffer`,
//!   2 `set_map_value` (tags; 4 for a tag decision), `increment_metric` decision (+1 per matched rule);
//!   response: 2 `set_map_value`; `on_log`: 3 `get_property` (request.time, source.address,
//!   response.code), `get_current_time`, `set_property`, `increment_metric` audit records.
//! - A group lookup adds `get_current_time`, one `get_shared_data` per unknown id, and per lookup
//!   `dispatch_http_call`, `get_map` + `get_buffer` of the answer, `set_shared_data`, then `resume_http_request`.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, LogLevel, MapType};

use super::audit;
use super::groups::{self, MAX_LOOKUPS};
use super::host::{self, HostError};
use super::metrics::Metric;
use super::root::Shared;
use crate::audit::{Completion, RequestFacts};
use crate::engine::{Evaluation, Facts, Plan, Reply};
use crate::policy::Decision;
use crate::scim::endpoint::{classify, Method, ResourceType, Route};
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
    /// Learning group names from this response (Groups endpoints only).
    learning: Option<Learning>,
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
}

struct Learning {
    /// The group the path names, if any.
    group_id: Option<String>,
    method: Method,
    /// The response body so far (`None` until a 2xx response starts, or after it grew too large).
    copy: Option<Vec<u8>>,
    /// The names in it have been stored.
    done: bool,
}

impl Stream {
    pub fn new(shared: Option<Rc<Shared>>) -> Stream {
        Stream { shared, phase: Phase::Passing, request: None, verdict: None, learning: None }
    }

    /// Applies an evaluation: a local reply for a block, tags and (when held) a resume otherwise.
    fn apply(&mut self, shared: &Shared, evaluation: Evaluation, resume: bool) -> Action {
        self.phase = Phase::Decided;
        let m = &shared.metrics;
        m.decision(evaluation.decision);
        evaluation.matches.iter().for_each(|r| m.rule_match(r.severity));
        match &evaluation.error {
            Some(e) if e.status == 413 => m.count(Metric::BodyTooLarge),
            Some(_) => m.count(Metric::ParseErrors),
            None => {}
        }
        let audit_id = shared.ids.next();
        let facts = match &self.request {
            Some(r) => audit::from_headers(audit_id, &r.method, &r.path, &r.headers),
            None => RequestFacts { audit_id, ..RequestFacts::default() },
        };
        let reply = evaluation.reply();
        let tags = tags(&evaluation, &facts.audit_id);
        let blocked = reply.is_some();
        self.verdict = Some(Verdict { evaluation, facts, blocked, location: None, audited: false });
        match reply {
            Some(reply) => block(shared, &reply, &tags),
            None => forward(shared, &tags, resume),
        }
    }

    /// The body is complete (`size` bytes buffered by Envoy): read it once, normalise, judge.
    fn finish(&mut self, shared: &Shared, size: usize, resume: bool) -> Action {
        let Some(request) = &self.request else { return Action::Continue };
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
        match shared.engine.normalize(&view) {
            Ok(normalized) => self.judge(shared, normalized, resume),
            Err(error) => {
                let e = shared.engine.unreadable(error, &request.headers, &Facts::default());
                self.apply(shared, e, resume)
            }
        }
    }

    /// Fills in the group names a rule may need (shared data, then lookups), then judges.
    fn judge(&mut self, shared: &Shared, normalized: Normalized, resume: bool) -> Action {
        let engine = &shared.engine;
        let mut facts = Facts::default();
        let needed = engine.names_needed(&normalized, &facts);
        let Some(request) = &self.request else { return Action::Continue };
        if needed.is_empty() {
            let e = engine.judge(normalized, &request.headers, &facts);
            return self.apply(shared, e, resume);
        }
        let settings = &engine.policy().settings.filter;
        let now_secs = host::now_ns().map(|ns| ns / 1_000_000_000).unwrap_or_else(|e| {
            host_error(shared, e);
            0
        });
        for id in needed {
            match groups::cached(&id, now_secs, settings.group_name_ttl_secs) {
                Ok(Some(name)) => {
                    facts.group_names.insert(id, name);
                }
                Ok(None) => {}
                Err(e) => host_error(shared, e),
            }
        }
        let mut pending = Vec::new();
        if let Some(cluster) = &settings.lookup_cluster {
            let authorization = request.headers.get("authorization");
            for id in engine.names_needed(&normalized, &facts).into_iter().take(MAX_LOOKUPS) {
                shared.metrics.count(Metric::GroupLookups);
                match groups::dispatch(settings, cluster, &id, authorization) {
                    Ok(token) => pending.push((token, id)),
                    Err(e) => {
                        shared.metrics.count(Metric::GroupLookupFailures);
                        host::log(LogLevel::Warn, &format!("scimguard: group lookup not sent: {e}"));
                    }
                }
            }
        }
        if pending.is_empty() {
            let e = engine.judge(normalized, &request.headers, &facts);
            return self.apply(shared, e, resume);
        }
        self.phase = Phase::LookingUp(Box::new(Lookup { pending, normalized, facts, now_secs }));
        Action::Pause
    }

    fn too_large(&mut self, shared: &Shared, max_body_bytes: usize) -> Action {
        let Some(request) = &self.request else { return Action::Continue };
        let error = ScimError::too_large(format!("the body is larger than {max_body_bytes} bytes"));
        let e = shared.engine.unreadable(error, &request.headers, &Facts::default());
        self.apply(shared, e, false)
    }

    /// A host call the verdict depends on failed: block (fail closed), never forward unjudged.
    fn host_failure(&mut self, shared: &Shared, error: HostError, resume: bool) -> Action {
        host_error(shared, error);
        let Some(request) = &self.request else { return Action::Continue };
        let reason = ScimError::new(503, None, "the gateway could not read the request");
        let mut e = shared.engine.unreadable(reason, &request.headers, &Facts::default());
        e.decision = Decision::Block;
        self.apply(shared, e, resume)
    }

    /// Writes the audit record into filter state (once).
    fn write_audit(&mut self, shared: &Shared) {
        let Some(v) = self.verdict.as_mut().filter(|v| !v.audited) else { return };
        v.audited = true;
        let (duration_ms, status) = audit::from_host(&mut v.facts).unwrap_or_else(|e| {
            host_error(shared, e);
            (None, None)
        });
        let created = status.is_some_and(|s| (200..300).contains(&s)) && v.facts.method.eq_ignore_ascii_case("POST");
        let body = self.learning.as_ref().and_then(|l| l.copy.as_deref());
        let created_id = created.then(|| created_id(v.location.as_deref(), body)).flatten();
        let record = v.evaluation.audit_record(&v.facts, &Completion { status, created_id, duration_ms });
        let settings = &shared.engine.policy().settings.filter;
        match host::set_filter_state(&settings.audit_property, record.as_bytes()) {
            Ok(()) => shared.metrics.count(Metric::AuditRecords),
            Err(e) => host_error(shared, e),
        }
        if settings.audit_to_log {
            host::log(LogLevel::Info, &format!("scimguard audit: {record}"));
        }
    }

    /// The body is not worth reading (too large, unreadable): learn nothing, but still forget a name
    /// the write may have changed.
    fn give_up_learning(&mut self, shared: &Shared) -> Action {
        self.learn(shared);
        Action::Continue
    }

    /// Response headers of a Groups endpoint: start copying a 2xx body, or forget a name it changed.
    fn start_learning(&mut self, shared: &Shared, status: Option<u16>, end_of_stream: bool) {
        let Some(l) = self.learning.as_mut() else { return };
        if !status.is_some_and(|s| (200..300).contains(&s)) {
            self.learning = None;
            return;
        }
        if end_of_stream {
            self.learn(shared);
        } else {
            l.copy = Some(Vec::new());
        }
    }

    /// The whole Groups response is in: remember every name it carries; after a write to a group
    /// whose response does not name it, forget the old name. The copy stays (a create's id is in it).
    fn learn(&mut self, shared: &Shared) {
        let Some(l) = self.learning.as_mut().filter(|l| !l.done) else { return };
        l.done = true;
        let learned = l.copy.as_deref().map(group_names).unwrap_or_default();
        let wrote = !l.method.is_read() && l.method != Method::Post;
        let stale = l.group_id.as_deref().filter(|id| wrote && !learned.iter().any(|(g, _)| g == id));
        if let Some(id) = stale {
            if let Err(e) = groups::forget(id) {
                host_error(shared, e);
            }
        }
        if learned.is_empty() {
            return;
        }
        let now_secs = match host::now_ns() {
            Ok(ns) => ns / 1_000_000_000,
            Err(e) => return host_error(shared, e),
        };
        for (id, name) in &learned {
            match groups::remember(id, name, now_secs) {
                Ok(()) => shared.metrics.count(Metric::GroupNamesLearned),
                Err(e) => host_error(shared, e),
            }
        }
    }
}

impl Context for Stream {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        let Some(shared) = self.shared.clone() else { return };
        let Phase::LookingUp(lookup) = &mut self.phase else { return };
        let Some(i) = lookup.pending.iter().position(|(t, _)| *t == token) else { return };
        let (_, id) = lookup.pending.swap_remove(i);
        match groups::answer(&id, body_size) {
            Ok(Some(name)) => {
                if let Err(e) = groups::remember(&id, &name, lookup.now_secs) {
                    host_error(&shared, e);
                }
                shared.metrics.count(Metric::GroupNamesLearned);
                lookup.facts.group_names.insert(id, name);
            }
            Ok(None) => shared.metrics.count(Metric::GroupLookupFailures),
            Err(e) => {
                shared.metrics.count(Metric::GroupLookupFailures);
                host_error(&shared, e);
            }
        }
        if !lookup.pending.is_empty() {
            return;
        }
        let Phase::LookingUp(lookup) = std::mem::replace(&mut self.phase, Phase::Decided) else { return };
        let Some(request) = &self.request else { return };
        // Names still unknown here (failed lookups) get the policy's `on_unknown_group`, and the
        // evaluation lists them (`group_names_unknown` in the audit record).
        let e = shared.engine.judge(lookup.normalized, &request.headers, &lookup.facts);
        self.apply(&shared, e, true);
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else { return unconfigured() };
        let pairs = match host::headers(MapType::HttpRequestHeaders) {
            Ok(p) => p,
            Err(e) => {
                host_error(&shared, e);
                return unconfigured();
            }
        };
        let headers = strip_spoofed(&shared, pairs);
        let method = headers.get(":method").unwrap_or_default().to_string();
        let path = headers.get(":path").unwrap_or_default().to_string();
        let plan = shared.engine.plan(&method, &path, &headers);
        let settings = &shared.engine.policy().settings;
        self.learning = learning(&method, &path, &settings.base_paths, &settings.resource_types);
        match plan {
            Plan::Pass => {
                shared.metrics.count(Metric::Passthrough);
                Action::Continue
            }
            Plan::Decided(e) => {
                self.request = Some(Request { method, path, headers });
                self.apply(&shared, *e, false)
            }
            Plan::Inspect { max_body_bytes } => {
                self.request = Some(Request { method, path, headers });
                if end_of_stream {
                    return self.finish(&shared, 0, false);
                }
                self.phase = Phase::Buffering { max_body_bytes, seen: 0 };
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else { return Action::Pause };
        match &mut self.phase {
            Phase::Buffering { max_body_bytes, seen } => {
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
            Phase::LookingUp(_) => Action::Pause,
            Phase::Decided if self.verdict.as_ref().is_some_and(|v| v.blocked) => Action::Pause,
            Phase::Passing | Phase::Decided => Action::Continue,
        }
    }

    fn on_http_request_trailers(&mut self, _trailers: usize) -> Action {
        let Some(shared) = self.shared.clone() else { return Action::Pause };
        match &self.phase {
            // HTTP/2 with trailers: the body callback never saw end_of_stream.
            Phase::Buffering { seen, .. } => {
                let seen = *seen;
                self.finish(&shared, seen, false)
            }
            Phase::LookingUp(_) => Action::Pause,
            Phase::Decided if self.verdict.as_ref().is_some_and(|v| v.blocked) => Action::Pause,
            Phase::Passing | Phase::Decided => Action::Continue,
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else { return Action::Continue };
        // Our own local reply re-enters here: it already carries its headers; nothing to judge.
        if self.verdict.as_ref().is_some_and(|v| v.blocked) {
            return Action::Continue;
        }
        let post = self.request.as_ref().is_some_and(|r| r.method.eq_ignore_ascii_case("POST"));
        if self.learning.is_none() && !(post && self.verdict.is_some()) {
            if let Some(v) = &self.verdict {
                tag_response(&shared, v);
            }
            return Action::Continue;
        }
        let response = host::headers(MapType::HttpResponseHeaders).unwrap_or_else(|e| {
            host_error(&shared, e);
            Vec::new()
        });
        let find = |name: &str| response.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let status = find(":status").and_then(|s| s.parse::<u16>().ok());
        if let Some(v) = self.verdict.as_mut() {
            v.location = find("location");
            tag_response(&shared, v);
        }
        self.start_learning(&shared, status, end_of_stream);
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else { return Action::Continue };
        let Some(l) = self.learning.as_mut().filter(|l| !l.done) else { return Action::Continue };
        let Some(copy) = l.copy.as_mut() else { return Action::Continue };
        // Returning Continue each time, the buffer holds just this chunk: copy it as it passes.
        let chunk = match host::buffer(BufferType::HttpResponseBody, body_size) {
            Ok(chunk) if copy.len().saturating_add(chunk.len()) <= MAX_LEARN_BYTES => chunk,
            Ok(_) => {
                l.copy = None;
                return self.give_up_learning(&shared);
            }
            Err(e) => {
                host_error(&shared, e);
                l.copy = None;
                return self.give_up_learning(&shared);
            }
        };
        copy.extend_from_slice(&chunk);
        if end_of_stream {
            self.learn(&shared);
        }
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _trailers: usize) -> Action {
        // With trailers, the body callback never saw end_of_stream.
        if let Some(shared) = self.shared.clone() {
            if self.learning.as_ref().is_some_and(|l| l.copy.is_some()) {
                self.learn(&shared);
            }
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if let Some(shared) = self.shared.clone() {
            self.write_audit(&shared);
        }
    }
}

/// Removes client-sent `x-scim-*` headers (ours to set) and returns the rest as the engine's view.
fn strip_spoofed(shared: &Shared, pairs: Vec<(String, String)>) -> Headers {
    let mut removed: Vec<&str> = Vec::new();
    for (name, _) in pairs.iter().filter(|(k, _)| k.starts_with("x-scim-")) {
        if removed.contains(&name.as_str()) {
            continue;
        }
        removed.push(name);
        if let Err(e) = host::remove_header(MapType::HttpRequestHeaders, name) {
            host_error(shared, e);
        }
    }
    let kept: Vec<(String, String)> = pairs.iter().filter(|(k, _)| !k.starts_with("x-scim-")).cloned().collect();
    Headers::from_pairs(kept)
}

/// Whether this request's response may teach us group names: any Groups endpoint.
fn learning(method: &str, path: &str, base_paths: &[String], custom: &[String]) -> Option<Learning> {
    // Cheap pre-check so that other paths never pay for classification.
    if !path.to_ascii_lowercase().contains("groups") {
        return None;
    }
    match classify(path, base_paths, custom) {
        Ok(Route::Scim(ep)) if ep.resource_type == ResourceType::Groups => {
            Some(Learning { group_id: ep.id, method: Method::parse(method), copy: None, done: false })
        }
        _ => None,
    }
}

/// The request headers the upstream gets: audit id and decision always; risk and rules when tagged.
fn tags(e: &Evaluation, audit_id: &str) -> Vec<(&'static str, String)> {
    let mut tags = vec![("x-scim-audit-id", audit_id.to_string()), ("x-scim-decision", e.decision.as_str().to_string())];
    if e.decision == Decision::Tag {
        tags.push(("x-scim-risk", e.risk.map_or("none", |r| r.as_str()).to_string()));
        let rules: String = e.rule_ids().join(",").chars().filter(|c| !c.is_control()).collect();
        if !rules.is_empty() {
            tags.push(("x-scim-rules", rules));
        }
    }
    tags
}

fn block(shared: &Shared, reply: &Reply, tags: &[(&'static str, String)]) -> Action {
    let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/scim+json")];
    headers.extend(tags.iter().map(|(k, v)| (*k, v.as_str())));
    if let Err(e) = host::send_reply(reply.status, &headers, reply.body.as_bytes()) {
        host_error(shared, e);
        // The upstream must never see a blocked request: without a reply, end the stream.
        host::reset_request();
    }
    Action::Pause
}

fn forward(shared: &Shared, tags: &[(&'static str, String)], resume: bool) -> Action {
    for (name, value) in tags {
        if let Err(e) = host::set_header(MapType::HttpRequestHeaders, name, value) {
            host_error(shared, e);
        }
    }
    if resume {
        if let Err(e) = host::resume_request() {
            host_error(shared, e);
            host::reset_request();
        }
    }
    Action::Continue
}

/// The client's response says which request this was and what we decided.
fn tag_response(shared: &Shared, v: &Verdict) {
    let pairs = [("x-scim-audit-id", v.facts.audit_id.as_str()), ("x-scim-decision", v.evaluation.decision.as_str())];
    for (name, value) in pairs {
        if let Err(e) = host::set_header(MapType::HttpResponseHeaders, name, value) {
            host_error(shared, e);
        }
    }
}

fn host_error(shared: &Shared, e: HostError) {
    shared.metrics.count(Metric::HostErrors);
    host::log(LogLevel::Error, &format!("scimguard: {e}"));
}

/// No compiled policy on this VM (Envoy does not start without one; this is the belt to its braces).
fn unconfigured() -> Action {
    let body = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"503","detail":"scimguard is not configured"}"#;
    if host::send_reply(503, &[("content-type", "application/scim+json")], body).is_err() {
        host::reset_request();
    }
    Action::Pause
}
