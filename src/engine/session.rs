//! One request's lifecycle, as values in and values out: request headers → (body | trailers) →
//! (group-name lookups) → verdict → response → completion, and at the end the audit outputs (the
//! record, OCSF events, the notification, and what to ship).
//!
//! The host (the proxy-wasm filter, or `MemoryHost` for case files) feeds each event and applies the
//! `Step` it gets back; state that spans requests and facts read on demand go through the `Host`
//! port. The session never blocks on the host: a lookup is a `Step::Lookup` the host sends and
//! answers later with `lookup_done`.
//!
//! Reads and non-SCIM paths pass at the headers (nothing buffered; only Groups responses are read,
//! to learn names). A SCIM write is held, its body buffered by the host up to the policy's limit and
//! read once at the end of the stream (the body event, or trailers), then judged; a bodyless write
//! (DELETE) is judged at the headers.
//!
//! Posture: whatever the session cannot read (no body when one was announced, a host failure it
//! depends on) blocks the write with a 503 rather than letting it through unjudged.

use super::access::{self, Access};
use super::completion::{self, metadata_actor};
use super::fleet::{self, Mark};
use super::host::{Failed, Host};
use super::names::{self, Lookup, MAX_LOOKUPS};
use super::outputs::{count_verdict, fitted, outbound, tags, Outputs};
use super::{detections, ops, Count, Engine, Evaluation, Facts, Plan, Target};
use crate::audit::compact::compact;
use crate::audit::{Completion, RequestFacts};
use crate::policy::Decision;
use crate::scim::response::{created_id, group_names};
use crate::scim::{Headers, Normalized, RequestView, ScimError};

/// Headers of these names are scimguard's: a client's are removed before anyone reads them.
pub const OURS: &str = "x-scim-";
/// A Groups response body larger than this is not copied (learning is opportunistic; lookups remain).
const MAX_LEARN_BYTES: usize = 256 * 1024;

/// What the host does next with the request.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Let the request go on (a held one is resumed).
    Continue,
    /// Let it go on with these request headers set; `hits`: how many a fleet rate-limit step
    /// counts it for, when more than one.
    Forward {
        headers: Vec<(&'static str, String)>,
        hits: Option<u64>,
    },
    /// Hold the request (its body is being buffered).
    Pause,
    /// The body is complete: read these many buffered bytes and pass them to `on_body`.
    ReadBody(usize),
    /// Answer in the upstream's place: the request never reaches it.
    Reply {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Send these lookups and hold the request; pass each answer to `lookup_done`.
    Lookup(Vec<Lookup>),
}

/// The request head as the host has it (client `x-scim-*` headers already removed: `strip_ours`).
#[derive(Debug, Clone)]
pub struct Head {
    pub method: String,
    pub path: String,
    pub headers: Headers,
}

/// One request's lifecycle.
#[derive(Debug, Default)]
pub struct Session {
    phase: Phase,
    /// The request as the engine sees it (SCIM writes only).
    request: Option<Request>,
    verdict: Option<Verdict>,
    /// Group names may be learned from this response (Groups endpoints only).
    learning: Option<Learning>,
    /// An application access to record at the end (access auditing).
    access: Option<Access>,
    /// The request headers were seen (an earlier filter may answer before they are).
    seen_headers: bool,
}

#[derive(Debug, Default)]
enum Phase {
    /// Not (yet) a SCIM write under judgement.
    #[default]
    Passing,
    /// A SCIM write whose body the host is buffering; `seen`: bytes so far.
    Buffering { max_body_bytes: usize, seen: usize },
    /// Held until every group-name lookup has answered.
    LookingUp(Box<Lookups>),
    /// The verdict has been given.
    Decided,
}

#[derive(Debug)]
struct Request {
    head: Head,
    /// The clock when the headers arrived: the record's `time` and the start of its duration.
    started_ns: Option<u64>,
    /// The actor a metadata path named (`filter.actor_metadata`, e.g. a JWT claim).
    actor: Option<String>,
    /// Endpoint and method as the headers phase resolved them (writes under judgement only).
    target: Option<Target>,
}

#[derive(Debug)]
struct Lookups {
    /// Ids whose answers are still out.
    pending: Vec<String>,
    normalized: Normalized,
    facts: Facts,
    now_secs: u64,
}

#[derive(Debug)]
struct Verdict {
    evaluation: Evaluation,
    facts: RequestFacts,
    /// Answered with a local reply (the upstream never saw the request).
    blocked: bool,
    location: Option<String>,
    audited: bool,
    /// Marked for the fleet's rate-limit service.
    fleet: Option<Mark>,
    /// The status the client gets, when already seen (our reply, or response headers read).
    status: Option<u16>,
    /// Groups this write may rename (`names::renamed`): their learned names are forgotten once
    /// the upstream applied it.
    renamed: Vec<String>,
}

#[derive(Debug, Default)]
struct Learning {
    /// The response body so far (`None` until a 2xx response starts, or after it grew too large).
    copy: Option<Vec<u8>>,
    /// The names in it have been stored.
    done: bool,
}

/// Splits client-sent `x-scim-*` headers off: the headers the engine reads, and the names the host
/// must remove from the request (each once).
pub fn strip_ours(pairs: Vec<(String, String)>) -> (Headers, Vec<String>) {
    let mut removed: Vec<String> = Vec::new();
    let mut kept = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        if !name.starts_with(OURS) {
            kept.push((name, value));
        } else if !removed.contains(&name) {
            removed.push(name);
        }
    }
    (Headers::from_pairs(kept), removed)
}

