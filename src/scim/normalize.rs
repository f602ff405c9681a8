//! The normaliser: a complete SCIM write → ordered changes and lifecycle events.
//!
//! POST to a collection: every attribute present is an `add`. PUT: every attribute present is a
//! `replace` (absent rule-relevant attributes get a `possible_clear` change: the server may clear
//! them). PATCH: each operation in order, path-less values expanded key by key. DELETE: a delete
//! event. A PATCH without `Operations` is a SCIM 1.1 partial resource (`scim1`). Every attribute
//! named is checked against the schema (`schema`); two spellings of one attribute in one object are
//! refused as duplicates. Bulk: see `bulk`. Where upstreams read the same bytes differently, the
//! most dangerous plausible reading is taken and flagged (`string_boolean`, `remove_listed_or_all`…).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;

use super::attribute::{self, AttrRef};
use super::change::{Change, Event, EventKind, Op, Operation};
use super::endpoint::{Endpoint, Method, ResourceType};
use super::error::ScimError;
use super::json::{Json, Members};
use super::path::{self, CompareOp, Filter};
use super::request::RequestView;
use super::schema::{Schema, UnknownAttribute};
use super::strict_json;
use crate::scim::bulk;

mod lifecycle;
mod scim1;

use scim1::is_patch_op;

/// Limits and names the normaliser needs from the policy.
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    pub max_depth: usize,
    pub max_operations: usize,
    /// The most values one PATCH operation or one attribute of a body may write (members above all).
    pub max_values: usize,
    /// How a User's `groups` (readOnly, RFC 7643 §4.1.2) is read.
    pub user_groups: UserGroups,
    /// Lower-case canonical names of attributes whose values are redacted.
    pub sensitive: &'a [String],
    pub base_paths: &'a [String],
    pub resource_types: &'a [String],
    /// The attributes writes may name (RFC 7643 core + what the policy declares).
    pub schema: &'a Schema,
}

/// How a User's `groups` attribute in a write is read. It is readOnly, yet permissive servers apply
/// it as membership of the groups it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserGroups {
    /// As membership changes of each referenced group (`via: user_groups` operations).
    #[default]
    Judge,
    /// Refused (400 mutability) when it names a group; an empty list passes (Okta sends `[]`).
    Refuse,
}

/// A normalised SCIM write.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Normalized {
    pub method: Method,
    pub resource_type: ResourceType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// The request is a Bulk; `operations` holds one entry per Bulk operation.
    pub bulk: bool,
    pub operations: Vec<Operation>,
}

/// The placeholder that replaces every value of a sensitive attribute.
pub const REDACTED: &str = "[redacted]";

/// Attributes a PUT may clear by omission, which rules care about.
const CLEARABLE_ON_PUT: [&str; 5] = ["active", "roles", "entitlements", "externalId", "members"];

/// Normalises a complete write to `endpoint`.
pub fn normalize(
    view: &RequestView<'_>,
    endpoint: &Endpoint,
    method: Method,
    limits: &Limits<'_>,
) -> Result<Normalized, ScimError> {
    let body = read_body(view, limits)?;
    if endpoint.resource_type == ResourceType::Bulk {
        if method != Method::Post || endpoint.id.is_some() {
            return Err(ScimError::new(405, None, "Bulk accepts only POST /Bulk"));
        }
        let body = body.ok_or_else(|| ScimError::syntax("a Bulk request needs a body"))?;
        let operations = bulk::normalize(body, limits)?;
        return Ok(Normalized {
            method,
            resource_type: ResourceType::Bulk,
            resource_id: None,
            bulk: true,
            operations,
        });
    }
    let operations = operation(
        &method,
        &endpoint.resource_type,
        endpoint.id.clone(),
        None,
        body,
        limits,
    )?;
    Ok(Normalized {
        method,
        resource_type: endpoint.resource_type.clone(),
        resource_id: endpoint.id.clone(),
        bulk: false,
        operations,
    })
}

