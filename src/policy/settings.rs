//! Compiled policy settings outside the rules: SCIM base paths, limits, actor source, failure
//! outcomes, privileged groups and sensitive attributes; and the Envoy-only sections the filter
//! reads (`filter`, `audit`, `notify`, `access`, `detections`), validated here so a typo fails at
//! load time, never acted on by the pure core.

use std::collections::BTreeMap;

use regex_lite::Regex;

use super::rule::Mode;
use crate::scim::schema::Schema;

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
    /// `limits.max_values_per_operation`: values one PATCH operation or body attribute may write.
    pub max_values: usize,
    /// `scim.user_groups`: how a User's readOnly `groups` is read.
    pub user_groups: crate::scim::UserGroups,
    pub on_invalid: ErrorOutcome,
    pub on_too_large: ErrorOutcome,
    pub on_unreadable: ErrorOutcome,
    pub on_unknown_group: UnknownGroupOutcome,
    /// The request header holding the actor (e.g. the client id Envoy's JWT filter forwards).
    pub actor_header: Option<String>,
    pub privileged: PrivilegedGroups,
    /// Attributes whose values never leave the engine (lower-case canonical names).
    pub sensitive_attributes: Vec<String>,
    /// The attributes writes may name, and what happens to others (`on_error.unknown_attribute`).
    pub schema: Schema,
    /// Status of a block reply when the rule names none.
    pub block_status: u16,
    pub filter: FilterSettings,
    pub audit: AuditSettings,
    pub notify: Option<NotifySettings>,
    pub access: AccessSettings,
    pub detections: DetectionSettings,
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
        self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
            || self.name_patterns.iter().any(|p| p.is_match(name))
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
            max_values: 1000,
            user_groups: crate::scim::UserGroups::Judge,
            on_invalid: ErrorOutcome::Block,
            on_too_large: ErrorOutcome::Block,
            on_unreadable: ErrorOutcome::Block,
            on_unknown_group: UnknownGroupOutcome::Privileged,
            actor_header: None,
            privileged: PrivilegedGroups::default(),
            sensitive_attributes: vec!["password".to_string()],
            schema: Schema::default(),
            block_status: 403,
            filter: FilterSettings::default(),
            audit: AuditSettings::default(),
            notify: None,
            access: AccessSettings::default(),
            detections: DetectionSettings::default(),
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
    /// A metadata path holding the actor (a JWT claim jwt_authn put there), read before the
    /// policy's actor header: `["envoy.filters.http.jwt_authn", "jwt_payload", "sub"]`.
    pub actor_metadata: Option<Vec<String>>,
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
            actor_metadata: None,
        }
    }
}

/// Where audit records go besides the local access log, and in which shape (`audit` section).
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub format: AuditFormat,
    /// Batched shipping to a collector cluster; `None`: the access log file is the only sink.
    pub collector: Option<CollectorSettings>,
    /// The longest line any audit output may be (record, OCSF event, notification), in bytes:
    /// longer ones are cut to fit (`audit::bound`).
    pub max_record_bytes: usize,
}

impl AuditSettings {
    /// `audit.max_record_bytes` when not set: below the line limits common log shippers apply
    /// by default (Vector's file source, Fluent Bit's tail input, Splunk's `TRUNCATE`).
    pub const DEFAULT_MAX_RECORD_BYTES: usize = 64 * 1024;
    /// The smallest bound accepted: the last-resort record of any request fits in it.
    pub const MIN_MAX_RECORD_BYTES: usize = 4096;
    pub const MAX_MAX_RECORD_BYTES: usize = 16 << 20;
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            format: AuditFormat::default(),
            collector: None,
            max_record_bytes: AuditSettings::DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

/// The shape of what is shipped to the collector. The local access log always gets the project's
/// own record (`scimguard report` reads it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuditFormat {
    /// The project's own record (`kind: scim_write` / `access`).
    #[default]
    Scimguard,
    /// OCSF 1.8 events (several per request when it changes several things).
    Ocsf,
    /// Both, in one stream (records carry `kind`, OCSF events `class_uid`).
    Both,
}

impl AuditFormat {
    pub fn records(self) -> bool {
        matches!(self, AuditFormat::Scimguard | AuditFormat::Both)
    }

    pub fn ocsf(self) -> bool {
        matches!(self, AuditFormat::Ocsf | AuditFormat::Both)
    }
}

/// An Envoy cluster the filter POSTs to from its root context (`dispatch_http_call`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEndpoint {
    /// A cluster name configured in Envoy (not a URL).
    pub cluster: String,
    pub path: String,
    /// `:authority` of the call.
    pub authority: String,
    pub timeout_ms: u64,
}

/// A bounded queue, flushed in batches on the root context's tick, retried with capped exponential
/// backoff. The same shape serves the collector and the webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Items per POST (1 for webhooks: one event per request, as receivers expect).
    pub batch_max: usize,
    /// A partial batch waits at most this long.
    pub flush_interval_ms: u64,
    /// Items waiting per worker VM; beyond it the oldest is dropped (and counted).
    pub queue_max: usize,
    /// Attempts after the first; then the batch is dropped (and counted).
    pub max_retries: u32,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            batch_max: 100,
            flush_interval_ms: 1000,
            queue_max: 10_000,
            max_retries: 5,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorSettings {
    pub endpoint: ClusterEndpoint,
    pub delivery: Delivery,
}

