//! Evaluation: compiled rules × normalised operations → matched rules → decision and risk.
//!
//! A rule matches a request when its condition holds for at least one operation (the request itself,
//! or any operation of a Bulk: a high-risk operation anywhere decides the Bulk). `count` and `bulk`
//! conditions look at the whole request. Decision: `block` if an enforced block rule matched, else
//! `tag` if a tag rule matched or a block rule matched in monitor mode, else `allow`.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use regex_lite::Regex;

use serde::Serialize;

use super::rule::{ActorTest, ChangeTest, Condition, Counted, Mode, Rule, RuleId};
use super::settings::UnknownGroupOutcome;
use super::Policy;
use crate::scim::{EventKind, Json, Normalized, Operation, ResourceType};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const NAMES: [&'static str; 4] = ["low", "medium", "high", "critical"];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// What a rule asks for when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Block,
    Tag,
    Log,
}

impl Action {
    pub const NAMES: [&'static str; 3] = ["block", "tag", "log"];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Tag => "tag",
            Action::Log => "log",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Tag,
    Block,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Tag => "tag",
            Decision::Block => "block",
        }
    }
}

/// A rule that matched, with what it meant for this request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleMatch {
    pub id: RuleId,
    pub description: String,
    pub severity: Severity,
    pub action: Action,
    /// The mode the rule ran in (its own, or the policy's).
    pub mode: Mode,
    /// The reply status when this rule blocks.
    pub status: u16,
    pub notify: bool,
}

impl RuleMatch {
    /// What this match alone decides. The one place that says what blocks: an enforced block
    /// blocks; a block in monitor mode, or a tag, tags; a log allows.
    pub fn decision(&self) -> Decision {
        match (self.action, self.mode) {
            (Action::Block, Mode::Enforce) => Decision::Block,
            (Action::Block, Mode::Monitor) | (Action::Tag, _) => Decision::Tag,
            (Action::Log, _) => Decision::Allow,
        }
    }

    /// Whether this match blocks the request (`decision` is `Block`).
    pub fn blocks(&self) -> bool {
        self.decision() == Decision::Block
    }
}

/// Host facts a decision may need.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub actor: Option<&'a str>,
    /// Learned group displayNames (id → name), on top of the policy's static map.
    pub group_names: &'a BTreeMap<String, String>,
}

/// The outcome of evaluating one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub decision: Decision,
    pub risk: Option<Severity>,
    pub matches: Vec<RuleMatch>,
    /// Group ids whose displayName was needed but unknown (the unknown-group outcome applied).
    pub unknown_groups: Vec<String>,
    /// Indexes of the operations a matched rule holds on or that target a privileged group, in
    /// order.
    pub notable: Vec<usize>,
}

/// Evaluates every rule of `policy` against `request`.
pub fn evaluate(policy: &Policy, request: &Normalized, ctx: &Context<'_>) -> Judgement {
    let groups = GroupView::new(policy, request, ctx);
    let counts = RequestCounts::new(request);
    let scope = Scope {
        request,
        ctx,
        groups: &groups,
        counts: &counts,
        attr_memo: RefCell::new(Vec::new()),
    };
    // Operations a reviewer needs first: those on a privileged group, and those a matched rule
    // holds on (audit outputs cut to fit keep these).
    let mut notable = groups.privileged.clone();
    let matches: Vec<RuleMatch> = policy
        .rules
        .iter()
        .filter(|rule| scope.mark_matches(rule, &mut notable))
        .map(|rule| rule_match(policy, rule))
        .collect();
    let decision = decide(&matches);
    let risk = matches.iter().map(|m| m.severity).max();
    Judgement {
        decision,
        risk,
        matches,
        unknown_groups: groups.unknown.into_iter().collect(),
        notable: notable
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.then_some(i))
            .collect(),
    }
}

fn rule_match(policy: &Policy, rule: &Rule) -> RuleMatch {
    RuleMatch {
        id: rule.id.clone(),
        description: rule.description.clone(),
        severity: rule.severity,
        action: rule.action,
        mode: rule.mode.unwrap_or(policy.settings.mode),
        status: rule.status.unwrap_or(policy.settings.block_status),
        notify: rule.notify,
    }
}

fn decide(matches: &[RuleMatch]) -> Decision {
    matches
        .iter()
        .map(RuleMatch::decision)
        .max()
        .unwrap_or(Decision::Allow)
}

/// Which operations target a privileged group, computed once per request.
struct GroupView {
    privileged: Vec<bool>,
    unknown: BTreeSet<String>,
}

impl GroupView {
    fn new(policy: &Policy, request: &Normalized, ctx: &Context<'_>) -> GroupView {
        let p = &policy.settings.privileged;
        let mut unknown = BTreeSet::new();
        let privileged = request
            .operations
            .iter()
            .map(|op| {
                if op.resource_type != ResourceType::Groups || p.is_empty() {
                    return false;
                }
                let id = op.resource_id.as_deref();
                if id.is_some_and(|id| p.id_is_privileged(id)) {
                    return true;
                }
                let named = op.display_name.iter().chain(op.names_in_bulk.iter());
                if named.into_iter().any(|n| p.name_is_privileged(n)) {
                    return true;
                }
                let Some(id) = id else { return false };
                let known = ctx.group_names.get(id).or_else(|| p.known_names.get(id));
                match known {
                    Some(name) => p.name_is_privileged(name),
                    None if p.needs_name() && op.method != crate::scim::Method::Post => {
                        unknown.insert(id.to_string());
                        policy.settings.on_unknown_group == UnknownGroupOutcome::Privileged
                    }
                    None => false,
                }
            })
            .collect();
        GroupView {
            privileged,
            unknown,
        }
    }
}

