//! What a gateway may learn from upstream responses: group displayNames (so rules on names fire on
//! PATCHes by id) and the id of a created resource (for audit records). Responses are never used to
//! decide what a request changed.

use serde_json::Value;

use super::endpoint::without_query;
use super::strict_json;

/// `(id, displayName)` of every group in a Group resource or a ListResponse of groups.
pub fn group_names(body: &[u8]) -> Vec<(String, String)> {
    // Strict parsing also serves here: one JSON deserializer in the filter, and an ambiguous
    // response teaches nothing.
    let Ok(v) = strict_json::parse(body, 64) else {
        return Vec::new();
    };
    let resources = match v.get("Resources").and_then(Value::as_array) {
        Some(list) => list.iter().collect(),
        None => vec![&v],
    };
    resources
        .into_iter()
        .filter_map(|r| {
            let id = r.get("id")?.as_str()?;
            let name = r.get("displayName")?.as_str()?;
            (!id.is_empty() && id.len() <= 256 && name.len() <= 1024)
                .then(|| (id.to_string(), name.to_string()))
        })
        .take(1000)
        .collect()
}

/// The id of a created resource: the last segment of `Location`, else the body's `id`.
pub fn created_id(location: Option<&str>, body: Option<&[u8]>) -> Option<String> {
    let from_location = location
        .map(|l| without_query(l).trim_end_matches('/'))
        .and_then(|l| l.rsplit('/').next())
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    from_location.or_else(|| {
        let v = strict_json::parse(body?, 64).ok()?;
        v.get("id")?.as_str().map(str::to_string)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn learns_from_resources_and_lists() {
        assert_eq!(
            group_names(br#"{"id":"g1","displayName":"Admins"}"#),
            vec![("g1".into(), "Admins".into())]
        );
        let list = br#"{"Resources":[{"id":"a","displayName":"A"},{"id":"b"}]}"#;
        assert_eq!(group_names(list), vec![("a".into(), "A".into())]);
        assert!(group_names(b"not json").is_empty());
    }

    #[test]
    fn created_id_prefers_location() {
        assert_eq!(
            created_id(Some("http://x/scim/v2/Users/u1"), Some(br#"{"id":"zz"}"#)),
            Some("u1".into())
        );
        assert_eq!(created_id(None, Some(br#"{"id":"zz"}"#)), Some("zz".into()));
    }
}