/// Normalises one write on one resource (the whole request, or one Bulk operation), followed by the
/// operations read from it (a User's `groups` as membership of each group). The body is consumed:
/// the values a change keeps are copied out of it once, as owned `Json`.
pub fn operation(
    method: &Method,
    resource_type: &ResourceType,
    id: Option<String>,
    bulk_id: Option<String>,
    body: Option<Json<'_>>,
    limits: &Limits<'_>,
) -> Result<Vec<Operation>, ScimError> {
    // `/Me` is the authenticated user (RFC 7644 §3.11): judge it as a User.
    let rt = if *resource_type == ResourceType::Me {
        ResourceType::Users
    } else {
        resource_type.clone()
    };
    let id = if *resource_type == ResourceType::Me {
        Some("Me".to_string())
    } else {
        id
    };
    let mut b = Builder::new(method.clone(), rt, id, bulk_id, limits);
    match (
        method,
        b.op.resource_id.is_some() || b.op.bulk_id.is_some() && *method != Method::Post,
    ) {
        (Method::Post, false) => b.create(object(body, "a create")?)?,
        (Method::Put, true) => b.replace(object(body, "a PUT")?)?,
        (Method::Patch, true) => b.patch(object(body, "a PATCH")?)?,
        (Method::Delete, true) => b.delete(body.as_ref())?,
        (Method::Post, true) => {
            return Err(ScimError::new(
                405,
                None,
                "POST to a resource is not a SCIM operation",
            ))
        }
        (m, _) => {
            return Err(ScimError::new(
                405,
                None,
                format!("{} is not accepted on this endpoint", m.as_str()),
            ));
        }
    }
    Ok(b.finish())
}

fn object<'a>(body: Option<Json<'a>>, what: &str) -> Result<Members<'a>, ScimError> {
    match body {
        Some(Json::Object(members)) => Ok(members),
        _ => Err(ScimError::syntax(format!(
            "the body of {what} must be a JSON object"
        ))),
    }
}

/// Checks encoding and content type, then reads the body strictly (strings borrowed from it).
/// `None` for an empty body.
fn read_body<'a>(
    view: &RequestView<'a>,
    limits: &Limits<'_>,
) -> Result<Option<Json<'a>>, ScimError> {
    let h = view.headers;
    if h.count("content-encoding") > 1 || h.count("content-type") > 1 {
        return Err(ScimError::syntax(
            "repeated Content-Type or Content-Encoding headers",
        ));
    }
    if let Some(enc) = h.get("content-encoding") {
        if !enc.trim().eq_ignore_ascii_case("identity") {
            return Err(ScimError::new(
                415,
                None,
                "compressed or encoded request bodies are not accepted",
            ));
        }
    }
    let Some(bytes) = view
        .body
        .filter(|b| b.iter().any(|c| !c.is_ascii_whitespace()))
    else {
        return Ok(None);
    };
    if let Some(ct) = h.get("content-type") {
        check_content_type(ct)?;
    }
    strict_json::read(bytes, limits.max_depth).map(Some)
}

fn check_content_type(ct: &str) -> Result<(), ScimError> {
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or_default().trim();
    let json = media.eq_ignore_ascii_case("application/scim+json")
        || media.eq_ignore_ascii_case("application/json");
    if !json {
        return Err(ScimError::new(
            415,
            None,
            "SCIM bodies must be application/scim+json or application/json",
        ));
    }
    for param in parts {
        let (k, v) = param.split_once('=').unwrap_or((param, ""));
        let v = v.trim().trim_matches('"');
        if k.trim().eq_ignore_ascii_case("charset")
            && !v.eq_ignore_ascii_case("utf-8")
            && !v.eq_ignore_ascii_case("utf8")
        {
            return Err(ScimError::new(415, None, "SCIM bodies must be UTF-8"));
        }
    }
    Ok(())
}

/// Builds one `Operation`, change by change, deriving lifecycle events as it goes.
struct Builder<'l> {
    op: Operation,
    /// Operations read from this one (`via`), in order.
    derived: Vec<Operation>,
    limits: &'l Limits<'l>,
}

