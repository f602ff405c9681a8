//! PATCH paths (RFC 7644 §3.5.2, Figure 7) and their value filters (§3.4.2.2).
//!
//! `PATH = attrPath / valuePath [subAttr]`, `valuePath = attrPath "[" valFilter "]"`. Filters follow
//! the ABNF: attribute names and operators case-insensitive, `compValue` with JSON rules (escapes
//! included), precedence grouping > `not` > `and` > `or`. Unquoted values, nested brackets and
//! bracket-less `attrExp` paths are refused: servers disagree on them.

use serde_json::Value;

use super::attribute::{self, AttrRef};
use super::error::ScimError;

/// A parsed PATCH path.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrRef,
    pub filter: Option<Filter>,
}

/// A value filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare {
        attr: String,
        op: CompareOp,
        value: Value,
    },
    Present(String),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Lt,
    Ge,
    Le,
}

const OPS: [(&str, CompareOp); 9] = [
    ("eq", CompareOp::Eq),
    ("ne", CompareOp::Ne),
    ("co", CompareOp::Co),
    ("sw", CompareOp::Sw),
    ("ew", CompareOp::Ew),
    ("gt", CompareOp::Gt),
    ("lt", CompareOp::Lt),
    ("ge", CompareOp::Ge),
    ("le", CompareOp::Le),
];

impl CompareOp {
    fn as_str(self) -> &'static str {
        OPS.iter()
            .find(|(_, o)| *o == self)
            .map_or("eq", |(s, _)| s)
    }
}

/// Parses a PATCH `path`.
pub fn parse(path: &str) -> Result<PatchPath, ScimError> {
    if path.len() > 1024 {
        return Err(ScimError::path(
            "the PATCH path is longer than 1024 characters",
        ));
    }
    let Some(open) = path.find('[') else {
        if path.contains([' ', ']', '(', ')', '"']) {
            return Err(ScimError::path(format!(
                "`{}` is not a PATCH path",
                path.escape_default()
            )));
        }
        return Ok(PatchPath {
            attr: attribute::parse(path)?,
            filter: None,
        });
    };
    let head = path.get(..open).unwrap_or_default();
    let after = path.get(open + 1..).unwrap_or_default();
    let mut p = Parser { s: after, pos: 0 };
    let filter = p.or_expr()?;
    p.skip_ws();
    if !p.eat("]") {
        return Err(ScimError::path(format!(
            "the filter in `{}` is not closed by `]`",
            path.escape_default()
        )));
    }
    let tail = after.get(p.pos..).unwrap_or_default();
    let mut attr = attribute::parse(head)?;
    if attr.sub_attribute.is_some() {
        return Err(ScimError::path(
            "a value filter applies to an attribute, not a sub-attribute",
        ));
    }
    if !tail.is_empty() {
        let sub = tail
            .strip_prefix('.')
            .ok_or_else(|| ScimError::path("only `.subAttribute` may follow `]`"))?;
        attribute::check_name(sub, path)?;
        attr.sub_attribute = Some(attribute::canonical_sub(sub));
    }
    Ok(PatchPath {
        attr,
        filter: Some(filter),
    })
}

impl Filter {
    /// Canonical text: lower-case operators, canonical names, JSON values.
    pub fn to_text(&self) -> String {
        match self {
            Filter::Compare { attr, op, value } => format!("{attr} {} {value}", op.as_str()),
            Filter::Present(attr) => format!("{attr} pr"),
            Filter::And(a, b) => format!("{} and {}", a.grouped(), b.grouped()),
            Filter::Or(a, b) => format!("{} or {}", a.grouped(), b.grouped()),
            Filter::Not(a) => format!("not ({})", a.to_text()),
        }
    }

    fn grouped(&self) -> String {
        match self {
            Filter::And(..) | Filter::Or(..) => format!("({})", self.to_text()),
            _ => self.to_text(),
        }
    }

    /// The member ids a filter selects when it is `value eq "x"` or an `or` of those; `None` when
    /// which values match depends on the resource's state.
    pub fn listed_values(&self) -> Option<Vec<String>> {
        match self {
            Filter::Compare {
                attr,
                op: CompareOp::Eq,
                value: Value::String(v),
            } if attr == "value" => Some(vec![v.clone()]),
            Filter::Or(a, b) => {
                let mut l = a.listed_values()?;
                l.extend(b.listed_values()?);
                Some(l)
            }
            _ => None,
        }
    }
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        self.s.get(self.pos..).unwrap_or_default()
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start_matches(' ');
        self.pos = self.s.len() - trimmed.len();
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    /// Eats a case-insensitive keyword followed by a space or `(`.
    fn keyword(&mut self, kw: &str) -> bool {
        let r = self.rest();
        let matches = r
            .get(..kw.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(kw))
            && matches!(r.as_bytes().get(kw.len()), Some(b' ' | b'('));
        if matches {
            self.pos += kw.len();
        }
        matches
    }

    fn or_expr(&mut self) -> Result<Filter, ScimError> {
        self.binary("or", Self::and_expr, Filter::Or)
    }

    fn and_expr(&mut self) -> Result<Filter, ScimError> {
        self.binary("and", Self::unary, Filter::And)
    }

