//! Errors a SCIM client receives when scimguard refuses to guess: RFC 7644 §3.12 shapes.

use serde::Serialize;

/// A request the engine will not interpret. Rendered as an RFC 7644 §3.12 error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScimError {
    /// HTTP status (400, 405, 413, 415, 403…).
    pub status: u16,
    /// RFC 7644 `scimType` (`invalidSyntax`, `invalidPath`, `invalidValue`, `tooMany`…), if one fits.
    #[serde(rename = "scimType", skip_serializing_if = "Option::is_none")]
    pub scim_type: Option<&'static str>,
    /// Human-readable reason. Never holds a secret value.
    pub detail: String,
    /// The request names an attribute outside the schema (`on_error.unknown_attribute: block`):
    /// refused whatever `on_error.invalid` says.
    #[serde(skip)]
    pub unknown_attribute: bool,
}

impl ScimError {
    pub fn new(status: u16, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
            unknown_attribute: false,
        }
    }
    pub fn syntax(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidSyntax"), detail)
    }
    pub fn path(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidPath"), detail)
    }
    pub fn value(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidValue"), detail)
    }
    /// A write naming an attribute outside the schema (`name` as the request spelled it, canonical).
    pub fn unknown_attribute(name: &str, resource_type: &str) -> Self {
        let mut e = Self::path(format!(
            "`{}` is not an attribute of {resource_type} that scimguard knows: declare it in the \
             policy's `schema` section, or set `on_error.unknown_attribute` to `allow`",
            name.escape_default()
        ));
        e.unknown_attribute = true;
        e
    }
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(413, Some("tooMany"), detail)
    }

    /// The RFC 7644 §3.12 error body.
    pub fn body(&self) -> serde_json::Value {
        error_body(self.status, self.scim_type, &self.detail)
    }
}

/// An RFC 7644 §3.12 error body (`status` is a string, as the RFC shows).
pub fn error_body(status: u16, scim_type: Option<&str>, detail: &str) -> serde_json::Value {
    let mut body = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": status.to_string(),
        "detail": detail,
    });
    if let (Some(t), Some(map)) = (scim_type, body.as_object_mut()) {
        map.insert("scimType".into(), serde_json::Value::String(t.into()));
    }
    body
}

impl std::fmt::Display for ScimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.detail)
    }
}

impl std::error::Error for ScimError {}
