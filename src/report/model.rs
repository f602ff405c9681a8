//! The report as data: what `--format json` prints and what the text and HTML renderings show.
//! Every list is sorted, so the same trail always gives the same bytes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::state::{Attempt, Capped, Entry, Grant, Key, LwwSet, Status, User, CLASSES};
use super::when::{day_label, format_duration, whole_days};
use super::{Aggregator, InputStats, Malformed};
use crate::audit::time::rfc3339_ms;
use crate::scim::EventKind;

/// Version of this JSON shape; fields are added, never renamed.
pub const REPORT_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Report {
    pub report_version: u32,
    pub parameters: Parameters,
    pub input: InputSection,
    pub summary: ReportSummary,
    pub lifecycle: Lifecycle,
    pub privileged: Privileged,
    pub stale: Stale,
    pub high_risk: HighRiskSection,
    pub activity: Vec<ActivityDay>,
}

#[derive(Debug, Serialize)]
pub struct Parameters {
    pub now: String,
    pub since: Option<String>,
    pub until: Option<String>,
    pub stale_after: String,
    pub privileged_pattern: String,
    pub timeline_cap: usize,
}

#[derive(Debug, Serialize)]
pub struct InputSection {
    #[serde(flatten)]
    pub stats: InputStats,
    /// The first malformed lines (at most 20), with their place and reason.
    pub malformed: Vec<Malformed>,
    /// Distinct access actors that match no known user (by userName or id).
    pub access_actors_unmatched: u64,
}

/// The key numbers. Each has a stable `id` in the HTML (`kpi-<name>`).
#[derive(Debug, Serialize, Default)]
pub struct ReportSummary {
    pub users_known: u64,
    pub users_active: u64,
    pub users_deprovisioned: u64,
    pub users_deleted: u64,
    /// Seen only in updates or memberships: provisioned before the trail starts.
    pub users_status_unknown: u64,
    pub groups_known: u64,
    pub groups_privileged: u64,
    pub privileged_memberships: u64,
    pub admin_role_grants: u64,
    /// Distinct accounts holding a privileged membership or an admin-like role.
    pub privileged_principals: u64,
    pub privileged_blocked_attempts: u64,
    pub stale_accounts: u64,
    pub stale_never_accessed: u64,
    pub active_after_blocked_deprovision: u64,
    pub reactivated_after_deprovision: u64,
    pub high_risk_writes: u64,
    pub high_risk_blocked: u64,
    pub high_risk_monitor_only: u64,
    pub high_risk_tagged: u64,
    pub high_risk_logged: u64,
    pub events_applied: u64,
    pub events_blocked: u64,
    pub events_failed: u64,
    pub events_unknown: u64,
}

#[derive(Debug, Serialize)]
pub struct KindCount {
    pub kind: &'static str,
    pub applied: u64,
    pub blocked: u64,
    pub failed: u64,
    pub unknown: u64,
}

#[derive(Debug, Serialize)]
pub struct Lifecycle {
    /// Events in the window by kind and outcome.
    pub events: Vec<KindCount>,
    pub users: Vec<Timeline>,
    pub groups: Vec<Timeline>,
}

/// One user's or group's changes in the window, newest `timeline_cap` kept.
#[derive(Debug, Serialize)]
pub struct Timeline {
    pub id: String,
    pub name: Option<String>,
    pub status: &'static str,
    pub events_total: u64,
    /// Older entries not kept (see `parameters.timeline_cap`).
    pub events_omitted: u64,
    pub events: Vec<TimelineEntry>,
}

#[derive(Debug, Serialize)]
pub struct TimelineEntry {
    pub time: String,
    pub kind: &'static str,
    pub actor: String,
    pub outcome: &'static str,
    pub detail: String,
    pub audit_id: String,
}

