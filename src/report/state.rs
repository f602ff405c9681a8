//! The running state of a report: per user and per group, never per line.
//!
//! Input order does not matter. Logs from several Envoy instances and rotated files interleave, so
//! every piece of state is decided by the newest write that touched it ("last writer wins" on
//! [`Key`]): a user's status, each (group, member) pair, each (user, role) pair. Timelines keep the
//! newest `cap` entries. The same records in any order give the same report.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::scim::EventKind;

/// Orders everything the report knows: when, then the audit id, then the position in the record.
// INVARIANT: unique per (record, event or change); records are de-duplicated by audit id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub time: u64,
    pub audit: Box<str>,
    pub idx: u32,
}

/// What happened to the write a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not blocked, and the upstream answered 2xx.
    Applied,
    /// Blocked by an enforced rule: the upstream never saw it.
    Blocked,
    /// Forwarded, and the upstream answered an error.
    Failed,
    /// Forwarded, with no status (the stream was reset): counted, not applied.
    Unknown,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Applied,
        Outcome::Blocked,
        Outcome::Failed,
        Outcome::Unknown,
    ];

    pub fn of(decision: Option<&str>, status: Option<u16>) -> Outcome {
        match (decision, status) {
            (Some("block"), _) => Outcome::Blocked,
            (_, Some(200..=299)) => Outcome::Applied,
            (_, Some(_)) => Outcome::Failed,
            (_, None) => Outcome::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Blocked => "blocked",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Outcome::Applied => 0,
            Outcome::Blocked => 1,
            Outcome::Failed => 2,
            Outcome::Unknown => 3,
        }
    }
}

/// Actor names, stored once (a trail has few provisioning clients and many records).
#[derive(Debug, Default)]
pub struct Actors {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Actors {
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    pub fn name(&self, id: u32) -> &str {
        self.names
            .get(id as usize)
            .map_or("(unknown)", String::as_str)
    }
}

/// Who did something, when, and by which event.
#[derive(Debug, Clone)]
pub struct Grant {
    pub key: Key,
    pub actor: u32,
    pub via: EventKind,
}

/// A set rebuilt from adds, removes and replaces, each judged by its key.
#[derive(Debug, Default)]
pub struct LwwSet {
    reset: Option<(Grant, HashSet<String>)>,
    entries: HashMap<String, (Grant, bool)>,
}

impl LwwSet {
    pub fn add(&mut self, item: &str, grant: &Grant) {
        self.put(item, grant, true);
    }

    pub fn remove(&mut self, item: &str, grant: &Grant) {
        self.put(item, grant, false);
    }

    /// The set becomes exactly `items` (a replace, or a remove-all with no items).
    pub fn reset(&mut self, items: impl IntoIterator<Item = String>, grant: &Grant) {
        if self.reset.as_ref().is_none_or(|(g, _)| g.key < grant.key) {
            self.reset = Some((grant.clone(), items.into_iter().collect()));
        }
    }

    fn put(&mut self, item: &str, grant: &Grant, present: bool) {
        match self.entries.get_mut(item) {
            Some((g, p)) if g.key < grant.key => {
                *g = grant.clone();
                *p = present;
            }
            Some(_) => {}
            None => {
                self.entries
                    .insert(item.to_string(), (grant.clone(), present));
            }
        }
    }

    /// The members now, each with the write that put it there, ignoring writes before `void_before`.
    pub fn current(&self, void_before: Option<&Key>) -> Vec<(&str, &Grant)> {
        let mut out: Vec<(&str, &Grant)> = Vec::new();
        for (item, (g, present)) in &self.entries {
            match &self.reset {
                Some((rg, set)) if rg.key > g.key && set.contains(item) => out.push((item, rg)),
                Some((rg, _)) if rg.key > g.key => {}
                _ if *present => out.push((item, g)),
                _ => {}
            }
        }
        if let Some((rg, set)) = &self.reset {
            out.extend(
                set.iter()
                    .filter(|i| !self.entries.contains_key(*i))
                    .map(|i| (i.as_str(), rg)),
            );
        }
        out.retain(|(_, g)| void_before.is_none_or(|v| &g.key > v));
        out.sort_by(|a, b| a.0.cmp(b.0));
        out
    }
}

/// The newest `cap` items by key, and how many older ones were dropped.
#[derive(Debug)]
pub struct Capped<T> {
    pub items: Vec<(Key, T)>,
    pub dropped: u64,
    cap: usize,
}

impl<T> Capped<T> {
    pub fn new(cap: usize) -> Self {
        Capped {
            items: Vec::new(),
            dropped: 0,
            cap,
        }
    }

    pub fn push(&mut self, key: Key, item: T) {
        let at = self.items.partition_point(|(k, _)| k <= &key);
        self.items.insert(at, (key, item));
        if self.items.len() > self.cap {
            self.items.remove(0);
            self.dropped += 1;
        }
    }

    pub fn total(&self) -> u64 {
        self.items.len() as u64 + self.dropped
    }
}

/// One line of an entity's timeline.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: EventKind,
    pub actor: u32,
    pub outcome: Outcome,
    /// The other side: the group of a user's membership entry.
    pub other: Option<String>,
    /// Member ids (group entries) or role values, at most a few.
    pub items: Vec<String>,
    /// How many member ids or values the event carried.
    pub count: usize,
    /// The userName or displayName the event carried.
    pub name: Option<String>,
}

