//! Stateful topologies in `eddy test`: stream–table duality, and what
//! comes out of grouping and aggregation without a broker.

use eddy_e2e::{components, eddy_bin};
use std::path::Path;
use std::process::Command;

fn eddy_test(dir: &Path, spec: &str, input: &str) -> Vec<serde_json::Value> {
    std::fs::write(dir.join("pipeline.toml"), spec).unwrap();
    std::fs::write(dir.join("input.jsonl"), input).unwrap();
    std::fs::copy(components::SUM, dir.join("sum.wasm")).unwrap();
    let out = Command::new(eddy_bin())
        .arg("test")
        .arg(dir.join("pipeline.toml"))
        .arg("--input")
        .arg(dir.join("input.jsonl"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "eddy test failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
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
