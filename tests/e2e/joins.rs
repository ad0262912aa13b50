//! Joins against Kafka Streams: the hand-written cases under
//! `tests/oracle/joins/` (expected output made by `scripts/oracle`), and
//! generated cases run through both eddy and Kafka Streams, which must give
//! the same records in the same order with the same timestamps.
//!
//! `EDDY_JOIN_CASES` sets how many cases are generated per join kind
//! (default 200), `EDDY_JOIN_SEED` the first seed; a case that differs is
//! kept under the system's temporary directory with both outputs.

use crate::eddy_bin;
use eddy_e2e::root;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each line as JSON, so formatting differences do not count.
fn records(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// A pipeline doing what the oracle arguments `args` say (left input
/// topic `left`, right `right`, sink `out`, the "pair" joiner), committing
/// after every record as the topology test driver does.
pub fn pipeline(args: &str) -> String {
    let words: Vec<&str> = args.split_whitespace().collect();
    let opt = |name: &str| {
        words
            .iter()
            .position(|w| *w == name)
            .and_then(|i| words.get(i + 1).copied())
    };
    let (shape, kind) = opt("--join")
        .and_then(|j| j.split_once(':'))
        .expect("--join SHAPE:KIND");
    let cache = opt("--cache-bytes").unwrap_or("0");
    let read_as = |read: &str| format!("as = \"{read}\"\n");
    let right = match shape {
        "stream-stream" => "stream",
        "stream-globaltable" => "global-table",
        _ => "table",
    };
    let history = opt("--history")
        .map(|h| format!("history = \"{h}ms\"\n"))
        .unwrap_or_default();
    let mut p = format!(
        "application_id = \"join-case\"\n[runtime]\nbatch_size = 1\n[state]\ncache_size = \"{cache}\"\n\
         [[sources]]\ntopic = \"left\"\n{}[[sources]]\ntopic = \"right\"\n{}{history}\
         [[steps]]\nname = \"j\"\nop = \"join\"\nleft = \"left\"\nright = \"right\"\nkind = \"{kind}\"\njoiner = \"pair\"\n",
        read_as(if shape == "table-table" || shape == "foreign-key" {
            "table"
        } else {
            "stream"
        }),
        read_as(right),
    );
    if let Some(fk) = opt("--foreign-key") {
        let _ = writeln!(p, "foreign_key = \"{fk}\"");
    }
    if let Some(w) = opt("--window") {
        let part = |name: &str| {
            w.split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{name}:")))
                .expect("before, after and grace")
        };
        let _ = writeln!(
            p,
            "window = {{ before = \"{}ms\", after = \"{}ms\", grace = \"{}ms\" }}",
            part("before"),
            part("after"),
            part("grace")
        );
    }
    p.push_str("[[sinks]]\ntopic = \"out\"\n");
    p
}

/// What `eddy test` prints for `input` under the pipeline for `args`.
fn eddy(args: &str, input: &Path, dir: &Path) -> Result<String, String> {
    let spec = dir.join("pipeline.toml");
    std::fs::write(&spec, pipeline(args)).unwrap();
    let out = Command::new(eddy_bin())
        .arg("test")
        .arg(&spec)
        .arg("--input")
        .arg(input)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8(out.stdout).unwrap())
}

