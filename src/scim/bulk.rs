//! Bulk (RFC 7644 §3.7): each operation normalised as its own request, with its `bulkId`.
//!
//! `bulkId:<id>` references must resolve to a `bulkId` defined in the same request (a create here
//! and an add-to-group there is one escalation, so the group's name and the member travel along).
//! Every name a group is given anywhere in the Bulk (create, rename by id or by `bulkId:`) travels to
//! every operation on that group, before and after: a group is judged privileged if it is privileged
//! under any of them, so renaming in one operation and adding a member in another is judged as the
//! same two writes in one PATCH, and a rename away, add, rename back does not launder the add.
//! PATCH `data` is accepted in the three shapes servers apply: `{"schemas","Operations"}`,
//! `{"Operations"}` and a bare array. Bulk `method` is case-folded; nested Bulk is refused.

use std::collections::{BTreeMap, BTreeSet};

use super::change::Operation;
use super::endpoint::{classify, Method, ResourceType, Route};
use super::error::ScimError;
use super::json::Json;
use super::normalize::{operation, patch_array, Limits};

/// Normalises a BulkRequest body into one `Operation` per Bulk operation, in order. The body is
/// consumed: the values its changes keep are copied out of it once.
pub fn normalize(body: Json<'_>, limits: &Limits<'_>) -> Result<Vec<Operation>, ScimError> {
    let Json::Object(obj) = body else {
        return Err(ScimError::syntax("a BulkRequest must be a JSON object"));
    };
    let mut ops = None;
    for (k, v) in obj {
        if k.eq_ignore_ascii_case("operations") {
            ops = Some(v);
        } else if !k.eq_ignore_ascii_case("schemas") && !k.eq_ignore_ascii_case("failonerrors") {
            return Err(ScimError::syntax(format!(
                "unexpected member `{}` in a BulkRequest",
                k.escape_default()
            )));
        }
    }
    let Some(Json::Array(ops)) = ops else {
        return Err(ScimError::syntax(
            "a BulkRequest needs an `Operations` array",
        ));
    };
    if ops.len() > limits.max_operations {
        return Err(ScimError::too_large(format!(
            "more than {} Bulk operations",
            limits.max_operations
        )));
    }
    let mut out = Vec::with_capacity(ops.len());
    // References are read from the raw operations before normalising consumes them.
    let mut refs = Vec::new();
    for (i, op) in ops.into_iter().enumerate() {
        collect_refs(&op, &mut refs, 0, i);
        let normalized = bulk_operation(op, limits).map_err(|mut e| {
            e.detail = format!("Bulk Operations[{i}]: {}", e.detail);
            e
        })?;
        out.extend(normalized.into_iter().map(|mut o| {
            o.bulk_index = Some(i);
            o
        }));
    }
    resolve_references(&out, &refs)?;
    carry_group_names(&mut out);
    Ok(out)
}

fn bulk_operation(op: Json<'_>, limits: &Limits<'_>) -> Result<Vec<Operation>, ScimError> {
    let Json::Object(obj) = op else {
        return Err(ScimError::syntax("a Bulk operation must be an object"));
    };
    let (mut method, mut path, mut bulk_id, mut data) = (None, None, None, None);
    for (k, v) in obj {
        if k.eq_ignore_ascii_case("method") {
            method = Some(v);
        } else if k.eq_ignore_ascii_case("path") {
            path = Some(v);
        } else if k.eq_ignore_ascii_case("bulkId") {
            let Json::Str(id) = v else {
                return Err(ScimError::syntax("`bulkId` must be a string"));
            };
            bulk_id = Some(id.into_owned());
        } else if k.eq_ignore_ascii_case("data") {
            data = Some(v);
        } else if !k.eq_ignore_ascii_case("version") {
            return Err(ScimError::syntax(format!(
                "unexpected member `{}` in a Bulk operation",
                k.escape_default()
            )));
        }
    }
    let method = Method::parse(
        method
            .as_ref()
            .and_then(Json::as_str)
            .ok_or_else(|| ScimError::syntax("a Bulk operation needs a `method`"))?,
    );
    let path = path
        .as_ref()
        .and_then(Json::as_str)
        .ok_or_else(|| ScimError::syntax("a Bulk operation needs a `path`"))?;
    if !path.starts_with('/') {
        return Err(ScimError::path(
            "a Bulk operation `path` must start with `/`",
        ));
    }
    let Route::Scim(endpoint) = classify(path, &[String::new()], limits.resource_types)? else {
        return Err(ScimError::path(
            "a Bulk operation must name a resource type",
        ));
    };
    if matches!(
        endpoint.resource_type,
        ResourceType::Bulk | ResourceType::Search
    ) || endpoint.search
        || endpoint.resource_type.is_discovery()
    {
        return Err(ScimError::path(
            "a Bulk operation cannot target this endpoint",
        ));
    }
    // `/Groups/bulkId:g1` targets the resource created by the operation with bulkId `g1`.
    let (id, target_ref) = match endpoint.id {
        Some(id) => match id.strip_prefix("bulkId:") {
            Some(r) => (None, Some(r.to_string())),
            None => (Some(id), None),
        },
        None => (None, None),
    };
    if method == Method::Post && bulk_id.is_none() {
        return Err(ScimError::syntax("a Bulk POST needs a `bulkId`"));
    }
    let own = if method == Method::Post {
        bulk_id
    } else {
        target_ref.clone()
    };
    let data = match (&method, data) {
        (Method::Delete, Some(_)) => {
            return Err(ScimError::syntax("a Bulk DELETE must not carry `data`"))
        }
        (Method::Delete, None) => None,
        (_, None) => return Err(ScimError::syntax("a Bulk operation needs `data`")),
        (Method::Patch, Some(Json::Array(ops))) => {
            return patch_array(&endpoint.resource_type, id, own, ops, limits);
        }
        (_, Some(d)) => Some(d),
    };
    if method != Method::Post && id.is_none() && target_ref.is_none() {
        return Err(ScimError::path(format!(
            "a Bulk {} needs a resource id",
            method.as_str()
        )));
    }
    operation(&method, &endpoint.resource_type, id, own, data, limits)
}

