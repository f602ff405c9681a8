//! RFC 3339 timestamps from epoch milliseconds (the host passes the time in; nothing here reads a clock).

/// `1767225600123` → `2026-01-01T00:00:00.123Z`.
pub fn rfc3339_ms(epoch_ms: u64) -> String {
    let secs = epoch_ms / 1000;
    let ms = epoch_ms % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let year = match u64::try_from(y) {
        Ok(year) if year <= 9999 => year,
        _ => return format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z"),
    };
    // The common case without the formatting machinery (one record per SCIM write).
    let mut out = String::with_capacity(24);
    digits(&mut out, year, 4);
    out.push('-');
    digits(&mut out, u64::from(m), 2);
    out.push('-');
    digits(&mut out, u64::from(d), 2);
    out.push('T');
    digits(&mut out, hh, 2);
    out.push(':');
    digits(&mut out, mm, 2);
    out.push(':');
    digits(&mut out, ss, 2);
    out.push('.');
    digits(&mut out, ms, 3);
    out.push('Z');
    out
}

/// Appends the last `width` decimal digits of `n`, zero-padded.
fn digits(out: &mut String, n: u64, width: u32) {
    for p in (0..width).rev() {
        let digit = (n / 10u64.pow(p)) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses the subset of RFC 3339 this crate writes (and date-only `YYYY-MM-DD`) back to epoch ms.
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let date = s.get(..10)?;
    let mut parts = date.split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (yy, mm) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy.rem_euclid(400);
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let mut ms = days.checked_mul(86_400_000)?;
    if let Some(t) = s.get(11..19) {
        let mut hms = t.split(':').map(|x| x.parse::<i64>().ok());
        ms += hms.next()??.checked_mul(3_600_000)? + hms.next()?? * 60_000 + hms.next()?? * 1000;
        if let Some(frac) = s.get(20..23).and_then(|f| f.parse::<i64>().ok()) {
            ms += frac;
        }
    }
    u64::try_from(ms).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_767_225_600_123), "2026-01-01T00:00:00.123Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        for ms in [0u64, 951_782_400_000, 1_767_225_600_123, 1_798_761_599_999] {
            assert_eq!(parse_rfc3339_ms(&rfc3339_ms(ms)), Some(ms));
        }
        assert_eq!(parse_rfc3339_ms("2026-01-01"), Some(1_767_225_600_000));
    }

    #[test]
    fn same_text_as_the_formatter() {
        let reference = |ms: u64| {
            let secs = ms / 1000;
            let (y, m, d) = civil_from_days((secs / 86_400) as i64);
            let rem = secs % 86_400;
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
                rem / 3600,
                (rem % 3600) / 60,
                rem % 60,
                ms % 1000
            )
        };
        let mut ms = 0u64;
        while ms < 400_000_000_000_000 {
            assert_eq!(rfc3339_ms(ms), reference(ms));
            ms = ms * 3 + 7_654_321;
        }
        for ms in [253_402_300_799_999, 253_402_300_800_000, u64::MAX] {
            assert_eq!(rfc3339_ms(ms), reference(ms));
        }
    }
}