/// Runs Kafka Streams on each (input, args) in one JVM; the outputs.
fn oracle(cases: &[(PathBuf, String)], dir: &Path) -> Vec<Result<String, String>> {
    let mut list = String::new();
    for (i, (input, args)) in cases.iter().enumerate() {
        let _ = writeln!(
            list,
            "{}\t--input {} {args}",
            dir.join(format!("{i}.out")).display(),
            input.display()
        );
    }
    std::fs::write(dir.join("cases"), list).unwrap();
    let out = Command::new(root().join("scripts/oracle"))
        .arg("--cases")
        .arg(dir.join("cases"))
        .output()
        .expect("running scripts/oracle");
    assert!(
        out.status.success(),
        "scripts/oracle --cases failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (0..cases.len())
        .map(|i| {
            let out = dir.join(format!("{i}.out"));
            match std::fs::read_to_string(out.with_extension("out.error")) {
                Ok(e) => Err(e),
                Err(_) => Ok(std::fs::read_to_string(out).unwrap()),
            }
        })
        .collect()
}

fn golden_cases() -> Vec<(String, PathBuf, String)> {
    let mut cases: Vec<(String, PathBuf, String)> =
        std::fs::read_dir(root().join("tests/oracle/joins"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("args").is_file())
            .map(|p| {
                let args = std::fs::read_to_string(p.join("args")).unwrap();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, p, args.trim().to_string())
            })
            .collect();
    cases.sort();
    cases
}

#[test]
fn eddy_gives_every_golden_join_case() {
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let cases = golden_cases();
    assert!(cases.len() >= 40, "{} golden join cases", cases.len());
    for (name, dir, args) in &cases {
        let expected = std::fs::read_to_string(dir.join("expected.jsonl")).unwrap();
        match eddy(args, &dir.join("input.jsonl"), tmp.path()) {
            Ok(got) if records(&got) == records(&expected) => {}
            Ok(got) => failures.push(format!("{name}: got\n{got}expected\n{expected}")),
            Err(e) => failures.push(format!("{name}: eddy test failed: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn kafka_streams_still_gives_every_golden_join_case() {
    if std::env::var_os("EDDY_SKIP_ORACLE").is_some() {
        eprintln!("EDDY_SKIP_ORACLE set: not running Kafka Streams");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cases = golden_cases();
    let runs: Vec<(PathBuf, String)> = cases
        .iter()
        .map(|(_, d, a)| (d.join("input.jsonl"), a.clone()))
        .collect();
    let outs = oracle(&runs, tmp.path());
    for ((name, dir, _), out) in cases.iter().zip(outs) {
        let expected = std::fs::read_to_string(dir.join("expected.jsonl")).unwrap();
        let got = out.unwrap_or_else(|e| panic!("{name}: Kafka Streams failed: {e}"));
        assert_eq!(records(&got), records(&expected), "{name}");
    }
}

#[test]
fn a_rekeyed_stream_is_repartitioned_before_it_joins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        eddy_e2e::components::SPLIT_WORDS,
        dir.path().join("split.wasm"),
    )
    .unwrap();
    // Lines keyed by their author become words keyed by the word, joined
    // with a dictionary keyed by word.
    let spec = "application_id = \"words\"\n\
        [[sources]]\ntopic = \"lines\"\n\
        [[sources]]\ntopic = \"dictionary\"\nas = \"table\"\n\
        [[steps]]\nname = \"words\"\nfrom = \"lines\"\ncomponent = \"split.wasm\"\n\
        [[steps]]\nname = \"defined\"\nop = \"join\"\nleft = \"words\"\nright = \"dictionary\"\njoiner = \"right\"\n\
        [[sinks]]\ntopic = \"out\"\n";
    let input = r#"{"topic":"dictionary","key":"eddy","value":"a current","timestamp":1}
{"topic":"dictionary","key":"wasm","value":"a bytecode","timestamp":2}
{"topic":"lines","key":"ann","value":"Eddy runs wasm","timestamp":3}
{"topic":"lines","key":"bob","value":"no match here","timestamp":4}
"#;
    let got = eddy_e2e::eddy_test(eddy_bin(), dir.path(), spec, input);
    let pairs: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                r["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            ("eddy".to_string(), "a current".to_string()),
            ("wasm".to_string(), "a bytecode".to_string())
        ]
    );
    let described = Command::new(eddy_bin())
        .arg("describe")
        .arg(dir.path().join("pipeline.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&described.stdout);
    assert!(text.contains("words-defined-left-repartition"), "{text}");
}

#[test]
fn a_grouping_after_a_foreign_key_join_gets_its_old_results() {
    let dir = tempfile::tempdir().unwrap();
    // Orders by product category: a foreign-key join, then a count per
    // category of the joined product (KTable#leftJoin(KTable, fk) then
    // groupBy and count). A result that changes category subtracts from
    // the old one before it adds to the new one, as Kafka Streams' table
    // grouping does with the join's old values.
    let spec = "application_id = \"fk-group\"\n[runtime]\nbatch_size = 1\n[state]\ncache_size = \"0\"\n\
        [[sources]]\ntopic = \"orders\"\nas = \"table\"\n\
        [[sources]]\ntopic = \"products\"\nas = \"table\"\n\
        [[steps]]\nname = \"j\"\nop = \"join\"\nleft = \"orders\"\nright = \"products\"\nkind = \"left\"\n\
        joiner = \"merge\"\nas = \"product\"\nforeign_key = \"/p\"\n\
        [[steps]]\nname = \"g\"\nop = \"group_by\"\nfrom = \"j\"\nkey = \"/product/cat\"\n\
        [[steps]]\nname = \"c\"\nop = \"count\"\n\
        [[sinks]]\ntopic = \"out\"\nfrom = \"c\"\n";
    let input = r#"{"topic":"products","key":"p1","value":{"cat":"lamps"},"timestamp":1}
{"topic":"products","key":"p2","value":{"cat":"desks"},"timestamp":2}
{"topic":"orders","key":"o1","value":{"p":"p1"},"timestamp":3}
{"topic":"orders","key":"o2","value":{"p":"p1"},"timestamp":4}
{"topic":"orders","key":"o1","value":{"p":"p2"},"timestamp":5}
{"topic":"products","key":"p1","value":{"cat":"desks"},"timestamp":6}
{"topic":"orders","key":"o2","value":null,"timestamp":7}
"#;
    let got: Vec<(String, i64, i64)> = eddy_e2e::eddy_test(eddy_bin(), dir.path(), spec, input)
        .iter()
        .map(|r| {
            let key = r["key"].as_str().unwrap().to_string();
            (
                key,
                r["value"].as_i64().unwrap(),
                r["timestamp"].as_i64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, i64, i64)> = [
        ("lamps", 1, 3),
        ("lamps", 2, 4),
        // o1 moves to p2: out of lamps, into desks.
        ("lamps", 1, 5),
        ("desks", 1, 5),
        // p1 becomes a desk: o2, still on p1, moves (the product's time).
        ("lamps", 0, 6),
        ("desks", 2, 6),
        // o2 deleted: its result's tombstone takes it out of desks.
        ("desks", 1, 7),
    ]
    .iter()
    .map(|(k, n, ts)| (k.to_string(), *n, *ts))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn a_wasm_joiner_is_called_once_per_batch_and_a_pair_it_fails_on_is_dead_lettered_whole() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        eddy_e2e::components::ATTRIBUTE_CLICK,
        dir.path().join("attribute.wasm"),
    )
    .unwrap();
    let spec = "application_id = \"attr\"\n[runtime]\nbatch_size = 100\n\
        [[sources]]\ntopic = \"imps\"\n[[sources]]\ntopic = \"clicks\"\n\
        [[steps]]\nname = \"attribute\"\nop = \"join\"\nleft = \"imps\"\nright = \"clicks\"\n\
        component = \"attribute.wasm\"\nwindow = { difference = \"1m\" }\non_error = \"dead-letter\"\n\
        [[sinks]]\ntopic = \"out\"\n";
    let mut input = String::new();
    for i in 0..50 {
        let at = 1_000 * i;
        input.push_str(&format!(
            "{{\"topic\":\"imps\",\"key\":\"ad{i}\",\"value\":{{\"at\":{at},\"campaign\":\"c\"}},\"timestamp\":{at}}}\n"
        ));
    }
    for i in 0..50 {
        let at = 1_000 * i + 10;
        // Click 7 has no `at`: the joiner fails on that pair only.
        let value = if i == 7 {
            "{\"x\":1}".to_string()
        } else {
            format!("{{\"at\":{at}}}")
        };
        input.push_str(&format!(
            "{{\"topic\":\"clicks\",\"key\":\"ad{i}\",\"value\":{value},\"timestamp\":{at},\"headers\":[[\"h\",\"click{i}\"]]}}\n"
        ));
    }
    let out = eddy_e2e::eddy_test_run(eddy_bin(), dir.path(), spec, &input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let joined = lines.iter().filter(|l| l["topic"] == "out").count();
    assert_eq!(joined, 49);
    let dead: Vec<_> = lines
        .iter()
        .filter(|l| l["topic"] == "attr-attribute-dead-letters")
        .collect();
    assert_eq!(dead.len(), 1, "{lines:#?}");
    let d = dead[0];
    assert_eq!(d["key"], "ad7");
    assert_eq!(d["value"]["at"], 7_000, "the left value");
    let header = |name: &str| {
        d["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == name)
            .map(|h| h[1].clone())
    };
    assert_eq!(header("eddy.join.right"), Some("{\"x\":1}".into()), "{d}");
    assert_eq!(
        header("h"),
        Some("click7".into()),
        "the record's own headers"
    );

    // One batch of 50 matching clicks: one joiner call for its 50 pairs.
    let t = eddy::spec::validate_text(&dir.path().join("pipeline.toml"), spec).unwrap();
    let engine = eddy::wasm::OperatorEngine::for_topology(&t).unwrap();
    let metrics = eddy::metrics::Metrics::new();
    let ops = eddy::wasm::Chain::load(&t, &engine).unwrap();
    let mut chain = eddy::wasm::Chain::new(&ops)
        .unwrap()
        .with_metrics(metrics.clone());
    let globals = eddy::state::global::Globals::new([false, false]);
    let mut task = eddy::runtime::task::TaskPipeline::new(&t, 0, None, &globals).unwrap();
    let batch = |side: &str| {
        let mut w = eddy_batch::BatchWriter::new();
        for i in 0..50u32 {
            let at = 1_000 * i64::from(i);
            let v = format!("{{\"at\":{at},\"campaign\":\"{side}\"}}");
            w.record(i, Some(b"ad"), Some(v.as_bytes()), at, std::iter::empty());
        }
        eddy::ops::Records::new(w.into_vec(), (0..50).collect())
    };
    use eddy::topology::SubInput;
    task.process(SubInput::Source(0), &mut chain, batch("c"))
        .unwrap();
    let out = task
        .process(SubInput::Source(1), &mut chain, batch("x"))
        .unwrap();
    // Every click meets every impression within a minute of it.
    let pairs: usize = out.outputs.iter().map(|o| o.records.len()).sum();
    assert_eq!(pairs, 2_500, "all within a minute of each other");
    let calls = eddy_e2e::metric(
        &metrics.render(),
        "eddy_wasm_call_seconds_count{operator=\"attribute\"}",
    );
    assert_eq!(calls, Some(1.0), "{}", metrics.render());
}

#[path = "joins_generated.rs"]
mod generated;
