//! OCSF 1.8.0 events for SCIM writes: the SIEM-ready projection of one judged request.
//!
//! Owns: the mapping from scimguard's lifecycle events to OCSF classes and activities (`activity`,
//! the ONE table), severity, status and security-control outcome, and the shape of each event.
//! Does not own: judging (that is `policy`), transport (the filter ships what this returns), or the
//! project's own record (`record`, a separate contract).
//!
//! One SCIM request yields one event per lifecycle change it makes, all sharing
//! `metadata.correlation_uid` (Envoy's `x-request-id`, or the audit id without one):
//! - a Bulk yields the events of each of its operations, in request order;
//! - a User PATCH touching `active` and `roles` yields Account Change/Disable and User Access
//!   Management/Assign Privileges; the generic `user_updated` (and `identity_changed`,
//!   `manager_changed`) fold into ONE Account Change/Update (99), emitted only when the operation
//!   changes something no more specific event already describes;
//! - group membership: ONE event per member (OCSF 1.8 Group Management has a single `user`);
//!   `group_members_replaced` is Group Management/Other (99, "Replace Members"), one event per new
//!   member, since without server state nobody knows which members left; a change naming no member
//!   (remove all, remove by filter, replace with an empty list) yields one event without `user`;
//! - an operation with no lifecycle event (a custom resource type) and a request that could not be
//!   read are Entity Management (3004): Create/Update/Delete by method, `entity` = the resource.
//!
//! At most `MAX_EVENTS` events per request; when more would be emitted (a Bulk adding thousands of
//! members), every event says so in `unmapped.events_total` / `unmapped.events_elided`, and the
//! project's own record still lists every member.
//!
//! Severity is request-wide (rules match requests, not single changes): the activity's base (1 for
//! create/update/enable/add/assign, 2 for disable/delete/remove/revoke), raised to the matched rules'
//! highest severity (low 2, medium 3, high 4, critical 5), and 5 when a high-risk request was blocked
//! (a denied escalation). A request refused because it could not be read is 3 when blocked, 2 when
//! let through. Status: Failure when blocked (`status_detail: "policy <rule ids>"`) or when the
//! upstream answered non-2xx; Success on a 2xx; Unknown when no status is known (e.g. `eval`).
//!
//! Every event carries the `security_control` profile and its `policy` object (`uid`: the SHA-256 of
//! the policy document, `version`), so an auditor can tell which rules were in force; the outcome
//! attributes (`action_id`, `disposition_id`, `is_alert`) only when scimguard acted or flagged.
//!
//! Redaction: nothing here reads a raw body. Values come from the normalised request, where sensitive
//! attributes already read `"[redacted]"`; paths lose their query string; free text is stripped of
//! control characters and cut. Privileges written to an attribute whose changes were redacted are
//! redacted too.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::facts::RequestFacts;
use super::write::Judged;
use super::Completion;
use crate::policy::{Action, Decision, Mode, Severity};
use crate::scim::endpoint::{printable, without_query};
use crate::scim::normalize::REDACTED;
use crate::scim::{Change, Event, EventKind, Json, Method, Operation, ScimError};

/// Adds one member to a JSON object. `Map::insert` is `IndexMap::insert` (serde_json's
/// `preserve_order`: hash, probe, grow), and an event adds some forty members: one shared copy,
/// not one inlined per call site, keeps the filter small for the price of a call.
pub(crate) trait Put {
    fn put(&mut self, key: &str, value: Value);
}

impl Put for Map<String, Value> {
    #[inline(never)]
    fn put(&mut self, key: &str, value: Value) {
        self.insert(key.to_owned(), value);
    }
}

/// The JSON object of `members`, in order: `json!({...})` without a `to_value` per member.
/// Why a request could not be judged, as OCSF events and notifications carry it.
pub(crate) fn scim_error(e: &ScimError) -> Value {
    object([
        ("status", e.status.into()),
        ("scimType", e.scim_type.into()),
        ("detail", printable(&e.detail).into()),
    ])
}

