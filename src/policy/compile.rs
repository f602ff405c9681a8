//! The policy compiler: walks the JSON document once, building compiled types and collecting every
//! error (rule id, JSON pointer, line, expectation, did-you-mean). Unknown fields are errors.
//!
//! Why a walker rather than `#[derive(Deserialize)]` with `deny_unknown_fields`: serde stops at the
//! first error, and policy authors should see all of them in one pass.

use regex_lite::Regex;
use serde_json::{Map, Value};

use super::error::{did_you_mean, PolicyError, PolicyErrors};
use super::lines::line_of;
use super::rule::Mode;
use super::settings::{
    ErrorOutcome, MethodOverride, PrivilegedGroups, Settings, UnknownGroupOutcome,
};
use super::{Policy, PolicyId};
use crate::scim::schema::UnknownAttribute;
use crate::scim::strict_json;

mod operational;
mod rules;
mod schema;

const TOP: [&str; 18] = [
    "version",
    "description",
    "mode",
    "scim",
    "limits",
    "on_error",
    "actor",
    "privileged_groups",
    "sensitive_attributes",
    "schema",
    "block_status",
    "filter",
    "audit",
    "notify",
    "access",
    "detections",
    "rules",
    "$schema",
];
/// A member of a policy object. `Map::get` is `IndexMap::get` (serde_json's `preserve_order`: hash
/// and probe), and the compiler looks up some seventy members: at opt-level 3 each lookup was
/// inlined. One shared copy instead; compiling runs once per configuration.
trait Field {
    fn field(&self, key: &str) -> Option<&Value>;
}

impl Field for Map<String, Value> {
    #[inline(never)]
    fn field(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }
}

impl Field for Value {
    fn field(&self, key: &str) -> Option<&Value> {
        self.as_object().and_then(|o| o.field(key))
    }
}

/// Rule ids with this prefix name the filter's own detections in records and headers.
pub const DETECTION_PREFIX: &str = "detection.";

/// Compiles a policy document.
pub fn compile(text: &str) -> Result<Policy, PolicyErrors> {
    let doc = strict_json::parse(text.as_bytes(), 64).map_err(|e| {
        PolicyErrors(vec![PolicyError {
            rule: None,
            pointer: String::new(),
            line: parse_error_line(&e.detail),
            message: e
                .detail
                .replace("the body is not valid JSON", "the policy is not valid JSON"),
            help: None,
        }])
    })?;
    let mut c = Compiler {
        text,
        errors: Vec::new(),
        rule: None,
    };
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
    detail
        .get(at + 6..)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

struct Compiler<'t> {
    text: &'t str,
    errors: Vec<PolicyError>,
    rule: Option<String>,
}

