//! Bad specs, bad components and bad input files give errors that name the
//! file, the line, the key or the operator, and what to do.

use crate::eddy_bin;

use eddy_e2e::components;
use std::process::Command;

fn eddy(args: &[&str]) -> (bool, String) {
    let out = Command::new(eddy_bin()).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn spec_with(dir: &std::path::Path, step: &str, component: &str) -> String {
    std::fs::copy(component, dir.join("op.wasm")).unwrap();
    let text = format!(
        "application_id = \"bad\"\n\n[[sources]]\ntopic = \"in\"\n\n[[steps]]\nname = \"op\"\ncomponent = \"op.wasm\"\n{step}\n\n[[sinks]]\ntopic = \"out\"\n"
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = spec_with(
        dir.path(),
        "interface = \"processor\"\nsetings = { a = 1 }",
        components::IDENTITY,
    );
    let (ok, err) = eddy(&["check", &path]);
    assert!(!ok);
    assert!(
        err.contains("pipeline.toml:10:") && err.contains("unknown field `setings`"),
        "{err}"
    );
}

#[test]
fn every_problem_is_listed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let text = "application_id = \"bad id!\"\n[kafka]\n\"group.id\" = \"x\"\n[[sources]]\ntopic = \"in\"\n[[steps]]\nname = \"s\"\ncomponent = \"missing.wasm\"\ninterface = \"mapper\"\n[[sinks]]\ntopic = \"in\"\n";
    std::fs::write(dir.path().join("p.toml"), text).unwrap();
    let (ok, err) = eddy(&["check", dir.path().join("p.toml").to_str().unwrap()]);
    assert!(!ok);
    for needle in [
        "p.toml:1: `application_id`",
        "p.toml:3: `kafka.\"group.id\"`: eddy sets this itself",
        "p.toml:8: `steps[0].component`: no file at",
        "eddy build",
        "p.toml:9: `steps[0].interface`: unknown interface \"mapper\"",
        "p.toml:11: `sinks[0].topic`: a sink may not write to a source topic",
        "5 problem(s)",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

#[test]
fn a_component_without_the_interface_is_refused_with_what_it_exports() {
    let dir = tempfile::tempdir().unwrap();
    let path = spec_with(dir.path(), "interface = \"processor\"", components::SUM);
    let (ok, err) = eddy(&["check", &path]);
    assert!(!ok);
    assert!(
        err.contains("operator `op`")
            && err.contains("does not export `eddy:operator/processor@0.1.0#process`"),
        "{err}"
    );
    assert!(
        err.contains("eddy:operator/aggregator@0.1.0"),
        "says what it does export: {err}"
    );
}

#[test]
fn files_that_are_not_components_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text_file = dir.path().join("notes.txt");
    std::fs::write(&text_file, "hello").unwrap();
    let path = spec_with(
        dir.path(),
        "interface = \"processor\"",
        text_file.to_str().unwrap(),
    );
    let (ok, err) = eddy(&["check", &path]);
    assert!(
        !ok && err.contains("is not a WebAssembly component") && err.contains("magic bytes"),
        "{err}"
    );

    // A core module: the Wasm magic with version 1.
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let path = spec_with(
        dir.path(),
        "interface = \"processor\"",
        core.to_str().unwrap(),
    );
    let (ok, err) = eddy(&["check", &path]);
    assert!(
        !ok && err.contains("core Wasm module") && err.contains("wasm32-wasip2"),
        "{err}"
    );

    // A truncated component.
    let bytes = std::fs::read(components::IDENTITY).unwrap();
    let cut = dir.path().join("cut.wasm");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let path = spec_with(
        dir.path(),
        "interface = \"processor\"",
        cut.to_str().unwrap(),
    );
    let (ok, err) = eddy(&["check", &path]);
    assert!(
        !ok && err.contains("is not a WebAssembly component"),
        "{err}"
    );
}

#[test]
fn a_failing_init_is_reported_with_the_operator_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = spec_with(
        dir.path(),
        "interface = \"processor\"\nsettings = { fail_init = true }",
        components::HOSTILE,
    );
    let (ok, err) = eddy(&["check", &path]);
    assert!(
        !ok && err.contains("operator `op`: init failed: invalid settings: fail_init is set"),
        "{err}"
    );
}

#[test]
fn bad_input_records_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = spec_with(
        dir.path(),
        "interface = \"processor\"",
        components::IDENTITY,
    );
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"topic\":\"in\",\"value\":\"a\"}\n\n{\"topic\":\"in\",\"valeu\":\"b\"}\n",
    )
    .unwrap();
    let (ok, err) = eddy(&["test", &path, "--input", input.to_str().unwrap()]);
    assert!(
        !ok && err.contains("in.jsonl:3: unknown field `valeu`"),
        "{err}"
    );
    std::fs::write(&input, "{\"topic\":\"elsewhere\",\"value\":\"a\"}\n").unwrap();
    let (ok, err) = eddy(&["test", &path, "--input", input.to_str().unwrap()]);
    assert!(
        !ok && err.contains("not a source of this pipeline"),
        "{err}"
    );
}