pub(crate) fn object<const N: usize>(members: [(&str, Value); N]) -> Value {
    let mut m = Map::new();
    for (key, value) in members {
        m.put(key, value);
    }
    Value::Object(m)
}

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.8.0";

/// The most events one request yields.
pub const MAX_EVENTS: usize = 1000;

/// At most this many privileges per event (roles granted at once).
const MAX_PRIVILEGES: usize = 50;

/// What the host says about the product that emits the events.
#[derive(Debug, Clone, Copy)]
pub struct OcsfContext<'a> {
    /// `metadata.product.vendor_name`.
    pub vendor_name: &'a str,
    /// Group displayNames the host knows (id → name), to name groups a request names only by id.
    pub group_names: Option<&'a BTreeMap<String, String>>,
}

impl Default for OcsfContext<'_> {
    fn default() -> Self {
        OcsfContext {
            vendor_name: "scimguard",
            group_names: None,
        }
    }
}

/// An OCSF event class used by scimguard (category 3, Identity & Access Management).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    AccountChange,
    EntityManagement,
    UserAccess,
    GroupManagement,
}

impl Class {
    pub fn uid(self) -> u32 {
        match self {
            Class::AccountChange => 3001,
            Class::EntityManagement => 3004,
            Class::UserAccess => 3005,
            Class::GroupManagement => 3006,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::AccountChange => "Account Change",
            Class::EntityManagement => "Entity Management",
            Class::UserAccess => "User Access Management",
            Class::GroupManagement => "Group Management",
        }
    }
}

/// An OCSF class and activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    pub class: Class,
    pub id: u32,
    pub name: &'static str,
}

impl Activity {
    const fn new(class: Class, id: u32, name: &'static str) -> Activity {
        Activity { class, id, name }
    }

    /// `class_uid * 100 + activity_id`.
    pub fn type_uid(self) -> u64 {
        u64::from(self.class.uid()) * 100 + u64::from(self.id)
    }

    /// The base severity before rules raise it: removals and shutdowns are Low, the rest Informational.
    fn base_severity(self) -> u8 {
        match (self.class, self.id) {
            (Class::AccountChange, 5 | 6)
            | (Class::GroupManagement, 4 | 5)
            | (Class::UserAccess, 2) => 2,
            (Class::EntityManagement, 4) => 2,
            _ => 1,
        }
    }
}

/// THE mapping table: a scimguard lifecycle event → its OCSF 1.8.0 class and activity.
/// (OCSF 1.9 moves users to 3007 User Management; switch here.)
pub fn activity(event: &Event) -> Activity {
    use Class::{AccountChange as Account, GroupManagement as Group, UserAccess as Access};
    match event.kind {
        EventKind::UserProvisioned => Activity::new(Account, 1, "Create"),
        EventKind::UserReactivated => Activity::new(Account, 2, "Enable"),
        EventKind::CredentialChanged => Activity::new(Account, 3, "Password Change"),
        EventKind::UserDeprovisioned => Activity::new(Account, 5, "Disable"),
        EventKind::UserDeleted => Activity::new(Account, 6, "Delete"),
        // OCSF 1.8 Account Change has no Update activity.
        EventKind::UserUpdated | EventKind::IdentityChanged | EventKind::ManagerChanged => {
            Activity::new(Account, 99, "Update")
        }
        EventKind::RoleChanged | EventKind::EntitlementChanged if event.scope == Some("remove") => {
            Activity::new(Access, 2, "Revoke Privileges")
        }
        EventKind::RoleChanged | EventKind::EntitlementChanged => {
            Activity::new(Access, 1, "Assign Privileges")
        }
        EventKind::GroupMemberAdded => Activity::new(Group, 3, "Add User"),
        EventKind::GroupMemberRemoved => Activity::new(Group, 4, "Remove User"),
        EventKind::GroupDeleted => Activity::new(Group, 5, "Delete"),
        EventKind::GroupCreated => Activity::new(Group, 6, "Create"),
        EventKind::GroupUpdated => Activity::new(Group, 99, "Update"),
        EventKind::GroupMembersReplaced => Activity::new(Group, 99, "Replace Members"),
    }
}