impl<'l> Builder<'l> {
    fn new(
        method: Method,
        rt: ResourceType,
        id: Option<String>,
        bulk_id: Option<String>,
        limits: &'l Limits<'l>,
    ) -> Self {
        let op = Operation {
            method,
            resource_type: rt,
            resource_id: id,
            bulk_id,
            bulk_index: None,
            changes: Vec::new(),
            events: Vec::new(),
            display_name: None,
            names_in_bulk: Vec::new(),
            via: None,
        };
        Builder {
            op,
            derived: Vec::new(),
            limits,
        }
    }

    /// The operation, then the operations read from it.
    fn finish(self) -> Vec<Operation> {
        let mut out = Vec::with_capacity(1 + self.derived.len());
        out.push(self.op);
        out.extend(self.derived);
        out
    }

    fn users(&self) -> bool {
        self.op.resource_type == ResourceType::Users
    }

    fn groups(&self) -> bool {
        self.op.resource_type == ResourceType::Groups
    }

    fn create(&mut self, body: Members<'_>) -> Result<(), ScimError> {
        let kind = if self.users() {
            Some(EventKind::UserProvisioned)
        } else if self.groups() {
            Some(EventKind::GroupCreated)
        } else {
            None
        };
        if let Some(kind) = kind {
            let mut e = self.event(kind);
            e.user_name = string_member(&body, "userName")
                .filter(|_| self.users() && !self.is_sensitive("userName"));
            e.display_name = string_member(&body, "displayName")
                .filter(|_| self.groups() && !self.is_sensitive("displayName"));
            self.op.events.push(e);
        }
        refuse_qualified_keys(&body)?;
        for (attr, value) in expand(body)? {
            self.apply(Op::Add, attr, None, value)?;
        }
        Ok(())
    }

    fn replace(&mut self, body: Members<'_>) -> Result<(), ScimError> {
        if self.users() {
            self.push_event(EventKind::UserUpdated);
        }
        refuse_qualified_keys(&body)?;
        let mut present = Vec::new();
        for (attr, value) in expand(body)? {
            present.push(attr.attribute.clone());
            self.apply(Op::Replace, attr, None, value)?;
        }
        let (users, groups) = (self.users(), self.groups());
        let clearable: Vec<&str> = CLEARABLE_ON_PUT
            .iter()
            .copied()
            .filter(|a| (users && *a != "members") || (groups && *a == "members"))
            .collect();
        for attr in clearable {
            if !present.iter().any(|p| p == attr) {
                let mut c = self.change(
                    Op::Remove,
                    &AttrRef {
                        attribute: attr.to_string(),
                        sub_attribute: None,
                    },
                    None,
                    Vec::new(),
                );
                c.flags.push("possible_clear");
                self.op.changes.push(c);
            }
        }
        Ok(())
    }

    fn delete(&mut self, body: Option<&Json<'_>>) -> Result<(), ScimError> {
        if body.is_some() {
            return Err(ScimError::syntax("a DELETE must not carry a body"));
        }
        let kind = if self.users() {
            EventKind::UserDeleted
        } else if self.groups() {
            EventKind::GroupDeleted
        } else {
            return Ok(());
        };
        self.push_event(kind);
        Ok(())
    }

    fn patch(&mut self, body: Members<'_>) -> Result<(), ScimError> {
        if !is_patch_op(&body) {
            return self.scim1_patch(body);
        }
        let mut ops = None;
        for (k, v) in body {
            if k.eq_ignore_ascii_case("Operations") {
                ops = Some(v);
            } else if !k.eq_ignore_ascii_case("schemas") {
                return Err(ScimError::syntax(format!(
                    "unexpected member `{}` in a PatchOp",
                    k.escape_default()
                )));
            }
        }
        match ops {
            Some(Json::Array(ops)) => self.patch_ops(ops),
            _ => Err(ScimError::syntax("a PatchOp needs an `Operations` array")),
        }
    }

