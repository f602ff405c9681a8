//! The operational sections of a policy: `filter`, `audit`, `notify`, `access`, `detections`: how
//! judged writes are shipped, notified and counted, as opposed to how they are judged. Validated
//! like the rest (pointer, line, did-you-mean); nothing here is specific to Envoy.
//!
//! Each section is a table of [`Setting`]s, and a setting's key is written once, in its table: the
//! section's known keys (and so the did-you-mean for a misspelt one), the setting's pointer
//! (`{section}/{key}`) and its "missing field" message all derive from it. Checks across settings
//! name the others through their table entries (`BACKOFF_MAX.key`), not by spelling them again.

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

/// One setting of a section: its key, whether the section must have it, and how its value is
/// read into the section's `T` (`at` is the setting's pointer).
struct Setting<T> {
    key: &'static str,
    required: bool,
    read: Read<T>,
}

/// Reads a setting's value (at the pointer given) into its section; an invalid value is an error.
type Read<T> = fn(&mut Compiler<'_>, &Value, &str, &mut T);

impl<T> Setting<T> {
    const fn optional(key: &'static str, read: Read<T>) -> Self {
        Setting {
            key,
            required: false,
            read,
        }
    }

    const fn required(key: &'static str, read: Read<T>) -> Self {
        Setting {
            key,
            required: true,
            read,
        }
    }
}

/// The keys of a table, for a section's known-key list.
fn keys<T>(table: &[Setting<T>]) -> impl Iterator<Item = &'static str> + '_ {
    table.iter().map(|s| s.key)
}

/// Stores a value that was read; a value that was not is already an error.
fn put<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

const FILTER: [Setting<FilterSettings>; 8] = [
    Setting::optional("audit_property", |c, v, at, f| {
        put(&mut f.audit_property, c.filter_state_key(v, at));
    }),
    Setting::optional("audit_to_log", |c, v, at, f| {
        put(&mut f.audit_to_log, c.boolean(v, at));
    }),
    Setting::optional("lookup_cluster", |c, v, at, f| {
        f.lookup_cluster = c.string(v, at);
    }),
    Setting::optional("lookup_base_path", |c, v, at, f| {
        let path = c.string(v, at).map(|s| s.trim_end_matches('/').to_string());
        put(&mut f.lookup_base_path, path);
    }),
    Setting::optional("lookup_authority", |c, v, at, f| {
        put(&mut f.lookup_authority, c.string(v, at));
    }),
    Setting::optional("lookup_timeout_ms", |c, v, at, f| {
        put(
            &mut f.lookup_timeout_ms,
            c.count(v, at, 1, 60_000).map(|n| n as u64),
        );
    }),
    Setting::optional("group_name_ttl_secs", |c, v, at, f| {
        let ttl = c.count(v, at, 1, 30 * 86_400).map(|n| n as u64);
        put(&mut f.group_name_ttl_secs, ttl);
    }),
    Setting::optional("actor_metadata", |c, v, at, f| {
        f.actor_metadata = c.metadata_path(v, at);
    }),
];

const AUDIT: [Setting<AuditSettings>; 3] = [
    Setting::optional("max_record_bytes", |c, v, at, a| {
        put(&mut a.max_record_bytes, c.max_record_bytes(v, at));
    }),
    Setting::optional("format", |c, v, at, a| {
        a.format = match c.choice(v, at, &["scimguard", "ocsf", "both"]) {
            Some("ocsf") => AuditFormat::Ocsf,
            Some("both") => AuditFormat::Both,
            _ => AuditFormat::Scimguard,
        };
    }),
    Setting::optional("collector", |c, v, at, a| a.collector = c.collector(v, at)),
];

/// Where records or notifications are POSTed: part of `audit.collector` and of `notify`.
const ENDPOINT: [Setting<ClusterEndpoint>; 4] = [
    Setting::required("cluster", |c, v, at, e| {
        put(
            &mut e.cluster,
            c.name_without_spaces(v, at, "expected the name of an Envoy cluster (no spaces)"),
        );
    }),
    Setting::required("path", |c, v, at, e| {
        put(&mut e.path, c.absolute_path(v, at))
    }),
    Setting::optional("authority", |c, v, at, e| {
        put(
            &mut e.authority,
            c.name_without_spaces(v, at, "expected a host name for `:authority`"),
        );
    }),
    Setting::optional("timeout_ms", |c, v, at, e| {
        put(
            &mut e.timeout_ms,
            c.count(v, at, 1, 60_000).map(|n| n as u64),
        );
    }),
];

const BATCH_MAX: Setting<Delivery> = Setting::optional("batch_max", |c, v, at, d| {
    put(&mut d.batch_max, c.count(v, at, 1, 10_000));
});
const QUEUE_MAX: Setting<Delivery> = Setting::optional("queue_max", |c, v, at, d| {
    put(&mut d.queue_max, c.count(v, at, 1, 1_000_000));
});
const BACKOFF_INITIAL: Setting<Delivery> =
    Setting::optional("backoff_initial_ms", |c, v, at, d| {
        put(
            &mut d.backoff_initial_ms,
            c.count(v, at, 1, 3_600_000).map(|n| n as u64),
        );
    });
const BACKOFF_MAX: Setting<Delivery> = Setting::optional("backoff_max_ms", |c, v, at, d| {
    put(
        &mut d.backoff_max_ms,
        c.count(v, at, 1, 3_600_000).map(|n| n as u64),
    );
});

/// How a queue of records or notifications is delivered: part of `audit.collector` and `notify`.
const DELIVERY: [Setting<Delivery>; 6] = [
    BATCH_MAX,
    Setting::optional("flush_interval_ms", |c, v, at, d| {
        put(
            &mut d.flush_interval_ms,
            c.count(v, at, 10, 600_000).map(|n| n as u64),
        );
    }),
    QUEUE_MAX,
    Setting::optional("max_retries", |c, v, at, d| {
        let n = c
            .count(v, at, 0, 100)
            .map(|n| u32::try_from(n).unwrap_or(100));
        put(&mut d.max_retries, n);
    }),
    BACKOFF_INITIAL,
    BACKOFF_MAX,
];

/// `notify`'s own settings as read (each `Some` when present, holding `None` when invalid), before
/// the check that exactly one source of the key is given.
struct NotifyRead {
    secret: Option<Option<WebhookSecret>>,
    secret_env: Option<Option<String>>,
    min_severity: Severity,
}

const SECRET: Setting<NotifyRead> = Setting::optional("secret", |c, v, at, n| {
    n.secret = Some(c.secret(v, at));
});
const SECRET_ENV: Setting<NotifyRead> = Setting::optional("secret_env", |c, v, at, n| {
    n.secret_env = Some(c.env_name(v, at));
});
const NOTIFY: [Setting<NotifyRead>; 3] = [
    SECRET,
    SECRET_ENV,
    Setting::optional("min_severity", |c, v, at, n| {
        let severity = c.choice(v, at, &Severity::NAMES).and_then(Severity::parse);
        put(&mut n.min_severity, severity);
    }),
];

const ACCESS: [Setting<AccessSettings>; 5] = [
    Setting::optional("enabled", |c, v, at, a| {
        put(&mut a.enabled, c.boolean(v, at))
    }),
    Setting::optional("actor_metadata", |c, v, at, a| {
        a.actor.metadata = c.metadata_path(v, at);
    }),
    Setting::optional("actor_header", |c, v, at, a| {
        a.actor.header = c.header_name(v, at);
    }),
    Setting::optional("sample_rate", |c, v, at, a| {
        match v.as_f64().filter(|r| (0.0..=1.0).contains(r)) {
            Some(r) => a.sample_rate = r,
            None => c.err(at, "expected a number from 0 to 1", None),
        }
    }),
    Setting::optional("routes", |c, v, at, a| a.routes = c.routes(v, at)),
];

/// The forms an `access.routes` entry gives, each as read (`None`: invalid); one is expected.
const ROUTE: [Setting<Vec<Option<RouteTemplate>>>; 2] = [
    Setting::optional("template", |c, v, at, forms| {
        forms.push(c.route_template(v, at))
    }),
    Setting::optional("prefix", |c, v, at, forms| {
        forms.push(c.route_prefix(v, at))
    }),
];

const DETECTIONS: [Setting<DetectionSettings>; 4] = [
    Setting::optional("deprovision_storm", |c, v, at, d| {
        d.deprovision_storm = c.storm(v, at);
    }),
    Setting::optional("actor_risk", |c, v, at, d| {
        d.actor_risk = c.actor_risk(v, at)
    }),
    Setting::optional("ops_route", |c, v, at, d| d.ops_route = c.string(v, at)),
    Setting::optional("fleet", |c, v, at, d| d.fleet = c.fleet(v, at)),
];

const STORM: [Setting<StormSettings>; 5] = [
    Setting::required("max", |c, v, at, s| {
        put(&mut s.max, c.count(v, at, 1, 1_000_000).map(|n| n as u64));
    }),
    Setting::required("window_secs", |c, v, at, s| {
        put(
            &mut s.window_secs,
            c.count(v, at, 1, 86_400).map(|n| n as u64),
        );
    }),
    Setting::optional("action", |c, v, at, s| {
        put(&mut s.action, c.detection_action(v, at))
    }),
    Setting::optional("status", |c, v, at, s| put(&mut s.status, c.status(v, at))),
    Setting::optional("cooldown", |c, v, at, s| {
        put(&mut s.cooldown_secs, c.cooldown(v, at))
    }),
];

const ACTOR_RISK: [Setting<ActorRiskSettings>; 3] = [
    Setting::required("blocked_attempts", |c, v, at, r| {
        put(
            &mut r.blocked_attempts,
            c.count(v, at, 1, 1_000_000).map(|n| n as u64),
        );
    }),
    Setting::required("window_secs", |c, v, at, r| {
        put(
            &mut r.window_secs,
            c.count(v, at, 1, 30 * 86_400).map(|n| n as u64),
        );
    }),
    Setting::optional("action", |c, v, at, r| {
        put(&mut r.action, c.detection_action(v, at))
    }),
];

const FLEET_NAME: Setting<FleetDetection> = Setting::required("name", |c, v, at, f| {
    let name = c.token(v, at, |ch| {
        ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'
    });
    put(&mut f.name, name);
});
const FLEET_DESCRIPTOR: Setting<FleetDetection> = Setting::required("descriptor", |c, v, at, f| {
    let descriptor = c.token(v, at, |ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch));
    put(&mut f.descriptor, descriptor);
});
/// One entry of `detections.fleet`.
const FLEET: [Setting<FleetDetection>; 3] = [
    FLEET_NAME,
    FLEET_DESCRIPTOR,
    Setting::required("events", |c, v, at, f| {
        put(&mut f.events, c.fleet_events(v, at))
    }),
];