/// Entity Management activity for a write without a lifecycle event, by method.
fn entity_activity(method: &str) -> Activity {
    match method.to_ascii_uppercase().as_str() {
        "POST" => Activity::new(Class::EntityManagement, 1, "Create"),
        "PUT" | "PATCH" => Activity::new(Class::EntityManagement, 3, "Update"),
        "DELETE" => Activity::new(Class::EntityManagement, 4, "Delete"),
        _ => Activity::new(Class::EntityManagement, 99, "Other"),
    }
}

/// The OCSF events of one judged request, in request order. Empty for a request that is not a
/// SCIM write (nothing normalised and no error).
pub fn events(
    j: &Judged<'_>,
    req: &RequestFacts,
    done: &Completion,
    ctx: &OcsfContext<'_>,
) -> Vec<Value> {
    let items: Vec<Item<'_>> = match j.normalized {
        Some(n) => n
            .operations
            .iter()
            .flat_map(|op| op_items(op, !n.bulk && sent_operations(n) == 1))
            .take(MAX_EVENTS + 1)
            .collect(),
        None if j.error.is_some() => vec![Item::unreadable(&req.method)],
        None => return Vec::new(),
    };
    let total = if items.len() > MAX_EVENTS {
        j.normalized.map_or(0, count_items)
    } else {
        items.len()
    };
    let shared = RequestParts::new(j, req, done, ctx, total);
    items
        .iter()
        .take(MAX_EVENTS)
        .enumerate()
        .map(|(i, item)| shared.event(i, item))
        .collect()
}

/// One OCSF event to emit: an activity on a target.
#[derive(Debug, Clone)]
struct Item<'a> {
    activity: Activity,
    op: Option<&'a Operation>,
    /// The lifecycle events this item stands for (several fold into one Update).
    events: Vec<&'a Event>,
    member: Option<&'a str>,
    /// The operation is the whole request and not a Bulk: a create takes the id the server gave.
    sole: bool,
}

impl<'a> Item<'a> {
    fn unreadable(method: &str) -> Item<'a> {
        Item {
            activity: entity_activity(method),
            op: None,
            events: Vec::new(),
            member: None,
            sole: true,
        }
    }

    fn event(&self) -> Option<&'a Event> {
        self.events.first().copied()
    }
}

fn op_items(op: &Operation, sole: bool) -> Vec<Item<'_>> {
    let mut items: Vec<Item<'_>> = Vec::new();
    let mut update: Option<Item<'_>> = None;
    for e in &op.events {
        let a = activity(e);
        let item = Item {
            activity: a,
            op: Some(op),
            events: vec![e],
            member: None,
            sole,
        };
        if a.class == Class::AccountChange && a.id == 99 {
            match &mut update {
                Some(u) => u.events.push(e),
                None if needs_update(op) => update = Some(item),
                None => {}
            }
        } else if a.class == Class::GroupManagement
            && matches!(a.id, 3 | 4 | 99)
            && !e.members.is_empty()
        {
            items.extend(e.members.iter().map(|m| Item {
                member: Some(m.as_str()),
                ..item.clone()
            }));
        } else {
            items.push(item);
        }
    }
    if let Some(u) = update {
        items.insert(0, u);
    }
    if items.is_empty() {
        items.push(Item {
            activity: entity_activity(op.method.as_str()),
            op: Some(op),
            events: Vec::new(),
            member: None,
            sole,
        });
    }
    items
}

