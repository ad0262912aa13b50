//! Stopping eddy mid-stream (gracefully, then by SIGKILL) and starting it
//! again loses no input record: at-least-once.

use eddy_e2e::{Eddy, Topics, components, consume, kafka_spec, produce, total_records, unique, wait_until};
use std::collections::HashSet;
use std::time::Duration;

#[test]
fn restarts_mid_stream_lose_nothing() {
    let topics = Topics::create(&[("restart-in", 4), ("restart-out", 4)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    const N: usize = 60_000;
    let values: Vec<Vec<u8>> = (0..N).map(|i| format!("v{i:06}").into_bytes()).collect();
    produce(input, (0..N).map(|i| (Some((i % 4) as i32), None, Some(&values[i][..]), 0, &[][..])));

    let dir = tempfile::tempdir().unwrap();
    let app = unique("restart");
    // Small batches so the stops land mid-stream.
    let spec = kafka_spec(dir.path(), &app, input, "identity", components::IDENTITY, "", &format!("[[sinks]]\ntopic = \"{output}\""));
    let text = std::fs::read_to_string(&spec).unwrap().replace("workers = 2", "workers = 2\nbatch_size = 64");
    std::fs::write(&spec, text).unwrap();

    let first = Eddy::start(&["run", spec.to_str().unwrap()]);
    wait_until(Duration::from_secs(120), "some output", || total_records(output, 4) >= 5_000);
    assert!(first.stop(), "graceful stop exits 0");
    let after_first = total_records(output, 4);
    assert!(after_first < N as i64, "stopped mid-stream ({after_first} of {N})");

    let second = Eddy::start(&["run", spec.to_str().unwrap()]);
    wait_until(Duration::from_secs(120), "more output", || total_records(output, 4) >= after_first + 5_000);
    second.kill(); // no flush, no commit

    let third = Eddy::start(&["run", spec.to_str().unwrap()]);
    let mut distinct = HashSet::new();
    wait_until(Duration::from_secs(240), "every input in the output", || {
        let total = total_records(output, 4) as usize;
        if total < N {
            return false;
        }
        distinct = consume(output, 4, total, Duration::from_secs(60)).into_iter().map(|g| g.value.unwrap()).collect();
        distinct.len() == N
    });
    assert!(third.stop());
    for v in &values {
        assert!(distinct.contains(v), "{} missing", String::from_utf8_lossy(v));
    }
}
