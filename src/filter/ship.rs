//! Sending what the engine's `Shipping` queues hold, from the root context: audit lines to the
//! collector, signed notifications to the webhook receiver.
//!
//! Why the root context: a call sent from an HTTP context is cancelled with its stream, and nothing
//! here may delay a request. HTTP contexts only push into the VM's queues (no host call); the root's
//! tick sends what is due with `dispatch_http_call` and its `on_http_call_response` settles it. Each
//! worker VM has its own queues (there is no cross-VM queue in proxy-wasm without host round
//! trips); the counters aggregate per process.
//!
//! Host calls: a tick with nothing queued makes none; otherwise `get_current_time`, and per batch
//! sent `dispatch_http_call`; per answer `get_map` of the response headers.

use std::time::Duration;

use proxy_wasm::types::MapType;

use super::host;
use super::metrics::Gauge;
use super::shared::{Port, Shared};
use crate::engine::{Moved, Sink};

/// How often the root context looks at its queues (a partial batch waits for `flush_interval_ms`,
/// measured in ticks).
pub const TICK: Duration = Duration::from_millis(100);

/// Queues an audit line for the collector (no host call).
pub fn record(shared: &Shared, line: String) {
    let moved = shared.shipping.borrow_mut().record(&mut Port(shared), line);
    shared.metrics.gauge(Gauge::AuditPending, moved);
}

/// Queues a notification (no host call).
pub fn notify(shared: &Shared, id: String, body: String) {
    let moved = shared
        .shipping
        .borrow_mut()
        .notify(&mut Port(shared), id, body);
    shared.metrics.gauge(Gauge::NotifyPending, moved);
}

/// The root context's tick: send what is due.
pub fn tick(shared: &Shared, calls: &mut Vec<(u32, Sink)>) {
    if shared.shipping.borrow().is_idle() {
        return;
    }
    let now_ms = match host::now_ns() {
        Ok(ns) => ns / 1_000_000,
        Err(e) => return shared.host_error(e),
    };
    let sends = shared.shipping.borrow_mut().due(&mut Port(shared), now_ms);
    for send in sends {
        let timeout = Duration::from_millis(send.timeout_ms);
        match host::dispatch(
            &send.cluster,
            &send.headers,
            Some(send.body.as_bytes()),
            timeout,
        ) {
            Ok(token) => calls.push((token, send.sink)),
            Err(e) => {
                // E.g. an unknown cluster (BadArgument): a failed attempt like any other.
                shared.host_error(e);
                settle(shared, send.sink, false, now_ms);
            }
        }
    }
}

/// The root context's `on_http_call_response` for a call of ours (no `:status`: a timeout, reset or
/// refused connection, is a failure).
pub fn answer(shared: &Shared, calls: &mut Vec<(u32, Sink)>, token: u32) {
    let Some(i) = calls.iter().position(|(t, _)| *t == token) else {
        return;
    };
    let (_, sink) = calls.swap_remove(i);
    let status = shared
        .ok(host::headers(MapType::HttpCallResponseHeaders))
        .and_then(|h| h.into_iter().find(|(k, _)| k == ":status"))
        .and_then(|(_, v)| v.parse::<u16>().ok());
    let ok = status.is_some_and(|s| (200..300).contains(&s));
    if !ok {
        let what = match sink {
            Sink::Collector => "audit collector",
            Sink::Webhook => "webhook receiver",
        };
        let status = status.map_or("nothing".to_string(), |s| s.to_string());
        host::log(
            proxy_wasm::types::LogLevel::Warn,
            &format!("scimguard: {what} answered {status}"),
        );
    }
    let now_ms = host::now_ns().map(|ns| ns / 1_000_000).unwrap_or(0);
    settle(shared, sink, ok, now_ms);
}

fn settle(shared: &Shared, sink: Sink, ok: bool, now_ms: u64) {
    let moved: Moved = shared
        .shipping
        .borrow_mut()
        .settled(&mut Port(shared), sink, ok, now_ms);
    let gauge = match sink {
        Sink::Collector => Gauge::AuditPending,
        Sink::Webhook => Gauge::NotifyPending,
    };
    shared.metrics.gauge(gauge, moved);
}
