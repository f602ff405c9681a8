//! One HTTP stream: Envoy's callbacks → the engine's `Session` → host calls. Nothing here decides:
//! each callback reads what the host has, feeds the session, and applies the `Step` it returns.
//!
//! Host calls per request (each a host↔VM crossing, the dominant cost; counters are published on
//! the root's tick, never per request), counted in Envoy 1.40 by `make bench`:
//! - read or non-SCIM path: 1, `get_map` of the request headers (+1 `remove_map_value` per distinct
//!   client-sent `x-scim-*` name); a route with the filter disabled: 0.
//! - allowed User PATCH under the shipped `envoy.yaml` (`engine::offload`): 7 — `get_map`,
//!   `get_current_time` (the record's start), `get_buffer`, 2 `set_map_value` (the tags; 4 when
//!   tagged), then in `on_log` `get_current_time` and `set_property` (the record). Without the
//!   offload switches, +2 `set_map_value` (response tags) and +2 `get_property` (`source.address`,
//!   `response.code`): 11.
//! - what Group writes, lookups, `filter.actor_metadata`, detections and access auditing add is said
//!   where the engine asks for it (`engine::session`, `names`, `detections`, `access`).
//!
//! Not every call costs the same (callgrind): `get_map` of 9 headers ≈ 23k instructions,
//! `get_property` ≈ 12k, `get_buffer` ≈ 10k (each makes Envoy call back into the VM to allocate the
//! copy), `set_map_value` ≈ 3k, `get_current_time` ≈ 1k.
//!
//! The audit record goes into filter state in `on_log`, once the final status and duration are
//! known: Envoy 1.40 runs filter access loggers (the wasm `on_log`) before the HCM's own, so the
//! access log sees it (envoy PR #35959; before Envoy 1.32 the order was reversed, envoy#30859).
//!
//! Host requirement (Envoy ≥ 1.35): `allow_on_headers_stop_iteration: true`, so that `Pause` from
//! the request-headers callback holds the headers while the body is buffered and judged.

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, LogLevel, MapType};

use super::host;
use super::shared::{Port, Shared};
use super::ship;
use crate::engine::{
    strip_ours, Engine, Failed, Head, Headers, Outputs, Session, Step, MAX_ANSWER_BYTES,
};

/// The filter state key through which the ratelimit filter counts a request more than once.
const HITS_KEY: &str = "envoy.ratelimit.hits_addend";

pub struct Stream {
    shared: Rc<Shared>,
    session: Session,
    /// Lookups out: (call token, group id).
    lookups: Vec<(u32, String)>,
}

/// A stream on a VM without a compiled policy: refused (Envoy does not even start without a
/// policy; this is the belt to its braces).
pub struct Unconfigured;

impl Context for Unconfigured {}

impl HttpContext for Unconfigured {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        refuse_unjudged()
    }
}

impl Stream {
    pub fn new(shared: Rc<Shared>) -> Stream {
        Stream {
            shared,
            session: Session::new(),
            lookups: Vec::new(),
        }
    }

    /// Runs one session event with the engine and the host port, and applies the step it returns.
    fn run(&mut self, event: impl FnOnce(&mut Session, &Engine, &mut Port) -> Step) -> Action {
        let shared = Rc::clone(&self.shared);
        let step = event(&mut self.session, &shared.engine, &mut Port(&shared));
        self.apply(&shared, step, false)
    }

    /// Applies a step. `resume`: the request is held outside a callback that can return
    /// `Continue` (a lookup answered), so letting it go on takes `resume_http_request`.
    fn apply(&mut self, shared: &Shared, step: Step, resume: bool) -> Action {
        match step {
            Step::Continue => go_on(shared, resume),
            Step::Forward { headers, hits } => {
                for (name, value) in &headers {
                    shared.ok(host::set_header(MapType::HttpRequestHeaders, name, value));
                }
                if let Some(hits) = hits {
                    let value = hits.min(u64::from(u32::MAX)).to_string();
                    shared.ok(host::set_envoy_filter_state(HITS_KEY, &value));
                }
                go_on(shared, resume)
            }
            Step::Pause => Action::Pause,
            Step::ReadBody(size) => {
                let body = match size {
                    0 => Some(None),
                    _ => shared
                        .ok(host::buffer(BufferType::HttpRequestBody, size))
                        .map(Some),
                };
                let body = body.as_ref().map(Option::as_deref).ok_or(Failed);
                let next = self
                    .session
                    .on_body(&shared.engine, &mut Port(shared), body);
                self.apply(shared, next, resume)
            }
            Step::Reply {
                status,
                headers,
                body,
            } => {
                if let Err(e) = host::send_reply(status, &headers, body.as_bytes()) {
                    shared.host_error(e);
                    // The upstream must never see a blocked request: without a reply, end the stream.
                    host::reset_request();
                }
                Action::Pause
            }
            Step::Lookup(lookups) => {
                for lookup in lookups {
                    let timeout = Duration::from_millis(lookup.timeout_ms);
                    match host::dispatch(&lookup.cluster, &lookup.headers, None, timeout) {
                        Ok(token) => self.lookups.push((token, lookup.id)),
                        Err(e) => {
                            host::log(
                                LogLevel::Warn,
                                &format!("scimguard: group lookup not sent: {e}"),
                            );
                            let done = self.session.lookup_done(
                                &shared.engine,
                                &mut Port(shared),
                                &lookup.id,
                                None,
                            );
                            if let Some(next) = done {
                                return self.apply(shared, next, resume);
                            }
                        }
                    }
                }
                Action::Pause
            }
        }
    }

