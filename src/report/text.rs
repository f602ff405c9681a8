//! The report for a terminal: the key numbers and the first rows of each list. Full lists are in the
//! JSON and HTML renderings.

use std::fmt::Write;

use super::model::{AttemptRow, ClassCounts, Report};

/// Rows printed per list before "… N more".
const ROWS: usize = 25;

pub fn render_text(r: &Report) -> String {
    let mut o = String::new();
    header(&mut o, r);
    lifecycle(&mut o, r);
    privileged(&mut o, r);
    stale(&mut o, r);
    high_risk(&mut o, r);
    o
}

macro_rules! out {
    ($o:expr) => {{
        $o.push('\n');
    }};
    ($o:expr, $($arg:tt)*) => {{
        let _ = writeln!($o, $($arg)*);
    }};
}

fn header(o: &mut String, r: &Report) {
    let p = &r.parameters;
    let i = &r.input.stats;
    let s = &r.summary;
    out!(
        o,
        "scimguard access review as of {}",
        p.until.as_deref().unwrap_or(&p.now)
    );
    let window = match (&p.since, &p.until) {
        (Some(a), Some(b)) => format!("changes from {a} to {b}"),
        (Some(a), None) => format!("changes from {a}"),
        (None, Some(b)) => format!("all changes before {b}"),
        (None, None) => "all changes".into(),
    };
    out!(
        o,
        "window: {window}; stale after {} (now {})",
        p.stale_after,
        p.now
    );
    out!(
        o,
        "input: {} lines, {} SCIM writes, {} access events, {} duplicates, {} foreign lines skipped, {} malformed",
        i.lines, i.scim_writes, i.access_events, i.duplicates, i.foreign_lines, i.malformed_lines
    );
    if i.truncated_records > 0 {
        out!(
            o,
            "  {} records were cut to fit audit.max_record_bytes: their counts are complete, but {} events and {} members are not listed by id",
            i.truncated_records, i.events_not_listed, i.members_not_listed
        );
    }
    for m in &r.input.malformed {
        out!(
            o,
            "  malformed {}:{}: {}",
            m.place.source,
            m.place.line,
            m.reason
        );
    }
    out!(o);
    out!(o, "SUMMARY");
    out!(
        o,
        "  users        {} known: {} active, {} deprovisioned, {} deleted, {} status unknown",
        s.users_known,
        s.users_active,
        s.users_deprovisioned,
        s.users_deleted,
        s.users_status_unknown
    );
    out!(
        o,
        "  groups       {} known, {} privileged",
        s.groups_known,
        s.groups_privileged
    );
    out!(
        o,
        "  privileged   {} memberships, {} admin-like role grants, {} accounts; {} blocked attempts",
        s.privileged_memberships, s.admin_role_grants, s.privileged_principals, s.privileged_blocked_attempts
    );
    out!(
        o,
        "  stale        {} inactive ({} never accessed), {} active after a blocked deprovision, {} reactivated",
        s.stale_accounts, s.stale_never_accessed, s.active_after_blocked_deprovision, s.reactivated_after_deprovision
    );
    out!(
        o,
        "  high-risk    {} writes: {} blocked, {} monitor-only, {} tagged, {} logged",
        s.high_risk_writes,
        s.high_risk_blocked,
        s.high_risk_monitor_only,
        s.high_risk_tagged,
        s.high_risk_logged
    );
}

fn lifecycle(o: &mut String, r: &Report) {
    out!(o);
    out!(o, "1. LIFECYCLE (events in the window)");
    out!(
        o,
        "  {:<24} {:>9} {:>9} {:>9} {:>9}",
        "kind",
        "applied",
        "blocked",
        "failed",
        "unknown"
    );
    for k in &r.lifecycle.events {
        out!(
            o,
            "  {:<24} {:>9} {:>9} {:>9} {:>9}",
            k.kind,
            k.applied,
            k.blocked,
            k.failed,
            k.unknown
        );
    }
    let l = &r.lifecycle;
    out!(
        o,
        "  timelines: {} users and {} groups changed; each keeps its newest {} entries (--format json or html)",
        l.users.len(),
        l.groups.len(),
        r.parameters.timeline_cap
    );
}

