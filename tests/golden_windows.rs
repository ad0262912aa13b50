//! Golden tests of grouping, aggregation and windows: each directory under
//! `tests/golden/` holds a pipeline, an input file with event times, and the
//! expected output, which Kafka Streams itself produced (`scripts/oracle`
//! with the arguments in `oracle.args`, see tests/oracle/README.md).
//!
//! `eddy test` must give the expected output record for record; and, when
//! the oracle can run (Java and the Kafka Streams jars, which scripts/oracle
//! fetches), Kafka Streams must still give it too.

use eddy_e2e::{components, eddy_bin, root};
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

#[test]
fn eddy_gives_the_expected_output() {
    let mut failures = Vec::new();
    for case in cases() {
        let expected = std::fs::read_to_string(case.join("expected.jsonl")).unwrap();
        match eddy_output(&case) {
            Ok(got) => failures.extend(diff(&case, &got, &expected)),
            Err(e) => failures.push(format!("{}: eddy test failed: {e}", case.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn kafka_streams_gives_the_expected_output() {
    if std::env::var_os("EDDY_SKIP_ORACLE").is_some() {
        eprintln!("EDDY_SKIP_ORACLE set: not running Kafka Streams");
        return;
    }
    let mut failures = Vec::new();
    for case in cases() {
        let Ok(args) = std::fs::read_to_string(case.join("oracle.args")) else {
            continue;
        };
        let out = Command::new(root().join("scripts/oracle"))
            .arg("--input")
            .arg(case.join("input.jsonl"))
            .args(args.split_whitespace())
            .output()
            .expect("running scripts/oracle");
        if !out.status.success() {
            failures.push(format!(
                "{}: the oracle failed: {}",
                case.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let expected = std::fs::read_to_string(case.join("expected.jsonl")).unwrap();
        failures.extend(diff(
            &case,
            &String::from_utf8_lossy(&out.stdout),
            &expected,
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