impl Session {
    pub fn new() -> Session {
        Session::default()
    }

    /// The request headers: pass, decide now, or hold for the body.
    pub fn on_request_headers(
        &mut self,
        engine: &Engine,
        host: &mut dyn Host,
        head: Head,
        end_of_stream: bool,
    ) -> Step {
        self.seen_headers = true;
        let policy = engine.policy();
        let s = &policy.settings;
        if let Some(answer) = ops::handle(policy, host, &head.method, &head.path) {
            if answer.audit {
                let mut a = access::operator(policy, &head.method, &head.path, &head.headers);
                a.started_ns = host.now_ns().ok();
                self.access = Some(a);
            }
            return Step::Reply {
                status: answer.status,
                headers: vec![("content-type", "application/json".to_string())],
                body: answer.body,
            };
        }
        let plan = engine.plan(&head.method, &head.path, &head.headers);
        self.learning = names::teaches_names(&head.path, &s.base_paths, &s.resource_types)
            .then(Learning::default);
        match plan {
            Plan::Pass => {
                host.count(Count::Passthrough, 1);
                self.pass(engine, host, &head)
            }
            Plan::Decided(e) => {
                let actor = write_actor(engine, host);
                // Decided from the headers alone, where the engine knew only the actor header: the
                // metadata actor (which the engine prefers when it has one) takes its place.
                let mut e = *e;
                if actor.is_some() {
                    e.actor.clone_from(&actor);
                }
                self.request = Some(Request {
                    head,
                    started_ns: host.now_ns().ok(),
                    actor,
                    target: None,
                });
                self.apply(engine, host, e)
            }
            Plan::Inspect {
                max_body_bytes,
                target,
            } => {
                let actor = write_actor(engine, host);
                self.request = Some(Request {
                    head,
                    started_ns: host.now_ns().ok(),
                    actor,
                    target: Some(target),
                });
                if end_of_stream {
                    return self.on_body(engine, host, Ok(None));
                }
                self.phase = Phase::Buffering {
                    max_body_bytes,
                    seen: 0,
                };
                Step::Pause
            }
        }
    }

    /// The host buffered `size` bytes of the request body so far.
    pub fn on_request_body(
        &mut self,
        engine: &Engine,
        host: &mut dyn Host,
        size: usize,
        end_of_stream: bool,
    ) -> Step {
        let Phase::Buffering {
            max_body_bytes,
            seen,
        } = &mut self.phase
        else {
            return self.hold_or_continue();
        };
        *seen = size;
        let max = *max_body_bytes;
        if size > max {
            let error = ScimError::too_large(format!("the body is larger than {max} bytes"));
            return self.unreadable(engine, host, error);
        }
        if end_of_stream {
            return Step::ReadBody(size);
        }
        Step::Pause
    }

