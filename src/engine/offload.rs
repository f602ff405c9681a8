//! What the host's own configuration does in the filter's place, to save host calls on every write.
//! Off by default: the filter then does it all and works with any host configuration. Each is
//! turned on next to the configuration that takes it over (Envoy: `vm_config`'s environment
//! variables, beside the route and access log they depend on), never in the policy, which stays
//! portable across hosts.
//!
//! - `SCIMGUARD_RESPONSE_TAGS=route`: the route copies the tags the filter set on the request onto
//!   the client's response (`response_headers_to_add: x-scim-audit-id: "%REQ(x-scim-audit-id)%"`,
//!   the same for `x-scim-decision`), so the filter does not set them (2 host calls a write). The
//!   filter still tags its own replies, and a response whose decision changed after the request
//!   went upstream (the fleet's rate-limit refusal).
//! - `SCIMGUARD_AUDIT_LOG_FIELDS=access_log`: the audit access log's format writes each record's
//!   `source_ip` and `status` from Envoy's own fields (`audit::HostFields::InLog`), so the filter
//!   does not read the `source.address` and `response.code` properties (2 host calls a write, the
//!   dearest kind). The filter still reads them when a collector or a webhook needs the whole record.

/// The environment variable that moves the response tags to the route.
pub const RESPONSE_TAGS: &str = "SCIMGUARD_RESPONSE_TAGS";
/// The environment variable that moves a record's client address and status to the access log.
pub const AUDIT_LOG_FIELDS: &str = "SCIMGUARD_AUDIT_LOG_FIELDS";

/// What the host does in the filter's place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offload {
    /// The route adds `x-scim-audit-id` and `x-scim-decision` to the response from the request.
    pub response_tags: bool,
    /// The audit access log writes the records' `source_ip` and `status`.
    pub log_fields: bool,
}

impl Offload {
    /// Reads the switches through `env`; an unknown value is an error (the configuration is
    /// refused rather than guessed at).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Offload, String> {
        Ok(Offload {
            response_tags: switch(&env, RESPONSE_TAGS, "route")?,
            log_fields: switch(&env, AUDIT_LOG_FIELDS, "access_log")?,
        })
    }
}

/// A switch: unset or `filter` is off, `on` is on, anything else is refused.
fn switch(env: &impl Fn(&str) -> Option<String>, name: &str, on: &str) -> Result<bool, String> {
    match env(name).as_deref().map(str::trim) {
        None | Some("" | "filter") => Ok(false),
        Some(v) if v == on => Ok(true),
        Some(other) => Err(format!(
            "{name}: expected `filter` or `{on}`, got `{}`",
            crate::scim::endpoint::printable(other)
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn switches_are_read_strictly() {
        let tags = |v: &'static str| move |k: &str| (k == RESPONSE_TAGS).then(|| v.to_string());
        assert_eq!(Offload::from_env(|_| None).unwrap(), Offload::default());
        assert!(Offload::from_env(tags("route")).unwrap().response_tags);
        assert!(!Offload::from_env(tags("filter")).unwrap().response_tags);
        let e = Offload::from_env(tags("Route")).unwrap_err();
        assert!(
            e.contains("SCIMGUARD_RESPONSE_TAGS") && e.contains("`Route`"),
            "{e}"
        );
        let fields = |k: &str| (k == AUDIT_LOG_FIELDS).then(|| "route".to_string());
        let e = Offload::from_env(fields).unwrap_err();
        assert!(e.contains("expected `filter` or `access_log`"), "{e}");
        let both = |k: &str| match k {
            RESPONSE_TAGS => Some("route".to_string()),
            AUDIT_LOG_FIELDS => Some("access_log".to_string()),
            _ => None,
        };
        let o = Offload::from_env(both).unwrap();
        assert!(o.response_tags && o.log_fields);
    }
}
