//! Golden tests of grouping, aggregation and windows: each directory under
//! `tests/golden/` holds a pipeline, an input file with event times, and the
//! expected output, which Kafka Streams itself produced (`scripts/oracle`
//! with the arguments in `oracle.args`, see tests/oracle/README.md).
//!
//! `eddy test` must give the expected output record for record, and Kafka
//! Streams must still give it too (scripts/oracle fetches its jars; Java
//! runs it) — except in the `deviation-` cases, where eddy differs on
//! purpose (docs/state.md) and Kafka Streams must still differ. Each case
//! is a module of two tests named after it.

use crate::eddy_bin;

use eddy_e2e::{components, root};
use std::path::{Path, PathBuf};
use std::process::Command;

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root().join("tests/golden"))
        .expect("tests/golden")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("pipeline.toml").is_file())
        .collect();
    cases.sort();
    cases
}

/// Each line as JSON, so formatting differences do not count.
fn records(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn eddy_output(case: &Path) -> Result<String, String> {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(case.join("pipeline.toml"), tmp.path().join("pipeline.toml")).unwrap();
    std::fs::copy(components::SUM, tmp.path().join("sum.wasm")).unwrap();
    let out = Command::new(eddy_bin())
        .args([
            "test",
            tmp.path().join("pipeline.toml").to_str().unwrap(),
            "--input",
        ])
        .arg(case.join("input.jsonl"))
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8(out.stdout).unwrap())
}

fn diff(case: &Path, got: &str, expected: &str) -> Option<String> {
    let (g, e) = (records(got), records(expected));
    if g == e {
        return None;
    }
    let at = g
        .iter()
        .zip(&e)
        .position(|(a, b)| a != b)
        .unwrap_or(g.len().min(e.len()));
    Some(format!(
        "{}: {} records, expected {}; first difference at record {at}:\n  got      {}\n  expected {}",
        case.file_name().unwrap().to_string_lossy(),
        g.len(),
        e.len(),
        g.get(at).map_or("(none)".into(), ToString::to_string),
        e.get(at).map_or("(none)".into(), ToString::to_string),
    ))
}

/// One module per case, each with a test of eddy and one of Kafka Streams:
/// a failure names the case.
macro_rules! golden {
    ($($name:ident => $dir:literal,)*) => {
        /// Every case, by directory.
        const CASES: &[&str] = &[$($dir),*];
        $(
            mod $name {
                #[test]
                fn eddy() {
                    super::eddy_case($dir);
                }

                #[test]
                fn kafka_streams() {
                    super::oracle_case($dir);
                }
            }
        )*
    };
}

golden! {
    deviation_01_final_after_a_jump => "deviation-01-final-after-a-jump",
    hopping_01_update => "hopping-01-update",
    hopping_02_final => "hopping-02-final",
    hopping_03_near_epoch => "hopping-03-near-epoch",
    hopping_04_partly_late => "hopping-04-partly-late",
    hopping_05_sum_final => "hopping-05-sum-final",
    hopping_06_uneven => "hopping-06-uneven",
    kv_01_stream_count => "kv-01-stream-count",
    kv_02_stream_sum => "kv-02-stream-sum",
    kv_03_table_sum => "kv-03-table-sum",
    kv_04_table_regroup_count => "kv-04-table-regroup-count",
    kv_05_stream_group_by_field => "kv-05-stream-group-by-field",
    kv_06_timestamps => "kv-06-timestamps",
    session_01_update => "session-01-update",
    session_02_merge => "session-02-merge",
    session_03_final => "session-03-final",
    session_04_late_merge => "session-04-late-merge",
    session_05_late_dropped => "session-05-late-dropped",
    session_06_sum_merge => "session-06-sum-merge",
    session_07_inside => "session-07-inside",
    session_08_two_keys_final => "session-08-two-keys-final",
    sliding_01_update => "sliding-01-update",
    sliding_02_early => "sliding-02-early",
    sliding_03_final => "sliding-03-final",
    sliding_04_out_of_order => "sliding-04-out-of-order",
    sliding_05_late => "sliding-05-late",
    sliding_06_sum => "sliding-06-sum",
    sliding_07_same_time => "sliding-07-same-time",
    tumbling_01_update => "tumbling-01-update",
    tumbling_02_final => "tumbling-02-final",
    tumbling_03_boundaries => "tumbling-03-boundaries",
    tumbling_04_grace_out_of_order => "tumbling-04-grace-out-of-order",
    tumbling_05_late_dropped => "tumbling-05-late-dropped",
    tumbling_06_final_out_of_order => "tumbling-06-final-out-of-order",
    tumbling_07_sum => "tumbling-07-sum",
    tumbling_08_final_sum => "tumbling-08-final-sum",
    tumbling_09_null_keys => "tumbling-09-null-keys",
    tumbling_10_advance_time => "tumbling-10-advance-time",
    tumbling_11_cache_per_record => "tumbling-11-cache-per-record",
}

#[test]
fn every_case_directory_has_its_tests() {
    let dirs: Vec<String> = cases()
        .iter()
        .map(|c| c.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        dirs, CASES,
        "add each case under tests/golden to the golden! list"
    );
}

#[test]
fn there_are_at_least_thirty_cases_covering_every_window_kind() {
    let cases = cases();
    assert!(cases.len() >= 30, "{} golden cases", cases.len());
    let specs: String = cases
        .iter()
        .map(|c| std::fs::read_to_string(c.join("pipeline.toml")).unwrap())
        .collect();
    for kind in ["tumbling", "hopping", "sliding", "session"] {
        assert!(
            specs.contains(&format!("kind = \"{kind}\"")),
            "no {kind} case"
        );
    }
    assert!(specs.contains("emit = \"final\""), "no emit = final case");
}

/// `eddy test` gives the case's expected output.
fn eddy_case(dir: &str) {
    let case = root().join("tests/golden").join(dir);
    let expected = std::fs::read_to_string(case.join("expected.jsonl")).unwrap();
    match eddy_output(&case) {
        Ok(got) => {
            if let Some(d) = diff(&case, &got, &expected) {
                panic!("{d}");
            }
        }
        Err(e) => panic!("{dir}: eddy test failed: {e}"),
    }
}

/// Kafka Streams, run by `scripts/oracle` with the case's `oracle.args`,
/// gives the expected output too; for a `deviation-` case (where eddy
/// differs on purpose, docs/state.md) it gives another.
fn oracle_case(dir: &str) {
    if std::env::var_os("EDDY_SKIP_ORACLE").is_some() {
        eprintln!("EDDY_SKIP_ORACLE set: not running Kafka Streams");
        return;
    }
    let case = root().join("tests/golden").join(dir);
    let args = std::fs::read_to_string(case.join("oracle.args")).unwrap_or_else(|e| {
        panic!("{dir}: no oracle.args ({e}): every case says how Kafka Streams runs it")
    });
    let out = Command::new(root().join("scripts/oracle"))
        .arg("--input")
        .arg(case.join("input.jsonl"))
        .args(args.split_whitespace())
        .output()
        .expect("running scripts/oracle");
    assert!(
        out.status.success(),
        "{dir}: the oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = std::fs::read_to_string(case.join("expected.jsonl")).unwrap();
    let d = diff(&case, &String::from_utf8_lossy(&out.stdout), &expected);
    if dir.starts_with("deviation-") {
        assert!(
            d.is_some(),
            "{dir}: Kafka Streams now gives eddy's output; the deviation is gone, make it an ordinary case"
        );
    } else if let Some(d) = d {
        panic!("{d}");
    }
}
