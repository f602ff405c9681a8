//! The host facts of an audit record: what the request headers say (no host call), and what only the
//! host knows at the end of the stream (start time, client address, final status).
//!
//! The record itself is the engine's (`Evaluation::audit_record`); this file only gathers its inputs.

use std::net::{IpAddr, SocketAddr};

use super::host::{self, HostResult};
use crate::audit::RequestFacts;
use crate::scim::Headers;

/// Facts the request headers give: Envoy's `x-request-id` (set by the connection manager before any
/// filter runs), the W3C trace id, the user agent.
pub fn from_headers(audit_id: String, method: &str, path: &str, headers: &Headers) -> RequestFacts {
    RequestFacts {
        time_ms: 0,
        audit_id,
        request_id: headers.get("x-request-id").map(str::to_string),
        trace_id: headers.get("traceparent").and_then(trace_id),
        source_ip: None,
        user_agent: headers.get("user-agent").map(str::to_string),
        method: method.to_string(),
        path: path.to_string(),
    }
}

/// What the host knows at the end: `time_ms` and `source_ip` are filled in, the duration (ms) and the
/// status the client got are returned. Three property reads and one clock read.
pub fn from_host(facts: &mut RequestFacts) -> HostResult<(Option<u64>, Option<u16>)> {
    let start_ns = host::property_i64(&["request", "time"])?.and_then(|t| u64::try_from(t).ok());
    let now_ns = host::now_ns()?;
    facts.time_ms = start_ns.unwrap_or(now_ns) / 1_000_000;
    let duration_ms = start_ns.map(|s| now_ns.saturating_sub(s) / 1_000_000);
    facts.source_ip = host::property_string(&["source", "address"])?.as_deref().and_then(ip_of);
    let status = host::property_i64(&["response", "code"])?.and_then(|c| u16::try_from(c).ok()).filter(|c| *c > 0);
    Ok((duration_ms, status))
}

/// The trace id of a `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`), when well-formed.
fn trace_id(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.trim().split('-');
    let (_version, trace) = (parts.next()?, parts.next()?);
    let hex = trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (hex && trace.bytes().any(|b| b != b'0')).then(|| trace.to_string())
}

/// The IP of an Envoy address (`1.2.3.4:5678`, `[::1]:5678`, or a bare IP), port stripped IPv6-safely.
fn ip_of(address: &str) -> Option<String> {
    if let Ok(sock) = address.parse::<SocketAddr>() {
        return Some(sock.ip().to_string());
    }
    address.parse::<IpAddr>().ok().map(|ip| ip.to_string())
}
