//! The `schema` section: attributes a policy adds to what the engine knows (RFC 7643 core User,
//! Group, EnterpriseUser are built in). Custom top-level attributes per resource type, extension
//! schemas by URN, and RFC 7643 §7 schema representations as an upstream's `/Schemas` publishes
//! them (a ListResponse, a list, or one schema), pasted as they are.

use serde_json::Value;

use crate::scim::attribute::{check_name, starts_with_urn, CORE_GROUP_URN, CORE_USER_URN};
use crate::scim::endpoint::ResourceType;
use crate::scim::schema::{AttrDef, Schema};

use super::{escape, Compiler, Field};

const SECTION: [&str; 3] = ["attributes", "extensions", "schemas"];
const ATTRIBUTE: [&str; 2] = ["name", "sub_attributes"];

impl Compiler<'_> {
    pub(super) fn schema(&mut self, v: &Value, schema: &mut Schema) {
        let Some(o) = self.members(v, "/schema", &SECTION, "`schema`") else {
            return;
        };
        if let Some(v) = o.field("attributes") {
            self.core_attributes(v, schema);
        }
        if let Some(v) = o.field("extensions") {
            self.extensions(v, schema);
        }
        if let Some(v) = o.field("schemas") {
            self.schema_resources(v, schema);
        }
    }

    /// `{"Users": [attribute…], "Groups": [attribute…]}`.
    fn core_attributes(&mut self, v: &Value, schema: &mut Schema) {
        let Some(o) = self.members(
            v,
            "/schema/attributes",
            &["Users", "Groups"],
            "`attributes`",
        ) else {
            return;
        };
        for (rt, list) in [
            ("Users", ResourceType::Users),
            ("Groups", ResourceType::Groups),
        ]
        .iter()
        .filter_map(|(k, rt)| o.field(k).map(|l| (rt, l)))
        {
            let at = format!("/schema/attributes/{}", rt.as_str());
            for d in self.attribute_list(list, &at) {
                schema.add_attribute(rt, d);
            }
        }
    }

    /// `{"<extension URN>": [attribute…]}`.
    fn extensions(&mut self, v: &Value, schema: &mut Schema) {
        let Some(o) = v.as_object() else {
            self.err(
                "/schema/extensions",
                "expected an object mapping extension schema URNs to attribute lists",
                None,
            );
            return;
        };
        for (urn, list) in o {
            let at = format!("/schema/extensions/{}", escape(urn));
            if self.extension_urn(urn, &at) {
                let attrs = self.attribute_list(list, &at);
                schema.add_extension(urn, attrs);
            }
        }
    }

    fn extension_urn(&mut self, urn: &str, at: &str) -> bool {
        let core = [CORE_USER_URN, CORE_GROUP_URN]
            .iter()
            .any(|c| c.eq_ignore_ascii_case(urn));
        let valid = starts_with_urn(urn)
            && urn.len() > 4
            && urn.chars().all(|c| c.is_ascii_graphic())
            && !urn.ends_with(':');
        if core {
            self.err(
                at,
                format!("`{urn}` is a core schema, not an extension"),
                Some("declare core attributes under `schema.attributes`".into()),
            );
        } else if !valid {
            self.err(
                at,
                format!("`{}` is not a schema URN", urn.escape_default()),
                Some("an extension is named by its URN, e.g. `urn:example:params:scim:schemas:extension:acme:2.0:User`".into()),
            );
        }
        !core && valid
    }

    /// A list of attributes: `"name"` or `{"name": "…", "sub_attributes": ["…"]}`.
    fn attribute_list(&mut self, v: &Value, at: &str) -> Vec<AttrDef> {
        let Some(list) = v.as_array() else {
            self.err(at, "expected a list of attributes", None);
            return Vec::new();
        };
        let mut out = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            let at = format!("{at}/{i}");
            let d = match item {
                Value::String(name) => self.attr_name(name, &at).then(|| AttrDef {
                    name: name.clone(),
                    sub_attributes: Vec::new(),
                }),
                Value::Object(_) => self.attribute_object(item, &at),
                _ => {
                    self.err(
                        &at,
                        "expected an attribute name or `{\"name\", \"sub_attributes\"}`",
                        None,
                    );
                    None
                }
            };
            out.extend(d);
        }
        out
    }

    fn attribute_object(&mut self, v: &Value, at: &str) -> Option<AttrDef> {
        let o = self.members(v, at, &ATTRIBUTE, "an attribute")?;
        let name = self
            .required(o, at, "name")
            .and_then(|n| self.string(n, &format!("{at}/name")))?;
        let ok = self.attr_name(&name, &format!("{at}/name"));
        let mut subs = Vec::new();
        if let Some(v) = o.field("sub_attributes") {
            let at = format!("{at}/sub_attributes");
            for (i, s) in self.strings(v, &at).into_iter().enumerate() {
                if self.attr_name(&s, &format!("{at}/{i}")) {
                    subs.push(s);
                }
            }
        }
        ok.then_some(AttrDef {
            name,
            sub_attributes: subs,
        })
    }

    /// RFC 7643 §2.1 ATTRNAME (`$ref` allowed, as for sub-attributes).
    fn attr_name(&mut self, name: &str, at: &str) -> bool {
        match check_name(name, name) {
            Ok(()) => true,
            Err(e) => {
                self.err(at, e.detail, None);
                false
            }
        }
    }

    /// RFC 7643 §7 schema representations: a `/Schemas` ListResponse, a list, or one schema. The
    /// core User and Group schemas add to those resource types; any other `id` is an extension.
    /// Fields besides `id`, `attributes`, `name` and `subAttributes` are the server's description
    /// and are not read.
    fn schema_resources(&mut self, v: &Value, schema: &mut Schema) {
        let at = "/schema/schemas";
        let (list, at) = match v {
            Value::Array(l) => (l.as_slice(), at.to_string()),
            Value::Object(o) => match o.field("Resources") {
                Some(Value::Array(l)) => (l.as_slice(), format!("{at}/Resources")),
                Some(_) => {
                    self.err(
                        &format!("{at}/Resources"),
                        "expected a list of schemas",
                        None,
                    );
                    return;
                }
                None => (std::slice::from_ref(v), String::new()),
            },
            _ => {
                self.err(
                    at,
                    "expected a /Schemas ListResponse, a list of schemas or one schema",
                    None,
                );
                return;
            }
        };
        for (i, s) in list.iter().enumerate() {
            let at = if at.is_empty() {
                "/schema/schemas".to_string()
            } else {
                format!("{at}/{i}")
            };
            self.schema_resource(s, &at, schema);
        }
    }

    fn schema_resource(&mut self, v: &Value, at: &str, schema: &mut Schema) {
        let Some(o) = v.as_object() else {
            self.err(
                at,
                "expected a schema (an object with `id` and `attributes`)",
                None,
            );
            return;
        };
        let Some(id) = self
            .required(o, at, "id")
            .and_then(|id| self.string(id, &format!("{at}/id")))
        else {
            return;
        };
        let attrs = match o.field("attributes") {
            Some(list) => self.rfc_attributes(list, &format!("{at}/attributes")),
            None => {
                self.err(at, "missing field `attributes`", None);
                return;
            }
        };
        if id.eq_ignore_ascii_case(CORE_USER_URN) || id.eq_ignore_ascii_case(CORE_GROUP_URN) {
            let rt = if id.eq_ignore_ascii_case(CORE_USER_URN) {
                ResourceType::Users
            } else {
                ResourceType::Groups
            };
            for d in attrs {
                schema.add_attribute(&rt, d);
            }
        } else if self.extension_urn(&id, &format!("{at}/id")) {
            schema.add_extension(&id, attrs);
        }
    }

    /// `[{"name": "…", "subAttributes": [{"name": "…"}…]}…]` (RFC 7643 §7 `attributes`).
    fn rfc_attributes(&mut self, v: &Value, at: &str) -> Vec<AttrDef> {
        let Some(list) = v.as_array() else {
            self.err(at, "expected a list of attribute definitions", None);
            return Vec::new();
        };
        let mut out = Vec::with_capacity(list.len());
        for (i, a) in list.iter().enumerate() {
            let at = format!("{at}/{i}");
            let Some(name) = self.rfc_name(a, &at) else {
                continue;
            };
            let mut subs = Vec::new();
            match a.field("subAttributes") {
                Some(Value::Array(l)) => {
                    for (j, s) in l.iter().enumerate() {
                        subs.extend(self.rfc_name(s, &format!("{at}/subAttributes/{j}")));
                    }
                }
                Some(_) => self.err(
                    &format!("{at}/subAttributes"),
                    "expected a list of attribute definitions",
                    None,
                ),
                None => {}
            }
            out.push(AttrDef {
                name,
                sub_attributes: subs,
            });
        }
        out
    }

    fn rfc_name(&mut self, v: &Value, at: &str) -> Option<String> {
        let Some(o) = v.as_object() else {
            self.err(
                at,
                "expected an attribute definition (an object with `name`)",
                None,
            );
            return None;
        };
        let name = self
            .required(o, at, "name")
            .and_then(|n| self.string(n, &format!("{at}/name")))?;
        self.attr_name(&name, &format!("{at}/name")).then_some(name)
    }
}
