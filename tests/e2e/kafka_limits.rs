//! What the broker would refuse is dealt with before it is sent, record by
//! record: a timestamp beyond a sink topic's limits goes by the sink's
//! policy without taking its neighbours along; a dead letter too large for
//! its topic is cut to fit, so the policy always works.

use crate::eddy_bin;
use eddy_e2e::{
    Eddy, Topics, bootstrap, components, consume, header, produce, unique, wait_until, write_spec,
};
use std::time::Duration;

/// The year-9999 end of the event times eddy reads: far beyond the hour
/// ahead a topic takes by default.
const FAR_FUTURE: i64 = 253_402_300_799_999;

#[test]
fn a_timestamp_a_sink_would_refuse_goes_by_its_policy_alone() {
    let topics = Topics::create(&[("ts-limit-in", 1), ("ts-limit-out", 1)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    let app = unique("ts-limit");
    let dlq = format!("{app}-refused");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(components::IDENTITY, dir.path().join("identity.wasm")).unwrap();
    let spec = write_spec(
        dir.path(),
        &format!(
            "application_id = \"{app}\"\n\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\n[runtime]\ncommit_interval = \"500ms\"\n\n[[sources]]\ntopic = \"{input}\"\ntimestamp = \"/ts\"\n\n[[steps]]\nname = \"identity\"\ncomponent = \"identity.wasm\"\n\n[[sinks]]\ntopic = \"{output}\"\non_error = \"dead-letter\"\ndead_letter_topic = \"{dlq}\"\n",
            bootstrap()
        ),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let values: Vec<String> = (0..11)
        .map(|i| {
            let ts = if i == 5 { FAR_FUTURE } else { now + i };
            format!("{{\"n\":{i},\"ts\":{ts}}}")
        })
        .collect();
    // One partition, one request: the far one among its neighbours.
    produce(
        input,
        values
            .iter()
            .map(|v| (Some(0), None, Some(v.as_bytes()), now, &[][..])),
    );
    let eddy = Eddy::start(eddy_bin(), &["run", spec.to_str().unwrap()]);
    let got = consume(output, 1, 10, Duration::from_secs(60));
    let ns: Vec<String> = got
        .iter()
        .map(|g| String::from_utf8(g.value.clone().unwrap()).unwrap())
        .collect();
    let want: Vec<String> = values
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 5)
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(ns, want, "every other record, in order");
    // eddy's own dead-letter topic takes any event time it reads.
    let dead = consume(&dlq, 1, 1, Duration::from_secs(30));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].timestamp, FAR_FUTURE);
    let why = header(&dead[0], "eddy.error");
    assert!(why.contains("message.timestamp.after.max.ms"), "{why}");
    assert_eq!(header(&dead[0], "eddy.sink.topic"), *output);
    assert!(eddy.stop());
}

#[test]
fn a_dead_letter_too_large_for_its_topic_is_cut_to_fit() {
    let topics = Topics::create(&[("dl-fit-in", 1), ("dl-fit-out", 1)]);
    let dlq_topic = Topics::create_configured(
        &bootstrap(),
        &[("dl-fit-dead", 1)],
        &[("max.message.bytes", "20000")],
    );
    let (input, output, dlq) = (&topics.names[0], &topics.names[1], &dlq_topic.names[0]);
    let app = unique("dl-fit");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(components::HOSTILE, dir.path().join("hostile.wasm")).unwrap();
    let spec = write_spec(
        dir.path(),
        &format!(
            "application_id = \"{app}\"\n\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\n[runtime]\ncommit_interval = \"500ms\"\n\n[[sources]]\ntopic = \"{input}\"\n\n[[steps]]\nname = \"hostile\"\ncomponent = \"hostile.wasm\"\non_error = \"dead-letter\"\ndead_letter_topic = \"{dlq}\"\n\n[[sinks]]\ntopic = \"{output}\"\n",
            bootstrap()
        ),
    );
    // A record the operator fails on, with a header larger than what the
    // dead-letter topic takes.
    let big = [("trace".to_string(), Some(vec![b't'; 30_000]))];
    produce(
        input,
        [
            (Some(0), None, Some(&b"a"[..]), 1, &[][..]),
            (Some(0), None, Some(&b"fail"[..]), 2, &big[..]),
            (Some(0), None, Some(&b"b"[..]), 3, &[][..]),
        ],
    );
    let eddy = Eddy::start(eddy_bin(), &["run", spec.to_str().unwrap()]);
    let got = consume(output, 1, 2, Duration::from_secs(60));
    assert_eq!(got.len(), 2);
    let dead = consume(dlq, 1, 1, Duration::from_secs(30));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].value.as_deref(), Some(&b"fail"[..]));
    assert_eq!(header(&dead[0], "eddy.headers.dropped"), "1");
    assert!(header(&dead[0], "eddy.error").contains("fail requested"));
    assert!(dead[0].headers.iter().all(|(n, _)| n != "trace"));
    // The task went on: it commits past the failed record.
    wait_until(
        Duration::from_secs(30),
        "the offsets to be committed",
        || eddy_e2e::committed(&app, input, 1) == vec![Some(3)],
    );
    assert!(eddy.stop());
}