/// An Account Change/Update is worth emitting when the operation changes an attribute that no more
/// specific event (Enable/Disable, Password Change, privileges) already describes.
fn needs_update(op: &Operation) -> bool {
    let has = |kinds: &[EventKind]| op.events.iter().any(|e| kinds.contains(&e.kind));
    op.changes.iter().any(|c| {
        let covered = match c.attribute.as_str() {
            "active" => has(&[EventKind::UserDeprovisioned, EventKind::UserReactivated]),
            "password" => has(&[EventKind::CredentialChanged]),
            "roles" | "entitlements" => {
                has(&[EventKind::RoleChanged, EventKind::EntitlementChanged])
            }
            _ => false,
        };
        !covered
    })
}

/// The operations the client sent (not those read from them, `via`).
fn sent_operations(n: &crate::scim::Normalized) -> usize {
    n.operations.iter().filter(|o| o.via.is_none()).count()
}

/// How many items a request would yield without the cap (for `events_total`).
fn count_items(n: &crate::scim::Normalized) -> usize {
    n.operations
        .iter()
        .map(|op| op_items(op, false).len())
        .sum()
}

/// The parts every event of one request shares, computed once.
struct RequestParts<'a> {
    j: &'a Judged<'a>,
    req: &'a RequestFacts,
    done: &'a Completion,
    ctx: &'a OcsfContext<'a>,
    correlation: String,
    uid_base: String,
    status: (u8, &'static str, Option<String>),
    control: Option<Control>,
    total: usize,
}

/// The security-control outcome (profile `security_control`).
#[derive(Debug, Clone, Copy)]
struct Control {
    action_id: u8,
    action: &'static str,
    disposition_id: u8,
    disposition: &'static str,
    /// Blocked or would-block: always an alert.
    alert: bool,
}

impl<'a> RequestParts<'a> {
    fn new(
        j: &'a Judged<'a>,
        req: &'a RequestFacts,
        done: &'a Completion,
        ctx: &'a OcsfContext<'a>,
        total: usize,
    ) -> Self {
        let (audit_id, request_id) = req.clean_ids();
        let correlation = request_id.clone().unwrap_or_else(|| audit_id.clone());
        let uid_base = if audit_id.is_empty() {
            correlation.clone()
        } else {
            audit_id
        };
        RequestParts {
            j,
            req,
            done,
            ctx,
            correlation,
            uid_base,
            status: status(j, done),
            control: control(j),
            total,
        }
    }

    fn event(&self, index: usize, item: &Item<'_>) -> Value {
        let a = item.activity;
        let severity_id = self.severity(a);
        let mut ev = Map::new();
        ev.put("class_uid", Value::from(a.class.uid()));
        ev.put("class_name", Value::from(a.class.name()));
        ev.put("category_uid", Value::from(3));
        ev.put("category_name", Value::from("Identity & Access Management"));
        ev.put("activity_id", Value::from(a.id));
        ev.put("activity_name", Value::from(a.name));
        ev.put("type_uid", Value::from(a.type_uid()));
        ev.put(
            "type_name",
            Value::from(format!("{}: {}", a.class.name(), a.name)),
        );
        ev.put("time", Value::from(self.req.time_ms));
        ev.put("severity_id", Value::from(severity_id));
        ev.put("severity", Value::from(severity_name(severity_id)));
        let (status_id, status, detail) = &self.status;
        ev.put("status_id", Value::from(*status_id));
        ev.put("status", Value::from(*status));
        if let Some(d) = detail {
            ev.put("status_detail", Value::from(d.as_str()));
        }
        ev.put("message", Value::from(self.message(item)));
        ev.put("metadata", self.metadata(index));
        if let Some(actor) = self.actor() {
            ev.put("actor", actor);
        }
        self.target(&mut ev, item);
        if let Some(ip) = &self.req.source_ip {
            ev.put("src_endpoint", object([("ip", printable(ip).into())]));
        }
        ev.put("http_request", self.http_request());
        if let Some(code) = self.done.status {
            let mut resp = object([("code", code.into())]);
            if let (Some(ms), Some(o)) = (self.done.duration_ms, resp.as_object_mut()) {
                o.put("latency", Value::from(ms));
            }
            ev.put("http_response", resp);
        }
        if let Some(c) = self.control {
            ev.put("action_id", Value::from(c.action_id));
            ev.put("action", Value::from(c.action));
            ev.put("disposition_id", Value::from(c.disposition_id));
            ev.put("disposition", Value::from(c.disposition));
            ev.put("is_alert", Value::from(c.alert || severity_id >= 4));
        }
        ev.put("policy", policy(self.j));
        ev.put("unmapped", self.unmapped(item));
        Value::Object(ev)
    }

