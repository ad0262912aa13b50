//! On a real broker, a trapping, an endlessly looping and a memory-hungry
//! operator each stop only their task, with an error naming the operator,
//! topic, partition and offset; the host stays up, other partitions go on,
//! and no offset is committed past a failure.

use eddy_e2e::{Eddy, Topics, committed, components, consume, kafka_spec, produce, unique};
use std::time::Duration;

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
    let mut eddy = Eddy::start(&["run", spec.to_str().unwrap()]);

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
    let mut values: Vec<_> = got
        .iter()
        .map(|g| String::from_utf8(g.value.clone().unwrap()).unwrap())
        .collect();
    values.sort();
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
