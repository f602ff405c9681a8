//! A JSON object writer for audit records: fields appended in order straight into one byte buffer,
//! with serde_json's exact output for every value (the records are a byte-level contract).
//!
//! Strings without characters to escape are copied as they are; any other string, and every
//! `serde_json::Value` and number, is written by serde_json itself into the same buffer.

use serde::Serialize;

/// One JSON object being written into `out`.
pub struct Object<'o> {
    out: &'o mut Vec<u8>,
    empty: bool,
}

impl<'o> Object<'o> {
    /// Opens an object (`{`) at the end of `out`.
    pub fn open(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// Continues an object whose `{` and first members another writer puts before `out` (the
    /// access log's format, `HostFields::InLog`): the first member written here has no comma.
    pub fn rest(out: &'o mut Vec<u8>) -> Self {
        Object { out, empty: true }
    }

    /// Closes the object (`}`).
    pub fn close(self) {
        self.out.push(b'}');
    }

    /// Writes `"key":` (after a comma when needed) and returns the buffer for the value.
    /// `key` is one of this crate's field names: plain ASCII, nothing to escape.
    pub fn key(&mut self, key: &str) -> &mut Vec<u8> {
        debug_assert!(!needs_escape(key.as_bytes()));
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    pub fn str(&mut self, key: &str, value: &str) {
        let out = self.key(key);
        string(out, value);
    }

    /// A string, or `null`.
    pub fn opt_str(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => self.str(key, v),
            None => self.key(key).extend_from_slice(b"null"),
        }
    }

    /// A string, or nothing at all when absent.
    pub fn some_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.str(key, v);
        }
    }

    pub fn bool(&mut self, key: &str, value: bool) {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.key(key).extend_from_slice(text);
    }

    /// Any serialisable value (numbers, `Option`s, `serde_json::Value`s), as serde_json writes it.
    pub fn value<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> serde_json::Result<()> {
        serde_json::to_writer(&mut *self.key(key), value)
    }

    /// An array of strings.
    pub fn strs<'s>(&mut self, key: &str, items: impl IntoIterator<Item = &'s str>) {
        let out = self.key(key);
        out.push(b'[');
        for (i, s) in items.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, s);
        }
        out.push(b']');
    }
}

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes it.
pub fn string(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        // Writing a `str` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
        return;
    }
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// Whether `bytes` hold a control character, `"` or `\\`: eight bytes at a time (exact SWAR
/// tests for "a byte below 0x20" and "a byte equal to"), then the tail byte by byte.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH != 0;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        // A chunk of eight always converts; `0` would only send the string to the slow path.
        let x = <[u8; 8]>::try_from(word).map_or(0, u64::from_le_bytes);
        if below(x, 0x20) || below(x ^ (ONES * 0x22), 1) || below(x ^ (ONES * 0x5c), 1) {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Appends a JSON array, each element written by `item`.
pub fn array<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut item: impl FnMut(&mut Vec<u8>, T) -> serde_json::Result<()>,
) -> serde_json::Result<()> {
    out.push(b'[');
    for (i, x) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, x)?;
    }
    out.push(b']');
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn strings_match_serde_json() {
        let long = "0123456789abcdef".repeat(3);
        let mut cases = vec![
            "".to_string(),
            "plain".into(),
            "é ü 🦀 ÿ\u{80}\u{9f}".into(),
            "q\"uote".into(),
            "back\\slash".into(),
            "tab\tnl\n".into(),
            "\u{1}\u{1f}\u{7f} !#[]{}".into(),
            long.clone(),
        ];
        // Every ASCII byte, at every position of an eight-byte word and in the tail.
        for b in 0u8..0x80 {
            for at in 0..20 {
                let mut t = long.clone().into_bytes();
                t.truncate(20);
                t[at] = b;
                cases.push(String::from_utf8(t).unwrap());
            }
        }
        for s in &cases {
            let s = s.as_str();
            let reference = s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
            assert_eq!(needs_escape(s.as_bytes()), reference, "{s:?}");
            let mut out = Vec::new();
            string(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn objects() {
        let mut out = Vec::new();
        let mut o = Object::open(&mut out);
        o.str("a", "x");
        o.opt_str("b", None);
        o.some_str("c", None);
        o.bool("d", true);
        o.value("e", &Some(7u16)).unwrap();
        o.strs("f", ["1", "2"]);
        o.close();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":"x","b":null,"d":true,"e":7,"f":["1","2"]}"#
        );
    }
}