    fn severity(&self, a: Activity) -> u8 {
        let j = self.j;
        if j.normalized.is_none() {
            return if j.decision == Decision::Block { 3 } else { 2 };
        }
        let risk = match j.risk {
            None => 1,
            Some(Severity::Low) => 2,
            Some(Severity::Medium) => 3,
            Some(Severity::High) => 4,
            Some(Severity::Critical) => 5,
        };
        if j.decision == Decision::Block && j.risk >= Some(Severity::High) {
            return 5;
        }
        a.base_severity().max(risk)
    }

    fn metadata(&self, index: usize) -> Value {
        let mut m = object([
            ("version", OCSF_VERSION.into()),
            ("uid", format!("{}-{index}", self.uid_base).into()),
            ("correlation_uid", self.correlation.as_str().into()),
            (
                "product",
                object([
                    ("name", "scimguard".into()),
                    ("vendor_name", printable(self.ctx.vendor_name).into()),
                    ("version", env!("CARGO_PKG_VERSION").into()),
                ]),
            ),
        ]);
        // Every event names the policy that judged it (`policy`, a security-control attribute).
        if let Some(o) = m.as_object_mut() {
            o.put("profiles", Value::from(["security_control"].as_slice()));
        }
        m
    }

    fn actor(&self) -> Option<Value> {
        let mut actor = Map::new();
        if let Some(a) = self.j.actor.map(printable).filter(|a| !a.is_empty()) {
            actor.put(
                "user",
                object([
                    ("uid", a.into()),
                    ("type_id", 4.into()),
                    ("type", "Service".into()),
                ]),
            );
        }
        if let Some(ua) = self
            .req
            .user_agent
            .as_deref()
            .map(printable)
            .filter(|u| !u.is_empty())
        {
            actor.put("app_name", Value::from(ua));
        }
        (!actor.is_empty()).then_some(Value::Object(actor))
    }

    fn http_request(&self) -> Value {
        let mut r = object([
            ("http_method", printable(&self.req.method).into()),
            (
                "url",
                object([("path", printable(without_query(&self.req.path)).into())]),
            ),
            ("uid", self.correlation.as_str().into()),
        ]);
        if let (Some(ua), Some(o)) = (&self.req.user_agent, r.as_object_mut()) {
            o.put("user_agent", Value::from(printable(ua)));
        }
        r
    }

