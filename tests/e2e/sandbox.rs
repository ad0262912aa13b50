//! A trap, a timeout and an out-of-memory in an operator fail the batch with
//! an error naming the operator and the record, and the host (this test
//! process) carries on: the chain re-instantiates the operator and the next
//! batch goes through.

use eddy::spec;
use eddy::wasm::CallError;
use eddy::wasm::Chain;
use eddy_e2e::{batch_values, value_batch};
use std::time::{Duration, Instant};

fn chain(extra: &str) -> Chain {
    eddy_e2e::hostile_chain(extra)
}

#[test]
fn a_trap_names_the_operator_and_record_and_the_chain_recovers() {
    let mut c = chain("");
    let err = c
        .run(&value_batch(&["a", "b", "boom", "c"]), 4)
        .unwrap_err();
    assert_eq!(err.step, "hostile");
    assert_eq!(err.input_index, Some(2));
    assert!(
        matches!(&err.error, CallError::Trap(m) if m.contains("unreachable")),
        "{err}"
    );
    let ok = c.run(&value_batch(&["d", "e"]), 2).unwrap();
    assert_eq!(batch_values(&ok.batch), ["d", "e"]);
}

#[test]
fn an_endless_loop_times_out_at_the_limit() {
    let mut c = chain("limits = { timeout = \"200ms\" }");
    let start = Instant::now();
    let err = c.run(&value_batch(&["a", "spin"]), 2).unwrap_err();
    assert_eq!(err.error, CallError::Timeout(Duration::from_millis(200)));
    assert_eq!(err.input_index, Some(1));
    // The first call and the replay of the record each run into the limit.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(
        batch_values(&c.run(&value_batch(&["f"]), 1).unwrap().batch),
        ["f"]
    );
}

#[test]
fn growing_memory_without_bound_hits_the_memory_limit() {
    let mut c = chain("limits = { memory = \"16MiB\" }");
    let err = c.run(&value_batch(&["grow"]), 1).unwrap_err();
    assert_eq!(err.error, CallError::OutOfMemory(16 << 20));
    assert_eq!(err.input_index, Some(0));
    assert_eq!(
        batch_values(&c.run(&value_batch(&["g"]), 1).unwrap().batch),
        ["g"]
    );
}

#[test]
fn too_many_or_too_large_outputs_for_one_record_break_the_steps_limits() {
    // Under `fail`: the error names the record; the default limits hold
    // 20,000 copies back (10,000 per input) but let 2 MiB through (8 MiB).
    let mut c = chain("");
    let err = c.run(&value_batch(&["a", "fan-out"]), 2).unwrap_err();
    assert_eq!(err.input_index, Some(1));
    assert!(
        matches!(&err.error, CallError::OutputLimit(m) if m.contains("more than 10000 records")),
        "{err}"
    );
    let big = c.run(&value_batch(&["huge-record"]), 1).unwrap();
    assert_eq!(batch_values(&big.batch)[0].len(), 2 << 20);

    // Under `skip`: exactly the records that break them go, the rest stay.
    let mut c =
        chain("on_error = \"skip\"\nlimits = { outputs_per_record = 3, record_size = \"1MiB\" }");
    let out = c
        .run(&value_batch(&["a", "fan-out", "b", "huge-record", "c"]), 5)
        .unwrap();
    assert_eq!(batch_values(&out.batch), ["a", "b", "c"]);
    assert_eq!(out.origins, [0, 2, 4]);
    let rejected = c.take_rejected();
    let why: Vec<(Option<u32>, String)> = rejected
        .iter()
        .map(|r| (r.origin, r.error.to_string()))
        .collect();
    assert_eq!(why.len(), 2, "{why:?}");
    assert_eq!(why[0].0, Some(1));
    assert!(why[0].1.contains("more than 3 records"), "{why:?}");
    assert_eq!(why[1].0, Some(3));
    assert!(
        why[1].1.contains("limits.record_size is 1048576 bytes"),
        "{why:?}"
    );
    assert_eq!(rejected[0].error.kind(), "output-limit");
}

