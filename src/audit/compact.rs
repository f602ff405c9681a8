//! Releasing what no audit output reads once a request is judged, so that a judged request waiting
//! for its upstream holds kilobytes, not the megabytes of its values.
//!
//! A filter keeps every judged request's evaluation until the end of its stream (the record needs
//! the final status and duration). Requests in flight on one worker each hold theirs, and a VM's
//! linear memory never shrinks: 32 concurrent 1 MiB Bulks kept about 100 MB. Compaction empties the
//! values, and the copies of the operation's resource id and bulkId, of every change past the first
//! `MAX_CHANGES` of the request: only the record reads those, and it keeps just the first
//! `MAX_CHANGES`. What the other outputs read of those changes stays: attribute, sub-attribute,
//! filter, flags and op (OCSF, notifications, group renames read them per operation), the
//! number of changes (the record's `changes_total`), and whether a value was redacted (a single
//! `"[redacted]"` is left in its place: OCSF and notifications test for it). Events are untouched.
//! `tests/engine/compact.rs` checks that the record, the OCSF events and the notification of every
//! shared case and of large Bulks are byte-identical with and without compaction.

use std::borrow::Cow;

use super::write::MAX_CHANGES;
use crate::scim::normalize::REDACTED;
use crate::scim::{Json, Normalized};

/// Empties the values and id copies of every change past the first `MAX_CHANGES` (module docs).
pub fn compact(normalized: &mut Normalized) {
    let beyond = normalized
        .operations
        .iter_mut()
        .flat_map(|o| o.changes.iter_mut())
        .skip(MAX_CHANGES);
    for change in beyond {
        change.resource_id = None;
        change.bulk_id = None;
        if change.values.is_empty() {
            continue;
        }
        let redacted = change.values.iter().any(|v| v == REDACTED);
        change.values = if redacted {
            vec![Json::Str(Cow::Borrowed(REDACTED))]
        } else {
            Vec::new()
        };
    }
}
