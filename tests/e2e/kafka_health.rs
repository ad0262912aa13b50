//! `/readyz` tells the truth: 503 with the reason while a task's batch is
//! stuck, after a task stopped, and while no broker is reachable; ready
//! again once the broker is back. The lag metric is there from the start.

use crate::eddy_bin;
use eddy_e2e::{
    PrivateBroker, Topics, bootstrap, components, get_text, metric, produce, start_with_admin,
    unique, wait_until, write_spec,
};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn spec(dir: &Path, servers: &str, input: &str, output: &str, runtime: &str) -> String {
    std::fs::copy(components::HOSTILE, dir.join("hostile.wasm")).unwrap();
    let text = format!(
        "application_id = \"{app}\"\n\n[kafka]\n\"bootstrap.servers\" = \"{servers}\"\n\n[runtime]\nworkers = 1\n{runtime}\n\n[[sources]]\ntopic = \"{input}\"\n\n[[steps]]\nname = \"hostile\"\ncomponent = \"hostile.wasm\"\nlimits = {{ timeout = \"15s\" }}\n\n[[sinks]]\ntopic = \"{output}\"\n",
        app = unique("health")
    );
    write_spec(dir, &text).to_str().unwrap().to_string()
}

/// `/readyz`: whether it answers 200, and its body.
fn readyz(addr: &str) -> (bool, Value) {
    let (status, body) = get_text(addr, "/readyz");
    (status == 200, serde_json::from_str(&body).unwrap())
}

#[test]
fn a_stuck_batch_then_a_stopped_task_make_the_instance_unready_with_the_reason() {
    let topics = Topics::create(&[("health-in", 2), ("health-out", 2)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    let dir = tempfile::tempdir().unwrap();
    let runtime = "commit_interval = \"60s\"\nstall_after = \"2s\"";
    let spec = spec(dir.path(), &bootstrap(), input, output, runtime);
    let (eddy, addr) = start_with_admin(eddy_bin(), &spec);
    wait_until(Duration::from_secs(60), "readyz to answer 200", || {
        readyz(&addr).0
    });
    // Lag is measured from the first turn of the poll loop, not from the
    // first commit (a minute away).
    wait_until(Duration::from_secs(10), "the lag metric", || {
        let (_, text) = get_text(&addr, "/metrics");
        metric(
            &text,
            &format!("eddy_consumer_lag{{topic=\"{input}\",partition=\"0\"}}"),
        )
        .is_some()
    });

    // An operator that spins (until its 15 s timeout) holds partition 0's batch.
    produce(input, [(Some(0), None, Some(&b"spin"[..]), 1_000, &[][..])]);
    let mut body = Value::Null;
    wait_until(
        Duration::from_secs(12),
        "readyz to report the stuck batch",
        || {
            let (ok, b) = readyz(&addr);
            body = b;
            !ok && body["problems"]
                .to_string()
                .contains("a batch has been in flight")
        },
    );
    assert!(
        body["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("task 0_0:"),
        "{body}"
    );
    assert_eq!(body["ready"], false);

    // The timeout ends the call; the step's error policy (fail) stops the task.
    wait_until(
        Duration::from_secs(40),
        "readyz to report the stopped task",
        || {
            let (ok, b) = readyz(&addr);
            body = b;
            !ok && body["failed"]["0_0"].is_string()
        },
    );
    let why = body["failed"]["0_0"].as_str().unwrap();
    assert!(why.contains(&format!("{input}-0")), "{body}");
    assert_eq!(body["problems"], serde_json::json!([]), "{body}");
    assert!(eddy.stop());
}

#[test]
fn no_reachable_broker_makes_the_instance_unready_until_it_is_back() {
    let broker = PrivateBroker::start();
    let servers = broker.bootstrap();
    let topics = Topics::create_on(&servers, &[("outage-in", 1), ("outage-out", 1)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), &servers, input, output, "");
    let (eddy, addr) = start_with_admin(eddy_bin(), &spec);
    wait_until(Duration::from_secs(60), "readyz to answer 200", || {
        readyz(&addr).0
    });

    broker.stop();
    let mut body = Value::Null;
    wait_until(
        Duration::from_secs(20),
        "readyz to report the outage",
        || {
            let (ok, b) = readyz(&addr);
            body = b;
            !ok && body["problems"]
                .to_string()
                .contains("no Kafka broker reachable")
        },
    );
    assert!(
        body["problems"][0].as_str().unwrap().contains(&servers),
        "{body}"
    );

    broker.restart();
    wait_until(
        Duration::from_secs(60),
        "readyz to answer 200 again",
        || readyz(&addr).0,
    );
    assert!(eddy.stop());
    drop(topics);
}
