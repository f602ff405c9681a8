//! The access review (`scimguard report`): audit lines in, a [`Report`] out, rendered as text, JSON
//! or one self-contained HTML page.
//!
//! Owns: reading audit lines (`input`), the per-user and per-group state rebuilt from them
//! (`state`), the report model (`model`) and its renderings (`text`, `html`).
//! Does NOT: open files, decompress, read the clock or print. The CLI feeds lines one at a time with
//! their place (`file:line`) and passes "now" in [`Options`]. Memory grows with the number of users,
//! groups and actors, never with the number of lines: each timeline keeps its newest
//! [`Options::timeline_cap`] entries and counts the rest.
//!
//! What the trail is taken to mean:
//! * a write with `decision: block` did not happen; one with a 2xx `status` did; one with another
//!   status failed; one with no status is counted as unknown and not applied;
//! * state (who is active, who is in which group, who holds which role) is rebuilt from every record
//!   up to `--until`; lists of changes (timelines, high-risk, blocked attempts, reactivations) only
//!   show records from `--since` on;
//! * the newest write wins, whatever order the lines come in; `scim_write` records repeated with the
//!   same `audit_id` (the same trail read twice, or a collector copy) count once.

mod html;
pub mod input;
pub mod model;
pub mod state;
mod text;
pub mod when;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use regex_lite::Regex;

pub use html::render_html;
pub use input::{parse_line, Parsed};
pub use model::Report;
pub use text::render_text;

use crate::audit::record::{AccessRecord, ChangeEntry, EventEntry, Record, RuleEntry, WriteRecord};
use crate::scim::json::Json;
use crate::scim::EventKind;
use input::{filter_value, value_text, TimedRecord};
use state::{
    Actors, Attempt, Entry, Grant, Group, HighRisk, HighRiskRow, Key, Outcome, Status, User,
};

/// The default `--privileged-pattern`: group names and role values that grant administration.
pub const DEFAULT_PRIVILEGED_PATTERN: &str = "(?i)admin|owner|root|superuser|privileged|global";

/// How malformed lines are remembered in the report (the CLI prints as many on stderr).
pub const MALFORMED_SAMPLES: usize = 20;

/// What the report is asked for. Time is a parameter: nothing here reads a clock.
#[derive(Debug, Clone)]
pub struct Options {
    /// The review's "now" (epoch ms): stale accounts are measured against it.
    pub now_ms: u64,
    /// Changes before this are used for state but not listed.
    pub since_ms: Option<u64>,
    /// Records at or after this are ignored: the review is "as of" this instant.
    pub until_ms: Option<u64>,
    pub stale_after_ms: u64,
    pub privileged: Regex,
    /// Entries kept per user or group timeline.
    pub timeline_cap: usize,
    /// Rows kept in the lists of blocked attempts and recent high-risk writes.
    pub list_cap: usize,
}

impl Options {
    /// Defaults: stale after 90 days, the default privileged pattern, 25 entries per timeline.
    pub fn new(now_ms: u64) -> Options {
        Options {
            now_ms,
            since_ms: None,
            until_ms: None,
            stale_after_ms: 90 * 86_400_000,
            privileged: Regex::new(DEFAULT_PRIVILEGED_PATTERN).unwrap_or_else(|_| never()),
            timeline_cap: 25,
            list_cap: 500,
        }
    }

    /// Sets the privileged-name pattern; the error names the bad pattern.
    pub fn with_pattern(mut self, pattern: &str) -> Result<Options, String> {
        self.privileged = Regex::new(pattern)
            .map_err(|e| format!("bad --privileged-pattern `{pattern}`: {e}"))?;
        Ok(self)
    }
}

/// A pattern that matches nothing (only if the built-in default failed to compile, which a test rules out).
fn never() -> Regex {
    Regex::new(r"[^\s\S]").unwrap_or_else(|_| never())
}

/// Where a line came from, for messages: `audit.log.gz:123`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Place {
    pub source: String,
    pub line: u64,
}