/// Signed webhook notifications for high-risk requests (`notify` section).
#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub endpoint: ClusterEndpoint,
    pub delivery: Delivery,
    /// Where the Standard Webhooks signing key comes from.
    pub secret: SecretSource,
    /// A request notifies when a matched rule asks (`notify: true`) or reaches this severity.
    pub min_severity: super::Severity,
}

/// The webhook key: in the policy (`secret`), or in an environment variable of the Wasm VM
/// (`secret_env`, set through `vm_config.environment_variables`), so that the key is not part of
/// the plugin configuration Envoy shows in `/config_dump`. The shell reads the variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Key(WebhookSecret),
    Env(String),
}

/// A webhook signing key. `Debug` never shows it; nothing serialises it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    pub fn new(key: Vec<u8>) -> WebhookSecret {
        WebhookSecret(key)
    }

    /// The key bytes, for signing only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([secret elided])")
    }
}

/// Access auditing of application (non-SCIM) routes (`access` section).
#[derive(Debug, Clone, Default)]
pub struct AccessSettings {
    pub enabled: bool,
    /// Actor source, tried in order: a metadata path (a JWT claim), then this header.
    pub actor: ActorSource,
    /// Share of reads (GET/HEAD answered with anything but 401/403) that is recorded, 0 to 1.
    /// Writes and denials are always recorded.
    pub sample_rate: f64,
    /// Paths to audit, first match wins; empty: every non-SCIM path the filter sees.
    pub routes: Vec<RouteTemplate>,
}

/// Where the filter reads who is acting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActorSource {
    /// `metadata.filter_metadata.<ns>.<key…>.<claim>`, e.g. `["envoy.filters.http.jwt_authn",
    /// "jwt_payload", "sub"]` with `payload_in_metadata: jwt_payload` on the jwt_authn provider.
    pub metadata: Option<Vec<String>>,
    /// A request header (lower-case).
    pub header: Option<String>,
}

/// An application route: `/api/projects/{id}` (each `{name}` is one path segment) or a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTemplate {
    Template {
        template: String,
        segments: Vec<Segment>,
    },
    Prefix(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Param,
}

impl RouteTemplate {
    /// The template `path` (query and fragment already removed) matches, if any: what a record's
    /// `route` says (`/api/projects/{id}`, or `/static/*` for a prefix).
    pub fn route_of(&self, path: &str) -> Option<String> {
        match self {
            RouteTemplate::Prefix(p) => path.starts_with(p.as_str()).then(|| format!("{p}*")),
            RouteTemplate::Template { template, segments } => {
                let mut parts = path.strip_prefix('/')?.split('/');
                for s in segments {
                    let part = parts.next()?;
                    let ok = match s {
                        Segment::Literal(l) => l == part,
                        Segment::Param => !part.is_empty(),
                    };
                    if !ok {
                        return None;
                    }
                }
                parts.next().is_none().then(|| template.clone())
            }
        }
    }
}

/// Detections across requests (`detections` section). State lives in the Envoy process (shared
/// data of the VM id), not across a fleet.
#[derive(Debug, Clone, Default)]
pub struct DetectionSettings {
    pub deprovision_storm: Option<StormSettings>,
    pub actor_risk: Option<ActorRiskSettings>,
    /// Envoy route name (`xds.route_name`) on which `POST /scimguard/detections/.../clear` and
    /// `GET /scimguard/detections` are served; `None`: not served anywhere.
    pub ops_route: Option<String>,
    /// Detections counted across the fleet by Envoy's global rate-limit service (docs/fleet.md).
    pub fleet: Vec<FleetDetection>,
}

/// A fleet detection (`detections.fleet[]`): a judged write carrying any of `events` is marked
/// with `x-scim-fleet: <descriptor>` and its number of such events as the hits, so Envoy's
/// ratelimit filter after scimguard counts it in the shared service; the limit lives in that
/// service's config. A request is marked for the first entry (in policy order) whose events it
/// carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetDetection {
    /// The rule id is `detection.fleet.<name>`.
    pub name: String,
    pub events: Vec<crate::scim::EventKind>,
    /// The marker's value: the descriptor the service's limits file names.
    pub descriptor: String,
}

/// More than `max` deprovisions (user_deprovisioned, user_deleted) within `window_secs` trips the
/// detection; while tripped, further deprovisions get `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StormSettings {
    pub max: u64,
    pub window_secs: u64,
    pub action: DetectionAction,
    /// Reply status when blocking.
    pub status: u16,
    /// Seconds after which a tripped storm clears itself; `None`: until an operator clears it.
    pub cooldown_secs: Option<u64>,
}

/// `blocked_attempts` blocked requests from one actor within `window_secs` make that actor risky:
/// its later requests get `action` until the window has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActorRiskSettings {
    pub blocked_attempts: u64,
    pub window_secs: u64,
    pub action: DetectionAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectionAction {
    Block,
    Tag,
}
