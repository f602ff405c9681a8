//! The audit record format: one JSON line per SCIM write (`kind: "scim_write"`) and one per sampled
//! application access (`kind: "access"`), defined once. The writer (`write`) fills these types from
//! a judged request and serialises them; `scimguard report` (`report::input`) deserialises them.
//! `tests/engine/roundtrip.rs` reads every shared case's record back and compares it with what the
//! engine judged.
//!
//! This format is a contract: SIEM pipelines read it too. Add fields; never rename or remove one.
//! So the reader tolerates fields it does not know (a newer writer) and fields that are missing
//! (an older one, or a hand-written trail): every field has a default. Field order is the order of
//! the fields in the line.
//!
//! Strings are `Cow`s: the writer borrows them from the judged request (one record per SCIM write
//! runs inside the filter, so no copies), the reader owns them (`Record<'static>`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::scim::json::Json;

/// Record schema version.
pub const RECORD_VERSION: u32 = 1;

/// One audit line of either kind, tagged by its `kind` field (always the line's first field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
// Only 64-bit targets pass clippy's size threshold (wasm32's pointers are half as wide).
#[cfg_attr(
    target_pointer_width = "64",
    expect(
        clippy::large_enum_variant,
        reason = "a record is built, serialised and dropped, never stored in bulk: boxing the larger \
              variant would cost an allocation per SCIM write"
    )
)]
pub enum Record<'a> {
    ScimWrite(WriteRecord<'a>),
    Access(AccessRecord<'a>),
}

/// The fields every record has, first after `kind`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordHead<'a> {
    /// `RECORD_VERSION`.
    pub v: u32,
    /// Start of the request, RFC 3339 with milliseconds, UTC.
    pub time: Cow<'a, str>,
    pub audit_id: Cow<'a, str>,
    /// Envoy's `x-request-id`.
    pub request_id: Option<Cow<'a, str>>,
    /// W3C trace id from a well-formed `traceparent`.
    pub trace_id: Option<Cow<'a, str>>,
    pub actor: Option<Cow<'a, str>>,
    /// The client's address; the outer `None` leaves it out: the access log's format writes it
    /// (`write::HostFields::InLog`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<Option<Cow<'a, str>>>,
    pub user_agent: Option<Cow<'a, str>>,
    pub method: Cow<'a, str>,
    /// The path without its query (query strings can carry tokens).
    pub path: Cow<'a, str>,
    pub policy: PolicyEntry<'a>,
}

/// The policy that judged the request: `{"sha256":"…","version":N}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyEntry<'a> {
    pub sha256: Cow<'a, str>,
    pub version: u64,
}

/// A `scim_write` record. Options without `skip_serializing_if` are written as `null` when absent
/// (a record always has them); the others appear only when they hold something.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WriteRecord<'a> {
    #[serde(flatten)]
    pub head: RecordHead<'a>,
    pub resource_type: Option<Cow<'a, str>>,
    pub resource_id: Option<Cow<'a, str>>,
    pub bulk: bool,
    pub events: Vec<EventEntry<'a>>,
    /// A record cut to fit `audit.max_record_bytes`: its `events` are some of `events_total`,
    /// counted by type in `events_by_type` (both absent when every event is listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_total: Option<usize>,
    #[serde(skip_serializing_if = "Tally::is_empty")]
    pub events_by_type: Tally<'a>,
    pub changes: Vec<ChangeEntry<'a>>,
    /// Changes the request made when `changes` lists fewer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes_total: Option<usize>,
    pub rules: Vec<RuleEntry<'a>>,
    /// Rules that matched when `rules` lists fewer (a last-resort record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_total: Option<usize>,
    pub decision: Option<Cow<'a, str>>,
    pub risk: Option<Cow<'a, str>>,
    pub mode: Option<Cow<'a, str>>,
    /// The status the client received; the outer `None` leaves it out (as `source_ip`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Option<u16>>,
    pub duration_ms: Option<u64>,
    /// Why the request could not be judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorEntry<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub group_names_unknown: Cow<'a, [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_names_unknown_total: Option<usize>,
    /// Present on a record cut to fit (what was cut, and the digest of the whole record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncation<'a>>,
}