/// Counts about the input itself.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct InputStats {
    pub lines: u64,
    pub scim_writes: u64,
    pub access_events: u64,
    /// Blank lines, `-`, and JSON that is not an audit record (Envoy access-log lines).
    pub foreign_lines: u64,
    pub malformed_lines: u64,
    /// `scim_write` records seen before under the same `audit_id`.
    pub duplicates: u64,
    /// Records at or after `--until`.
    pub after_until: u64,
    /// `scim_write` records before `--since` (used for state only).
    pub before_since: u64,
    /// Events with a `type` this version does not know.
    pub unknown_events: u64,
    /// Events with neither a resource id nor a name to attribute them to.
    pub unattributed_events: u64,
    pub access_without_actor: u64,
    /// Records cut to fit `audit.max_record_bytes`, and what they count but do not list: their
    /// kinds and member counts are right; state (who holds what) lacks the unlisted ids.
    pub truncated_records: u64,
    pub events_not_listed: u64,
    pub members_not_listed: u64,
    pub first_time: Option<u64>,
    pub last_time: Option<u64>,
}

/// A malformed line, as the report remembers it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Malformed {
    #[serde(flatten)]
    pub place: Place,
    pub reason: String,
}

/// The running aggregation. Feed it lines, then [`Aggregator::finish`].
#[derive(Debug)]
pub struct Aggregator {
    opts: Options,
    stats: InputStats,
    malformed: Vec<Malformed>,
    seen_writes: HashSet<u64>,
    actors: Actors,
    users: HashMap<String, User>,
    groups: HashMap<String, Group>,
    /// Lower-cased access actor → newest access.
    access: HashMap<String, u64>,
    /// Event kind → count by outcome, in the window.
    kinds: BTreeMap<EventKind, [u64; 4]>,
    /// Day → applied events by kind, in the window.
    daily: BTreeMap<u64, BTreeMap<EventKind, u64>>,
    high_risk: HighRisk,
    blocked_roles: state::Capped<Attempt>,
}

/// The facts shared by every event of one record.
struct Ctx<'a> {
    key: Key,
    actor: u32,
    outcome: Outcome,
    in_window: bool,
    record: &'a WriteRecord<'static>,
    privileged_rule: Option<&'a str>,
}

impl Aggregator {
    pub fn new(opts: Options) -> Aggregator {
        let cap = opts.list_cap;
        Aggregator {
            opts,
            stats: InputStats::default(),
            malformed: Vec::new(),
            seen_writes: HashSet::new(),
            actors: Actors::default(),
            users: HashMap::new(),
            groups: HashMap::new(),
            access: HashMap::new(),
            kinds: BTreeMap::new(),
            daily: BTreeMap::new(),
            high_risk: HighRisk::new(cap),
            blocked_roles: state::Capped::new(cap),
        }
    }

    /// Takes one line. Returns the reason when the line is malformed (the caller reports it).
    pub fn feed_line(&mut self, place: &Place, line: &str) -> Option<String> {
        self.stats.lines += 1;
        match parse_line(line) {
            Parsed::Records(records) => records.into_iter().for_each(|r| self.feed_record(r)),
            Parsed::Foreign => self.stats.foreign_lines += 1,
            Parsed::Malformed(reason) => {
                self.note_malformed(place, &reason);
                return Some(reason);
            }
        }
        None
    }

    /// Counts a line the caller could not even decode (not UTF-8, too long) as read and malformed.
    pub fn undecodable_line(&mut self, place: &Place, reason: &str) {
        self.stats.lines += 1;
        self.note_malformed(place, reason);
    }

    fn note_malformed(&mut self, place: &Place, reason: &str) {
        self.stats.malformed_lines += 1;
        if self.malformed.len() < MALFORMED_SAMPLES {
            self.malformed.push(Malformed {
                place: place.clone(),
                reason: reason.to_string(),
            });
        }
    }

    /// Takes one parsed record.
    pub fn feed_record(&mut self, r: TimedRecord) {
        let t = r.time_ms;
        if self.opts.until_ms.is_some_and(|u| t >= u) {
            self.stats.after_until += 1;
            return;
        }
        self.stats.first_time = Some(self.stats.first_time.map_or(t, |f| f.min(t)));
        self.stats.last_time = Some(self.stats.last_time.map_or(t, |l| l.max(t)));
        match &r.record {
            Record::ScimWrite(w) => self.write(t, w),
            Record::Access(a) => self.access_event(t, a),
        }
    }