#[derive(Debug, Serialize)]
pub struct Privileged {
    pub groups: Vec<PrivilegedGroup>,
    /// Privileged groups that were deleted (no longer grant anything).
    pub deleted_groups: u64,
    pub roles: Vec<RoleHolding>,
    /// Blocked writes that would have granted privilege, newest first (capped; see the total).
    pub blocked_attempts: Vec<AttemptRow>,
    pub blocked_attempts_total: u64,
}

#[derive(Debug, Serialize)]
pub struct PrivilegedGroup {
    pub id: String,
    pub name: Option<String>,
    /// `name` (matches the privileged pattern) and/or `rule:<id>` (a privileged-group rule matched).
    pub privileged_by: Vec<String>,
    pub members: Vec<Holding>,
    pub blocked_attempts: u64,
}

/// A member of a privileged group now, and the write that made it so.
#[derive(Debug, Serialize)]
pub struct Holding {
    pub id: String,
    pub name: Option<String>,
    /// `active`, `deprovisioned`, `unknown` (not provisioned in the trail) or `group` (nested).
    pub status: &'static str,
    pub granted_by: String,
    pub granted_at: String,
    pub via: &'static str,
}

#[derive(Debug, Serialize)]
pub struct RoleHolding {
    pub user_id: String,
    pub user_name: Option<String>,
    pub status: &'static str,
    /// `role` or `entitlement`.
    pub kind: &'static str,
    pub value: String,
    pub granted_by: String,
    pub granted_at: String,
}

#[derive(Debug, Serialize)]
pub struct AttemptRow {
    pub time: String,
    pub actor: String,
    pub kind: &'static str,
    pub target_id: String,
    pub target: Option<String>,
    /// Members or role values asked for.
    pub values: Vec<String>,
    pub rules: Vec<String>,
    pub audit_id: String,
}

#[derive(Debug, Serialize)]
pub struct Stale {
    pub stale_after: String,
    /// Active accounts with no access since this instant (and active before it) are stale.
    pub threshold: String,
    pub inactive: Vec<StaleAccount>,
    pub active_after_blocked_deprovision: Vec<AttemptRow>,
    pub reactivated: Vec<Reactivation>,
}

#[derive(Debug, Serialize)]
pub struct StaleAccount {
    pub id: String,
    pub user_name: Option<String>,
    pub active_since: String,
    pub provisioned_by: Option<String>,
    pub last_access: Option<String>,
    pub idle_days: u64,
}

#[derive(Debug, Serialize)]
pub struct Reactivation {
    pub id: String,
    pub user_name: Option<String>,
    pub status: &'static str,
    pub deprovisioned_at: String,
    pub deprovisioned_by: String,
    pub reactivated_at: String,
    pub reactivated_by: String,
}

#[derive(Debug, Serialize)]
pub struct HighRiskSection {
    pub by_rule: Vec<RuleRow>,
    pub by_severity: Vec<ClassCounts>,
    pub daily: Vec<ClassCounts>,
    pub weekly: Vec<ClassCounts>,
    /// The newest high-risk writes (capped; see `summary.high_risk_writes`).
    pub recent: Vec<HighRiskWrite>,
}

/// Counts by class: `blocked`, `monitor_only` (a block rule in monitor mode let it through),
/// `tagged`, `logged`. `label` is a severity, a day or a week's Monday.
#[derive(Debug, Serialize)]
pub struct ClassCounts {
    pub label: String,
    pub total: u64,
    pub blocked: u64,
    pub monitor_only: u64,
    pub tagged: u64,
    pub logged: u64,
}

#[derive(Debug, Serialize)]
pub struct RuleRow {
    pub rule: String,
    pub severity: String,
    pub action: String,
    /// The modes it ran in: `enforce`, `monitor` or `enforce+monitor`.
    pub mode: String,
    pub first: String,
    pub last: String,
    #[serde(flatten)]
    pub counts: ClassCounts,
    /// Matches per week (Monday, count).
    pub weekly: Vec<(String, u64)>,
}

