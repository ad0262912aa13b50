//! Restoring a task's stores from their changelogs before it processes:
//! from the checkpoint when the local RocksDB files are intact, from the
//! beginning otherwise (or always, for in-memory stores). Progress goes to
//! the log, and to a progress bar when stderr is a terminal.

use crate::state::{Checkpoint, TaskState};
use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

/// How many records are applied to a store at a time.
const APPLY_BATCH: usize = 10_000;

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Records read from changelogs.
    pub records: u64,
    /// Where each changelog was read from: (topic, partition, first offset).
    pub from: Vec<(String, i32, i64)>,
    /// Where each changelog's restore ended: (topic, partition, next offset).
    pub to: Vec<(String, i32, i64)>,
}

/// Whether the task directory can be trusted: a checkpoint naming every
/// changelog. When not, the directory is deleted, so stores start empty.
pub fn prepare_dir(dir: &Path, changelogs: &[String], partition: i32) -> Option<Checkpoint> {
    let cp = Checkpoint::read(dir).filter(|cp| {
        changelogs
            .iter()
            .all(|t| cp.offsets.contains_key(&(t.clone(), partition)))
    });
    if cp.is_none() && dir.exists() {
        tracing::info!(dir = %dir.display(), "no usable checkpoint: the local state is rebuilt from the changelogs");
        let _ = std::fs::remove_dir_all(dir);
    }
    cp
}

/// Reads every changelog of `state`'s stores (topic `changelogs[i]` for
/// store `i`, partition `partition`) from the checkpoint (or the start) to
/// its end and applies it.
pub fn restore<C: ClientContext>(
    watermarks: &Client<C>,
    client: &ClientConfig,
    state: &mut TaskState,
    changelogs: &[String],
    partition: i32,
    checkpoint: Option<&Checkpoint>,
    progress: &Progress<'_>,
) -> Result<Restored, String> {
    let task = progress.task;
    // A consumer only when there is something to read: a new application's
    // tasks start without one (creating it costs a broker round trip).
    let mut consumer: Option<BaseConsumer> = None;
    let mut restored = Restored::default();
    for (store, topic) in changelogs.iter().enumerate() {
        let (low, high) = watermarks
            .fetch_watermarks(topic, partition, Duration::from_secs(30))
            .map_err(|e| format!("reading the end of changelog {topic}-{partition}: {e}"))?;
        let start = checkpoint
            .and_then(|c| c.offsets.get(&(topic.clone(), partition)).copied())
            .unwrap_or(low)
            .max(low);
        restored.from.push((topic.clone(), partition, start));
        restored
            .to
            .push((topic.clone(), partition, high.max(start)));
        if start >= high {
            continue;
        }
        let consumer = match &mut consumer {
            Some(c) => c,
            None => consumer.insert(
                client
                    .clone()
                    .set("enable.auto.commit", "false")
                    .set("enable.auto.offset.store", "false")
                    .set("auto.offset.reset", "earliest")
                    // Compaction leaves gaps: the end is where the broker says it is.
                    .set("enable.partition.eof", "true")
                    .create()
                    .map_err(|e| format!("restore consumer: {e}"))?,
            ),
        };
        let total = (high - start) as u64;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(start))
            .map_err(|e| e.to_string())?;
        consumer.assign(&tpl).map_err(|e| e.to_string())?;
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_message(format!("restoring {topic}-{partition}"));
            b.set_style(
                indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        let began = Instant::now();
        let mut last_log = Instant::now();
        let mut done: u64 = 0;
        let mut pending: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(APPLY_BATCH);
        let mut position = start;
        while position < high {
            match consumer.poll(Duration::from_millis(500)) {
                None => {
                    if began.elapsed() > Duration::from_secs(600) {
                        return Err(format!(
                            "restoring {topic}-{partition} stalled at offset {position} of {high}"
                        ));
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) => return Err(format!("reading changelog {topic}-{partition}: {e}")),
                Some(Ok(m)) => {
                    position = m.offset() + 1;
                    if let Some(k) = m.key() {
                        pending.push((k.to_vec(), m.payload().map(<[u8]>::to_vec)));
                    }
                    done += 1;
                    if pending.len() >= APPLY_BATCH {
                        state.restore(store, &pending).map_err(|e| e.to_string())?;
                        pending.clear();
                    }
                }
            }
            if let Some(b) = &bar {
                b.set_position(done.min(total));
            }
            if last_log.elapsed() >= Duration::from_secs(1) {
                last_log = Instant::now();
                log_progress(task, topic, partition, done, total, began.elapsed());
                progress.remaining(0);
                progress.remaining(total - done.min(total));
            }
        }
        state.restore(store, &pending).map_err(|e| e.to_string())?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        log_progress(task, topic, partition, done, total, began.elapsed());
        restored.records += done;
    }
    Ok(restored)
}

/// Where a restore reports its progress: the log names the task, the
/// metrics count what is left.
pub struct Progress<'a> {
    /// The task's name.
    pub task: &'a str,
    /// The process's metrics.
    pub metrics: &'a crate::metrics::Metrics,
}

impl Progress<'_> {
    fn remaining(&self, records: u64) {
        self.metrics
            .restore_remaining
            .get_or_create(&crate::metrics::TaskLabels {
                task: self.task.to_string(),
            })
            .set(records as i64);
    }
}

fn log_progress(task: &str, topic: &str, partition: i32, done: u64, total: u64, took: Duration) {
    let rate = done as f64 / took.as_secs_f64().max(0.001);
    tracing::info!(
        task,
        changelog = %format!("{topic}-{partition}"),
        "restoring: {done}/{total} records ({rate:.0}/s)"
    );
}
