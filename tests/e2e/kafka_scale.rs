//! Scale-out: a second eddy with the same application id takes over some
//! partitions (a cooperative rebalance: the first finishes and commits what
//! it had in flight for them), then the whole load when the first stops. No
//! input record is missing from the output.

use crate::eddy_bin;

use eddy_e2e::{
    Eddy, Topics, components, feed, kafka_spec, total_records, unique, wait_for_distinct_values,
    wait_until,
};
use std::time::Duration;

#[test]
fn a_second_instance_shares_the_partitions_and_takes_over() {
    let topics = Topics::create(&[("scale-in", 4), ("scale-out", 4)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    const N: usize = 40_000;
    let values: Vec<Vec<u8>> = (0..N).map(|i| format!("s{i:06}").into_bytes()).collect();
    let feeder = feed(input, 4, values, 400);
    let dir = tempfile::tempdir().unwrap();
    let spec = kafka_spec(
        dir.path(),
        &unique("scale"),
        input,
        "identity",
        components::IDENTITY,
        "",
        &format!("[[sinks]]\ntopic = \"{output}\""),
    );
    let spec = spec.to_str().unwrap();

    let first = Eddy::start(eddy_bin(), &["run", spec]);
    first.wait_for_log("assigned", Duration::from_secs(60));
    wait_until(
        Duration::from_secs(60),
        "output from the first instance",
        || total_records(output, 4) > 1_000,
    );
    let second = Eddy::start(eddy_bin(), &["run", spec]);
    let moved = first.wait_for_log(
        "revoked; finishing in-flight batches",
        Duration::from_secs(60),
    );
    let got = second.wait_for_log("assigned", Duration::from_secs(60));
    assert!(!moved.is_empty() && !got.is_empty());
    assert!(first.stop(), "the first instance stops cleanly");
    feeder.join().unwrap();

    let distinct = wait_for_distinct_values(output, 4, N, Duration::from_secs(180));
    assert!(second.stop());
    assert_eq!(distinct.len(), N);
}
