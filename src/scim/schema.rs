//! The attribute schema: which attributes (and sub-attributes) each resource type has, so a write
//! that names anything else is refused or flagged instead of read as a harmless unknown.
//!
//! Built in: RFC 7643 core User (§4.1), Group (§4.2), EnterpriseUser (§4.3), the common attributes
//! (§3.1) and the default sub-attributes of multi-valued attributes (§2.4), as `core_schema` lists
//! them. The policy adds custom
//! attributes and extension schemas (`schema` section). Why a schema rather than a list of bad
//! spellings: servers accept aliases the engine cannot enumerate (scim2-models reads its Python
//! field names, `display_name`); anything outside what the engine knows may be one of them.
//! Does not: judge types or values, or know custom resource types (those are not checked).

use std::borrow::Cow;

use super::attribute::{canonical_sub, AttrRef, ENTERPRISE_URN};
use super::core_schema::{Builtin, COMMON, ENTERPRISE, GROUP, USER};
use super::endpoint::ResourceType;
use super::json::Json;
use super::path::Filter;

/// What happens to a write naming an attribute outside the schema (`on_error.unknown_attribute`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownAttribute {
    /// Refuse it: SCIM 400 `invalidPath` naming the attribute (default).
    #[default]
    Block,
    /// Judge it, with the change flagged `unknown_attribute` and its values redacted.
    Allow,
}

/// One attribute: its name in schema spelling and, for a complex attribute, its sub-attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrDef {
    pub name: String,
    /// Empty for a simple attribute.
    pub sub_attributes: Vec<String>,
}

/// An extension schema: its URN and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub urn: String,
    pub attributes: Vec<AttrDef>,
    /// Only on Users (the enterprise extension); declared extensions apply to every core type.
    pub users_only: bool,
}

/// The attributes the engine knows, per resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    users: Vec<AttrDef>,
    groups: Vec<AttrDef>,
    extensions: Vec<Extension>,
    pub unknown: UnknownAttribute,
}

fn def(name: &str, subs: &[&str]) -> AttrDef {
    AttrDef {
        name: name.to_string(),
        sub_attributes: subs.iter().map(|s| (*s).to_string()).collect(),
    }
}

fn defs<'b>(builtins: impl IntoIterator<Item = &'b Builtin>) -> Vec<AttrDef> {
    builtins
        .into_iter()
        .map(|(name, shape)| def(name, &shape.sub_attributes()))
        .collect()
}

impl Default for Schema {
    /// RFC 7643 core User, Group and EnterpriseUser (`core_schema`).
    fn default() -> Self {
        Schema {
            users: defs(COMMON.iter().chain(&USER)),
            groups: defs(COMMON.iter().chain(&GROUP)),
            extensions: vec![Extension {
                urn: ENTERPRISE_URN.to_string(),
                attributes: defs(&ENTERPRISE),
                users_only: true,
            }],
            unknown: UnknownAttribute::Block,
        }
    }
}

/// Why an attribute reference is outside the schema, naming what is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown(pub String);

impl Schema {
    /// Adds a custom top-level attribute to a core resource type (Users or Groups).
    pub fn add_attribute(&mut self, resource_type: &ResourceType, attr: AttrDef) {
        let list = match resource_type {
            ResourceType::Groups => &mut self.groups,
            _ => &mut self.users,
        };
        match list
            .iter_mut()
            .find(|a| a.name.eq_ignore_ascii_case(&attr.name))
        {
            Some(existing) => merge_subs(existing, attr.sub_attributes),
            None => list.push(attr),
        }
    }

    /// Adds attributes to an extension schema, declaring it if new.
    pub fn add_extension(&mut self, urn: &str, attributes: Vec<AttrDef>) {
        let ext = match self
            .extensions
            .iter_mut()
            .position(|e| e.urn.eq_ignore_ascii_case(urn))
        {
            Some(i) => self.extensions.get_mut(i),
            None => {
                self.extensions.push(Extension {
                    urn: urn.to_string(),
                    attributes: Vec::new(),
                    users_only: false,
                });
                self.extensions.last_mut()
            }
        };
        let Some(ext) = ext else { return };
        for a in attributes {
            match ext
                .attributes
                .iter_mut()
                .find(|e| e.name.eq_ignore_ascii_case(&a.name))
            {
                Some(existing) => merge_subs(existing, a.sub_attributes),
                None => ext.attributes.push(a),
            }
        }
    }