    /// Request trailers: with them (HTTP/2), the body event never saw the end of the stream.
    pub fn on_request_trailers(&mut self) -> Step {
        match self.phase {
            Phase::Buffering { seen, .. } => Step::ReadBody(seen),
            _ => self.hold_or_continue(),
        }
    }

    /// The complete body (`None`: there is none), or the host's failure to read it.
    pub fn on_body(
        &mut self,
        engine: &Engine,
        host: &mut dyn Host,
        body: Result<Option<&[u8]>, Failed>,
    ) -> Step {
        let Some((request, target)) = self
            .request
            .as_ref()
            .and_then(|r| Some((r, r.target.as_ref()?)))
        else {
            return Step::Continue;
        };
        let Ok(body) = body else {
            let error = ScimError::new(503, None, "the gateway could not read the request");
            let mut e = engine.unreadable(error, &request.head.headers, &request.facts());
            e.decision = Decision::Block;
            return self.apply(engine, host, e);
        };
        let view = RequestView {
            method: &request.head.method,
            path: &request.head.path,
            headers: &request.head.headers,
            body,
        };
        match engine.normalize(&view, target) {
            Ok(normalized) => self.judge(engine, host, normalized),
            Err(error) => self.unreadable(engine, host, error),
        }
    }

    /// A lookup answered: the displayName body of a 200 (`None`: failed, timed out, not sent, or
    /// larger than `MAX_ANSWER_BYTES`). The step to apply once the last one is in.
    pub fn lookup_done(
        &mut self,
        engine: &Engine,
        host: &mut dyn Host,
        id: &str,
        answer: Option<&[u8]>,
    ) -> Option<Step> {
        let Phase::LookingUp(lookups) = &mut self.phase else {
            return None;
        };
        let i = lookups.pending.iter().position(|p| p == id)?;
        let id = lookups.pending.swap_remove(i);
        match answer.and_then(|body| names::answer(&id, body)) {
            Some(name) => {
                names::remember(host, &id, &name, lookups.now_secs);
                lookups.facts.group_names.insert(id, name);
            }
            None => host.count(Count::GroupLookupFailures, 1),
        }
        if !lookups.pending.is_empty() {
            return None;
        }
        let Phase::LookingUp(lookups) = std::mem::replace(&mut self.phase, Phase::Decided) else {
            return None;
        };
        let headers = &self.request.as_ref()?.head.headers;
        // A failed lookup leaves the name unknown: `on_unknown_group` applies, the record says so.
        let e = engine.judge(lookups.normalized, headers, &lookups.facts);
        Some(self.apply(engine, host, e))
    }

    /// Whether `on_response_headers` needs the response headers (else it gets none: a host call
    /// saved on reads and ordinary writes).
    pub fn wants_response_headers(&self) -> bool {
        let Some(v) = &self.verdict else {
            return self.learning.is_some();
        };
        !v.blocked
            && (self.learning.is_some()
                || v.fleet.is_some()
                || self.creates()
                || !v.renamed.is_empty())
    }

    /// The response headers (empty unless `wants_response_headers`): the headers to set on the
    /// client's response.
    pub fn on_response_headers(
        &mut self,
        engine: &Engine,
        host: &mut dyn Host,
        response: &[(String, String)],
        end_of_stream: bool,
    ) -> Vec<(&'static str, String)> {
        let creates = self.creates();
        let Some(v) = self.verdict.as_mut() else {
            self.start_learning(host, response, end_of_stream);
            return Vec::new();
        };
        // Our own local reply comes back this way: it already carries its headers.
        if v.blocked {
            return Vec::new();
        }
        let forwarded = v.evaluation.decision;
        if let (Some(mark), true) = (&v.fleet, fleet::refused(response)) {
            host.count(Count::FleetBlocks, 1);
            fleet::record_block(&mut v.evaluation, mark);
        }
        if let Some(status) = header(response, ":status").and_then(|s| s.parse().ok()) {
            v.status = Some(status);
        }
        // The route copies the request's tags (`Offload::response_tags`) unless the decision
        // changed after the request went upstream.
        let routed = engine.offload().response_tags && v.evaluation.decision == forwarded;
        let tags = match routed {
            true => Vec::new(),
            false => vec![
                ("x-scim-audit-id", v.facts.audit_id.clone()),
                (
                    "x-scim-decision",
                    v.evaluation.decision.as_str().to_string(),
                ),
            ],
        };
        let renamed = std::mem::take(&mut v.renamed);
        if creates {
            v.location = header(response, "location").map(str::to_string);
        }
        if success(response) {
            // The upstream applied a write that may have renamed these groups: forget their names,
            // so that the next request needing one looks it up again.
            for id in renamed {
                let _ = names::forget(host, &id);
            }
        }
        self.start_learning(host, response, end_of_stream);
        tags
    }

