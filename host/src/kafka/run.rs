//! `eddy run`: the Kafka loop, at-least-once.
//!
//! One thread polls the consumer (source topics and the application's
//! repartition topics) and encodes records straight into a batch per input
//! partition; worker threads ([`super::worker`]) each own an instance of
//! every operator and run the tasks routed to them (a task, a sub-topology
//! and a partition, always goes to the same worker). Outputs, including
//! changelog writes, are produced with the batch's ticket as delivery
//! opaque; a partition's offset is committed only once every output of it
//! and of every earlier batch was acknowledged, and, for stateful tasks,
//! after the write caches were flushed and acknowledged.
//! A revoked partition is drained (bounded), its task flushed, checkpointed
//! and closed, and its offsets committed before it goes.
//! An operator failure stops only its partition: it is paused, the error
//! names the operator, topic, partition and offset, and nothing past the
//! failed batch is committed.
//! A worker thread that panics (a bug in eddy) fails the batches it held
//! and is sent, so nothing past them is committed; eddy then stops as on
//! SIGTERM and `run` returns the panic as an error.

use super::broker::check_topics;
use super::config::{consumer_config, producer_config};
use super::delivery::{ChangelogOffsets, Delivery, Letter, owned_headers, spawn_dead_letters};
use super::dispatch::{Pending, dispatch, drop_revoked};
pub use super::error::RunError;
use super::health::Health;
use super::instance::Instance;
use super::offsets::{commit, fail_task, watermarks};
use super::order::Held;
use super::produce::OLD_VALUE_HEADER;
use super::produce::Producing;
use super::rebalance::{Ctx, Partitions};
use super::topics;
use super::topics::Task;
use super::worker::{self, Msg};
use crate::metrics::Metrics;
use crate::reload::Swap;
use crate::runtime::dead_letter::unreadable_why;
use crate::runtime::intake::{self, Intake};
use crate::state::global::Globals;
use crate::status::Status;
use crate::topology::Topology;
use crate::wasm::Chain;
use crate::wasm::LoadedOperator;
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{Producer, ThreadedProducer};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Asks every worker to flush its tasks and checkpoint; waits (bounded).
fn flush_workers(workers: &[Sender<Msg>]) {
    let mut replies = Vec::new();
    for w in workers {
        let (tx, rx) = bounded(1);
        if w.send(Msg::Commit(tx)).is_ok() {
            replies.push(rx);
        }
    }
    for r in replies {
        if r.recv_timeout(Duration::from_secs(120)).is_err() {
            tracing::warn!("a worker did not flush within 120s");
        }
    }
}

/// What the Kafka runtime is given to run with.
pub struct Wiring<'a> {
    /// The loaded operators, one per step (none for host steps).
    pub ops: &'a [Option<LoadedOperator>],
    /// The process's metrics.
    pub metrics: Arc<Metrics>,
    /// New operator versions, one channel per worker.
    pub swaps: Vec<Receiver<Swap>>,
    /// The admin API's address, published to the group in the consumer's
    /// `client.id` (where other instances find the owner of a key).
    pub advertised: Option<String>,
}

