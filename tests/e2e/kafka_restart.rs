//! Stopping eddy mid-stream (gracefully, then by SIGKILL) and starting it
//! again loses no input record: at-least-once.

use crate::eddy_bin;

use eddy_e2e::{
    Eddy, Topics, components, feed, kafka_spec, total_records, unique, wait_for_distinct_values,
    wait_until,
};
use std::time::Duration;

#[test]
fn restarts_mid_stream_lose_nothing() {
    let topics = Topics::create(&[("restart-in", 4), ("restart-out", 4)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    const N: usize = 60_000;
    let values: Vec<Vec<u8>> = (0..N).map(|i| format!("v{i:06}").into_bytes()).collect();
    // The input keeps arriving while eddy is stopped and started: a stream,
    // paced so the stops land while it flows.
    let feeder = feed(input, 4, values.clone(), 300);
    let dir = tempfile::tempdir().unwrap();
    let app = unique("restart");
    // Small batches so the stops land mid-stream.
    let spec = kafka_spec(
        dir.path(),
        &app,
        input,
        "identity",
        components::IDENTITY,
        "",
        &format!("[[sinks]]\ntopic = \"{output}\""),
    );
    // A killed member is noticed after session.timeout.ms; keep it short.
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("workers = 2", "workers = 2\nbatch_size = 64")
        .replace("[runtime]", "\"session.timeout.ms\" = 6000\n\n[runtime]");
    std::fs::write(&spec, text).unwrap();

    let first = Eddy::start(eddy_bin(), &["run", spec.to_str().unwrap()]);
    wait_until(Duration::from_secs(120), "some output", || {
        total_records(output, 4) >= 5_000
    });
    assert!(first.stop(), "graceful stop exits 0");
    let after_first = total_records(output, 4);
    let fed = total_records(input, 4);
    assert!(fed < N as i64, "stopped mid-stream ({fed} of {N} fed)");

    let second = Eddy::start(eddy_bin(), &["run", spec.to_str().unwrap()]);
    wait_until(Duration::from_secs(120), "more output", || {
        total_records(output, 4) >= after_first + 5_000
    });
    second.kill(); // no flush, no commit

    let third = Eddy::start(eddy_bin(), &["run", spec.to_str().unwrap()]);
    feeder.join().unwrap();
    let distinct = wait_for_distinct_values(output, 4, N, Duration::from_secs(240));
    assert!(third.stop());
    for v in &values {
        assert!(
            distinct.contains(v),
            "{} missing",
            String::from_utf8_lossy(v)
        );
    }
}
