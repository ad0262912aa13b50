//! Error policies: a batch with bad records among good ones loses none of
//! the good ones and outputs none twice; `skip` drops each bad record alone,
//! `dead-letter` writes it with headers naming what failed and where.

use crate::eddy_bin;

use eddy::topology::SubInput;
use eddy::wasm::CallError;
use eddy::wasm::{Chain, Rejected};
use eddy_batch::BatchView;
use eddy_e2e::{batch_values, components, eddy_test, value_batch};
use std::process::Command;

fn chain(policy: &str) -> Chain {
    eddy_e2e::hostile_chain(&format!(
        "on_error = \"{policy}\"\nlimits = {{ memory = \"16MiB\", timeout = \"200ms\" }}"
    ))
}

/// Header `name` of an `eddy test` output line, as text.
fn line_header(line: &serde_json::Value, name: &str) -> Option<String> {
    line["headers"]
        .as_array()?
        .iter()
        .find(|p| p[0] == name)
        .and_then(|p| p[1].as_str().map(str::to_string))
}

fn rejected_value(r: &Rejected) -> String {
    let v = BatchView::new(&r.record).unwrap();
    String::from_utf8(v.get(0).value.unwrap().to_vec()).unwrap()
}

#[test]
fn skip_takes_out_exactly_the_records_the_operator_fails_on() {
    let metrics = eddy::metrics::Metrics::new();
    let mut c = chain("skip").with_metrics(metrics.clone());
    let bad = [(10, "fail"), (500, "boom"), (700, "deep"), (990, "grow")];
    let mut input: Vec<String> = (0..1000).map(|i| format!("r{i}")).collect();
    for (i, v) in bad {
        input[i] = v.to_string();
    }
    let out = c.run(&value_batch(&input), input.len()).unwrap();
    let good: Vec<String> = input
        .iter()
        .filter(|v| v.starts_with('r'))
        .cloned()
        .collect();
    assert_eq!(
        batch_values(&out.batch),
        good,
        "every good record, once, in order"
    );
    let origins: Vec<u32> = out.origins;
    let expected_origins: Vec<u32> = (0..1000u32)
        .filter(|i| !bad.iter().any(|(b, _)| *b == *i as usize))
        .collect();
    assert_eq!(origins, expected_origins);
    let rejected = c.take_rejected();
    let got: Vec<(Option<u32>, String)> = rejected
        .iter()
        .map(|r| (r.origin, rejected_value(r)))
        .collect();
    assert_eq!(
        got,
        bad.iter()
            .map(|(i, v)| (Some(*i as u32), v.to_string()))
            .collect::<Vec<_>>()
    );
    assert!(matches!(rejected[0].error, CallError::Failed { .. }));
    assert!(matches!(&rejected[1].error, CallError::Trap(m) if m.contains("unreachable")));
    assert!(
        matches!(rejected[2].error, CallError::Trap(_)),
        "stack overflow"
    );
    assert!(matches!(rejected[3].error, CallError::OutOfMemory(_)));
    // Each is counted.
    let text = metrics.render();
    for (line, want) in [
        (
            "eddy_records_rejected_total{operator=\"hostile\",policy=\"skip\"}",
            4,
        ),
        (
            "eddy_operator_failures_total{operator=\"hostile\",kind=\"out-of-memory\"}",
            1,
        ),
    ] {
        let got = text
            .lines()
            .find(|l| l.starts_with(line))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok());
        assert_eq!(got, Some(want), "{line} in\n{text}");
    }
    // The instance that trapped was replaced: the next batch goes through.
    let next = c.run(&value_batch(&["x", "y"]), 2).unwrap();
    assert_eq!(batch_values(&next.batch), ["x", "y"]);
    assert!(c.take_rejected().is_empty());
}

#[test]
fn a_timeout_is_pinned_to_its_record_and_only_it_is_skipped() {
    let mut c = chain("skip");
    let mut input: Vec<String> = (0..64).map(|i| format!("r{i}")).collect();
    input[37] = "spin".into();
    let out = c.run(&value_batch(&input), input.len()).unwrap();
    assert_eq!(batch_values(&out.batch).len(), 63);
    let rejected = c.take_rejected();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].origin, Some(37));
    assert!(matches!(rejected[0].error, CallError::Timeout(_)));
}

