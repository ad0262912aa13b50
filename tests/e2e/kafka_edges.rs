//! Error policies at the edges of a pipeline, on a real broker: source
//! records whose event time cannot be read (`[[sources]] on_error`) and
//! sink records the client refuses (`[[sinks]] on_error`). Only the bad
//! records are taken out; every other record comes through once, the dead
//! letters say what and where, offsets commit to the end, and the metrics
//! count them.

use crate::eddy_bin;

use eddy_e2e::{
    Got, Topics, committed, components, consume, get_text, header, kafka_spec, metric, produce,
    start_with_admin, total_records, unique, wait_until,
};
use std::time::Duration;

const BASE: i64 = 1_764_000_000_000;
const N: usize = 400;

/// Record `i`: JSON with its event time, but unreadable text every 50th,
/// and a value too large for the producer (`message.max.bytes = 4096`)
/// every 40th.
fn value(i: usize) -> Vec<u8> {
    if i % 50 == 7 {
        return format!("garbage-{i}").into_bytes();
    }
    let pad = if i % 40 == 3 { 6000 } else { 10 };
    format!(
        r#"{{"ts":{},"n":{i},"pad":"{}"}}"#,
        BASE + i as i64,
        "x".repeat(pad)
    )
    .into_bytes()
}

fn unreadable(i: usize) -> bool {
    i % 50 == 7
}

fn too_large(i: usize) -> bool {
    !unreadable(i) && i % 40 == 3
}