    /// `user` / `group` / `privileges` / `entity`, by class.
    fn target(&self, ev: &mut Map<String, Value>, item: &Item<'_>) {
        let id = self.resource_id(item);
        match item.activity.class {
            Class::AccountChange => {
                ev.put("user", target_user(id.as_deref(), item));
                if let Some(new_name) = item
                    .events
                    .iter()
                    .find_map(|e| user_name(e, item.op))
                    .filter(|_| item.activity.id == 99)
                {
                    ev.put(
                        "user_result",
                        object([("name", printable(new_name).into())]),
                    );
                }
            }
            Class::UserAccess => {
                ev.put("user", target_user(id.as_deref(), item));
                ev.put("privileges", Value::from(privileges(item)));
            }
            Class::GroupManagement => {
                let mut g = Map::new();
                if let Some(id) = &id {
                    g.put("uid", Value::from(id.as_str()));
                }
                if let Some(name) = self.group_name(item, id.as_deref()) {
                    g.put("name", Value::from(name));
                }
                if g.is_empty() {
                    g.put("uid", Value::from(fallback_uid(item.op)));
                }
                ev.put("group", Value::Object(g));
                if let Some(m) = item.member {
                    ev.put("user", object([("uid", printable(m).into())]));
                }
            }
            Class::EntityManagement => {
                let mut e = Map::new();
                match (item.op, &id) {
                    (Some(op), Some(id)) => {
                        e.put("uid", Value::from(id.as_str()));
                        e.put("type", Value::from(op.resource_type.as_str()));
                    }
                    (Some(op), None) => {
                        e.put("name", Value::from(fallback_uid(Some(op))));
                        e.put("type", Value::from(op.resource_type.as_str()));
                    }
                    (None, _) => {
                        e.put(
                            "name",
                            Value::from(printable(without_query(&self.req.path))),
                        );
                        e.put("type", Value::from("SCIM request"));
                    }
                }
                ev.put("entity", Value::Object(e));
            }
        }
    }

    /// The target resource's id: the event's, the operation's, or the id the server gave a create.
    fn resource_id(&self, item: &Item<'_>) -> Option<String> {
        let id = item
            .event()
            .and_then(|e| e.resource_id.as_deref())
            .or_else(|| item.op.and_then(|o| o.resource_id.as_deref()));
        let created = (item.sole && item.op.is_some_and(|o| o.method == Method::Post))
            .then_some(())
            .and(self.done.created_id.as_deref());
        id.or(created).map(printable)
    }

    fn group_name(&self, item: &Item<'_>, id: Option<&str>) -> Option<String> {
        let from_request = item
            .event()
            .and_then(|e| e.display_name.as_deref())
            .or_else(|| item.op.and_then(|o| o.display_name.as_deref()))
            .or_else(|| {
                item.op
                    .and_then(|o| o.names_in_bulk.first().map(String::as_str))
            });
        let known = || {
            id.and_then(|id| self.ctx.group_names.and_then(|names| names.get(id)))
                .map(String::as_str)
        };
        from_request.or_else(known).map(printable)
    }

    fn message(&self, item: &Item<'_>) -> String {
        let what = item.op.map_or_else(
            || {
                format!(
                    "{} {}",
                    printable(&self.req.method),
                    printable(without_query(&self.req.path))
                )
            },
            |op| match self.resource_id(item) {
                Some(id) => format!("{}/{id}", op.resource_type.as_str()),
                None => op.resource_type.as_str().to_string(),
            },
        );
        let member = item
            .member
            .map(|m| format!(" user {}", printable(m)))
            .unwrap_or_default();
        let outcome = match (&self.status.2, self.control) {
            (Some(detail), _) => format!(": {detail}"),
            (None, Some(c)) if c.disposition_id == 17 && c.alert => {
                ": would be blocked (monitor mode)".to_string()
            }
            _ => String::new(),
        };
        format!("{} {what}{member}{outcome}", item.activity.name)
    }

    fn unmapped(&self, item: &Item<'_>) -> Value {
        let j = self.j;
        let mut u = Map::new();
        u.put("audit_id", Value::from(printable(&self.req.audit_id)));
        if let Some(t) = &self.req.trace_id {
            u.put("trace_id", Value::from(printable(t)));
        }
        u.put("decision", Value::from(j.decision.as_str()));
        u.put("risk", Value::from(j.risk.map_or("none", Severity::as_str)));
        u.put("mode", Value::from(j.mode.as_str()));
        u.put(
            "rules",
            Value::from(j.matches.iter().map(|m| m.id.as_str()).collect::<Vec<_>>()),
        );
        u.put("scim", scim_facts(item));
        if !j.unknown_groups.is_empty() {
            u.put("group_names_unknown", Value::from(j.unknown_groups));
        }
        if let Some(e) = j.error {
            u.put("error", scim_error(e));
        }
        if self.total > MAX_EVENTS {
            u.put("events_total", Value::from(self.total));
            u.put("events_elided", Value::from(self.total - MAX_EVENTS));
        }
        Value::Object(u)
    }
}

