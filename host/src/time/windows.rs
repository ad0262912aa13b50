//! Window assignment for time windows (tumbling and hopping), as Kafka
//! Streams' `TimeWindows.windowsFor`: windows `[start, start + size)` with
//! starts at multiples of `advance` from the epoch; windows that would start
//! before 0 are left out, and a negative timestamp falls in none.

/// Starts of the windows containing `ts`, ascending. Total: no overflow
/// and a bounded number of windows, whatever the arguments (specs keep
/// `size / advance` small; see `MAX_WINDOWS_PER_RECORD`).
pub fn time_window_starts(ts: i64, size: i64, advance: i64) -> impl Iterator<Item = i64> {
    let advance = advance.max(1);
    let first = ts.saturating_sub(size).saturating_add(advance).max(0) / advance * advance;
    let count = if ts < first {
        0
    } else {
        (ts - first) / advance + 1
    };
    (0..count).map(move |n| first + n * advance)
}

/// The most windows a record may fall in: a hopping window whose `size /
/// advance` is larger is refused by the spec check.
pub const MAX_WINDOWS_PER_RECORD: i64 = 10_000;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, checked window by window.
    fn model(ts: i64, size: i64, advance: i64) -> Vec<i64> {
        let mut out = Vec::new();
        let mut s = 0;
        while s <= ts {
            if s <= ts && ts < s + size {
                out.push(s);
            }
            s += advance;
        }
        out
    }

    #[test]
    fn edges() {
        // Tumbling: [0,10) [10,20): 10 belongs to the second only.
        assert_eq!(time_window_starts(9, 10, 10).collect::<Vec<_>>(), vec![0]);
        assert_eq!(time_window_starts(10, 10, 10).collect::<Vec<_>>(), vec![10]);
        // Hopping 10/5 near 0: no window starting before the epoch.
        assert_eq!(time_window_starts(3, 10, 5).collect::<Vec<_>>(), vec![0]);
        assert_eq!(
            time_window_starts(12, 10, 5).collect::<Vec<_>>(),
            vec![5, 10]
        );
        assert_eq!(time_window_starts(-1, 10, 5).count(), 0);
    }

    #[test]
    fn the_edges_of_i64_neither_wrap_nor_loop() {
        let last = time_window_starts(i64::MAX, 60_000, 60_000).collect::<Vec<_>>();
        assert_eq!(last, vec![i64::MAX / 60_000 * 60_000]);
        let hopping = time_window_starts(i64::MAX, 60_000, 1_000).count();
        assert_eq!(hopping, 60);
        assert_eq!(time_window_starts(i64::MIN, 10, 5).count(), 0);
        assert_eq!(
            time_window_starts(5, i64::MAX, i64::MAX).collect::<Vec<_>>(),
            vec![0]
        );
    }

    /// Found by fuzzing (fuzz target `windows`): the spec check compared
    /// `size / advance` rounded down with the limit, so 20001ms / 2ms (10000.5,
    /// which docs/spec.md refuses) passed, and a record fell in 10,001 windows.
    #[test]
    fn a_hopping_shape_the_spec_check_accepts_stays_within_the_limit() {
        let check = |size: &str, advance: &str| {
            let spec = format!(
                "application_id = \"a\"\n[[sources]]\ntopic = \"in\"\n\
                 [[steps]]\nname = \"g\"\nop = \"group_by_key\"\n\
                 [[steps]]\nname = \"c\"\nop = \"count\"\n\
                 window = {{ kind = \"hopping\", size = \"{size}\", advance = \"{advance}\" }}\n\
                 [[sinks]]\ntopic = \"out\"\n"
            );
            crate::spec::validate_text(std::path::Path::new("p.toml"), &spec).is_ok()
        };
        assert!(
            check("20000ms", "2ms"),
            "10,000 windows per record is allowed"
        );
        assert_eq!(time_window_starts(20_000, 20_000, 2).count(), 10_000);
        let most = time_window_starts(20_002, 20_001, 2).count() as i64;
        assert!(
            !check("20001ms", "2ms") || most <= MAX_WINDOWS_PER_RECORD,
            "accepted, and a record falls in {most} windows"
        );
    }

    proptest! {
        #[test]
        fn matches_the_definition(ts in -50i64..2000, size in 1i64..60, k in 1i64..60) {
            let advance = k.min(size);
            prop_assert_eq!(time_window_starts(ts, size, advance).collect::<Vec<_>>(), model(ts, size, advance));
        }
    }
}