/// Runs the identity operator from a 2-partition source (record `i` in
/// partition `i % 2`) to a sink, with the given source and sink settings;
/// returns the sink's records, the dead letters, and the metrics text.
fn run(
    source_extra: &str,
    sink_extra: &str,
    dead: &str,
    dead_count: usize,
) -> (Vec<Got>, Vec<Got>, String, String) {
    let topics = Topics::create(&[("edges-in", 2), ("edges-out", 1), (dead, 1)]);
    let (input, output, dead) = (&topics.names[0], &topics.names[1], &topics.names[2]);
    let values: Vec<Vec<u8>> = (0..N).map(value).collect();
    produce(
        input,
        values.iter().enumerate().map(|(i, v)| {
            (
                Some((i % 2) as i32),
                Some(&b"k"[..]),
                Some(&v[..]),
                BASE,
                &[][..],
            )
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let app = unique("edges");
    let spec = kafka_spec(
        dir.path(),
        &app,
        input,
        "identity",
        components::IDENTITY,
        "",
        &format!(
            "[[sinks]]\ntopic = \"{output}\"\n{}",
            sink_extra.replace("DEAD", dead)
        ),
    );
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace(
            &format!("topic = \"{input}\""),
            &format!(
                "topic = \"{input}\"\ntimestamp = \"/ts\"\n{}",
                source_extra.replace("DEAD", dead)
            ),
        )
        .replace("[runtime]", "\"message.max.bytes\" = 4096\n\n[runtime]");
    std::fs::write(&spec, text).unwrap();
    let (eddy, addr) = start_with_admin(eddy_bin(), spec.to_str().unwrap());
    let good = (0..N).filter(|i| !unreadable(*i) && !too_large(*i)).count();
    wait_until(
        Duration::from_secs(90),
        "offsets committed to the end",
        || committed(&app, input, 2) == [Some(N as i64 / 2), Some(N as i64 / 2)],
    );
    let got = consume(output, 1, good, Duration::from_secs(60));
    let letters = consume(dead, 1, dead_count, Duration::from_secs(60));
    let metrics = get_text(&addr, "/metrics").1;
    assert!(eddy.stop());
    assert_eq!(
        total_records(output, 1),
        good as i64,
        "nothing more in the sink"
    );
    assert_eq!(
        total_records(dead, 1),
        dead_count as i64,
        "nothing more dead-lettered"
    );
    (got, letters, metrics, input.clone())
}

/// The `n` of each sink record, in the order of each partition.
fn numbers(got: &[Got]) -> Vec<usize> {
    let mut n: Vec<usize> = got
        .iter()
        .map(|g| {
            let v: serde_json::Value = serde_json::from_slice(g.value.as_ref().unwrap()).unwrap();
            v["n"].as_u64().unwrap() as usize
        })
        .collect();
    n.sort_unstable();
    n
}

fn good() -> Vec<usize> {
    (0..N)
        .filter(|i| !unreadable(*i) && !too_large(*i))
        .collect()
}

#[test]
fn unreadable_event_times_are_dead_lettered_and_refused_outputs_skipped() {
    let bad: Vec<usize> = (0..N).filter(|i| unreadable(*i)).collect();
    let large = (0..N).filter(|i| too_large(*i)).count();
    let (got, letters, metrics, input) = run(
        "on_error = \"dead-letter\"\ndead_letter_topic = \"DEAD\"",
        "on_error = \"skip\"",
        "edges-src-dead",
        bad.len(),
    );
    assert_eq!(numbers(&got), good(), "every good record once");
    let mut seen: Vec<(String, String, String)> = letters
        .iter()
        .map(|g| {
            assert_eq!(header(g, "eddy.error.kind"), "deserialization");
            assert_eq!(header(g, "eddy.source.topic"), input);
            assert!(
                header(g, "eddy.error").contains("no event time"),
                "{:?}",
                g.headers
            );
            assert_eq!(g.key.as_deref(), Some(&b"k"[..]));
            (
                String::from_utf8(g.value.clone().unwrap()).unwrap(),
                header(g, "eddy.source.partition"),
                header(g, "eddy.source.offset"),
            )
        })
        .collect();
    seen.sort();
    let mut want: Vec<(String, String, String)> = bad
        .iter()
        .map(|i| {
            (
                format!("garbage-{i}"),
                (i % 2).to_string(),
                (i / 2).to_string(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(seen, want);
    let count = |m: &str| metric(&metrics, m).unwrap_or_else(|| panic!("no {m} in\n{metrics}"));
    assert_eq!(
        count(&format!(
            "eddy_records_unreadable_total{{topic=\"{input}\",policy=\"dead-letter\"}}"
        )),
        bad.len() as f64
    );
    assert_eq!(
        count("eddy_records_unwritable_total{topic=\"edges-out"),
        large as f64
    );
}

#[test]
fn unreadable_event_times_are_skipped_and_refused_outputs_dead_lettered() {
    let large: Vec<usize> = (0..N).filter(|i| too_large(*i)).collect();
    let (got, letters, metrics, input) = run(
        "on_error = \"skip\"",
        "on_error = \"dead-letter\"\ndead_letter_topic = \"DEAD\"",
        "edges-sink-dead",
        large.len(),
    );
    assert_eq!(numbers(&got), good(), "every good record once");
    let mut seen: Vec<(String, String, String)> = letters
        .iter()
        .map(|g| {
            assert_eq!(header(g, "eddy.error.kind"), "production");
            assert!(header(g, "eddy.sink.topic").starts_with("edges-out"));
            assert_eq!(header(g, "eddy.source.topic"), input);
            assert!(g.value.is_none(), "a too-large value is left out");
            assert_eq!(g.key.as_deref(), Some(&b"k"[..]));
            (
                header(g, "eddy.value.size"),
                header(g, "eddy.source.partition"),
                header(g, "eddy.source.offset"),
            )
        })
        .collect();
    seen.sort();
    let mut want: Vec<(String, String, String)> = large
        .iter()
        .map(|i| {
            (
                value(*i).len().to_string(),
                (i % 2).to_string(),
                (i / 2).to_string(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(seen, want);
    let count = |m: &str| metric(&metrics, m).unwrap_or_else(|| panic!("no {m} in\n{metrics}"));
    assert_eq!(
        count(&format!(
            "eddy_records_unreadable_total{{topic=\"{input}\",policy=\"skip\"}}"
        )),
        (0..N).filter(|i| unreadable(*i)).count() as f64
    );
    assert_eq!(
        count("eddy_records_unwritable_total{topic=\"edges-out"),
        large.len() as f64
    );
}

#[test]
fn eddy_produce_fails_loudly_naming_the_records_it_could_not_produce() {
    let topics = Topics::create(&[("produce-lossy", 1)]);
    let topic = &topics.names[0];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("records.jsonl");
    // The middle record is larger than the producer takes (1,000,000 bytes).
    let big = "x".repeat(2 << 20);
    let lines = [
        format!(r#"{{"topic":"{topic}","key":"a","value":"one","timestamp":{BASE}}}"#),
        format!(r#"{{"topic":"{topic}","key":"b","value":"{big}","timestamp":{BASE}}}"#),
        format!(r#"{{"topic":"{topic}","key":"c","value":"three","timestamp":{BASE}}}"#),
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = std::process::Command::new(eddy_bin())
        .arg("produce")
        .arg("--input")
        .arg(&file)
        .args(["--bootstrap", &eddy_e2e::bootstrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a lost record is a failure: {stderr}"
    );
    assert!(
        stderr.contains("1 of 3 record(s) not produced (2 acknowledged)")
            && stderr.contains("record 2:"),
        "{stderr}"
    );
    let got = consume(topic, 1, 2, Duration::from_secs(30));
    let values: Vec<&[u8]> = got.iter().map(|g| g.value.as_deref().unwrap()).collect();
    assert_eq!(values, [&b"one"[..], b"three"], "the others went through");
}
