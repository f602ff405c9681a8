//! The host facts of an audit record: what the request headers say (no host call), and what only the
//! host knows at the end of the stream (start time, client address, final status).
//!
//! The record itself is the engine's (`Evaluation::audit_record`); this file only gathers its inputs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::host::{self, HostResult};
use crate::audit::RequestFacts;
use crate::scim::endpoint::printable;
use crate::scim::Headers;

/// Facts the request headers give (`RequestFacts::from_headers`, the core's one reader of them).
pub fn from_headers(audit_id: String, method: &str, path: &str, headers: &Headers) -> RequestFacts {
    RequestFacts::from_headers(audit_id, method, path, headers)
}

/// What the host knows at the end: `time_ms` and `source_ip` are filled in, the duration (ms) and the
/// status the client got are returned. `started_ns` is the clock read when the request headers
/// reached the filter (see `times`).
pub fn from_host(
    facts: &mut RequestFacts,
    started_ns: Option<u64>,
) -> HostResult<(Option<u64>, Option<u16>)> {
    let duration_ms = times(facts, started_ns)?;
    Ok((duration_ms, status()?))
}

/// The clock now, read when the request headers reach the filter: the start of what it audits.
/// `get_current_time` writes 8 bytes in place; the `request.time` property would cost a property
/// lookup and a call back into the VM for its buffer (about ten times as many instructions, counted
/// under callgrind in Envoy 1.40).
pub fn started() -> Option<u64> {
    host::now_ns().ok()
}

/// Start time and client address into `facts`; returns the duration (ms). The start is `started_ns`
/// when the headers callback took it, else (a request an earlier filter answered) Envoy's
/// `request.time`. One clock read and one or two property reads.
pub fn times(facts: &mut RequestFacts, started_ns: Option<u64>) -> HostResult<Option<u64>> {
    let start_ns = match started_ns {
        Some(ns) => Some(ns),
        None => host::property_i64(&["request", "time"])?.and_then(|t| u64::try_from(t).ok()),
    };
    let now_ns = host::now_ns()?;
    facts.time_ms = start_ns.unwrap_or(now_ns) / 1_000_000;
    facts.source_ip = host::property_string(&["source", "address"])?
        .as_deref()
        .and_then(ip_of);
    Ok(start_ns.map(|s| now_ns.saturating_sub(s) / 1_000_000))
}

/// The status the client got (one property read; complete only at the end of the stream).
pub fn status() -> HostResult<Option<u16>> {
    Ok(host::property_i64(&["response", "code"])?
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| *c > 0))
}

/// The actor a metadata path holds (a JWT claim `jwt_authn` wrote with `payload_in_metadata`): one
/// property read of `metadata.filter_metadata.<path…>`. Control characters are removed; a value that
/// is not a string (a number claim) is taken as its bytes, lossily.
pub fn metadata_actor(path: &[String]) -> HostResult<Option<String>> {
    let mut full: Vec<&str> = vec!["metadata", "filter_metadata"];
    full.extend(path.iter().map(String::as_str));
    let bytes = host::property_bytes(&full)?;
    Ok(bytes
        .map(|b| printable(String::from_utf8_lossy(&b).trim()))
        .filter(|a| !a.is_empty()))
}

/// The IP of an Envoy address (`1.2.3.4:5678`, `[::1]:5678`, or a bare IP), port stripped IPv6-safely.
fn ip_of(address: &str) -> Option<String> {
    // IPv4 (the common case): Rust's parser accepts only the canonical dotted quad, so the text is
    // the address as it would be printed; no formatting needed.
    let host = match address.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        Some(_) => "",
        None => address,
    };
    if host.parse::<Ipv4Addr>().is_ok() {
        return Some(host.to_string());
    }
    if let Ok(sock) = address.parse::<SocketAddr>() {
        return Some(sock.ip().to_string());
    }
    address.parse::<IpAddr>().ok().map(|ip| ip.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn ip_without_port_ipv4_and_ipv6() {
        assert_eq!(ip_of("10.1.2.3:5678").as_deref(), Some("10.1.2.3"));
        assert_eq!(ip_of("[2001:db8::1]:443").as_deref(), Some("2001:db8::1"));
        assert_eq!(ip_of("2001:db8::1").as_deref(), Some("2001:db8::1"));
        assert_eq!(ip_of("10.1.2.3").as_deref(), Some("10.1.2.3"));
        assert_eq!(ip_of("/var/run/envoy.sock"), None);
        assert_eq!(ip_of("10.1.2.3:port"), None);
        assert_eq!(ip_of("010.1.2.3:80"), None);
    }
}
