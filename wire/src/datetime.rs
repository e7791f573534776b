//! `xsd:dateTime` as vCenter writes it (`2026-11-21T23:53:27.123456Z`, or with an offset)
//! to Unix seconds; enough for clock-skew checks without a date library.

/// Parses an `xsd:dateTime` into seconds since the Unix epoch (UTC).
pub fn parse_unix_secs(text: &str) -> Option<i64> {
    parse_unix_millis(text).map(|ms| ms.div_euclid(1000))
}

/// Parses an `xsd:dateTime` into milliseconds since the Unix epoch (UTC); fractions below
/// a millisecond are dropped.
pub fn parse_unix_millis(text: &str) -> Option<i64> {
    let t = text.trim();
    let (date, rest) = t.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    let (clock, offset_secs) = if let Some(c) = rest.strip_suffix('Z') {
        (c, 0)
    } else if let Some(pos) = rest.rfind(['+', '-']) {
        let (c, off) = rest.split_at(pos);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        (
            c,
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
        )
    } else {
        (rest, 0)
    };
    let mut c = clock.splitn(3, ':');
    let h: i64 = c.next()?.parse().ok()?;
    let m: i64 = c.next()?.parse().ok()?;
    let sec_text = c.next()?;
    let (whole, frac) = sec_text.split_once('.').unwrap_or((sec_text, ""));
    let s: i64 = whole.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s - offset_secs;
    Some(secs * 1000 + ms)
}

/// Formats milliseconds since the epoch as an `xsd:dateTime` in UTC with milliseconds.
pub fn format_unix_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// The proleptic Gregorian date of a day number (inverse of `days_from_civil`).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vcenter_times() {
        assert_eq!(parse_unix_secs("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_unix_secs("2026-11-21T23:53:27.123456Z"),
            Some(1_795_305_207)
        );
        assert_eq!(
            parse_unix_secs("2026-11-22T00:53:27+01:00"),
            Some(1_795_305_207)
        );
        assert_eq!(parse_unix_secs("garbage"), None);
        assert_eq!(
            parse_unix_millis("2026-11-21T23:53:27.123456789Z"),
            Some(1_795_305_207_123)
        );
        assert_eq!(
            parse_unix_millis("2026-11-21T23:53:27.1Z"),
            Some(1_795_305_207_100)
        );
    }

    #[test]
    fn formats_and_parses_back() {
        for ms in [0, 1_795_305_207_123, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(
                parse_unix_millis(&format_unix_millis(ms)),
                Some(ms),
                "{}",
                format_unix_millis(ms)
            );
        }
        assert_eq!(
            format_unix_millis(1_795_305_207_123),
            "2026-11-21T23:53:27.123Z"
        );
    }
}
