//! High-risk notifications: which requests notify, the CloudEvents 1.0.2 envelope they travel in,
//! and the Standard Webhooks signature (HMAC-SHA256) receivers verify.
//!
//! Owns: `should_notify`, `cloudevent`, `parse_secret`/`WebhookKey`, `sign`, `webhook_headers`.
//! Does not own: sending, queueing or retrying (the filter dispatches what this returns), or the
//! clock (the host passes the time in).
//!
//! Secrets: the webhook key lives only inside `WebhookKey`, whose `Debug` prints `[secret elided]`;
//! no error, header or payload here ever contains it. Payloads carry the same redacted facts as the
//! audit record (rule ids, event kinds, member ids, role values; never a password).
//!
//! Correlation: the CloudEvent `id` and `webhook-id` are the audit id (the same on every retry, so
//! receivers de-duplicate on it); `data` carries `audit_id`, `request_id` and `trace_id`; the
//! request's `traceparent` travels as the CloudEvents distributed-tracing extension.

use std::fmt;

use base64::prelude::{Engine as _, BASE64_STANDARD, BASE64_STANDARD_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::facts::RequestFacts;
use super::ocsf::{is_redacted, object, scim_error, Put};
use super::time::rfc3339_ms;
use super::write::Judged;
use super::Completion;
use crate::policy::{Action, Decision, Mode, RuleMatch, Severity};
use crate::scim::endpoint::{printable, without_query};
use crate::scim::normalize::REDACTED;
use crate::scim::{Event, EventKind};

/// At most this many OCSF events and member ids per event in one notification (a webhook body
/// should stay small; the audit trail keeps everything).
const MAX_NOTIFY_OCSF: usize = 50;
const MAX_NOTIFY_MEMBERS: usize = 100;

/// Whether a judged request notifies: a matched rule asked for it (`notify: true`), or the
/// request's risk reaches `threshold`. Blocked and monitor-mode matches both count.
pub fn should_notify(
    matches: &[RuleMatch],
    risk: Option<Severity>,
    threshold: Option<Severity>,
) -> bool {
    matches.iter().any(|m| m.notify) || threshold.is_some_and(|t| risk.is_some_and(|r| r >= t))
}

/// Where a notification comes from: the node that emits it and the trace it belongs to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    /// The Envoy node id or plugin name; the CloudEvents `source` is `//envoy/scimguard/<node>`.
    pub node: &'a str,
    /// The request's `traceparent` header; copied (distributed-tracing extension) when well-formed.
    pub traceparent: Option<&'a str>,
}

/// The CloudEvents 1.0.2 (structured JSON) notification for one judged request. `ocsf` is the
/// request's OCSF events (`ocsf::events`), carried in `data.ocsf`.
pub fn cloudevent(
    j: &Judged<'_>,
    req: &RequestFacts,
    done: &Completion,
    origin: &Origin<'_>,
    ocsf: &[Value],
) -> Value {
    let (audit_id, request_id) = req.clean_ids();
    let id = if audit_id.is_empty() {
        request_id.clone().unwrap_or_else(|| "unknown".into())
    } else {
        audit_id.clone()
    };
    let primary = primary_event(j);
    let mut ce = Map::new();
    ce.put("specversion", Value::from("1.0"));
    ce.put("id", Value::from(id));
    ce.put("source", Value::from(source(origin.node)));
    ce.put("type", Value::from(event_type(j)));
    if let Some(s) = subject(j, primary, done) {
        ce.put("subject", Value::from(s));
    }
    ce.put("time", Value::from(rfc3339_ms(req.time_ms)));
    ce.put("datacontenttype", Value::from("application/json"));
    if let Some(tp) = origin
        .traceparent
        .map(str::trim)
        .filter(|tp| is_traceparent(tp))
    {
        ce.put("traceparent", Value::from(tp));
    }
    ce.put("data", data(j, req, done, ocsf, &audit_id, request_id));
    Value::Object(ce)
}

/// `//envoy/scimguard/<node>`, the node cut to URI-safe characters.
pub fn source(node: &str) -> String {
    let node: String = node
        .chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "//envoy/scimguard/{}",
        if node.is_empty() { "unknown" } else { &node }
    )
}

/// `io.scimguard.<resource>.<change>.v1`, from the request's most specific lifecycle event:
/// `io.scimguard.group.member_added.v1`, `io.scimguard.user.deprovisioned.v1`,
/// `io.scimguard.user.role_changed.v1`, …; `io.scimguard.request.invalid.v1` for a request that
/// could not be read; `io.scimguard.resource.changed.v1` for a write without a lifecycle event.
pub fn event_type(j: &Judged<'_>) -> String {
    let name = match primary_event(j) {
        Some(e) => type_name(e.kind),
        None if j.error.is_some() => "request.invalid",
        None => "resource.changed",
    };
    format!("io.scimguard.{name}.v1")
}

