//! SCIM 1.1 PATCH (draft-scim-api-01 §3.3.2): the body is a partial resource, not a PatchOp.
//!
//! Read as the 1.1 servers that accept it apply it: first every attribute `meta.attributes` lists
//! is removed; then each multi-valued attribute's entries are added, except entries carrying
//! `"operation": "delete"`, which remove the entry with that `value`; every other attribute is
//! replaced. So `members` with `operation: delete` → `group_member_removed` (listed),
//! `meta.attributes: ["members"]` → all members removed, `active: false` → `user_deprovisioned`.
//! A SCIM 2.0 server (scim2-server among them) refuses the body with 400; judging it anyway keeps
//! the gateway from failing provisioning a 1.1 upstream accepts. Does not: read SCIM 1.1 PATCH
//! inside a PatchOp (a body with `Operations` is RFC 7644), or guess at an `operation` but `delete`.

use std::borrow::Cow;

use serde_json::Value;

use super::{expand, Builder, CompareOp, Filter, Op};
use crate::scim::attribute;
use crate::scim::change::EventKind;
use crate::scim::error::ScimError;
use crate::scim::json::{Json, Members};

/// The RFC 7644 PatchOp message URN.
const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Whether a PATCH body is an RFC 7644 PatchOp: it has `Operations`, or names the PatchOp schema.
pub(super) fn is_patch_op(body: &[(Cow<'_, str>, Json<'_>)]) -> bool {
    body.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("Operations")
            || k.eq_ignore_ascii_case("schemas")
                && v.as_array().is_some_and(|l| {
                    l.iter().any(|s| {
                        s.as_str()
                            .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_URN))
                    })
                })
    })
}

impl Builder<'_> {
    /// Applies a SCIM 1.1 partial-resource PATCH body.
    pub(super) fn scim1_patch(&mut self, mut body: Members<'_>) -> Result<(), ScimError> {
        let meta_at = body
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case("meta"));
        // `swap_remove`: the attributes keep the order they were always read in (serde_json's
        // `Map::remove` swaps the last member into the removed one's place).
        let removals = match meta_at.map(|i| body.swap_remove(i)) {
            Some((_, meta)) => removed_names(meta)?,
            None => Vec::new(),
        };
        let attrs = expand(body)?;
        let entries: usize = attrs
            .iter()
            .map(|(_, v)| v.as_array().map_or(1, <[Json<'_>]>::len))
            .sum();
        if removals.is_empty() && attrs.is_empty() {
            return Err(ScimError::syntax(
                "a PATCH needs `Operations` (SCIM 2.0) or attributes to change (SCIM 1.1)",
            ));
        }
        if removals.len() + entries > self.limits.max_operations {
            return Err(ScimError::too_large(format!(
                "more than {} changes in one SCIM 1.1 PATCH",
                self.limits.max_operations
            )));
        }
        if self.users() {
            self.push_event(EventKind::UserUpdated);
        }
        for name in removals {
            let attr = attribute::parse(&name)?;
            if matches!(attr.attribute.as_str(), "id" | "meta" | "schemas") {
                return Err(ScimError::new(
                    400,
                    Some("mutability"),
                    format!("`{}` cannot be removed", attr.attribute),
                ));
            }
            self.apply(Op::Remove, attr, None, Json::Null)?;
        }
        for (attr, value) in attrs {
            let Json::Array(items) = value else {
                self.apply(Op::Replace, attr, None, value)?;
                continue;
            };
            let mut added = Vec::with_capacity(items.len());
            for item in items {
                match deleted_value(item)? {
                    Deletion::Delete(v) => {
                        let filter = Filter::Compare {
                            attr: "value".into(),
                            op: CompareOp::Eq,
                            value: Value::String(v),
                        };
                        self.apply(Op::Remove, attr.clone(), Some(filter), Json::Null)?;
                    }
                    Deletion::Keep(item) => added.push(item),
                }
            }
            if !added.is_empty() {
                self.apply(Op::Add, attr, None, Json::Array(added))?;
            }
        }
        Ok(())
    }
}

enum Deletion<'a> {
    /// An entry marked `"operation": "delete"`: the `value` it removes.
    Delete(String),
    /// An ordinary entry (added).
    Keep(Json<'a>),
}

/// Splits an entry of a multi-valued attribute: `"operation": "delete"` with a string `value`
/// removes that value; any other `operation` is refused, as is a deletion without a `value`.
fn deleted_value(item: Json<'_>) -> Result<Deletion<'_>, ScimError> {
    let Json::Object(mut o) = item else {
        return Ok(Deletion::Keep(item));
    };
    let Some(at) = o
        .iter()
        .position(|(k, _)| k.eq_ignore_ascii_case("operation"))
    else {
        return Ok(Deletion::Keep(Json::Object(o)));
    };
    match o.swap_remove(at).1 {
        Json::Str(s) if s.eq_ignore_ascii_case("delete") => {}
        _ => {
            return Err(ScimError::value(
                "`operation` in a SCIM 1.1 PATCH may only be `delete`",
            ))
        }
    }
    let value = o
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("value"))
        .and_then(|(_, v)| v.as_str());
    match value {
        Some(v) => Ok(Deletion::Delete(v.to_string())),
        None => Err(ScimError::value(
            "a SCIM 1.1 `operation: delete` entry needs a string `value`",
        )),
    }
}

/// The attribute names `meta.attributes` lists for removal.
fn removed_names(meta: Json<'_>) -> Result<Vec<String>, ScimError> {
    let Json::Object(meta) = meta else {
        return Err(ScimError::value("`meta` must be an object"));
    };
    let Some((_, list)) = meta
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("attributes"))
    else {
        return Ok(Vec::new());
    };
    let Json::Array(list) = list else {
        return Err(ScimError::value(
            "`meta.attributes` must be a list of names",
        ));
    };
    list.into_iter()
        .map(|v| match v {
            Json::Str(s) => Ok(s.into_owned()),
            _ => Err(ScimError::value(
                "`meta.attributes` must be a list of names",
            )),
        })
        .collect()
}