/// Runs the topology against Kafka until `shutdown` is set; `started` is
/// handed the instance's status once its tasks can be asked about.
pub fn run(
    t: &Topology,
    wiring: Wiring<'_>,
    started: impl FnOnce(Arc<dyn Status>) -> Result<(), RunError>,
    shutdown: &Arc<AtomicBool>,
) -> Result<(), RunError> {
    let Wiring {
        ops,
        metrics,
        swaps,
        advertised,
    } = wiring;
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
    let shared = Arc::new(Mutex::new(Partitions::default()));
    let mut consumer_cfg = consumer_config(t);
    if let Some(a) = &advertised
        && !t.kafka.iter().any(|(k, _)| k == "client.id")
    {
        consumer_cfg.set(
            "client.id",
            super::instance::client_id(&t.application_id, a),
        );
    }
    let health = Arc::new(Health::new(t.runtime.stall_after, metrics.clone()));
    let consumer: BaseConsumer<Ctx> = consumer_cfg.create_with_context(Ctx {
        shared: shared.clone(),
        topics: std::sync::OnceLock::new(),
        workers: Mutex::new(Vec::new()),
        rebalanced: AtomicBool::new(false),
        instance: std::sync::OnceLock::new(),
        health: health.clone(),
    })?;
    let internal = topics::internal_topics(t);
    let changelog_offsets: ChangelogOffsets = Arc::default();
    let (dead_tx, dead_rx) = unbounded::<Letter>();
    let letters = dead_tx.clone();
    let producer: ThreadedProducer<Delivery> =
        producer_config(t).create_with_context(Delivery {
            changelogs: internal
                .iter()
                .filter(|i| i.changelog)
                .map(|i| i.name.clone())
                .collect(),
            offsets: changelog_offsets.clone(),
            sinks: t
                .sinks
                .iter()
                .map(|s| (s.topic.clone(), s.on_error.clone()))
                .collect(),
            metrics: metrics.clone(),
            dead: dead_tx,
            dead_letter_max: AtomicUsize::new(super::config::producer_max_bytes(t)),
        })?;
    let Some(md) = check_topics(&consumer, t, &servers, shutdown)? else {
        tracing::info!("stopped while connecting to Kafka");
        return Ok(());
    };
    let inputs = Arc::new(topics::inputs(t, &md).map_err(RunError::Config)?);
    let _ = consumer
        .context()
        .topics
        .set(inputs.iter().map(|i| (i.topic.clone(), i.sub)).collect());
    let mut created = internal;
    created.extend(topics::dead_letter_topics(t));
    let partitions = topics::source_partitions(t, &md);
    topics::check_copartitioned(t, &inputs, &md, partitions).map_err(RunError::Config)?;
    topics::size_repartitions(t, &inputs, &md, partitions, &mut created);
    let admin: AdminClient<DefaultClientContext> = super::config::admin_config(t).create()?;
    if !created.is_empty() {
        topics::ensure(&admin, &md, &created, partitions).map_err(RunError::Config)?;
        let names: Vec<String> = created.iter().map(|it| it.name.clone()).collect();
        topics::wait_visible(&consumer, &names, Duration::from_secs(30))
            .map_err(RunError::Config)?;
    }
    // What the sinks and the dead-letter topics accept.
    let dead_letter_topics: Vec<String> = topics::dead_letter_topics(t)
        .into_iter()
        .map(|d| d.name)
        .collect();
    let mut written: Vec<String> = t.sinks.iter().map(|s| s.topic.clone()).collect();
    written.extend(dead_letter_topics.iter().cloned());
    let limits = Arc::new(super::limits::describe(&admin, &written));
    let dead_max = dead_letter_topics
        .iter()
        .filter_map(|d| limits.get(d))
        .map(|l| l.max_message_bytes)
        .fold(super::config::producer_max_bytes(t), usize::min);
    producer
        .context()
        .dead_letter_max
        .store(dead_max, Ordering::Relaxed);
    // Global tables are read whole before any task processes a record.
    let globals = Globals::new(t.sources.iter().map(|s| s.global));
    let _global_reader = super::global::start(t, &globals, shutdown).map_err(RunError::Config)?;
    let consumed: Vec<&str> = inputs.iter().map(|i| i.topic.as_str()).collect();
    consumer.subscribe(&consumed)?;

    let producer = Arc::new(producer);
    spawn_dead_letters(Arc::downgrade(&producer), dead_rx);
    let first_inputs = (0..t.plan.subtopologies.len())
        .map(|sub| {
            inputs
                .iter()
                .find(|i| i.sub == sub)
                .map_or_else(String::new, |i| i.topic.clone())
        })
        .collect();
    let instance = Arc::new(Instance::new(
        t,
        partitions,
        first_inputs,
        producer.clone(),
        advertised,
        (health.clone(), globals.clone()),
    ));
    let _ = consumer.context().instance.set(instance.clone());
    let (fail_tx, fail_rx) = unbounded::<(Task, String)>();
    let (died_tx, died_rx) = unbounded::<(usize, String)>();
    let worker_shared = Arc::new(worker::Env {
        metrics: metrics.clone(),
        t: t.clone(),
        inputs: inputs.clone(),
        fail: fail_tx,
        io: Producing {
            producer: producer.clone(),
            metrics: metrics.clone(),
            changelog_offsets,
            restore_client: super::config::restore_config(t),
            state_root: t.state.dir.join(&t.application_id),
            limits,
            globals,
        },
        instance: instance.clone(),
    });
    let mut senders: Vec<Sender<Msg>> = Vec::new();
    let mut workers = Vec::new();
    let mut swap_receivers = swaps.into_iter();
    for w in 0..t.runtime.workers {
        let (tx, rx) = bounded::<Msg>(4);
        senders.push(tx);
        let chain = Chain::new(ops)?.with_metrics(metrics.clone());
        let died_tx = died_tx.clone();
        let swaps = swap_receivers.next().expect("one per worker");
        let ws = worker_shared.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("eddy-worker-{w}"))
                .spawn(move || {
                    worker::guarded(w, &rx, &died_tx, || worker::worker(&rx, swaps, chain, &ws));
                })
                .expect("spawn worker"),
        );
    }
    instance.set_workers(senders.clone());
    started(instance.clone())?;
    drop(worker_shared);
    *consumer.context().workers.lock().expect("not poisoned") = senders.clone();
    let stateful = !t.stores().is_empty();
    tracing::info!(application = %t.application_id, workers = t.runtime.workers, "running; Ctrl-C stops gracefully");

    let mut pending: HashMap<Task, Pending> = HashMap::new();
    let mut held = Held::new(&inputs.iter().map(|i| i.sub).collect::<Vec<_>>());
    // Whether an input partition has nothing more to fetch: its next
    // record (or, before any, where it starts) is at its high watermark
    // (none: not known yet). One not assigned here has nothing to wait for.
    let from_end = t.kafka.iter().any(|(k, v)| {
        k == "auto.offset.reset" && matches!(v.as_str(), "latest" | "largest" | "end")
    });
    let caught_up = |task: Task, position: Option<i64>| {
        let start = || {
            let s = shared.lock().expect("not poisoned");
            s.starts.get(&task).copied()
        };
        let Some(at) = position.map(Some).or_else(start) else {
            return Some(true);
        };
        let (low, high) = watermarks(&consumer, &inputs[task.0].topic, task.1)?;
        // Without a committed offset, it starts where the reset policy says.
        Some(at.unwrap_or(if from_end { high } else { low }) >= high)
    };
    let mut last_commit = Instant::now();
    let mut last_poll_error = None::<Instant>;
    let mut last_look = None::<Instant>;
    let mut failure = None;
    while !shutdown.load(Ordering::Relaxed) {
        health.beat();
        // Stuck batches, every second.
        if last_look.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            health.set_stalled(
                shared
                    .lock()
                    .expect("not poisoned")
                    .stalled(&inputs, health.stall_after()),
            );
            last_look = Some(Instant::now());
        }
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
                    let Some(input) = inputs.iter().position(|i| i.topic == m.topic()) else {
                        continue;
                    };
                    let task = (input, m.partition());
                    if consumer.context().rebalanced.swap(false, Ordering::AcqRel) {
                        drop_revoked(&mut pending, &mut held, &shared);
                    }
                    let kafka_ts = m.timestamp().to_millis().unwrap_or(0);
                    let p = pending.entry(task).or_insert_with(Pending::new);
                    let taken = match inputs[input].source() {
                        Some(src) => {
                            let at = (m.topic(), m.partition(), m.offset());
                            let headers = || owned_headers(&m);
                            let (key, value) = (m.key(), m.payload());
                            let source = &t.sources[src];
                            match intake::take(
                                source,
                                key,
                                value,
                                kafka_ts,
                                headers,
                                at,
                                Some(&metrics),
                            ) {
                                Intake::Take(ts) => Some(ts),
                                Intake::Skip => None,
                                Intake::Dead(letter) => {
                                    p.dead.push(letter);
                                    None
                                }
                                Intake::Fail(e) => {
                                    let why = unreadable_why(&e, at);
                                    fail_task(&consumer, &shared, &inputs, task, &why);
                                    continue;
                                }
                            }
                        }
                        None => Some(kafka_ts),
                    };
                    // Skipped and dead-lettered records are done with too.
                    p.next = Some(m.offset() + 1);
                    p.position = p.next;
                    let Some(timestamp) = taken else { continue };
                    p.head.get_or_insert(timestamp);
                    let headers = m.headers();
                    let old = headers.as_ref().and_then(|h| {
                        h.iter()
                            .find(|h| inputs[input].source().is_none() && h.key == OLD_VALUE_HEADER)
                            .map(|h| h.value)
                    });
                    let hs = headers.into_iter().flat_map(|h| {
                        h.iter()
                            .filter(|h| h.key != OLD_VALUE_HEADER)
                            .map(|h| (h.key.as_bytes(), h.value))
                    });
                    p.batch.record_full(
                        p.offsets.len() as u32,
                        m.key(),
                        m.payload(),
                        old.flatten(),
                        0,
                        timestamp,
                        hs,
                    );
                    p.offsets.push(m.offset());
                    count += 1;
                }
            }
        }
        if consumer.context().rebalanced.swap(false, Ordering::AcqRel) {
            drop_revoked(&mut pending, &mut held, &shared);
        }
        dispatch(
            &mut pending,
            &mut held,
            caught_up,
            false,
            &shared,
            &senders,
            &inputs,
            &producer,
        );
        while let Ok((task, why)) = fail_rx.try_recv() {
            fail_task(&consumer, &shared, &inputs, task, &why);
        }
        if let Ok((worker, why)) = died_rx.try_recv() {
            tracing::error!("worker {worker} stopped: {why}; stopping eddy");
            metrics.workers_failed.inc();
            instance.worker_failed(worker, t.runtime.workers, &why);
            failure = Some(RunError::WorkerFailed { worker, why });
            break;
        }
        if last_commit.elapsed() >= t.runtime.commit_interval {
            if stateful {
                flush_workers(&senders);
            }
            commit(&consumer, &shared, &inputs, CommitMode::Async);
            last_commit = Instant::now();
        }
    }

    tracing::info!("stopping: finishing in-flight batches");
    dispatch(
        &mut pending,
        &mut held,
        caught_up,
        true,
        &shared,
        &senders,
        &inputs,
        &producer,
    );
    if stateful {
        flush_workers(&senders);
    }
    consumer
        .context()
        .workers
        .lock()
        .expect("not poisoned")
        .clear();
    instance.set_workers(Vec::new());
    drop(senders);
    for w in workers {
        let _ = w.join();
    }
    if let Err(e) = producer.flush(Duration::from_secs(30)) {
        tracing::warn!("flushing outputs: {e}");
    }
    // Dead letters of records refused during that flush: once the
    // dead-letter thread has handed them all over, flush again (bounded:
    // what is not sent keeps its offset uncommitted).
    let (handed, all_handed) = bounded(1);
    if letters.send(Letter::Flush(handed)).is_ok()
        && all_handed.recv_timeout(Duration::from_secs(5)).is_ok()
        && let Err(e) = producer.flush(Duration::from_secs(30))
    {
        tracing::warn!("flushing dead letters: {e}");
    }
    drop(letters);
    while let Ok((task, why)) = fail_rx.try_recv() {
        fail_task(&consumer, &shared, &inputs, task, &why);
    }
    commit(&consumer, &shared, &inputs, CommitMode::Sync);
    consumer.unsubscribe();
    drop(consumer); // closes the consumer: leaves the group
    tracing::info!("stopped");
    failure.map_or(Ok(()), Err)
}
