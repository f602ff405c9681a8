//! A serde `Serializer` for audit lines: serde_json's exact compact output (a contract the
//! records keep byte for byte), written straight into one byte buffer, faster where records spend
//! their time: strings without characters to escape (nearly all: field names, ids, member lists)
//! are copied as they are after an eight-bytes-at-a-time scan; serde_json escapes byte by byte.
//! Any other string, every number and every float is written by serde_json itself.
//!
//! Used by `write` for every record; `tests` check it against serde_json on every shape it meets.

use serde::ser::{self, Serialize};

/// Serialises `value` as compact JSON at the end of `out`, exactly as `serde_json::to_writer`.
pub fn to_vec_end<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> serde_json::Result<()> {
    value.serialize(&mut LineSerializer { out })
}

/// The serializer: a buffer being appended to.
pub struct LineSerializer<'o> {
    out: &'o mut Vec<u8>,
}

/// An array or object being written: whether an item was written, and what closes it.
pub struct LineCompound<'s, 'o> {
    ser: &'s mut LineSerializer<'o>,
    first: bool,
    close: &'static [u8],
}

impl<'o> LineSerializer<'o> {
    fn number<T: Serialize>(&mut self, v: T) -> serde_json::Result<()> {
        serde_json::to_writer(&mut *self.out, &v)
    }

    fn open<'s>(&'s mut self, open: &[u8], close: &'static [u8]) -> LineCompound<'s, 'o> {
        self.out.extend_from_slice(open);
        LineCompound {
            ser: self,
            first: true,
            close,
        }
    }
}

impl<'s, 'o> ser::Serializer for &'s mut LineSerializer<'o> {
    type Ok = ();
    type Error = serde_json::Error;
    type SerializeSeq = LineCompound<'s, 'o>;
    type SerializeTuple = LineCompound<'s, 'o>;
    type SerializeTupleStruct = LineCompound<'s, 'o>;
    type SerializeTupleVariant = LineCompound<'s, 'o>;
    type SerializeMap = LineCompound<'s, 'o>;
    type SerializeStruct = LineCompound<'s, 'o>;
    type SerializeStructVariant = LineCompound<'s, 'o>;