    fn access_event(&mut self, time_ms: u64, r: &AccessRecord<'_>) {
        self.stats.access_events += 1;
        let Some(actor) = r.head.actor.as_deref().filter(|a| !a.is_empty()) else {
            self.stats.access_without_actor += 1;
            return;
        };
        let last = self.access.entry(actor.to_lowercase()).or_insert(0);
        *last = (*last).max(time_ms);
    }

    fn write(&mut self, time_ms: u64, r: &WriteRecord<'static>) {
        if let Some(id) = Some(r.head.audit_id.as_ref()).filter(|a| !a.is_empty()) {
            let mut h = DefaultHasher::new();
            id.hash(&mut h);
            if !self.seen_writes.insert(h.finish()) {
                self.stats.duplicates += 1;
                return;
            }
        }
        self.stats.scim_writes += 1;
        let in_window = self.opts.since_ms.is_none_or(|s| time_ms >= s);
        if !in_window {
            self.stats.before_since += 1;
        }
        let actor = self.actors.intern(
            r.head
                .actor
                .as_deref()
                .filter(|a| !a.is_empty())
                .unwrap_or("(unknown)"),
        );
        let ctx = Ctx {
            key: Key {
                time: time_ms,
                audit: r.head.audit_id.as_ref().into(),
                idx: 0,
            },
            actor,
            outcome: Outcome::of(r.decision.as_deref(), r.status.flatten()),
            in_window,
            record: r,
            privileged_rule: r
                .rules
                .iter()
                .map(|m| m.id.as_ref())
                .find(|id| id.starts_with("privileged-group")),
        };
        if in_window && !r.rules.is_empty() {
            self.high_risk_record(&ctx);
        }
        let mut role_changes_seen = false;
        if ctx.outcome == Outcome::Applied {
            role_changes_seen = self.role_changes(&ctx);
        }
        if r.truncated.is_some() {
            self.stats.truncated_records += 1;
            self.stats.events_not_listed += r.events_not_listed();
            self.stats.members_not_listed += r
                .events
                .iter()
                .map(|e| (e.member_count() - e.members.len()) as u64)
                .sum::<u64>();
        }
        // A cut record counts its events by type; the events it lists are some of them.
        let counted = !r.events_by_type.is_empty();
        if counted && in_window {
            for (name, n) in &r.events_by_type.0 {
                match EventKind::parse(name) {
                    Some(kind) => self.count_kind(kind, ctx.outcome, time_ms, *n),
                    None => self.stats.unknown_events += n,
                }
            }
        }
        for (i, ev) in r.events.iter().enumerate() {
            let Some(kind) = EventKind::parse(&ev.kind) else {
                if !counted {
                    self.stats.unknown_events += 1;
                }
                continue;
            };
            let key = Key {
                idx: u32::try_from(i).unwrap_or(u32::MAX),
                ..ctx.key.clone()
            };
            if in_window && !counted {
                self.count_kind(kind, ctx.outcome, time_ms, 1);
            }
            let rt = ev
                .resource_type
                .as_deref()
                .or(r.resource_type.as_deref())
                .unwrap_or_default();
            if rt.eq_ignore_ascii_case("Groups") {
                self.group_event(&ctx, &key, kind, ev);
            } else if rt.eq_ignore_ascii_case("Users") {
                self.user_event(&ctx, &key, kind, ev, role_changes_seen);
            }
        }
    }

    /// Counts `n` events of `kind` with `outcome` (by kind, and per day when applied).
    fn count_kind(&mut self, kind: EventKind, outcome: Outcome, time_ms: u64, n: u64) {
        let counts = self.kinds.entry(kind).or_insert([0; 4]);
        if let Some(c) = counts.get_mut(outcome.index()) {
            *c += n;
        }
        if outcome == Outcome::Applied {
            *self
                .daily
                .entry(when::day_of(time_ms))
                .or_default()
                .entry(kind)
                .or_insert(0) += n;
        }
    }

