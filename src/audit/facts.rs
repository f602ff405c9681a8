//! What the host knows about one request, as every audit output takes it (`RequestFacts`), and the
//! one place those facts are read from request headers (`RequestFacts::from_headers`): the filter,
//! the CLI and the tests build them the same way, so a `traceparent` is checked the same way
//! everywhere. Does not own: what only the host knows (start time, client address, final status);
//! each front-end fills those in.

use serde::Serialize;

use crate::scim::endpoint::printable;
use crate::scim::Headers;

/// What the host knows about the request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestFacts {
    /// Start of the request, epoch milliseconds.
    pub time_ms: u64,
    pub audit_id: String,
    /// Envoy's `x-request-id`.
    pub request_id: Option<String>,
    /// W3C trace id from `traceparent`.
    pub trace_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub method: String,
    pub path: String,
}

impl RequestFacts {
    /// The facts the request headers give: Envoy's `x-request-id` (set by the connection manager
    /// before any filter runs), the W3C trace id of a well-formed `traceparent`, the user agent.
    /// `time_ms` and `source_ip` are left for the host to fill in.
    pub fn from_headers(audit_id: String, method: &str, path: &str, headers: &Headers) -> Self {
        RequestFacts {
            time_ms: 0,
            audit_id,
            request_id: headers.get("x-request-id").map(str::to_string),
            trace_id: headers
                .get("traceparent")
                .and_then(trace_id)
                .map(str::to_string),
            source_ip: None,
            user_agent: headers.get("user-agent").map(str::to_string),
            method: method.to_string(),
            path: path.to_string(),
        }
    }

    /// The audit id and Envoy's request id as every output shows them: cleaned, and the request id
    /// absent when empty.
    pub fn clean_ids(&self) -> (String, Option<String>) {
        let request_id = self
            .request_id
            .as_deref()
            .map(printable)
            .filter(|r| !r.is_empty());
        (printable(&self.audit_id), request_id)
    }
}

/// The trace id of a well-formed W3C `traceparent` (`<2 hex>-<32 hex>-<16 hex>-<2 hex>`, lower-case,
/// version not `ff`, trace and parent ids not all zero), else `None`: a malformed header is
/// ignored whole, as the Trace Context spec asks.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let hex = |p: &str, len: usize| {
        p.len() == len
            && p.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |p: &str| p.bytes().any(|b| b != b'0');
    let mut parts = traceparent.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let well_formed = parts.next().is_none()
        && hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && nonzero(trace)
        && hex(parent, 16)
        && nonzero(parent)
        && hex(flags, 2);
    well_formed.then_some(trace)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_from_traceparent() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(trace_id(tp), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(
            trace_id(&format!(" {tp} ")),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "garbage",
            "",
        ] {
            assert_eq!(trace_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn request_facts_come_from_headers() {
        let headers = Headers::from_pairs([
            ("x-request-id".to_string(), "r-1".to_string()),
            ("user-agent".to_string(), "okta".to_string()),
            (
                "traceparent".to_string(),
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
            ),
            ("authorization".to_string(), "Bearer secret".to_string()),
        ]);
        let f = RequestFacts::from_headers("a-1".into(), "PATCH", "/scim/v2/Users/1", &headers);
        assert_eq!(
            (
                f.audit_id.as_str(),
                f.request_id.as_deref(),
                f.user_agent.as_deref(),
                f.trace_id.as_deref(),
                f.method.as_str(),
                f.path.as_str(),
            ),
            (
                "a-1",
                Some("r-1"),
                Some("okta"),
                Some("4bf92f3577b34da6a3ce929d0e0e4736"),
                "PATCH",
                "/scim/v2/Users/1"
            )
        );
        assert!(!format!("{f:?}").contains("secret"));
    }

    #[test]
    fn a_malformed_traceparent_gives_no_trace_id() {
        let headers =
            Headers::from_pairs([("traceparent".to_string(), "00-abc-def-01".to_string())]);
        let f = RequestFacts::from_headers(String::new(), "POST", "/Users", &headers);
        assert_eq!(f.trace_id, None);
    }
}
