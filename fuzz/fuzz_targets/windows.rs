//! Window assignment and window keys. For every window shape the spec
//! check accepts (tumbling, or hopping with `advance <= size` and
//! `size / advance` at most `MAX_WINDOWS_PER_RECORD`; durations from 1 ms
//! to `MAX_DURATION`) and any timestamp: the windows of a record are
//! exactly those that contain it, ascending, at most
//! `MAX_WINDOWS_PER_RECORD`, and for event times (0 to `MAX_EVENT_TIME`)
//! a window's end and close time do not overflow. Window store keys, time
//! index keys and result keys read back as written, in the documented order.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use eddy::ops::windows::windowed_key;
use eddy::state::keys;
use eddy::time::extract::MAX_EVENT_TIME;
use eddy::time::windows::{MAX_WINDOWS_PER_RECORD, time_window_starts};
use eddy::units::MAX_DURATION;
use libfuzzer_sys::fuzz_target;

/// A tumbling or hopping shape, as `[steps.window]` gives it (ms).
fn shape(u: &mut Unstructured<'_>) -> arbitrary::Result<Option<(i64, i64, i64)>> {
    let max = MAX_DURATION.as_millis() as i64;
    let size = u.int_in_range(1..=max)?;
    let advance = match u.int_in_range(0u8..=3)? {
        0 => size,
        1 => u.int_in_range(1..=size)?,
        2 => (size / u.int_in_range(1..=MAX_WINDOWS_PER_RECORD)?).max(1),
        // At the edge of the most windows per record.
        _ => (size / (MAX_WINDOWS_PER_RECORD + u.int_in_range(-1..=1)?)).max(1),
    };
    let grace = u.int_in_range(0..=max)?;
    // The spec check's rule (host/src/spec/validate/window.rs).
    let most = (size + advance - 1) / advance;
    let accepted = advance <= size && most <= MAX_WINDOWS_PER_RECORD;
    Ok(accepted.then_some((size, advance, grace)))
}

fn assignment(ts: i64, size: i64, advance: i64, grace: i64) {
    let starts: Vec<i64> = time_window_starts(ts, size, advance)
        .take(MAX_WINDOWS_PER_RECORD as usize + 1)
        .collect();
    let shape = format!("ts {ts}, size {size}, advance {advance}");
    assert!(
        starts.len() as i64 <= MAX_WINDOWS_PER_RECORD,
        "more than {MAX_WINDOWS_PER_RECORD} windows: {shape}"
    );
    // The windows [s, s + size) with s >= 0 a multiple of advance holding ts.
    let (t, z, a) = (i128::from(ts), i128::from(size), i128::from(advance));
    let lo = (t - z + 1).max(0);
    let expected = if t < lo {
        0
    } else {
        t.div_euclid(a) - (lo + a - 1).div_euclid(a) + 1
    };
    assert_eq!(starts.len() as i128, expected, "{shape}");
    for (k, &s) in starts.iter().enumerate() {
        assert!(s >= 0 && s % advance == 0, "start {s}: {shape}");
        assert!(
            s <= ts && t < i128::from(s) + z,
            "[{s}, +{size}) misses {shape}"
        );
        if k > 0 {
            assert_eq!(s - starts[k - 1], advance, "{shape}");
        }
        if (0..=MAX_EVENT_TIME).contains(&ts) {
            s.checked_add(size).expect("a window's end");
            ts.checked_sub(grace).expect("a close time");
            ts.checked_add(size).expect("a window's reach");
        }
    }
}

fn window_keys(key: &[u8], a: (i64, i64), b: (i64, i64)) {
    let k = keys::window_key(key, a.0, a.1);
    assert_eq!(keys::split_window_key(&k), Some((key, a.0, a.1)));
    assert!(k.starts_with(&keys::key_prefix(key)));
    assert!(k >= keys::window_key_from(key, a.0));
    let kb = keys::window_key(key, b.0, b.1);
    assert_eq!(k.cmp(&kb), a.cmp(&b), "a key's windows in start, end order");
    let t = keys::time_key(key, a.0, a.1);
    assert_eq!(keys::split_time_key(&t), Some((key, a.0, a.1)));
    assert!(t >= keys::time_key_from(a.1));
    let tb = keys::time_key(key, b.0, b.1);
    assert_eq!(
        t.cmp(&tb),
        (a.1, a.0).cmp(&(b.1, b.0)),
        "time keys in end, start order"
    );
    let stored = keys::encode_value(a.0, key);
    assert_eq!(keys::decode_value(&stored), Some((a.0, key)));

    let shown = windowed_key(key, a.0, a.1);
    let v: serde_json::Value = serde_json::from_slice(&shown).expect("a result key is JSON");
    assert_eq!(v["start"], a.0, "{v}");
    assert_eq!(v["end"], a.1, "{v}");
    match std::str::from_utf8(key) {
        Ok(text) => assert_eq!(v["key"], text, "{v}"),
        Err(_) => assert!(v["key_base64"].is_string(), "{v}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(ts) = i64::arbitrary(&mut u) else {
        return;
    };
    if let Ok(Some((size, advance, grace))) = shape(&mut u) {
        assignment(ts, size, advance, grace);
        assignment(ts.clamp(0, MAX_EVENT_TIME), size, advance, grace);
    }
    let (Ok(a), Ok(b)) = (
        <(i64, i64)>::arbitrary(&mut u),
        <(i64, i64)>::arbitrary(&mut u),
    ) else {
        return;
    };
    window_keys(u.take_rest(), a, b);
});
