//! Operator endpoints, answered by the session itself on one route only:
//!
//! - `GET  /scimguard/detections` → the detections' state (JSON);
//! - `POST /scimguard/detections/deprovision_storm/clear` → clears the storm; audited like an access.
//!
//! Who may call them is the host's configuration, not a secret in the policy: they are answered only
//! when the host's route name (`xds.route_name`) equals `detections.ops_route`, and the shipped
//! `envoy.yaml` puts that route on a separate listener bound to 127.0.0.1 (like the admin
//! interface). Elsewhere these paths are ordinary paths. Host reads: none unless the path starts
//! with `/scimguard/`; then the route name and the state read or write.

use serde_json::{json, Value};

use super::detections;
use super::host::Host;
use crate::policy::Policy;
use crate::scim::endpoint::without_query;

const PREFIX: &str = "/scimguard/";
const STATE: &str = "/scimguard/detections";
const CLEAR: &str = "/scimguard/detections/deprovision_storm/clear";

/// An operator request's answer.
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// The request changed state: record it as an access.
    pub audit: bool,
}

/// The answer to an operator request on the ops route; `None` for any other request.
pub fn handle(policy: &Policy, host: &mut dyn Host, method: &str, path: &str) -> Option<Answer> {
    let ops_route = policy.settings.detections.ops_route.as_deref()?;
    if !path.starts_with(PREFIX) {
        return None;
    }
    let route = host.property(&["xds", "route_name"]).ok()??;
    if route != ops_route.as_bytes() {
        return None;
    }
    let (status, body, audit) = match (method, without_query(path)) {
        ("GET", STATE) => match detections::storm(host) {
            Ok(st) => (
                200,
                json!({"deprovision_storm": {"tripped": st.tripped_at.is_some(), "tripped_at": st.tripped_at}}),
                false,
            ),
            Err(_) => unavailable(),
        },
        ("POST", CLEAR) => match detections::clear_storm(host) {
            Ok(()) => (
                200,
                json!({"deprovision_storm": {"tripped": false}, "cleared": true}),
                true,
            ),
            Err(_) => unavailable(),
        },
        _ => (404, json!({"error": "no such scimguard operation"}), false),
    };
    Some(Answer {
        status,
        body: body.to_string(),
        audit,
    })
}

fn unavailable() -> (u16, Value, bool) {
    (
        503,
        json!({"error": "the detection state could not be read or written"}),
        false,
    )
}
