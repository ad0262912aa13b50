//! The records file (`eddy test` input and expected output, one JSON line
//! per record): reading never panics; a time line's time is in range; a
//! record (read from the input, or any bytes as key and value) written the
//! way `eddy test` writes it reads back with the same topic, time, headers
//! and bytes (JSON objects and arrays made compact), and writing it again
//! gives the same line; `eddy test --expect` finds output equal to the
//! expected records equal.
#![no_main]

use eddy::records::expect::{diff, parse_output};
use eddy::records::jsonl::{InputLine, OwnedRecord, parse_input_line, parse_line, write_record};
use eddy::time::extract::MAX_EVENT_TIME;
use libfuzzer_sys::fuzz_target;

/// The line `eddy test` writes for `r`.
fn write(r: &OwnedRecord) -> String {
    let mut out = Vec::new();
    write_record(
        &mut out,
        &r.topic,
        r.key.as_deref(),
        r.value.as_deref(),
        r.timestamp,
        r.headers.iter().cloned(),
    )
    .expect("writing to a Vec");
    String::from_utf8(out).expect("a written line is UTF-8")
}

/// `r` written and read back: the same record, and a fixed point.
fn round_trip(r: &OwnedRecord) {
    let line = write(r);
    let back = parse_line(line.trim_end())
        .unwrap_or_else(|e| panic!("a written line does not read back: {e}\n{line}"));
    assert_eq!(back.topic, r.topic, "{line}");
    assert_eq!(back.timestamp, r.timestamp, "{line}");
    assert_eq!(back.headers, r.headers, "{line}");
    // The same bytes, but for JSON objects and arrays (written compact).
    for (b, was) in [(&back.key, &r.key), (&back.value, &r.value)] {
        match was.as_deref() {
            Some([b'{' | b'[', ..]) => assert!(b.is_some(), "{line}"),
            was => assert_eq!(b.as_deref(), was, "{line}"),
        }
    }
    assert_eq!(write(&back), line, "writing the read-back record again");
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        // As `read_input` reads a file: trimmed, blank and `#` lines skipped.
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        match parse_input_line(t) {
            Ok(InputLine::AdvanceTime(at)) => {
                assert!((0..=MAX_EVENT_TIME).contains(&at), "advance_time {at}");
            }
            Ok(InputLine::Record(r)) => {
                assert_eq!(parse_line(t).as_ref(), Ok(&r), "a record line read twice");
                records.push((i + 1, r));
            }
            Err(_) => {}
        }
    }
    for (_, r) in &records {
        round_trip(r);
    }
    // `eddy test --expect`: output equal to the expected records passes.
    let mut out = String::new();
    for (_, r) in &records {
        out.push_str(&write(r));
    }
    let got = parse_output(&out).expect("written output reads back");
    if let Some(d) = diff(&got, &records) {
        panic!("output equal to the expected records differs:\n{d}");
    }
    // Any bytes as a value: written and read back unchanged, except JSON
    // objects and arrays, which are written compact.
    let r = OwnedRecord {
        topic: "t".into(),
        key: Some(data.to_vec()),
        value: Some(data.to_vec()),
        ..OwnedRecord::default()
    };
    round_trip(&r);
});
