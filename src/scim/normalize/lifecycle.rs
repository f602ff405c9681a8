//! Lifecycle events: what an attribute change means for the account or group it touches.
//!
//! `active` false/true → deprovisioned/reactivated (string booleans coerced and flagged); `password`
//! → credential_changed; `roles`/`entitlements` → role/entitlement_changed with the values;
//! `userName`/`externalId`/`emails` by PATCH → identity_changed; the enterprise `manager` →
//! manager_changed; group `members` → member added/removed/replaced, with the reading chosen when
//! the request is ambiguous.

use serde_json::Value;

use super::Builder;
use crate::scim::change::{Change, EventKind, Op};
use crate::scim::endpoint::Method;
use crate::scim::error::ScimError;
use crate::scim::path::Filter;

impl Builder<'_> {
    pub(super) fn user_events(&mut self, change: &mut Change) -> Result<(), ScimError> {
        let method = self.op.method.clone();
        let attr = change.attribute.clone();
        match attr.as_str() {
            "active" if method != Method::Post => self.active_event(change)?,
            "password" => self.push_event(EventKind::CredentialChanged),
            "roles" | "entitlements" if method == Method::Post && change.values.is_empty() => {}
            "roles" | "entitlements" => {
                let kind = if attr == "roles" {
                    EventKind::RoleChanged
                } else {
                    EventKind::EntitlementChanged
                };
                let mut e = self.event(kind);
                e.values = change.values.clone();
                e.scope = Some(change.op.as_str());
                self.op.events.push(e);
            }
            "userName" | "externalId" | "emails" if method == Method::Patch => {
                let mut e = self.event(EventKind::IdentityChanged);
                e.values = vec![Value::String(attr.clone())];
                if attr == "userName" {
                    e.user_name = change
                        .values
                        .first()
                        .and_then(Value::as_str)
                        .map(str::to_string);
                }
                self.op.events.push(e);
            }
            a if a.ends_with(":manager") && method != Method::Post => {
                self.push_event(EventKind::ManagerChanged)
            }
            _ => {}
        }
        Ok(())
    }

    /// `active` false → deprovisioned, true → reactivated; string booleans coerced and flagged.
    fn active_event(&mut self, change: &mut Change) -> Result<(), ScimError> {
        let target = if change.op == Op::Remove {
            // Removing `active` leaves the server's default, which is active for most servers.
            change.flags.push("active_removed");
            Some(true)
        } else {
            let v = change.values.first().filter(|_| change.values.len() == 1);
            match v {
                Some(Value::Bool(b)) => Some(*b),
                Some(Value::String(s))
                    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
                {
                    change.flags.push("string_boolean");
                    Some(s.eq_ignore_ascii_case("true"))
                }
                Some(Value::Number(n)) if n.as_f64() == Some(0.0) || n.as_f64() == Some(1.0) => {
                    change.flags.push("number_boolean");
                    Some(n.as_f64() == Some(1.0))
                }
                _ => return Err(ScimError::value("`active` must be a boolean")),
            }
        };
        match (target, self.op.method == Method::Put) {
            (Some(false), _) => self.push_event(EventKind::UserDeprovisioned),
            // Every Okta profile PUT carries active:true; without state a PUT cannot tell a
            // reactivation from an update, so it is flagged rather than named.
            (Some(true), true) => change.flags.push("possible_reactivation"),
            (Some(true), false) => self.push_event(EventKind::UserReactivated),
            (None, _) => {}
        }
        Ok(())
    }

    pub(super) fn group_events(&mut self, change: &mut Change, filter: Option<&Filter>) {
        if change.attribute == "displayName" {
            self.op.display_name = change
                .values
                .first()
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        let member_id_write =
            change.attribute == "members" && change.sub_attribute.as_deref() == Some("value");
        if change.attribute != "members" || (change.sub_attribute.is_some() && !member_id_write) {
            if self.op.method != Method::Post
                && !self
                    .op
                    .events
                    .iter()
                    .any(|e| e.kind == EventKind::GroupUpdated)
            {
                let mut e = self.event(EventKind::GroupUpdated);
                e.display_name = self.op.display_name.clone();
                self.op.events.push(e);
            } else if let Some(e) = self
                .op
                .events
                .iter_mut()
                .find(|e| e.kind == EventKind::GroupUpdated)
            {
                e.display_name = self.op.display_name.clone();
            }
            return;
        }
        let listed = filter.and_then(Filter::listed_values);
        let given = member_ids(&change.values, member_id_write);
        match (change.op, self.op.method == Method::Put) {
            (Op::Add, _) | (Op::Replace, false) if member_id_write => {
                self.member_event(EventKind::GroupMemberAdded, given, None);
                if let Some(old) = listed {
                    self.member_event(EventKind::GroupMemberRemoved, old, Some("listed"));
                }
            }
            (Op::Add, _) if !given.is_empty() => {
                self.member_event(EventKind::GroupMemberAdded, given, None)
            }
            (Op::Add, _) => {}
            (Op::Replace, _) if filter.is_some() => {
                self.member_event(EventKind::GroupMemberAdded, given, None);
                self.member_event(
                    EventKind::GroupMemberRemoved,
                    listed.unwrap_or_default(),
                    Some("filter"),
                );
            }
            (Op::Replace, _) => self.member_event(EventKind::GroupMembersReplaced, given, None),
            (Op::Remove, _) => {
                let (members, scope) = match (filter, listed) {
                    (Some(_), Some(ids)) => (ids, "listed"),
                    (Some(_), None) => {
                        change.flags.push("filter_defined");
                        (Vec::new(), "filter")
                    }
                    (None, _) if !given.is_empty() => {
                        // Entra's default dialect: remove + value list without a filter. The RFC
                        // reads it as "remove all"; Entra and most servers remove the listed ones.
                        change.flags.push("remove_listed_or_all");
                        (given, "listed_or_all")
                    }
                    (None, _) => (Vec::new(), "all"),
                };
                self.member_event(EventKind::GroupMemberRemoved, members, Some(scope));
            }
        }
    }

    fn member_event(&mut self, kind: EventKind, members: Vec<String>, scope: Option<&'static str>) {
        let mut e = self.event(kind);
        e.members = members;
        e.scope = scope;
        e.display_name = self.op.display_name.clone();
        self.op.events.push(e);
    }
}

/// Member ids from member values (`{"value": id}` objects, or bare ids).
fn member_ids(values: &[Value], bare: bool) -> Vec<String> {
    let mut ids = Vec::with_capacity(values.len());
    let found = values.iter().filter_map(|v| match v {
        Value::Object(o) if !bare => o
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("value"))
            .and_then(|(_, v)| v.as_str()),
        Value::String(s) => Some(s.as_str()),
        _ => None,
    });
    ids.extend(found.map(str::to_string));
    ids
}