    fn user_event(
        &mut self,
        ctx: &Ctx<'_>,
        key: &Key,
        kind: EventKind,
        ev: &EventEntry<'_>,
        role_changes_seen: bool,
    ) {
        let id = ev
            .resource_id
            .as_deref()
            .or(ctx.record.resource_id.as_deref())
            .map(str::to_string);
        let Some(id) = id.or_else(|| {
            ev.user_name
                .as_ref()
                .map(|n| format!("userName:{}", n.to_lowercase()))
        }) else {
            self.stats.unattributed_events += 1;
            return;
        };
        let cap = self.opts.timeline_cap;
        let pattern = &self.opts.privileged;
        let user = self
            .users
            .entry(id.clone())
            .or_insert_with(|| User::new(cap));
        user.seen = true;
        let grant = Grant {
            key: key.clone(),
            actor: ctx.actor,
            via: kind,
        };
        let admin_values: Vec<String> = ev
            .values
            .iter()
            .filter_map(value_text)
            .filter(|v| pattern.is_match(v))
            .collect();
        match ctx.outcome {
            Outcome::Applied => {
                if let Some(n) = &ev.user_name {
                    user.set_name(key, n);
                }
                match kind {
                    EventKind::UserProvisioned => {
                        user.set_status(key, Status::Active);
                        if user.provisioned.as_ref().is_none_or(|g| g.key > *key) {
                            user.provisioned = Some(grant.clone());
                        }
                    }
                    EventKind::UserReactivated => {
                        user.set_status(key, Status::Active);
                        user.reactivations.push(key.clone(), ctx.actor);
                    }
                    EventKind::UserDeprovisioned => {
                        user.set_status(key, Status::Deprovisioned);
                        user.deprovisions.push(key.clone(), ctx.actor);
                    }
                    EventKind::UserDeleted => user.set_status(key, Status::Deleted),
                    EventKind::RoleChanged | EventKind::EntitlementChanged
                        if !role_changes_seen =>
                    {
                        let set = user.roles.entry(role_kind(kind)).or_default();
                        admin_values.iter().for_each(|v| set.add(v, &grant));
                    }
                    _ => {}
                }
            }
            Outcome::Blocked => {
                let attempt = || Attempt {
                    actor: ctx.actor,
                    kind,
                    target: id.clone(),
                    values: admin_values.clone(),
                    rules: rule_ids(ctx.record),
                };
                if matches!(kind, EventKind::UserDeprovisioned | EventKind::UserDeleted)
                    && user
                        .blocked_deprovision
                        .as_ref()
                        .is_none_or(|(k, _)| k < key)
                {
                    user.blocked_deprovision = Some((key.clone(), attempt()));
                }
                let grants_role =
                    matches!(kind, EventKind::RoleChanged | EventKind::EntitlementChanged);
                if ctx.in_window && grants_role && !admin_values.is_empty() {
                    self.blocked_roles.push(key.clone(), attempt());
                }
            }
            Outcome::Failed | Outcome::Unknown => {}
        }
        if ctx.in_window {
            let items = if admin_values.is_empty() {
                value_texts(&ev.values)
            } else {
                admin_values
            };
            let entry = Entry {
                kind,
                actor: ctx.actor,
                outcome: ctx.outcome,
                other: None,
                count: ev.values.len(),
                items: items.into_iter().take(5).collect(),
                name: ev.user_name.as_deref().map(str::to_string),
            };
            user.timeline.push(key.clone(), entry);
        }
    }