impl Compiler<'_> {
    fn err(&mut self, pointer: &str, message: impl Into<String>, help: Option<String>) {
        self.error(pointer, message.into(), help);
    }

    #[inline(never)]
    fn error(&mut self, pointer: &str, message: String, help: Option<String>) {
        self.errors.push(PolicyError {
            rule: self.rule.clone(),
            pointer: pointer.to_string(),
            line: line_of(self.text, pointer),
            message,
            help,
        });
    }

    /// The members of an object, reporting unknown keys with a did-you-mean.
    #[inline(never)]
    fn members<'v>(
        &mut self,
        v: &'v Value,
        at: &str,
        known: &[&str],
        what: &str,
    ) -> Option<&'v Map<String, Value>> {
        let Some(obj) = v.as_object() else {
            self.err(at, format!("expected {what} (an object)"), None);
            return None;
        };
        for key in obj.keys() {
            if !known.contains(&key.as_str()) {
                let help = did_you_mean(key, known).map(|s| format!("did you mean `{s}`?"));
                self.err(
                    &format!("{at}/{}", escape(key)),
                    format!("unknown field `{key}` in {what}"),
                    help,
                );
            }
        }
        Some(obj)
    }

    fn document(&mut self, doc: &Value) -> Option<Policy> {
        let obj = self.members(doc, "", &TOP, "the policy")?;
        let mut s = Settings::default();
        match obj.field("version") {
            Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
            Some(_) => self.err("/version", "expected `1`, the only policy version", None),
            None => self.err("", "missing field `version` (expected `1`)", None),
        }
        if let Some(v) = obj.field("mode") {
            s.mode = self.mode(v, "/mode").unwrap_or(s.mode);
        }
        if let Some(v) = obj.field("scim") {
            self.scim(v, &mut s);
        }
        if let Some(v) = obj.field("limits") {
            self.limits(v, &mut s);
        }
        if let Some(v) = obj.field("on_error") {
            self.on_error(v, &mut s);
        }
        if let Some(v) = obj.field("actor") {
            if let Some(a) = self.members(v, "/actor", &["header"], "`actor`") {
                s.actor_header = a
                    .field("header")
                    .and_then(|h| self.string(h, "/actor/header"))
                    .map(|h| h.to_ascii_lowercase());
            }
        }
        if let Some(v) = obj.field("privileged_groups") {
            s.privileged = self.privileged(v);
        }
        if let Some(v) = obj.field("sensitive_attributes") {
            let mut list = self.strings(v, "/sensitive_attributes");
            if !list.iter().any(|a| a.eq_ignore_ascii_case("password")) {
                list.push("password".into());
            }
            s.sensitive_attributes = list;
        }
        if let Some(v) = obj.field("schema") {
            self.schema(v, &mut s.schema);
        }
        if let Some(v) = obj.field("block_status") {
            s.block_status = self.status(v, "/block_status").unwrap_or(403);
        }
        if let Some(v) = obj.field("filter") {
            s.filter = self.filter(v);
        }
        if let Some(v) = obj.field("audit") {
            s.audit = self.audit(v);
        }
        if let Some(v) = obj.field("notify") {
            s.notify = self.notify(v);
        }
        if let Some(v) = obj.field("access") {
            s.access = self.access(v, s.actor_header.as_deref());
        }
        if let Some(v) = obj.field("detections") {
            s.detections = self.detections(v);
        }
        let rules = match obj.field("rules") {
            Some(v) => self.rules(v, &s),
            None => {
                self.err("", "missing field `rules` (a list of rules)", None);
                Vec::new()
            }
        };
        Some(Policy {
            settings: s,
            rules,
            id: PolicyId::of(self.text, 1),
        })
    }

    fn scim(&mut self, v: &Value, s: &mut Settings) {
        let Some(o) = self.members(
            v,
            "/scim",
            &[
                "base_paths",
                "resource_types",
                "method_override",
                "user_groups",
            ],
            "`scim`",
        ) else {
            return;
        };
        if let Some(v) = o.field("base_paths") {
            let paths = self.strings(v, "/scim/base_paths");
            for (i, p) in paths.iter().enumerate() {
                if !p.starts_with('/') || p.len() < 2 {
                    self.err(
                        &format!("/scim/base_paths/{i}"),
                        format!("`{p}` must be an absolute path such as `/scim/v2`"),
                        None,
                    );
                }
            }
            if paths.is_empty() {
                self.err("/scim/base_paths", "expected at least one base path", None);
            }
            s.base_paths = paths
                .into_iter()
                .map(|p| p.trim_end_matches('/').to_string())
                .collect();
        }
        if let Some(v) = o.field("resource_types") {
            s.resource_types = self.strings(v, "/scim/resource_types");
        }
        if let Some(v) = o.field("method_override") {
            match self.choice(v, "/scim/method_override", &["reject", "honor"]) {
                Some("honor") => s.method_override = MethodOverride::Honor,
                Some(_) => s.method_override = MethodOverride::Reject,
                None => {}
            }
        }
        if let Some(v) = o.field("user_groups") {
            match self.choice(v, "/scim/user_groups", &["judge", "refuse"]) {
                Some("refuse") => s.user_groups = crate::scim::UserGroups::Refuse,
                Some(_) => s.user_groups = crate::scim::UserGroups::Judge,
                None => {}
            }
        }
    }

    fn limits(&mut self, v: &Value, s: &mut Settings) {
        let Some(o) = self.members(
            v,
            "/limits",
            &[
                "max_body_bytes",
                "max_depth",
                "max_operations",
                "max_values_per_operation",
            ],
            "`limits`",
        ) else {
            return;
        };
        if let Some(n) = o
            .field("max_body_bytes")
            .and_then(|v| self.count(v, "/limits/max_body_bytes", 1, 64 << 20))
        {
            s.max_body_bytes = n;
        }
        if let Some(n) = o
            .field("max_depth")
            .and_then(|v| self.count(v, "/limits/max_depth", 2, 128))
        {
            s.max_depth = n;
        }
        if let Some(n) = o
            .field("max_operations")
            .and_then(|v| self.count(v, "/limits/max_operations", 1, 100_000))
        {
            s.max_operations = n;
        }
        if let Some(n) = o
            .field("max_values_per_operation")
            .and_then(|v| self.count(v, "/limits/max_values_per_operation", 1, 1_000_000))
        {
            s.max_values = n;
        }
    }

    fn on_error(&mut self, v: &Value, s: &mut Settings) {
        let keys = [
            "invalid",
            "too_large",
            "unreadable",
            "unknown_group",
            "unknown_attribute",
        ];
        let Some(o) = self.members(v, "/on_error", &keys, "`on_error`") else {
            return;
        };
        for (key, slot) in [
            ("invalid", &mut s.on_invalid),
            ("too_large", &mut s.on_too_large),
            ("unreadable", &mut s.on_unreadable),
        ] {
            if let Some(v) = o.field(key) {
                match self.choice(v, &format!("/on_error/{key}"), &["block", "tag"]) {
                    Some("tag") => *slot = ErrorOutcome::Tag,
                    Some(_) => *slot = ErrorOutcome::Block,
                    None => {}
                }
            }
        }
        if let Some(v) = o.field("unknown_group") {
            match self.choice(
                v,
                "/on_error/unknown_group",
                &["privileged", "not_privileged"],
            ) {
                Some("not_privileged") => s.on_unknown_group = UnknownGroupOutcome::NotPrivileged,
                Some(_) => s.on_unknown_group = UnknownGroupOutcome::Privileged,
                None => {}
            }
        }
        if let Some(v) = o.field("unknown_attribute") {
            match self.choice(v, "/on_error/unknown_attribute", &["block", "allow"]) {
                Some("allow") => s.schema.unknown = UnknownAttribute::Allow,
                Some(_) => s.schema.unknown = UnknownAttribute::Block,
                None => {}
            }
        }
    }

    fn privileged(&mut self, v: &Value) -> PrivilegedGroups {
        let keys = [
            "ids",
            "display_names",
            "display_name_patterns",
            "known_names",
        ];
        let mut p = PrivilegedGroups::default();
        let Some(o) = self.members(v, "/privileged_groups", &keys, "`privileged_groups`") else {
            return p;
        };
        if let Some(v) = o.field("ids") {
            p.ids = self.strings(v, "/privileged_groups/ids");
        }
        if let Some(v) = o.field("display_names") {
            p.names = self.strings(v, "/privileged_groups/display_names");
        }
        if let Some(v) = o.field("display_name_patterns") {
            let patterns = self.strings(v, "/privileged_groups/display_name_patterns");
            for (i, pat) in patterns.iter().enumerate() {
                if let Some(re) = self.regex(
                    pat,
                    &format!("/privileged_groups/display_name_patterns/{i}"),
                ) {
                    p.name_patterns.push(re);
                }
            }
        }
        if let Some(v) = o.field("known_names") {
            match v.as_object() {
                Some(map) => {
                    for (id, name) in map {
                        match name.as_str() {
                            Some(n) => {
                                p.known_names.insert(id.clone(), n.to_string());
                            }
                            None => self.err(
                                &format!("/privileged_groups/known_names/{}", escape(id)),
                                "expected a displayName string",
                                None,
                            ),
                        }
                    }
                }
                None => self.err(
                    "/privileged_groups/known_names",
                    "expected an object mapping group ids to displayNames",
                    None,
                ),
            }
        }
        p
    }

    #[inline(never)]
    fn required<'v>(
        &mut self,
        o: &'v Map<String, Value>,
        at: &str,
        key: &str,
    ) -> Option<&'v Value> {
        let v = o.field(key);
        if v.is_none() {
            self.err(at, format!("missing field `{key}`"), None);
        }
        v
    }

    #[inline(never)]
    fn string(&mut self, v: &Value, at: &str) -> Option<String> {
        match v.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.err(at, "expected a string", None);
                None
            }
        }
    }

    #[inline(never)]
    fn boolean(&mut self, v: &Value, at: &str) -> Option<bool> {
        match v.as_bool() {
            Some(b) => Some(b),
            None => {
                self.err(at, "expected `true` or `false`", None);
                None
            }
        }
    }

    #[inline(never)]
    fn count(&mut self, v: &Value, at: &str, min: usize, max: usize) -> Option<usize> {
        match v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (min..=max).contains(n))
        {
            Some(n) => Some(n),
            None => {
                self.err(
                    at,
                    format!("expected a whole number from {min} to {max}"),
                    None,
                );
                None
            }
        }
    }

    #[inline(never)]
    fn status(&mut self, v: &Value, at: &str) -> Option<u16> {
        self.count(v, at, 400, 599)
            .and_then(|n| u16::try_from(n).ok())
    }

    #[inline(never)]
    fn mode(&mut self, v: &Value, at: &str) -> Option<Mode> {
        match self.choice(v, at, &["enforce", "monitor"])? {
            "monitor" => Some(Mode::Monitor),
            _ => Some(Mode::Enforce),
        }
    }

    #[inline(never)]
    fn choice<'c>(&mut self, v: &Value, at: &str, choices: &[&'c str]) -> Option<&'c str> {
        let s = self.string(v, at)?;
        match choices.iter().find(|c| **c == s) {
            Some(c) => Some(c),
            None => {
                let help = did_you_mean(&s, choices).map(|c| format!("did you mean `{c}`?"));
                self.err(
                    at,
                    format!("`{s}` is not one of `{}`", choices.join("`, `")),
                    help,
                );
                None
            }
        }
    }

    #[inline(never)]
    fn strings(&mut self, v: &Value, at: &str) -> Vec<String> {
        match v.as_array() {
            Some(list) => list
                .iter()
                .enumerate()
                .filter_map(|(i, s)| self.string(s, &format!("{at}/{i}")))
                .collect(),
            None => {
                self.err(at, "expected a list of strings", None);
                Vec::new()
            }
        }
    }

    #[inline(never)]
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

    #[inline(never)]
    fn regex(&mut self, pattern: &str, at: &str) -> Option<Regex> {
        match Regex::new(pattern) {
            Ok(r) => Some(r),
            Err(e) => {
                let first = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                self.err(
                    at,
                    format!("invalid regular expression `{pattern}`: {first}"),
                    None,
                );
                None
            }
        }
    }
}

#[inline(never)]
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The pointer of element `i` when `v` is a list, else of `v` itself.
#[inline(never)]
fn indexed(at: &str, v: &Value, i: usize) -> String {
    if v.is_array() {
        format!("{at}/{i}")
    } else {
        at.to_string()
    }
}