    /// Applies PATCH operations (also used for Bulk PATCH `data` given as a bare array).
    fn patch_ops(&mut self, ops: Vec<Json<'_>>) -> Result<(), ScimError> {
        if ops.is_empty() {
            return Err(ScimError::syntax("a PatchOp needs at least one operation"));
        }
        if ops.len() > self.limits.max_operations {
            return Err(ScimError::too_large(format!(
                "more than {} PATCH operations",
                self.limits.max_operations
            )));
        }
        if self.users() {
            self.push_event(EventKind::UserUpdated);
        }
        for (i, op) in ops.into_iter().enumerate() {
            self.patch_op(op).map_err(|mut e| {
                e.detail = format!("Operations[{i}]: {}", e.detail);
                e
            })?;
        }
        Ok(())
    }

    fn patch_op(&mut self, op: Json<'_>) -> Result<(), ScimError> {
        let Json::Object(obj) = op else {
            return Err(ScimError::syntax("an operation must be an object"));
        };
        let (mut name, mut path, mut value) = (None, None, None);
        for (k, v) in obj {
            // Exact spellings only: scim-patch ignores `Path` and `Value` (applying a path-less
            // replace of the whole resource instead), where scim2-server folds them. No IdP sends
            // them, so a case variant is refused rather than read one way or the other.
            match k.as_ref() {
                "op" => name = Some(v),
                "path" => path = Some(v),
                "value" => value = Some(v),
                _ if ["op", "path", "value"]
                    .iter()
                    .any(|m| k.eq_ignore_ascii_case(m)) =>
                {
                    return Err(ScimError::syntax(format!(
                        "`{}`: an operation's members are `op`, `path` and `value`, in lower case (servers disagree on other spellings)",
                        k.escape_default()
                    )));
                }
                _ => {
                    return Err(ScimError::syntax(format!(
                        "unexpected member `{}` in an operation",
                        k.escape_default()
                    )));
                }
            }
        }
        let name = name.as_ref().and_then(Json::as_str).unwrap_or_default();
        let op = [Op::Add, Op::Replace, Op::Remove]
            .into_iter()
            .find(|op| name.eq_ignore_ascii_case(op.as_str()))
            .ok_or_else(|| ScimError::syntax("`op` must be `add`, `replace` or `remove`"))?;
        match path {
            Some(Json::Str(p)) if attribute::is_schema_urn(&p) => self.schema_op(op, &p, value),
            Some(Json::Str(p)) => {
                let parsed = path::parse(&p)?;
                if matches!(parsed.attr.attribute.as_str(), "id" | "meta" | "schemas") {
                    return Err(ScimError::new(
                        400,
                        Some("mutability"),
                        format!("`{}` cannot be written", parsed.attr.attribute),
                    ));
                }
                if op != Op::Remove && value.is_none() {
                    return Err(ScimError::value(format!(
                        "`{}` needs a `value`",
                        op.as_str()
                    )));
                }
                self.apply(op, parsed.attr, parsed.filter, value.unwrap_or(Json::Null))
            }
            Some(Json::Null) | None if op == Op::Remove => Err(ScimError::new(
                400,
                Some("noTarget"),
                "`remove` needs a `path`",
            )),
            Some(Json::Null) | None => {
                let Some(Json::Object(obj)) = value else {
                    return Err(ScimError::value(
                        "an operation without `path` needs an object `value`",
                    ));
                };
                for (attr, v) in expand(obj)? {
                    self.apply(op, attr, None, v)?;
                }
                Ok(())
            }
            Some(_) => Err(ScimError::path("`path` must be a string")),
        }
    }

