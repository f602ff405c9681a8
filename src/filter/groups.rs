//! Group displayNames, so that a rule on "Administrators" fires on a PATCH that names only the id.
//!
//! Names are learned from upstream responses to Groups endpoints and from lookups, and kept in
//! proxy-wasm shared data (shared by every worker VM of the same `vm_id`) under
//! `scimguard.group.<id>` as `"<learned at, epoch s> <displayName>"`. An entry older than the policy's
//! `group_name_ttl_secs`, empty, or unreadable counts as unknown. A successful write to a group whose
//! response carries no name empties the entry (the name may have changed), so the next request that
//! needs it looks it up again.
//!
//! Only the upstream's own answers are stored: a client can name any id, but it cannot choose the name
//! an id maps to.

use std::time::Duration;

use proxy_wasm::types::{BufferType, MapType};

use super::host::{self, HostResult};
use crate::engine::Evaluation;
use crate::policy::FilterSettings;
use crate::scim::endpoint::{classify, Method, ResourceType, Route};
use crate::scim::response::group_names;

const KEY_PREFIX: &str = "scimguard.group.";
/// Longer ids are never cached nor looked up (they stay unknown: the engine's outcome applies).
const MAX_ID_LEN: usize = 256;
/// Lookups one request may start; more unknown groups than this stay unknown.
pub const MAX_LOOKUPS: usize = 8;
/// A lookup answer larger than this is not read (a displayName lookup returns a few hundred bytes).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The name learned for `id`, if it is still fresh (one host call).
pub fn cached(id: &str, now_secs: u64, ttl_secs: u64) -> HostResult<Option<String>> {
    let Some(key) = key(id) else { return Ok(None) };
    Ok(host::shared_data(&key)?.and_then(|v| decode(&v, now_secs, ttl_secs)))
}

/// Stores a name the upstream gave for `id` (one host call).
pub fn remember(id: &str, name: &str, now_secs: u64) -> HostResult<()> {
    let Some(key) = key(id) else { return Ok(()) };
    host::set_shared_data(&key, format!("{now_secs} {name}").as_bytes())
}

/// Marks `id`'s name as unknown (one host call; shared data has no delete).
pub fn forget(id: &str) -> HostResult<()> {
    let Some(key) = key(id) else { return Ok(()) };
    host::set_shared_data(&key, b"")
}

/// Starts `GET <lookup_base_path>/Groups/<id>?attributes=displayName` on the lookup cluster.
/// The client's `authorization` is forwarded (the upstream may require it); it is never logged.
pub fn dispatch(
    settings: &FilterSettings,
    cluster: &str,
    id: &str,
    authorization: Option<&str>,
) -> HostResult<u32> {
    let path = format!(
        "{}/Groups/{}?attributes=displayName",
        settings.lookup_base_path.trim_end_matches('/'),
        percent_encode(id)
    );
    let mut headers = vec![
        (":method", "GET"),
        (":path", path.as_str()),
        (":authority", settings.lookup_authority.as_str()),
        ("accept", "application/scim+json"),
    ];
    if let Some(a) = authorization {
        headers.push(("authorization", a));
    }
    host::dispatch_get(
        cluster,
        &headers,
        Duration::from_millis(settings.lookup_timeout_ms.max(1)),
    )
}

/// The displayName a lookup answered for `id`: a 200 whose body is that group. `None` on a timeout or
/// reset (no `:status`), any other status, an oversized or unreadable body, or a different id.
pub fn answer(id: &str, body_size: usize) -> HostResult<Option<String>> {
    let headers = host::headers(MapType::HttpCallResponseHeaders)?;
    let ok = headers.iter().any(|(k, v)| k == ":status" && v == "200");
    if !ok || body_size > MAX_ANSWER_BYTES {
        return Ok(None);
    }
    let body = host::buffer(BufferType::HttpCallResponseBody, body_size)?;
    Ok(group_names(&body)
        .into_iter()
        .find(|(gid, _)| gid == id)
        .map(|(_, name)| name))
}

/// Whether responses to this path may carry group names: any Groups endpoint (pure, no host call).
pub fn teaches_names(path: &str, base_paths: &[String], custom: &[String]) -> bool {
    // Cheap pre-check so that other paths never pay for classification.
    if !path
        .as_bytes()
        .windows(6)
        .any(|w| w.eq_ignore_ascii_case(b"groups"))
    {
        return false;
    }
    matches!(classify(path, base_paths, custom), Ok(Route::Scim(ep)) if ep.resource_type == ResourceType::Groups)
}