#[derive(Debug, Serialize)]
pub struct HighRiskWrite {
    pub time: String,
    pub actor: String,
    pub method: String,
    pub path: String,
    pub class: &'static str,
    pub severity: String,
    pub rules: Vec<String>,
    pub audit_id: String,
}

/// Applied events on one day, by kind.
#[derive(Debug, Serialize)]
pub struct ActivityDay {
    pub day: String,
    pub total: u64,
    pub kinds: BTreeMap<&'static str, u64>,
}

/// Resolves ids to names and actor ids to actor names while the report is built.
struct Names<'a> {
    agg: &'a Aggregator,
}

impl Names<'_> {
    fn user(&self, id: &str) -> Option<String> {
        self.agg
            .users
            .get(id)
            .and_then(|u| u.name.as_ref())
            .map(|(_, n)| n.clone())
    }

    fn group(&self, id: &str) -> Option<String> {
        let g = self.agg.groups.get(id)?;
        g.name
            .as_ref()
            .map(|(_, n)| n.clone())
            .or_else(|| id.strip_prefix("displayName:").map(str::to_string))
    }

    fn either(&self, id: &str) -> String {
        self.user(id)
            .or_else(|| self.group(id))
            .unwrap_or_else(|| id.to_string())
    }

    fn actor(&self, id: u32) -> String {
        self.agg.actors.name(id).to_string()
    }

    fn user_status(&self, id: &str) -> &'static str {
        match self.agg.users.get(id).and_then(User::status) {
            Some(s) => s.as_str(),
            None if self.agg.groups.contains_key(id) => "group",
            None => "unknown",
        }
    }
}

pub(super) fn build(agg: Aggregator) -> Report {
    let n = Names { agg: &agg };
    let o = &agg.opts;
    let privileged = privileged(&n);
    let stale = stale(&n);
    let high_risk = high_risk(&n);
    let lifecycle = lifecycle(&n);
    let summary = summary(&n, &privileged, &stale, &lifecycle);
    Report {
        report_version: REPORT_VERSION,
        parameters: Parameters {
            now: rfc3339_ms(o.now_ms),
            since: o.since_ms.map(rfc3339_ms),
            until: o.until_ms.map(rfc3339_ms),
            stale_after: format_duration(o.stale_after_ms),
            privileged_pattern: o.privileged.as_str().to_string(),
            timeline_cap: o.timeline_cap,
        },
        input: InputSection {
            stats: agg.stats.clone(),
            malformed: agg.malformed.clone(),
            access_actors_unmatched: unmatched_actors(&agg),
        },
        summary,
        lifecycle,
        privileged,
        stale,
        high_risk,
        activity: activity(&agg),
    }
}

fn summary(n: &Names<'_>, p: &Privileged, s: &Stale, l: &Lifecycle) -> ReportSummary {
    let agg = n.agg;
    let mut out = ReportSummary::default();
    for u in agg.users.values().filter(|u| u.seen) {
        out.users_known += 1;
        match u.status() {
            Some(Status::Active) => out.users_active += 1,
            Some(Status::Deprovisioned) => out.users_deprovisioned += 1,
            Some(Status::Deleted) => out.users_deleted += 1,
            None => out.users_status_unknown += 1,
        }
    }
    out.groups_known = agg.groups.values().filter(|g| !g.is_deleted()).count() as u64;
    out.groups_privileged = p.groups.len() as u64;
    out.privileged_memberships = p.groups.iter().map(|g| g.members.len() as u64).sum();
    out.admin_role_grants = p.roles.len() as u64;
    let mut principals: BTreeSet<&str> = p
        .groups
        .iter()
        .flat_map(|g| g.members.iter().map(|m| m.id.as_str()))
        .collect();
    principals.extend(p.roles.iter().map(|r| r.user_id.as_str()));
    out.privileged_principals = principals.len() as u64;
    out.privileged_blocked_attempts = p.blocked_attempts_total;
    out.stale_accounts = s.inactive.len() as u64;
    out.stale_never_accessed = s
        .inactive
        .iter()
        .filter(|a| a.last_access.is_none())
        .count() as u64;
    out.active_after_blocked_deprovision = s.active_after_blocked_deprovision.len() as u64;
    out.reactivated_after_deprovision = s.reactivated.len() as u64;
    let hr = agg.high_risk.records;
    out.high_risk_writes = hr.iter().sum();
    [
        out.high_risk_blocked,
        out.high_risk_monitor_only,
        out.high_risk_tagged,
        out.high_risk_logged,
    ] = hr;
    for k in &l.events {
        out.events_applied += k.applied;
        out.events_blocked += k.blocked;
        out.events_failed += k.failed;
        out.events_unknown += k.unknown;
    }
    out
}

