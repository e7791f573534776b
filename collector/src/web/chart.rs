//! Charts drawn on the server as SVG: a line per statistic over time, at most one point
//! per horizontal pixel (a bucket keeps its largest value, so a peak is never averaged
//! away), axes labelled with units and dates; lines differ by dash as well as colour.

use std::fmt::Write;

const W: f64 = 720.0;
const H: f64 = 200.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 24.0;
/// Lines of at most this many points get a mark at each.
const MARKED: usize = 60;

/// One line: its legend, its CSS class (colour and dash), and `(unix seconds, value)`
/// points in time order.
#[derive(Debug)]
pub(super) struct Line {
    pub label: &'static str,
    pub class: &'static str,
    pub points: Vec<(i64, f64)>,
}

/// At most `buckets` points: each bucket of time keeps its largest value.
pub(super) fn thin(points: &[(i64, f64)], from: i64, to: i64, buckets: usize) -> Vec<(i64, f64)> {
    if points.len() <= buckets || to <= from {
        return points.to_vec();
    }
    let span = (to - from) as f64;
    let mut out: Vec<(i64, f64)> = Vec::with_capacity(buckets);
    let mut current: Option<(usize, i64, f64)> = None;
    for &(t, v) in points {
        let b = (((t - from) as f64 / span) * buckets as f64) as usize;
        match current {
            Some((cb, _, cv)) if cb == b => {
                if v > cv {
                    current = Some((b, t, v));
                }
            }
            _ => {
                if let Some((_, ct, cv)) = current {
                    out.push((ct, cv));
                }
                current = Some((b, t, v));
            }
        }
    }
    if let Some((_, ct, cv)) = current {
        out.push((ct, cv));
    }
    out
}

/// A round upper bound for the axis: 1, 2 or 5 times a power of ten.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * p)
}

fn label(v: f64) -> String {
    if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The SVG of `lines` over `[from, to]` (Unix seconds), the y axis in `unit`.
pub(super) fn svg(title: &str, unit: &str, lines: &[Line], from: i64, to: i64) -> String {
    let top = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let y_max = if unit == "%" {
        100f64.max(nice_max(top))
    } else {
        nice_max(top)
    };
    let span = (to - from).max(1) as f64;
    let x = |t: i64| LEFT + (t - from) as f64 / span * (W - LEFT - RIGHT);
    let y = |v: f64| TOP + (1.0 - v / y_max) * (H - TOP - BOTTOM);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{title} ({unit})"><title>{title} ({unit})</title>"#
    );
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let yy = y(v);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            W - RIGHT,
            LEFT - 4.0,
            yy + 4.0,
            label(v)
        );
    }
    let days = (to - from) as f64 / 86_400.0;
    for i in 0..=4 {
        let t = from + ((to - from) as f64 * f64::from(i) / 4.0) as i64;
        let stamp = vscout_wire::datetime::format_unix_millis(t * 1000);
        let text = if days > 2.0 {
            &stamp[5..10]
        } else {
            &stamp[11..16]
        };
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            s,
            r#"<text class="tick" x="{:.1}" y="{}" text-anchor="{anchor}">{text}</text>"#,
            x(t),
            H - 6.0
        );
    }
    for l in lines {
        let mut pts = String::with_capacity(l.points.len() * 12);
        for (t, v) in &l.points {
            let _ = write!(pts, "{:.1},{:.1} ", x(*t), y(*v));
            // Few points are marked too: a line of one point draws nothing, and sparse
            // ones read better as marks (filled for p95, hollow for the maximum).
            if l.points.len() <= MARKED {
                let _ = write!(
                    s,
                    r#"<circle class="{}" cx="{:.1}" cy="{:.1}" r="3"/>"#,
                    l.class,
                    x(*t),
                    y(*v)
                );
            }
        }
        let _ = write!(
            s,
            r#"<polyline class="{}" data-label="{}" data-points="{}" points="{}"/>"#,
            l.class,
            l.label,
            l.points.len(),
            pts.trim_end()
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_every_peak_and_at_most_a_point_per_bucket() {
        let pts: Vec<(i64, f64)> = (0..8640).map(|i| (i * 300, (i % 97) as f64)).collect();
        let out = thin(&pts, 0, 8640 * 300, 600);
        assert!(out.len() <= 601, "{}", out.len());
        assert_eq!(out.iter().map(|p| p.1).fold(0.0, f64::max), 96.0);
        let few = thin(&pts[..10], 0, 3000, 600);
        assert_eq!(few.len(), 10);
    }

    #[test]
    fn the_axis_is_round_and_the_lines_counted() {
        assert_eq!(nice_max(73.0), 100.0);
        assert_eq!(nice_max(0.3), 0.5);
        let svg = svg(
            "CPU",
            "%",
            &[Line {
                label: "p95",
                class: "p95",
                points: vec![(0, 10.0), (300, 20.0)],
            }],
            0,
            300,
        );
        assert!(svg.contains(r#"data-points="2""#), "{svg}");
        assert!(svg.contains("<title>CPU (%)</title>"));
    }
}