    /// Whether to read a response body chunk of `size` bytes (and pass it to `on_response_body`).
    pub fn wants_response_body(&mut self, size: usize) -> bool {
        let Some(l) = self.learning.as_mut().filter(|l| !l.done) else {
            return false;
        };
        let Some(copy) = &l.copy else { return false };
        if copy.len().saturating_add(size) > MAX_LEARN_BYTES {
            self.learning = None;
            return false;
        }
        true
    }

    /// A response body chunk (`None`: the host failed to read it; learning stops).
    pub fn on_response_body(&mut self, host: &mut dyn Host, chunk: Option<&[u8]>, end: bool) {
        let Some(copy) = self.learning.as_mut().and_then(|l| l.copy.as_mut()) else {
            return;
        };
        match chunk {
            Some(c) => copy.extend_from_slice(c),
            None => {
                self.learning = None;
                return;
            }
        }
        if end {
            self.learn(host);
        }
    }

    /// Response trailers: the body event never saw the end of the stream.
    pub fn on_response_trailers(&mut self, host: &mut dyn Host) {
        self.learn(host);
    }

    /// Whether the stream ends without its request headers having been seen (an earlier filter
    /// answered) while access auditing may want them: the host then passes them to `late`.
    pub fn wants_late_headers(&self, engine: &Engine) -> bool {
        !self.seen_headers && self.access.is_none() && engine.policy().settings.access.enabled
    }

    /// The request headers of a stream whose headers phase never ran.
    pub fn late(&mut self, engine: &Engine, headers: Headers) {
        let method = headers.get(":method").unwrap_or_default().to_string();
        let path = headers.get(":path").unwrap_or_default().to_string();
        self.access = access::begin(engine.policy(), &method, &path, &headers);
    }

    /// The stream is complete: the audit outputs.
    pub fn on_log(&mut self, engine: &Engine, host: &mut dyn Host) -> Outputs {
        let mut out = self.audit(engine, host).unwrap_or_default();
        if let Some(a) = self.access.take() {
            if let Some((logged, whole)) = access::finish(engine, host, a) {
                // OCSF has no class for these in our mapping yet: they ship in the project's format.
                if engine.policy().settings.audit.collector.is_some() {
                    out.ship.push(whole.unwrap_or_else(|| logged.clone()));
                }
                out.record = Some((logged, Count::AccessRecords));
            }
        }
        out
    }

    /// The evaluation behind the verdict, once given.
    pub fn evaluation(&self) -> Option<&Evaluation> {
        self.verdict.as_ref().map(|v| &v.evaluation)
    }

    /// A passing request: access auditing may want it marked.
    fn pass(&mut self, engine: &Engine, host: &mut dyn Host, head: &Head) -> Step {
        let policy = engine.policy();
        let Some(mut a) = access::begin(policy, &head.method, &head.path, &head.headers) else {
            return Step::Continue;
        };
        a.started_ns = host.now_ns().ok();
        let marked = access::mark(policy, host, &mut a);
        let audit_id = a.facts.audit_id.clone();
        self.access = Some(a);
        if !marked {
            return Step::Continue;
        }
        Step::Forward {
            headers: vec![("x-scim-audit-id", audit_id)],
            hits: None,
        }
    }

    /// The request must not move on: a lookup is out, or we answered it ourselves.
    fn hold_or_continue(&self) -> Step {
        let held = matches!(self.phase, Phase::LookingUp(_))
            || self.verdict.as_ref().is_some_and(|v| v.blocked);
        if held {
            Step::Pause
        } else {
            Step::Continue
        }
    }

    fn unreadable(&mut self, engine: &Engine, host: &mut dyn Host, error: ScimError) -> Step {
        let Some(request) = &self.request else {
            return Step::Continue;
        };
        let e = engine.unreadable(error, &request.head.headers, &request.facts());
        self.apply(engine, host, e)
    }

