//! The pipeline on a real broker: 1 M records (16-byte keys, 100-byte
//! values, 4 partitions) through eddy with a Wasm identity operator, against
//! a plain rdkafka consume → produce pass-through (BaseConsumer, batched
//! ThreadedProducer, commit after flush), same broker, same input, one run.
//!
//! Run: `scripts/kafka start && cargo run -p eddy-bench --bin pipeline`
//! (RECORDS to change the count). Prints records/s of each and the ratio.

use eddy::wasm::OperatorEngine;
use eddy_e2e::{
    Topics, bootstrap, components, kafka_spec, produce, total_records, unique, wait_until,
};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Consumes `input` from the start and produces every record to `output`
/// unchanged, as fast as rdkafka allows, until `n` records were forwarded.
fn passthrough(input: &str, output: &str, n: usize) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("passthrough"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    c.subscribe(&[input]).unwrap();
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    let mut done = 0;
    let mut last_commit = Instant::now();
    while done < n {
        let Some(Ok(m)) = c.poll(Duration::from_millis(100)) else {
            continue;
        };
        let mut rec =
            BaseRecord::<[u8], [u8]>::to(output).timestamp(m.timestamp().to_millis().unwrap_or(0));
        if let Some(k) = m.key() {
            rec = rec.key(k);
        }
        if let Some(v) = m.payload() {
            rec = rec.payload(v);
        }
        while let Err((_, r)) = p.send(rec) {
            rec = r;
            std::thread::sleep(Duration::from_micros(200));
        }
        done += 1;
        if last_commit.elapsed() > Duration::from_secs(5) {
            // At-least-once like eddy: flush, then commit what was consumed.
            p.flush(Duration::from_secs(30)).unwrap();
            c.commit_consumer_state(CommitMode::Async).unwrap();
            last_commit = Instant::now();
        }
    }
    p.flush(Duration::from_secs(60)).unwrap();
}

fn main() {
    let n: usize = std::env::var("RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let topics = Topics::create(&[("bench-in", 4), ("bench-raw-out", 4), ("bench-eddy-out", 4)]);
    let (input, raw_out, eddy_out) = (&topics.names[0], &topics.names[1], &topics.names[2]);
    let keys: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("key-{:012}", i).into_bytes())
        .collect();
    let values: Vec<Vec<u8>> = (0..n)
        .map(|i| (0..100).map(|j| b'a' + ((i + j) % 26) as u8).collect())
        .collect();
    let t = Instant::now();
    produce(
        input,
        (0..n).map(|i| {
            (
                Some((i % 4) as i32),
                Some(&keys[i][..]),
                Some(&values[i][..]),
                1_700_000_000_000 + i as i64,
                &[][..],
            )
        }),
    );
    eprintln!(
        "input: {n} records produced in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    passthrough(input, raw_out, n);
    wait_until(Duration::from_secs(600), "the pass-through output", || {
        total_records(raw_out, 4) >= n as i64
    });
    let raw = t.elapsed().as_secs_f64();

    let dir = tempfile::tempdir().unwrap();
    let spec = kafka_spec(
        dir.path(),
        &unique("bench"),
        input,
        "identity",
        components::IDENTITY,
        "",
        &format!("[[sinks]]\ntopic = \"{eddy_out}\""),
    );
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("commit_interval = \"500ms\"", "commit_interval = \"5s\"");
    std::fs::write(&spec, text).unwrap();
    let topology = eddy::spec::load(&spec).unwrap();
    let engine = OperatorEngine::new().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let t = Instant::now();
    let runner = {
        let stop = stop.clone();
        std::thread::spawn(move || eddy::app::run(&topology, &engine, &stop))
    };
    wait_until(Duration::from_secs(600), "eddy's output", || {
        total_records(eddy_out, 4) >= n as i64
    });
    let with_eddy = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    runner.join().unwrap().unwrap();

    println!("| pipeline | seconds | records/s |");
    println!("|---|---|---|");
    println!(
        "| rdkafka pass-through | {raw:.2} | {:.0} |",
        n as f64 / raw
    );
    println!(
        "| eddy, Wasm identity (workers = 2) | {with_eddy:.2} | {:.0} |",
        n as f64 / with_eddy
    );
    println!("ratio eddy / pass-through: {:.2}", raw / with_eddy);
}