impl Compiler<'_> {
    /// Reads `v` as the section at `at` holding exactly `table`'s settings into `out`. False when
    /// `v` is not an object or a setting is missing or invalid (each is an error already).
    fn section<T>(
        &mut self,
        v: &Value,
        at: &str,
        what: &str,
        table: &[Setting<T>],
        out: &mut T,
    ) -> bool {
        let known: Vec<&str> = keys(table).collect();
        match self.members(v, at, &known, what) {
            Some(o) => self.read(o, at, table, out),
            None => false,
        }
    }

    /// Reads `table`'s settings of the object `o` at `at` into `out`; unknown keys are the
    /// caller's to check. False when a setting is missing or invalid (each is an error already).
    fn read<T>(
        &mut self,
        o: &Map<String, Value>,
        at: &str,
        table: &[Setting<T>],
        out: &mut T,
    ) -> bool {
        let before = self.errors.len();
        for s in table {
            if let Some((v, at)) = self.setting(o, at, s.key, s.required) {
                (s.read)(self, v, &at, out);
            }
        }
        self.errors.len() == before
    }

    /// The value of `key` in `o` with its pointer; a missing `required` key is an error. Not
    /// generic, so the eight section types share one copy.
    #[inline(never)]
    fn setting<'v>(
        &mut self,
        o: &'v Map<String, Value>,
        at: &str,
        key: &str,
        required: bool,
    ) -> Option<(&'v Value, String)> {
        let v = o.field(key);
        if v.is_none() && required {
            self.err(at, format!("missing field `{key}`"), None);
        }
        Some((v?, format!("{at}/{key}")))
    }

    pub(super) fn filter(&mut self, v: &Value) -> FilterSettings {
        let mut f = FilterSettings::default();
        self.section(v, "/filter", "`filter`", &FILTER, &mut f);
        f
    }

    pub(super) fn audit(&mut self, v: &Value) -> AuditSettings {
        let mut a = AuditSettings::default();
        self.section(v, "/audit", "`audit`", &AUDIT, &mut a);
        a
    }

    pub(super) fn notify(&mut self, v: &Value) -> Option<NotifySettings> {
        let at = "/notify";
        let known: Vec<&str> = keys(&ENDPOINT)
            .chain(keys(&DELIVERY))
            .chain(keys(&NOTIFY))
            .collect();
        let o = self.members(v, at, &known, "`notify`")?;
        let endpoint = self.endpoint(o, at, "webhook-receiver");
        let defaults = Delivery {
            batch_max: 1,
            flush_interval_ms: 200,
            queue_max: 1000,
            ..Delivery::default()
        };
        let delivery = self.delivery(o, at, defaults);
        if delivery.batch_max != 1 {
            let msg = "webhooks carry one event per POST: expected `1`";
            self.err(&format!("{at}/{}", BATCH_MAX.key), msg, None);
        }
        let mut n = NotifyRead {
            secret: None,
            secret_env: None,
            min_severity: Severity::High,
        };
        let read = self.read(o, at, &NOTIFY, &mut n);
        let secret = self.secret_source(at, n.secret, n.secret_env);
        Some(NotifySettings {
            endpoint: endpoint?,
            delivery,
            secret: secret?,
            min_severity: read.then_some(n.min_severity)?,
        })
    }

    /// Exactly one of `secret` and `secret_env`, each as read (`Some(None)`: present, invalid).
    fn secret_source(
        &mut self,
        at: &str,
        key: Option<Option<WebhookSecret>>,
        env: Option<Option<String>>,
    ) -> Option<SecretSource> {
        let (secret, secret_env) = (SECRET.key, SECRET_ENV.key);
        match (key, env) {
            (Some(key), None) => key.map(SecretSource::Key),
            (None, Some(env)) => env.map(SecretSource::Env),
            (Some(_), Some(_)) => {
                self.err(
                    at,
                    format!("give `{secret}` or `{secret_env}`, not both"),
                    None,
                );
                None
            }
            (None, None) => {
                let msg = format!("missing field `{secret}` (or `{secret_env}`, the name of an environment variable holding it)");
                self.err(at, msg, None);
                None
            }
        }
    }

    /// `audit.collector`: an endpoint and its delivery.
    fn collector(&mut self, v: &Value, at: &str) -> Option<CollectorSettings> {
        let known: Vec<&str> = keys(&ENDPOINT).chain(keys(&DELIVERY)).collect();
        let o = self.members(v, at, &known, "`audit.collector`")?;
        let endpoint = self.endpoint(o, at, "audit-collector");
        let delivery = self.delivery(o, at, Delivery::default());
        endpoint.map(|endpoint| CollectorSettings { endpoint, delivery })
    }

    fn endpoint(
        &mut self,
        o: &Map<String, Value>,
        at: &str,
        authority: &str,
    ) -> Option<ClusterEndpoint> {
        let mut e = ClusterEndpoint {
            cluster: String::new(),
            path: String::new(),
            authority: authority.to_string(),
            timeout_ms: 2000,
        };
        self.read(o, at, &ENDPOINT, &mut e).then_some(e)
    }

    fn delivery(&mut self, o: &Map<String, Value>, at: &str, mut d: Delivery) -> Delivery {
        self.read(o, at, &DELIVERY, &mut d);
        self.at_least(
            at,
            d.backoff_max_ms >= d.backoff_initial_ms,
            &BACKOFF_MAX,
            &BACKOFF_INITIAL,
        );
        self.at_least(at, d.queue_max >= d.batch_max, &QUEUE_MAX, &BATCH_MAX);
        d
    }

    /// Unless `holds`, `later` (in the section at `at`) is an error: it must be at least `earlier`.
    fn at_least<T>(&mut self, at: &str, holds: bool, later: &Setting<T>, earlier: &Setting<T>) {
        if !holds {
            let msg = format!("must be at least `{}`", earlier.key);
            self.err(&format!("{at}/{}", later.key), msg, None);
        }
    }

    pub(super) fn access(
        &mut self,
        v: &Value,
        policy_actor_header: Option<&str>,
    ) -> AccessSettings {
        let mut a = AccessSettings {
            enabled: true,
            sample_rate: 1.0,
            actor: ActorSource {
                metadata: None,
                header: policy_actor_header.map(str::to_string),
            },
            ..AccessSettings::default()
        };
        self.section(v, "/access", "`access`", &ACCESS, &mut a);
        a
    }

    pub(super) fn detections(&mut self, v: &Value) -> DetectionSettings {
        let mut d = DetectionSettings::default();
        self.section(v, "/detections", "`detections`", &DETECTIONS, &mut d);
        d
    }

    fn storm(&mut self, v: &Value, at: &str) -> Option<StormSettings> {
        let mut s = StormSettings {
            max: 0,
            window_secs: 0,
            action: DetectionAction::Tag,
            status: 429,
            cooldown_secs: None,
        };
        self.section(v, at, "`deprovision_storm`", &STORM, &mut s)
            .then_some(s)
    }

    fn actor_risk(&mut self, v: &Value, at: &str) -> Option<ActorRiskSettings> {
        let mut r = ActorRiskSettings {
            blocked_attempts: 0,
            window_secs: 0,
            action: DetectionAction::Tag,
        };
        self.section(v, at, "`actor_risk`", &ACTOR_RISK, &mut r)
            .then_some(r)
    }

    /// One fleet detection. Unknown keys are errors but do not make it `None`: only a missing or
    /// invalid setting does (so a broken entry is not also reported as a duplicate).
    fn fleet_one(&mut self, v: &Value, at: &str) -> Option<FleetDetection> {
        let known: Vec<&str> = keys(&FLEET).collect();
        let o = self.members(v, at, &known, "a fleet detection")?;
        let mut f = FleetDetection {
            name: String::new(),
            events: Vec::new(),
            descriptor: String::new(),
        };
        self.read(o, at, &FLEET, &mut f).then_some(f)
    }

    /// A detection's `action`: `block` or `tag`.
    fn detection_action(&mut self, v: &Value, at: &str) -> Option<DetectionAction> {
        match self.choice(v, at, &["block", "tag"])? {
            "block" => Some(DetectionAction::Block),
            _ => Some(DetectionAction::Tag),
        }
    }

    /// `deprovision_storm.cooldown`: `until_cleared` (`None`) or seconds.
    fn cooldown(&mut self, v: &Value, at: &str) -> Option<Option<u64>> {
        if v.as_str() == Some("until_cleared") {
            return Some(None);
        }
        match v.as_u64().filter(|n| (1..=7 * 86_400).contains(n)) {
            Some(n) => Some(Some(n)),
            None => {
                let msg = "expected `until_cleared` or a number of seconds from 1 to 604800";
                self.err(at, msg, None);
                None
            }
        }
    }

    /// `audit.max_record_bytes`, within the bounds the audit writer accepts.
    fn max_record_bytes(&mut self, v: &Value, at: &str) -> Option<usize> {
        let (min, max) = (
            AuditSettings::MIN_MAX_RECORD_BYTES,
            AuditSettings::MAX_MAX_RECORD_BYTES,
        );
        let n = v.as_u64().and_then(|n| usize::try_from(n).ok());
        if let Some(n) = n.filter(|n| (min..=max).contains(n)) {
            return Some(n);
        }
        self.err(
            at,
            format!("expected the longest audit line in bytes, a whole number from {min} to {max}"),
            Some(format!(
                "the default is {}; log shippers often cut lines at 16 KiB to 256 KiB",
                AuditSettings::DEFAULT_MAX_RECORD_BYTES
            )),
        );
        None
    }

    /// A filter-state key: letters, digits, `_` and `.`.
    fn filter_state_key(&mut self, v: &Value, at: &str) -> Option<String> {
        let s = self.string(v, at)?;
        if s.is_empty()
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            self.err(
                at,
                "expected a filter-state key of letters, digits, `_` and `.`",
                None,
            );
        }
        Some(s)
    }

    /// A non-empty name without whitespace or control characters; `expected` says what it names.
    fn name_without_spaces(&mut self, v: &Value, at: &str, expected: &str) -> Option<String> {
        let s = self.string(v, at)?;
        if s.is_empty() || s.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
            self.err(at, expected, None);
        }
        Some(s)
    }

    /// An endpoint's `path`: absolute, without whitespace.
    fn absolute_path(&mut self, v: &Value, at: &str) -> Option<String> {
        let p = self.string(v, at)?;
        if !p.starts_with('/') || p.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
            let msg = format!("`{p}` must be an absolute path such as `/v1/records`");
            self.err(at, msg, None);
        }
        Some(p)
    }

    /// `access.routes`: a list of route templates or prefixes.
    fn routes(&mut self, v: &Value, at: &str) -> Vec<RouteTemplate> {
        let Some(list) = v.as_array() else {
            self.err(at, "expected a list of routes", None);
            return Vec::new();
        };
        list.iter()
            .enumerate()
            .filter_map(|(i, r)| self.route(r, &format!("{at}/{i}")))
            .collect()
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

    /// One entry of `access.routes`: exactly one of its forms.
    fn route(&mut self, v: &Value, at: &str) -> Option<RouteTemplate> {
        let known: Vec<&str> = keys(&ROUTE).collect();
        let o = self.members(v, at, &known, "a route")?;
        let mut forms = Vec::new();
        self.read(o, at, &ROUTE, &mut forms);
        if forms.len() == 1 {
            return forms.pop().flatten();
        }
        let [template, prefix] = ROUTE.map(|s| s.key);
        let msg = format!("a route has exactly one of `{template}` or `{prefix}`");
        self.err(at, msg, None);
        None
    }

    /// A route's `template`: literal segments and whole `{name}` parameters.
    fn route_template(&mut self, v: &Value, at: &str) -> Option<RouteTemplate> {
        let template = self.string(v, at)?;
        let segments = self.template(&template, at)?;
        Some(RouteTemplate::Template { template, segments })
    }

    /// A route's `prefix`: an absolute path prefix.
    fn route_prefix(&mut self, v: &Value, at: &str) -> Option<RouteTemplate> {
        let p = self.string(v, at)?;
        if !p.starts_with('/') {
            let msg = format!("`{p}` must be an absolute path prefix such as `/api/`");
            self.err(at, msg, None);
        }
        Some(RouteTemplate::Prefix(p))
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
                    &format!("{at}/{}", FLEET_NAME.key),
                    format!("`{}` is declared twice", f.name),
                    None,
                );
            } else if out.iter().any(|o| o.descriptor == f.descriptor) {
                let msg = format!("descriptor `{}` is used twice", f.descriptor);
                self.err(&format!("{at}/{}", FLEET_DESCRIPTOR.key), msg, None);
            } else {
                out.push(f);
            }
        }
        out
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
    fn missing_and_cross_field_errors_derive_their_pointers_from_the_tables() {
        let errs = errors(&format!(
            r#""notify": {{"path": "/h", "secret": "{SECRET}", "batch_max": 2, "queue_max": 1,
                          "backoff_initial_ms": 10, "backoff_max_ms": 5, "min_severty": "high"}},
               "detections": {{"actor_risk": {{"window_secs": 60}}}}"#
        ));
        let got: Vec<(&str, &str)> = errs
            .iter()
            .map(|e| (e.pointer.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "/notify/min_severty",
                    "unknown field `min_severty` in `notify`"
                ),
                ("/notify", "missing field `cluster`"),
                (
                    "/notify/backoff_max_ms",
                    "must be at least `backoff_initial_ms`"
                ),
                ("/notify/queue_max", "must be at least `batch_max`"),
                (
                    "/notify/batch_max",
                    "webhooks carry one event per POST: expected `1`"
                ),
                ("/detections/actor_risk", "missing field `blocked_attempts`"),
            ]
        );
        assert_eq!(
            errs[0].help.as_deref(),
            Some("did you mean `min_severity`?")
        );
        assert!(errs.iter().all(|e| e.line.is_some()), "{errs:?}");
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
