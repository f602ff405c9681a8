//! Audit records: one redacted JSON line per SCIM write, plus access events from application routes.
//!
//! Owns: the record format (`record`, one typed definition the writer and `scimguard report` share),
//! writing it from a judged request (`write`, through a serde serializer with serde_json's output,
//! `json`), the host facts it takes from request headers
//! (`facts`), the OCSF 1.8.0 projection (`ocsf`), high-risk notifications (`notify`: CloudEvents envelope, Standard Webhooks signature), time formatting (`time`), the
//! delivery queue the filter ships through (`batch`: bounded, batched, capped backoff, accounted) and
//! the state transitions of detections across requests and of access sampling (`detect`), and the
//! size bound every output keeps (`bound`). Every output names the policy that judged it (`Stamp`).
//! Redaction happens when a record is built: sensitive values never reach a record (the normaliser
//! already replaced them), and free text from the request is cut and stripped of control characters.

pub mod batch;
pub mod bound;
pub mod compact;
pub mod detect;
pub mod facts;
pub mod ids;
mod json;
pub mod notify;
pub mod ocsf;
pub mod record;
pub mod time;
pub mod write;

pub use bound::{Fit, Line};
pub use facts::RequestFacts;
pub use notify::{cloudevent, parse_secret, should_notify, sign, webhook_headers, WebhookKey};
pub use record::Record;
pub use write::{
    access_record, audit_line, write_record, AccessFacts, Completion, HostFields, Judged, Stamp,
};
