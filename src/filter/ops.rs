//! Operator endpoints, served by the filter itself on one Envoy route only:
//!
//! - `GET  /scimguard/detections` → the detections' state (JSON);
//! - `POST /scimguard/detections/deprovision_storm/clear` → clears the storm; audited like an access.
//!
//! Who may call them is Envoy's configuration, not a secret in the policy: the filter answers only
//! when `xds.route_name` equals `detections.ops_route`, and the shipped `envoy.yaml` puts that route
//! on a separate listener bound to 127.0.0.1 (like the admin interface). Elsewhere these paths are
//! ordinary paths. Host calls: none unless the path starts with `/scimguard/`; then one
//! `get_property` (route name), the shared-data read or write, and the reply.

use serde_json::json;

use super::detect;
use super::host;
use super::root::Shared;
use crate::scim::endpoint::without_query;

pub const PREFIX: &str = "/scimguard/";
const STATE: &str = "/scimguard/detections";
const CLEAR: &str = "/scimguard/detections/deprovision_storm/clear";

/// What the stream does next.
pub enum Handled {
    /// Not an operator request here: judge it like any other.
    No,
    /// Answered; `audit`: record it as an access (state changes are audited).
    Replied { audit: bool },
}

pub fn handle(shared: &Shared, method: &str, path: &str) -> Handled {
    let Some(ops_route) = &shared.engine.policy().settings.detections.ops_route else {
        return Handled::No;
    };
    if !path.starts_with(PREFIX) {
        return Handled::No;
    }
    match host::property_string(&["xds", "route_name"]) {
        Ok(Some(name)) if name == *ops_route => {}
        Ok(_) => return Handled::No,
        Err(e) => {
            shared.host_error(e);
            return Handled::No;
        }
    }
    let clean = without_query(path);
    let (status, body, audit) = match (method, clean) {
        ("GET", STATE) => match detect::storm() {
            Ok(st) => (
                200,
                json!({"deprovision_storm": {"tripped": st.tripped_at.is_some(), "tripped_at": st.tripped_at}}),
                false,
            ),
            Err(e) => failure(shared, e),
        },
        ("POST", CLEAR) => match detect::clear_storm() {
            Ok(()) => (
                200,
                json!({"deprovision_storm": {"tripped": false}, "cleared": true}),
                true,
            ),
            Err(e) => failure(shared, e),
        },
        _ => (404, json!({"error": "no such scimguard operation"}), false),
    };
    if let Err(e) = host::send_reply(
        status,
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    ) {
        shared.host_error(e);
        host::reset_request();
    }
    Handled::Replied { audit }
}

fn failure(shared: &Shared, e: host::HostError) -> (u16, serde_json::Value, bool) {
    shared.host_error(e);
    (
        503,
        json!({"error": "the detection state could not be read or written"}),
        false,
    )
}