fn lifecycle(n: &Names<'_>) -> Lifecycle {
    let agg = n.agg;
    let events = agg
        .kinds
        .iter()
        .map(|(k, &[applied, blocked, failed, unknown])| KindCount {
            kind: k.as_str(),
            applied,
            blocked,
            failed,
            unknown,
        })
        .collect();
    let mut users: Vec<Timeline> = agg
        .users
        .iter()
        .filter(|(_, u)| u.timeline.total() > 0)
        .map(|(id, u)| {
            timeline(
                n,
                id,
                u.name.as_ref().map(|(_, s)| s.clone()),
                n.user_status(id),
                &u.timeline,
                true,
            )
        })
        .collect();
    let mut groups: Vec<Timeline> = agg
        .groups
        .iter()
        .filter(|(_, g)| g.timeline.total() > 0)
        .map(|(id, g)| {
            let status = if g.is_deleted() { "deleted" } else { "exists" };
            timeline(n, id, n.group(id), status, &g.timeline, false)
        })
        .collect();
    users.sort_by(|a, b| a.id.cmp(&b.id));
    groups.sort_by(|a, b| a.id.cmp(&b.id));
    Lifecycle {
        events,
        users,
        groups,
    }
}

fn timeline(
    n: &Names<'_>,
    id: &str,
    name: Option<String>,
    status: &'static str,
    t: &Capped<Entry>,
    user: bool,
) -> Timeline {
    Timeline {
        id: id.to_string(),
        name,
        status,
        events_total: t.total(),
        events_omitted: t.dropped,
        events: t
            .items
            .iter()
            .map(|(k, e)| TimelineEntry {
                time: rfc3339_ms(k.time),
                kind: e.kind.as_str(),
                actor: n.actor(e.actor),
                outcome: e.outcome.as_str(),
                detail: if user {
                    user_detail(n, e)
                } else {
                    group_detail(n, e)
                },
                audit_id: k.audit.to_string(),
            })
            .collect(),
    }
}

fn user_detail(n: &Names<'_>, e: &Entry) -> String {
    if let Some(group) = &e.other {
        let g = n.group(group).unwrap_or_else(|| group.clone());
        return match e.kind {
            EventKind::GroupMemberAdded => format!("added to {g}"),
            EventKind::GroupMemberRemoved => format!("removed from {g}"),
            _ => format!("membership of {g} set (replace)"),
        };
    }
    let values = format!("{}{}", e.items.join(", "), more(e.count, e.items.len()));
    match (e.kind, &e.name) {
        (EventKind::IdentityChanged, Some(name)) => format!("userName → {name}"),
        (EventKind::IdentityChanged, None) if !e.items.is_empty() => format!("changed: {values}"),
        (EventKind::RoleChanged, _) if !e.items.is_empty() => format!("roles: {values}"),
        (EventKind::EntitlementChanged, _) if !e.items.is_empty() => {
            format!("entitlements: {values}")
        }
        (_, Some(name)) => format!("userName {name}"),
        _ if !e.items.is_empty() => values,
        _ => String::new(),
    }
}