    fn serialize_bool(self, v: bool) -> serde_json::Result<()> {
        let text: &[u8] = if v { b"true" } else { b"false" };
        self.out.extend_from_slice(text);
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> serde_json::Result<()> {
        self.number(v)
    }
    fn serialize_i16(self, v: i16) -> serde_json::Result<()> {
        self.number(v)
    }
    fn serialize_i32(self, v: i32) -> serde_json::Result<()> {
        self.number(v)
    }
    fn serialize_i64(self, v: i64) -> serde_json::Result<()> {
        self.number(v)
    }
    fn serialize_u8(self, v: u8) -> serde_json::Result<()> {
        self.number(v)
    }
    fn serialize_u16(self, v: u16) -> serde_json::Result<()> {
        self.number(v)
    }
    fn serialize_u32(self, v: u32) -> serde_json::Result<()> {
        self.number(v)
    }
    fn serialize_u64(self, v: u64) -> serde_json::Result<()> {
        self.number(v)
    }
    fn serialize_f32(self, v: f32) -> serde_json::Result<()> {
        self.number(v)
    }
    fn serialize_f64(self, v: f64) -> serde_json::Result<()> {
        self.number(v)
    }
    fn serialize_char(self, v: char) -> serde_json::Result<()> {
        string(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> serde_json::Result<()> {
        string(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> serde_json::Result<()> {
        serde_json::to_writer(&mut *self.out, v)
    }
    fn serialize_none(self) -> serde_json::Result<()> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> serde_json::Result<()> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> serde_json::Result<()> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> serde_json::Result<()> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> serde_json::Result<()> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> serde_json::Result<()> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> serde_json::Result<()> {
        self.out.push(b'{');
        string(self.out, variant);
        self.out.push(b':');
        v.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> serde_json::Result<LineCompound<'s, 'o>> {
        Ok(self.open(b"[", b"]"))
    }
    fn serialize_tuple(self, _: usize) -> serde_json::Result<LineCompound<'s, 'o>> {
        Ok(self.open(b"[", b"]"))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> serde_json::Result<LineCompound<'s, 'o>> {
        Ok(self.open(b"[", b"]"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> serde_json::Result<LineCompound<'s, 'o>> {
        self.out.push(b'{');
        string(self.out, variant);
        Ok(self.open(b":[", b"]}"))
    }
    fn serialize_map(self, _: Option<usize>) -> serde_json::Result<LineCompound<'s, 'o>> {
        Ok(self.open(b"{", b"}"))
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> serde_json::Result<LineCompound<'s, 'o>> {
        Ok(self.open(b"{", b"}"))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> serde_json::Result<LineCompound<'s, 'o>> {
        self.out.push(b'{');
        string(self.out, variant);
        Ok(self.open(b":{", b"}}"))
    }
}

impl LineCompound<'_, '_> {
    /// A comma before every item but the first.
    fn next(&mut self) {
        if !self.first {
            self.ser.out.push(b',');
        }
        self.first = false;
    }

    fn item<T: Serialize + ?Sized>(&mut self, v: &T) -> serde_json::Result<()> {
        self.next();
        v.serialize(&mut *self.ser)
    }

    /// `"key":value`. Keys are strings here (struct fields, `Value` and `Tally` maps).
    fn entry<T: Serialize + ?Sized>(&mut self, key: &str, v: &T) -> serde_json::Result<()> {
        self.next();
        string(self.ser.out, key);
        self.ser.out.push(b':');
        v.serialize(&mut *self.ser)
    }

    fn close(self) -> serde_json::Result<()> {
        self.ser.out.extend_from_slice(self.close);
        Ok(())
    }
}

impl ser::SerializeSeq for LineCompound<'_, '_> {
    type Ok = ();
    type Error = serde_json::Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> serde_json::Result<()> {
        self.item(v)
    }
    fn end(self) -> serde_json::Result<()> {
        self.close()
    }
}

impl ser::SerializeTuple for LineCompound<'_, '_> {
    type Ok = ();
    type Error = serde_json::Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> serde_json::Result<()> {
        self.item(v)
    }
    fn end(self) -> serde_json::Result<()> {
        self.close()
    }
}

impl ser::SerializeTupleStruct for LineCompound<'_, '_> {
    type Ok = ();
    type Error = serde_json::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> serde_json::Result<()> {
        self.item(v)
    }
    fn end(self) -> serde_json::Result<()> {
        self.close()
    }
}

impl ser::SerializeTupleVariant for LineCompound<'_, '_> {
    type Ok = ();
    type Error = serde_json::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> serde_json::Result<()> {
        self.item(v)
    }
    fn end(self) -> serde_json::Result<()> {
        self.close()
    }
}

impl ser::SerializeMap for LineCompound<'_, '_> {
    type Ok = ();
    type Error = serde_json::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> serde_json::Result<()> {
        self.next();
        key.serialize(&mut *self.ser)?;
        self.ser.out.push(b':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> serde_json::Result<()> {
        v.serialize(&mut *self.ser)
    }
    fn end(self) -> serde_json::Result<()> {
        self.close()
    }
}

impl ser::SerializeStruct for LineCompound<'_, '_> {
    type Ok = ();
    type Error = serde_json::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> serde_json::Result<()> {
        self.entry(key, v)
    }
    fn end(self) -> serde_json::Result<()> {
        self.close()
    }
}

impl ser::SerializeStructVariant for LineCompound<'_, '_> {
    type Ok = ();
    type Error = serde_json::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> serde_json::Result<()> {
        self.entry(key, v)
    }
    fn end(self) -> serde_json::Result<()> {
        self.close()
    }
}

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes it.
fn string(out: &mut Vec<u8>, s: &str) {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line<T: Serialize>(v: &T) -> Vec<u8> {
        let mut out = Vec::new();
        to_vec_end(&mut out, v).unwrap();
        out
    }

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
            let reference = s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
            assert_eq!(needs_escape(s.as_bytes()), reference, "{s:?}");
            assert_eq!(line(s), serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn values_match_serde_json() {
        #[derive(serde::Serialize)]
        enum Variants {
            Unit,
            New(u8),
            Tuple(u8, i64),
            Struct { a: bool },
        }
        #[derive(serde::Serialize)]
        struct Sample<'a> {
            n: Option<u16>,
            f: f64,
            nan: f64,
            c: char,
            t: (u8, &'a str),
            e: [Variants; 4],
            b: &'a serde_bytes_like::RawBytes,
        }
        mod serde_bytes_like {
            /// Bytes serialised with `serialize_bytes`.
            pub struct RawBytes(pub [u8; 3]);
            impl serde::Serialize for RawBytes {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    s.serialize_bytes(&self.0)
                }
            }
        }
        let s = Sample {
            n: None,
            f: -1.5e-7,
            nan: f64::NAN,
            c: '"',
            t: (7, "x\u{0}"),
            e: [
                Variants::Unit,
                Variants::New(1),
                Variants::Tuple(2, -3),
                Variants::Struct { a: true },
            ],
            b: &serde_bytes_like::RawBytes([1, 2, 255]),
        };
        assert_eq!(line(&s), serde_json::to_vec(&s).unwrap());
        let v = json!({"a": [1, 2.5, -3, u64::MAX, null, true, {"k\"ey": "v", "": []}], "b": {}});
        assert_eq!(line(&v), serde_json::to_vec(&v).unwrap());
    }
}
