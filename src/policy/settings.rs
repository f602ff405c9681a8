//! Compiled policy settings outside the rules: SCIM base paths, limits, actor source, failure
//! outcomes, privileged groups and sensitive attributes.

use std::collections::BTreeMap;

use regex_lite::Regex;

use super::rule::Mode;

/// What to do with a request carrying a method-override header (`X-HTTP-Method-Override`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodOverride {
    /// Refuse it with 400 (default): a PATCH must never pass as a POST.
    Reject,
    /// Judge the request as the overriding method.
    Honor,
}

/// What happens to a write the engine cannot judge (too large, unreadable, invalid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorOutcome {
    /// Refuse it with a SCIM error (default: fail closed).
    Block,
    /// Forward it, tagged and audited as unjudged.
    Tag,
}

/// What a rule sees when a group's displayName is unknown and cannot be looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownGroupOutcome {
    /// Treat the group as privileged (default: fail closed).
    Privileged,
    /// Treat the group as not privileged.
    NotPrivileged,
}

/// Everything in a policy besides its rules.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    /// SCIM base paths, e.g. `/scim/v2`.
    pub base_paths: Vec<String>,
    /// Declared custom resource types (by endpoint name).
    pub resource_types: Vec<String>,
    pub method_override: MethodOverride,
    pub max_body_bytes: usize,
    pub max_depth: usize,
    pub max_operations: usize,
    pub on_invalid: ErrorOutcome,
    pub on_too_large: ErrorOutcome,
    pub on_unreadable: ErrorOutcome,
    pub on_unknown_group: UnknownGroupOutcome,
    /// The request header holding the actor (e.g. the client id Envoy's JWT filter forwards).
    pub actor_header: Option<String>,
    pub privileged: PrivilegedGroups,
    /// Attributes whose values never leave the engine (lower-case canonical names).
    pub sensitive_attributes: Vec<String>,
    /// Status of a block reply when the rule names none.
    pub block_status: u16,
    pub filter: FilterSettings,
}

/// The named set of privileged groups.
#[derive(Debug, Clone, Default)]
pub struct PrivilegedGroups {
    pub ids: Vec<String>,
    /// Exact displayNames (compared case-insensitively).
    pub names: Vec<String>,
    pub name_patterns: Vec<Regex>,
    /// Static id → displayName map, so rules on names fire on PATCHes by id.
    pub known_names: BTreeMap<String, String>,
}

impl PrivilegedGroups {
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.names.is_empty() && self.name_patterns.is_empty()
    }

    pub fn id_is_privileged(&self, id: &str) -> bool {
        self.ids.iter().any(|i| i == id)
    }

    pub fn name_is_privileged(&self, name: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(name)) || self.name_patterns.iter().any(|p| p.is_match(name))
    }

    /// Whether deciding on `id` needs its displayName (it is not privileged by id alone).
    pub fn needs_name(&self) -> bool {
        !self.names.is_empty() || !self.name_patterns.is_empty()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::Enforce,
            base_paths: vec!["/scim/v2".to_string()],
            resource_types: Vec::new(),
            method_override: MethodOverride::Reject,
            max_body_bytes: 1024 * 1024,
            max_depth: 32,
            max_operations: 1000,
            on_invalid: ErrorOutcome::Block,
            on_too_large: ErrorOutcome::Block,
            on_unreadable: ErrorOutcome::Block,
            on_unknown_group: UnknownGroupOutcome::Privileged,
            actor_header: None,
            privileged: PrivilegedGroups::default(),
            sensitive_attributes: vec!["password".to_string()],
            block_status: 403,
            filter: FilterSettings::default(),
        }
    }
}

/// Settings only the Envoy filter reads (the `filter` section of a policy). Validated with the rest
/// of the policy so a typo fails at load time, but the pure core never acts on them.
#[derive(Debug, Clone)]
pub struct FilterSettings {
    /// Filter-state key for the audit record: Envoy exposes it as `wasm.<key>`.
    pub audit_property: String,
    /// Also write each audit record to Envoy's log (logger `wasm`, info).
    pub audit_to_log: bool,
    /// Cluster for group displayName lookups (`dispatch_http_call`); `None` disables lookups.
    pub lookup_cluster: Option<String>,
    /// Path prefix of the SCIM API as the lookup cluster serves it (e.g. `/v2` after a prefix rewrite).
    pub lookup_base_path: String,
    /// `:authority` for lookups.
    pub lookup_authority: String,
    pub lookup_timeout_ms: u64,
    /// How long a learned group name stays valid, in seconds.
    pub group_name_ttl_secs: u64,
}

impl Default for FilterSettings {
    fn default() -> Self {
        FilterSettings {
            audit_property: "scimguard".to_string(),
            audit_to_log: false,
            lookup_cluster: None,
            lookup_base_path: "/scim/v2".to_string(),
            lookup_authority: "scim-upstream".to_string(),
            lookup_timeout_ms: 2000,
            group_name_ttl_secs: 3600,
        }
    }
}