fn privileged(o: &mut String, r: &Report) {
    let p = &r.privileged;
    out!(o);
    out!(
        o,
        "2. PRIVILEGED ACCESS REVIEW (pattern {})",
        r.parameters.privileged_pattern
    );
    for g in &p.groups {
        let name = g.name.as_deref().unwrap_or(&g.id);
        out!(
            o,
            "  group {name} [{}] ({}): {} members",
            g.id,
            g.privileged_by.join(", "),
            g.members.len()
        );
        for m in g.members.iter().take(ROWS) {
            let who = m.name.as_deref().unwrap_or(&m.id);
            out!(
                o,
                "    {who:<32} {:<13} granted by {} at {} ({})",
                m.status,
                m.granted_by,
                m.granted_at,
                m.via
            );
        }
        more(o, g.members.len(), "    ");
    }
    out!(o, "  admin-like roles and entitlements: {}", p.roles.len());
    for h in p.roles.iter().take(ROWS) {
        let who = h.user_name.as_deref().unwrap_or(&h.user_id);
        out!(
            o,
            "    {:<12} {:<20} {who:<32} {:<13} granted by {} at {}",
            h.kind,
            h.value,
            h.status,
            h.granted_by,
            h.granted_at
        );
    }
    more(o, p.roles.len(), "    ");
    out!(o, "  blocked attempts: {}", p.blocked_attempts_total);
    attempts(o, &p.blocked_attempts);
}

fn attempts(o: &mut String, rows: &[AttemptRow]) {
    for a in rows.iter().take(ROWS) {
        let target = a.target.as_deref().unwrap_or(&a.target_id);
        out!(
            o,
            "    {} {} {} {target} [{}] by {} ({})",
            a.time,
            a.kind,
            a.values.join(","),
            a.target_id,
            a.actor,
            a.rules.join(",")
        );
    }
    more(o, rows.len(), "    ");
}

fn stale(o: &mut String, r: &Report) {
    let s = &r.stale;
    out!(o);
    out!(
        o,
        "3. STALE ACCOUNTS (active, no access for more than {}, i.e. since {})",
        s.stale_after,
        s.threshold
    );
    for a in s.inactive.iter().take(ROWS) {
        let who = a.user_name.as_deref().unwrap_or(&a.id);
        let last = a.last_access.as_deref().unwrap_or("never");
        out!(
            o,
            "  {who:<32} idle {:>4} days, last access {last}, active since {}",
            a.idle_days,
            a.active_since
        );
    }
    more(o, s.inactive.len(), "  ");
    out!(
        o,
        "  still active after a blocked deprovision: {}",
        s.active_after_blocked_deprovision.len()
    );
    attempts(o, &s.active_after_blocked_deprovision);
    out!(
        o,
        "  reactivated after deprovisioning: {}",
        s.reactivated.len()
    );
    for a in s.reactivated.iter().take(ROWS) {
        let who = a.user_name.as_deref().unwrap_or(&a.id);
        out!(
            o,
            "    {who:<32} deprovisioned {} by {}, reactivated {} by {}, now {}",
            a.deprovisioned_at,
            a.deprovisioned_by,
            a.reactivated_at,
            a.reactivated_by,
            a.status
        );
    }
    more(o, s.reactivated.len(), "    ");
}

fn high_risk(o: &mut String, r: &Report) {
    let h = &r.high_risk;
    out!(o);
    out!(o, "4. HIGH-RISK CHANGES (by rule)");
    out!(
        o,
        "  {:<34} {:<9} {:>7} {:>8} {:>12} {:>7} {:>7}",
        "rule",
        "severity",
        "total",
        "blocked",
        "monitor-only",
        "tagged",
        "logged"
    );
    for row in &h.by_rule {
        let c = &row.counts;
        out!(
            o,
            "  {:<34} {:<9} {:>7} {:>8} {:>12} {:>7} {:>7}",
            row.rule,
            row.severity,
            c.total,
            c.blocked,
            c.monitor_only,
            c.tagged,
            c.logged
        );
    }
    out!(o, "  by week:");
    for w in &h.weekly {
        week(o, w);
    }
}

fn week(o: &mut String, c: &ClassCounts) {
    out!(
        o,
        "    {} {:>6} ({} blocked, {} monitor-only, {} tagged, {} logged)",
        c.label,
        c.total,
        c.blocked,
        c.monitor_only,
        c.tagged,
        c.logged
    );
}

fn more(o: &mut String, total: usize, indent: &str) {
    if total > ROWS {
        out!(o, "{indent}… {} more (--format json or html)", total - ROWS);
    }
}