#[test]
fn run_without_a_broker_fails_with_bounded_retries() {
    let dir = tempfile::tempdir().unwrap();
    let path = spec_with(
        dir.path(),
        "interface = \"processor\"",
        components::IDENTITY,
    );
    let mut text = std::fs::read_to_string(&path).unwrap();
    // Port 9 (discard) on loopback: nothing listens there.
    text = text.replace(
        "[[sources]]",
        "[kafka]\n\"bootstrap.servers\" = \"127.0.0.1:9\"\n\n[[sources]]",
    );
    std::fs::write(&path, text).unwrap();
    let start = std::time::Instant::now();
    let (ok, err) = eddy(&["run", &path]);
    assert!(
        !ok && err.contains("cannot reach Kafka at 127.0.0.1:9 after 5 attempts"),
        "{err}"
    );
    assert!(
        start.elapsed() < std::time::Duration::from_secs(90),
        "gave up in bounded time"
    );
}

#[test]
fn eddy_test_reads_pattern_and_list_sources_and_names_a_topic_neither_reads() {
    let dir = tempfile::tempdir().unwrap();
    let spec = "application_id = \"p\"\n\
                [[sources]]\nname = \"clicks\"\npattern = \"clicks-[a-z]+\"\n\
                [[sources]]\nname = \"orders\"\ntopics = [\"o1\", \"o2\"]\n\
                [[sinks]]\ntopic = \"out\"\n";
    let input = "{\"topic\":\"clicks-eu\",\"value\":\"a\",\"timestamp\":1}\n\
                 {\"topic\":\"o2\",\"value\":\"b\",\"timestamp\":2}\n\
                 {\"topic\":\"clicks-us\",\"value\":\"c\",\"timestamp\":3}\n";
    let values = eddy_e2e::eddy_test(eddy_bin(), dir.path(), spec, input);
    let got: Vec<(&str, &str)> = values
        .iter()
        .map(|v| (v["topic"].as_str().unwrap(), v["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [("out", "a"), ("out", "b"), ("out", "c")],
        "merged in input order"
    );

    let file = dir.path().join("input.jsonl");
    std::fs::write(&file, "{\"topic\":\"clicks-EU\",\"value\":\"x\"}\n").unwrap();
    let spec = dir.path().join("pipeline.toml");
    let (ok, err) = eddy(&[
        "test",
        spec.to_str().unwrap(),
        "--input",
        file.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("input line 1 (topic \"clicks-EU\"): not a source of this pipeline")
            && err.contains("topics matching \"clicks-[a-z]+\"; o1, o2"),
        "{err}"
    );
}

#[test]
fn check_refuses_what_run_would_refuse_and_run_refuses_it_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("state-file");
    std::fs::write(&blocker, "a file where the state dir goes").unwrap();
    let text = format!(
        "application_id = \"bad-kafka\"\n[kafka]\n\"bootstrap.servers\" = \"127.0.0.1:1\"\n\"no.such.property\" = \"1\"\n\
         [[sources]]\ntopic = \"in\"\n[[steps]]\nname = \"g\"\nop = \"group_by_key\"\n\
         [[steps]]\nname = \"n\"\nop = \"count\"\n[[sinks]]\ntopic = \"out\"\n\
         [state]\ndir = {:?}\n",
        blocker.join("stores").display().to_string()
    );
    let spec = dir.path().join("pipeline.toml");
    std::fs::write(&spec, text).unwrap();
    let spec = spec.to_str().unwrap();
    let (ok, err) = eddy(&["check", spec]);
    assert!(!ok, "{err}");
    assert!(err.contains("no.such.property"), "{err}");
    assert!(
        err.contains("state.dir") && err.contains("is a file"),
        "{err}"
    );
    let (ok, err) = eddy(&["run", spec]);
    assert!(!ok && err.contains("no.such.property"), "{err}");
    assert!(
        !err.contains("cannot reach Kafka"),
        "refused before trying the (absent) broker: {err}"
    );
}

#[test]
fn a_signal_stops_eddy_while_it_is_still_trying_to_reach_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("pipeline.toml");
    std::fs::write(
        &spec,
        "application_id = \"early-stop\"\n[kafka]\n\"bootstrap.servers\" = \"127.0.0.1:9\"\n\
         [[sources]]\ntopic = \"in\"\n[[sinks]]\ntopic = \"out\"\n",
    )
    .unwrap();
    let eddy = eddy_e2e::Eddy::start(eddy_bin(), &["run", spec.to_str().unwrap()]);
    eddy.wait_for_log(
        "not answering (attempt 1/",
        std::time::Duration::from_secs(60),
    );
    let log = eddy.log.clone();
    assert!(eddy.stop(), "a clean stop");
    eddy_e2e::wait_until(
        std::time::Duration::from_secs(10),
        "the stop logged",
        || (log.lock().unwrap().iter()).any(|l| l.contains("stopped while connecting to Kafka")),
    );
    let log = log.lock().unwrap().join("\n");
    assert!(
        !log.contains("attempt 5/"),
        "did not go through every attempt: {log}"
    );
}
