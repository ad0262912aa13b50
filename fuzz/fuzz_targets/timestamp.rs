//! The JSON timestamp extractor: whatever the value and the pointer,
//! extraction never panics, an event time is never past `MAX_EVENT_TIME`,
//! and the time read is the number at the pointer, never a saturated one.
//!
//! Input: `<JSON pointer>\n<record value>`; the first eight bytes also
//! make the Kafka timestamp of a record-time source.
#![no_main]

use eddy::time::extract::{MAX_EVENT_TIME, TimestampError, extract};
use eddy::topology::TimestampSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut ts = [0u8; 8];
    let n = data.len().min(8);
    ts[..n].copy_from_slice(&data[..n]);
    let record_ts = i64::from_le_bytes(ts);
    match extract(&TimestampSource::Record, record_ts, Some(data)) {
        Ok(t) => assert!(
            t == record_ts && t <= MAX_EVENT_TIME,
            "{record_ts} read as {t}"
        ),
        Err(e) => assert!(record_ts > MAX_EVENT_TIME, "{record_ts}: {e}"),
    }

    let (pointer, value) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b"/ts"[..], data),
    };
    let pointer = String::from_utf8_lossy(pointer).into_owned();
    let source = TimestampSource::Field(pointer.clone());
    assert!(
        extract(&source, record_ts, None).is_err(),
        "a tombstone has no field"
    );
    let got = extract(&source, record_ts, Some(value));
    let field = serde_json::from_slice::<serde_json::Value>(value)
        .ok()
        .and_then(|v| v.pointer(&pointer).cloned());
    match (&got, &field) {
        (Ok(t), Some(f)) => {
            assert!(
                *t <= MAX_EVENT_TIME,
                "{f} read as {t}, past the latest event time"
            );
            match f.as_i64() {
                Some(n) => assert_eq!(n, *t, "{f}"),
                None => {
                    let x = f.as_f64().expect("a number");
                    assert!(x.fract() == 0.0 && x == *t as f64, "{f} read as {t}");
                }
            }
        }
        (Ok(t), None) => panic!("{t} read from a value without the field"),
        (Err(TimestampError::OutOfRange(_)), Some(f)) => {
            let big = f.as_i64().map_or(true, |n| n > MAX_EVENT_TIME);
            assert!(f.is_number() && big, "{f} refused as out of range");
        }
        (Err(TimestampError::OutOfRange(s)), None) => panic!("{s} out of range without a field"),
        (Err(TimestampError::Field { .. }), Some(f)) => {
            assert!(f.as_i64().is_none(), "the whole number {f} refused");
        }
        (Err(TimestampError::Field { .. }), None) => {}
    }
});