/// The OCSF `policy` object: `uid` the SHA-256 of the policy document, `version` its `version`.
fn policy(j: &Judged<'_>) -> Value {
    let id = &j.stamp.policy;
    object([
        ("name", "scimguard policy".into()),
        ("uid", id.sha256.as_str().into()),
        ("version", id.version.to_string().into()),
    ])
}

/// What the SCIM request said about this item: event kinds, resource, Bulk position, ambiguity flags.
fn scim_facts(item: &Item<'_>) -> Value {
    let mut s = Map::new();
    s.put(
        "events",
        Value::from(
            item.events
                .iter()
                .map(|e| e.kind.as_str())
                .collect::<Vec<_>>(),
        ),
    );
    let Some(op) = item.op else {
        return Value::Object(s);
    };
    s.put("method", Value::from(op.method.as_str()));
    s.put("resource_type", Value::from(op.resource_type.as_str()));
    if let Some(i) = op.bulk_index {
        s.put("bulk_index", Value::from(i));
    }
    if let Some(b) = &op.bulk_id {
        s.put("bulk_id", Value::from(printable(b)));
    }
    if let Some(scope) = item.event().and_then(|e| e.scope) {
        s.put("scope", Value::from(scope));
    }
    if item.activity.class == Class::UserAccess {
        let attr = if item
            .event()
            .is_some_and(|e| e.kind == EventKind::EntitlementChanged)
        {
            "entitlements"
        } else {
            "roles"
        };
        s.put("attribute", Value::from(attr));
        if let Some(f) = op
            .changes
            .iter()
            .find(|c| c.is(attr) && c.filter.is_some())
            .and_then(|c| c.filter.as_deref())
        {
            s.put("filter", Value::from(printable(f)));
        }
    }
    if item.activity.id == 99 || item.activity.class == Class::EntityManagement {
        let mut attrs: Vec<&str> = op.changes.iter().map(|c| c.attribute.as_str()).collect();
        attrs.dedup();
        s.put(
            "attributes",
            Value::from(attrs.into_iter().map(printable).collect::<Vec<_>>()),
        );
    }
    let flags: Vec<&str> = op
        .changes
        .iter()
        .flat_map(|c| c.flags.iter().copied())
        .collect();
    if !flags.is_empty() {
        s.put("flags", Value::from(flags));
    }
    Value::Object(s)
}

/// The `user` object of an Account Change or User Access event: the target account.
fn target_user(id: Option<&str>, item: &Item<'_>) -> Value {
    user(
        id,
        item.event().and_then(|e| user_name(e, item.op)),
        item.op,
    )
}

fn user(id: Option<&str>, name: Option<&str>, op: Option<&Operation>) -> Value {
    let mut u = Map::new();
    if let Some(id) = id {
        u.put("uid", Value::from(id));
    }
    if let Some(n) = name {
        u.put("name", Value::from(printable(n)));
    }
    if u.is_empty() {
        // OCSF needs `uid` or `name`; a create the server never answered (blocked, or no id yet)
        // has neither: use the Bulk reference, or say so.
        u.put("uid", Value::from(fallback_uid(op)));
    }
    Value::Object(u)
}

fn fallback_uid(op: Option<&Operation>) -> String {
    match op.and_then(|o| o.bulk_id.as_deref()) {
        Some(b) => format!("bulkId:{}", printable(b)),
        None => "unknown".to_string(),
    }
}