fn group_detail(n: &Names<'_>, e: &Entry) -> String {
    let names: Vec<String> = e.items.iter().map(|m| n.either(m)).collect();
    let list = format!("{}{}", names.join(", "), more(e.count, names.len()));
    match e.kind {
        EventKind::GroupMemberAdded => format!("+{} member(s): {list}", e.count),
        EventKind::GroupMemberRemoved if e.count == 0 => "all members removed".into(),
        EventKind::GroupMemberRemoved => format!("−{} member(s): {list}", e.count),
        EventKind::GroupMembersReplaced => format!("members set to {} : {list}", e.count),
        _ => e
            .name
            .as_ref()
            .map(|d| format!("displayName {d}"))
            .unwrap_or_default(),
    }
}

fn more(total: usize, shown: usize) -> String {
    if total > shown {
        format!(" (+{} more)", total - shown)
    } else {
        String::new()
    }
}

fn privileged(n: &Names<'_>) -> Privileged {
    let agg = n.agg;
    let pattern = &agg.opts.privileged;
    let mut groups = Vec::new();
    let mut deleted_groups = 0;
    let mut attempts: Vec<(&Key, &Attempt)> = Vec::new();
    let mut attempts_total = agg.blocked_roles.total();
    for (id, g) in &agg.groups {
        let mut by = Vec::new();
        let fallback = id.strip_prefix("displayName:");
        if g.names
            .iter()
            .map(String::as_str)
            .chain(fallback)
            .any(|name| pattern.is_match(name))
        {
            by.push("name".to_string());
        }
        let mut rules: Vec<&String> = g.rule_ids.iter().collect();
        rules.sort();
        by.extend(rules.into_iter().map(|r| format!("rule:{r}")));
        if by.is_empty() {
            continue;
        }
        attempts_total += g.blocked.total();
        attempts.extend(g.blocked.items.iter().map(|(k, a)| (k, a)));
        if g.is_deleted() {
            deleted_groups += 1;
            continue;
        }
        let members = holdings(n, &g.members, g.deleted.as_ref());
        groups.push(PrivilegedGroup {
            id: id.clone(),
            name: n.group(id),
            privileged_by: by,
            members,
            blocked_attempts: g.blocked.total(),
        });
    }
    groups.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    attempts.extend(agg.blocked_roles.items.iter().map(|(k, a)| (k, a)));
    attempts.sort_by(|a, b| b.0.cmp(a.0));
    attempts.truncate(agg.opts.list_cap);
    let blocked_attempts = attempts
        .into_iter()
        .map(|(k, a)| attempt_row(n, k, a))
        .collect();
    Privileged {
        groups,
        deleted_groups,
        roles: roles(n),
        blocked_attempts,
        blocked_attempts_total: attempts_total,
    }
}

fn holdings(n: &Names<'_>, set: &LwwSet, void_before: Option<&Key>) -> Vec<Holding> {
    set.current(void_before)
        .into_iter()
        .filter(|(id, _)| n.user_status(id) != "deleted")
        .map(|(id, g)| Holding {
            id: id.to_string(),
            name: n.user(id).or_else(|| n.group(id)),
            status: n.user_status(id),
            granted_by: n.actor(g.actor),
            granted_at: rfc3339_ms(g.key.time),
            via: g.via.as_str(),
        })
        .collect()
}

fn roles(n: &Names<'_>) -> Vec<RoleHolding> {
    let mut out = Vec::new();
    for (id, u) in &n.agg.users {
        if u.status() == Some(Status::Deleted) {
            continue;
        }
        for (kind, set) in &u.roles {
            for (value, g) in set.current(None) {
                out.push(role_row(n, id, u, kind, value, g));
            }
        }
    }
    out.sort_by(|a, b| (&a.value, &a.user_id, a.kind).cmp(&(&b.value, &b.user_id, b.kind)));
    out
}