    /// A PATCH whose path is a schema URN (`urn:…:enterprise:2.0:User`): the value holds that
    /// schema's attributes, each written as if named `URN:attribute`; a `remove` removes every
    /// attribute the schema has (so removing the enterprise extension removes the manager).
    fn schema_op(&mut self, op: Op, urn: &str, value: Option<Json<'_>>) -> Result<(), ScimError> {
        if op == Op::Remove {
            let Some(names) = self.limits.schema.extension_attributes(urn) else {
                // Not an extension the schema knows: an unknown attribute (refused or flagged).
                let attr = attribute::parse(urn)?;
                return self.apply(op, attr, None, Json::Null);
            };
            for name in names {
                let attr = attribute::parse(&format!("{urn}:{name}"))?;
                self.apply(op, attr, None, Json::Null)?;
            }
            return Ok(());
        }
        let Some(value @ Json::Object(_)) = value else {
            return Err(ScimError::value(format!(
                "`{}` with the path `{}` needs an object `value`",
                op.as_str(),
                urn.escape_default()
            )));
        };
        for (attr, v) in expand(vec![(Cow::Borrowed(urn), value)])? {
            self.apply(op, attr, None, v)?;
        }
        Ok(())
    }

    /// Records one attribute change and the lifecycle events it implies.
    fn apply(
        &mut self,
        op: Op,
        attr: AttrRef,
        filter: Option<Filter>,
        value: Json<'_>,
    ) -> Result<(), ScimError> {
        if attr.attribute == "active" && (value.is_array() || value.is_object()) {
            return Err(ScimError::value("`active` must be a boolean"));
        }
        let unknown = self.unknown_attribute(&attr, filter.as_ref(), &value)?;
        let (values, mut flags) = self.values_of(&attr, value)?;
        if values.len() > self.limits.max_values {
            return Err(ScimError::too_large(format!(
                "`{}` writes more than {} values in one operation",
                attr.attribute, self.limits.max_values
            )));
        }
        let mut change = self.change(op, &attr, filter.as_ref(), values);
        change.flags.append(&mut flags);
        if unknown {
            change.flags.push("unknown_attribute");
        }
        let first_event = self.op.events.len();
        if self.groups() {
            self.group_events(&mut change, filter.as_ref())?;
        } else if self.users() {
            self.user_events(&mut change, filter.as_ref())?;
        }
        if unknown || self.is_sensitive(&change.attribute) {
            // Events are derived from the real values (a boolean must stay a boolean); what leaves
            // the engine, the change and the events it produced, carries none of them. What an
            // unknown attribute holds cannot be told (an alias of a certificate?): never recorded.
            redact(&mut change.values);
            for e in self.op.events.iter_mut().skip(first_event) {
                redact(&mut e.values);
                redact_name(&mut e.user_name);
                redact_name(&mut e.display_name);
            }
        }
        self.op.changes.push(change);
        Ok(())
    }

    /// Whether `attr` is outside the schema: `Err` under `unknown_attribute: block`, `Ok(true)`
    /// (flag it) under `allow`.
    fn unknown_attribute(
        &self,
        attr: &AttrRef,
        filter: Option<&Filter>,
        value: &Json<'_>,
    ) -> Result<bool, ScimError> {
        let schema = self.limits.schema;
        match schema.check(&self.op.resource_type, attr, filter, value) {
            Ok(()) => Ok(false),
            Err(_) if schema.unknown == UnknownAttribute::Allow => Ok(true),
            Err(u) => Err(ScimError::unknown_attribute(
                &u.0,
                self.op.resource_type.as_str(),
            )),
        }
    }

    /// The values written, one per element, with Entra's JSON-in-string roles decoded: the only
    /// part of the body a change keeps, so the only part copied out of it.
    fn values_of(
        &self,
        attr: &AttrRef,
        value: Json<'_>,
    ) -> Result<(Vec<Json<'static>>, Vec<&'static str>), ScimError> {
        let mut flags = Vec::new();
        let items = match value {
            Json::Null => Vec::new(),
            Json::Array(items) => items,
            // Salesforce wraps members: {"members":[…]}. Some servers store the wrapper, others
            // refuse it; read it as the members it names.
            Json::Object(mut o)
                if attr.attribute == "members"
                    && o.len() == 1
                    && o.first().is_some_and(|(k, _)| k == "members") =>
            {
                flags.push("wrapped_value");
                match o.pop().map(|(_, v)| v) {
                    // Servers that do not unwrap store the wrapper as an id-less member entry.
                    Some(Json::Array(items)) if items.is_empty() => {
                        return Err(ScimError::value(
                            "a wrapped `{\"members\": []}` value names no member",
                        ))
                    }
                    Some(Json::Array(items)) => items,
                    Some(other) => vec![other],
                    None => Vec::new(),
                }
            }
            other => vec![other],
        };
        let mut values: Vec<Json<'static>> = items.into_iter().map(Json::into_owned).collect();
        if matches!(attr.attribute.as_str(), "roles" | "entitlements") {
            for v in values.iter_mut() {
                if let Some(decoded) = json_in_string(v, self.limits.max_depth)? {
                    *v = decoded;
                    if !flags.contains(&"json_in_string") {
                        flags.push("json_in_string");
                    }
                }
            }
        }
        Ok((values, flags))
    }