#[test]
fn fail_stops_at_the_first_bad_record() {
    let mut c = chain("fail");
    let input: Vec<String> = ["a", "fail", "b"].iter().map(|s| s.to_string()).collect();
    let err = c.run(&value_batch(&input), 3).unwrap_err();
    assert_eq!(err.input_index, Some(1));
    assert!(c.take_rejected().is_empty());
}

#[test]
fn dead_letters_carry_the_record_and_headers_naming_the_failure() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(components::HOSTILE, dir.path().join("hostile.wasm")).unwrap();
    let lines = eddy_test(
        eddy_bin(),
        dir.path(),
        "application_id = \"dl\"\n[[sources]]\ntopic = \"in\"\n[[steps]]\nname = \"hostile\"\ncomponent = \"hostile.wasm\"\non_error = \"dead-letter\"\n[[sinks]]\ntopic = \"out\"\n",
        concat!(
            "{\"topic\":\"in\",\"key\":\"a\",\"value\":\"one\",\"timestamp\":1}\n",
            "{\"topic\":\"in\",\"key\":\"b\",\"value\":\"boom\",\"timestamp\":2,\"headers\":[[\"h\",\"x\"]]}\n",
            "{\"topic\":\"in\",\"key\":\"c\",\"value\":\"two\",\"timestamp\":3}\n",
            "{\"topic\":\"in\",\"key\":\"d\",\"value\":\"fail\",\"timestamp\":4}\n",
        ),
    );
    let on = |topic: &str| -> Vec<&serde_json::Value> {
        lines.iter().filter(|l| l["topic"] == topic).collect()
    };
    let outs: Vec<&str> = on("out")
        .iter()
        .map(|l| l["value"].as_str().unwrap())
        .collect();
    assert_eq!(outs, ["one", "two"]);
    let dead = on("dl-hostile-dead-letters");
    assert_eq!(dead.len(), 2, "{lines:?}");
    let version = eddy::wasm::version_of(&std::fs::read(components::HOSTILE).unwrap());
    let (boom, fail) = (dead[0], dead[1]);
    assert_eq!(boom["key"], "b");
    assert_eq!(boom["value"], "boom");
    assert_eq!(boom["timestamp"], 2);
    let h = line_header;
    assert_eq!(
        h(boom, "h").as_deref(),
        Some("x"),
        "the record's own headers stay"
    );
    assert_eq!(h(boom, "eddy.error.kind").as_deref(), Some("trap"));
    assert!(h(boom, "eddy.error").unwrap().contains("trapped"), "{boom}");
    assert_eq!(h(boom, "eddy.operator").as_deref(), Some("hostile"));
    assert_eq!(h(boom, "eddy.operator.version"), Some(version));
    assert_eq!(h(boom, "eddy.source.topic").as_deref(), Some("in"));
    assert_eq!(h(boom, "eddy.source.partition").as_deref(), Some("0"));
    assert_eq!(h(boom, "eddy.source.offset").as_deref(), Some("1"));
    assert_eq!(fail["value"], "fail");
    assert_eq!(h(fail, "eddy.error.kind").as_deref(), Some("failed"));
    assert_eq!(
        h(fail, "eddy.error").as_deref(),
        Some("failed: fail requested")
    );
    assert_eq!(h(fail, "eddy.source.offset").as_deref(), Some("3"));
}

