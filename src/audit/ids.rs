//! Audit ids: UUID-shaped (RFC 9562 version 4), unique per request without asking the host for
//! anything per request.
//!
//! Why this construction: no clock in the core and no extra crates. The host passes a `RandomState`
//! (SipHash keyed with 128 random bits; in the wasm VM from WASI `random_get`, once per VM) and a
//! salt (its configure time and context id); a counter makes every input distinct. Two VMs
//! (workers) differ in their keys, so ids do not collide across them.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// A source of audit ids.
#[derive(Debug)]
pub struct AuditIds {
    keys: RandomState,
    salt: u64,
    counter: Cell<u64>,
}

impl AuditIds {
    pub fn new(keys: RandomState, salt: u64) -> AuditIds {
        AuditIds {
            keys,
            salt,
            counter: Cell::new(0),
        }
    }

    pub fn next(&self) -> String {
        let n = self.counter.get().wrapping_add(1);
        self.counter.set(n);
        let hi = self.keys.hash_one((self.salt, n, 1u8));
        let lo = self.keys.hash_one((self.salt, n, 2u8));
        uuid_v4(hi, lo)
    }
}

/// Formats 128 bits as an RFC 9562 version-4 UUID (version and variant bits set). Hex digits are
/// written directly: this runs for every judged write, and `format!` is slow in the VM.
fn uuid_v4(hi: u64, lo: u64) -> String {
    let hi = (hi & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    let bits = (u128::from(hi) << 64) | u128::from(lo);
    let mut out = String::with_capacity(36);
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push('-');
        }
        let nibble = (bits >> (124 - 4 * i)) & 0xf;
        out.push(char::from_digit(nibble as u32, 16).unwrap_or('0'));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn audit_ids_are_version_4_uuids() {
        let id = uuid_v4(u64::MAX, 0);
        assert_eq!(id, "ffffffff-ffff-4fff-8000-000000000000");
        let id = uuid_v4(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn audit_ids_differ() {
        let ids = AuditIds::new(RandomState::new(), 7);
        let all: std::collections::BTreeSet<String> = (0..1000).map(|_| ids.next()).collect();
        assert_eq!(all.len(), 1000);
    }
}
