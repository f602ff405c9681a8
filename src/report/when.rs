//! Instants, durations and calendar buckets for the report. Parses only; never reads a clock.

use crate::audit::time::{parse_rfc3339_ms, rfc3339_ms};

const DAY_MS: u64 = 86_400_000;

/// Parses `2026-11-28T15:00:00.123Z`, `…+02:00`, `…T15:00:00Z` or a date `2026-11-28` (midnight UTC)
/// to epoch milliseconds. Strict about the shape, so a garbled time is an error, not a wrong date.
pub fn parse_instant(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let date_ok = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10);
    if !date_ok {
        return None;
    }
    if b.len() == 10 {
        return parse_rfc3339_ms(s);
    }
    let time_ok = matches!(b.get(10), Some(b'T' | b't' | b' '))
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19);
    if !time_ok {
        return None;
    }
    let base = parse_rfc3339_ms(&format!("{}T{}", s.get(..10)?, s.get(11..19)?))?;
    let mut rest = s.get(19..)?;
    let mut frac_ms = 0u64;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let f = frac.get(..n)?;
        frac_ms = format!("{f:0<3}").get(..3)?.parse().ok()?;
        rest = frac.get(n..)?;
    }
    let at = base + frac_ms;
    match rest {
        "Z" | "z" => Some(at),
        _ => {
            let (sign, hm) = match rest.as_bytes().first() {
                Some(b'+') => (1i64, rest.get(1..)?),
                Some(b'-') => (-1i64, rest.get(1..)?),
                _ => return None,
            };
            let (h, m) = hm.split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            let offset = (h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?) * 60_000;
            u64::try_from(i64::try_from(at).ok()? - sign * offset).ok()
        }
    }
}

/// Parses `90d`, `12h`, `30m`, `45s`, `2w` or a sum such as `1d12h` to milliseconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let mut total = 0u64;
    let mut number = String::new();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    for c in s.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'w' => 7 * DAY_MS,
            'd' => DAY_MS,
            'h' => 3_600_000,
            'm' => 60_000,
            's' => 1000,
            _ => return Err(format!("unknown unit `{c}` in `{s}` (use w, d, h, m or s)")),
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("missing number before `{c}` in `{s}`"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!(
            "missing unit after `{number}` in `{s}` (for example `90d`)"
        ));
    }
    Ok(total)
}

/// A duration for people: `90d`, `36h`, `15m`.
pub fn format_duration(ms: u64) -> String {
    if ms % DAY_MS == 0 {
        format!("{}d", ms / DAY_MS)
    } else if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else {
        format!("{}m", ms / 60_000)
    }
}

/// Days since the epoch (UTC).
pub fn day_of(ms: u64) -> u64 {
    ms / DAY_MS
}

/// `2026-11-28` for a day number.
pub fn day_label(day: u64) -> String {
    rfc3339_ms(day.saturating_mul(DAY_MS))
        .get(..10)
        .unwrap_or_default()
        .to_string()
}

/// The Monday that starts the (ISO, UTC) week holding `ms`, as a day number. 1970-01-01 was a Thursday.
pub fn week_of(ms: u64) -> u64 {
    let day = day_of(ms) + 3;
    (day / 7) * 7 - 3
}

/// Whole days in `ms`, rounded down.
pub fn whole_days(ms: u64) -> u64 {
    ms / DAY_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants() {
        assert_eq!(parse_instant("2026-01-01"), Some(1_767_225_600_000));
        assert_eq!(
            parse_instant("2026-01-01T00:00:00.123Z"),
            Some(1_767_225_600_123)
        );
        assert_eq!(
            parse_instant("2026-01-01T00:00:00.5Z"),
            Some(1_767_225_600_500)
        );
        assert_eq!(
            parse_instant("2026-01-01T02:00:00+02:00"),
            Some(1_767_225_600_000)
        );
        assert_eq!(
            parse_instant("2025-12-31T22:00:00-02:00"),
            Some(1_767_225_600_000)
        );
        for bad in [
            "",
            "2026-01-01T",
            "2026-1-01",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.Z",
            "yesterday",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90d"), Ok(90 * DAY_MS));
        assert_eq!(parse_duration("1d12h"), Ok(DAY_MS + 12 * 3_600_000));
        assert_eq!(parse_duration("2w"), Ok(14 * DAY_MS));
        assert!(parse_duration("90").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("9y").is_err());
        assert_eq!(format_duration(90 * DAY_MS), "90d");
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2026-11-28 is a Saturday; its week starts on Monday 2026-11-23.
        let sat = parse_instant("2026-11-28T15:00:00Z").unwrap_or_default();
        assert_eq!(day_label(week_of(sat)), "2026-11-23");
        let mon = parse_instant("2026-11-23T00:00:00Z").unwrap_or_default();
        assert_eq!(day_label(week_of(mon)), "2026-11-23");
    }
}
