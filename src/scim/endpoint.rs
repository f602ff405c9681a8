//! Endpoint classification: which SCIM resource a request path names, robust to the spellings
//! upstreams accept (`/groups`, `//Users`, `%55sers`, `./`, trailing `/`, `.scim`, query strings).
//!
//! Anything under a SCIM base path that does not resolve to a known endpoint is an error, never
//! "not SCIM": a path the gateway cannot place is a path an upstream might still serve.

use std::borrow::Cow;

use serde::{Serialize, Serializer};

use super::error::ScimError;

/// The HTTP method, case-folded (a lower-case `patch` is still a PATCH to some upstreams).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Options,
    Post,
    Put,
    Patch,
    Delete,
    Other(String),
}

impl Method {
    pub fn parse(method: &str) -> Method {
        const KNOWN: [Method; 7] = [
            Method::Get,
            Method::Head,
            Method::Options,
            Method::Post,
            Method::Put,
            Method::Patch,
            Method::Delete,
        ];
        KNOWN
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(method))
            .unwrap_or_else(|| Method::Other(method.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Other(m) => m,
        }
    }

    /// Methods that never change state.
    pub fn is_read(&self) -> bool {
        matches!(self, Method::Get | Method::Head | Method::Options)
    }
}

impl Serialize for Method {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A SCIM resource type or endpoint, by its canonical RFC 7644 name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResourceType {
    Users,
    Groups,
    Bulk,
    /// `/.search` at the root (a query, never a write).
    Search,
    Me,
    Schemas,
    ResourceTypes,
    ServiceProviderConfig,
    /// A custom resource type the policy declares, by its declared name.
    Custom(String),
}

impl ResourceType {
    pub fn as_str(&self) -> &str {
        match self {
            ResourceType::Users => "Users",
            ResourceType::Groups => "Groups",
            ResourceType::Bulk => "Bulk",
            ResourceType::Search => ".search",
            ResourceType::Me => "Me",
            ResourceType::Schemas => "Schemas",
            ResourceType::ResourceTypes => "ResourceTypes",
            ResourceType::ServiceProviderConfig => "ServiceProviderConfig",
            ResourceType::Custom(name) => name,
        }
    }

    /// Resolves a path segment (case-insensitive, `.scim` suffix allowed) against the built-in names
    /// and the declared custom types.
    pub fn resolve(segment: &str, custom: &[String]) -> Option<ResourceType> {
        let name = strip_scim_suffix(segment);
        let builtin = [
            ResourceType::Users,
            ResourceType::Groups,
            ResourceType::Bulk,
            ResourceType::Search,
            ResourceType::Me,
            ResourceType::Schemas,
            ResourceType::ResourceTypes,
            ResourceType::ServiceProviderConfig,
        ];
        if let Some(found) = builtin
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name))
        {
            return Some(found);
        }
        custom
            .iter()
            .find(|c| c.eq_ignore_ascii_case(name))
            .map(|c| ResourceType::Custom(c.clone()))
    }

    /// Read-only discovery endpoints (RFC 7644 §4).
    pub fn is_discovery(&self) -> bool {
        matches!(
            self,
            ResourceType::Schemas
                | ResourceType::ResourceTypes
                | ResourceType::ServiceProviderConfig
        )
    }
}

impl Serialize for ResourceType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Where a request lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Not under any SCIM base path.
    NotScim,
    /// The base path itself (`/scim/v2` or `/scim/v2/`).
    Root,
    Scim(Endpoint),
}

/// A resolved SCIM endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub resource_type: ResourceType,
    /// The resource id (percent-decoded), when the path names one.
    pub id: Option<String>,
    /// The path ends in `/.search` (a query, never a write).
    pub search: bool,
}