    fn group_event(&mut self, ctx: &Ctx<'_>, key: &Key, kind: EventKind, ev: &EventEntry<'_>) {
        let id = ev
            .resource_id
            .as_deref()
            .or(ctx.record.resource_id.as_deref())
            .map(str::to_string);
        let Some(id) = id.or_else(|| ev.display_name.as_ref().map(|n| format!("displayName:{n}")))
        else {
            self.stats.unattributed_events += 1;
            return;
        };
        let (cap, list_cap) = (self.opts.timeline_cap, self.opts.list_cap.min(50));
        let group = self
            .groups
            .entry(id.clone())
            .or_insert_with(|| Group::new(cap, list_cap));
        if let Some(rule) = ctx.privileged_rule {
            group.rule_ids.insert(rule.to_string());
        }
        let grant = Grant {
            key: key.clone(),
            actor: ctx.actor,
            via: kind,
        };
        match ctx.outcome {
            Outcome::Applied => {
                if let Some(n) = &ev.display_name {
                    group.set_name(key, n);
                }
                apply_group(group, kind, ev, &grant);
            }
            Outcome::Blocked
                if ctx.in_window
                    && matches!(
                        kind,
                        EventKind::GroupMemberAdded | EventKind::GroupMembersReplaced
                    ) =>
            {
                let attempt = Attempt {
                    actor: ctx.actor,
                    kind,
                    target: id.clone(),
                    values: ev.members.to_vec(),
                    rules: rule_ids(ctx.record),
                };
                group.blocked.push(key.clone(), attempt);
            }
            _ => {}
        }
        if !ctx.in_window {
            return;
        }
        let entry = Entry {
            kind,
            actor: ctx.actor,
            outcome: ctx.outcome,
            other: None,
            count: ev.member_count(),
            items: ev.members.iter().take(5).cloned().collect(),
            name: ev.display_name.as_deref().map(str::to_string),
        };
        group.timeline.push(key.clone(), entry.clone());
        if is_membership(kind) {
            for m in ev.members.iter() {
                let user = self
                    .users
                    .entry(m.clone())
                    .or_insert_with(|| User::new(cap));
                let e = Entry {
                    other: Some(id.clone()),
                    count: 1,
                    items: Vec::new(),
                    ..entry.clone()
                };
                user.timeline.push(key.clone(), e);
            }
        }
    }

    /// Applies the `roles`/`entitlements` changes of an applied record; true if it had any.
    fn role_changes(&mut self, ctx: &Ctx<'_>) -> bool {
        let mut seen = false;
        let base = ctx.record.events.len();
        for (j, c) in ctx.record.changes.iter().enumerate() {
            let Some(kind) = role_attribute(&c.attribute) else {
                continue;
            };
            let rt = c
                .resource_type
                .as_deref()
                .or(ctx.record.resource_type.as_deref())
                .unwrap_or_default();
            let id = c
                .resource_id
                .as_deref()
                .or(ctx.record.resource_id.as_deref())
                .map(str::to_string);
            let (true, Some(id)) = (rt.eq_ignore_ascii_case("Users"), id) else {
                continue;
            };
            seen = true;
            let key = Key {
                idx: u32::try_from(base + j).unwrap_or(u32::MAX),
                ..ctx.key.clone()
            };
            let via = if kind == "role" {
                EventKind::RoleChanged
            } else {
                EventKind::EntitlementChanged
            };
            let grant = Grant {
                key,
                actor: ctx.actor,
                via,
            };
            let cap = self.opts.timeline_cap;
            let set = self
                .users
                .entry(id)
                .or_insert_with(|| User::new(cap))
                .roles
                .entry(kind)
                .or_default();
            apply_role_change(set, c, &grant, &self.opts.privileged);
        }
        seen
    }

    fn high_risk_record(&mut self, ctx: &Ctx<'_>) {
        let (r, time_ms) = (ctx.record, ctx.key.time);
        let decision = r.decision.as_deref();
        let would_block = |m: &RuleEntry<'_>| {
            m.action.as_deref() == Some("block") && m.mode.as_deref() == Some("monitor")
        };
        let class = HighRisk::class(decision, r.rules.iter().any(would_block));
        let hr = &mut self.high_risk;
        bump(&mut hr.records, class);
        bump(
            hr.daily.entry(when::day_of(time_ms)).or_insert([0; 4]),
            class,
        );
        bump(
            hr.weekly.entry(when::week_of(time_ms)).or_insert([0; 4]),
            class,
        );
        let mut severity = String::new();
        for m in &r.rules {
            let sev = m.severity.as_deref().unwrap_or("unknown").to_string();
            if severity_rank(&sev) > severity_rank(&severity) {
                severity = sev.clone();
            }
            let stats = hr.by_rule.entry((m.id.to_string(), sev)).or_default();
            if stats.first == 0 || time_ms < stats.first {
                stats.first = time_ms;
            }
            if time_ms >= stats.last {
                stats.last = time_ms;
                stats.action = m.action.as_deref().unwrap_or_default().to_string();
            }
            stats
                .modes
                .insert(m.mode.as_deref().unwrap_or_default().to_string());
            bump(&mut stats.counts, HighRisk::class(decision, would_block(m)));
            *stats.weekly.entry(when::week_of(time_ms)).or_insert(0) += 1;
        }
        let row = HighRiskRow {
            actor: ctx.actor,
            method: r.head.method.to_string(),
            path: r.head.path.to_string(),
            class,
            rules: rule_ids(r),
            severity,
        };
        hr.recent.push(ctx.key.clone(), row);
    }

    /// Builds the report.
    pub fn finish(self) -> Report {
        model::build(self)
    }
}