    /// Fills in the group names a rule may need (shared state, then lookups), then judges.
    fn judge(&mut self, engine: &Engine, host: &mut dyn Host, normalized: Normalized) -> Step {
        let Some(request) = &self.request else {
            return Step::Continue;
        };
        let needed = engine.names_needed(&normalized, &Facts::default());
        let mut facts = request.facts();
        let settings = &engine.policy().settings.filter;
        // Without a clock no name's age can be known: lookups are skipped too (the names stay
        // unknown and the fail-closed `on_unknown_group` applies).
        let now_secs = match needed.is_empty() {
            true => None,
            false => request.now_secs(host),
        };
        if let Some(now_secs) = now_secs {
            for id in needed {
                if let Some(name) = names::cached(host, &id, now_secs, settings.group_name_ttl_secs)
                {
                    facts.group_names.insert(id, name);
                }
            }
        }
        if let (Some(cluster), Some(now_secs)) = (&settings.lookup_cluster, now_secs) {
            let authorization = request.head.headers.get("authorization");
            let lookups: Vec<Lookup> = engine
                .names_needed(&normalized, &facts)
                .iter()
                .take(MAX_LOOKUPS)
                .map(|id| names::lookup(settings, cluster, id, authorization))
                .collect();
            if !lookups.is_empty() {
                host.count(Count::GroupLookups, lookups.len() as u64);
                self.phase = Phase::LookingUp(Box::new(Lookups {
                    pending: lookups.iter().map(|l| l.id.clone()).collect(),
                    normalized,
                    facts,
                    now_secs,
                }));
                return Step::Lookup(lookups);
            }
        }
        // Names still unknown get the policy's `on_unknown_group`; the evaluation lists them.
        let e = engine.judge(normalized, &request.head.headers, &facts);
        self.apply(engine, host, e)
    }

    /// Gives the verdict: detections first, then a local reply for a block, tags otherwise.
    fn apply(&mut self, engine: &Engine, host: &mut dyn Host, mut e: Evaluation) -> Step {
        self.phase = Phase::Decided;
        let policy = engine.policy();
        let now_secs = self.request.as_ref().and_then(|r| r.now_secs(host));
        if let Some(now) = now_secs {
            detections::apply(policy, host, &mut e, now);
        }
        let fleet = fleet::mark(policy, &e);
        // Judged: from here on only the audit outputs read it, and it is held until the stream ends.
        if let Some(n) = e.normalized.as_mut() {
            compact(n);
        }
        count_verdict(host, &e);
        let audit_id = host.audit_id();
        let facts = match &self.request {
            Some(r) => {
                RequestFacts::from_headers(audit_id, &r.head.method, &r.head.path, &r.head.headers)
            }
            None => RequestFacts {
                audit_id,
                ..RequestFacts::default()
            },
        };
        let mut headers = tags(&e, &facts.audit_id);
        let reply = e.reply();
        // Found once: both response callbacks need it (a blocked write gets no upstream response).
        let renamed = match reply {
            Some(_) => Vec::new(),
            None => names::renamed(&e),
        };
        let hits = fleet.as_ref().map(|m| {
            host.count(Count::FleetMarked, 1);
            headers.push((fleet::MARKER, m.detection.descriptor.clone()));
            m.hits
        });
        self.verdict = Some(Verdict {
            evaluation: e,
            facts,
            blocked: reply.is_some(),
            location: None,
            audited: false,
            fleet,
            status: reply.as_ref().map(|r| r.status),
            renamed,
        });
        match reply {
            Some(reply) => {
                headers.insert(0, ("content-type", "application/scim+json".to_string()));
                Step::Reply {
                    status: reply.status,
                    headers,
                    body: reply.body,
                }
            }
            None => Step::Forward {
                headers,
                hits: hits.filter(|h| *h > 1),
            },
        }
    }

    fn creates(&self) -> bool {
        self.verdict.is_some()
            && self
                .request
                .as_ref()
                .is_some_and(|r| r.head.method.eq_ignore_ascii_case("POST"))
    }