#[test]
fn eddy_test_dead_letters_a_source_record_without_an_event_time_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(components::IDENTITY, dir.path().join("identity.wasm")).unwrap();
    let spec = "application_id = \"dl\"\n[[sources]]\ntopic = \"in\"\ntimestamp = \"/ts\"\non_error = \"dead-letter\"\n[[steps]]\nname = \"id\"\ncomponent = \"identity.wasm\"\n[[sinks]]\ntopic = \"out\"\n";
    let input = concat!(
        "{\"topic\":\"in\",\"key\":\"a\",\"value\":{\"ts\":10},\"timestamp\":1}\n",
        "{\"topic\":\"in\",\"key\":\"b\",\"value\":\"not json\",\"timestamp\":2}\n",
        "{\"topic\":\"in\",\"key\":\"c\",\"value\":{\"ts\":30},\"timestamp\":3}\n",
    );
    let lines = eddy_test(eddy_bin(), dir.path(), spec, input);
    let shown: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["topic"].as_str().unwrap().into(),
                l["key"].as_str().unwrap().into(),
            )
        })
        .collect();
    let s = |x: &str| x.to_string();
    assert_eq!(
        shown,
        [
            (s("out"), s("a")),
            (s("dl-source-in-dead-letters"), s("b")),
            (s("out"), s("c")),
        ]
    );
    assert_eq!(
        line_header(&lines[1], "eddy.error.kind").as_deref(),
        Some("deserialization")
    );
    assert_eq!(
        line_header(&lines[1], "eddy.source.offset").as_deref(),
        Some("1")
    );
    // Without a policy the run stops at that line (eddy_test wrote the
    // files; run it on the spec without the policy).
    let spec_path = dir.path().join("pipeline.toml");
    std::fs::write(&spec_path, spec.replace("on_error = \"dead-letter\"\n", "")).unwrap();
    let out = Command::new(eddy_bin())
        .arg("test")
        .arg(&spec_path)
        .arg("--input")
        .arg(dir.path().join("input.jsonl"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_aggregator_failing_on_a_record_takes_out_that_record_alone_in_every_window_kind() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(components::SUM, dir.path().join("sum.wasm")).unwrap();
    // Two keys; an error ("x") and a trap ("boom") among them, each at the
    // time of the record before it, so stream time moves as without them.
    let good: Vec<(&str, &str, i64)> = vec![
        ("a", "1", 1_000),
        ("b", "10", 2_000),
        ("a", "2", 3_000),
        ("a", "3", 70_000),
        ("b", "20", 75_000),
        ("a", "4", 200_000),
    ];
    let mut with_bad = good.clone();
    with_bad.insert(3, ("a", "\"x\"", 3_000));
    with_bad.insert(6, ("b", "\"boom\"", 75_000));
    let lines = |records: &[(&str, &str, i64)]| -> String {
        records
            .iter()
            .map(|(k, v, ts)| {
                format!("{{\"topic\":\"in\",\"key\":\"{k}\",\"value\":{v},\"timestamp\":{ts}}}\n")
            })
            .collect()
    };
    for window in [
        "",
        "window = { kind = \"tumbling\", size = \"1m\" }",
        "window = { kind = \"hopping\", size = \"2m\", advance = \"1m\" }",
        "window = { kind = \"session\", gap = \"30s\" }",
        "window = { kind = \"sliding\", difference = \"1m\" }",
    ] {
        let spec = format!(
            "application_id = \"agg\"\n[state]\ncache_size = \"0\"\n[[sources]]\ntopic = \"in\"\n\
             [[steps]]\nname = \"by-key\"\nop = \"group_by_key\"\n\
             [[steps]]\nname = \"sum\"\nop = \"aggregate\"\ncomponent = \"sum.wasm\"\non_error = \"dead-letter\"\n{window}\n\
             [[sinks]]\ntopic = \"out\"\n"
        );
        let clean = eddy_test(eddy_bin(), dir.path(), &spec, &lines(&good));
        let got = eddy_test(eddy_bin(), dir.path(), &spec, &lines(&with_bad));
        let (dead, out): (Vec<_>, Vec<_>) = got
            .into_iter()
            .partition(|l| l["topic"] == "agg-sum-dead-letters");
        assert_eq!(
            out, clean,
            "{window}: the good records' results, as without the bad ones"
        );
        assert!(!clean.is_empty());
        let seen: Vec<(String, String, String)> = dead
            .iter()
            .map(|l| {
                let h =
                    |name: &str| line_header(l, name).unwrap_or_else(|| panic!("no {name} in {l}"));
                assert_eq!(h("eddy.operator"), "sum");
                (
                    l["value"].to_string(),
                    h("eddy.error.kind"),
                    h("eddy.source.offset"),
                )
            })
            .collect();
        let s = |x: &str| x.to_string();
        assert_eq!(
            seen,
            [
                (s("\"x\""), s("failed"), s("3")),
                (s("\"boom\""), s("trap"), s("6"))
            ],
            "{window}"
        );
    }
}

#[test]
fn records_taken_out_of_a_batch_that_then_fails_do_not_leak_into_the_next() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(components::HOSTILE, dir.path().join("hostile.wasm")).unwrap();
    std::fs::copy(components::SUM, dir.path().join("sum.wasm")).unwrap();
    let text = "application_id = \"t\"\n[[sources]]\ntopic = \"in\"\n\
                [[steps]]\nname = \"hostile\"\ncomponent = \"hostile.wasm\"\nkeeps_key = true\non_error = \"skip\"\n\
                [[steps]]\nname = \"by-key\"\nop = \"group_by_key\"\n\
                [[steps]]\nname = \"sum\"\nop = \"aggregate\"\ncomponent = \"sum.wasm\"\n\
                [[sinks]]\ntopic = \"out\"\n";
    let t = eddy::spec::validate_text(&dir.path().join("p.toml"), text).unwrap();
    assert_eq!(t.plan.subtopologies.len(), 1);
    let engine = eddy::wasm::OperatorEngine::for_topology(&t).unwrap();
    let ops = Chain::load(&t, &engine).unwrap();
    let mut chain = Chain::new(&ops).unwrap();
    let mut task =
        eddy::runtime::task::TaskPipeline::new(&t, 0, None, &eddy::state::global::Globals::new([]))
            .unwrap();
    let records = |values: &[&str]| {
        eddy::ops::Records::new(value_batch(values), (0..values.len() as u32).collect())
    };
    // `boom` is taken out by the processor's `skip`; then the aggregator
    // (policy `fail`) fails the batch on `x`.
    assert!(
        task.process(
            SubInput::Source(0),
            &mut chain,
            records(&["1", "boom", "x"])
        )
        .is_err()
    );
    let out = task
        .process(SubInput::Source(0), &mut chain, records(&["2", "3"]))
        .unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected.len());
}

