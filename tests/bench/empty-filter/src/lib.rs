//! bench-empty-filter: the floor of any body-inspecting proxy-wasm filter, for `make bench`.
//!
//! Without configuration it does what scimguard must do at minimum for a write, and nothing else:
//! with `allow_on_headers_stop_iteration: true`, it holds the request headers when a body follows
//! (`Pause`), lets Envoy buffer the body until `end_of_stream` (`Pause`), then continues. It makes
//! no host call: it never reads a header or the body. What remains is Envoy's cost of a wasm
//! filter: the VM crossings for the callbacks (context create, headers, body, response, log, done)
//! and the buffering.
//!
//! With the plugin configuration `mimic-scimguard` (bench variant `wasm-hostcalls`, a diagnostic),
//! it also makes the host calls scimguard makes for a judged write, with the same sizes, and
//! computes nothing: all request headers and the clock once, the body once, two request tags, and in
//! `on_log` the clock and the audit record into filter state (7 calls, with the shipped envoy.yaml's
//! offload switches: the route adds the response tags, the audit log writes the client address and
//! status; see src/filter/stream.rs and src/engine/offload.rs; scimguard publishes its counters on a
//! timer).
//! A read gets the headers (1).
//! The difference to the floor is the price of the host calls; the difference to scimguard is the
//! guest's own work (parsing, judging, building the audit record).

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { mimic: None }) });
}}

/// What a mimicking stream needs: an audit record of a typical size.
#[derive(Clone)]
struct Mimic {
    record: Vec<u8>,
}

struct Root {
    mimic: Option<Mimic>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).ok().flatten();
        if config.as_deref() == Some(b"mimic-scimguard".as_slice()) {
            // An audit record of an Entra PATCH is about 800 bytes (tests/bench/engine.rs prints its size).
            self.mimic = Some(Mimic { record: vec![b'x'; 810] });
        }
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream { mimic: self.mimic.clone(), judged: false }))
    }
}

struct Stream {
    mimic: Option<Mimic>,
    judged: bool,
}

const AUDIT_ID: &str = "0b5c6f7e-4a4e-4c1b-9d52-2f0a8d7e6c11";

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        if self.mimic.is_some() {
            let _ = hostcalls::get_map(MapType::HttpRequestHeaders);
            if !end_of_stream {
                let _ = hostcalls::get_current_time();
            }
        }
        if end_of_stream {
            Action::Continue
        } else {
            Action::Pause
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        if self.mimic.is_some() {
            self.judged = true;
            let _ = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size);
            let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, "x-scim-decision", Some("allow"));
            let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, "x-scim-audit-id", Some(AUDIT_ID));
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let Some(m) = self.mimic.as_ref().filter(|_| self.judged) else { return };
        let _ = hostcalls::get_current_time();
        let _ = hostcalls::set_property(vec!["scimguard"], Some(&m.record));
    }
}
