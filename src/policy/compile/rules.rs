//! Rules and their conditions: ids, severities, actions, modes, and the condition language
//! (`all`/`any`/`not`, method, resource type, event, change, privileged group, actor, bulk, count).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::policy::error::did_you_mean;
use crate::policy::eval::{Action, Severity};
use crate::policy::rule::{ActorTest, ChangeTest, Condition, CountTest, Counted, Rule, RuleId};
use crate::policy::settings::Settings;
use crate::policy::value_test::ValueTest;
use crate::scim::{attribute, EventKind, Op};

use super::{indexed, Compiler, Field, DETECTION_PREFIX};

const RULE: [&str; 8] = [
    "id",
    "description",
    "severity",
    "action",
    "mode",
    "status",
    "notify",
    "when",
];
const CONDITIONS: [&str; 11] = [
    "all",
    "any",
    "not",
    "method",
    "resource_type",
    "event",
    "change",
    "privileged_group",
    "actor",
    "bulk",
    "count",
];
const CHANGE: [&str; 6] = [
    "op",
    "attribute",
    "attribute_matches",
    "sub_attribute",
    "value",
    "flag",
];
const VALUE_TESTS: [&str; 8] = [
    "equals", "any_of", "matches", "is", "gt", "gte", "lt", "lte",
];
const METHODS: [&str; 5] = ["POST", "PUT", "PATCH", "DELETE", "GET"];
const FLAGS: [&str; 11] = [
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
    "unknown_attribute",
];