    /// `operand (keyword operand)*`, left-associative.
    fn binary(
        &mut self,
        keyword: &str,
        operand: fn(&mut Self) -> Result<Filter, ScimError>,
        join: fn(Box<Filter>, Box<Filter>) -> Filter,
    ) -> Result<Filter, ScimError> {
        let mut left = operand(self)?;
        loop {
            self.skip_ws();
            if !self.keyword(keyword) {
                return Ok(left);
            }
            let right = operand(self)?;
            left = join(Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Filter, ScimError> {
        self.skip_ws();
        if self.keyword("not") {
            self.skip_ws();
            if !self.eat("(") {
                return Err(ScimError::path("`not` must be followed by `(`"));
            }
            let inner = self.group_tail()?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        if self.eat("(") {
            return self.group_tail();
        }
        self.attr_exp()
    }

    fn group_tail(&mut self) -> Result<Filter, ScimError> {
        let inner = self.or_expr()?;
        self.skip_ws();
        if !self.eat(")") {
            return Err(ScimError::path("a `(` in the filter is not closed"));
        }
        Ok(inner)
    }

    fn attr_exp(&mut self) -> Result<Filter, ScimError> {
        let name_len = self
            .rest()
            .find([' ', '(', ')', '[', ']', '"'])
            .unwrap_or(self.rest().len());
        let name = self.rest().get(..name_len).unwrap_or_default().to_string();
        self.pos += name_len;
        if self.rest().starts_with('[') {
            return Err(ScimError::path("nested value filters are not accepted"));
        }
        let attr = attribute::parse(&name)?;
        let attr = match attr.sub_attribute {
            Some(s) => format!("{}.{s}", attr.attribute),
            None => attr.attribute,
        };
        self.skip_ws();
        if self.keyword_end("pr") {
            return Ok(Filter::Present(attr));
        }
        let op = OPS
            .iter()
            .find(|(kw, _)| self.keyword_space(kw))
            .map(|(_, op)| *op);
        let Some(op) = op else {
            return Err(ScimError::path(format!(
                "expected a comparison operator after `{name}`"
            )));
        };
        self.skip_ws();
        let value = self.comp_value()?;
        Ok(Filter::Compare { attr, op, value })
    }

    fn keyword_space(&mut self, kw: &str) -> bool {
        let r = self.rest();
        let ok = r
            .get(..kw.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(kw))
            && r.as_bytes().get(kw.len()) == Some(&b' ');
        if ok {
            self.pos += kw.len();
        }
        ok
    }

    fn keyword_end(&mut self, kw: &str) -> bool {
        let r = self.rest();
        let ok = r
            .get(..kw.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(kw))
            && matches!(r.as_bytes().get(kw.len()), None | Some(b' ' | b')' | b']'));
        if ok {
            self.pos += kw.len();
        }
        ok
    }

    /// A JSON literal: string (with escapes), number, `true`, `false` or `null`.
    fn comp_value(&mut self) -> Result<Value, ScimError> {
        let r = self.rest();
        let len = if r.starts_with('"') {
            json_string_len(r)?
        } else {
            r.find([' ', ')', ']']).unwrap_or(r.len())
        };
        let token = r.get(..len).unwrap_or_default();
        let value: Value = super::strict_json::parse(token.as_bytes(), 1).map_err(|_| {
            ScimError::path(format!(
                "`{}` is not a filter value (strings must be quoted)",
                token.escape_default()
            ))
        })?;
        if value.is_array() || value.is_object() {
            return Err(ScimError::path(
                "filter values are strings, numbers, booleans or null",
            ));
        }
        self.pos += len;
        Ok(value)
    }
}

/// Length of the JSON string literal at the start of `s`, quotes included.
fn json_string_len(s: &str) -> Result<usize, ScimError> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => return Ok(i + 1),
            _ => {}
        }
    }
    Err(ScimError::path("an unterminated string in the filter"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn rfc_forms() {
        let p = parse("members").unwrap();
        assert_eq!(p.attr.attribute, "members");
        let p = parse("name.familyName").unwrap();
        assert_eq!(p.attr.sub_attribute.as_deref(), Some("familyName"));
        let p = parse(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#).unwrap();
        assert_eq!(
            p.filter.unwrap().listed_values().unwrap(),
            vec!["2819c223-7f76-453a-919d-413861904646"]
        );
        let p = parse(r#"emails[type eq "work" and primary eq true].value"#).unwrap();
        assert_eq!(p.attr.attribute, "emails");
        assert_eq!(p.attr.sub_attribute.as_deref(), Some("value"));
        assert_eq!(
            p.filter.unwrap().to_text(),
            r#"type eq "work" and primary eq true"#
        );
        let p = parse(r#"members[value eq "a" or value eq "b"].display"#).unwrap();
        assert_eq!(p.filter.unwrap().listed_values().unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn precedence_and_case() {
        let p = parse(r#"emails[TYPE Eq "work" OR type eq "home" and primary eq true]"#).unwrap();
        assert_eq!(
            p.filter.unwrap().to_text(),
            r#"type eq "work" or (type eq "home" and primary eq true)"#
        );
        let p = parse(r#"members[not (value eq "u1")]"#).unwrap();
        assert!(p.filter.unwrap().listed_values().is_none());
        let p = parse(r#"addresses[type eq "a\"]b"].streetAddress"#).unwrap();
        assert_eq!(p.filter.unwrap().to_text(), r#"type eq "a\"]b""#);
        let p = parse(r#"emails[value pr]"#).unwrap();
        assert_eq!(p.filter.unwrap(), Filter::Present("value".into()));
        let p =
            parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"]"#).unwrap();
        assert_eq!(p.attr.attribute, "emails");
    }

    #[test]
    fn refusals() {
        for bad in [
            r#"members[value eq u1]"#,
            r#"members[value eq "u1""#,
            r#"members[value eq "u1"].display.x"#,
            r#"members[value[x eq "1"] eq "1"]"#,
            r#"emails.type eq "work""#,
            r#"members[value xx "1"]"#,
            r#"members[(value eq "1"]"#,
            "",
            "a..b",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
