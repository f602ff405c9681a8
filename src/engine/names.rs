//! Group displayNames, so that a rule on "Administrators" fires on a PATCH that names only the id.
//!
//! Names are learned from upstream responses to Groups endpoints and from lookups, and kept in the
//! host's shared state under `scimguard.group.<id>` as `"<learned at, epoch s> <displayName>"`. An
//! entry older than the policy's `group_name_ttl_secs`, empty, or unreadable counts as unknown. A
//! successful write that may rename a group empties its entry (the state has no delete), so the next
//! request that needs it looks it up again.
//!
//! Only the upstream's own answers are stored: a client can name any id, but it cannot choose the
//! name an id maps to.

use super::host::{Failed, Host};
use super::{Count, Evaluation};
use crate::policy::FilterSettings;
use crate::scim::endpoint::{classify, Method, ResourceType, Route};
use crate::scim::response::group_names;

const KEY_PREFIX: &str = "scimguard.group.";
/// Longer ids are never cached nor looked up (they stay unknown: the policy's outcome applies).
const MAX_ID_LEN: usize = 256;
/// Lookups one request may start; more unknown groups than this stay unknown.
pub const MAX_LOOKUPS: usize = 8;
/// A lookup answer larger than this is not read (a displayName lookup returns a few hundred bytes).
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// A `GET <lookup_base_path>/Groups/<id>?attributes=displayName` for the host to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub id: String,
    pub cluster: String,
    /// `:method`, `:path`, `:authority`, `accept`, and the client's `authorization` when it sent one
    /// (the upstream may require it; never logged).
    pub headers: Vec<(&'static str, String)>,
    pub timeout_ms: u64,
}

/// The name learned for `id`, if it is still fresh.
pub fn cached(host: &mut dyn Host, id: &str, now_secs: u64, ttl_secs: u64) -> Option<String> {
    let key = key(id)?;
    let (value, _) = host.load(&key).ok()?;
    decode(&value?, now_secs, ttl_secs)
}

/// Stores a name the upstream gave for `id`.
pub fn remember(host: &mut dyn Host, id: &str, name: &str, now_secs: u64) {
    if let Some(key) = key(id) {
        if host
            .store(&key, format!("{now_secs} {name}").as_bytes(), None)
            .is_ok()
        {
            host.count(Count::GroupNamesLearned, 1);
        }
    }
}

/// Marks `id`'s name as unknown.
pub fn forget(host: &mut dyn Host, id: &str) -> Result<(), Failed> {
    match key(id) {
        Some(key) => host.store(&key, b"", None).map(|_| ()),
        None => Ok(()),
    }
}

/// The lookup of `id` on `cluster`.
pub fn lookup(
    settings: &FilterSettings,
    cluster: &str,
    id: &str,
    authorization: Option<&str>,
) -> Lookup {
    let path = format!(
        "{}/Groups/{}?attributes=displayName",
        settings.lookup_base_path.trim_end_matches('/'),
        percent_encode(id)
    );
    let mut headers = vec![
        (":method", "GET".to_string()),
        (":path", path),
        (":authority", settings.lookup_authority.clone()),
        ("accept", "application/scim+json".to_string()),
    ];
    if let Some(a) = authorization {
        headers.push(("authorization", a.to_string()));
    }
    Lookup {
        id: id.to_string(),
        cluster: cluster.to_string(),
        headers,
        timeout_ms: settings.lookup_timeout_ms.max(1),
    }
}

/// The displayName a lookup answered for `id`: a 200 whose body is that group.
pub fn answer(id: &str, body: &[u8]) -> Option<String> {
    group_names(body)
        .into_iter()
        .find(|(gid, _)| gid == id)
        .map(|(_, name)| name)
}

/// Whether responses to this path may carry group names: any Groups endpoint.
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
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(
                HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
            ));
            out.push(char::from(
                HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'),
            ));
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
