//! Attribute names: one canonical spelling for every way a request can name an attribute.
//!
//! RFC 7644 §3.10: names, sub-attributes and URNs are case-insensitive; the core schema URN may be
//! omitted; extension attributes are `URN:name`, split at the LAST colon. Canonical form: a core
//! attribute by its schema spelling (`userName`), an enterprise attribute as
//! `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager` (also when sent unqualified,
//! as Entra does for `manager`, or under SCIM 1.0's `urn:scim:schemas:extension:enterprise:1.0`),
//! anything else lower-cased; the standard spellings are `core_schema`'s lists. Whether a name is
//! known at all is `schema`'s question. Only ASCII
//! names are accepted: Unicode case folding (`ſ` → `s`) differs between servers.

use super::core_schema::{core_name, enterprise_name, sub_name};
use super::error::ScimError;

pub const CORE_USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const CORE_GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// SCIM 1.0's enterprise extension (OneLogin's enterprise template posts it as an object key):
/// the same attributes, read as the 2.0 extension.
pub const ENTERPRISE_1_0_URN: &str = "urn:scim:schemas:extension:enterprise:1.0";

/// URNs that mean "the core schema" (including SCIM 1.x and non-standard spellings IdPs send).
const CORE_ALIASES: [&str; 5] = [
    CORE_USER_URN,
    CORE_GROUP_URN,
    "urn:scim:schemas:core:1.0",
    "urn:scim:schemas:core:2.0",
    "urn:ietf:params:scim:schemas:core:2.0",
];

/// Names that reach prototype pollution in JavaScript upstreams (GHSA-9m6g-wc8r-q59c).
const FORBIDDEN: [&str; 3] = ["__proto__", "constructor", "prototype"];

/// A parsed attribute reference: `[URN:]name[.sub]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrRef {
    /// Canonical attribute (see module docs).
    pub attribute: String,
    pub sub_attribute: Option<String>,
}

/// Whether `key` names a schema (an extension container key in a body, e.g. the enterprise URN).
pub fn is_schema_urn(key: &str) -> bool {
    if !starts_with_urn(key) {
        return false;
    }
    if is_enterprise(key) || CORE_ALIASES.iter().any(|u| u.eq_ignore_ascii_case(key)) {
        return true;
    }
    let last = key.rsplit(':').next().unwrap_or_default();
    last.eq_ignore_ascii_case("User") || last.eq_ignore_ascii_case("Group")
}