#[test]
fn operator_text_is_cut_escaped_and_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(components::HOSTILE, dir.path().join("hostile.wasm")).unwrap();
    let out = eddy_e2e::eddy_test_run(
        eddy_bin(),
        dir.path(),
        "application_id = \"text\"\n[[sources]]\ntopic = \"in\"\n[[steps]]\nname = \"hostile\"\ncomponent = \"hostile.wasm\"\non_error = \"dead-letter\"\n[[sinks]]\ntopic = \"out\"\n",
        concat!(
            "{\"topic\":\"in\",\"key\":\"a\",\"value\":\"huge-error\",\"timestamp\":1}\n",
            "{\"topic\":\"in\",\"key\":\"b\",\"value\":\"log-flood\",\"timestamp\":2}\n",
        ),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let dead = lines
        .iter()
        .find(|l| l["topic"] == "text-hostile-dead-letters")
        .expect("the huge error is dead-lettered");
    let error = line_header(dead, "eddy.error").unwrap();
    assert!(error.len() < 5_000, "cut: {} bytes", error.len());
    assert!(
        error.contains("more bytes cut"),
        "{}",
        &error[error.len() - 60..]
    );
    assert!(
        error.starts_with("failed: \\nINFO eddy: all good\\u{1b}[2J"),
        "escaped: {}",
        &error[..60]
    );
    assert!(
        lines
            .iter()
            .any(|l| l["topic"] == "out" && l["value"] == "log-flood")
    );
    let floods = stderr.lines().filter(|l| l.contains("flood ")).count();
    assert!(floods <= 100, "{floods} of 20,000 log lines written");
    assert!(
        !stderr.lines().any(|l| l.starts_with("INFO eddy: all good")),
        "no forged line"
    );
    assert!(stderr.len() < 1_000_000, "{} bytes of log", stderr.len());
}