impl Compiler<'_> {
    pub(super) fn rules(&mut self, v: &Value, s: &Settings) -> Vec<Rule> {
        let Some(list) = v.as_array() else {
            self.err("/rules", "expected a list of rules", None);
            return Vec::new();
        };
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, r) in list.iter().enumerate() {
            let at = format!("/rules/{i}");
            self.rule = r.field("id").and_then(Value::as_str).map(str::to_string);
            if let Some(id) = &self.rule {
                if !seen.insert(id.clone()) {
                    self.err(
                        &format!("{at}/id"),
                        format!("duplicate rule id `{id}`"),
                        None,
                    );
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
        let id = self
            .required(o, at, "id")
            .and_then(|v| self.string(v, &format!("{at}/id")));
        if let Some(id) = &id {
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                self.err(
                    &format!("{at}/id"),
                    format!("rule id `{id}` may hold only letters, digits, `-`, `_` and `.`"),
                    None,
                );
            }
            if id.starts_with(DETECTION_PREFIX) {
                self.err(
                    &format!("{at}/id"),
                    format!(
                        "rule ids starting with `{DETECTION_PREFIX}` are reserved for detections"
                    ),
                    None,
                );
            }
        }
        let description = self
            .required(o, at, "description")
            .and_then(|v| self.string(v, &format!("{at}/description")));
        let severity = self.required(o, at, "severity").and_then(|v| {
            self.choice(v, &format!("{at}/severity"), &Severity::NAMES)
                .and_then(Severity::parse)
        });
        let action = self.required(o, at, "action").and_then(|v| {
            match self.choice(v, &format!("{at}/action"), &Action::NAMES) {
                Some("block") => Some(Action::Block),
                Some("tag") => Some(Action::Tag),
                Some("log") => Some(Action::Log),
                _ => None,
            }
        });
        let mode = o
            .field("mode")
            .and_then(|v| self.mode(v, &format!("{at}/mode")));
        let status = o
            .field("status")
            .and_then(|v| self.status(v, &format!("{at}/status")));
        let notify = o
            .field("notify")
            .and_then(|v| self.boolean(v, &format!("{at}/notify")))
            .unwrap_or(false);
        let when = self
            .required(o, at, "when")
            .and_then(|v| self.condition(v, &format!("{at}/when"), s));
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
            self.err(
                at,
                format!("a condition has exactly one key, found {}", keys.len()),
                Some(format!(
                    "combine `{}` with `all` or `any`",
                    keys.join("`, `")
                )),
            );
            return None;
        }
        let (key, v) = o.iter().next()?;
        let at = format!("{at}/{key}");
        match key.as_str() {
            "all" | "any" => {
                let Some(list) = v.as_array().filter(|l| !l.is_empty()) else {
                    self.err(
                        &at,
                        format!("`{key}` expects a non-empty list of conditions"),
                        None,
                    );
                    return None;
                };
                let parts: Vec<Option<Condition>> = list
                    .iter()
                    .enumerate()
                    .map(|(i, c)| self.condition(c, &format!("{at}/{i}"), s))
                    .collect();
                let parts: Option<Vec<Condition>> = parts.into_iter().collect();
                parts.map(|p| {
                    if key == "all" {
                        Condition::All(p)
                    } else {
                        Condition::Any(p)
                    }
                })
            }
            "not" => self
                .condition(v, &at, s)
                .map(|c| Condition::Not(Box::new(c))),
            "method" => {
                let list = self.one_or_many(v, &at);
                for (i, m) in list.iter().enumerate() {
                    if !METHODS.contains(&m.to_ascii_uppercase().as_str()) {
                        let help =
                            did_you_mean(m, &METHODS).map(|s| format!("did you mean `{s}`?"));
                        self.err(&indexed(&at, v, i), format!("unknown method `{m}`"), help);
                    }
                }
                Some(Condition::Method(
                    list.iter().map(|m| m.to_ascii_uppercase()).collect(),
                ))
            }
            "resource_type" => {
                let list = self.one_or_many(v, &at);
                let known = ["Users", "Groups", "Me"];
                for (i, t) in list.iter().enumerate() {
                    let ok = known.iter().any(|k| k.eq_ignore_ascii_case(t))
                        || s.resource_types.iter().any(|k| k.eq_ignore_ascii_case(t));
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
                            let help =
                                did_you_mean(e, &names).map(|s| format!("did you mean `{s}`?"));
                            self.err(
                                &indexed(&at, v, i),
                                format!("unknown lifecycle event `{e}`"),
                                help,
                            );
                        }
                    }
                }
                Some(Condition::Event(kinds))
            }
            "change" => self.change(v, &at).map(Condition::Change),
            "privileged_group" => self.boolean(v, &at).map(Condition::PrivilegedGroup),
            "bulk" => self.boolean(v, &at).map(Condition::Bulk),
            "actor" => {
                if v.field("missing") == Some(&Value::Bool(true))
                    && v.as_object().is_some_and(|o| o.len() == 1)
                {
                    return Some(Condition::Actor(ActorTest::Missing));
                }
                self.value_test(v, &at)
                    .map(|t| Condition::Actor(ActorTest::Value(t)))
            }
            "count" => self.count_test(v, &at).map(Condition::Count),
            _ => None,
        }
    }

    fn change(&mut self, v: &Value, at: &str) -> Option<ChangeTest> {
        let o = self.members(v, at, &CHANGE, "`change`")?;
        let mut t = ChangeTest::default();
        if let Some(v) = o.field("op") {
            for (i, op) in self.one_or_many(v, &format!("{at}/op")).iter().enumerate() {
                match op.to_ascii_lowercase().as_str() {
                    "add" => t.ops.push(Op::Add),
                    "replace" => t.ops.push(Op::Replace),
                    "remove" => t.ops.push(Op::Remove),
                    _ => {
                        let help = did_you_mean(op, &["add", "replace", "remove"])
                            .map(|s| format!("did you mean `{s}`?"));
                        self.err(
                            &indexed(&format!("{at}/op"), v, i),
                            format!("unknown op `{op}` (expected `add`, `replace` or `remove`)"),
                            help,
                        );
                    }
                }
            }
        }
        if let Some(v) = o.field("attribute") {
            for (i, a) in self
                .one_or_many(v, &format!("{at}/attribute"))
                .iter()
                .enumerate()
            {
                match attribute::parse(a) {
                    Ok(r) if r.sub_attribute.is_none() => t.attributes.push(r.attribute),
                    Ok(_) => self.err(
                        &indexed(&format!("{at}/attribute"), v, i),
                        format!("`{a}` names a sub-attribute"),
                        Some("put it in `sub_attribute`".into()),
                    ),
                    Err(e) => self.err(&indexed(&format!("{at}/attribute"), v, i), e.detail, None),
                }
            }
        }
        if let Some(v) = o.field("attribute_matches") {
            let at = format!("{at}/attribute_matches");
            t.attribute_matches = self.string(v, &at).and_then(|p| self.regex(&p, &at));
        }
        if let Some(v) = o.field("sub_attribute") {
            t.sub_attributes = self
                .one_or_many(v, &format!("{at}/sub_attribute"))
                .iter()
                .map(|s| attribute::canonical_sub(s))
                .collect();
        }
        if let Some(v) = o.field("value") {
            t.value = self.value_test(v, &format!("{at}/value"));
        }
        if let Some(v) = o.field("flag") {
            if let Some(f) = self.choice(v, &format!("{at}/flag"), &FLAGS) {
                t.flag = Some(f.to_string());
            }
        }
        Some(t)
    }

    fn value_test(&mut self, v: &Value, at: &str) -> Option<ValueTest> {
        let o = self.members(v, at, &VALUE_TESTS, "a value test")?;
        if o.len() != 1 {
            self.err(
                at,
                "a value test has exactly one key",
                Some(format!("one of `{}`", VALUE_TESTS.join("`, `"))),
            );
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
            "matches" => self
                .string(v, &at)
                .and_then(|p| self.regex(&p, &at))
                .map(ValueTest::Matches),
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
        let of = match self
            .required(o, at, "of")
            .and_then(|v| self.string(v, &format!("{at}/of")))
        {
            Some(s) => match s.as_str() {
                "operations" => Some(Counted::Operations),
                "changes" => Some(Counted::Changes),
                "members_added" => Some(Counted::MembersAdded),
                "members_removed" => Some(Counted::MembersRemoved),
                other => match EventKind::parse(other) {
                    Some(k) => Some(Counted::Event(k)),
                    None => {
                        let help =
                            did_you_mean(other, &names).map(|s| format!("did you mean `{s}`?"));
                        self.err(&format!("{at}/of"), format!("cannot count `{other}`"), help);
                        None
                    }
                },
            },
            None => None,
        };
        let at_least = self
            .required(o, at, "at_least")
            .and_then(|v| self.count(v, &format!("{at}/at_least"), 1, usize::MAX));
        Some(CountTest {
            of: of?,
            at_least: at_least?,
        })
    }

    // --- scalar helpers ---
}