fn type_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::UserProvisioned => "user.provisioned",
        EventKind::UserUpdated => "user.updated",
        EventKind::UserDeprovisioned => "user.deprovisioned",
        EventKind::UserReactivated => "user.reactivated",
        EventKind::UserDeleted => "user.deleted",
        EventKind::GroupCreated => "group.created",
        EventKind::GroupUpdated => "group.updated",
        EventKind::GroupDeleted => "group.deleted",
        EventKind::GroupMemberAdded => "group.member_added",
        EventKind::GroupMemberRemoved => "group.member_removed",
        EventKind::GroupMembersReplaced => "group.members_replaced",
        EventKind::RoleChanged => "user.role_changed",
        EventKind::EntitlementChanged => "user.entitlement_changed",
        EventKind::CredentialChanged => "user.credential_changed",
        EventKind::IdentityChanged => "user.identity_changed",
        EventKind::ManagerChanged => "user.manager_changed",
    }
}

/// The first event in request order that is more than a generic update, else the first event.
fn primary_event<'a>(j: &Judged<'a>) -> Option<&'a Event> {
    let all = || {
        j.normalized
            .into_iter()
            .flat_map(|n| n.operations.iter())
            .flat_map(|o| o.events.iter())
    };
    all()
        .find(|e| !matches!(e.kind, EventKind::UserUpdated | EventKind::GroupUpdated))
        .or_else(|| all().next())
}

/// `Groups/<id>` (or `Users/<id>`, or just the resource type when the id is not known).
fn subject(j: &Judged<'_>, primary: Option<&Event>, done: &Completion) -> Option<String> {
    let n = j.normalized?;
    let rt = primary.map_or_else(|| n.resource_type.as_str(), |e| e.resource_type.as_str());
    let sole_create = !n.bulk && n.resource_id.is_none();
    let id = primary
        .and_then(|e| e.resource_id.as_deref())
        .or(n.resource_id.as_deref())
        .or(if sole_create {
            done.created_id.as_deref()
        } else {
            None
        });
    Some(match id {
        Some(id) => format!("{rt}/{}", printable(id)),
        None => rt.to_string(),
    })
}

fn data(
    j: &Judged<'_>,
    req: &RequestFacts,
    done: &Completion,
    ocsf: &[Value],
    audit_id: &str,
    request_id: Option<String>,
) -> Value {
    let n = j.normalized;
    let monitor_only = j.decision != Decision::Block
        && j.matches
            .iter()
            .any(|m| m.action == Action::Block && m.mode == Mode::Monitor);
    let rules: Vec<Value> = j
        .matches
        .iter()
        .map(|m| {
            object([
                ("id", m.id.as_str().into()),
                ("severity", m.severity.as_str().into()),
                ("action", m.action.as_str().into()),
                ("mode", m.mode.as_str().into()),
                ("notify", m.notify.into()),
                ("description", printable(&m.description).into()),
            ])
        })
        .collect();
    let sole_create = n.is_some_and(|n| !n.bulk && n.resource_id.is_none());
    let resource_id = n.and_then(|n| n.resource_id.as_deref()).or(if sole_create {
        done.created_id.as_deref()
    } else {
        None
    });
    let mut d = object([
        ("decision", Value::from(j.decision.as_str())),
        ("blocked", Value::from(j.decision == Decision::Block)),
        ("monitor_only", Value::from(monitor_only)),
        ("risk", Value::from(j.risk.map_or("none", Severity::as_str))),
        ("mode", Value::from(j.mode.as_str())),
        ("rules", Value::Array(rules)),
        ("actor", Value::from(j.actor.map(printable))),
        ("method", Value::from(printable(&req.method))),
        ("path", Value::from(printable(without_query(&req.path)))),
        (
            "resource_type",
            Value::from(n.map(|n| n.resource_type.as_str())),
        ),
        ("resource_id", Value::from(resource_id.map(printable))),
        ("bulk", Value::from(n.is_some_and(|n| n.bulk))),
        ("events", events(j, done, sole_create)),
        ("status", Value::from(done.status)),
        (
            "policy",
            object([
                ("sha256", j.stamp.policy.sha256.as_str().into()),
                ("version", j.stamp.policy.version.into()),
            ]),
        ),
        ("audit_id", Value::from(audit_id)),
        ("request_id", Value::from(request_id)),
        (
            "trace_id",
            Value::from(req.trace_id.as_deref().map(printable)),
        ),
        (
            "ocsf",
            Value::Array(ocsf.iter().take(MAX_NOTIFY_OCSF).cloned().collect()),
        ),
    ]);
    if let Some(o) = d.as_object_mut() {
        if ocsf.len() > MAX_NOTIFY_OCSF {
            o.put("ocsf_total", Value::from(ocsf.len()));
        }
        if let Some(e) = j.error {
            o.put("error", scim_error(e));
        }
    }
    d
}