fn role_row(
    n: &Names<'_>,
    id: &str,
    u: &User,
    kind: &'static str,
    value: &str,
    g: &Grant,
) -> RoleHolding {
    RoleHolding {
        user_id: id.to_string(),
        user_name: u.name.as_ref().map(|(_, s)| s.clone()),
        status: n.user_status(id),
        kind,
        value: value.to_string(),
        granted_by: n.actor(g.actor),
        granted_at: rfc3339_ms(g.key.time),
    }
}

fn attempt_row(n: &Names<'_>, k: &Key, a: &Attempt) -> AttemptRow {
    let is_group = n.agg.groups.contains_key(&a.target);
    AttemptRow {
        time: rfc3339_ms(k.time),
        actor: n.actor(a.actor),
        kind: a.kind.as_str(),
        target_id: a.target.clone(),
        target: if is_group {
            n.group(&a.target)
        } else {
            n.user(&a.target)
        },
        values: a
            .values
            .iter()
            .map(|v| if is_group { n.either(v) } else { v.clone() })
            .collect(),
        rules: a.rules.clone(),
        audit_id: k.audit.to_string(),
    }
}

fn stale(n: &Names<'_>) -> Stale {
    let agg = n.agg;
    let o = &agg.opts;
    let threshold = o.now_ms.saturating_sub(o.stale_after_ms);
    let mut inactive = Vec::new();
    let mut after_blocked = Vec::new();
    let mut reactivated = Vec::new();
    for (id, u) in agg.users.iter().filter(|(_, u)| u.seen) {
        if let Some(r) = reactivation(n, id, u) {
            reactivated.push(r);
        }
        let Some((status_key, Status::Active)) = &u.status else {
            continue;
        };
        if let Some((k, a)) = u
            .blocked_deprovision
            .as_ref()
            .filter(|(k, _)| k > status_key)
        {
            after_blocked.push(attempt_row(n, k, a));
        }
        let last_access = last_access(agg, id, u);
        let active_since = u.active_since().map_or(0, |k| k.time);
        let seen_at = last_access.unwrap_or(0).max(active_since);
        if seen_at < threshold {
            inactive.push(StaleAccount {
                id: id.clone(),
                user_name: u.name.as_ref().map(|(_, s)| s.clone()),
                active_since: rfc3339_ms(active_since),
                provisioned_by: u.provisioned.as_ref().map(|g| n.actor(g.actor)),
                last_access: last_access.map(rfc3339_ms),
                idle_days: whole_days(o.now_ms.saturating_sub(seen_at)),
            });
        }
    }
    inactive.sort_by(|a, b| b.idle_days.cmp(&a.idle_days).then_with(|| a.id.cmp(&b.id)));
    after_blocked.sort_by(|a, b| a.target_id.cmp(&b.target_id));
    reactivated.sort_by(|a, b| a.id.cmp(&b.id));
    Stale {
        stale_after: format_duration(o.stale_after_ms),
        threshold: rfc3339_ms(threshold),
        inactive,
        active_after_blocked_deprovision: after_blocked,
        reactivated,
    }
}

/// The user's newest access under its id or any userName it had.
fn last_access(agg: &Aggregator, id: &str, u: &User) -> Option<u64> {
    let by_id = agg.access.get(&id.to_lowercase()).copied();
    u.aliases
        .iter()
        .filter_map(|a| agg.access.get(a).copied())
        .chain(by_id)
        .max()
}

/// The newest reactivation in the window that followed a deprovisioning.
fn reactivation(n: &Names<'_>, id: &str, u: &User) -> Option<Reactivation> {
    let since = n.agg.opts.since_ms.unwrap_or(0);
    let (rk, ra) =
        u.reactivations.items.iter().rev().find(|(rk, _)| {
            rk.time >= since && u.deprovisions.items.iter().any(|(dk, _)| dk < rk)
        })?;
    let (dk, da) = u.deprovisions.items.iter().rev().find(|(dk, _)| dk < rk)?;
    Some(Reactivation {
        id: id.to_string(),
        user_name: u.name.as_ref().map(|(_, s)| s.clone()),
        status: n.user_status(id),
        deprovisioned_at: rfc3339_ms(dk.time),
        deprovisioned_by: n.actor(*da),
        reactivated_at: rfc3339_ms(rk.time),
        reactivated_by: n.actor(*ra),
    })
}