    /// The attribute names of the extension schema `urn` (enterprise included), if it is one.
    pub fn extension_attributes(&self, urn: &str) -> Option<Vec<String>> {
        self.extensions
            .iter()
            .find(|e| e.urn.eq_ignore_ascii_case(urn))
            .map(|e| e.attributes.iter().map(|a| a.name.clone()).collect())
    }

    /// Checks a canonical attribute reference (and the filter of its PATCH path, and the keys of
    /// the complex values written) against the schema of `resource_type`. Custom resource types
    /// are not checked: the engine knows nothing of their schema.
    pub fn check(
        &self,
        resource_type: &ResourceType,
        attr: &AttrRef,
        filter: Option<&Filter>,
        value: &Json<'_>,
    ) -> Result<(), Unknown> {
        let Some(d) = self.find(resource_type, &attr.attribute) else {
            if !matches!(resource_type, ResourceType::Users | ResourceType::Groups) {
                return Ok(());
            }
            return Err(Unknown(attr.attribute.clone()));
        };
        if let Some(sub) = &attr.sub_attribute {
            if !has_sub(d, sub) {
                return Err(Unknown(format!("{}.{sub}", attr.attribute)));
            }
        }
        if let Some(f) = filter {
            let mut names = Vec::new();
            filter_names(f, &mut names);
            for n in names {
                if !has_sub(d, &canonical_sub(n)) {
                    return Err(Unknown(format!("{}[{n}]", attr.attribute)));
                }
            }
        }
        if attr.sub_attribute.is_none() && !d.sub_attributes.is_empty() {
            check_keys(d, &attr.attribute, value)?;
        }
        Ok(())
    }

    /// The definition of a canonical attribute on `resource_type`.
    fn find(&self, resource_type: &ResourceType, attribute: &str) -> Option<&AttrDef> {
        let users = match resource_type {
            ResourceType::Users => true,
            ResourceType::Groups => false,
            _ => return None,
        };
        if let Some((urn, name)) = attribute.rsplit_once(':') {
            let ext = self
                .extensions
                .iter()
                .find(|e| e.urn.eq_ignore_ascii_case(urn) && (users || !e.users_only))?;
            return ext
                .attributes
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(name));
        }
        let list = if users { &self.users } else { &self.groups };
        list.iter().find(|a| a.name.eq_ignore_ascii_case(attribute))
    }
}

fn merge_subs(existing: &mut AttrDef, subs: Vec<String>) {
    for s in subs {
        if !existing
            .sub_attributes
            .iter()
            .any(|e| e.eq_ignore_ascii_case(&s))
        {
            existing.sub_attributes.push(s);
        }
    }
}

fn has_sub(d: &AttrDef, sub: &str) -> bool {
    d.sub_attributes.iter().any(|s| s.eq_ignore_ascii_case(sub))
}

/// The keys of the objects written to a complex attribute (one object, or a list of them) must be
/// its sub-attributes. Salesforce's `{"members": […]}` wrapper is looked through.
fn check_keys(d: &AttrDef, attribute: &str, value: &Json<'_>) -> Result<(), Unknown> {
    match value {
        Json::Array(items) => items.iter().try_for_each(|v| check_keys(d, attribute, v)),
        Json::Object(o) if attribute == "members" && o.len() == 1 => match value.get("members") {
            Some(inner) if !inner.is_object() => check_keys(d, attribute, inner),
            _ => object_keys(d, attribute, o),
        },
        Json::Object(o) => object_keys(d, attribute, o),
        _ => Ok(()),
    }
}

fn object_keys(
    d: &AttrDef,
    attribute: &str,
    o: &[(Cow<'_, str>, Json<'_>)],
) -> Result<(), Unknown> {
    // `has_sub` folds ASCII case, so a key needs no canonical spelling (no allocation) to compare.
    match o.iter().map(|(k, _)| k).find(|k| !has_sub(d, k)) {
        Some(k) => Err(Unknown(format!("{attribute}.{k}"))),
        None => Ok(()),
    }
}

