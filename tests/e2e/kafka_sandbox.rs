//! On a real broker, a trapping, an endlessly looping and a memory-hungry
//! operator each stop only their task, with an error naming the operator,
//! topic, partition and offset; the host stays up, other partitions go on,
//! and no offset is committed past a failure. Under `dead-letter` the whole
//! hostile suite (loop, memory, recursion, trap, error, and reaching for a
//! file, a socket, the environment or the clock) takes out only the
//! offending records, and the metrics count them.

use crate::eddy_bin;

use eddy_e2e::{
    Eddy, Topics, committed, components, consume, get_text, header, kafka_spec, metric, produce,
    start_with_admin, unique,
};
use std::time::Duration;

/// The values read, as text, sorted.
fn sorted_values(got: &[eddy_e2e::Got]) -> Vec<String> {
    let mut values: Vec<String> = got
        .iter()
        .map(|g| String::from_utf8(g.value.clone().unwrap()).unwrap())
        .collect();
    values.sort();
    values
}

#[test]
fn failing_operators_stop_their_task_only() {
    let topics = Topics::create(&[("hostile-in", 4), ("hostile-out", 1)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    let mut records: Vec<(i32, &[u8])> = vec![
        (0, b"a"),
        (0, b"boom"),
        (0, b"b"),
        (1, b"spin"),
        (2, b"c"),
        (2, b"grow"),
    ];
    let normal: Vec<Vec<u8>> = (0..200).map(|i| format!("ok{i}").into_bytes()).collect();
    records.extend(normal.iter().map(|v| (3, &v[..])));
    produce(
        input,
        records
            .iter()
            .map(|(p, v)| (Some(*p), None, Some(*v), 0, &[][..])),
    );

    let dir = tempfile::tempdir().unwrap();
    let app = unique("hostile");
    let limits = "limits = { timeout = \"500ms\", memory = \"16MiB\" }";
    let spec = kafka_spec(
        dir.path(),
        &app,
        input,
        "hostile",
        components::HOSTILE,
        limits,
        &format!("[[sinks]]\ntopic = \"{output}\""),
    );
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("workers = 2", "workers = 2\nbatch_size = 1");
    std::fs::write(&spec, text).unwrap();
    let mut eddy = Eddy::start(eddy_bin(), &["run", spec.to_str().unwrap()]);

    let wait = Duration::from_secs(90);
    let trap = eddy.wait_for_log(&format!("task {input}-0 stopped"), wait);
    assert!(
        trap.contains("operator `hostile` trapped")
            && trap.contains(&format!("topic {input}, partition 0, offset 1")),
        "{trap}"
    );
    let spin = eddy.wait_for_log(&format!("task {input}-1 stopped"), wait);
    assert!(
        spin.contains("timed out after 500ms") && spin.contains("partition 1, offset 0"),
        "{spin}"
    );
    let grow = eddy.wait_for_log(&format!("task {input}-2 stopped"), wait);
    assert!(
        grow.contains("ran out of memory") && grow.contains("partition 2, offset 1"),
        "{grow}"
    );

    // Partition 3 and the records before each failure still come through.
    let got = consume(output, 1, 202, Duration::from_secs(60));
    let values = sorted_values(&got);
    let mut want: Vec<String> = normal
        .iter()
        .map(|v| String::from_utf8(v.clone()).unwrap())
        .chain(["a".into(), "c".into()])
        .collect();
    want.sort();
    assert_eq!(values, want);
    assert!(eddy.alive(), "the host stays up");
    assert!(eddy.stop());

    let offsets = committed(&app, input, 4);
    assert!(
        offsets[0].is_none_or(|o| o <= 1),
        "partition 0 committed past the trap: {offsets:?}"
    );
    assert!(
        offsets[1].is_none(),
        "partition 1 committed past the timeout: {offsets:?}"
    );
    assert!(
        offsets[2].is_none_or(|o| o <= 1),
        "partition 2 committed past the out-of-memory: {offsets:?}"
    );
    assert_eq!(offsets[3], Some(200), "partition 3 fully committed");
}

#[test]
fn dead_letters_go_to_their_topic_and_the_partition_goes_on() {
    let topics = Topics::create(&[("dl-in", 2), ("dl-out", 1), ("dl-dead", 1)]);
    let (input, output, dead) = (&topics.names[0], &topics.names[1], &topics.names[2]);
    // 1,000 records per partition; a trap, an error and a timeout among them.
    let bad = [(0, 100, "boom"), (0, 700, "fail"), (1, 500, "spin")];
    let mut values: Vec<(i32, String)> = Vec::new();
    for p in 0..2 {
        for i in 0..1000 {
            let v = bad
                .iter()
                .find(|(bp, bi, _)| *bp == p && *bi == i)
                .map_or_else(|| format!("ok-{p}-{i}"), |(_, _, v)| v.to_string());
            values.push((p, v));
        }
    }
    let trace = [("trace".to_string(), Some(b"t1".to_vec()))];
    produce(
        input,
        values.iter().map(|(p, v)| {
            (
                Some(*p),
                Some(&b"k"[..]),
                Some(v.as_bytes()),
                1_000,
                &trace[..],
            )
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let app = unique("deadletter");
    let spec = kafka_spec(
        dir.path(),
        &app,
        input,
        "hostile",
        components::HOSTILE,
        &format!(
            "limits = {{ timeout = \"300ms\" }}\non_error = \"dead-letter\"\ndead_letter_topic = \"{dead}\""
        ),
        &format!("[[sinks]]\ntopic = \"{output}\""),
    );
    let mut eddy = Eddy::start(eddy_bin(), &["run", spec.to_str().unwrap()]);
    let got = consume(output, 1, 1997, Duration::from_secs(120));
    let letters = consume(dead, 1, 3, Duration::from_secs(60));
    eddy_e2e::wait_until(
        Duration::from_secs(60),
        "offsets committed to the end",
        || committed(&app, input, 2) == [Some(1000), Some(1000)],
    );
    assert!(eddy.alive(), "the host stays up");
    assert!(eddy.stop());

    let out = sorted_values(&got);
    let mut want: Vec<String> = values
        .iter()
        .filter(|(_, v)| v.starts_with("ok"))
        .map(|(_, v)| v.clone())
        .collect();
    want.sort();
    assert_eq!(out, want, "every good record exactly once");

    let mut seen: Vec<(String, String, String, String)> = letters
        .iter()
        .map(|g| {
            assert_eq!(header(g, "trace"), "t1", "the record's headers stay");
            assert_eq!(header(g, "eddy.operator"), "hostile");
            assert_eq!(header(g, "eddy.source.topic"), *input);
            assert_eq!(g.key.as_deref(), Some(&b"k"[..]));
            assert_eq!(g.timestamp, 1_000);
            (
                String::from_utf8(g.value.clone().unwrap()).unwrap(),
                header(g, "eddy.error.kind"),
                header(g, "eddy.source.partition"),
                header(g, "eddy.source.offset"),
            )
        })
        .collect();
    seen.sort();
    let s = |x: &str| x.to_string();
    assert_eq!(
        seen,
        [
            (s("boom"), s("trap"), s("0"), s("100")),
            (s("fail"), s("failed"), s("0"), s("700")),
            (s("spin"), s("timeout"), s("1"), s("500")),
        ]
    );
}

#[test]
fn the_hostile_suite_on_the_broker_takes_out_only_the_offending_records() {
    let topics = Topics::create(&[("suite-in", 1), ("suite-out", 1), ("suite-dead", 1)]);
    let (input, output, dead) = (&topics.names[0], &topics.names[1], &topics.names[2]);
    // One batch of 1,000 records; each hostile value once among them.
    let hostile = [
        (50, "spin", "timeout"),
        (120, "grow", "out-of-memory"),
        (300, "deep", "trap"),
        (480, "boom", "trap"),
        (610, "fail", "failed"),
        (700, "read-file", "failed"),
        (800, "connect", "failed"),
        (900, "env", "failed"),
        (990, "clock", "failed"),
    ];
    let values: Vec<String> = (0..1000)
        .map(|i| {
            hostile
                .iter()
                .find(|(at, _, _)| *at == i)
                .map_or_else(|| format!("ok-{i}"), |(_, v, _)| v.to_string())
        })
        .collect();
    produce(
        input,
        values
            .iter()
            .map(|v| (Some(0), Some(&b"k"[..]), Some(v.as_bytes()), 1_000, &[][..])),
    );
    let dir = tempfile::tempdir().unwrap();
    let app = unique("suite");
    let spec = kafka_spec(
        dir.path(),
        &app,
        input,
        "hostile",
        components::HOSTILE,
        &format!(
            "limits = {{ timeout = \"300ms\", memory = \"16MiB\" }}\non_error = \"dead-letter\"\ndead_letter_topic = \"{dead}\""
        ),
        &format!("[[sinks]]\ntopic = \"{output}\""),
    );
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("workers = 2", "workers = 2\nbatch_size = 1000");
    std::fs::write(&spec, text).unwrap();
    let (mut eddy, addr) = start_with_admin(eddy_bin(), spec.to_str().unwrap());
    eddy_e2e::wait_until(
        Duration::from_secs(120),
        "offsets committed to the end",
        || committed(&app, input, 1) == [Some(1000)],
    );
    let got = consume(output, 1, 991, Duration::from_secs(60));
    let letters = consume(dead, 1, hostile.len(), Duration::from_secs(60));
    let metrics = get_text(&addr, "/metrics").1;
    assert!(eddy.alive(), "the host stays up");
    assert!(eddy.stop());

    // Every other record once, in order; nothing got out of the sandbox.
    let out: Vec<String> = got
        .iter()
        .map(|g| String::from_utf8(g.value.clone().unwrap()).unwrap())
        .collect();
    let want: Vec<String> = values
        .iter()
        .filter(|v| v.starts_with("ok-"))
        .cloned()
        .collect();
    assert_eq!(out, want);
    assert_eq!(eddy_e2e::total_records(output, 1), 991);
    // Each hostile record dead-lettered alone, with the kind of its failure.
    let mut seen: Vec<(String, String, String)> = letters
        .iter()
        .map(|g| {
            (
                String::from_utf8(g.value.clone().unwrap()).unwrap(),
                header(g, "eddy.error.kind"),
                header(g, "eddy.source.offset"),
            )
        })
        .collect();
    seen.sort();
    let mut expected: Vec<(String, String, String)> = hostile
        .iter()
        .map(|(at, v, kind)| (v.to_string(), kind.to_string(), at.to_string()))
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
    // Counted: each record once by policy, each kind of failure at least once
    // (a failure is counted per call, and finding the record takes several).
    let value = |m: &str| metric(&metrics, m).unwrap_or_else(|| panic!("no {m} in\n{metrics}"));
    assert_eq!(
        value("eddy_records_rejected_total{operator=\"hostile\",policy=\"dead-letter\"}"),
        hostile.len() as f64
    );
    for kind in ["timeout", "out-of-memory", "trap", "failed"] {
        assert!(
            value(&format!(
                "eddy_operator_failures_total{{operator=\"hostile\",kind=\"{kind}\"}}"
            )) >= 1.0,
            "{kind}"
        );
    }
}
