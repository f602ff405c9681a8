//! Applying what the engine decided to the host: the local reply of a block, the tags of a forwarded
//! write (to the upstream and to the client), and the removal of tags a client tried to send itself.

use proxy_wasm::types::{Action, MapType};

use super::host;
use super::root::Shared;
use crate::engine::{Evaluation, Reply};
use crate::policy::Decision;
use crate::scim::Headers;

/// Headers of these names are ours: a client's are removed before anyone reads them.
const OURS: &str = "x-scim-";

/// Removes client-sent `x-scim-*` headers (one host call per distinct name, none when there are
/// none) and returns the rest as the engine's view of the request.
pub fn strip_spoofed(shared: &Shared, pairs: Vec<(String, String)>) -> Headers {
    let mut removed: Vec<&str> = Vec::new();
    for (name, _) in pairs.iter().filter(|(k, _)| k.starts_with(OURS)) {
        if removed.contains(&name.as_str()) {
            continue;
        }
        removed.push(name);
        if let Err(e) = host::remove_header(MapType::HttpRequestHeaders, name) {
            shared.host_error(e);
        }
    }
    Headers::from_pairs(pairs.into_iter().filter(|(k, _)| !k.starts_with(OURS)))
}

/// The request headers the upstream gets: audit id and decision always; risk and rules when tagged.
pub fn tags(e: &Evaluation, audit_id: &str) -> Vec<(&'static str, String)> {
    let mut tags = vec![
        ("x-scim-audit-id", audit_id.to_string()),
        ("x-scim-decision", e.decision.as_str().to_string()),
    ];
    if e.decision == Decision::Tag {
        tags.push((
            "x-scim-risk",
            e.risk.map_or("none", |r| r.as_str()).to_string(),
        ));
        let rules: String = e
            .rule_ids()
            .join(",")
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        if !rules.is_empty() {
            tags.push(("x-scim-rules", rules));
        }
    }
    tags
}

/// Answers in the upstream's place. The reply re-enters our response callbacks, which leave it alone.
pub fn block(shared: &Shared, reply: &Reply, tags: &[(&'static str, String)]) -> Action {
    let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/scim+json")];
    headers.extend(tags.iter().map(|(k, v)| (*k, v.as_str())));
    if let Err(e) = host::send_reply(reply.status, &headers, reply.body.as_bytes()) {
        shared.host_error(e);
        // The upstream must never see a blocked request: without a reply, end the stream.
        host::reset_request();
    }
    Action::Pause
}

/// Lets the write through with its tags; `resume` when the request is held outside a callback that
/// can return `Continue` (after a lookup).
pub fn forward(shared: &Shared, tags: &[(&'static str, String)], resume: bool) -> Action {
    for (name, value) in tags {
        if let Err(e) = host::set_header(MapType::HttpRequestHeaders, name, value) {
            shared.host_error(e);
        }
    }
    if resume {
        if let Err(e) = host::resume_request() {
            shared.host_error(e);
            host::reset_request();
        }
    }
    Action::Continue
}

/// The client's response says which request this was and what we decided.
pub fn tag_response(shared: &Shared, audit_id: &str, decision: Decision) {
    for (name, value) in [
        ("x-scim-audit-id", audit_id),
        ("x-scim-decision", decision.as_str()),
    ] {
        if let Err(e) = host::set_header(MapType::HttpResponseHeaders, name, value) {
            shared.host_error(e);
        }
    }
}

/// No compiled policy on this VM, or its request headers cannot be read: refuse (Envoy does not even
/// start without a policy; this is the belt to its braces).
pub fn refuse_unjudged() -> Action {
    let body = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"503","detail":"scimguard could not judge the request"}"#;
    if host::send_reply(503, &[("content-type", "application/scim+json")], body).is_err() {
        host::reset_request();
    }
    Action::Pause
}
