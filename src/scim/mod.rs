//! SCIM 2.0 request understanding: an HTTP view of a request → endpoint, normalised changes and
//! lifecycle events, exactly as an RFC 7644 service provider would apply them.
//!
//! Owns: endpoint classification (`endpoint`), strict JSON parsing that rejects ambiguity
//! (`strict_json`) into a tree borrowed from the body (`json`), attribute-name canonicalisation
//! (`attribute`), PATCH path and filter parsing (`path`), RFC 7643's built-in attributes listed
//! once (`core_schema`), the attribute schema (`schema`), the normaliser for PATCH/POST/PUT/DELETE
//! (`normalize`) and Bulk (`bulk`).
//! Does not own: any judgement of risk (that is `policy`), any I/O.

pub mod attribute;
pub mod bulk;
pub mod change;
pub mod core_schema;
pub mod endpoint;
pub mod error;
pub mod json;
pub mod normalize;
pub mod path;
pub mod request;
pub mod response;
pub mod schema;
pub mod strict_json;

pub use change::{Change, Event, EventKind, Op, Operation};
pub use endpoint::{Endpoint, Method, ResourceType, Route};
pub use error::ScimError;
pub use json::Json;
pub use normalize::{normalize, Limits, Normalized, UserGroups};
pub use request::{Headers, HttpRequest, RequestView};
