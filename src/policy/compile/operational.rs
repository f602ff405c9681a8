//! The operational sections of a policy: `filter`, `audit`, `notify`, `access`, `detections`: how
//! judged writes are shipped, notified and counted, as opposed to how they are judged. Validated
//! like the rest (pointer, line, did-you-mean); nothing here is specific to Envoy.

use serde_json::{Map, Value};

use crate::policy::eval::Severity;
use crate::policy::settings::{
    AccessSettings, ActorRiskSettings, ActorSource, AuditFormat, AuditSettings, ClusterEndpoint,
    CollectorSettings, Delivery, DetectionAction, DetectionSettings, FilterSettings,
    FleetDetection, NotifySettings, RouteTemplate, SecretSource, Segment, StormSettings,
    WebhookSecret,
};
use crate::scim::EventKind;

use super::{Compiler, Field};

const ENDPOINT: [&str; 4] = ["cluster", "path", "authority", "timeout_ms"];
const DELIVERY: [&str; 6] = [
    "batch_max",
    "flush_interval_ms",
    "queue_max",
    "max_retries",
    "backoff_initial_ms",
    "backoff_max_ms",
];

impl Compiler<'_> {
    pub(super) fn filter(&mut self, v: &Value) -> FilterSettings {
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
        let Some(o) = self.members(v, "/filter", &keys, "`filter`") else {
            return f;
        };
        if let Some(s) = o
            .field("audit_property")
            .and_then(|v| self.string(v, "/filter/audit_property"))
        {
            if s.is_empty()
                || !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            {
                self.err(
                    "/filter/audit_property",
                    "expected a filter-state key of letters, digits, `_` and `.`",
                    None,
                );
            }
            f.audit_property = s;
        }
        if let Some(b) = o
            .field("audit_to_log")
            .and_then(|v| self.boolean(v, "/filter/audit_to_log"))
        {
            f.audit_to_log = b;
        }
        f.lookup_cluster = o
            .field("lookup_cluster")
            .and_then(|v| self.string(v, "/filter/lookup_cluster"));
        if let Some(s) = o
            .field("lookup_base_path")
            .and_then(|v| self.string(v, "/filter/lookup_base_path"))
        {
            f.lookup_base_path = s.trim_end_matches('/').to_string();
        }
        if let Some(s) = o
            .field("lookup_authority")
            .and_then(|v| self.string(v, "/filter/lookup_authority"))
        {
            f.lookup_authority = s;
        }
        if let Some(n) = o
            .field("lookup_timeout_ms")
            .and_then(|v| self.count(v, "/filter/lookup_timeout_ms", 1, 60_000))
        {
            f.lookup_timeout_ms = n as u64;
        }
        if let Some(n) = o
            .field("group_name_ttl_secs")
            .and_then(|v| self.count(v, "/filter/group_name_ttl_secs", 1, 30 * 86_400))
        {
            f.group_name_ttl_secs = n as u64;
        }
        f.actor_metadata = o
            .field("actor_metadata")
            .and_then(|v| self.metadata_path(v, "/filter/actor_metadata"));
        f
    }

    pub(super) fn audit(&mut self, v: &Value) -> AuditSettings {
        let mut a = AuditSettings::default();
        let keys = ["format", "collector", "max_record_bytes"];
        let Some(o) = self.members(v, "/audit", &keys, "`audit`") else {
            return a;
        };
        if let Some(v) = o.field("max_record_bytes") {
            let (min, max) = (
                AuditSettings::MIN_MAX_RECORD_BYTES,
                AuditSettings::MAX_MAX_RECORD_BYTES,
            );
            match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
                Some(n) if (min..=max).contains(&n) => a.max_record_bytes = n,
                _ => self.err(
                    "/audit/max_record_bytes",
                    format!("expected the longest audit line in bytes, a whole number from {min} to {max}"),
                    Some(format!(
                        "the default is {}; log shippers often cut lines at 16 KiB to 256 KiB",
                        AuditSettings::DEFAULT_MAX_RECORD_BYTES
                    )),
                ),
            }
        }
        if let Some(v) = o.field("format") {
            a.format = match self.choice(v, "/audit/format", &["scimguard", "ocsf", "both"]) {
                Some("ocsf") => AuditFormat::Ocsf,
                Some("both") => AuditFormat::Both,
                _ => AuditFormat::Scimguard,
            };
        }
        if let Some(v) = o.field("collector") {
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

    pub(super) fn notify(&mut self, v: &Value) -> Option<NotifySettings> {
        let mut keys = ENDPOINT.to_vec();
        keys.extend(DELIVERY);
        keys.extend(["secret", "secret_env", "min_severity"]);
        let o = self.members(v, "/notify", &keys, "`notify`")?;
        let endpoint = self.endpoint(o, "/notify", "webhook-receiver");
        let defaults = Delivery {
            batch_max: 1,
            flush_interval_ms: 200,
            queue_max: 1000,
            ..Delivery::default()
        };
        let delivery = self.delivery(o, "/notify", defaults);
        if delivery.batch_max != 1 {
            self.err(
                "/notify/batch_max",
                "webhooks carry one event per POST: expected `1`",
                None,
            );
        }
        let secret = match (o.field("secret"), o.field("secret_env")) {
            (Some(v), None) => self.secret(v, "/notify/secret").map(SecretSource::Key),
            (None, Some(v)) => self
                .env_name(v, "/notify/secret_env")
                .map(SecretSource::Env),
            (Some(_), Some(_)) => {
                self.err("/notify", "give `secret` or `secret_env`, not both", None);
                None
            }
            (None, None) => {
                self.err("/notify", "missing field `secret` (or `secret_env`, the name of an environment variable holding it)", None);
                None
            }
        };
        let min_severity = match o.field("min_severity") {
            Some(v) => self
                .choice(v, "/notify/min_severity", &Severity::NAMES)
                .and_then(Severity::parse),
            None => Some(Severity::High),
        };
        Some(NotifySettings {
            endpoint: endpoint?,
            delivery,
            secret: secret?,
            min_severity: min_severity?,
        })
    }

    /// The name of an environment variable (letters, digits, `_`; not starting with a digit).
    #[inline(never)]
    fn env_name(&mut self, v: &Value, at: &str) -> Option<String> {
        let name = self.string(v, at)?;
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            self.err(
                at,
                format!("`{name}` is not an environment variable name"),
                None,
            );
            return None;
        }
        Some(name)
    }

    /// A Standard Webhooks key: `whsec_` + base64. Messages never show the value.
    fn secret(&mut self, v: &Value, at: &str) -> Option<WebhookSecret> {
        use base64::Engine as _;
        let Some(text) = v.as_str() else {
            self.err(
                at,
                "expected a string `whsec_<base64>` (the value is not shown)",
                None,
            );
            return None;
        };
        let Some(b64) = text.strip_prefix("whsec_") else {
            self.err(
                at,
                "expected `whsec_` followed by the base64 key (the value is not shown)",
                None,
            );
            return None;
        };
        let decoded = base64::engine::general_purpose::STANDARD.decode(b64);
        match decoded.or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64)) {
            Ok(key) if (16..=512).contains(&key.len()) => Some(WebhookSecret::new(key)),
            Ok(_) => {
                self.err(
                    at,
                    "the webhook key must decode to 16 to 512 bytes (the value is not shown)",
                    None,
                );
                None
            }
            Err(_) => {
                self.err(
                    at,
                    "the part after `whsec_` is not valid base64 (the value is not shown)",
                    None,
                );
                None
            }
        }
    }

    fn endpoint(
        &mut self,
        o: &Map<String, Value>,
        at: &str,
        authority: &str,
    ) -> Option<ClusterEndpoint> {
        let cluster = self
            .required(o, at, "cluster")
            .and_then(|v| self.string(v, &format!("{at}/cluster")));
        if let Some(c) = &cluster {
            if c.is_empty() || c.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
                self.err(
                    &format!("{at}/cluster"),
                    "expected the name of an Envoy cluster (no spaces)",
                    None,
                );
            }
        }
        let path = self
            .required(o, at, "path")
            .and_then(|v| self.string(v, &format!("{at}/path")));
        if let Some(p) = &path {
            if !p.starts_with('/') || p.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
                self.err(
                    &format!("{at}/path"),
                    format!("`{p}` must be an absolute path such as `/v1/records`"),
                    None,
                );
            }
        }
        let authority = match o.field("authority") {
            Some(v) => self.string(v, &format!("{at}/authority")),
            None => Some(authority.to_string()),
        };
        if let Some(a) = &authority {
            if a.is_empty() || a.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
                self.err(
                    &format!("{at}/authority"),
                    "expected a host name for `:authority`",
                    None,
                );
            }
        }
        let timeout_ms = match o.field("timeout_ms") {
            Some(v) => self
                .count(v, &format!("{at}/timeout_ms"), 1, 60_000)
                .map(|n| n as u64),
            None => Some(2000),
        };
        Some(ClusterEndpoint {
            cluster: cluster?,
            path: path?,
            authority: authority?,
            timeout_ms: timeout_ms?,
        })
    }

    fn delivery(&mut self, o: &Map<String, Value>, at: &str, mut d: Delivery) -> Delivery {
        if let Some(n) = o
            .field("batch_max")
            .and_then(|v| self.count(v, &format!("{at}/batch_max"), 1, 10_000))
        {
            d.batch_max = n;
        }
        if let Some(n) = o
            .field("flush_interval_ms")
            .and_then(|v| self.count(v, &format!("{at}/flush_interval_ms"), 10, 600_000))
        {
            d.flush_interval_ms = n as u64;
        }
        if let Some(n) = o
            .field("queue_max")
            .and_then(|v| self.count(v, &format!("{at}/queue_max"), 1, 1_000_000))
        {
            d.queue_max = n;
        }
        if let Some(n) = o
            .field("max_retries")
            .and_then(|v| self.count(v, &format!("{at}/max_retries"), 0, 100))
        {
            d.max_retries = u32::try_from(n).unwrap_or(100);
        }
        if let Some(n) = o
            .field("backoff_initial_ms")
            .and_then(|v| self.count(v, &format!("{at}/backoff_initial_ms"), 1, 3_600_000))
        {
            d.backoff_initial_ms = n as u64;
        }
        if let Some(n) = o
            .field("backoff_max_ms")
            .and_then(|v| self.count(v, &format!("{at}/backoff_max_ms"), 1, 3_600_000))
        {
            d.backoff_max_ms = n as u64;
        }
        if d.backoff_max_ms < d.backoff_initial_ms {
            self.err(
                &format!("{at}/backoff_max_ms"),
                "must be at least `backoff_initial_ms`",
                None,
            );
        }
        if d.queue_max < d.batch_max {
            self.err(
                &format!("{at}/queue_max"),
                "must be at least `batch_max`",
                None,
            );
        }
        d
    }

    pub(super) fn access(
        &mut self,
        v: &Value,
        policy_actor_header: Option<&str>,
    ) -> AccessSettings {
        let keys = [
            "enabled",
            "actor_header",
            "actor_metadata",
            "sample_rate",
            "routes",
        ];
        let mut a = AccessSettings {
            sample_rate: 1.0,
            ..AccessSettings::default()
        };
        let Some(o) = self.members(v, "/access", &keys, "`access`") else {
            return a;
        };
        a.enabled = o
            .field("enabled")
            .and_then(|v| self.boolean(v, "/access/enabled"))
            .unwrap_or(true);
        a.actor = ActorSource {
            metadata: o
                .field("actor_metadata")
                .and_then(|v| self.metadata_path(v, "/access/actor_metadata")),
            header: match o.field("actor_header") {
                Some(v) => self.header_name(v, "/access/actor_header"),
                None => policy_actor_header.map(str::to_string),
            },
        };
        if let Some(v) = o.field("sample_rate") {
            match v.as_f64().filter(|r| (0.0..=1.0).contains(r)) {
                Some(r) => a.sample_rate = r,
                None => self.err("/access/sample_rate", "expected a number from 0 to 1", None),
            }
        }
        if let Some(v) = o.field("routes") {
            match v.as_array() {
                Some(list) => {
                    a.routes = list
                        .iter()
                        .enumerate()
                        .filter_map(|(i, r)| self.route(r, &format!("/access/routes/{i}")))
                        .collect();
                }
                None => self.err("/access/routes", "expected a list of routes", None),
            }
        }
        a
    }

    fn route(&mut self, v: &Value, at: &str) -> Option<RouteTemplate> {
        let o = self.members(v, at, &["template", "prefix"], "a route")?;
        match (o.field("template"), o.field("prefix")) {
            (Some(t), None) => {
                let at = format!("{at}/template");
                let t = self.string(t, &at)?;
                let segments = self.template(&t, &at)?;
                Some(RouteTemplate::Template {
                    template: t,
                    segments,
                })
            }
            (None, Some(p)) => {
                let p = self.string(p, &format!("{at}/prefix"))?;
                if !p.starts_with('/') {
                    self.err(
                        &format!("{at}/prefix"),
                        format!("`{p}` must be an absolute path prefix such as `/api/`"),
                        None,
                    );
                }
                Some(RouteTemplate::Prefix(p))
            }
            _ => {
                self.err(
                    at,
                    "a route has exactly one of `template` or `prefix`",
                    None,
                );
                None
            }
        }
    }

    #[inline(never)]
    fn template(&mut self, t: &str, at: &str) -> Option<Vec<Segment>> {
        let Some(rest) = t.strip_prefix('/') else {
            self.err(
                at,
                format!("`{t}` must be an absolute path such as `/api/projects/{{id}}`"),
                None,
            );
            return None;
        };
        let mut segments = Vec::new();
        for part in rest.split('/') {
            let param = part.len() > 2 && part.starts_with('{') && part.ends_with('}');
            if param {
                segments.push(Segment::Param);
            } else if part.contains(['{', '}', '?', '#', '*']) {
                self.err(
                    at,
                    format!("`{t}`: a segment is a literal or a whole `{{name}}`"),
                    None,
                );
                return None;
            } else {
                segments.push(Segment::Literal(part.to_string()));
            }
        }
        Some(segments)
    }

    #[inline(never)]
    fn header_name(&mut self, v: &Value, at: &str) -> Option<String> {
        let h = self.string(v, at)?;
        if h.is_empty()
            || !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            self.err(at, format!("`{h}` is not a header name"), None);
            return None;
        }
        Some(h.to_ascii_lowercase())
    }

    /// A path under `metadata.filter_metadata`: namespace, then keys down to the value.
    #[inline(never)]
    fn metadata_path(&mut self, v: &Value, at: &str) -> Option<Vec<String>> {
        if !v.is_array() {
            self.err(
                at,
                "expected a list of names: the filter namespace, then the keys down to the value",
                None,
            );
            return None;
        }
        let path = self.strings(v, at);
        if path.len() < 2 || path.len() > 8 || path.iter().any(String::is_empty) {
            let help = Some(
                "e.g. `[\"envoy.filters.http.jwt_authn\", \"jwt_payload\", \"sub\"]`".to_string(),
            );
            self.err(at, "expected 2 to 8 non-empty names: the filter namespace, then the keys down to the value", help);
            return None;
        }
        Some(path)
    }

    pub(super) fn detections(&mut self, v: &Value) -> DetectionSettings {
        let mut d = DetectionSettings::default();
        let keys = ["deprovision_storm", "actor_risk", "ops_route", "fleet"];
        let Some(o) = self.members(v, "/detections", &keys, "`detections`") else {
            return d;
        };
        if let Some(v) = o.field("deprovision_storm") {
            d.deprovision_storm = self.storm(v, "/detections/deprovision_storm");
        }
        if let Some(v) = o.field("actor_risk") {
            d.actor_risk = self.actor_risk(v, "/detections/actor_risk");
        }
        d.ops_route = o
            .field("ops_route")
            .and_then(|v| self.string(v, "/detections/ops_route"));
        if let Some(v) = o.field("fleet") {
            d.fleet = self.fleet(v, "/detections/fleet");
        }
        d
    }

    /// `detections.fleet`: a list of fleet detections, names and descriptors unique.
    fn fleet(&mut self, v: &Value, at: &str) -> Vec<FleetDetection> {
        let Some(list) = v.as_array() else {
            self.err(at, "expected a list of fleet detections", None);
            return Vec::new();
        };
        let mut out: Vec<FleetDetection> = Vec::new();
        for (i, v) in list.iter().enumerate() {
            let at = format!("{at}/{i}");
            let Some(f) = self.fleet_one(v, &at) else {
                continue;
            };
            if out.iter().any(|o| o.name == f.name) {
                self.err(
                    &format!("{at}/name"),
                    format!("`{}` is declared twice", f.name),
                    None,
                );
            } else if out.iter().any(|o| o.descriptor == f.descriptor) {
                let msg = format!("descriptor `{}` is used twice", f.descriptor);
                self.err(&format!("{at}/descriptor"), msg, None);
            } else {
                out.push(f);
            }
        }
        out
    }

    fn fleet_one(&mut self, v: &Value, at: &str) -> Option<FleetDetection> {
        let o = self.members(
            v,
            at,
            &["name", "events", "descriptor"],
            "a fleet detection",
        )?;
        let name = self.required(o, at, "name").and_then(|v| {
            let at = format!("{at}/name");
            self.token(v, &at, |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
            })
        });
        let descriptor = self.required(o, at, "descriptor").and_then(|v| {
            let at = format!("{at}/descriptor");
            self.token(v, &at, |c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        });
        let events = self
            .required(o, at, "events")
            .and_then(|v| self.fleet_events(v, &format!("{at}/events")));
        Some(FleetDetection {
            name: name?,
            events: events?,
            descriptor: descriptor?,
        })
    }

    /// A non-empty string of at most 64 characters, each allowed by `ok`.
    fn token(&mut self, v: &Value, at: &str, ok: impl Fn(char) -> bool) -> Option<String> {
        let s = self.string(v, at)?;
        if s.is_empty() || s.len() > 64 || !s.chars().all(ok) {
            let msg = format!("`{s}` is not a valid name here (1 to 64 of a-z, 0-9, `_`; descriptors also A-Z, `.`, `-`)");
            self.err(at, msg, None);
            return None;
        }
        Some(s)
    }

    fn fleet_events(&mut self, v: &Value, at: &str) -> Option<Vec<EventKind>> {
        let names = self.strings(v, at);
        if names.is_empty() {
            self.err(at, "expected a non-empty list of event types", None);
            return None;
        }
        let all: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        let mut kinds = Vec::new();
        for (i, n) in names.iter().enumerate() {
            match EventKind::parse(n) {
                Some(k) => kinds.push(k),
                None => {
                    let v = Value::String(n.clone());
                    self.choice(&v, &format!("{at}/{i}"), &all);
                }
            }
        }
        (kinds.len() == names.len()).then_some(kinds)
    }

    fn storm(&mut self, v: &Value, at: &str) -> Option<StormSettings> {
        let o = self.members(
            v,
            at,
            &["max", "window_secs", "action", "status", "cooldown"],
            "`deprovision_storm`",
        )?;
        let max = self
            .required(o, at, "max")
            .and_then(|v| self.count(v, &format!("{at}/max"), 1, 1_000_000));
        let window = self
            .required(o, at, "window_secs")
            .and_then(|v| self.count(v, &format!("{at}/window_secs"), 1, 86_400));
        let action = self.detection_action(o, at);
        let status = match o.field("status") {
            Some(v) => self.status(v, &format!("{at}/status")),
            None => Some(429),
        };
        let cooldown_secs = match o.field("cooldown") {
            None => Some(None),
            Some(Value::String(s)) if s == "until_cleared" => Some(None),
            Some(v) => match v.as_u64().filter(|n| (1..=7 * 86_400).contains(n)) {
                Some(n) => Some(Some(n)),
                None => {
                    self.err(
                        &format!("{at}/cooldown"),
                        "expected `until_cleared` or a number of seconds from 1 to 604800",
                        None,
                    );
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
        let o = self.members(
            v,
            at,
            &["blocked_attempts", "window_secs", "action"],
            "`actor_risk`",
        )?;
        let n = self
            .required(o, at, "blocked_attempts")
            .and_then(|v| self.count(v, &format!("{at}/blocked_attempts"), 1, 1_000_000));
        let window = self
            .required(o, at, "window_secs")
            .and_then(|v| self.count(v, &format!("{at}/window_secs"), 1, 30 * 86_400));
        let action = self.detection_action(o, at);
        Some(ActorRiskSettings {
            blocked_attempts: n? as u64,
            window_secs: window? as u64,
            action: action?,
        })
    }

    fn detection_action(&mut self, o: &Map<String, Value>, at: &str) -> Option<DetectionAction> {
        let Some(v) = o.field("action") else {
            return Some(DetectionAction::Tag);
        };
        match self.choice(v, &format!("{at}/action"), &["block", "tag"])? {
            "block" => Some(DetectionAction::Block),
            _ => Some(DetectionAction::Tag),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::super::*;
    use crate::policy::settings::{AuditFormat, DetectionAction, SecretSource};
    use crate::policy::Severity;

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
        assert_eq!(
            (
                c.endpoint.cluster.as_str(),
                c.endpoint.authority.as_str(),
                c.delivery.batch_max
            ),
            ("audit_collector", "audit-collector", 10)
        );
        let n = s.notify.as_ref().unwrap();
        assert_eq!(
            (
                n.min_severity,
                match &n.secret {
                    SecretSource::Key(k) => k.expose().len(),
                    SecretSource::Env(_) => 0,
                },
                n.delivery.batch_max
            ),
            (Severity::Critical, 24, 1)
        );
        assert!(s.access.enabled);
        assert_eq!(s.access.actor.metadata.as_ref().unwrap().len(), 3);
        assert_eq!(
            s.access.routes[0].route_of("/api/projects/42").as_deref(),
            Some("/api/projects/{id}")
        );
        assert_eq!(s.access.routes[0].route_of("/api/projects/42/x"), None);
        assert_eq!(s.access.routes[0].route_of("/api/projects/"), None);
        assert_eq!(
            s.access.routes[1].route_of("/api/x").as_deref(),
            Some("/api/*")
        );
        let storm = s.detections.deprovision_storm.unwrap();
        assert_eq!(
            (storm.max, storm.status, storm.cooldown_secs, storm.action),
            (5, 429, Some(900), DetectionAction::Tag)
        );
        assert_eq!(
            s.detections.actor_risk.unwrap().action,
            DetectionAction::Block
        );
        assert_eq!(s.filter.actor_metadata.as_ref().unwrap()[2], "email");
    }

    #[test]
    fn the_webhook_secret_is_never_echoed() {
        for secret in [
            "whsec_not base64 TOPSECRET",
            "TOPSECRETwithoutprefix",
            "whsec_VE9QU0VDUkVU",
        ] {
            let errs = errors(&format!(
                r#""notify": {{"cluster": "w", "path": "/h", "secret": "{secret}"}}"#
            ));
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert_eq!(errs[0].pointer, "/notify/secret");
            let text = format!("{errs:?} {}", PolicyErrors(errs.clone()));
            assert!(
                !text.contains("TOPSECRET") && !text.contains("VE9QU0VDUkVU"),
                "{text}"
            );
        }
        let p = compile(&policy(&format!(
            r#""notify": {{"cluster": "w", "path": "/h", "secret": "{SECRET}"}}"#
        )))
        .unwrap();
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
    fn fleet_detections_compile_and_errors_name_the_field() {
        let p = compile(&policy(
            r#""detections": {"fleet": [{"name": "deprovision_storm", "events": ["user_deprovisioned", "user_deleted"], "descriptor": "deprovision"}]}"#,
        ))
        .unwrap();
        let f = &p.settings.detections.fleet[0];
        assert_eq!(
            (f.name.as_str(), f.descriptor.as_str(), f.events.len()),
            ("deprovision_storm", "deprovision", 2)
        );
        let errs = errors(
            r#""detections": {"fleet": [
                 {"name": "a", "events": ["user_deprovisoned"], "descriptor": "d"},
                 {"name": "Bad Name", "events": [], "descriptor": "d e"},
                 {"name": "b", "events": ["user_deleted"], "descriptor": "x", "limit": 5},
                 {"name": "c", "events": ["user_deleted"], "descriptor": "z"},
                 {"name": "c", "events": ["user_deleted"], "descriptor": "y"}]}"#,
        );
        let at: Vec<&str> = errs.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            at,
            [
                "/detections/fleet/0/events/0",
                "/detections/fleet/1/name",
                "/detections/fleet/1/descriptor",
                "/detections/fleet/1/events",
                "/detections/fleet/2/limit",
                "/detections/fleet/4/name",
            ],
            "{errs:?}"
        );
        assert_eq!(
            errs[0].help.as_deref(),
            Some("did you mean `user_deprovisioned`?")
        );
        assert!(errs.iter().all(|e| e.line.is_some()));
        let dup = errors(
            r#""detections": {"fleet": [{"name": "a", "events": ["user_deleted"], "descriptor": "x"},
                                         {"name": "b", "events": ["user_deleted"], "descriptor": "x"}]}"#,
        );
        assert_eq!(dup[0].pointer, "/detections/fleet/1/descriptor");
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

    #[test]
    fn the_webhook_key_can_come_from_the_environment() {
        let p = compile(&policy(
            r#""notify": {"cluster": "w", "path": "/h", "secret_env": "SCIMGUARD_WEBHOOK_SECRET"}"#,
        ))
        .unwrap();
        let n = p.settings.notify.as_ref().unwrap();
        assert_eq!(
            n.secret,
            SecretSource::Env("SCIMGUARD_WEBHOOK_SECRET".into())
        );
        let both = errors(&format!(
            r#""notify": {{"cluster": "w", "path": "/h", "secret": "{SECRET}", "secret_env": "X"}}"#
        ));
        assert!(
            both.iter().any(|e| e.message.contains("not both")),
            "{both:?}"
        );
        let bad = errors(r#""notify": {"cluster": "w", "path": "/h", "secret_env": "1 bad"}"#);
        assert!(
            bad.iter().any(|e| e.pointer == "/notify/secret_env"),
            "{bad:?}"
        );
    }
}
