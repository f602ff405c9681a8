//! RFC 7643's built-in attributes, listed once: the common attributes (§3.1), core User (§4.1),
//! Group (§4.2) and EnterpriseUser (§4.3), with their sub-attributes, plus SCIM 1.x names real IdPs
//! still send (`meta.attributes`, `manager.managerId`).
//!
//! Two readers: `schema` builds what each resource type has from these lists, and `attribute`
//! takes a name's canonical spelling from them. Does not: parse names or check requests.

use Shape::{Complex, Multi, Simple};

/// The shape of one built-in attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Simple,
    /// A complex attribute with these sub-attributes.
    Complex(&'static [&'static str]),
    /// A multi-valued attribute: these sub-attributes, then the defaults every multi-valued
    /// attribute may carry (`MULTI`, RFC 7643 §2.4).
    Multi(&'static [&'static str]),
}

/// One built-in attribute in schema spelling.
pub type Builtin = (&'static str, Shape);

/// RFC 7643 §2.4: the sub-attributes every multi-valued attribute may carry.
pub const MULTI: [&str; 5] = ["value", "display", "type", "primary", "$ref"];
/// RFC 7643 §3.1 `meta`, with SCIM 1.1's `attributes` (the names a SCIM 1.1 PATCH removes).
const META: [&str; 6] = [
    "resourceType",
    "created",
    "lastModified",
    "location",
    "version",
    "attributes",
];
const NAME: [&str; 6] = [
    "formatted",
    "familyName",
    "givenName",
    "middleName",
    "honorificPrefix",
    "honorificSuffix",
];
const ADDRESS: [&str; 7] = [
    "formatted",
    "streetAddress",
    "locality",
    "region",
    "postalCode",
    "country",
    "type",
];
/// `managerId` is SCIM 1.0's spelling of `value` (OneLogin's enterprise template sends it).
const MANAGER: [&str; 4] = ["value", "$ref", "displayName", "managerId"];

/// RFC 7643 §3.1: what every resource has.
pub const COMMON: [Builtin; 4] = [
    ("id", Simple),
    ("externalId", Simple),
    ("schemas", Simple),
    ("meta", Complex(&META)),
];

/// RFC 7643 §4.1 User.
pub const USER: [Builtin; 21] = [
    ("userName", Simple),
    ("displayName", Simple),
    ("nickName", Simple),
    ("profileUrl", Simple),
    ("title", Simple),
    ("userType", Simple),
    ("preferredLanguage", Simple),
    ("locale", Simple),
    ("timezone", Simple),
    ("active", Simple),
    ("password", Simple),
    ("emails", Multi(&[])),
    ("phoneNumbers", Multi(&[])),
    ("ims", Multi(&[])),
    ("photos", Multi(&[])),
    ("groups", Multi(&[])),
    ("entitlements", Multi(&[])),
    ("roles", Multi(&[])),
    ("x509Certificates", Multi(&[])),
    ("name", Complex(&NAME)),
    ("addresses", Multi(&ADDRESS)),
];

/// RFC 7643 §4.2 Group (`displayName` is a User attribute too).
pub const GROUP: [Builtin; 2] = [("displayName", Simple), ("members", Multi(&[]))];

/// RFC 7643 §4.3 EnterpriseUser.
pub const ENTERPRISE: [Builtin; 6] = [
    ("employeeNumber", Simple),
    ("costCenter", Simple),
    ("organization", Simple),
    ("division", Simple),
    ("department", Simple),
    ("manager", Complex(&MANAGER)),
];

impl Shape {
    /// The sub-attributes, in schema spelling (empty for a simple attribute).
    pub fn sub_attributes(self) -> Vec<&'static str> {
        match self {
            Simple => Vec::new(),
            Complex(subs) => subs.to_vec(),
            Multi(subs) => {
                let mut all = subs.to_vec();
                all.extend(MULTI.iter().filter(|m| !subs.contains(m)));
                all
            }
        }
    }
}

/// The schema spelling of a core User or Group attribute named `name` in any case. `value` and
/// `display` (the sub-attributes of every multi-valued attribute) count as core names too, so a
/// qualified `…:User:Value` is refused as a respelling like any other.
pub fn core_name(name: &str) -> Option<&'static str> {
    let top = COMMON.iter().chain(&USER).chain(&GROUP).map(|(n, _)| *n);
    let multi = MULTI.iter().take(2).copied();
    top.chain(multi).find(|n| n.eq_ignore_ascii_case(name))
}

/// The schema spelling of an EnterpriseUser attribute named `name` in any case.
pub fn enterprise_name(name: &str) -> Option<&'static str> {
    ENTERPRISE
        .iter()
        .map(|(n, _)| *n)
        .find(|n| n.eq_ignore_ascii_case(name))
}

/// The schema spelling of a sub-attribute named `name` in any case: of the multi-valued defaults,
/// `name` and `addresses` (the sub-attributes of `meta` and `manager` keep the request's
/// spelling, lower-cased, as they always have: changing it would change recorded readings).
pub fn sub_name(name: &str) -> Option<&'static str> {
    MULTI
        .iter()
        .chain(&NAME)
        .chain(&ADDRESS)
        .copied()
        .find(|n| n.eq_ignore_ascii_case(name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_to_their_schema_spelling() {
        assert_eq!(core_name("USERNAME"), Some("userName"));
        assert_eq!(core_name("x509certificates"), Some("x509Certificates"));
        assert_eq!(core_name("members"), Some("members"));
        assert_eq!(core_name("Value"), Some("value"));
        assert_eq!(core_name("manager"), None);
        assert_eq!(enterprise_name("COSTCENTER"), Some("costCenter"));
        assert_eq!(sub_name("givenname"), Some("givenName"));
        assert_eq!(sub_name("POSTALCODE"), Some("postalCode"));
        assert_eq!(sub_name("$REF"), Some("$ref"));
        assert_eq!(sub_name("lastmodified"), None);
    }

    #[test]
    fn multi_valued_attributes_take_the_defaults_after_their_own() {
        let addresses = USER.iter().find(|(n, _)| *n == "addresses").unwrap().1;
        assert_eq!(
            addresses.sub_attributes(),
            [
                "formatted",
                "streetAddress",
                "locality",
                "region",
                "postalCode",
                "country",
                "type",
                "value",
                "display",
                "primary",
                "$ref"
            ]
        );
        assert_eq!(Multi(&[]).sub_attributes(), MULTI);
        assert!(Simple.sub_attributes().is_empty());
    }
}