pub fn starts_with_urn(s: &str) -> bool {
    s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

/// Parses `[URN:]name[.sub]` (no filter) into its canonical form.
pub fn parse(text: &str) -> Result<AttrRef, ScimError> {
    let (urn, rest) = split_urn(text);
    if let Some(u) = urn {
        check_urn_spelling(u)?;
    }
    let (name, sub) = match rest.split_once('.') {
        Some((n, s)) => (n, Some(s)),
        None => (rest, None),
    };
    check_name(name, text)?;
    if let Some(s) = sub {
        check_name(s, text)?;
    }
    if let Some(u) = urn {
        check_qualified_spelling(u, name)?;
    }
    Ok(AttrRef {
        attribute: canonical(urn, name),
        sub_attribute: sub.map(canonical_sub),
    })
}

/// A standard schema URN must be spelled as its schema does. RFC 7644 §3.10 makes URNs
/// case-insensitive, but servers disagree on case variants: scim2-server folds them, scimmy drops
/// such a key (a PUT then clears the attribute), scim-patch stores it as a new key. No IdP sends
/// them, so a case variant is refused rather than read one way.
fn check_urn_spelling(urn: &str) -> Result<(), ScimError> {
    let known = CORE_ALIASES
        .iter()
        .chain([ENTERPRISE_URN, ENTERPRISE_1_0_URN].iter());
    for k in known {
        if k.eq_ignore_ascii_case(urn) && *k != urn {
            return Err(ScimError::path(format!(
                "`{}` is a case variant of the schema URN `{k}`: servers disagree on such spellings, so write it as the schema does",
                urn.escape_default()
            )));
        }
    }
    Ok(())
}

/// A standard attribute qualified by its URN must be spelled as the schema does: scimmy resolves a
/// qualified name literally (dropping `…:User:ExternalId`, so a PUT clears `externalId`), where
/// scim2-server folds it. Bare names stay case-insensitive (RFC 7643 §2.1), which servers agree on;
/// so do names under SCIM 1.x URNs, which scimmy and scim-patch do not resolve at all.
fn check_qualified_spelling(urn: &str, name: &str) -> Result<(), ScimError> {
    if ![CORE_USER_URN, CORE_GROUP_URN, ENTERPRISE_URN].contains(&urn) {
        return Ok(()); // SCIM 1.x and custom schemas: read as RFC 7643 §2.1 says, case-insensitively
    }
    let canonical = canonical(Some(urn), name);
    let bare = canonical.rsplit(':').next().unwrap_or_default();
    let standard = core_name(bare).or_else(|| enterprise_name(bare)) == Some(bare);
    if standard && bare != name {
        return Err(ScimError::path(format!(
            "`{urn}:{}` names `{bare}` in another spelling: servers disagree on such spellings, so write it as the schema does",
            name.escape_default()
        )));
    }
    Ok(())
}

/// Canonical attribute from an optional schema URN and a name.
pub fn canonical(urn: Option<&str>, name: &str) -> String {
    let core = urn.is_none_or(|u| CORE_ALIASES.iter().any(|c| c.eq_ignore_ascii_case(u)));
    let enterprise = urn.is_some_and(is_enterprise);
    if let Some(n) = core.then(|| core_name(name)).flatten() {
        return n.to_string();
    }
    if let Some(n) = (core || enterprise)
        .then(|| enterprise_name(name))
        .flatten()
    {
        return format!("{ENTERPRISE_URN}:{n}");
    }
    match urn {
        Some(u) if !core => format!("{}:{}", canonical_urn(u), name.to_ascii_lowercase()),
        _ => name.to_ascii_lowercase(),
    }
}

fn is_enterprise(urn: &str) -> bool {
    urn.eq_ignore_ascii_case(ENTERPRISE_URN) || urn.eq_ignore_ascii_case(ENTERPRISE_1_0_URN)
}

fn canonical_urn(urn: &str) -> String {
    if is_enterprise(urn) {
        ENTERPRISE_URN.to_string()
    } else {
        urn.to_ascii_lowercase()
    }
}

/// A sub-attribute's canonical spelling: the schema's (`core_schema::sub_name`), else lower-case.
pub fn canonical_sub(name: &str) -> String {
    match sub_name(name) {
        Some(n) => n.to_string(),
        None => name.to_ascii_lowercase(),
    }
}

/// Splits `urn:…:name` at the last colon; a plain name has no URN.
fn split_urn(text: &str) -> (Option<&str>, &str) {
    if !starts_with_urn(text) {
        return (None, text);
    }
    match text.rfind(':') {
        Some(i) => (text.get(..i), text.get(i + 1..).unwrap_or_default()),
        None => (None, text),
    }
}

/// RFC 7643 §2.1 ATTRNAME (`$ref` allowed as a sub-attribute), ASCII only, no prototype keys.
pub fn check_name(name: &str, whole: &str) -> Result<(), ScimError> {
    let mut chars = name.chars();
    let first_ok = match chars.next() {
        Some('$') => name.eq_ignore_ascii_case("$ref"),
        Some(c) => c.is_ascii_alphabetic(),
        None => false,
    };
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '$' | '-' | '_'));
    if !first_ok || !rest_ok {
        return Err(ScimError::path(format!(
            "`{}` is not a valid attribute name",
            whole.escape_default()
        )));
    }
    if FORBIDDEN.iter().any(|f| f.eq_ignore_ascii_case(name)) {
        return Err(ScimError::path(format!(
            "`{name}` is not an attribute name scimguard accepts"
        )));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn attr(s: &str) -> (String, Option<String>) {
        let a = parse(s).unwrap();
        (a.attribute, a.sub_attribute)
    }

    #[test]
    fn spellings_fold_to_one() {
        assert_eq!(attr("ACTIVE").0, "active");
        assert_eq!(
            attr("urn:ietf:params:scim:schemas:core:2.0:User:userName").0,
            "userName"
        );
        assert_eq!(
            attr("name.GivenName"),
            ("name".into(), Some("givenName".into()))
        );
        let mgr = format!("{ENTERPRISE_URN}:manager");
        assert_eq!(attr("manager").0, mgr);
        assert_eq!(
            attr("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager").0,
            mgr
        );
        assert_eq!(
            attr("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value")
                .1
                .unwrap(),
            "value"
        );
        assert_eq!(
            attr("urn:scim:schemas:extension:enterprise:1.0:Department").0,
            format!("{ENTERPRISE_URN}:department")
        );
        assert_eq!(
            attr("urn:acme:ext:2.0:User:isAdmin").0,
            "urn:acme:ext:2.0:user:isadmin"
        );
    }

    #[test]
    fn case_variants_of_standard_urns_are_refused() {
        assert!(parse("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:active").is_err());
        assert!(parse("urn:ietf:params:scim:schemas:core:2.0:user:externalId").is_err());
        assert!(
            parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:manager").is_err()
        );
        assert!(parse("urn:ietf:params:scim:schemas:core:2.0:User:ExternalId").is_err());
        assert_eq!(
            attr("urn:ietf:params:scim:schemas:core:2.0:User:active").0,
            "active"
        );
    }

    #[test]
    fn rejects_bad_names() {
        assert!(parse("__proto__").is_err());
        assert!(parse("a b").is_err());
        assert!(parse("1abc").is_err());
        assert!(parse("").is_err());
        assert!(parse("emails.").is_err());
    }

    #[test]
    fn schema_urns() {
        assert!(is_schema_urn(ENTERPRISE_URN));
        assert!(is_schema_urn(ENTERPRISE_1_0_URN));
        assert!(is_schema_urn(
            "urn:acme:params:scim:schemas:extension:acme:2.0:User"
        ));
        assert!(!is_schema_urn(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"
        ));
    }
}
