//! Every example's `eddy test` output equals its expected output.

use eddy_e2e::{components, eddy_bin, root};
use std::process::Command;

fn check_example(dir: &str, component: &str) {
    check_pipeline(dir, Some(component));
}

fn check_pipeline(dir: &str, component: Option<&str>) {
    let example = root().join("examples").join(dir);
    let tmp = tempfile::tempdir().unwrap();
    // The spec names its component relative to itself: put the freshly
    // built one beside a copy of the spec.
    std::fs::copy(
        example.join("pipeline.toml"),
        tmp.path().join("pipeline.toml"),
    )
    .unwrap();
    if let Some(component) = component {
        let file = std::path::Path::new(component).file_name().unwrap();
        std::fs::copy(component, tmp.path().join(file)).unwrap();
    }
    let out = Command::new(eddy_bin())
        .args([
            "test",
            tmp.path().join("pipeline.toml").to_str().unwrap(),
            "--input",
            example.join("input.jsonl").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "eddy test failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = std::fs::read_to_string(example.join("expected.jsonl")).unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        expected,
        "output of examples/{dir}"
    );
}

#[test]
fn normalize_json_matches_expected() {
    check_example("normalize-json", components::NORMALIZE_JSON);
}

#[test]
fn filter_severity_matches_expected() {
    check_example("filter-severity", components::FILTER_SEVERITY);
}

#[test]
fn split_words_matches_expected() {
    check_example("split-words", components::SPLIT_WORDS);
}

#[test]
fn route_by_size_matches_expected() {
    check_example("route-by-size", components::ROUTE_BY_SIZE);
}

#[test]
fn word_count_matches_expected() {
    check_example("word-count", components::SPLIT_WORDS);
}

#[test]
fn clicks_per_minute_matches_expected() {
    check_pipeline("clicks-per-minute", None);
}

#[test]
fn user_sessions_matches_expected() {
    check_pipeline("user-sessions", None);
}

#[test]
fn region_balance_matches_expected() {
    check_example("region-balance", components::REGION_BALANCE);
}

#[test]
fn every_command_has_help() {
    for cmd in [
        &[][..],
        &["run"],
        &["test"],
        &["check"],
        &["describe"],
        &["build"],
    ] {
        let out = Command::new(eddy_bin())
            .args(cmd)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "eddy {cmd:?} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "eddy {cmd:?} --help prints usage"
        );
    }
}

#[test]
fn describe_shows_branches_to_both_sinks() {
    let out = Command::new(eddy_bin())
        .args([
            "describe",
            root()
                .join("examples/route-by-size/pipeline.toml")
                .to_str()
                .unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Processor: route (component: route_by_size.wasm, interface: processor)"),
        "{text}"
    );
    assert!(
        text.contains("--> SINK-0 (branch small)") && text.contains("--> SINK-1 (branch large)"),
        "{text}"
    );
    assert!(
        text.contains("Sink: SINK-1 (topic: large-payloads)"),
        "{text}"
    );
}