/// Classifies `path` (the raw `:path`, query included) against the SCIM `base_paths`.
pub fn classify(path: &str, base_paths: &[String], custom: &[String]) -> Result<Route, ScimError> {
    let raw = without_query(path);
    let segments = match normalize_segments(raw) {
        Ok(segments) => segments,
        // A path we cannot normalise is only our business when it could be under a SCIM base.
        Err(e) if could_be_scim(raw, base_paths) => return Err(e),
        Err(_) => return Ok(Route::NotScim),
    };
    for base in base_paths {
        // The base's segments must open the path, compared case-insensitively.
        let mut matched = 0;
        let opens = base.split('/').filter(|s| !s.is_empty()).all(|b| {
            matched += 1;
            segments
                .get(matched - 1)
                .is_some_and(|a| a.eq_ignore_ascii_case(b))
        });
        if !opens {
            continue;
        }
        let rest = segments.get(matched..).unwrap_or_default();
        return resolve_rest(rest, custom, raw).map(|e| e.map_or(Route::Root, Route::Scim));
    }
    Ok(Route::NotScim)
}

fn resolve_rest(
    rest: &[Cow<'_, str>],
    custom: &[String],
    raw: &str,
) -> Result<Option<Endpoint>, ScimError> {
    let Some(first) = rest.first() else {
        return Ok(None);
    };
    let unknown = || {
        ScimError::new(
            404,
            None,
            format!("unknown SCIM endpoint `{}`", printable(raw)),
        )
    };
    let resource_type = ResourceType::resolve(first, custom).ok_or_else(unknown)?;
    let mut endpoint = Endpoint {
        resource_type,
        id: None,
        search: false,
    };
    match rest.get(1..).unwrap_or_default() {
        [] => {}
        [s] if strip_scim_suffix(s) == ".search" => endpoint.search = true,
        [id] => endpoint.id = Some(strip_scim_suffix(id).to_string()),
        _ => return Err(unknown()),
    }
    if endpoint.resource_type == ResourceType::Search {
        endpoint.search = true;
    }
    Ok(Some(endpoint))
}

fn strip_scim_suffix(segment: &str) -> &str {
    let n = segment.len();
    match segment.get(n.saturating_sub(5)..) {
        Some(tail) if n > 5 && tail.eq_ignore_ascii_case(".scim") => {
            segment.get(..n - 5).unwrap_or(segment)
        }
        _ => segment,
    }
}

/// Percent-decodes, drops empty and `.` segments, resolves `..`. Rejects encoded separators,
/// matrix parameters, control characters and invalid UTF-8. Segments without `%` are borrowed.
fn normalize_segments(raw: &str) -> Result<Vec<Cow<'_, str>>, ScimError> {
    let mut out: Vec<Cow<'_, str>> = Vec::new();
    for segment in raw.split('/') {
        // The usual segment (printable ASCII, no `%`, `;` or `\\`) has nothing to decode or refuse.
        let plain = segment
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && !matches!(b, b'%' | b';' | b'\\'));
        let decoded = if plain {
            Cow::Borrowed(segment)
        } else {
            decode_segment(segment)?
        };
        match decoded.as_ref() {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(ScimError::path("the path climbs above the root"));
                }
            }
            _ => out.push(decoded),
        }
    }
    Ok(out)
}

fn decode_segment(segment: &str) -> Result<Cow<'_, str>, ScimError> {
    let encoded_separator = segment
        .as_bytes()
        .windows(3)
        .any(|w| w.eq_ignore_ascii_case(b"%2f") || w.eq_ignore_ascii_case(b"%5c"));
    if encoded_separator || segment.contains('\\') {
        return Err(ScimError::path(
            "encoded path separators are not accepted in SCIM paths",
        ));
    }
    if segment.contains(';') {
        return Err(ScimError::path(
            "path parameters (`;`) are not accepted in SCIM paths",
        ));
    }
    percent_decode(segment)
}