/// Checks every `bulkId:` reference (`refs`: each with the index of the operation that holds it, in
/// request order).
fn resolve_references(ops: &[Operation], refs: &[(usize, String)]) -> Result<(), ScimError> {
    let mut defined = BTreeSet::new();
    for op in ops.iter().filter(|op| op.via.is_none()) {
        if op.method == Method::Post {
            if let Some(b) = &op.bulk_id {
                if !defined.insert(b.clone()) {
                    return Err(ScimError::syntax(format!(
                        "`bulkId` `{b}` is defined twice"
                    )));
                }
            }
        }
    }
    if let Some((i, missing)) = refs.iter().find(|(_, r)| !defined.contains(r)) {
        return Err(ScimError::new(
            400,
            Some("invalidValue"),
            format!("Bulk Operations[{i}]: `bulkId:{missing}` does not refer to an operation of this request"),
        ));
    }
    Ok(())
}

/// Which group an operation writes: its id, or the `bulkId` of the create it refers to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum GroupKey {
    Id(String),
    BulkId(String),
}

fn group_key(op: &Operation) -> Option<GroupKey> {
    if op.resource_type != ResourceType::Groups {
        return None;
    }
    match (&op.resource_id, &op.bulk_id) {
        (Some(id), _) => Some(GroupKey::Id(id.clone())),
        (None, Some(b)) => Some(GroupKey::BulkId(b.clone())),
        (None, None) => None,
    }
}

/// Gives every operation on a group the other names the Bulk gives that group (`names_in_bulk`).
fn carry_group_names(ops: &mut [Operation]) {
    let mut names: BTreeMap<GroupKey, Vec<String>> = BTreeMap::new();
    for op in ops.iter() {
        if let (Some(key), Some(name)) = (group_key(op), &op.display_name) {
            let held = names.entry(key).or_default();
            if !held.contains(name) {
                held.push(name.clone());
            }
        }
    }
    for op in ops.iter_mut() {
        let Some(held) = group_key(op).and_then(|k| names.get(&k)) else {
            continue;
        };
        op.names_in_bulk = held
            .iter()
            .filter(|n| op.display_name.as_ref() != Some(*n))
            .cloned()
            .collect();
    }
}

fn collect_refs(v: &Json<'_>, out: &mut Vec<(usize, String)>, depth: usize, op: usize) {
    if depth > 64 {
        return;
    }
    match v {
        // The `contains` guard skips the substring searcher's setup for the colon-free strings
        // (ids, names, emails, padding) that are most of a Bulk.
        Json::Str(s) if s.contains(':') => {
            if let Some(idx) = s.find("bulkId:") {
                let rest = s.get(idx + 7..).unwrap_or_default();
                let id: String = rest
                    .chars()
                    .take_while(|c| !matches!(c, '/' | '"' | '?' | ' '))
                    .collect();
                out.push((op, id));
            }
        }
        Json::Array(items) => items
            .iter()
            .for_each(|i| collect_refs(i, out, depth + 1, op)),
        Json::Object(o) => o
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("bulkId"))
            .for_each(|(_, v)| collect_refs(v, out, depth + 1, op)),
        _ => {}
    }
}
