//! Compiled rules: the types a valid policy is made of. Nothing here can be invalid: names are
//! folded, regexes built and event names resolved at compile time.

use serde::Serialize;

use super::eval::{Action, Severity};
use super::value_test::ValueTest;
use crate::scim::{EventKind, Op};

/// A rule's id, unique within a policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RuleId(pub String);

impl RuleId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a matching block rule blocks (`Enforce`) or only tags and logs "would block" (`Monitor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Enforce,
    Monitor,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Monitor => "monitor",
        }
    }
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: RuleId,
    pub description: String,
    pub severity: Severity,
    pub action: Action,
    /// Per-rule mode override; `None` follows the policy's mode.
    pub mode: Option<Mode>,
    /// Status of the block reply (default: the policy's `block_status`).
    pub status: Option<u16>,
    /// Ask for a high-risk notification when this rule matches.
    pub notify: bool,
    pub when: Condition,
}

/// A compiled condition. Operation-scoped conditions look at one operation (the request, or one
/// Bulk operation); `Count` and `Bulk` look at the whole request.
#[derive(Debug, Clone)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    /// Upper-case method names.
    Method(Vec<String>),
    /// Canonical resource type names (`Users`, `Groups`, a custom type).
    ResourceType(Vec<String>),
    Event(Vec<EventKind>),
    Change(ChangeTest),
    /// The operation targets a privileged group (by id, known name, or a name given in the request).
    PrivilegedGroup(bool),
    /// A test on the actor; `None` when the request has no actor.
    Actor(ActorTest),
    /// The request is a Bulk.
    Bulk(bool),
    Count(CountTest),
}

/// Matches when one change of the operation satisfies every given field.
#[derive(Debug, Clone, Default)]
pub struct ChangeTest {
    pub ops: Vec<Op>,
    /// Canonical attribute names, compared case-insensitively.
    pub attributes: Vec<String>,
    /// A pattern over the canonical attribute name (e.g. extension attributes named like `isAdmin`).
    pub attribute_matches: Option<regex_lite::Regex>,
    pub sub_attributes: Vec<String>,
    pub value: Option<ValueTest>,
    /// A flag the normaliser set (`remove_listed_or_all`, `string_boolean`…).
    pub flag: Option<String>,
}

#[derive(Debug, Clone)]
pub enum ActorTest {
    /// Matches when the actor is absent.
    Missing,
    Value(ValueTest),
}

/// What a `count` counts across the whole request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Operations,
    Changes,
    MembersAdded,
    MembersRemoved,
    Event(EventKind),
}

impl Counted {
    pub const NAMES: [&'static str; 4] =
        ["operations", "changes", "members_added", "members_removed"];
}

#[derive(Debug, Clone)]
pub struct CountTest {
    pub of: Counted,
    pub at_least: usize,
}