    fn on_log_outputs(shared: &Shared, out: Outputs) {
        let settings = &shared.engine.policy().settings.filter;
        if let Some((record, count)) = &out.record {
            match host::set_filter_state(&settings.audit_property, record.as_bytes()) {
                Ok(()) => shared.metrics.count(*count),
                Err(e) => shared.host_error(e),
            }
        }
        if let Some(line) = &out.log {
            host::log(LogLevel::Info, &format!("scimguard audit: {line}"));
        }
        for line in out.ship {
            ship::record(shared, line);
        }
        if let Some((id, body)) = out.notify {
            ship::notify(shared, id, body);
        }
    }
}

/// Lets the request go on; a held one is resumed (or, failing that, reset: never forwarded in a
/// state nobody decided).
fn go_on(shared: &Shared, resume: bool) -> Action {
    if resume {
        if let Err(e) = host::resume_request() {
            shared.host_error(e);
            host::reset_request();
        }
    }
    Action::Continue
}

/// A lookup's answer: the body of a 200 no larger than `MAX_ANSWER_BYTES` (`None` otherwise).
fn lookup_answer(shared: &Shared, body_size: usize) -> Option<Vec<u8>> {
    let headers = shared.ok(host::headers(MapType::HttpCallResponseHeaders))?;
    let ok = headers.iter().any(|(k, v)| k == ":status" && v == "200");
    if !ok || body_size > MAX_ANSWER_BYTES {
        return None;
    }
    shared.ok(host::buffer(BufferType::HttpCallResponseBody, body_size))
}

/// No compiled policy on this VM, or its request headers cannot be read: refuse.
fn refuse_unjudged() -> Action {
    let body = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"503","detail":"scimguard could not judge the request"}"#;
    if host::send_reply(503, &[("content-type", "application/scim+json")], body).is_err() {
        host::reset_request();
    }
    Action::Pause
}

impl Context for Stream {
    fn on_http_call_response(&mut self, token: u32, _: usize, body_size: usize, _: usize) {
        let Some(i) = self.lookups.iter().position(|(t, _)| *t == token) else {
            return;
        };
        let (_, id) = self.lookups.swap_remove(i);
        let shared = Rc::clone(&self.shared);
        let answer = lookup_answer(&shared, body_size);
        let done =
            self.session
                .lookup_done(&shared.engine, &mut Port(&shared), &id, answer.as_deref());
        if let Some(step) = done {
            self.apply(&shared, step, true);
        }
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let pairs = match host::headers(MapType::HttpRequestHeaders) {
            Ok(p) => p,
            Err(e) => {
                self.shared.host_error(e);
                return refuse_unjudged();
            }
        };
        let (headers, ours) = strip_ours(pairs);
        for name in &ours {
            self.shared
                .ok(host::remove_header(MapType::HttpRequestHeaders, name));
        }
        let head = Head {
            method: headers.get(":method").unwrap_or_default().to_string(),
            path: headers.get(":path").unwrap_or_default().to_string(),
            headers,
        };
        self.run(|s, engine, port| s.on_request_headers(engine, port, head, end_of_stream))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.run(|s, engine, port| s.on_request_body(engine, port, body_size, end_of_stream))
    }

    fn on_http_request_trailers(&mut self, _trailers: usize) -> Action {
        self.run(|s, _, _| s.on_request_trailers())
    }

    fn on_http_response_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let shared = Rc::clone(&self.shared);
        // Reads and non-SCIM paths other than Groups end here, without a host call.
        let response = match self.session.wants_response_headers() {
            true => shared
                .ok(host::headers(MapType::HttpResponseHeaders))
                .unwrap_or_default(),
            false => Vec::new(),
        };
        let set = self.session.on_response_headers(
            &shared.engine,
            &mut Port(&shared),
            &response,
            end_of_stream,
        );
        for (name, value) in &set {
            shared.ok(host::set_header(MapType::HttpResponseHeaders, name, value));
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.session.wants_response_body(body_size) {
            let shared = Rc::clone(&self.shared);
            // Returning Continue each time, the buffer holds just this chunk: copy it as it passes.
            let chunk = shared.ok(host::buffer(BufferType::HttpResponseBody, body_size));
            self.session
                .on_response_body(&mut Port(&shared), chunk.as_deref(), end_of_stream);
        }
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _trailers: usize) -> Action {
        self.session.on_response_trailers(&mut Port(&self.shared));
        Action::Continue
    }

    fn on_log(&mut self) {
        let shared = Rc::clone(&self.shared);
        if self.session.wants_late_headers(&shared.engine) {
            if let Some(pairs) = shared.ok(host::headers(MapType::HttpRequestHeaders)) {
                self.session
                    .late(&shared.engine, Headers::from_pairs(pairs));
            }
        }
        let out = self.session.on_log(&shared.engine, &mut Port(&shared));
        Stream::on_log_outputs(&shared, out);
    }
}
