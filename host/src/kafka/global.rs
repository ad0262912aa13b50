//! The global tables' own consumer: every partition of each global
//! table's topic, read from the start into memory before any task
//! processes (so a lookup never misses a row the topic already had), then
//! kept current by a thread of its own until shutdown. No consumer group:
//! every instance reads everything (Kafka Streams' global thread).

use crate::state::global::Globals;
use crate::topology::Topology;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Records applied to a table under one write lock.
const APPLY_BATCH: usize = 5_000;

/// Reads the global tables' topics to their ends, then starts the thread
/// that keeps the tables current; none when the topology has none.
pub fn start(
    t: &Topology,
    globals: &Arc<Globals>,
    shutdown: &Arc<AtomicBool>,
) -> Result<Option<JoinHandle<()>>, String> {
    let sources: HashMap<String, usize> = t
        .sources
        .iter()
        .enumerate()
        .filter(|(_, s)| s.global)
        .filter_map(|(i, s)| Some((s.topics.single()?.to_string(), i)))
        .collect();
    if sources.is_empty() {
        return Ok(None);
    }
    let mut cfg = super::config::restore_config(t);
    cfg.set("client.id", format!("{}-global-consumer", t.application_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    let consumer: BaseConsumer = cfg.create().map_err(|e| e.to_string())?;
    let mut tpl = TopicPartitionList::new();
    let mut ends: HashMap<(String, i32), i64> = HashMap::new();
    for topic in sources.keys() {
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(30))
            .map_err(|e| format!("global table topic {topic}: {e}"))?;
        let partitions = md
            .topics()
            .first()
            .filter(|m| m.error().is_none())
            .map(|m| m.partitions().len())
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("global table topic {topic} does not exist; create it first (e.g. scripts/kafka topic-create {topic} 1)"))?;
        for p in 0..partitions as i32 {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .map_err(|e| e.to_string())?;
            let (_, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(30))
                .map_err(|e| format!("global table topic {topic}: {e}"))?;
            ends.insert((topic.clone(), p), high);
        }
    }
    consumer.assign(&tpl).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut read = 0u64;
    // Restore: until every partition reaches the end it had at start.
    let mut left: HashMap<(String, i32), i64> = ends.into_iter().filter(|(_, h)| *h > 0).collect();
    while !left.is_empty() {
        if shutdown.load(Ordering::Relaxed) {
            return Ok(None);
        }
        read += poll_apply(&consumer, &sources, globals, Duration::from_millis(200))?;
        // The consumer's position, not the last record's offset: it also
        // moves past transaction markers.
        let at = consumer.position().map_err(|e| e.to_string())?;
        left.retain(|(topic, p), end| {
            !matches!(at.find_partition(topic, *p).map(|e| e.offset()), Some(Offset::Offset(o)) if o >= *end)
        });
    }
    for (topic, &i) in &sources {
        tracing::info!(
            table = %t.sources[i].name, %topic, rows = globals.len(i), records = read,
            took_ms = started.elapsed().as_millis() as u64,
            "global table restored"
        );
    }
    let shutdown = shutdown.clone();
    let globals = globals.clone();
    let handle = std::thread::Builder::new()
        .name("eddy-global".into())
        .spawn(move || {
            while !shutdown.load(Ordering::Relaxed) {
                if let Err(e) =
                    poll_apply(&consumer, &sources, &globals, Duration::from_millis(100))
                {
                    tracing::warn!("reading global tables: {e}");
                }
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(Some(handle))
}

/// Polls what is there (up to a batch), applies it per table under one
/// lock each; returns how many records.
fn poll_apply(
    consumer: &BaseConsumer,
    sources: &HashMap<String, usize>,
    globals: &Globals,
    wait: Duration,
) -> Result<u64, String> {
    type Row = (Option<Vec<u8>>, Option<Vec<u8>>, i64);
    let mut rows: HashMap<usize, Vec<Row>> = HashMap::new();
    let mut n = 0u64;
    let mut timeout = wait;
    while n < APPLY_BATCH as u64 {
        let Some(m) = consumer.poll(timeout) else {
            break;
        };
        let m = m.map_err(|e| e.to_string())?;
        // After the first record, take only what has arrived already.
        timeout = Duration::ZERO;
        n += 1;
        if let Some(&i) = sources.get(m.topic()) {
            let ts = m.timestamp().to_millis().unwrap_or(0);
            rows.entry(i).or_default().push((
                m.key().map(<[u8]>::to_vec),
                m.payload().map(<[u8]>::to_vec),
                ts,
            ));
        }
    }
    for (i, list) in rows {
        globals.apply(
            i,
            list.iter()
                .map(|(k, v, ts)| (k.as_deref(), v.as_deref(), *ts)),
        );
    }
    Ok(n)
}