/// The attribute names a value filter compares.
fn filter_names<'f>(f: &'f Filter, out: &mut Vec<&'f str>) {
    match f {
        Filter::Compare { attr, .. } | Filter::Present(attr) => out.push(attr),
        Filter::And(a, b) | Filter::Or(a, b) => {
            filter_names(a, out);
            filter_names(b, out);
        }
        Filter::Not(a) => filter_names(a, out),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use crate::scim::attribute::parse;
    use serde_json::json;

    fn check(rt: ResourceType, path: &str, value: serde_json::Value) -> Result<(), Unknown> {
        let p = crate::scim::path::parse(path).unwrap();
        let value = Json::from_value(value);
        Schema::default().check(&rt, &p.attr, p.filter.as_ref(), &value)
    }

    #[test]
    fn core_attributes_are_known_per_resource_type() {
        assert!(check(ResourceType::Groups, "displayName", json!("x")).is_ok());
        assert!(check(ResourceType::Groups, "DISPLAYNAME", json!("x")).is_ok());
        assert!(check(ResourceType::Users, "name.givenName", json!("x")).is_ok());
        assert!(check(ResourceType::Users, "manager", json!({"value": "m"})).is_ok());
        assert!(check(
            ResourceType::Users,
            "emails[type eq \"work\"].value",
            json!("a@b")
        )
        .is_ok());
        assert_eq!(
            check(ResourceType::Groups, "display_name", json!("x")),
            Err(Unknown("display_name".into()))
        );
        assert!(check(ResourceType::Groups, "userName", json!("x")).is_err());
        assert!(check(ResourceType::Users, "members", json!([])).is_err());
        assert!(check(ResourceType::Groups, "members.ref", json!("x")).is_err());
        assert!(check(ResourceType::Users, "emails[kind eq \"work\"]", json!("x")).is_err());
        assert!(check(
            ResourceType::Groups,
            "urn:ietf:params:scim:schemas:core:2.0:Group:display_name",
            json!("x")
        )
        .is_err());
        assert!(check(
            ResourceType::Groups,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            json!("x")
        )
        .is_err());
        assert!(check(ResourceType::Custom("Devices".into()), "anything", json!(1)).is_ok());
    }

    #[test]
    fn complex_values_name_sub_attributes() {
        assert!(check(
            ResourceType::Groups,
            "members",
            json!([{"value": "u", "$ref": "r"}])
        )
        .is_ok());
        assert_eq!(
            check(ResourceType::Groups, "members", json!([{"ref": "r"}])),
            Err(Unknown("members.ref".into()))
        );
        assert!(check(
            ResourceType::Groups,
            "members",
            json!({"members": [{"value": "u"}]})
        )
        .is_ok());
        assert!(check(ResourceType::Users, "name", json!({"given_name": "x"})).is_err());
    }

    #[test]
    fn policy_declares_attributes_and_extensions() {
        let mut s = Schema::default();
        s.add_attribute(&ResourceType::Users, def("badgeId", &[]));
        s.add_extension(
            "urn:acme:params:scim:schemas:extension:acme:2.0:User",
            vec![def("clearance", &["level"])],
        );
        let badge = parse("BADGEID").unwrap();
        assert!(s
            .check(
                &ResourceType::Users,
                &badge,
                None,
                &Json::from_value(json!("1"))
            )
            .is_ok());
        assert!(s
            .check(
                &ResourceType::Groups,
                &badge,
                None,
                &Json::from_value(json!("1"))
            )
            .is_err());
        let c =
            parse("urn:acme:params:scim:schemas:extension:acme:2.0:User:clearance.level").unwrap();
        assert!(s
            .check(
                &ResourceType::Users,
                &c,
                None,
                &Json::from_value(json!("1"))
            )
            .is_ok());
        let other = parse("urn:acme:params:scim:schemas:extension:acme:2.0:User:isAdmin").unwrap();
        assert!(s
            .check(
                &ResourceType::Users,
                &other,
                None,
                &Json::from_value(json!(true))
            )
            .is_err());
        assert_eq!(
            s.extension_attributes("URN:acme:params:scim:schemas:extension:acme:2.0:User"),
            Some(vec!["clearance".to_string()])
        );
        assert_eq!(s.extension_attributes("urn:other:2.0:User"), None);
    }
}