struct Scope<'a> {
    request: &'a Normalized,
    ctx: &'a Context<'a>,
    groups: &'a GroupView,
    counts: &'a RequestCounts,
    /// `attribute_matches` results per (pattern, attribute): a Bulk repeats the same few attribute
    /// names thousands of times, and regex-lite's PikeVM is not free.
    attr_memo: RefCell<Vec<(*const Regex, &'a str, bool)>>,
}

/// Request-wide counts, computed once: `count` conditions are checked per operation, and
/// recounting would make a large Bulk quadratic.
struct RequestCounts {
    operations: usize,
    changes: usize,
    members_added: usize,
    members_removed: usize,
    events: BTreeMap<EventKind, usize>,
}

impl RequestCounts {
    fn new(request: &Normalized) -> RequestCounts {
        let mut c = RequestCounts {
            operations: request.operations.len(),
            changes: 0,
            members_added: 0,
            members_removed: 0,
            events: BTreeMap::new(),
        };
        for op in &request.operations {
            c.changes += op.changes.len();
            for e in &op.events {
                *c.events.entry(e.kind).or_insert(0) += 1;
                match e.kind {
                    EventKind::GroupMemberAdded => c.members_added += e.members.len().max(1),
                    EventKind::GroupMemberRemoved => c.members_removed += e.members.len().max(1),
                    _ => {}
                }
            }
        }
        c
    }

    fn of(&self, what: Counted) -> usize {
        match what {
            Counted::Operations => self.operations,
            Counted::Changes => self.changes,
            Counted::MembersAdded => self.members_added,
            Counted::MembersRemoved => self.members_removed,
            Counted::Event(kind) => self.events.get(&kind).copied().unwrap_or(0),
        }
    }
}

impl<'a> Scope<'a> {
    /// Whether `rule` holds on some operation; if so, marks every operation it holds on. A rule
    /// that does not match looks at every operation anyway, so marking costs a matched rule no
    /// more than a rule that fails.
    fn mark_matches(&self, rule: &Rule, notable: &mut [bool]) -> bool {
        let ops = &self.request.operations;
        let holds = |(i, op): &(usize, &'a Operation)| self.holds(&rule.when, *i, op);
        let Some(first) = ops.iter().enumerate().position(|x| holds(&x)) else {
            return false;
        };
        for (i, op) in ops.iter().enumerate().skip(first) {
            if i == first || holds(&(i, op)) {
                if let Some(n) = notable.get_mut(i) {
                    *n = true;
                }
            }
        }
        true
    }

    fn holds(&self, c: &Condition, i: usize, op: &'a Operation) -> bool {
        match c {
            Condition::All(cs) => cs.iter().all(|c| self.holds(c, i, op)),
            Condition::Any(cs) => cs.iter().any(|c| self.holds(c, i, op)),
            Condition::Not(c) => !self.holds(c, i, op),
            Condition::Method(ms) => ms.iter().any(|m| m == op.method.as_str()),
            Condition::ResourceType(ts) => ts
                .iter()
                .any(|t| t.eq_ignore_ascii_case(op.resource_type.as_str())),
            Condition::Event(kinds) => op.events.iter().any(|e| kinds.contains(&e.kind)),
            Condition::Change(t) => op.changes.iter().any(|ch| self.change_matches(t, ch)),
            Condition::PrivilegedGroup(want) => {
                self.groups.privileged.get(i).copied().unwrap_or(false) == *want
            }
            Condition::Actor(t) => actor_matches(t, self.ctx.actor),
            Condition::Bulk(want) => self.request.bulk == *want,
            Condition::Count(t) => self.counts.of(t.of) >= t.at_least,
        }
    }
}

impl<'a> Scope<'a> {
    fn change_matches(&self, t: &ChangeTest, ch: &'a crate::scim::Change) -> bool {
        (t.ops.is_empty() || t.ops.contains(&ch.op))
            && (t.attributes.is_empty() || t.attributes.iter().any(|a| ch.is(a)))
            && (t.sub_attributes.is_empty()
                || ch
                    .sub_attribute
                    .as_deref()
                    .is_some_and(|s| t.sub_attributes.iter().any(|a| a.eq_ignore_ascii_case(s))))
            && t.flag.as_deref().is_none_or(|f| ch.flags.contains(&f))
            && t.attribute_matches
                .as_ref()
                .is_none_or(|re| self.attribute_matches(re, &ch.attribute))
            && t.value
                .as_ref()
                .is_none_or(|v| ch.values.iter().any(|x| v.matches(x)))
    }

    fn attribute_matches(&self, re: &Regex, attribute: &'a str) -> bool {
        let key = re as *const Regex;
        if let Ok(memo) = self.attr_memo.try_borrow() {
            if let Some((_, _, hit)) = memo.iter().find(|(r, a, _)| *r == key && *a == attribute) {
                return *hit;
            }
        }
        let hit = re.is_match(attribute);
        if let Ok(mut memo) = self.attr_memo.try_borrow_mut() {
            if memo.len() < 256 {
                memo.push((key, attribute, hit));
            }
        }
        hit
    }
}

fn actor_matches(t: &ActorTest, actor: Option<&str>) -> bool {
    match (t, actor) {
        (ActorTest::Missing, a) => a.is_none(),
        (ActorTest::Value(v), Some(a)) => v.matches(&Json::Str(Cow::Borrowed(a))),
        (ActorTest::Value(_), None) => false,
    }
}
