//! Lifecycle events: what an attribute change means for the account or group it touches.
//!
//! `active` false/true → deprovisioned/reactivated (string booleans coerced and flagged); `password`
//! → credential_changed; `roles`/`entitlements` → role/entitlement_changed with the values;
//! `userName`/`externalId`/`emails` by PATCH → identity_changed; the enterprise `manager` →
//! manager_changed; group `members` → member added/removed/replaced, with the reading chosen when
//! the request is ambiguous; a User's `groups` → the same member events on each group it names, as
//! operations of their own (`via: user_groups`).
//!
//! A member (or a group named in `groups`) is identified by its `value`, or else by the id at the end
//! of its `$ref`; an entry with neither, or with both naming different ids, is refused. Writing any
//! sub-attribute of a member entry but `display` is a membership change: `value` and `$ref` change
//! who the member is, `type` changes what the id refers to (a User or a nested Group).

use std::borrow::Cow;

use super::{Builder, UserGroups};
use crate::scim::change::{Change, EventKind, Op, Operation};
use crate::scim::endpoint::Method;
use crate::scim::endpoint::ResourceType;
use crate::scim::error::ScimError;
use crate::scim::json::Json;
use crate::scim::path::Filter;

impl Builder<'_> {
    pub(super) fn user_events(
        &mut self,
        change: &mut Change,
        filter: Option<&Filter>,
    ) -> Result<(), ScimError> {
        let method = self.op.method.clone();
        let attr = change.attribute.clone();
        match attr.as_str() {
            "groups" => self.user_groups(change, filter)?,
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
                e.values = vec![Json::string(attr.clone())];
                if attr == "userName" {
                    e.user_name = change
                        .values
                        .first()
                        .and_then(Json::as_str)
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
                Some(Json::Bool(b)) => Some(*b),
                Some(Json::Str(s))
                    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
                {
                    change.flags.push("string_boolean");
                    Some(s.eq_ignore_ascii_case("true"))
                }
                Some(Json::Number(n)) if n.as_f64() == Some(0.0) || n.as_f64() == Some(1.0) => {
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

    pub(super) fn group_events(
        &mut self,
        change: &mut Change,
        filter: Option<&Filter>,
    ) -> Result<(), ScimError> {
        if change.attribute == "displayName" {
            self.op.display_name = change
                .values
                .first()
                .and_then(Json::as_str)
                .map(str::to_string);
        }
        let sub = change.sub_attribute.as_deref();
        // `members.display` relabels entries, except an `add` under a filter: scim-patch appends a
        // new entry (with the filter's attribute) when nothing matches, so that is a member add.
        let relabel = sub.is_some_and(|s| s.eq_ignore_ascii_case("display"))
            && (filter.is_none() || change.op != Op::Add);
        if change.attribute != "members" || relabel {
            self.group_updated();
            return Ok(());
        }
        let put = self.op.method == Method::Put;
        for (kind, members, scope) in membership(change, filter, put, "members")? {
            self.member_event(kind, members, scope);
        }
        Ok(())
    }

    /// One `group_updated` per operation, carrying the latest name the operation gives the group.
    fn group_updated(&mut self) {
        let name = self.op.display_name.clone();
        match self
            .op
            .events
            .iter_mut()
            .find(|e| e.kind == EventKind::GroupUpdated)
        {
            Some(e) => e.display_name = name,
            None if self.op.method != Method::Post => {
                let mut e = self.event(EventKind::GroupUpdated);
                e.display_name = name;
                self.op.events.push(e);
            }
            None => {}
        }
    }

    fn member_event(&mut self, kind: EventKind, members: Vec<String>, scope: Option<&'static str>) {
        let mut e = self.event(kind);
        e.members = members;
        e.scope = scope;
        e.display_name = self.op.display_name.clone();
        self.op.events.push(e);
    }

    /// A User's `groups`: refused, or read as member events on each group it names, each group an
    /// operation of its own so that privileged-group rules and name lookups see it.
    fn user_groups(
        &mut self,
        change: &mut Change,
        filter: Option<&Filter>,
    ) -> Result<(), ScimError> {
        let sub = change.sub_attribute.is_some();
        if change
            .sub_attribute
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("display"))
        {
            return Ok(());
        }
        let put = self.op.method == Method::Put;
        let reading = membership(change, filter, put, "groups")?;
        if self.limits.user_groups == UserGroups::Refuse
            && (filter.is_some() || sub || !change.values.is_empty())
        {
            return Err(ScimError::new(
                400,
                Some("mutability"),
                "`groups` is readOnly (RFC 7643 §4.1.2): write membership on the group (policy `scim.user_groups` is `refuse`)",
            ));
        }
        let member = match (&self.op.resource_id, &self.op.bulk_id) {
            (Some(id), _) => Some(id.clone()),
            (None, Some(b)) => Some(format!("bulkId:{b}")),
            (None, None) => None,
        };
        let mut named_all = false;
        for (kind, groups, scope) in reading {
            // A replace of the whole list also drops the user from every group it does not list.
            named_all |= groups.is_empty() || kind == EventKind::GroupMembersReplaced;
            let kind = match kind {
                EventKind::GroupMembersReplaced => EventKind::GroupMemberAdded,
                k => k,
            };
            for group in groups {
                let op = self.group_op(group, kind, member.clone(), scope);
                self.derived.push(op);
            }
        }
        change.flags.push("user_groups");
        if named_all {
            // Unlisted groups (replace, remove without a filter): which ones is unknown here.
            change.flags.push("groups_unlisted");
        }
        Ok(())
    }

    /// The operation on `group` that a User's `groups` write implies.
    fn group_op(
        &self,
        group: String,
        kind: EventKind,
        member: Option<String>,
        scope: Option<&'static str>,
    ) -> Operation {
        let (id, bulk_id) = match group.strip_prefix("bulkId:") {
            Some(b) => (None, Some(b.to_string())),
            None => (Some(group), None),
        };
        let mut e = crate::scim::Event::new(kind, ResourceType::Groups, id.clone());
        e.bulk_id = bulk_id.clone();
        e.members = member.into_iter().collect();
        e.scope = scope;
        Operation {
            method: Method::Patch,
            resource_type: ResourceType::Groups,
            resource_id: id,
            bulk_id,
            bulk_index: None,
            changes: Vec::new(),
            events: vec![e],
            display_name: None,
            names_in_bulk: Vec::new(),
            via: Some("user_groups"),
        }
    }
}

/// A member event to raise: kind, member ids, scope.
type MemberEvent = (EventKind, Vec<String>, Option<&'static str>);

/// What a write to a multi-valued reference attribute (`members`, a User's `groups`) does to
/// membership: the events, each with the ids it names (an empty list means "every one").
fn membership(
    change: &mut Change,
    filter: Option<&Filter>,
    put: bool,
    name: &str,
) -> Result<Vec<MemberEvent>, ScimError> {
    let sub = change.sub_attribute.as_deref();
    if let (Some(s), None) = (sub, filter) {
        // `members.value` with no filter: scim2-server adds one entry, scim-patch rewrites the id of
        // every entry (dropping every member but one). No IdP sends it; refuse rather than guess.
        return Err(ScimError::path(format!(
            "`{name}.{s}` without a value filter is read differently by servers (one entry added, or every entry rewritten): write `{name}` with a value list, or `{name}[value eq \"…\"].{s}`"
        )));
    }
    let listed = filter.and_then(Filter::listed_values);
    let identity_write = sub.is_some_and(|s| s == "value" || s == "$ref");
    let given = match sub {
        None => entry_ids(&change.values, filter.map(|_| listed.as_deref()), name)?,
        Some(s) if identity_write => sub_ids(&change.values, s, name)?,
        // `type` and any other sub-attribute: the listed entries change what they refer to.
        Some(_) => listed.clone().unwrap_or_default(),
    };
    let mut out = Vec::new();
    match (change.op, put) {
        (Op::Add, _) | (Op::Replace, false) if sub.is_some() => {
            out.push((EventKind::GroupMemberAdded, given, None));
            if identity_write {
                // The selected entries get the new id: the members they named leave the group.
                let scope = if listed.is_some() { "listed" } else { "filter" };
                out.push((
                    EventKind::GroupMemberRemoved,
                    listed.unwrap_or_default(),
                    Some(scope),
                ));
            }
        }
        // An add under a value filter merges into the entries it selects (scimmy): their ids may be
        // overwritten, which removes those members, exactly as a filtered replace does.
        (Op::Add | Op::Replace, _) if filter.is_some() => {
            out.push((EventKind::GroupMemberAdded, given, None));
            out.push((
                EventKind::GroupMemberRemoved,
                listed.unwrap_or_default(),
                Some("filter"),
            ));
        }
        (Op::Add, _) if !given.is_empty() => out.push((EventKind::GroupMemberAdded, given, None)),
        (Op::Add, _) => {}
        (Op::Replace, _) => out.push((EventKind::GroupMembersReplaced, given, None)),
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
            out.push((EventKind::GroupMemberRemoved, members, Some(scope)));
        }
    }
    Ok(out)
}

/// The ids of whole entries (`{"value", "$ref", …}` objects, or bare ids), each entry checked.
/// Under a value filter (`matched`: the ids it lists, if any), an entry without an id edits the
/// entries the filter selects, so it names those.
fn entry_ids(
    values: &[Json<'_>],
    matched: Option<Option<&[String]>>,
    name: &str,
) -> Result<Vec<String>, ScimError> {
    let mut ids = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let refuse =
            |why: &str| ScimError::new(400, Some("invalidValue"), format!("`{name}[{i}]` {why}"));
        match (entry_id(v).map_err(refuse)?, matched) {
            (Some(id), _) => ids.push(id),
            (None, Some(listed)) => ids.extend(listed.unwrap_or_default().iter().cloned()),
            (None, None) => return Err(refuse("names no member: it needs a `value` or a `$ref`")),
        }
    }
    Ok(ids)
}

/// The ids a `value` or `$ref` sub-attribute write names.
fn sub_ids(values: &[Json<'_>], sub: &str, name: &str) -> Result<Vec<String>, ScimError> {
    let mut ids = Vec::with_capacity(values.len());
    for v in values {
        let id = match v.as_str() {
            Some(s) if sub == "$ref" => ref_id(s),
            Some(s) => nonempty(s),
            None => None,
        };
        ids.push(id.ok_or_else(|| {
            ScimError::new(
                400,
                Some("invalidValue"),
                format!("`{name}.{sub}` must name a resource id"),
            )
        })?);
    }
    Ok(ids)
}

/// One entry's id: its `value`, or the id its `$ref` ends with; both present must agree. `None`
/// when it has neither.
fn entry_id(entry: &Json<'_>) -> Result<Option<String>, &'static str> {
    let obj = match entry {
        Json::Str(s) => return nonempty(s).ok_or("is an empty id").map(Some),
        Json::Object(o) => o,
        _ => return Err("must be an object with a `value` or a `$ref`"),
    };
    let value = only_member(obj, "value")?;
    let reference = only_member(obj, "$ref")?;
    let value = match value {
        None | Some(Json::Null) => None,
        Some(Json::Str(s)) => Some(nonempty(s).ok_or("has an empty `value`")?),
        Some(_) => return Err("has a `value` that is not a string"),
    };
    let reference = match reference {
        None | Some(Json::Null) => None,
        Some(Json::Str(s)) => Some(ref_id(s).ok_or("has a `$ref` that names no resource id")?),
        Some(_) => return Err("has a `$ref` that is not a string"),
    };
    match (value, reference) {
        (Some(v), Some(r)) if v != r => Err("has a `value` and a `$ref` that name different ids"),
        (Some(v), _) | (None, Some(v)) => Ok(Some(v)),
        (None, None) => Ok(None),
    }
}

/// The member of `obj` named `key` (case-insensitively); two spellings of it are ambiguous.
fn only_member<'v, 'j>(
    obj: &'v [(Cow<'j, str>, Json<'j>)],
    key: &str,
) -> Result<Option<&'v Json<'j>>, &'static str> {
    let mut found = obj.iter().filter(|(k, _)| k.eq_ignore_ascii_case(key));
    let first = found.next().map(|(_, v)| v);
    if found.next().is_some() {
        return Err("spells one sub-attribute twice");
    }
    Ok(first)
}

fn nonempty(s: &str) -> Option<String> {
    (!s.trim().is_empty()).then(|| s.to_string())
}

/// The resource id at the end of a reference URI (`https://h/scim/v2/Users/2819c223`,
/// `Users/2819c223`, `/Groups/a%20b`): the last path segment, percent-decoded as servers route it.
/// `None` when there is none (a trailing `/`, an empty or undecodable segment).
pub(crate) fn ref_id(reference: &str) -> Option<String> {
    let path = reference.split(['?', '#']).next().unwrap_or_default();
    let last = path.rsplit('/').next().unwrap_or_default();
    let decoded = percent_decode(last)?;
    if decoded.contains('/') {
        return None;
    }
    nonempty(&decoded)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn entry_id(v: Value) -> Result<Option<String>, &'static str> {
        super::entry_id(&Json::from_value(v))
    }

    #[test]
    fn ref_ids_are_last_segments_percent_decoded() {
        assert_eq!(ref_id("https://h/scim/v2/Users/U1").as_deref(), Some("U1"));
        assert_eq!(ref_id("Users/a%20b?x=1#f").as_deref(), Some("a b"));
        assert_eq!(ref_id("U2").as_deref(), Some("U2"));
        assert_eq!(ref_id("https://h/Users/"), None);
        assert_eq!(ref_id("https://h/Users/a%2Fb"), None);
        assert_eq!(ref_id("https://h/Users/%zz"), None);
        assert_eq!(ref_id("https://h/Users/%ff"), None);
    }

    #[test]
    fn entries_need_one_identity() {
        let id = |s: &str| Ok(Some(s.to_string()));
        assert_eq!(entry_id(json!({"value": "a"})), id("a"));
        assert_eq!(entry_id(json!({"$ref": "/Users/b"})), id("b"));
        assert_eq!(
            entry_id(json!({"value": "b", "$ref": "https://h/Users/b"})),
            id("b")
        );
        assert!(entry_id(json!({"value": "a", "$ref": "/Users/b"})).is_err());
        assert_eq!(entry_id(json!({})), Ok(None));
        assert_eq!(entry_id(json!({"display": "x"})), Ok(None));
        assert!(entry_id(json!({"value": 7})).is_err());
        assert!(entry_id(json!({"value": "a", "Value": "b"})).is_err());
        assert!(entry_id(json!(null)).is_err());
        assert!(entry_id(json!("")).is_err());
    }

    #[test]
    fn an_id_less_entry_needs_a_filter_and_then_names_what_it_selects() {
        let listed = ["u1".to_string()];
        let edit = [Json::from_value(json!({"display": "Babs"}))];
        assert!(entry_ids(&edit, None, "members").is_err());
        assert_eq!(
            entry_ids(&edit, Some(Some(&listed)), "members").unwrap(),
            ["u1"]
        );
        assert!(entry_ids(&edit, Some(None), "members").unwrap().is_empty());
    }
}
