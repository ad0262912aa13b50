//! `eddy run`: the Kafka loop, at-least-once.
//!
//! One thread polls the consumer and encodes records straight into a batch
//! per task (one task per assigned input partition); worker threads each
//! own an instance of every operator and run a task's batches in order
//! (a task always goes to the same worker). Outputs are produced with the
//! batch's ticket as delivery opaque; a partition's offset is committed only
//! once every output of it and of every earlier batch was acknowledged.
//! A revoked partition is drained (bounded) and committed before it goes.
//! An operator failure stops only its task: the partition is paused, the
//! error names the operator, topic, partition and offset, and nothing past
//! the failed batch is committed.

use super::config::{consumer_config, producer_config};
use super::ledger::{BatchTicket, PartitionLedger};
use crate::runtime::Chain;
use crate::topology::Topology;
use crate::wasm::{LoadError, LoadedOperator, OperatorEngine};
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use eddy_batch::{BatchView, BatchWriter};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why `eddy run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The spec lacks something running needs.
    #[error("{0}")]
    Config(String),
    /// An operator failed to load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The broker could not be reached.
    #[error(
        "cannot reach Kafka at {servers} after {attempts} attempts over {secs}s: {last}. Is the broker running (scripts/kafka start)?"
    )]
    Unreachable {
        /// bootstrap.servers.
        servers: String,
        /// Attempts made.
        attempts: u32,
        /// Seconds spent.
        secs: u64,
        /// The last error.
        last: String,
    },
    /// Topics the pipeline names do not exist.
    #[error(
        "topic(s) {0:?} do not exist on the broker; create them first (e.g. scripts/kafka topic-create NAME PARTITIONS)"
    )]
    MissingTopics(Vec<String>),
    /// A Kafka client error.
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
}

/// A task: one input partition of one source topic.
type Task = (usize, i32);

/// How long a revoked partition may take to finish its in-flight batches.
const REVOKE_DRAIN: Duration = Duration::from_secs(30);
/// Attempts to reach the broker at start.
const CONNECT_ATTEMPTS: u32 = 5;

struct Work {
    task: Task,
    batch: Vec<u8>,
    offsets: Vec<i64>,
    ticket: Arc<BatchTicket>,
}

/// State the poll loop and the rebalance callback share.
#[derive(Default)]
struct Shared {
    ledgers: HashMap<Task, PartitionLedger>,
    failed: HashSet<Task>,
    /// Revoked since the poll loop last looked; their unsent records go.
    revoked: Vec<Task>,
}

struct Ctx {
    shared: Arc<Mutex<Shared>>,
    topics: Vec<String>,
    /// Set by a revoke; the poll loop then drops the revoked partitions'
    /// records it has not dispatched, before it takes any new record (the
    /// callback runs inside `poll`, so a record `poll` returns afterwards may
    /// already belong to a new assignment of the same partition).
    rebalanced: AtomicBool,
}

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            if let Rebalance::Assign(tpl) = rebalance {
                tracing::info!(partitions = %describe(tpl), "assigned");
            }
            return;
        };
        tracing::info!(partitions = %describe(tpl), "revoked; finishing in-flight batches");
        let tasks: Vec<Task> = tpl
            .elements()
            .iter()
            .filter_map(|e| {
                self.topics
                    .iter()
                    .position(|t| t == e.topic())
                    .map(|i| (i, e.partition()))
            })
            .collect();
        // Finish what is in flight (bounded), then commit it, so the next
        // owner starts right after what this instance delivered.
        let deadline = Instant::now() + REVOKE_DRAIN;
        loop {
            let mut s = self.shared.lock().expect("not poisoned");
            let busy = tasks.iter().any(|t| {
                let failed = s.failed.contains(t);
                s.ledgers.get_mut(t).is_some_and(|l| {
                    let _ = l.advance();
                    !failed && !l.idle()
                })
            });
            if !busy || Instant::now() > deadline {
                if busy {
                    tracing::warn!(
                        "in-flight batches did not finish within {REVOKE_DRAIN:?}; their records will be processed again by the next owner"
                    );
                }
                let mut commit = TopicPartitionList::new();
                self.rebalanced.store(true, Ordering::Release);
                for t in &tasks {
                    if let Some(l) = s.ledgers.remove(t)
                        && let Some(o) = l.to_commit()
                    {
                        let _ =
                            commit.add_partition_offset(&self.topics[t.0], t.1, Offset::Offset(o));
                    }
                    s.failed.remove(t);
                    s.revoked.push(*t);
                }
                drop(s);
                if commit.count() > 0
                    && let Err(e) = consumer.commit(&commit, CommitMode::Sync)
                {
                    tracing::warn!("committing revoked partitions failed: {e}");
                }
                return;
            }
            drop(s);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements()
        .iter()
        .map(|e| format!("{}-{}", e.topic(), e.partition()))
        .collect::<Vec<_>>()
        .join(",")
}

struct Delivery;

impl ClientContext for Delivery {}

impl ProducerContext for Delivery {
    type DeliveryOpaque = Arc<BatchTicket>;

    fn delivery(&self, result: &DeliveryResult<'_>, ticket: Arc<BatchTicket>) {
        if let Err((e, m)) = result {
            ticket.fail(format!("producing to {} failed: {e}", m.topic()));
        }
        ticket.done();
    }
}

/// Runs the topology against Kafka until `shutdown` is set.
pub fn run(
    t: &Topology,
    engine: &OperatorEngine,
    shutdown: &Arc<AtomicBool>,
) -> Result<(), RunError> {
    let servers = t
        .kafka
        .iter()
        .find(|(k, _)| k == "bootstrap.servers")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| {
            RunError::Config(format!(
                "{}: set kafka.\"bootstrap.servers\" (e.g. \"127.0.0.1:9092\")",
                t.spec_path.display()
            ))
        })?;
    let ops = t
        .steps
        .iter()
        .map(|s| LoadedOperator::load(engine, s))
        .collect::<Result<Vec<_>, _>>()?;
    let shared = Arc::new(Mutex::new(Shared::default()));
    let consumer: BaseConsumer<Ctx> = consumer_config(t).create_with_context(Ctx {
        shared: shared.clone(),
        topics: t.sources.clone(),
        rebalanced: AtomicBool::new(false),
    })?;
    let producer: ThreadedProducer<Delivery> = producer_config(t).create_with_context(Delivery)?;
    check_topics(&consumer, t, &servers)?;
    let sources: Vec<&str> = t.sources.iter().map(String::as_str).collect();
    consumer.subscribe(&sources)?;

    let producer = Arc::new(producer);
    let (fail_tx, fail_rx) = unbounded::<(Task, String)>();
    let mut senders: Vec<Sender<Work>> = Vec::new();
    let mut workers = Vec::new();
    for w in 0..t.runtime.workers {
        let (tx, rx) = bounded::<Work>(4);
        senders.push(tx);
        let chain = Chain::new(&ops)?;
        let (producer, fail_tx, topo) = (producer.clone(), fail_tx.clone(), t.clone());
        workers.push(
            std::thread::Builder::new()
                .name(format!("eddy-worker-{w}"))
                .spawn(move || worker(rx, chain, &producer, &topo, &fail_tx))
                .expect("spawn worker"),
        );
    }
    tracing::info!(application = %t.application_id, workers = t.runtime.workers, "running; Ctrl-C stops gracefully");

    let mut pending: HashMap<Task, (BatchWriter, Vec<i64>)> = HashMap::new();
    let mut last_commit = Instant::now();
    let mut last_poll_error = None::<Instant>;
    while !shutdown.load(Ordering::Relaxed) {
        let mut count = 0;
        while count < t.runtime.batch_size {
            let wait = if count == 0 {
                t.runtime.poll_timeout
            } else {
                Duration::ZERO
            };
            match consumer.poll(wait) {
                None => break,
                Some(Err(e)) => {
                    // librdkafka retries on its own; say so at most every 10 s.
                    if last_poll_error.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!("Kafka: {e} (retrying)");
                        last_poll_error = Some(Instant::now());
                    }
                    break;
                }
                Some(Ok(m)) => {
                    let Some(topic) = t.sources.iter().position(|s| s == m.topic()) else {
                        continue;
                    };
                    let task = (topic, m.partition());
                    let (w, offsets) = pending
                        .entry(task)
                        .or_insert_with(|| (BatchWriter::with_capacity(64 << 10, 256), Vec::new()));
                    let headers = m.headers();
                    let hs = headers
                        .into_iter()
                        .flat_map(|h| h.iter().map(|h| (h.key.as_bytes(), h.value)));
                    w.record(
                        offsets.len() as u32,
                        m.key(),
                        m.payload(),
                        m.timestamp().to_millis().unwrap_or(0),
                        hs,
                    );
                    offsets.push(m.offset());
                    count += 1;
                }
            }
        }
        dispatch(&mut pending, &shared, &senders);
        while let Ok((task, why)) = fail_rx.try_recv() {
            fail_task(&consumer, &shared, t, task, &why);
        }
        if last_commit.elapsed() >= t.runtime.commit_interval {
            commit(&consumer, &shared, t, CommitMode::Async);
            last_commit = Instant::now();
        }
    }

    tracing::info!("stopping: finishing in-flight batches");
    dispatch(&mut pending, &shared, &senders);
    drop(senders);
    for w in workers {
        let _ = w.join();
    }
    if let Err(e) = producer.flush(Duration::from_secs(30)) {
        tracing::warn!("flushing outputs: {e}");
    }
    while let Ok((task, why)) = fail_rx.try_recv() {
        fail_task(&consumer, &shared, t, task, &why);
    }
    commit(&consumer, &shared, t, CommitMode::Sync);
    consumer.unsubscribe();
    drop(consumer); // closes the consumer: leaves the group
    tracing::info!("stopped");
    Ok(())
}

/// Hands every non-empty pending batch to its task's worker.
fn dispatch(
    pending: &mut HashMap<Task, (BatchWriter, Vec<i64>)>,
    shared: &Mutex<Shared>,
    senders: &[Sender<Work>],
) {
    for (task, (w, offsets)) in pending.iter_mut() {
        if offsets.is_empty() {
            continue;
        }
        let mut s = shared.lock().expect("not poisoned");
        if s.failed.contains(task) {
            w.clear();
            offsets.clear();
            continue;
        }
        let ticket = BatchTicket::new(offsets.last().expect("non-empty") + 1);
        s.ledgers.entry(*task).or_default().push(ticket.clone());
        drop(s);
        let work = Work {
            task: *task,
            batch: w.finish().to_vec(),
            offsets: std::mem::take(offsets),
            ticket,
        };
        w.clear();
        let worker = (task.1 as usize + task.0) % senders.len();
        if senders[worker].send(work).is_err() {
            tracing::error!("worker {worker} is gone");
        }
    }
}

/// Commits every partition whose committable offset moved.
fn commit(consumer: &BaseConsumer<Ctx>, shared: &Mutex<Shared>, t: &Topology, mode: CommitMode) {
    let mut tpl = TopicPartitionList::new();
    let mut failures = Vec::new();
    {
        let mut s = shared.lock().expect("not poisoned");
        let Shared {
            ledgers, failed, ..
        } = &mut *s;
        for (task, l) in ledgers.iter_mut() {
            if let Err(why) = l.advance()
                && !failed.contains(task)
            {
                failures.push((*task, why));
            }
            if let Some(o) = l.to_commit() {
                let _ = tpl.add_partition_offset(&t.sources[task.0], task.1, Offset::Offset(o));
                l.committed = Some(o);
            }
        }
    }
    for (task, why) in failures {
        fail_task(consumer, shared, t, task, &why);
    }
    if tpl.count() > 0 {
        match consumer.commit(&tpl, mode) {
            Ok(()) => tracing::debug!(offsets = %describe(&tpl), "committed"),
            Err(e) => tracing::warn!("commit failed (will retry at the next interval): {e}"),
        }
    }
}

/// Stops one task: pauses its partition and reports why.
fn fail_task(
    consumer: &BaseConsumer<Ctx>,
    shared: &Mutex<Shared>,
    t: &Topology,
    task: Task,
    why: &str,
) {
    if !shared.lock().expect("not poisoned").failed.insert(task) {
        return;
    }
    let topic = &t.sources[task.0];
    tracing::error!(
        "task {topic}-{} stopped: {why}. The partition is paused and its offset is not committed past the failure; \
         other partitions go on. Fix the operator (or the record) and restart eddy to resume from the last committed offset.",
        task.1
    );
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, task.1);
    if let Err(e) = consumer.pause(&tpl) {
        tracing::warn!("pausing {topic}-{}: {e}", task.1);
    }
}

/// Checks the broker answers and every topic exists, with bounded retries.
fn check_topics(consumer: &BaseConsumer<Ctx>, t: &Topology, servers: &str) -> Result<(), RunError> {
    let start = Instant::now();
    let mut last = String::new();
    for attempt in 1..=CONNECT_ATTEMPTS {
        match consumer.fetch_metadata(None, Duration::from_secs(5)) {
            Ok(md) => {
                let known: HashSet<&str> = md
                    .topics()
                    .iter()
                    .filter(|tp| tp.error().is_none())
                    .map(|tp| tp.name())
                    .collect();
                let missing: Vec<String> = t
                    .sources
                    .iter()
                    .chain(t.sinks.iter().map(|s| &s.topic))
                    .filter(|n| !known.contains(n.as_str()))
                    .cloned()
                    .collect();
                if missing.is_empty() {
                    return Ok(());
                }
                return Err(RunError::MissingTopics(missing));
            }
            Err(e) => {
                last = e.to_string();
                tracing::warn!(
                    "Kafka at {servers} not answering (attempt {attempt}/{CONNECT_ATTEMPTS}): {e}"
                );
                if attempt < CONNECT_ATTEMPTS {
                    std::thread::sleep(Duration::from_secs(1 << (attempt - 1)));
                }
            }
        }
    }
    Err(RunError::Unreachable {
        servers: servers.to_string(),
        attempts: CONNECT_ATTEMPTS,
        secs: start.elapsed().as_secs(),
        last,
    })
}

/// A worker: runs batches through its chain and produces the outputs.
fn worker(
    rx: Receiver<Work>,
    mut chain: Chain,
    producer: &ThreadedProducer<Delivery>,
    t: &Topology,
    fail: &Sender<(Task, String)>,
) {
    let mut failed: HashSet<Task> = HashSet::new();
    for work in rx {
        let Work {
            task,
            batch,
            offsets,
            ticket,
        } = work;
        if failed.contains(&task) {
            ticket.fail("an earlier batch of this task failed".into());
            ticket.done();
            continue;
        }
        let out = match chain.run(&batch, offsets.len()) {
            Ok(out) => out,
            Err(e) => {
                let topic = &t.sources[task.0];
                let at = match e.input_index {
                    Some(i) => format!("offset {}", offsets[i as usize]),
                    None => format!("offsets {}..={}", offsets[0], offsets[offsets.len() - 1]),
                };
                let why = format!(
                    "operator `{}` {} on topic {topic}, partition {}, {at}",
                    e.step, e.error, task.1
                );
                failed.insert(task);
                ticket.fail(why.clone());
                ticket.done();
                let _ = fail.send((task, why));
                continue;
            }
        };
        let view = BatchView::already_checked(&out.batch).expect("the chain checked it");
        for r in view.iter() {
            for sink in t.sinks.iter().filter(|s| s.takes(r.tag)) {
                let mut rec = BaseRecord::<[u8], [u8], Arc<BatchTicket>>::with_opaque_to(
                    &sink.topic,
                    ticket.clone(),
                )
                .timestamp(r.timestamp);
                if let Some(k) = r.key {
                    rec = rec.key(k);
                }
                if let Some(v) = r.value {
                    rec = rec.payload(v);
                }
                if !r.headers.is_empty() {
                    let mut h = OwnedHeaders::new_with_capacity(r.headers.len());
                    for (name, value) in r.headers.iter() {
                        h = h.insert(Header {
                            key: std::str::from_utf8(name).unwrap_or("?"),
                            value,
                        });
                    }
                    rec = rec.headers(h);
                }
                ticket.add();
                loop {
                    match producer.send(rec) {
                        Ok(()) => break,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                            rec = r;
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Err((e, _)) => {
                            ticket.fail(format!("producing to {} failed: {e}", sink.topic));
                            ticket.done();
                            break;
                        }
                    }
                }
            }
        }
        ticket.done(); // processing finished; outputs may still be in flight
    }
}
