//! The host facts of an audit output that only the host knows (start time, client address, final
//! status, a metadata actor), read through the `Host` port only when an output needs them. What the
//! request headers say is `RequestFacts::from_headers`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::host::{Failed, Host};
use crate::audit::RequestFacts;
use crate::scim::endpoint::printable;

/// Start time into `facts`; returns the duration (ms). The start is `started_ns` when the headers
/// phase took it, else (a request an earlier filter answered) the host's `request.time`. One clock
/// read (and that property read).
pub fn clock(
    host: &mut dyn Host,
    facts: &mut RequestFacts,
    started_ns: Option<u64>,
) -> Result<Option<u64>, Failed> {
    let start_ns = match started_ns {
        Some(ns) => Some(ns),
        None => host
            .property(&["request", "time"])?
            .and_then(|b| int64(&b))
            .and_then(|t| u64::try_from(t).ok()),
    };
    let now_ns = host.now_ns()?;
    facts.time_ms = start_ns.unwrap_or(now_ns) / 1_000_000;
    Ok(start_ns.map(|s| now_ns.saturating_sub(s) / 1_000_000))
}

/// The client address into `facts` (one property read).
pub fn source(host: &mut dyn Host, facts: &mut RequestFacts) -> Result<(), Failed> {
    facts.source_ip = host
        .property(&["source", "address"])?
        .and_then(|b| String::from_utf8(b).ok())
        .as_deref()
        .and_then(ip_of);
    Ok(())
}

/// The status the client got (one property read; complete only at the end of the stream).
pub fn status(host: &mut dyn Host) -> Result<Option<u16>, Failed> {
    Ok(host
        .property(&["response", "code"])?
        .and_then(|b| int64(&b))
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| *c > 0))
}

/// The actor a metadata path holds (a JWT claim `jwt_authn` wrote with `payload_in_metadata`): one
/// property read of `metadata.filter_metadata.<path…>`. Control characters are removed; a value that
/// is not a string (a number claim) is taken as its bytes, lossily.
pub fn metadata_actor(host: &mut dyn Host, path: &[String]) -> Option<String> {
    let mut full: Vec<&str> = vec!["metadata", "filter_metadata"];
    full.extend(path.iter().map(String::as_str));
    let bytes = host.property(&full).ok()??;
    Some(printable(String::from_utf8_lossy(&bytes).trim())).filter(|a| !a.is_empty())
}

/// An integer property: 8 bytes little-endian (Envoy's encoding of integers, timestamps and
/// durations in nanoseconds).
fn int64(bytes: &[u8]) -> Option<i64> {
    <[u8; 8]>::try_from(bytes).ok().map(i64::from_le_bytes)
}

/// The IP of a host address (`1.2.3.4:5678`, `[::1]:5678`, or a bare IP), port stripped IPv6-safely.
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

    #[test]
    fn integer_properties_are_little_endian_int64() {
        assert_eq!(int64(&201i64.to_le_bytes()), Some(201));
        assert_eq!(int64(b"201"), None);
    }
}
