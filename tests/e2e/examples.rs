//! Every example runs exactly as its spec and the README say: its operator
//! built with `eddy build`, then `eddy test` on its input gives its
//! expected output (checked with `--expect` and byte for byte).

use crate::eddy_bin;

use eddy_e2e::root;
use std::process::Command;
use std::sync::Mutex;

/// Builds an example operator crate with `eddy build`, once per test run.
fn build(crate_dir: &str) {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if built.iter().any(|b| b == crate_dir) {
        return;
    }
    let out = Command::new(eddy_bin())
        .arg("build")
        .arg(root().join("examples").join(crate_dir))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "eddy build examples/{crate_dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    built.push(crate_dir.to_string());
}

/// Runs `examples/<dir>` as written, after building `operators`.
fn check_example(dir: &str, operators: &[&str]) {
    for op in operators {
        build(op);
    }
    let example = root().join("examples").join(dir);
    let test = |expect: bool| {
        let mut cmd = Command::new(eddy_bin());
        cmd.arg("test")
            .arg(example.join("pipeline.toml"))
            .arg("--input")
            .arg(example.join("input.jsonl"));
        if expect {
            cmd.arg("--expect").arg(example.join("expected.jsonl"));
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "eddy test examples/{dir}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let ok = test(true);
    assert!(ok.contains("as expected"), "{ok}");
    let expected = std::fs::read_to_string(example.join("expected.jsonl")).unwrap();
    assert_eq!(test(false), expected, "output of examples/{dir}");
}

#[test]
fn normalize_json_matches_expected() {
    check_example("normalize-json", &["normalize-json"]);
}

#[test]
fn filter_severity_matches_expected() {
    check_example("filter-severity", &["filter-severity"]);
}

#[test]
fn split_words_matches_expected() {
    check_example("split-words", &["split-words"]);
}

#[test]
fn route_by_size_matches_expected() {
    check_example("route-by-size", &["route-by-size"]);
}

#[test]
fn word_count_matches_expected() {
    check_example("word-count", &["split-words"]);
}

#[test]
fn clicks_per_minute_matches_expected() {
    check_example("clicks-per-minute", &[]);
}

#[test]
fn user_sessions_matches_expected() {
    check_example("user-sessions", &[]);
}

#[test]
fn region_balance_matches_expected() {
    check_example("region-balance", &["region-balance"]);
}

#[test]
fn orders_merge_branch_and_fan_out_match_expected() {
    check_example("orders", &["validate-orders"]);
}

#[test]
fn order_enrichment_stream_table_join_matches_expected() {
    check_example("order-enrichment", &[]);
}

#[test]
fn product_lookup_global_table_join_matches_expected() {
    check_example("product-lookup", &[]);
}

#[test]
fn ad_clicks_windowed_join_with_a_wasm_joiner_matches_expected() {
    check_example("ad-clicks", &["attribute-click"]);
}

#[test]
fn account_balances_table_table_join_matches_expected() {
    check_example("account-balances", &[]);
}

#[test]
fn order_products_foreign_key_join_matches_expected() {
    check_example("order-products", &[]);
}

#[test]
fn every_example_is_tested() {
    let src = std::fs::read_to_string(root().join("tests/e2e/examples.rs")).unwrap();
    for e in std::fs::read_dir(root().join("examples")).unwrap() {
        let e = e.unwrap();
        if e.path().join("pipeline.toml").is_file() {
            let name = e.file_name().into_string().unwrap();
            assert!(
                src.contains(&format!("check_example(\"{name}\"")),
                "examples/{name} has no test here"
            );
        }
    }
}

#[test]
fn expect_fails_with_a_diff_naming_the_line() {
    build("route-by-size");
    let example = root().join("examples/route-by-size");
    let tmp = tempfile::tempdir().unwrap();
    let expected = std::fs::read_to_string(example.join("expected.jsonl")).unwrap();
    let wrong = expected.replacen("\"value\":\"tiny\"", "\"value\":\"huge\"", 1);
    assert_ne!(wrong, expected);
    let file = tmp.path().join("expected.jsonl");
    std::fs::write(&file, &wrong).unwrap();
    let out = Command::new(eddy_bin())
        .arg("test")
        .arg(example.join("pipeline.toml"))
        .arg("--input")
        .arg(example.join("input.jsonl"))
        .arg("--expect")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a wrong expectation fails");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected line 1"), "{err}");
    assert!(
        err.contains("- {\"topic\":\"small-payloads\",\"key\":\"a\",\"value\":\"huge\""),
        "{err}"
    );
    assert!(
        err.contains("+ {\"topic\":\"small-payloads\",\"key\":\"a\",\"value\":\"tiny\""),
        "{err}"
    );
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
    assert!(text.contains("<-- route.large"), "{text}");
    assert!(
        text.contains("Sink: SINK-1 (topic: large-payloads)"),
        "{text}"
    );
}