fn probe(extra: &str) -> serde_json::Value {
    let mut c = chain(extra);
    let out = c.run(&value_batch(&["probe"]), 1).unwrap();
    serde_json::from_str(&batch_values(&out.batch)[0]).unwrap()
}

#[test]
fn without_grants_the_operator_sees_no_clock_env_files_or_network() {
    let seen = probe("");
    assert_eq!(
        seen,
        serde_json::json!({ "clock": 0, "env": 0, "data": -1, "root": false, "net": false })
    );
}

#[test]
fn grants_open_exactly_what_they_name() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("a.txt"), "x").unwrap();
    let grants = format!(
        "grants = {{ clock = true, env = [\"PATH\"], dirs = [{{ host = {:?}, guest = \"/data\" }}] }}",
        data.path().display().to_string()
    );
    let seen = probe(&grants);
    assert!(seen["clock"].as_u64().unwrap() > 1_700_000_000, "{seen}");
    assert_eq!(seen["env"], 1, "{seen}");
    assert_eq!(seen["data"], 1, "{seen}");
    assert_eq!(seen["root"], false, "only the granted directory: {seen}");
}

#[test]
fn a_granted_directory_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let text = "application_id = \"t\"\n[[sources]]\ntopic = \"in\"\n[[steps]]\nname = \"s\"\ncomponent = \"x.wasm\"\ninterface = \"processor\"\ngrants = { dirs = [{ host = \"nope\", guest = \"/data\" }] }\n[[sinks]]\ntopic = \"out\"\n";
    let err = spec::validate_text(&dir.path().join("p.toml"), text)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("steps[0].grants.dirs") && err.contains("is not a directory"),
        "{err}"
    );
}

#[test]
fn fuel_stops_an_endless_loop_on_its_record() {
    let mut c = chain("limits = { fuel = 50000000, timeout = \"30s\" }");
    let err = c.run(&value_batch(&["a", "spin", "b"]), 3).unwrap_err();
    assert_eq!(err.input_index, Some(1));
    assert_eq!(err.error, CallError::OutOfFuel(50_000_000), "{err}");
    // Each call gets the whole allowance again.
    for _ in 0..3 {
        let ok = c.run(&value_batch(&["c", "d"]), 2).unwrap();
        assert_eq!(batch_values(&ok.batch), ["c", "d"]);
    }
}

#[test]
fn steps_sharing_a_component_compile_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let copy = |from: &str, to: &str| std::fs::copy(from, dir.path().join(to)).unwrap();
    copy(eddy_e2e::components::HOSTILE, "a.wasm");
    copy(eddy_e2e::components::HOSTILE, "b.wasm");
    copy(eddy_e2e::components::IDENTITY, "c.wasm");
    let step = |name: &str, file: &str| {
        format!("[[steps]]\nname = \"{name}\"\ncomponent = \"{file}\"\ninterface = \"processor\"\n")
    };
    let text = format!(
        "application_id = \"t\"\n[[sources]]\ntopic = \"in\"\n{}{}{}[[sinks]]\ntopic = \"out\"\n",
        step("one", "a.wasm"),
        step("two", "b.wasm"),
        step("three", "c.wasm"),
    );
    let topo = spec::validate_text(&dir.path().join("p.toml"), &text).unwrap();
    let engine = eddy::wasm::OperatorEngine::for_topology(&topo).unwrap();
    let ops = Chain::load(&topo, &engine).unwrap();
    assert_eq!(
        engine.compilations(),
        2,
        "the same bytes in two files, once"
    );
    let mut c = Chain::new(&ops).unwrap();
    let out = c.run(&value_batch(&["x", "y"]), 2).unwrap();
    assert_eq!(batch_values(&out.batch), ["x", "y"]);
}
