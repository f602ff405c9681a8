//! The normalised change model: what one SCIM write really changes, as ordered attribute changes
//! and named lifecycle events. Every front-end and every rule reads these, never the raw body.

use serde::Serialize;

use super::endpoint::{Method, ResourceType};
use super::json::Json;

/// A PATCH-style operation on one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Add,
    Replace,
    Remove,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Replace => "replace",
            Op::Remove => "remove",
        }
    }
}

/// One attribute change. `attribute` is canonical: a core attribute by its schema name
/// (`userName`, `members`), an extension attribute as `urn:…:Name` (`urn:…:enterprise:2.0:User:manager`),
/// unknown names lower-cased.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub resource_type: ResourceType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk_id: Option<String>,
    pub op: Op,
    pub attribute: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_attribute: Option<String>,
    /// The value filter of a PATCH path, in canonical text (`type eq "work" and primary eq true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The values written, one per multi-valued element; empty for a remove or a clear.
    /// Sensitive attributes hold `"[redacted]"`. Owned copies of what the body held.
    pub values: Vec<Json<'static>>,
    /// Readings the engine had to choose between (`remove_listed_or_all`, `string_boolean`,
    /// `json_in_string`, `possible_clear`, `filter_defined`), so audits show the ambiguity.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<&'static str>,
}

impl Change {
    pub fn is(&self, attribute: &str) -> bool {
        self.attribute.eq_ignore_ascii_case(attribute)
    }
}

/// A named lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    UserProvisioned,
    UserUpdated,
    UserDeprovisioned,
    UserReactivated,
    UserDeleted,
    GroupCreated,
    GroupUpdated,
    GroupDeleted,
    GroupMemberAdded,
    GroupMemberRemoved,
    GroupMembersReplaced,
    RoleChanged,
    EntitlementChanged,
    CredentialChanged,
    IdentityChanged,
    ManagerChanged,
}

impl EventKind {
    pub const ALL: [EventKind; 16] = [
        EventKind::UserProvisioned,
        EventKind::UserUpdated,
        EventKind::UserDeprovisioned,
        EventKind::UserReactivated,
        EventKind::UserDeleted,
        EventKind::GroupCreated,
        EventKind::GroupUpdated,
        EventKind::GroupDeleted,
        EventKind::GroupMemberAdded,
        EventKind::GroupMemberRemoved,
        EventKind::GroupMembersReplaced,
        EventKind::RoleChanged,
        EventKind::EntitlementChanged,
        EventKind::CredentialChanged,
        EventKind::IdentityChanged,
        EventKind::ManagerChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::UserProvisioned => "user_provisioned",
            EventKind::UserUpdated => "user_updated",
            EventKind::UserDeprovisioned => "user_deprovisioned",
            EventKind::UserReactivated => "user_reactivated",
            EventKind::UserDeleted => "user_deleted",
            EventKind::GroupCreated => "group_created",
            EventKind::GroupUpdated => "group_updated",
            EventKind::GroupDeleted => "group_deleted",
            EventKind::GroupMemberAdded => "group_member_added",
            EventKind::GroupMemberRemoved => "group_member_removed",
            EventKind::GroupMembersReplaced => "group_members_replaced",
            EventKind::RoleChanged => "role_changed",
            EventKind::EntitlementChanged => "entitlement_changed",
            EventKind::CredentialChanged => "credential_changed",
            EventKind::IdentityChanged => "identity_changed",
            EventKind::ManagerChanged => "manager_changed",
        }
    }

    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// A lifecycle event with its target, for rules and audit records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub resource_type: ResourceType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk_id: Option<String>,
    /// Member ids added, removed or set (group membership events).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// Role/entitlement values granted or set, attribute names for identity changes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Json<'static>>,
    /// The user's `userName` when the request carries it (creates, renames).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// The group's `displayName` when the request carries it (creates, renames).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// For member events: the reading chosen when the request is ambiguous (`all`, `filter`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
}

impl Event {
    pub fn new(kind: EventKind, resource_type: ResourceType, resource_id: Option<String>) -> Self {
        Event {
            kind,
            resource_type,
            resource_id,
            bulk_id: None,
            members: Vec::new(),
            values: Vec::new(),
            user_name: None,
            display_name: None,
            scope: None,
        }
    }
}

/// One write on one resource: the whole request, or one operation of a Bulk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Operation {
    pub method: Method,
    pub resource_type: ResourceType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// The Bulk operation's `bulkId`, or the `bulkId:` reference in its path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk_id: Option<String>,
    /// Position inside a Bulk request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk_index: Option<usize>,
    pub changes: Vec<Change>,
    pub events: Vec<Event>,
    /// A new `displayName` this operation gives the group (create, rename), for privileged-group tests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Inside a Bulk: the other names the same group is given by the operations of this Bulk
    /// (before or after this one). A group is judged privileged if any of them is privileged, so a
    /// rename in one operation cannot launder a member add in another.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names_in_bulk: Vec<String>,
    /// Set when this operation is read from another write rather than sent as such: `user_groups`
    /// is a User's `groups` attribute read as a membership change of each group it names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<&'static str>,
}