/// An `access` record: one request to an application route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccessRecord<'a> {
    #[serde(flatten)]
    pub head: RecordHead<'a>,
    /// The route template (`/api/projects/{id}`), or the path when no template is configured.
    pub route: Cow<'a, str>,
    /// The status the client received; the outer `None` leaves it out (as `source_ip`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Option<u16>>,
    pub duration_ms: Option<u64>,
    /// Kept by sampling (1 in `sample_rate_inverse`), not because it had to be kept.
    pub sampled: bool,
}

/// One event (`scim::Event`) as a record lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventEntry<'a> {
    #[serde(rename = "type")]
    pub kind: Cow<'a, str>,
    pub resource_type: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub members: Cow<'a, [String]>,
    /// How many members the event had when its list was cut (the first ones are listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members_total: Option<usize>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub values: Cow<'a, [Json<'static>]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Cow<'a, str>>,
}

/// One change (`scim::Change`) as a record lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChangeEntry<'a> {
    pub resource_type: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk_id: Option<Cow<'a, str>>,
    pub op: Cow<'a, str>,
    pub attribute: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_attribute: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<Cow<'a, str>>,
    pub values: Cow<'a, [Json<'static>]>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Cow<'a, str>>,
    /// How many values the change had when `values` lists fewer or cut their strings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values_total: Option<usize>,
}

/// A rule that matched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuleEntry<'a> {
    pub id: Cow<'a, str>,
    pub severity: Option<Cow<'a, str>>,
    pub action: Option<Cow<'a, str>>,
    pub mode: Option<Cow<'a, str>>,
    pub notify: bool,
}

/// The SCIM error of a request that could not be judged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorEntry<'a> {
    pub status: u16,
    #[serde(rename = "scimType")]
    pub scim_type: Option<Cow<'a, str>>,
    pub detail: Cow<'a, str>,
}

/// What a record cut to fit says about the whole record it was cut from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Truncation<'a> {
    /// Size of the whole record.
    pub bytes: usize,
    /// SHA-256 (hex) of the whole record.
    pub sha256: Cow<'a, str>,
    /// The lists that were cut: `events`, `members`, `changes`, `rules`.
    pub cut: Vec<Cow<'a, str>>,
    /// The last-resort record (no events or changes).
    #[serde(skip_serializing_if = "is_false")]
    pub minimal: bool,
}

/// Counts by name, as a JSON object in first-seen order (`events_by_type`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally<'a>(pub Vec<(Cow<'a, str>, u64)>);

impl<'a> Tally<'a> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds one to `name`'s count.
    pub fn bump(&mut self, name: &'a str) {
        match self.0.iter_mut().find(|(k, _)| k == name) {
            Some((_, n)) => *n += 1,
            None => self.0.push((Cow::Borrowed(name), 1)),
        }
    }
}

impl Serialize for Tally<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, n)| (k, n)))
    }
}

impl<'de> Deserialize<'de> for Tally<'_> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TallyVisitor;
        impl<'de> serde::de::Visitor<'de> for TallyVisitor {
            type Value = Vec<(Cow<'static, str>, u64)>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of counts")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, n)) = m.next_entry::<String, u64>()? {
                    out.push((Cow::Owned(k), n));
                }
                Ok(out)
            }
        }
        d.deserialize_map(TallyVisitor).map(Tally)
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl<'a> Record<'a> {
    /// The record's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::ScimWrite(_) => "scim_write",
            Record::Access(_) => "access",
        }
    }

    /// The fields every record has.
    pub fn head(&self) -> &RecordHead<'a> {
        match self {
            Record::ScimWrite(w) => &w.head,
            Record::Access(a) => &a.head,
        }
    }
}

impl WriteRecord<'_> {
    /// Events of this record that are not listed (it was cut to fit).
    pub fn events_not_listed(&self) -> u64 {
        let total = self.events_total.unwrap_or(0);
        total.saturating_sub(self.events.len()) as u64
    }
}

impl EventEntry<'_> {
    /// How many members the event named, listed or not.
    pub fn member_count(&self) -> usize {
        self.members_total.unwrap_or(0).max(self.members.len())
    }
}