    fn change(
        &self,
        op: Op,
        attr: &AttrRef,
        filter: Option<&Filter>,
        values: Vec<Json<'static>>,
    ) -> Change {
        Change {
            resource_type: self.op.resource_type.clone(),
            resource_id: self.op.resource_id.clone(),
            bulk_id: self.op.bulk_id.clone(),
            op,
            attribute: attr.attribute.clone(),
            sub_attribute: attr.sub_attribute.clone(),
            filter: filter.map(Filter::to_text),
            values,
            flags: Vec::new(),
        }
    }

    fn event(&self, kind: EventKind) -> Event {
        let mut e = Event::new(
            kind,
            self.op.resource_type.clone(),
            self.op.resource_id.clone(),
        );
        e.bulk_id = self.op.bulk_id.clone();
        e
    }

    fn push_event(&mut self, kind: EventKind) {
        if !self.op.events.iter().any(|e| e.kind == kind) {
            let e = self.event(kind);
            self.op.events.push(e);
        }
    }

    fn is_sensitive(&self, attribute: &str) -> bool {
        let bare = attribute.rsplit(':').next().unwrap_or(attribute);
        self.limits
            .sensitive
            .iter()
            .any(|s| s.eq_ignore_ascii_case(attribute) || s.eq_ignore_ascii_case(bare))
    }
}

fn redact(values: &mut [Json<'static>]) {
    for v in values.iter_mut() {
        *v = Json::Str(Cow::Borrowed(REDACTED));
    }
}

fn redact_name(name: &mut Option<String>) {
    if let Some(n) = name.as_mut() {
        *n = REDACTED.into();
    }
}

/// Expands a resource body or a path-less PATCH value into `(attribute, value)` pairs: plain,
/// dotted (`name.givenName`) and URN-qualified keys, and extension objects under their URN.
/// `id`, `meta` and `schemas` are read-only and skipped (RFC 7644 §3.3), as is `schemas` inside
/// an extension object.
/// Two keys naming one attribute (`userName` and `urn:…:User:userName`, or `name` and
/// `name.givenName`) are refused: servers keep the first, the last, or merge.
fn expand(obj: Members<'_>) -> Result<Vec<(AttrRef, Json<'_>)>, ScimError> {
    let mut named = Named::with_capacity(obj.len());
    for (key, value) in obj {
        if attribute::is_schema_urn(&key) {
            let Json::Object(inner) = value else {
                return Err(ScimError::value(format!("`{key}` must hold an object")));
            };
            // An extension object may repeat its own `schemas` (scim2-models serialises it).
            for (k, v) in inner
                .into_iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("schemas"))
            {
                let whole = format!("{key}:{k}");
                let attr = attribute::parse(&whole)?;
                named.push(attr, Cow::Owned(whole), v)?;
            }
            continue;
        }
        let attr = attribute::parse(&key)?;
        if matches!(attr.attribute.as_str(), "id" | "meta" | "schemas") {
            continue;
        }
        named.push(attr, key, value)?;
    }
    Ok(named.list)
}