    /// A successful Groups response starts (or, without a body, ends) the copy names are learned from.
    fn start_learning(&mut self, host: &mut dyn Host, response: &[(String, String)], end: bool) {
        if self.learning.is_none() {
            return;
        }
        if !success(response) {
            self.learning = None;
            return;
        }
        if end {
            self.learn(host);
        } else if let Some(l) = self.learning.as_mut() {
            l.copy = Some(Vec::new());
        }
    }

    /// The whole Groups response is in: remember every name it carries. The copy stays (a create's
    /// id may be in it).
    fn learn(&mut self, host: &mut dyn Host) {
        let Some(l) = self.learning.as_mut().filter(|l| !l.done) else {
            return;
        };
        l.done = true;
        let learned = l.copy.as_deref().map(group_names).unwrap_or_default();
        if learned.is_empty() {
            return;
        }
        let Ok(now_ns) = host.now_ns() else { return };
        for (id, name) in &learned {
            names::remember(host, id, name, now_ns / 1_000_000_000);
        }
    }

    /// The write's audit outputs, once.
    fn audit(&mut self, engine: &Engine, host: &mut dyn Host) -> Option<Outputs> {
        let v = self.verdict.as_mut().filter(|v| !v.audited)?;
        v.audited = true;
        let s = &engine.policy().settings;
        let in_log = engine.offload().log_fields;
        // A collector, a webhook or the host's own log needs the whole record, host fields too.
        let whole =
            !in_log || s.audit.collector.is_some() || s.notify.is_some() || s.filter.audit_to_log;
        let started_ns = self.request.as_ref().and_then(|r| r.started_ns);
        let duration_ms = completion::clock(host, &mut v.facts, started_ns)
            .ok()
            .flatten();
        if whole {
            let _ = completion::source(host, &mut v.facts);
        }
        let status = match v.status {
            Some(s) => Some(s),
            None if whole => completion::status(host).ok().flatten(),
            None => None,
        };
        let created = status.is_some_and(|s| (200..300).contains(&s))
            && v.facts.method.eq_ignore_ascii_case("POST");
        let body = self.learning.as_ref().and_then(|l| l.copy.as_deref());
        let done = Completion {
            status,
            created_id: created
                .then(|| created_id(v.location.as_deref(), body))
                .flatten(),
            duration_ms,
        };
        // The access log's copy, and the whole record when it differs and something needs it.
        let (logged, whole) = match in_log {
            true => (
                fitted(host, v.evaluation.audit_line_in_log(&v.facts, &done)),
                whole.then(|| fitted(host, v.evaluation.audit_line(&v.facts, &done))),
            ),
            false => (fitted(host, v.evaluation.audit_line(&v.facts, &done)), None),
        };
        let record = whole.as_deref().unwrap_or(&logged);
        let traceparent = self
            .request
            .as_ref()
            .and_then(|r| r.head.headers.get("traceparent"));
        let mut out = outbound(
            engine,
            host,
            (&v.evaluation, &v.facts),
            &done,
            record,
            traceparent,
        );
        out.log = (s.filter.audit_to_log && !record.is_empty()).then(|| record.to_string());
        // An empty record was dropped (counted by `fitted`); the other outputs still go.
        out.record = (!logged.is_empty()).then_some((logged, Count::AuditRecords));
        Some(out)
    }
}

impl Request {
    /// The host facts every judgement of this request starts from.
    fn facts(&self) -> Facts {
        Facts {
            actor: self.actor.clone(),
            ..Facts::default()
        }
    }

    /// The request's time in epoch seconds: its start, or the clock when the start is unknown.
    fn now_secs(&self, host: &mut dyn Host) -> Option<u64> {
        let ns = match self.started_ns {
            Some(ns) => ns,
            None => host.now_ns().ok()?,
        };
        Some(ns / 1_000_000_000)
    }
}

/// The actor `filter.actor_metadata` names, when configured (one property read).
fn write_actor(engine: &Engine, host: &mut dyn Host) -> Option<String> {
    let path = engine.policy().settings.filter.actor_metadata.as_deref()?;
    metadata_actor(host, path)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn success(response: &[(String, String)]) -> bool {
    header(response, ":status")
        .and_then(|s| s.parse::<u16>().ok())
        .is_some_and(|s| (200..300).contains(&s))
}