/// The lifecycle events as in the audit record, member lists cut to `MAX_NOTIFY_MEMBERS`, values of
/// redacted attributes redacted (the normaliser copies them into events before redacting).
fn events(j: &Judged<'_>, done: &Completion, sole_create: bool) -> Value {
    let ops = j.normalized.into_iter().flat_map(|n| n.operations.iter());
    let list = ops
        .flat_map(|op| op.events.iter().map(move |e| (op, e)))
        .take(MAX_NOTIFY_OCSF);
    Value::Array(
        list.map(|(op, e)| {
            let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                let attr = match e.kind {
                    EventKind::RoleChanged => Some("roles"),
                    EventKind::EntitlementChanged => Some("entitlements"),
                    _ => None,
                };
                if attr.is_some_and(|a| is_redacted(op, a)) {
                    o.put(
                        "values",
                        Value::from(e.values.iter().map(|_| REDACTED).collect::<Vec<_>>()),
                    );
                }
                if e.user_name.is_some() && is_redacted(op, "userName") {
                    o.put("user_name", Value::from(REDACTED));
                }
                if sole_create && e.resource_id.is_none() {
                    if let Some(id) = &done.created_id {
                        o.put("resource_id", Value::from(printable(id)));
                    }
                }
                if e.members.len() > MAX_NOTIFY_MEMBERS {
                    o.put(
                        "members",
                        Value::from(
                            e.members
                                .iter()
                                .take(MAX_NOTIFY_MEMBERS)
                                .map(String::as_str)
                                .collect::<Vec<_>>(),
                        ),
                    );
                    o.put("members_total", Value::from(e.members.len()));
                }
            }
            v
        })
        .collect(),
    )
}

/// A W3C `traceparent`: `00-<32 hex>-<16 hex>-<2 hex>`, lower-case, ids not all zero.
fn is_traceparent(s: &str) -> bool {
    super::facts::trace_id(s).is_some()
}

/// A Standard Webhooks signing key (the bytes of a `whsec_…` secret), ready to sign.
/// `Debug` never shows it; nothing else can read it back.
#[derive(Clone)]
pub struct WebhookKey(Hmac<Sha256>);

impl fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookKey([secret elided])")
    }
}

impl WebhookKey {
    /// A key from raw bytes (at least one).
    pub fn from_bytes(key: &[u8]) -> Result<WebhookKey, NotifyError> {
        if key.is_empty() {
            return Err(NotifyError::EmptySecret);
        }
        Hmac::<Sha256>::new_from_slice(key)
            .map(WebhookKey)
            .map_err(|_| NotifyError::EmptySecret)
    }
}

/// Why a secret or a message could not be used. Messages never quote the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyError {
    EmptySecret,
    SecretNotBase64,
    /// A `webhook-id` must be non-empty, printable ASCII without `.` (the spec's signed-content delimiter).
    BadMessageId,
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotifyError::EmptySecret => "the webhook secret is empty",
            NotifyError::SecretNotBase64 => {
                "the webhook secret is not base64 (expected `whsec_` followed by base64)"
            }
            NotifyError::BadMessageId => {
                "a webhook id must be non-empty printable ASCII without `.`"
            }
        })
    }
}

impl std::error::Error for NotifyError {}

/// Parses a Standard Webhooks secret: `whsec_` + base64 of the key bytes (the prefix is optional,
/// as in the reference libraries).
pub fn parse_secret(secret: &str) -> Result<WebhookKey, NotifyError> {
    let b64 = secret.trim();
    let b64 = b64.strip_prefix("whsec_").unwrap_or(b64);
    if b64.is_empty() {
        return Err(NotifyError::EmptySecret);
    }
    let bytes = BASE64_STANDARD
        .decode(b64)
        .or_else(|_| BASE64_STANDARD_NO_PAD.decode(b64))
        .map_err(|_| NotifyError::SecretNotBase64)?;
    WebhookKey::from_bytes(&bytes)
}

/// `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`. `body` must be the exact bytes sent.
pub fn sign(key: &WebhookKey, msg_id: &str, timestamp_secs: u64, body: &str) -> String {
    let mut mac = key.0.clone();
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", BASE64_STANDARD.encode(mac.finalize().into_bytes()))
}

/// The three Standard Webhooks headers for one delivery: `webhook-id`, `webhook-timestamp`
/// (the send time, seconds; the same id on every retry, a fresh timestamp and signature per attempt)
/// and `webhook-signature`.
pub fn webhook_headers(
    key: &WebhookKey,
    msg_id: &str,
    timestamp_secs: u64,
    body: &str,
) -> Result<Vec<(&'static str, String)>, NotifyError> {
    let ok = !msg_id.is_empty()
        && msg_id.len() <= 256
        && msg_id.bytes().all(|b| b.is_ascii_graphic() && b != b'.');
    if !ok {
        return Err(NotifyError::BadMessageId);
    }
    Ok(vec![
        ("webhook-id", msg_id.to_string()),
        ("webhook-timestamp", timestamp_secs.to_string()),
        ("webhook-signature", sign(key, msg_id, timestamp_secs, body)),
    ])
}