/// A resource (POST, PUT) names its attributes bare, and an extension's inside its URN object
/// (RFC 7643 §3). A URN-qualified attribute key at its top level is read by scim2-server and
/// dropped by scimmy, so a PUT would clear what scimguard reads as set: refused. (Path-less PATCH
/// values may qualify keys: Entra sends enterprise attributes that way, and servers agree there.)
fn refuse_qualified_keys(body: &[(Cow<'_, str>, Json<'_>)]) -> Result<(), ScimError> {
    let qualified = body
        .iter()
        .map(|(k, _)| k)
        .find(|k| attribute::starts_with_urn(k) && !attribute::is_schema_urn(k));
    match qualified {
        Some(k) => Err(ScimError::path(format!(
            "`{}`: a resource names its attributes bare and an extension's inside its schema object; servers disagree on URN-qualified keys here",
            k.escape_default()
        ))),
        None => Ok(()),
    }
}

/// The attributes one object names, in order, each with the key that named it (for errors). A few
/// attributes (nearly every body) are compared by scanning, without allocating; past `SCAN_LIMIT`
/// a folded map (`attr` for the whole attribute, `attr\0sub` for one sub-attribute) keeps a body
/// of many keys at `n log n`, not `n²`. Either way the clash reported is the same: the whole
/// attribute, else the first of its sub-attributes in folded order.
struct Named<'a> {
    list: Vec<(AttrRef, Json<'a>)>,
    keys: Vec<Cow<'a, str>>,
    /// Filled once `list` reaches `SCAN_LIMIT`: folded slot → index in `list`.
    folded: BTreeMap<String, usize>,
}

/// How many attributes are compared by scanning before `Named` folds them into a map.
const SCAN_LIMIT: usize = 16;

impl<'a> Named<'a> {
    fn with_capacity(n: usize) -> Self {
        Named {
            list: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
            folded: BTreeMap::new(),
        }
    }

    fn push(&mut self, attr: AttrRef, key: Cow<'a, str>, value: Json<'a>) -> Result<(), ScimError> {
        if self.list.len() >= SCAN_LIMIT && self.folded.is_empty() {
            for (i, (a, _)) in self.list.iter().enumerate() {
                self.folded.insert(slot(a), i);
            }
        }
        let clash = if self.folded.is_empty() {
            self.scan(&attr)
        } else {
            self.lookup(&attr)
        };
        if let Some(first) = clash.and_then(|i| self.keys.get(i)) {
            return Err(ScimError::syntax(format!(
                "`{}` and `{}` name the same attribute `{}`",
                first.escape_default(),
                key.escape_default(),
                attr.attribute
            )));
        }
        if !self.folded.is_empty() {
            self.folded.insert(slot(&attr), self.list.len());
        }
        self.list.push((attr, value));
        self.keys.push(key);
        Ok(())
    }

    /// The attribute `attr` clashes with, by scanning.
    fn scan(&self, attr: &AttrRef) -> Option<usize> {
        self.list
            .iter()
            .enumerate()
            .filter(|(_, (a, _))| {
                a.attribute.eq_ignore_ascii_case(&attr.attribute)
                    && match (&a.sub_attribute, &attr.sub_attribute) {
                        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
                        _ => true,
                    }
            })
            .min_by(|(_, (a, _)), (_, (b, _))| {
                folded_cmp(a.sub_attribute.as_deref(), b.sub_attribute.as_deref())
            })
            .map(|(i, _)| i)
    }

    /// The attribute `attr` clashes with, by the folded map.
    fn lookup(&self, attr: &AttrRef) -> Option<usize> {
        let whole = attr.attribute.to_ascii_lowercase();
        let clash = match &attr.sub_attribute {
            None => {
                let subs = format!("{whole}\0");
                let first_sub = self
                    .folded
                    .range(subs.clone()..)
                    .next()
                    .filter(|(k, _)| k.starts_with(&subs));
                self.folded.get(&whole).or(first_sub.map(|(_, v)| v))
            }
            Some(_) => self.folded.get(&whole).or(self.folded.get(&slot(attr))),
        };
        clash.copied()
    }
}

