//! Stateful topologies in `eddy test`: stream–table duality, and what
//! comes out of grouping and aggregation without a broker.

use crate::eddy_bin;

use eddy_e2e::components;
use std::path::Path;

fn eddy_test(dir: &Path, spec: &str, input: &str) -> Vec<serde_json::Value> {
    std::fs::copy(components::SUM, dir.join("sum.wasm")).unwrap();
    eddy_e2e::eddy_test(eddy_bin(), dir, spec, input)
}

fn sum_spec(read_as: &str) -> String {
    format!(
        r#"application_id = "sums"

[[sources]]
topic = "in"
as = "{read_as}"

[[steps]]
name = "by-key"
op = "group_by_key"

[[steps]]
name = "sum"
op = "aggregate"
component = "sum.wasm"

[[sinks]]
topic = "out"

[state]
cache_size = "0"
"#
    )
}

const K1: &str = r#"{"topic":"in","key":"k1","value":"2","timestamp":1}
{"topic":"in","key":"k1","value":"5","timestamp":2}
"#;

#[test]
fn summed_as_a_stream_gives_7_as_a_table_gives_5() {
    let dir = tempfile::tempdir().unwrap();
    let stream = eddy_test(dir.path(), &sum_spec("stream"), K1);
    let values: Vec<f64> = stream
        .iter()
        .map(|r| r["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, vec![2.0, 7.0]);
    let table = eddy_test(dir.path(), &sum_spec("table"), K1);
    let values: Vec<f64> = table.iter().map(|r| r["value"].as_f64().unwrap()).collect();
    assert_eq!(values, vec![2.0, 5.0]);
    assert!(
        table
            .iter()
            .all(|r| r["key"] == "k1" && r["topic"] == "out")
    );
}

#[test]
fn with_the_cache_on_a_batch_collapses_to_the_last_result_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let spec = sum_spec("stream").replace("cache_size = \"0\"", "cache_size = \"1MiB\"");
    let out = eddy_test(dir.path(), &spec, K1);
    let values: Vec<f64> = out.iter().map(|r| r["value"].as_f64().unwrap()).collect();
    assert_eq!(
        values,
        vec![7.0],
        "one batch, one commit: the last sum only"
    );
    // One record per batch: a commit after each, as TopologyTestDriver.
    let spec = spec.replace("[[sinks]]", "[runtime]\nbatch_size = 1\n\n[[sinks]]");
    let out = eddy_test(dir.path(), &spec, K1);
    assert_eq!(out.len(), 2);
}

#[test]
fn a_processor_after_an_aggregation_reads_its_changes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(components::IDENTITY, dir.path().join("identity.wasm")).unwrap();
    let spec = sum_spec("stream").replace(
        "[[sinks]]",
        "[[steps]]\nname = \"after\"\ncomponent = \"identity.wasm\"\nsettings = { mode = \"upper\" }\n\n[[sinks]]",
    );
    let out = eddy_test(dir.path(), &spec, K1);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1]["value"].as_f64(), Some(7.0));
}

#[test]
fn group_by_with_an_operator_and_reduce() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(components::SPLIT_WORDS, dir.path().join("split_words.wasm")).unwrap();
    // The operator's outputs carry the new keys (the words); the counts are
    // per word.
    let spec = r#"application_id = "by-word"

[[sources]]
topic = "in"

[[steps]]
name = "by-word"
op = "group_by"
component = "split_words.wasm"

[[steps]]
name = "count"
op = "count"

[[sinks]]
topic = "out"

[state]
cache_size = "0"
"#;
    let out = eddy_test(
        dir.path(),
        spec,
        "{\"topic\":\"in\",\"key\":\"s1\",\"value\":\"b a b\",\"timestamp\":5}\n",
    );
    let got: Vec<(String, i64)> = out
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                r["value"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, vec![("b".into(), 1), ("a".into(), 1), ("b".into(), 2)]);

    // Reduce: the first value of a key is its aggregate, later values are
    // added with the aggregator's adder.
    let spec = sum_spec("stream").replace("op = \"aggregate\"", "op = \"reduce\"");
    let input = "{\"topic\":\"in\",\"key\":\"k\",\"value\":\"10\",\"timestamp\":1}\n{\"topic\":\"in\",\"key\":\"k\",\"value\":\"5\",\"timestamp\":2}\n";
    let out = eddy_test(dir.path(), &spec, input);
    let values: Vec<String> = out.iter().map(|r| r["value"].to_string()).collect();
    assert_eq!(
        values,
        vec!["10", "15.0"],
        "the first value as it came, then sums"
    );
}

#[test]
fn skipped_and_late_records_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let spec = r#"application_id = "late"

[[sources]]
topic = "in"

[[steps]]
name = "g"
op = "group_by_key"

[[steps]]
name = "c"
op = "count"
window = { kind = "tumbling", size = "10s" }

[[sinks]]
topic = "out"
"#;
    let out = eddy_e2e::eddy_test_run(
        eddy_bin(),
        dir.path(),
        spec,
        "{\"topic\":\"in\",\"key\":\"a\",\"value\":\"x\",\"timestamp\":20000}\n{\"topic\":\"in\",\"key\":\"a\",\"value\":\"x\",\"timestamp\":1000}\n{\"topic\":\"in\",\"value\":\"no key\",\"timestamp\":20001}\n",
    );
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 late record(s) dropped"), "{err}");
    assert!(err.contains("1 record(s) without a key skipped"), "{err}");
}

/// A keyed count of the `/ts` event times of `values` (all of key `a`),
/// with `source` and `window` added to its source and count: the output
/// as (value, timestamp).
fn counted(name: &str, source: &str, window: &str, values: &[&str]) -> Vec<(String, i64)> {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!(
        "application_id = \"{name}\"\n[[sources]]\ntopic = \"in\"\ntimestamp = \"/ts\"\n{source}\n\
         [[steps]]\nname = \"g\"\nop = \"group_by_key\"\n\
         [[steps]]\nname = \"c\"\nop = \"count\"\n{window}\n\
         [[sinks]]\ntopic = \"out\"\n[state]\ncache_size = \"0\"\n"
    );
    let input: Vec<String> = (values.iter())
        .map(|v| serde_json::json!({"topic": "in", "key": "a", "value": v}).to_string())
        .collect();
    let out = eddy_test(dir.path(), &spec, &input.join("\n"));
    (out.iter())
        .map(|r| (r["value"].to_string(), r["timestamp"].as_i64().unwrap()))
        .collect()
}

fn count(v: &str, ts: i64) -> (String, i64) {
    (v.to_string(), ts)
}

#[test]
fn records_with_a_negative_event_time_are_skipped_at_the_source_as_on_kafka() {
    let values = [r#"{"ts":5}"#, r#"{"ts":-3}"#, r#"{"ts":7}"#];
    assert_eq!(
        counted("neg", "", "", &values),
        [count("1", 5), count("2", 7)],
        "the record at -3 is not counted"
    );
}

#[test]
fn event_times_out_of_range_are_unreadable_records_and_windows_go_on() {
    let values = [
        r#"{"ts":1000}"#,
        r#"{"ts":1e30}"#,
        r#"{"ts":9223372036854775807}"#,
        r#"{"ts":2000}"#,
    ];
    let window = "window = { kind = \"hopping\", size = \"10s\", advance = \"5s\" }";
    assert_eq!(
        counted("far", "on_error = \"skip\"", window, &values),
        [count("1", 1000), count("2", 2000)],
        "the two records out of range skipped, the window counting on"
    );
}
