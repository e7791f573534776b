//! The pack codec: any windows come back bit for bit, and a day of a real series' windows
//! is small.

use proptest::prelude::*;
use vscout_wire::batch::StatsRow;

use super::{decode, encode, Window};

const DAY: i64 = 1_796_083_200;

/// Windows as the agent makes them: 15 integer samples (or hundredths of a percent),
/// their exact statistics and the mean it divides.
fn agent_window(start: i64, samples: &mut [f64]) -> Window {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    let rank = |p: f64| samples[((p / 100.0 * n as f64).ceil() as usize).max(1) - 1];
    Window {
        start,
        secs: 300,
        expected: 15,
        missing: 15 - n as u32,
        stats: (n > 0).then(|| {
            StatsRow(
                n as u32,
                samples[0],
                samples[n - 1],
                samples.iter().sum::<f64>() / n as f64,
                rank(50.0),
                rank(95.0),
                rank(99.0),
            )
        }),
    }
}

fn same(a: &[Window], b: &[Window]) -> bool {
    let bits = |w: &Window| {
        (
            w.start,
            w.secs,
            w.expected,
            w.missing,
            w.stats
                .map(|s| (s.0, [s.1, s.2, s.3, s.4, s.5, s.6].map(f64::to_bits))),
        )
    };
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| bits(x) == bits(y))
}

/// A day of a busy VM's CPU in hundredths of a percent, 10 % of windows short of
/// samples and one without any.
fn a_day(percent: bool) -> Vec<Window> {
    let mut seed = 7u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as i64
    };
    (0..288)
        .map(|i| {
            let n = if i == 100 {
                0
            } else if i % 10 == 0 {
                12
            } else {
                15
            };
            let base = 2_000
                + 1_500 * ((i as f64 / 288.0 * std::f64::consts::TAU).sin() * 100.0) as i64 / 100;
            let mut samples: Vec<f64> = (0..n)
                .map(|_| {
                    let raw = base + next() % 400;
                    if percent {
                        raw as f64 / 100.0
                    } else {
                        raw as f64
                    }
                })
                .collect();
            agent_window(DAY + i * 300, &mut samples)
        })
        .collect()
}

#[test]
fn a_day_of_windows_comes_back_bit_for_bit_and_small() {
    for percent in [false, true] {
        let day = a_day(percent);
        let packed = encode(DAY, &day);
        assert!(same(&decode(DAY, &packed).expect("decode"), &day));
        // 288 rows of 12 columns were about 15 KB in SQLite.
        assert!(
            packed.len() < 288 * 12,
            "{} bytes for a day (percent: {percent})",
            packed.len()
        );
    }
}

#[test]
fn nothing_and_odd_values_come_back() {
    assert!(decode(DAY, &encode(DAY, &[])).expect("empty").is_empty());
    let odd = [
        f64::NAN,
        -0.0,
        f64::INFINITY,
        f64::MIN_POSITIVE,
        1e300,
        -2.5e-7,
    ];
    let windows: Vec<Window> = odd
        .iter()
        .enumerate()
        .map(|(i, v)| Window {
            start: DAY + i as i64 * 20,
            secs: 20,
            expected: 1,
            missing: 0,
            stats: Some(StatsRow(i as u32, *v, *v, *v, *v, *v, *v)),
        })
        .collect();
    assert!(same(
        &decode(DAY, &encode(DAY, &windows)).expect("odd"),
        &windows
    ));
}

#[test]
fn a_damaged_pack_is_an_error_not_a_panic() {
    let packed = encode(DAY, &a_day(true));
    for cut in [0, 1, packed.len() / 2, packed.len() - 1] {
        assert!(decode(DAY, &packed[..cut]).is_err(), "cut at {cut}");
    }
    let mut raw = vec![0, 9];
    raw.extend([1, 2, 3]);
    let e = decode(DAY, &raw).expect_err("version 9");
    assert!(e.to_string().contains("version 9"), "{e}");
}

fn any_window() -> impl Strategy<Value = Window> {
    let stats = prop::option::of((
        any::<u32>(),
        prop::array::uniform6(prop_oneof![
            any::<f64>(),
            (-100_000i64..100_000).prop_map(|i| i as f64 / 100.0),
            (0i64..1 << 40).prop_map(|i| i as f64),
        ]),
    ))
    .prop_map(|s| s.map(|(c, v)| StatsRow(c, v[0], v[1], v[2], v[3], v[4], v[5])));
    (
        0i64..86_400,
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        stats,
    )
        .prop_map(|(start, secs, expected, missing, stats)| Window {
            start: DAY + start,
            secs,
            expected,
            missing,
            stats,
        })
}

proptest! {
    #[test]
    fn any_windows_come_back(mut windows in prop::collection::vec(any_window(), 0..60)) {
        windows.sort_by_key(|w| w.start);
        let packed = encode(DAY, &windows);
        prop_assert!(same(&decode(DAY, &packed).expect("decode"), &windows));
    }
}