fn unmatched_actors(agg: &Aggregator) -> u64 {
    let mut known: BTreeSet<String> = BTreeSet::new();
    for (id, u) in &agg.users {
        known.insert(id.to_lowercase());
        known.extend(u.aliases.iter().cloned());
    }
    agg.access.keys().filter(|a| !known.contains(*a)).count() as u64
}

fn high_risk(n: &Names<'_>) -> HighRiskSection {
    let hr = &n.agg.high_risk;
    let mut by_rule: Vec<RuleRow> = hr
        .by_rule
        .iter()
        .map(|((rule, severity), s)| RuleRow {
            rule: rule.clone(),
            severity: severity.clone(),
            action: s.action.clone(),
            mode: s
                .modes
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join("+"),
            first: rfc3339_ms(s.first),
            last: rfc3339_ms(s.last),
            counts: counts(rule.clone(), &s.counts),
            weekly: s.weekly.iter().map(|(w, c)| (day_label(*w), *c)).collect(),
        })
        .collect();
    by_rule.sort_by(|a, b| {
        (rank(&b.severity), b.counts.total, &a.rule).cmp(&(
            rank(&a.severity),
            a.counts.total,
            &b.rule,
        ))
    });
    let mut sev: HashMap<String, [u64; 4]> = HashMap::new();
    for ((_, s), st) in &hr.by_rule {
        let acc = sev.entry(s.clone()).or_insert([0; 4]);
        acc.iter_mut().zip(st.counts).for_each(|(a, c)| *a += c);
    }
    let mut by_severity: Vec<ClassCounts> = sev.iter().map(|(s, c)| counts(s.clone(), c)).collect();
    by_severity.sort_by(|a, b| {
        rank(&b.label)
            .cmp(&rank(&a.label))
            .then_with(|| a.label.cmp(&b.label))
    });
    let recent = hr
        .recent
        .items
        .iter()
        .rev()
        .map(|(k, r)| HighRiskWrite {
            time: rfc3339_ms(k.time),
            actor: n.actor(r.actor),
            method: r.method.clone(),
            path: r.path.clone(),
            class: CLASSES.get(r.class).copied().unwrap_or("logged"),
            severity: r.severity.clone(),
            rules: r.rules.clone(),
            audit_id: k.audit.to_string(),
        })
        .collect();
    HighRiskSection {
        by_rule,
        by_severity,
        daily: hr
            .daily
            .iter()
            .map(|(d, c)| counts(day_label(*d), c))
            .collect(),
        weekly: hr
            .weekly
            .iter()
            .map(|(w, c)| counts(day_label(*w), c))
            .collect(),
        recent,
    }
}

fn counts(label: String, c: &[u64; 4]) -> ClassCounts {
    let [blocked, monitor_only, tagged, logged] = *c;
    ClassCounts {
        label,
        total: c.iter().sum(),
        blocked,
        monitor_only,
        tagged,
        logged,
    }
}

fn rank(severity: &str) -> u8 {
    match severity {
        "critical" => 4,
        "high" => 3,
        "medium" => 2,
        "low" => 1,
        _ => 0,
    }
}

fn activity(agg: &Aggregator) -> Vec<ActivityDay> {
    agg.daily
        .iter()
        .map(|(d, kinds)| ActivityDay {
            day: day_label(*d),
            total: kinds.values().sum(),
            kinds: kinds.iter().map(|(k, c)| (k.as_str(), *c)).collect(),
        })
        .collect()
}
