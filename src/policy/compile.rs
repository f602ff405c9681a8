//! The policy compiler: walks the JSON document once, building compiled types and collecting every
//! error (rule id, JSON pointer, line, expectation, did-you-mean). Unknown fields are errors.
//!
//! Why a walker rather than `#[derive(Deserialize)]` with `deny_unknown_fields`: serde stops at the
//! first error, and policy authors should see all of them in one pass.

use std::collections::BTreeSet;

use regex_lite::Regex;
use serde_json::{Map, Value};

use super::error::{did_you_mean, PolicyError, PolicyErrors};
use super::eval::{Action, Severity};
use super::lines::line_of;
use super::rule::{ActorTest, ChangeTest, Condition, CountTest, Counted, Mode, Rule, RuleId};
use super::settings::{
    AccessSettings, ActorRiskSettings, ActorSource, AuditFormat, AuditSettings, CollectorSettings, Delivery, DetectionAction,
    DetectionSettings, Endpoint, ErrorOutcome, FilterSettings, MethodOverride, NotifySettings, PrivilegedGroups, RouteTemplate,
    Segment, Settings, StormSettings, UnknownGroupOutcome, WebhookSecret,
};
use super::value_test::ValueTest;
use super::Policy;
use crate::scim::{attribute, strict_json, EventKind, Op};

const TOP: [&str; 17] = [
    "version",
    "description",
    "mode",
    "scim",
    "limits",
    "on_error",
    "actor",
    "privileged_groups",
    "sensitive_attributes",
    "block_status",
    "filter",
    "audit",
    "notify",
    "access",
    "detections",
    "rules",
    "$schema",
];
const ENDPOINT: [&str; 4] = ["cluster", "path", "authority", "timeout_ms"];
const DELIVERY: [&str; 6] = ["batch_max", "flush_interval_ms", "queue_max", "max_retries", "backoff_initial_ms", "backoff_max_ms"];
/// Rule ids with this prefix name the filter's own detections in records and headers.
pub const DETECTION_PREFIX: &str = "detection.";
const RULE: [&str; 8] = ["id", "description", "severity", "action", "mode", "status", "notify", "when"];
const CONDITIONS: [&str; 11] =
    ["all", "any", "not", "method", "resource_type", "event", "change", "privileged_group", "actor", "bulk", "count"];
const CHANGE: [&str; 6] = ["op", "attribute", "attribute_matches", "sub_attribute", "value", "flag"];
const VALUE_TESTS: [&str; 8] = ["equals", "any_of", "matches", "is", "gt", "gte", "lt", "lte"];
const METHODS: [&str; 5] = ["POST", "PUT", "PATCH", "DELETE", "GET"];
const FLAGS: [&str; 10] = [
    "string_boolean",
    "number_boolean",
    "json_in_string",
    "remove_listed_or_all",
    "filter_defined",
    "possible_clear",
    "possible_reactivation",
    "active_removed",
    "wrapped_value",
    "redacted",
];

/// Compiles a policy document.
pub fn compile(text: &str) -> Result<Policy, PolicyErrors> {
    let doc = strict_json::parse(text.as_bytes(), 64).map_err(|e| {
        PolicyErrors(vec![PolicyError {
            rule: None,
            pointer: String::new(),
            line: parse_error_line(&e.detail),
            message: e.detail.replace("the body is not valid JSON", "the policy is not valid JSON"),
            help: None,
        }])
    })?;
    let mut c = Compiler { text, errors: Vec::new(), rule: None };
    let policy = c.document(&doc);
    if c.errors.is_empty() {
        if let Some(p) = policy {
            return Ok(p);
        }
    }
    Err(PolicyErrors(c.errors))
}

fn parse_error_line(detail: &str) -> Option<usize> {
    let at = detail.find(" line ")?;
    detail.get(at + 6..)?.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

struct Compiler<'t> {
    text: &'t str,
    errors: Vec<PolicyError>,
    rule: Option<String>,
}

