//! The host adapter: every proxy-wasm call the filter makes goes through this file.
//!
//! Calls `proxy_wasm::hostcalls::*` (which return `Result`) and never the SDK's trait helpers (which
//! unwrap). Every `Err(Status)` comes back to the caller, which decides the posture; `HostError` names
//! the call so a log line says what failed. Values that may hold secrets (headers, bodies) are never
//! logged here or anywhere in the filter.
//!
//! Property encodings (Envoy `attributes.rst`): strings as UTF-8 bytes; integers, timestamps and
//! durations as 8-byte little-endian int64 (timestamps and durations in nanoseconds).

use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, Status};

/// A failed host call: which one, and the status the host gave.
#[derive(Debug, Clone, Copy)]
pub struct HostError {
    pub call: &'static str,
    pub status: Status,
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "host call `{}` failed: {:?}", self.call, self.status)
    }
}

pub type HostResult<T> = Result<T, HostError>;

fn err(call: &'static str) -> impl Fn(Status) -> HostError {
    move |status| HostError { call, status }
}

/// Writes to Envoy's log (logger `wasm`). Diagnostics only; never the audit trail.
pub fn log(level: LogLevel, message: &str) {
    // Nothing sensible is left to do when logging itself fails.
    let _ = hostcalls::log(level, message);
}

/// Current wall-clock time in nanoseconds since the epoch.
pub fn now_ns() -> HostResult<u64> {
    let t = hostcalls::get_current_time().map_err(err("get_current_time"))?;
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    Ok(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

/// A header map in one host call. Values are decoded lossily: HTTP/1 allows obs-text bytes that are
/// not UTF-8, and the SDK's `get_map` would panic on them (a client could trap the VM at will).
pub fn headers(map: MapType) -> HostResult<Vec<(String, String)>> {
    let pairs = hostcalls::get_map_bytes(map).map_err(err("get_map"))?;
    Ok(pairs
        .into_iter()
        .map(|(k, v)| {
            let v = String::from_utf8(v)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            (k, v)
        })
        .collect())
}

/// Replaces (or adds) one header.
pub fn set_header(map: MapType, name: &str, value: &str) -> HostResult<()> {
    hostcalls::set_map_value(map, name, Some(value)).map_err(err("set_map_value"))
}

pub fn remove_header(map: MapType, name: &str) -> HostResult<()> {
    hostcalls::remove_map_value(map, name).map_err(err("remove_map_value"))
}

/// Up to `max` bytes of a buffer, from its start.
pub fn buffer(kind: BufferType, max: usize) -> HostResult<Vec<u8>> {
    Ok(hostcalls::get_buffer(kind, 0, max)
        .map_err(err("get_buffer"))?
        .unwrap_or_default())
}

pub fn property_string(path: &[&str]) -> HostResult<Option<String>> {
    Ok(property_bytes(path)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Writes filter state `wasm.<name>` (a single-element path: multi-element paths are joined with NUL).
pub fn set_filter_state(name: &str, value: &[u8]) -> HostResult<()> {
    hostcalls::set_property(vec![name], Some(value)).map_err(err("set_property"))
}

pub fn send_reply<V: AsRef<str>>(
    status: u16,
    headers: &[(&str, V)],
    body: &[u8],
) -> HostResult<()> {
    hostcalls::send_http_response(u32::from(status), pairs(headers), Some(body))
        .map_err(err("send_http_response"))
}

fn pairs<'h, V: AsRef<str>>(headers: &'h [(&'h str, V)]) -> Vec<(&'h str, &'h str)> {
    headers.iter().map(|(k, v)| (*k, v.as_ref())).collect()
}

pub fn resume_request() -> HostResult<()> {
    hostcalls::resume_http_request().map_err(err("resume_http_request"))
}

/// Ends the stream without forwarding it: the last resort when a block cannot be sent.
pub fn reset_request() {
    if let Err(status) = hostcalls::reset_http_request() {
        log(
            LogLevel::Error,
            &format!("scimguard: reset_http_request failed: {status:?}"),
        );
    }
}

/// Shared data with its CAS token (`None`: the key does not exist yet).
pub fn shared_data_cas(key: &str) -> HostResult<(Option<Vec<u8>>, Option<u32>)> {
    hostcalls::get_shared_data(key).map_err(err("get_shared_data"))
}

/// Writes shared data if nobody wrote it since `cas` was read: `Ok(false)` on a CAS mismatch.
pub fn set_shared_data(key: &str, value: &[u8], cas: Option<u32>) -> HostResult<bool> {
    match hostcalls::set_shared_data(key, Some(value), cas) {
        Ok(()) => Ok(true),
        Err(Status::CasMismatch) => Ok(false),
        Err(status) => Err(HostError {
            call: "set_shared_data",
            status,
        }),
    }
}

/// Sends a request to an Envoy cluster; the answer arrives in the calling context's
/// `on_http_call_response`. `headers` must hold `:method`, `:path` and `:authority`.
pub fn dispatch<V: AsRef<str>>(
    cluster: &str,
    headers: &[(&str, V)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> HostResult<u32> {
    hostcalls::dispatch_http_call(cluster, pairs(headers), body, Vec::new(), timeout)
        .map_err(err("dispatch_http_call"))
}

/// Sets Envoy filter state `key` = `value` through the `set_envoy_filter_state` foreign function
/// (a registered object factory parses the value; life span: the filter chain).
pub fn set_envoy_filter_state(key: &str, value: &str) -> HostResult<()> {
    hostcalls::call_foreign_function(
        "set_envoy_filter_state",
        Some(&filter_state_args(key, value)),
    )
    .map(|_| ())
    .map_err(err("set_envoy_filter_state"))
}

/// `SetEnvoyFilterStateArguments { path = 1, value = 2 }` as protobuf: two length-delimited
/// strings. Both are short (the key is ours, the value a number), so each length is one varint
/// byte; longer ones are cut to 127 bytes rather than mis-encoded.
fn filter_state_args(key: &str, value: &str) -> Vec<u8> {
    let mut args = Vec::with_capacity(key.len() + value.len() + 4);
    for (tag, bytes) in [(0x0a, key.as_bytes()), (0x12, value.as_bytes())] {
        let bytes = bytes.get(..bytes.len().min(127)).unwrap_or_default();
        args.push(tag);
        args.push(bytes.len() as u8);
        args.extend_from_slice(bytes);
    }
    args
}

pub fn set_tick_period(period: Duration) -> HostResult<()> {
    hostcalls::set_tick_period(period).map_err(err("set_tick_period"))
}

/// A property as raw bytes (for values of unknown type, e.g. metadata).
pub fn property_bytes(path: &[&str]) -> HostResult<Option<Vec<u8>>> {
    hostcalls::get_property(path.to_vec()).map_err(err("get_property"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_state_argument_is_the_protobuf_envoy_expects() {
        let mut want = vec![0x0a, 27];
        want.extend_from_slice(b"envoy.ratelimit.hits_addend");
        want.extend_from_slice(&[0x12, 2, b'2', b'0']);
        assert_eq!(filter_state_args("envoy.ratelimit.hits_addend", "20"), want);
    }
}