/// The folded map's key for `attr`.
fn slot(attr: &AttrRef) -> String {
    let whole = attr.attribute.to_ascii_lowercase();
    match &attr.sub_attribute {
        None => whole,
        Some(sub) => format!("{whole}\0{}", sub.to_ascii_lowercase()),
    }
}

/// Orders sub-attributes as their folded slots sort: the whole attribute first.
fn folded_cmp(a: Option<&str>, b: Option<&str>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Some(a), Some(b)) => a
            .bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.bytes().map(|c| c.to_ascii_lowercase())),
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
    }
}

/// Decodes `{"value":"{\"id\":…}"}` or `"{…}"` (JSON inside a string, as Entra sends roles).
fn json_in_string(v: &Json<'_>, max_depth: usize) -> Result<Option<Json<'static>>, ScimError> {
    let text = match v {
        Json::Str(s) => s.as_ref(),
        Json::Object(o) if o.len() == 1 => match v.get("value") {
            Some(Json::Str(s)) => s.as_ref(),
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    if !text.trim_start().starts_with('{') {
        return Ok(None);
    }
    let decoded = strict_json::read_str(text, max_depth).map_err(|e| {
        ScimError::value(format!(
            "a role carried as JSON in a string does not parse: {}",
            e.detail
        ))
    })?;
    Ok(decoded.is_object().then(|| decoded.into_owned()))
}

fn string_member(obj: &[(Cow<'_, str>, Json<'_>)], name: &str) -> Option<String> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string)
}

/// Exposed for `bulk`: applies a bare array of PATCH operations (a Bulk `data` shape).
pub(crate) fn patch_array(
    resource_type: &ResourceType,
    id: Option<String>,
    bulk_id: Option<String>,
    ops: Vec<Json<'_>>,
    limits: &Limits<'_>,
) -> Result<Vec<Operation>, ScimError> {
    let mut b = Builder::new(Method::Patch, resource_type.clone(), id, bulk_id, limits);
    b.patch_ops(ops)?;
    Ok(b.finish())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn expanded(body: serde_json::Value) -> Result<usize, ScimError> {
        let Json::Object(map) = Json::from_value(body) else {
            panic!()
        };
        expand(map).map(|v| v.len())
    }

    #[test]
    fn two_spellings_of_one_attribute_are_duplicates() {
        let core = "urn:ietf:params:scim:schemas:core:2.0:User";
        for body in [
            serde_json::json!({"userName": "a", format!("{core}:userName"): "b"}),
            serde_json::json!({"name": {}, "name.givenName": "b"}),
            serde_json::json!({"name.givenName": "b", "NAME": {}}),
            serde_json::json!({"name.givenName": "a", format!("{core}:name.GIVENNAME"): "b"}),
            serde_json::json!({"manager": "m", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": "n"}}),
            serde_json::json!({"department": "a", "urn:scim:schemas:extension:enterprise:1.0": {"department": "b"}}),
        ] {
            let e = expanded(body.clone()).unwrap_err();
            assert!(
                e.detail.contains("name the same attribute"),
                "{body}: {e:?}"
            );
        }
        let distinct = serde_json::json!({"name.givenName": "a", "name.familyName": "b", "nameX": 1, "nickName": "n"});
        assert_eq!(expanded(distinct).unwrap(), 4);
    }

    #[test]
    fn scanning_and_the_folded_map_report_the_same_clash() {
        let clash = |filler: usize| {
            let mut body = serde_json::Map::new();
            for i in 0..filler {
                body.insert(format!("x{i}"), serde_json::json!(1));
            }
            for k in ["name.GivenName", "name.familyName", "nickName", "NAME"] {
                body.insert(k.to_string(), serde_json::json!("v"));
            }
            expanded(serde_json::Value::Object(body))
                .unwrap_err()
                .detail
        };
        let few = clash(0);
        assert_eq!(
            few,
            "`name.familyName` and `NAME` name the same attribute `name`"
        );
        assert_eq!(clash(SCAN_LIMIT + 3), few);
        assert_eq!(clash(SCAN_LIMIT - 2), few);
    }
}