fn apply_group(group: &mut Group, kind: EventKind, ev: &EventEntry<'_>, grant: &Grant) {
    match kind {
        EventKind::GroupCreated if group.created.as_ref().is_none_or(|k| *k < grant.key) => {
            group.created = Some(grant.key.clone());
        }
        EventKind::GroupDeleted if group.deleted.as_ref().is_none_or(|k| *k < grant.key) => {
            group.deleted = Some(grant.key.clone());
        }
        EventKind::GroupMemberAdded => ev.members.iter().for_each(|m| group.members.add(m, grant)),
        EventKind::GroupMemberRemoved
            if ev.members.is_empty() || ev.scope.as_deref() == Some("all") =>
        {
            group.members.reset(Vec::new(), grant);
        }
        EventKind::GroupMemberRemoved => ev
            .members
            .iter()
            .for_each(|m| group.members.remove(m, grant)),
        EventKind::GroupMembersReplaced => group.members.reset(ev.members.iter().cloned(), grant),
        _ => {}
    }
}

/// One `roles`/`entitlements` change on a user; only admin-like values are tracked.
fn apply_role_change(set: &mut state::LwwSet, c: &ChangeEntry<'_>, grant: &Grant, pattern: &Regex) {
    let values: Vec<String> = c
        .values
        .iter()
        .filter_map(value_text)
        .filter(|v| pattern.is_match(v))
        .collect();
    let filtered = c.filter.as_deref().and_then(filter_value);
    match c.op.to_ascii_lowercase().as_str() {
        "add" => values.iter().for_each(|v| set.add(v, grant)),
        "replace" if c.filter.is_none() && c.sub_attribute.is_none() => set.reset(values, grant),
        "replace" => {
            filtered.iter().for_each(|v| set.remove(v, grant));
            values.iter().for_each(|v| set.add(v, grant));
        }
        "remove" if !c.values.is_empty() => values.iter().for_each(|v| set.remove(v, grant)),
        "remove" => match (&c.filter, filtered) {
            (_, Some(v)) => set.remove(&v, grant),
            // An unreadable filter: keep what is held (a reviewer would rather see one role too many).
            (Some(_), None) => {}
            (None, None) => set.reset(Vec::new(), grant),
        },
        _ => {}
    }
}

fn rule_ids(r: &WriteRecord<'_>) -> Vec<String> {
    r.rules.iter().map(|m| m.id.to_string()).collect()
}

fn role_attribute(attribute: &str) -> Option<&'static str> {
    if attribute.eq_ignore_ascii_case("roles") {
        Some("role")
    } else if attribute.eq_ignore_ascii_case("entitlements") {
        Some("entitlement")
    } else {
        None
    }
}

fn role_kind(kind: EventKind) -> &'static str {
    if kind == EventKind::EntitlementChanged {
        "entitlement"
    } else {
        "role"
    }
}

fn is_membership(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::GroupMemberAdded
            | EventKind::GroupMemberRemoved
            | EventKind::GroupMembersReplaced
    )
}

fn value_texts(values: &[Json<'_>]) -> Vec<String> {
    values.iter().filter_map(value_text).collect()
}

fn bump(counts: &mut [u64; 4], class: usize) {
    if let Some(c) = counts.get_mut(class) {
        *c += 1;
    }
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 4,
        "high" => 3,
        "medium" => 2,
        "low" => 1,
        "" => 0,
        _ => 1,
    }
}