/// Groups whose displayName a write may change: replaced (PUT), deleted, given a `displayName`
/// (PATCH, Bulk), or written an attribute outside the schema (allowed by
/// `on_error.unknown_attribute: allow`; it may be an alias the upstream reads as `displayName`).
/// Once the upstream has applied it, their learned names are stale.
pub fn renamed(e: &Evaluation) -> Vec<String> {
    let ops = e.normalized.iter().flat_map(|n| n.operations.iter());
    ops.filter(|op| op.resource_type == ResourceType::Groups)
        .filter(|op| {
            matches!(op.method, Method::Put | Method::Delete)
                || op
                    .changes
                    .iter()
                    .any(|c| c.is("displayName") || c.flags.contains(&"unknown_attribute"))
        })
        .filter_map(|op| op.resource_id.clone())
        .collect()
}

fn key(id: &str) -> Option<String> {
    (!id.is_empty() && id.len() <= MAX_ID_LEN).then(|| format!("{KEY_PREFIX}{id}"))
}

fn decode(value: &[u8], now_secs: u64, ttl_secs: u64) -> Option<String> {
    let text = std::str::from_utf8(value).ok()?;
    let (learned, name) = text.split_once(' ')?;
    let learned: u64 = learned.parse().ok()?;
    (now_secs.saturating_sub(learned) < ttl_secs).then(|| name.to_string())
}

/// Percent-encodes everything but letters, digits, `-`, `_` and `~` (dots too, so `..` cannot climb),
/// so an id cannot add path segments, a query or a fragment to the lookup.
fn percent_encode(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn cached_names_expire() {
        assert_eq!(
            decode(b"100 Administrators", 150, 60).as_deref(),
            Some("Administrators")
        );
        assert_eq!(
            decode(b"100 Domain Admins", 159, 60).as_deref(),
            Some("Domain Admins")
        );
        assert_eq!(decode(b"100 Administrators", 160, 60), None);
        assert_eq!(decode(b"", 150, 60), None);
        assert_eq!(decode(b"x Administrators", 150, 60), None);
    }

    #[test]
    fn ids_cannot_escape_the_lookup_path() {
        assert_eq!(percent_encode("a1-b_c~"), "a1-b_c~");
        assert_eq!(
            percent_encode("../Users/x?y#z"),
            "%2E%2E%2FUsers%2Fx%3Fy%23z"
        );
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(key(""), None);
        assert_eq!(key(&"x".repeat(MAX_ID_LEN + 1)), None);
    }

    #[test]
    fn only_groups_endpoints_teach_names() {
        let base = ["/scim/v2".to_string()];
        assert!(teaches_names("/scim/v2/Groups", &base, &[]));
        assert!(teaches_names(
            "/scim/v2/groups/g1?attributes=displayName",
            &base,
            &[]
        ));
        assert!(!teaches_names("/scim/v2/Users", &base, &[]));
        assert!(!teaches_names("/app/groups", &base, &[]));
    }

    #[test]
    fn an_allowed_unknown_attribute_on_a_group_forgets_its_name() {
        let policy = r#"{"version": 1, "on_error": {"unknown_attribute": "allow"}, "rules": []}"#;
        let engine = crate::engine::Engine::from_json(policy).unwrap();
        let judge = |path: &str, body: &str| {
            let request: crate::scim::HttpRequest = serde_json::from_str(&format!(
                r#"{{"method": "PATCH", "path": "{path}", "body": {body}}}"#
            ))
            .unwrap();
            engine.evaluate_request(&request, &crate::engine::Facts::default())
        };
        let alias = r#"{"Operations": [{"op": "replace", "path": "display_name", "value": "Domain Admins"}]}"#;
        assert_eq!(renamed(&judge("/scim/v2/Groups/g1", alias)), ["g1"]);
        let members =
            r#"{"Operations": [{"op": "add", "path": "members", "value": [{"value": "u1"}]}]}"#;
        assert!(renamed(&judge("/scim/v2/Groups/g1", members)).is_empty());
    }
}