impl Compiler<'_> {
    fn err(&mut self, pointer: &str, message: impl Into<String>, help: Option<String>) {
        self.errors.push(PolicyError {
            rule: self.rule.clone(),
            pointer: pointer.to_string(),
            line: line_of(self.text, pointer),
            message: message.into(),
            help,
        });
    }

    /// The members of an object, reporting unknown keys with a did-you-mean.
    fn members<'v>(&mut self, v: &'v Value, at: &str, known: &[&str], what: &str) -> Option<&'v Map<String, Value>> {
        let Some(obj) = v.as_object() else {
            self.err(at, format!("expected {what} (an object)"), None);
            return None;
        };
        for key in obj.keys() {
            if !known.contains(&key.as_str()) {
                let help = did_you_mean(key, known).map(|s| format!("did you mean `{s}`?"));
                self.err(&format!("{at}/{}", escape(key)), format!("unknown field `{key}` in {what}"), help);
            }
        }
        Some(obj)
    }

    fn document(&mut self, doc: &Value) -> Option<Policy> {
        let obj = self.members(doc, "", &TOP, "the policy")?;
        let mut s = Settings::default();
        match obj.get("version") {
            Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
            Some(_) => self.err("/version", "expected `1`, the only policy version", None),
            None => self.err("", "missing field `version` (expected `1`)", None),
        }
        if let Some(v) = obj.get("mode") {
            s.mode = self.mode(v, "/mode").unwrap_or(s.mode);
        }
        if let Some(v) = obj.get("scim") {
            self.scim(v, &mut s);
        }
        if let Some(v) = obj.get("limits") {
            self.limits(v, &mut s);
        }
        if let Some(v) = obj.get("on_error") {
            self.on_error(v, &mut s);
        }
        if let Some(v) = obj.get("actor") {
            if let Some(a) = self.members(v, "/actor", &["header"], "`actor`") {
                s.actor_header = a.get("header").and_then(|h| self.string(h, "/actor/header")).map(|h| h.to_ascii_lowercase());
            }
        }
        if let Some(v) = obj.get("privileged_groups") {
            s.privileged = self.privileged(v);
        }
        if let Some(v) = obj.get("sensitive_attributes") {
            let mut list = self.strings(v, "/sensitive_attributes");
            if !list.iter().any(|a| a.eq_ignore_ascii_case("password")) {
                list.push("password".into());
            }
            s.sensitive_attributes = list;
        }
        if let Some(v) = obj.get("block_status") {
            s.block_status = self.status(v, "/block_status").unwrap_or(403);
        }
        if let Some(v) = obj.get("filter") {
            s.filter = self.filter(v);
        }
        if let Some(v) = obj.get("audit") {
            s.audit = self.audit(v);
        }
        if let Some(v) = obj.get("notify") {
            s.notify = self.notify(v);
        }
        if let Some(v) = obj.get("access") {
            s.access = self.access(v, s.actor_header.as_deref());
        }
        if let Some(v) = obj.get("detections") {
            s.detections = self.detections(v);
        }
        let rules = match obj.get("rules") {
            Some(v) => self.rules(v, &s),
            None => {
                self.err("", "missing field `rules` (a list of rules)", None);
                Vec::new()
            }
        };
        Some(Policy { settings: s, rules })
    }

    fn scim(&mut self, v: &Value, s: &mut Settings) {
        let Some(o) = self.members(v, "/scim", &["base_paths", "resource_types", "method_override"], "`scim`") else { return };
        if let Some(v) = o.get("base_paths") {
            let paths = self.strings(v, "/scim/base_paths");
            for (i, p) in paths.iter().enumerate() {
                if !p.starts_with('/') || p.len() < 2 {
                    self.err(&format!("/scim/base_paths/{i}"), format!("`{p}` must be an absolute path such as `/scim/v2`"), None);
                }
            }
            if paths.is_empty() {
                self.err("/scim/base_paths", "expected at least one base path", None);
            }
            s.base_paths = paths.into_iter().map(|p| p.trim_end_matches('/').to_string()).collect();
        }
        if let Some(v) = o.get("resource_types") {
            s.resource_types = self.strings(v, "/scim/resource_types");
        }
        if let Some(v) = o.get("method_override") {
            match self.choice(v, "/scim/method_override", &["reject", "honor"]) {
                Some("honor") => s.method_override = MethodOverride::Honor,
                Some(_) => s.method_override = MethodOverride::Reject,
                None => {}
            }
        }
    }

    fn limits(&mut self, v: &Value, s: &mut Settings) {
        let Some(o) = self.members(v, "/limits", &["max_body_bytes", "max_depth", "max_operations"], "`limits`") else { return };
        if let Some(n) = o.get("max_body_bytes").and_then(|v| self.count(v, "/limits/max_body_bytes", 1, 64 << 20)) {
            s.max_body_bytes = n;
        }
        if let Some(n) = o.get("max_depth").and_then(|v| self.count(v, "/limits/max_depth", 2, 128)) {
            s.max_depth = n;
        }
        if let Some(n) = o.get("max_operations").and_then(|v| self.count(v, "/limits/max_operations", 1, 100_000)) {
            s.max_operations = n;
        }
    }

    fn on_error(&mut self, v: &Value, s: &mut Settings) {
        let keys = ["invalid", "too_large", "unreadable", "unknown_group"];
        let Some(o) = self.members(v, "/on_error", &keys, "`on_error`") else { return };
        for (key, slot) in [("invalid", &mut s.on_invalid), ("too_large", &mut s.on_too_large), ("unreadable", &mut s.on_unreadable)] {
            if let Some(v) = o.get(key) {
                match self.choice(v, &format!("/on_error/{key}"), &["block", "tag"]) {
                    Some("tag") => *slot = ErrorOutcome::Tag,
                    Some(_) => *slot = ErrorOutcome::Block,
                    None => {}
                }
            }
        }
        if let Some(v) = o.get("unknown_group") {
            match self.choice(v, "/on_error/unknown_group", &["privileged", "not_privileged"]) {
                Some("not_privileged") => s.on_unknown_group = UnknownGroupOutcome::NotPrivileged,
                Some(_) => s.on_unknown_group = UnknownGroupOutcome::Privileged,
                None => {}
            }
        }
    }

    fn privileged(&mut self, v: &Value) -> PrivilegedGroups {
        let keys = ["ids", "display_names", "display_name_patterns", "known_names"];
        let mut p = PrivilegedGroups::default();
        let Some(o) = self.members(v, "/privileged_groups", &keys, "`privileged_groups`") else { return p };
        if let Some(v) = o.get("ids") {
            p.ids = self.strings(v, "/privileged_groups/ids");
        }
        if let Some(v) = o.get("display_names") {
            p.names = self.strings(v, "/privileged_groups/display_names");
        }
        if let Some(v) = o.get("display_name_patterns") {
            let patterns = self.strings(v, "/privileged_groups/display_name_patterns");
            for (i, pat) in patterns.iter().enumerate() {
                if let Some(re) = self.regex(pat, &format!("/privileged_groups/display_name_patterns/{i}")) {
                    p.name_patterns.push(re);
                }
            }
        }
        if let Some(v) = o.get("known_names") {
            match v.as_object() {
                Some(map) => {
                    for (id, name) in map {
                        match name.as_str() {
                            Some(n) => {
                                p.known_names.insert(id.clone(), n.to_string());
                            }
                            None => self.err(&format!("/privileged_groups/known_names/{}", escape(id)), "expected a displayName string", None),
                        }
                    }
                }
                None => self.err("/privileged_groups/known_names", "expected an object mapping group ids to displayNames", None),
            }
        }
        p
    }

    fn filter(&mut self, v: &Value) -> FilterSettings {
        let keys = [
            "audit_property",
            "audit_to_log",
            "lookup_cluster",
            "lookup_base_path",
            "lookup_authority",
            "lookup_timeout_ms",
            "group_name_ttl_secs",
            "actor_metadata",
        ];
        let mut f = FilterSettings::default();
        let Some(o) = self.members(v, "/filter", &keys, "`filter`") else { return f };
        if let Some(s) = o.get("audit_property").and_then(|v| self.string(v, "/filter/audit_property")) {
            if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                self.err("/filter/audit_property", "expected a filter-state key of letters, digits, `_` and `.`", None);
            }
            f.audit_property = s;
        }
        if let Some(b) = o.get("audit_to_log").and_then(|v| self.boolean(v, "/filter/audit_to_log")) {
            f.audit_to_log = b;
        }
        f.lookup_cluster = o.get("lookup_cluster").and_then(|v| self.string(v, "/filter/lookup_cluster"));
        if let Some(s) = o.get("lookup_base_path").and_then(|v| self.string(v, "/filter/lookup_base_path")) {
            f.lookup_base_path = s.trim_end_matches('/').to_string();
        }
        if let Some(s) = o.get("lookup_authority").and_then(|v| self.string(v, "/filter/lookup_authority")) {
            f.lookup_authority = s;
        }
        if let Some(n) = o.get("lookup_timeout_ms").and_then(|v| self.count(v, "/filter/lookup_timeout_ms", 1, 60_000)) {
            f.lookup_timeout_ms = n as u64;
        }
        if let Some(n) = o.get("group_name_ttl_secs").and_then(|v| self.count(v, "/filter/group_name_ttl_secs", 1, 30 * 86_400)) {
            f.group_name_ttl_secs = n as u64;
        }
        f.actor_metadata = o.get("actor_metadata").and_then(|v| self.metadata_path(v, "/filter/actor_metadata"));
        f
    }

    fn audit(&mut self, v: &Value) -> AuditSettings {
        let mut a = AuditSettings::default();
        let Some(o) = self.members(v, "/audit", &["format", "collector"], "`audit`") else { return a };
        if let Some(v) = o.get("format") {
            a.format = match self.choice(v, "/audit/format", &["scimguard", "ocsf", "both"]) {
                Some("ocsf") => AuditFormat::Ocsf,
                Some("both") => AuditFormat::Both,
                _ => AuditFormat::Scimguard,
            };
        }
        if let Some(v) = o.get("collector") {
            let mut keys = ENDPOINT.to_vec();
            keys.extend(DELIVERY);
            if let Some(c) = self.members(v, "/audit/collector", &keys, "`audit.collector`") {
                let endpoint = self.endpoint(c, "/audit/collector", "audit-collector");
                let delivery = self.delivery(c, "/audit/collector", Delivery::default());
                a.collector = endpoint.map(|endpoint| CollectorSettings { endpoint, delivery });
            }
        }
        a
    }

    fn notify(&mut self, v: &Value) -> Option<NotifySettings> {
        let mut keys = ENDPOINT.to_vec();
        keys.extend(DELIVERY);
        keys.extend(["secret", "min_severity"]);
        let o = self.members(v, "/notify", &keys, "`notify`")?;
        let endpoint = self.endpoint(o, "/notify", "webhook-receiver");
        let defaults = Delivery { batch_max: 1, flush_interval_ms: 200, queue_max: 1000, ..Delivery::default() };
        let delivery = self.delivery(o, "/notify", defaults);
        if delivery.batch_max != 1 {
            self.err("/notify/batch_max", "webhooks carry one event per POST: expected `1`", None);
        }
        let secret = self.required(o, "/notify", "secret").and_then(|v| self.secret(v, "/notify/secret"));
        let min_severity = match o.get("min_severity") {
            Some(v) => self.choice(v, "/notify/min_severity", &Severity::NAMES).and_then(Severity::parse),
            None => Some(Severity::High),
        };
        Some(NotifySettings { endpoint: endpoint?, delivery, secret: secret?, min_severity: min_severity? })
    }

    /// A Standard Webhooks key: `whsec_` + base64. Messages never show the value.
    fn secret(&mut self, v: &Value, at: &str) -> Option<WebhookSecret> {
        use base64::Engine as _;
        let Some(text) = v.as_str() else {
            self.err(at, "expected a string `whsec_<base64>` (the value is not shown)", None);
            return None;
        };
        let Some(b64) = text.strip_prefix("whsec_") else {
            self.err(at, "expected `whsec_` followed by the base64 key (the value is not shown)", None);
            return None;
        };
        let decoded = base64::engine::general_purpose::STANDARD.decode(b64);
        match decoded.or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64)) {
            Ok(key) if (16..=512).contains(&key.len()) => Some(WebhookSecret::new(key)),
            Ok(_) => {
                self.err(at, "the webhook key must decode to 16 to 512 bytes (the value is not shown)", None);
                None
            }
            Err(_) => {
                self.err(at, "the part after `whsec_` is not valid base64 (the value is not shown)", None);
                None
            }
        }
    }

    fn endpoint(&mut self, o: &Map<String, Value>, at: &str, authority: &str) -> Option<Endpoint> {
        let cluster = self.required(o, at, "cluster").and_then(|v| self.string(v, &format!("{at}/cluster")));
        if let Some(c) = &cluster {
            if c.is_empty() || c.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
                self.err(&format!("{at}/cluster"), "expected the name of an Envoy cluster (no spaces)", None);
            }
        }
        let path = self.required(o, at, "path").and_then(|v| self.string(v, &format!("{at}/path")));
        if let Some(p) = &path {
            if !p.starts_with('/') || p.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
                self.err(&format!("{at}/path"), format!("`{p}` must be an absolute path such as `/v1/records`"), None);
            }
        }
        let authority = match o.get("authority") {
            Some(v) => self.string(v, &format!("{at}/authority")),
            None => Some(authority.to_string()),
        };
        if let Some(a) = &authority {
            if a.is_empty() || a.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
                self.err(&format!("{at}/authority"), "expected a host name for `:authority`", None);
            }
        }
        let timeout_ms = match o.get("timeout_ms") {
            Some(v) => self.count(v, &format!("{at}/timeout_ms"), 1, 60_000).map(|n| n as u64),
            None => Some(2000),
        };
        Some(Endpoint { cluster: cluster?, path: path?, authority: authority?, timeout_ms: timeout_ms? })
    }

    fn delivery(&mut self, o: &Map<String, Value>, at: &str, mut d: Delivery) -> Delivery {
        if let Some(n) = o.get("batch_max").and_then(|v| self.count(v, &format!("{at}/batch_max"), 1, 10_000)) {
            d.batch_max = n;
        }
        if let Some(n) = o.get("flush_interval_ms").and_then(|v| self.count(v, &format!("{at}/flush_interval_ms"), 10, 600_000)) {
            d.flush_interval_ms = n as u64;
        }
        if let Some(n) = o.get("queue_max").and_then(|v| self.count(v, &format!("{at}/queue_max"), 1, 1_000_000)) {
            d.queue_max = n;
        }
        if let Some(n) = o.get("max_retries").and_then(|v| self.count(v, &format!("{at}/max_retries"), 0, 100)) {
            d.max_retries = u32::try_from(n).unwrap_or(100);
        }
        if let Some(n) = o.get("backoff_initial_ms").and_then(|v| self.count(v, &format!("{at}/backoff_initial_ms"), 1, 3_600_000)) {
            d.backoff_initial_ms = n as u64;
        }
        if let Some(n) = o.get("backoff_max_ms").and_then(|v| self.count(v, &format!("{at}/backoff_max_ms"), 1, 3_600_000)) {
            d.backoff_max_ms = n as u64;
        }
        if d.backoff_max_ms < d.backoff_initial_ms {
            self.err(&format!("{at}/backoff_max_ms"), "must be at least `backoff_initial_ms`", None);
        }
        if d.queue_max < d.batch_max {
            self.err(&format!("{at}/queue_max"), "must be at least `batch_max`", None);
        }
        d
    }

    fn access(&mut self, v: &Value, policy_actor_header: Option<&str>) -> AccessSettings {
        let keys = ["enabled", "actor_header", "actor_metadata", "sample_rate", "routes"];
        let mut a = AccessSettings { sample_rate: 1.0, ..AccessSettings::default() };
        let Some(o) = self.members(v, "/access", &keys, "`access`") else { return a };
        a.enabled = o.get("enabled").and_then(|v| self.boolean(v, "/access/enabled")).unwrap_or(true);
        a.actor = ActorSource {
            metadata: o.get("actor_metadata").and_then(|v| self.metadata_path(v, "/access/actor_metadata")),
            header: match o.get("actor_header") {
                Some(v) => self.header_name(v, "/access/actor_header"),
                None => policy_actor_header.map(str::to_string),
            },
        };
        if let Some(v) = o.get("sample_rate") {
            match v.as_f64().filter(|r| (0.0..=1.0).contains(r)) {
                Some(r) => a.sample_rate = r,
                None => self.err("/access/sample_rate", "expected a number from 0 to 1", None),
            }
        }
        if let Some(v) = o.get("routes") {
            match v.as_array() {
                Some(list) => {
                    a.routes = list.iter().enumerate().filter_map(|(i, r)| self.route(r, &format!("/access/routes/{i}"))).collect();
                }
                None => self.err("/access/routes", "expected a list of routes", None),
            }
        }
        a
    }

    fn route(&mut self, v: &Value, at: &str) -> Option<RouteTemplate> {
        let o = self.members(v, at, &["template", "prefix"], "a route")?;
        match (o.get("template"), o.get("prefix")) {
            (Some(t), None) => {
                let at = format!("{at}/template");
                let t = self.string(t, &at)?;
                let segments = self.template(&t, &at)?;
                Some(RouteTemplate::Template { template: t, segments })
            }
            (None, Some(p)) => {
                let p = self.string(p, &format!("{at}/prefix"))?;
                if !p.starts_with('/') {
                    self.err(&format!("{at}/prefix"), format!("`{p}` must be an absolute path prefix such as `/api/`"), None);
                }
                Some(RouteTemplate::Prefix(p))
            }
            _ => {
                self.err(at, "a route has exactly one of `template` or `prefix`", None);
                None
            }
        }
    }

    fn template(&mut self, t: &str, at: &str) -> Option<Vec<Segment>> {
        let Some(rest) = t.strip_prefix('/') else {
            self.err(at, format!("`{t}` must be an absolute path such as `/api/projects/{{id}}`"), None);
            return None;
        };
        let mut segments = Vec::new();
        for part in rest.split('/') {
            let param = part.len() > 2 && part.starts_with('{') && part.ends_with('}');
            if param {
                segments.push(Segment::Param);
            } else if part.contains(['{', '}', '?', '#', '*']) {
                self.err(at, format!("`{t}`: a segment is a literal or a whole `{{name}}`"), None);
                return None;
            } else {
                segments.push(Segment::Literal(part.to_string()));
            }
        }
        Some(segments)
    }

    fn header_name(&mut self, v: &Value, at: &str) -> Option<String> {
        let h = self.string(v, at)?;
        if h.is_empty() || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            self.err(at, format!("`{h}` is not a header name"), None);
            return None;
        }
        Some(h.to_ascii_lowercase())
    }

    /// A path under `metadata.filter_metadata`: namespace, then keys down to the value.
    fn metadata_path(&mut self, v: &Value, at: &str) -> Option<Vec<String>> {
        if !v.is_array() {
            self.err(at, "expected a list of names: the filter namespace, then the keys down to the value", None);
            return None;
        }
        let path = self.strings(v, at);
        if path.len() < 2 || path.len() > 8 || path.iter().any(String::is_empty) {
            let help = Some("e.g. `[\"envoy.filters.http.jwt_authn\", \"jwt_payload\", \"sub\"]`".to_string());
            self.err(at, "expected 2 to 8 non-empty names: the filter namespace, then the keys down to the value", help);
            return None;
        }
        Some(path)
    }

    fn detections(&mut self, v: &Value) -> DetectionSettings {
        let mut d = DetectionSettings::default();
        let keys = ["deprovision_storm", "actor_risk", "ops_route"];
        let Some(o) = self.members(v, "/detections", &keys, "`detections`") else { return d };
        if let Some(v) = o.get("deprovision_storm") {
            d.deprovision_storm = self.storm(v, "/detections/deprovision_storm");
        }
        if let Some(v) = o.get("actor_risk") {
            d.actor_risk = self.actor_risk(v, "/detections/actor_risk");
        }
        d.ops_route = o.get("ops_route").and_then(|v| self.string(v, "/detections/ops_route"));
        d
    }

    fn storm(&mut self, v: &Value, at: &str) -> Option<StormSettings> {
        let o = self.members(v, at, &["max", "window_secs", "action", "status", "cooldown"], "`deprovision_storm`")?;
        let max = self.required(o, at, "max").and_then(|v| self.count(v, &format!("{at}/max"), 1, 1_000_000));
        let window = self.required(o, at, "window_secs").and_then(|v| self.count(v, &format!("{at}/window_secs"), 1, 86_400));
        let action = self.detection_action(o, at);
        let status = match o.get("status") {
            Some(v) => self.status(v, &format!("{at}/status")),
            None => Some(429),
        };
        let cooldown_secs = match o.get("cooldown") {
            None => Some(None),
            Some(Value::String(s)) if s == "until_cleared" => Some(None),
            Some(v) => match v.as_u64().filter(|n| (1..=7 * 86_400).contains(n)) {
                Some(n) => Some(Some(n)),
                None => {
                    self.err(&format!("{at}/cooldown"), "expected `until_cleared` or a number of seconds from 1 to 604800", None);
                    None
                }
            },
        };
        Some(StormSettings {
            max: max? as u64,
            window_secs: window? as u64,
            action: action?,
            status: status?,
            cooldown_secs: cooldown_secs?,
        })
    }

    fn actor_risk(&mut self, v: &Value, at: &str) -> Option<ActorRiskSettings> {
        let o = self.members(v, at, &["blocked_attempts", "window_secs", "action"], "`actor_risk`")?;
        let n = self.required(o, at, "blocked_attempts").and_then(|v| self.count(v, &format!("{at}/blocked_attempts"), 1, 1_000_000));
        let window = self.required(o, at, "window_secs").and_then(|v| self.count(v, &format!("{at}/window_secs"), 1, 30 * 86_400));
        let action = self.detection_action(o, at);
        Some(ActorRiskSettings { blocked_attempts: n? as u64, window_secs: window? as u64, action: action? })
    }

    fn detection_action(&mut self, o: &Map<String, Value>, at: &str) -> Option<DetectionAction> {
        let Some(v) = o.get("action") else { return Some(DetectionAction::Tag) };
        match self.choice(v, &format!("{at}/action"), &["block", "tag"])? {
            "block" => Some(DetectionAction::Block),
            _ => Some(DetectionAction::Tag),
        }
    }

    fn rules(&mut self, v: &Value, s: &Settings) -> Vec<Rule> {
        let Some(list) = v.as_array() else {
            self.err("/rules", "expected a list of rules", None);
            return Vec::new();
        };
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, r) in list.iter().enumerate() {
            let at = format!("/rules/{i}");
            self.rule = r.get("id").and_then(Value::as_str).map(str::to_string);
            if let Some(id) = &self.rule {
                if !seen.insert(id.clone()) {
                    self.err(&format!("{at}/id"), format!("duplicate rule id `{id}`"), None);
                }
            }
            if let Some(rule) = self.one_rule(r, &at, s) {
                out.push(rule);
            }
            self.rule = None;
        }
        out
    }

    fn one_rule(&mut self, v: &Value, at: &str, s: &Settings) -> Option<Rule> {
        let o = self.members(v, at, &RULE, "a rule")?;
        let id = self.required(o, at, "id").and_then(|v| self.string(v, &format!("{at}/id")));
        if let Some(id) = &id {
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
                self.err(&format!("{at}/id"), format!("rule id `{id}` may hold only letters, digits, `-`, `_` and `.`"), None);
            }
            if id.starts_with(DETECTION_PREFIX) {
                self.err(&format!("{at}/id"), format!("rule ids starting with `{DETECTION_PREFIX}` are reserved for detections"), None);
            }
        }
        let description = self.required(o, at, "description").and_then(|v| self.string(v, &format!("{at}/description")));
        let severity = self.required(o, at, "severity").and_then(|v| {
            self.choice(v, &format!("{at}/severity"), &Severity::NAMES).and_then(Severity::parse)
        });
        let action = self.required(o, at, "action").and_then(|v| match self.choice(v, &format!("{at}/action"), &Action::NAMES) {
            Some("block") => Some(Action::Block),
            Some("tag") => Some(Action::Tag),
            Some("log") => Some(Action::Log),
            _ => None,
        });
        let mode = o.get("mode").and_then(|v| self.mode(v, &format!("{at}/mode")));
        let status = o.get("status").and_then(|v| self.status(v, &format!("{at}/status")));
        let notify = o.get("notify").and_then(|v| self.boolean(v, &format!("{at}/notify"))).unwrap_or(false);
        let when = self.required(o, at, "when").and_then(|v| self.condition(v, &format!("{at}/when"), s));
        Some(Rule {
            id: RuleId(id?),
            description: description?,
            severity: severity?,
            action: action?,
            mode,
            status,
            notify,
            when: when?,
        })
    }

    fn condition(&mut self, v: &Value, at: &str, s: &Settings) -> Option<Condition> {
        let o = self.members(v, at, &CONDITIONS, "a condition")?;
        if o.len() != 1 {
            let keys: Vec<&str> = o.keys().map(String::as_str).collect();
            self.err(at, format!("a condition has exactly one key, found {}", keys.len()), Some(format!(
                "combine `{}` with `all` or `any`",
                keys.join("`, `")
            )));
            return None;
        }
        let (key, v) = o.iter().next()?;
        let at = format!("{at}/{key}");
        match key.as_str() {
            "all" | "any" => {
                let Some(list) = v.as_array().filter(|l| !l.is_empty()) else {
                    self.err(&at, format!("`{key}` expects a non-empty list of conditions"), None);
                    return None;
                };
                let parts: Vec<Option<Condition>> =
                    list.iter().enumerate().map(|(i, c)| self.condition(c, &format!("{at}/{i}"), s)).collect();
                let parts: Option<Vec<Condition>> = parts.into_iter().collect();
                parts.map(|p| if key == "all" { Condition::All(p) } else { Condition::Any(p) })
            }
            "not" => self.condition(v, &at, s).map(|c| Condition::Not(Box::new(c))),
            "method" => {
                let list = self.one_or_many(v, &at);
                for (i, m) in list.iter().enumerate() {
                    if !METHODS.contains(&m.to_ascii_uppercase().as_str()) {
                        let help = did_you_mean(m, &METHODS).map(|s| format!("did you mean `{s}`?"));
                        self.err(&indexed(&at, v, i), format!("unknown method `{m}`"), help);
                    }
                }
                Some(Condition::Method(list.iter().map(|m| m.to_ascii_uppercase()).collect()))
            }
            "resource_type" => {
                let list = self.one_or_many(v, &at);
                let known = ["Users", "Groups", "Me"];
                for (i, t) in list.iter().enumerate() {
                    let ok = known.iter().any(|k| k.eq_ignore_ascii_case(t)) || s.resource_types.iter().any(|k| k.eq_ignore_ascii_case(t));
                    if !ok {
                        let help = did_you_mean(t, &known).map(|s| format!("did you mean `{s}`?"));
                        self.err(&indexed(&at, v, i), format!("unknown resource type `{t}` (declare custom types in `scim.resource_types`)"), help);
                    }
                }
                Some(Condition::ResourceType(list))
            }
            "event" => {
                let list = self.one_or_many(v, &at);
                let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                let mut kinds = Vec::new();
                for (i, e) in list.iter().enumerate() {
                    match EventKind::parse(e) {
                        Some(k) => kinds.push(k),
                        None => {
                            let help = did_you_mean(e, &names).map(|s| format!("did you mean `{s}`?"));
                            self.err(&indexed(&at, v, i), format!("unknown lifecycle event `{e}`"), help);
                        }
                    }
                }
                Some(Condition::Event(kinds))
            }
            "change" => self.change(v, &at).map(Condition::Change),
            "privileged_group" => self.boolean(v, &at).map(Condition::PrivilegedGroup),
            "bulk" => self.boolean(v, &at).map(Condition::Bulk),
            "actor" => {
                if v.get("missing") == Some(&Value::Bool(true)) && v.as_object().is_some_and(|o| o.len() == 1) {
                    return Some(Condition::Actor(ActorTest::Missing));
                }
                self.value_test(v, &at).map(|t| Condition::Actor(ActorTest::Value(t)))
            }
            "count" => self.count_test(v, &at).map(Condition::Count),
            _ => None,
        }
    }

    fn change(&mut self, v: &Value, at: &str) -> Option<ChangeTest> {
        let o = self.members(v, at, &CHANGE, "`change`")?;
        let mut t = ChangeTest::default();
        if let Some(v) = o.get("op") {
            for (i, op) in self.one_or_many(v, &format!("{at}/op")).iter().enumerate() {
                match op.to_ascii_lowercase().as_str() {
                    "add" => t.ops.push(Op::Add),
                    "replace" => t.ops.push(Op::Replace),
                    "remove" => t.ops.push(Op::Remove),
                    _ => {
                        let help = did_you_mean(op, &["add", "replace", "remove"]).map(|s| format!("did you mean `{s}`?"));
                        self.err(&indexed(&format!("{at}/op"), v, i), format!("unknown op `{op}` (expected `add`, `replace` or `remove`)"), help);
                    }
                }
            }
        }
        if let Some(v) = o.get("attribute") {
            for (i, a) in self.one_or_many(v, &format!("{at}/attribute")).iter().enumerate() {
                match attribute::parse(a) {
                    Ok(r) if r.sub_attribute.is_none() => t.attributes.push(r.attribute),
                    Ok(_) => self.err(&indexed(&format!("{at}/attribute"), v, i), format!("`{a}` names a sub-attribute"), Some("put it in `sub_attribute`".into())),
                    Err(e) => self.err(&indexed(&format!("{at}/attribute"), v, i), e.detail, None),
                }
            }
        }
        if let Some(v) = o.get("attribute_matches") {
            let at = format!("{at}/attribute_matches");
            t.attribute_matches = self.string(v, &at).and_then(|p| self.regex(&p, &at));
        }
        if let Some(v) = o.get("sub_attribute") {
            t.sub_attributes = self.one_or_many(v, &format!("{at}/sub_attribute")).iter().map(|s| attribute::canonical_sub(s)).collect();
        }
        if let Some(v) = o.get("value") {
            t.value = self.value_test(v, &format!("{at}/value"));
        }
        if let Some(v) = o.get("flag") {
            if let Some(f) = self.choice(v, &format!("{at}/flag"), &FLAGS) {
                t.flag = Some(f.to_string());
            }
        }
        Some(t)
    }

    fn value_test(&mut self, v: &Value, at: &str) -> Option<ValueTest> {
        let o = self.members(v, at, &VALUE_TESTS, "a value test")?;
        if o.len() != 1 {
            self.err(at, "a value test has exactly one key", Some(format!("one of `{}`", VALUE_TESTS.join("`, `"))));
            return None;
        }
        let (key, v) = o.iter().next()?;
        let at = format!("{at}/{key}");
        let number = |c: &mut Self| match v.as_f64() {
            Some(n) => Some(n),
            None => {
                c.err(&at, format!("`{key}` expects a number"), None);
                None
            }
        };
        match key.as_str() {
            "equals" => Some(ValueTest::Equals(v.clone())),
            "any_of" => match v.as_array() {
                Some(l) => Some(ValueTest::AnyOf(l.clone())),
                None => {
                    self.err(&at, "`any_of` expects a list of values", None);
                    None
                }
            },
            "matches" => self.string(v, &at).and_then(|p| self.regex(&p, &at)).map(ValueTest::Matches),
            "is" => self.boolean(v, &at).map(ValueTest::Is),
            "gt" => number(self).map(ValueTest::Gt),
            "gte" => number(self).map(ValueTest::Gte),
            "lt" => number(self).map(ValueTest::Lt),
            "lte" => number(self).map(ValueTest::Lte),
            _ => None,
        }
    }

    fn count_test(&mut self, v: &Value, at: &str) -> Option<CountTest> {
        let o = self.members(v, at, &["of", "at_least"], "`count`")?;
        let mut names: Vec<&str> = Counted::NAMES.to_vec();
        names.extend(EventKind::ALL.iter().map(|k| k.as_str()));
        let of = match self.required(o, at, "of").and_then(|v| self.string(v, &format!("{at}/of"))) {
            Some(s) => match s.as_str() {
                "operations" => Some(Counted::Operations),
                "changes" => Some(Counted::Changes),
                "members_added" => Some(Counted::MembersAdded),
                "members_removed" => Some(Counted::MembersRemoved),
                other => match EventKind::parse(other) {
                    Some(k) => Some(Counted::Event(k)),
                    None => {
                        let help = did_you_mean(other, &names).map(|s| format!("did you mean `{s}`?"));
                        self.err(&format!("{at}/of"), format!("cannot count `{other}`"), help);
                        None
                    }
                },
            },
            None => None,
        };
        let at_least = self.required(o, at, "at_least").and_then(|v| self.count(v, &format!("{at}/at_least"), 1, usize::MAX));
        Some(CountTest { of: of?, at_least: at_least? })
    }

    // --- scalar helpers ---

    fn required<'v>(&mut self, o: &'v Map<String, Value>, at: &str, key: &str) -> Option<&'v Value> {
        let v = o.get(key);
        if v.is_none() {
            self.err(at, format!("missing field `{key}`"), None);
        }
        v
    }

    fn string(&mut self, v: &Value, at: &str) -> Option<String> {
        match v.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.err(at, "expected a string", None);
                None
            }
        }
    }

    fn boolean(&mut self, v: &Value, at: &str) -> Option<bool> {
        match v.as_bool() {
            Some(b) => Some(b),
            None => {
                self.err(at, "expected `true` or `false`", None);
                None
            }
        }
    }

    fn count(&mut self, v: &Value, at: &str, min: usize, max: usize) -> Option<usize> {
        match v.as_u64().and_then(|n| usize::try_from(n).ok()).filter(|n| (min..=max).contains(n)) {
            Some(n) => Some(n),
            None => {
                self.err(at, format!("expected a whole number from {min} to {max}"), None);
                None
            }
        }
    }

    fn status(&mut self, v: &Value, at: &str) -> Option<u16> {
        self.count(v, at, 400, 599).and_then(|n| u16::try_from(n).ok())
    }

    fn mode(&mut self, v: &Value, at: &str) -> Option<Mode> {
        match self.choice(v, at, &["enforce", "monitor"])? {
            "monitor" => Some(Mode::Monitor),
            _ => Some(Mode::Enforce),
        }
    }

    fn choice<'c>(&mut self, v: &Value, at: &str, choices: &[&'c str]) -> Option<&'c str> {
        let s = self.string(v, at)?;
        match choices.iter().find(|c| **c == s) {
            Some(c) => Some(c),
            None => {
                let help = did_you_mean(&s, choices).map(|c| format!("did you mean `{c}`?"));
                self.err(at, format!("`{s}` is not one of `{}`", choices.join("`, `")), help);
                None
            }
        }
    }

    fn strings(&mut self, v: &Value, at: &str) -> Vec<String> {
        match v.as_array() {
            Some(list) => list.iter().enumerate().filter_map(|(i, s)| self.string(s, &format!("{at}/{i}"))).collect(),
            None => {
                self.err(at, "expected a list of strings", None);
                Vec::new()
            }
        }
    }

    fn one_or_many(&mut self, v: &Value, at: &str) -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(_) => self.strings(v, at),
            _ => {
                self.err(at, "expected a string or a list of strings", None);
                Vec::new()
            }
        }
    }

    fn regex(&mut self, pattern: &str, at: &str) -> Option<Regex> {
        match Regex::new(pattern) {
            Ok(r) => Some(r),
            Err(e) => {
                let first = e.to_string().lines().last().unwrap_or_default().trim().to_string();
                self.err(at, format!("invalid regular expression `{pattern}`: {first}"), None);
                None
            }
        }
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The pointer of element `i` when `v` is a list, else of `v` itself.
fn indexed(at: &str, v: &Value, i: usize) -> String {
    if v.is_array() {
        format!("{at}/{i}")
    } else {
        at.to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn policy(sections: &str) -> String {
        format!(r#"{{"version": 1, "rules": [], {sections}}}"#)
    }

    fn errors(sections: &str) -> Vec<PolicyError> {
        compile(&policy(sections)).unwrap_err().0
    }

    #[test]
    fn the_envoy_sections_compile() {
        let p = compile(&policy(&format!(
            r#""audit": {{"format": "both", "collector": {{"cluster": "audit_collector", "path": "/v1/records", "batch_max": 10}}}},
               "notify": {{"cluster": "webhook_receiver", "path": "/hooks", "secret": "{SECRET}", "min_severity": "critical"}},
               "access": {{"actor_metadata": ["envoy.filters.http.jwt_authn", "jwt_payload", "sub"], "sample_rate": 0.25,
                          "routes": [{{"template": "/api/projects/{{id}}"}}, {{"prefix": "/api/"}}]}},
               "detections": {{"deprovision_storm": {{"max": 5, "window_secs": 60, "cooldown": 900}},
                              "actor_risk": {{"blocked_attempts": 3, "window_secs": 600, "action": "block"}}, "ops_route": "ops"}},
               "filter": {{"actor_metadata": ["envoy.filters.http.jwt_authn", "jwt_payload", "email"]}}"#
        )))
        .unwrap();
        let s = &p.settings;
        assert_eq!(s.audit.format, AuditFormat::Both);
        let c = s.audit.collector.as_ref().unwrap();
        assert_eq!((c.endpoint.cluster.as_str(), c.endpoint.authority.as_str(), c.delivery.batch_max), ("audit_collector", "audit-collector", 10));
        let n = s.notify.as_ref().unwrap();
        assert_eq!((n.min_severity, n.secret.expose().len(), n.delivery.batch_max), (Severity::Critical, 24, 1));
        assert!(s.access.enabled);
        assert_eq!(s.access.actor.metadata.as_ref().unwrap().len(), 3);
        assert_eq!(s.access.routes[0].route_of("/api/projects/42").as_deref(), Some("/api/projects/{id}"));
        assert_eq!(s.access.routes[0].route_of("/api/projects/42/x"), None);
        assert_eq!(s.access.routes[0].route_of("/api/projects/"), None);
        assert_eq!(s.access.routes[1].route_of("/api/x").as_deref(), Some("/api/*"));
        let storm = s.detections.deprovision_storm.unwrap();
        assert_eq!((storm.max, storm.status, storm.cooldown_secs, storm.action), (5, 429, Some(900), DetectionAction::Tag));
        assert_eq!(s.detections.actor_risk.unwrap().action, DetectionAction::Block);
        assert_eq!(s.filter.actor_metadata.as_ref().unwrap()[2], "email");
    }

    #[test]
    fn the_webhook_secret_is_never_echoed() {
        for secret in ["whsec_not base64 TOPSECRET", "TOPSECRETwithoutprefix", "whsec_VE9QU0VDUkVU"] {
            let errs = errors(&format!(r#""notify": {{"cluster": "w", "path": "/h", "secret": "{secret}"}}"#));
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert_eq!(errs[0].pointer, "/notify/secret");
            let text = format!("{errs:?} {}", PolicyErrors(errs.clone()));
            assert!(!text.contains("TOPSECRET") && !text.contains("VE9QU0VDUkVU"), "{text}");
        }
        let p = compile(&policy(&format!(r#""notify": {{"cluster": "w", "path": "/h", "secret": "{SECRET}"}}"#))).unwrap();
        assert!(!format!("{p:?}").contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
    }

    #[test]
    fn section_errors_have_places_and_hints() {
        let errs = errors(
            r#""audit": {"format": "ocfs", "collector": {"cluster": "c", "path": "/x", "batch_mx": 3}},
               "access": {"sample_rate": 2, "routes": [{"template": "/api/{id"}]},
               "detections": {"deprovision_storm": {"max": 0, "window_secs": 60}}"#,
        );
        let at: Vec<&str> = errs.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            at,
            [
                "/audit/format",
                "/audit/collector/batch_mx",
                "/access/sample_rate",
                "/access/routes/0/template",
                "/detections/deprovision_storm/max"
            ]
        );
        assert_eq!(errs[0].help.as_deref(), Some("did you mean `ocsf`?"));
        assert_eq!(errs[1].help.as_deref(), Some("did you mean `batch_max`?"));
        assert!(errs.iter().all(|e| e.line.is_some()));
    }

    #[test]
    fn detection_ids_are_reserved() {
        let errs = compile(
            r#"{"version": 1, "rules": [{"id": "detection.mine", "description": "d", "severity": "low", "action": "log", "when": {"bulk": true}}]}"#,
        )
        .unwrap_err()
        .0;
        assert!(errs[0].message.contains("reserved"), "{errs:?}");
    }
}