/// The role/entitlement values as strings: a multi-valued complex value's `value` (else `display`),
/// a string as itself. Redacted when the attribute's changes were redacted.
fn privileges(item: &Item<'_>) -> Vec<String> {
    let Some(e) = item.event() else {
        return Vec::new();
    };
    let attr = if e.kind == EventKind::EntitlementChanged {
        "entitlements"
    } else {
        "roles"
    };
    let redacted = item.op.is_some_and(|op| is_redacted(op, attr));
    e.values
        .iter()
        .take(MAX_PRIVILEGES)
        .map(|v| {
            if redacted {
                REDACTED.to_string()
            } else {
                privilege(v)
            }
        })
        .collect()
}

/// Whether the operation's changes to `attribute` were redacted (a configured sensitive attribute).
/// INVARIANT relied on: the normaliser redacts `Change::values`, but copies role/entitlement values
/// and a new `userName` into `Event` before redacting; every output built from events checks this.
pub(crate) fn is_redacted(op: &Operation, attribute: &str) -> bool {
    op.changes
        .iter()
        .any(|c: &Change| c.is(attribute) && c.values.iter().any(|v| v == REDACTED))
}

/// The event's `user_name`, unless `userName` is a redacted attribute of the operation.
fn user_name<'a>(e: &'a Event, op: Option<&Operation>) -> Option<&'a str> {
    let redacted = op.is_some_and(|op| is_redacted(op, "userName"));
    e.user_name
        .as_deref()
        .map(|n| if redacted { REDACTED } else { n })
}

fn privilege(v: &Json<'_>) -> String {
    let text = match v {
        Json::Str(s) => s.to_string(),
        Json::Object(_) => match v.get("value").or_else(|| v.get("display")) {
            Some(Json::Str(s)) => s.to_string(),
            Some(other) => other.to_string(),
            None => v.to_string(),
        },
        other => other.to_string(),
    };
    printable(&text)
}

/// (status_id, status, status_detail).
fn status(j: &Judged<'_>, done: &Completion) -> (u8, &'static str, Option<String>) {
    if j.decision == Decision::Block {
        let blocking: Vec<&str> = j
            .matches
            .iter()
            .filter(|m| m.blocks())
            .map(|m| m.id.as_str())
            .collect();
        let detail = match (blocking.is_empty(), j.error) {
            (false, _) => format!("policy {}", blocking.join(", ")),
            (true, Some(e)) => format!("unreadable request: {}", printable(&e.detail)),
            (true, None) => "blocked".to_string(),
        };
        return (2, "Failure", Some(detail));
    }
    match done.status {
        Some(200..=299) => (1, "Success", None),
        Some(code) => (2, "Failure", Some(format!("upstream status {code}"))),
        None => (0, "Unknown", None),
    }
}

/// The security-control outcome, when scimguard acted on or flagged the request.
fn control(j: &Judged<'_>) -> Option<Control> {
    let would_block = j
        .matches
        .iter()
        .any(|m| m.action == Action::Block && m.mode == Mode::Monitor);
    if j.decision == Decision::Block {
        Some(Control {
            action_id: 2,
            action: "Denied",
            disposition_id: 2,
            disposition: "Blocked",
            alert: true,
        })
    } else if would_block {
        Some(Control {
            action_id: 1,
            action: "Allowed",
            disposition_id: 17,
            disposition: "Logged",
            alert: true,
        })
    } else if j.decision == Decision::Tag {
        Some(Control {
            action_id: 1,
            action: "Allowed",
            disposition_id: 18,
            disposition: "Tagged",
            alert: false,
        })
    } else if !j.matches.is_empty() {
        Some(Control {
            action_id: 1,
            action: "Allowed",
            disposition_id: 17,
            disposition: "Logged",
            alert: false,
        })
    } else {
        None
    }
}

fn severity_name(id: u8) -> &'static str {
    match id {
        1 => "Informational",
        2 => "Low",
        3 => "Medium",
        4 => "High",
        5 => "Critical",
        _ => "Unknown",
    }
}