fn percent_decode(segment: &str) -> Result<Cow<'_, str>, ScimError> {
    if !segment.contains('%') {
        if segment.chars().any(char::is_control) {
            return Err(ScimError::path("control characters in the path"));
        }
        return Ok(Cow::Borrowed(segment));
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            let v = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(v) = v else {
                return Err(ScimError::path("invalid percent-encoding in the path"));
            };
            out.push(v);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    let s = String::from_utf8(out)
        .map_err(|_| ScimError::path("the path is not UTF-8 once decoded"))?;
    if s.chars().any(char::is_control) {
        return Err(ScimError::path("control characters in the path"));
    }
    Ok(Cow::Owned(s))
}

fn could_be_scim(raw: &str, base_paths: &[String]) -> bool {
    let folded = raw.to_ascii_lowercase();
    base_paths.iter().any(|b| {
        let last = b
            .rsplit('/')
            .find(|s| !s.is_empty())
            .unwrap_or_default()
            .to_ascii_lowercase();
        !last.is_empty() && folded.contains(&last)
    })
}

/// `path` up to its query (`?`) or fragment (`#`). Query strings can carry tokens
/// (`?access_token=`): audit outputs keep the path only.
pub fn without_query(path: &str) -> &str {
    match path.bytes().position(|b| b == b'?' || b == b'#') {
        Some(end) => path.get(..end).unwrap_or_default(),
        None => path,
    }
}

/// The path without control characters, cut to a sane length, for error messages.
pub fn printable(s: &str) -> String {
    printable_cow(s).into_owned()
}

/// `printable`, borrowing `s` when it is already printable (short, ASCII, no control character).
pub fn printable_cow(s: &str) -> Cow<'_, str> {
    if s.len() <= 200 && s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().filter(|c| !c.is_control()).take(200).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn route(path: &str) -> Route {
        classify(path, &["/scim/v2".to_string()], &[]).unwrap()
    }

    fn ep(t: ResourceType, id: Option<&str>) -> Route {
        Route::Scim(Endpoint {
            resource_type: t,
            id: id.map(str::to_string),
            search: false,
        })
    }

    #[test]
    fn spellings_resolve_to_the_same_endpoint() {
        for p in [
            "/scim/v2/Groups/g1",
            "/scim/v2/groups/g1",
            "/scim/v2//Groups/g1/",
            "/scim/v2/./Groups/g1",
            "/scim/v2/x/../Groups/g1",
            "/scim/v2/%47roups/g1",
            "/scim/v2/Groups.scim/g1",
            "/scim/v2/Groups/g1.scim",
            "/scim/v2/Groups/g1?attributes=members",
            "/SCIM/V2/GROUPS/g1",
        ] {
            assert_eq!(route(p), ep(ResourceType::Groups, Some("g1")), "{p}");
        }
    }

    #[test]
    fn non_scim_and_unknown() {
        assert_eq!(route("/app/home"), Route::NotScim);
        assert_eq!(route("/scim/v20/Users"), Route::NotScim);
        assert_eq!(route("/scim/v2"), Route::Root);
        assert!(classify("/scim/v2/Widgets", &["/scim/v2".into()], &[]).is_err());
        assert!(classify("/scim/v2/Users/a/b", &["/scim/v2".into()], &[]).is_err());
        assert!(classify("/scim/v2/Users/a%2Fb", &["/scim/v2".into()], &[]).is_err());
        assert!(classify("/scim/v2/Users;x=1", &["/scim/v2".into()], &[]).is_err());
        assert_eq!(
            classify(
                "/scim/v2/Widgets/1",
                &["/scim/v2".into()],
                &["Widgets".into()]
            )
            .unwrap(),
            ep(ResourceType::Custom("Widgets".into()), Some("1"))
        );
    }

    #[test]
    fn search_is_flagged() {
        let Route::Scim(e) = route("/scim/v2/Users/.search") else {
            panic!()
        };
        assert!(e.search && e.id.is_none());
        let Route::Scim(e) = route("/scim/v2/.search") else {
            panic!()
        };
        assert!(e.search);
    }
}
