//! The normaliser: a complete SCIM write → ordered changes and lifecycle events.
//! (Implementation in progress.)

use serde::Serialize;

use super::change::Operation;
use super::endpoint::{Endpoint, Method, ResourceType};
use super::error::ScimError;
use super::request::RequestView;

/// Limits and names the normaliser needs from the policy.
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    pub max_depth: usize,
    pub max_operations: usize,
    /// Lower-case canonical names of attributes whose values are redacted.
    pub sensitive: &'a [String],
    pub base_paths: &'a [String],
    pub resource_types: &'a [String],
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

pub fn normalize(
    _view: &RequestView<'_>,
    _endpoint: &Endpoint,
    _method: Method,
    _limits: &Limits<'_>,
) -> Result<Normalized, ScimError> {
    Err(ScimError::new(501, None, "normaliser not built yet"))
}