/// Account status as the newest lifecycle write left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Deprovisioned,
    Deleted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Deprovisioned => "deprovisioned",
            Status::Deleted => "deleted",
        }
    }
}

/// A blocked write worth showing (a deprovision that did not happen, a privileged grant refused).
#[derive(Debug, Clone)]
pub struct Attempt {
    pub actor: u32,
    pub kind: EventKind,
    pub target: String,
    pub values: Vec<String>,
    pub rules: Vec<String>,
}

#[derive(Debug)]
pub struct User {
    /// Seen as the target of a Users write (not only as a group member).
    pub seen: bool,
    pub name: Option<(Key, String)>,
    /// Every userName it had, lower-cased, to match access actors.
    pub aliases: HashSet<String>,
    pub status: Option<(Key, Status)>,
    pub provisioned: Option<Grant>,
    pub deprovisions: Capped<u32>,
    pub reactivations: Capped<u32>,
    pub blocked_deprovision: Option<(Key, Attempt)>,
    pub roles: BTreeMap<&'static str, LwwSet>,
    pub timeline: Capped<Entry>,
}

impl User {
    pub fn new(cap: usize) -> Self {
        User {
            seen: false,
            name: None,
            aliases: HashSet::new(),
            status: None,
            provisioned: None,
            deprovisions: Capped::new(64),
            reactivations: Capped::new(64),
            blocked_deprovision: None,
            roles: BTreeMap::new(),
            timeline: Capped::new(cap),
        }
    }

    pub fn set_name(&mut self, key: &Key, name: &str) {
        self.aliases.insert(name.to_lowercase());
        if self.name.as_ref().is_none_or(|(k, _)| k < key) {
            self.name = Some((key.clone(), name.to_string()));
        }
    }

    pub fn set_status(&mut self, key: &Key, status: Status) {
        if self.status.as_ref().is_none_or(|(k, _)| k < key) {
            self.status = Some((key.clone(), status));
        }
    }

    pub fn status(&self) -> Option<Status> {
        self.status.as_ref().map(|(_, s)| *s)
    }

    /// When the account last became active (provisioned or reactivated).
    pub fn active_since(&self) -> Option<&Key> {
        let p = self.provisioned.as_ref().map(|g| &g.key);
        let r = self.reactivations.items.last().map(|(k, _)| k);
        p.max(r)
    }
}

#[derive(Debug)]
pub struct Group {
    pub name: Option<(Key, String)>,
    /// Every displayName it had.
    pub names: HashSet<String>,
    /// A `privileged-group-*` rule matched a write on it.
    pub rule_ids: HashSet<String>,
    pub created: Option<Key>,
    pub deleted: Option<Key>,
    pub members: LwwSet,
    pub blocked: Capped<Attempt>,
    pub timeline: Capped<Entry>,
}

impl Group {
    pub fn new(cap: usize, blocked_cap: usize) -> Self {
        Group {
            name: None,
            names: HashSet::new(),
            rule_ids: HashSet::new(),
            created: None,
            deleted: None,
            members: LwwSet::default(),
            blocked: Capped::new(blocked_cap),
            timeline: Capped::new(cap),
        }
    }

    pub fn set_name(&mut self, key: &Key, name: &str) {
        self.names.insert(name.to_string());
        if self.name.as_ref().is_none_or(|(k, _)| k < key) {
            self.name = Some((key.clone(), name.to_string()));
        }
    }

    /// Deleted, and not created again since.
    pub fn is_deleted(&self) -> bool {
        match (&self.deleted, &self.created) {
            (Some(d), Some(c)) => d > c,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

/// One matched rule, summed.
#[derive(Debug, Default)]
pub struct RuleStats {
    pub action: String,
    /// Every mode the rule ran in (`enforce`, `monitor`).
    pub modes: std::collections::BTreeSet<String>,
    /// By high-risk class (see `HighRisk::class`).
    pub counts: [u64; 4],
    pub first: u64,
    pub last: u64,
    pub weekly: BTreeMap<u64, u64>,
}

/// High-risk records: any record that matched a rule.
#[derive(Debug)]
pub struct HighRisk {
    pub by_rule: BTreeMap<(String, String), RuleStats>,
    pub daily: BTreeMap<u64, [u64; 4]>,
    pub weekly: BTreeMap<u64, [u64; 4]>,
    pub records: [u64; 4],
    pub recent: Capped<HighRiskRow>,
}

#[derive(Debug, Clone)]
pub struct HighRiskRow {
    pub actor: u32,
    pub method: String,
    pub path: String,
    pub class: usize,
    pub rules: Vec<String>,
    pub severity: String,
}

/// High-risk classes, in display order.
pub const CLASSES: [&str; 4] = ["blocked", "monitor_only", "tagged", "logged"];

impl HighRisk {
    pub fn new(cap: usize) -> Self {
        HighRisk {
            by_rule: BTreeMap::new(),
            daily: BTreeMap::new(),
            weekly: BTreeMap::new(),
            records: [0; 4],
            recent: Capped::new(cap),
        }
    }

    /// blocked (the request was blocked), monitor_only (tagged because a block rule ran in monitor
    /// mode), tagged, logged (allowed; a log rule matched).
    pub fn class(decision: Option<&str>, would_block: bool) -> usize {
        match decision {
            Some("block") => 0,
            Some("tag") if would_block => 1,
            Some("tag") => 2,
            _ => 3,
        }
    }
}
