//! How figures read on the pages: units written out, nothing shown by colour alone, and
//! a dash for what is not known.

use vscout_wire::datetime::format_unix_millis;

pub(super) const DASH: &str = "—";

pub(super) fn num(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}")
}

pub(super) fn opt(v: Option<f64>, decimals: usize, unit: &str) -> String {
    v.map_or(DASH.to_owned(), |v| format!("{v:.decimals$}{unit}"))
}

/// Bytes as GiB to one decimal, or a dash.
pub(super) fn gib(bytes: Option<u64>) -> String {
    bytes.map_or(DASH.to_owned(), |b| num(b as f64 / (1u64 << 30) as f64, 1))
}

/// US dollars with thousands separated: `$1,234.56`.
pub(super) fn money(v: f64) -> String {
    let cents = (v * 100.0).round() as i64;
    let (whole, frac) = (cents.abs() / 100, cents.abs() % 100);
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}${out}.{frac:02}")
}

pub(super) fn money_or(v: Option<f64>, none: &str) -> String {
    v.map_or(none.to_owned(), money)
}

/// A VM or group outside any cluster (on a standalone host) says so.
pub(super) fn cluster(name: &str) -> String {
    if name.is_empty() {
        "(standalone host)".to_owned()
    } else {
        name.to_owned()
    }
}

/// A length of history in days, in the unit that reads best (a young estate's minutes
/// are not "0.0 days").
pub(super) fn span_days(days: f64) -> String {
    let minutes = days * 1440.0;
    if minutes < 90.0 {
        format!("{minutes:.0} min")
    } else if days < 2.0 {
        format!("{:.1} h", days * 24.0)
    } else {
        format!("{days:.1} days")
    }
}

/// A Unix time as UTC, to the minute.
pub(super) fn date(unix_s: i64) -> String {
    let s = format_unix_millis(unix_s * 1000);
    s.get(..16)
        .map_or(s.clone(), |m| format!("{} UTC", m.replace('T', " ")))
}

/// How long ago, in the largest whole unit.
pub(super) fn ago(now_s: i64, unix_s: i64) -> String {
    let d = (now_s - unix_s).max(0);
    match d {
        0..=59 => format!("{d} s ago"),
        60..=3599 => format!("{} min ago", d / 60),
        3600..=172_799 => format!("{} h ago", d / 3600),
        _ => format!("{} days ago", d / 86_400),
    }
}

/// Stars as symbols and as words (a screen reader, or no font, still reads the count).
pub(super) fn stars(s: Option<u8>) -> String {
    match s {
        Some(n) => {
            let n = usize::from(n.min(5));
            format!("{}{} {n}/5", "★".repeat(n), "☆".repeat(5 - n))
        }
        None => DASH.to_owned(),
    }
}

/// A query string from pairs, empty values left out.
pub(super) fn query(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .copied()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

pub(super) fn now_s() -> i64 {
    vscout_service::telemetry::unix_now_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_with_their_units() {
        assert_eq!(money(1234.5), "$1,234.50");
        assert_eq!(money(0.0), "$0.00");
        assert_eq!(money(1_000_000.0), "$1,000,000.00");
        assert_eq!(stars(Some(3)), "★★★☆☆ 3/5");
        assert_eq!(stars(None), DASH);
        assert_eq!(opt(Some(12.345), 1, " %"), "12.3 %");
        assert_eq!(ago(1000, 940), "1 min ago");
        assert_eq!(span_days(3.0 / 1440.0), "3 min");
        assert_eq!(span_days(0.5), "12.0 h");
        assert_eq!(span_days(29.5), "29.5 days");
        assert_eq!(date(0), "1970-01-01 00:00 UTC");
        assert_eq!(query(&[("a", "x y"), ("b", "")]), "a=x+y");
    }
}
