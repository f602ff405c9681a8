//! One HTTP stream: Envoy's callbacks → the engine's `Session` → host calls. Nothing here decides:
//! each callback reads what the host has, feeds the session, and applies the `Step` it returns.
//!
//! Host calls per request (each a host↔VM crossing, the dominant cost; counters cost none here,
//! they are published on the root's tick):
//! - read or non-SCIM path (not Groups, no access auditing): 1 — `get_map` of the request headers;
//!   +1 `remove_map_value` per distinct client-sent `x-scim-*` header. (With the shipped
//!   `envoy.yaml`, non-SCIM routes disable the filter: 0.)
//! - SCIM PATCH of a User, allowed, body in one chunk: request headers `get_map`,
//!   `get_current_time`; body `get_buffer`, 2 `set_map_value` (tags; 4 for a tag decision);
//!   response headers 2 `set_map_value`; `on_log` 2 `get_property` (source.address, response.code),
//!   `get_current_time`, `set_property`.
//! - a Group write adds one `get_shared_data` per id whose name a rule needs and `get_map` of the
//!   response headers; a lookup adds per id `dispatch_http_call`, `get_map` + `get_buffer` of the
//!   answer, `set_shared_data`, and one `resume_http_request`.
//! - `filter.actor_metadata` adds one `get_property` per SCIM write; detections and access auditing
//!   see `engine::detections` and `engine::access`.
//!
//! Not every call costs the same (callgrind over Envoy 1.40 + V8): a call that returns data
//! (`get_map` ≈ 23k instructions for 9 headers, `get_property` ≈ 12k, `get_buffer` ≈ 10k) makes Envoy
//! call back into the VM to allocate the copy; `set_map_value` ≈ 3k; `get_current_time` ≈ 1k.
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
                    let set = host::set_header(MapType::HttpRequestHeaders, name, value);
                    if let Err(e) = set {
                        shared.host_error(e);
                    }
                }
                if let Some(hits) = hits {
                    let value = hits.min(u64::from(u32::MAX)).to_string();
                    if let Err(e) = host::set_envoy_filter_state(HITS_KEY, &value) {
                        shared.host_error(e);
                    }
                }
                go_on(shared, resume)
            }
            Step::Pause => Action::Pause,
            Step::ReadBody(size) => {
                let body = match size {
                    0 => Ok(None),
                    _ => host::buffer(BufferType::HttpRequestBody, size)
                        .map(Some)
                        .map_err(|e| shared.host_error(e)),
                };
                let body = body.as_ref().map(Option::as_deref).map_err(|()| Failed);
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
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                if let Err(e) = host::send_reply(status, &headers, body.as_bytes()) {
                    shared.host_error(e);
                    // The upstream must never see a blocked request: without a reply, end the stream.
                    host::reset_request();
                }
                Action::Pause
            }
            Step::Lookup(lookups) => {
                for lookup in lookups {
                    let headers: Vec<(&str, &str)> = lookup
                        .headers
                        .iter()
                        .map(|(k, v)| (*k, v.as_str()))
                        .collect();
                    let timeout = Duration::from_millis(lookup.timeout_ms);
                    match host::dispatch(&lookup.cluster, &headers, None, timeout) {
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
    let headers = host::headers(MapType::HttpCallResponseHeaders)
        .map_err(|e| shared.host_error(e))
        .ok()?;
    let ok = headers.iter().any(|(k, v)| k == ":status" && v == "200");
    if !ok || body_size > MAX_ANSWER_BYTES {
        return None;
    }
    host::buffer(BufferType::HttpCallResponseBody, body_size)
        .map_err(|e| shared.host_error(e))
        .ok()
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
            if let Err(e) = host::remove_header(MapType::HttpRequestHeaders, name) {
                self.shared.host_error(e);
            }
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
            true => host::headers(MapType::HttpResponseHeaders).unwrap_or_else(|e| {
                shared.host_error(e);
                Vec::new()
            }),
            false => Vec::new(),
        };
        let set = self.session.on_response_headers(
            &shared.engine,
            &mut Port(&shared),
            &response,
            end_of_stream,
        );
        for (name, value) in &set {
            if let Err(e) = host::set_header(MapType::HttpResponseHeaders, name, value) {
                shared.host_error(e);
            }
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.session.wants_response_body(body_size) {
            let shared = Rc::clone(&self.shared);
            // Returning Continue each time, the buffer holds just this chunk: copy it as it passes.
            let chunk = host::buffer(BufferType::HttpResponseBody, body_size)
                .map_err(|e| shared.host_error(e))
                .ok();
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
            match host::headers(MapType::HttpRequestHeaders) {
                Ok(pairs) => self
                    .session
                    .late(&shared.engine, Headers::from_pairs(pairs)),
                Err(e) => shared.host_error(e),
            }
        }
        let out = self.session.on_log(&shared.engine, &mut Port(&shared));
        Stream::on_log_outputs(&shared, out);
    }
}
