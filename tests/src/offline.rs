//! Helpers for tests without a broker: the hostile operator in a chain,
//! `eddy test` runs, and batches of text values.

use crate::components;
use std::path::Path;
use std::process::Command;

/// A chain of one step, `hostile`, running the hostile fixture operator,
/// with `step_extra` added to the step's spec lines.
pub fn hostile_chain(step_extra: &str) -> eddy::wasm::Chain {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(components::HOSTILE, dir.path().join("hostile.wasm")).unwrap();
    let text = format!(
        "application_id = \"t\"\n[[sources]]\ntopic = \"in\"\n[[steps]]\nname = \"hostile\"\ncomponent = \"hostile.wasm\"\ninterface = \"processor\"\n{step_extra}\n[[sinks]]\ntopic = \"out\"\n"
    );
    let topo = eddy::spec::validate_text(&dir.path().join("p.toml"), &text).unwrap();
    let engine = eddy::wasm::OperatorEngine::for_topology(&topo).unwrap();
    let ops = eddy::wasm::Chain::load(&topo, &engine).unwrap();
    eddy::wasm::Chain::new(&ops).unwrap()
}

/// Runs `eddy test` on `spec` with `input` lines (written into `dir`);
/// returns the output lines, failing if the run fails.
pub fn eddy_test(bin: &Path, dir: &Path, spec: &str, input: &str) -> Vec<serde_json::Value> {
    let out = eddy_test_run(bin, dir, spec, input);
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

/// Runs `eddy test` on `spec` with `input` lines (written into `dir`), with
/// operator logs at `info`; returns the whole outcome, stderr included.
pub fn eddy_test_run(bin: &Path, dir: &Path, spec: &str, input: &str) -> std::process::Output {
    std::fs::write(dir.join("pipeline.toml"), spec).unwrap();
    std::fs::write(dir.join("input.jsonl"), input).unwrap();
    Command::new(bin)
        .arg("test")
        .arg(dir.join("pipeline.toml"))
        .arg("--input")
        .arg(dir.join("input.jsonl"))
        .env("EDDY_LOG", "info")
        .output()
        .unwrap()
}

/// A batch of records with key `k`, the given text values and timestamps
/// 0, 1, 2, ...
pub fn value_batch<S: AsRef<str>>(values: &[S]) -> Vec<u8> {
    let mut w = eddy_batch::BatchWriter::new();
    for (i, v) in values.iter().enumerate() {
        w.record(
            i as u32,
            Some(b"k"),
            Some(v.as_ref().as_bytes()),
            i as i64,
            [],
        );
    }
    w.into_vec()
}

/// The values of a batch, as text.
pub fn batch_values(batch: &[u8]) -> Vec<String> {
    eddy_batch::BatchView::new(batch)
        .unwrap()
        .iter()
        .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
        .collect()
}
