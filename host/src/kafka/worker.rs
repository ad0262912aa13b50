//! A worker thread: owns an instance of every operator and the tasks routed
//! to it (a task always goes to the same worker), runs their batches in
//! order, and produces what they output: sink and repartition records,
//! late records, changelog records. Every record a batch produces carries
//! the batch's ticket, so its input offsets are committed only once all of
//! them are acknowledged.
//!
//! At a commit the poll loop asks each worker to flush its tasks' write
//! caches (what that emits is produced and acknowledged first), then to
//! flush their stores and write checkpoints. On a revoke the worker does the
//! same for the revoked tasks, then closes their stores.

use super::instance::{Instance, StoreQuery, WorkerAnswer};
use super::restore;
pub use super::topics::Input;
use crate::metrics::Metrics;
use crate::ops::Records;
use crate::reload::Swap;
use crate::runtime::Chain;
use crate::runtime::dead_letter::{DeadLetter, Parts, SourceAt, batch_headers};
use crate::runtime::deliver::{Output, Source, TaskInfo, deliver};
use crate::runtime::task::{TaskOutput, TaskPipeline};
use crate::runtime::ticket::{BatchTicket, InFlight};
use crate::state::ChangelogRecord;
use crate::state::Checkpoint;
use crate::topology::{ErrorPolicy, Sink, Topology};
use crossbeam_channel::{Receiver, Sender};
use eddy_batch::RecordRef;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, ThreadedProducer};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The header a repartitioned table change carries its old value in.
pub const OLD_VALUE_HEADER: &str = "__eddy.old";

/// A task: a sub-topology and a partition.
pub type TaskId = (usize, i32);

/// Batches of one input partition.
pub struct Work {
    /// Index into the inputs.
    pub input: usize,
    /// The partition.
    pub partition: i32,
    /// The encoded batch.
    pub batch: Vec<u8>,
    /// The offset of each record.
    pub offsets: Vec<i64>,
    /// The batch's processing share of its ticket: its outputs take shares
    /// of their own, so the offsets commit once all are acknowledged.
    pub ticket: InFlight,
}

/// What the poll loop sends a worker.
pub enum Msg {
    /// A batch to run.
    Work(Work),
    /// Flush every task's caches and stores, write checkpoints, then answer.
    Commit(Sender<()>),
    /// Like commit, for these tasks, then close them.
    Close(Vec<TaskId>, Sender<()>),
    /// Open these newly assigned tasks (restoring their stores) before
    /// their first batch.
    Open(Vec<TaskId>),
    /// Read a store of the open tasks.
    Query(Arc<StoreQuery>, Sender<WorkerAnswer>),
}

/// Runs worker `w`'s loop `body`. If it panics (a bug in eddy: operator
/// failures never panic), says so on `died`, then fails every batch it is
/// still sent until its channel closes, so no offset past them is ever
/// committed, and answers commits and queries at once so nothing waits
/// for it.
pub fn guarded(w: usize, rx: &Receiver<Msg>, died: &Sender<(usize, String)>, body: impl FnOnce()) {
    let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) else {
        return;
    };
    let why = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    let _ = died.send((w, why.clone()));
    for msg in rx.iter() {
        match msg {
            Msg::Work(work) => work
                .ticket
                .ticket()
                .fail(format!("worker {w} stopped: {why}")),
            Msg::Commit(reply) | Msg::Close(_, reply) => {
                let _ = reply.send(());
            }
            Msg::Query(_, reply) => {
                let _ = reply.send(Vec::new());
            }
            Msg::Open(_) => {}
        }
    }
}

/// The worker a task runs on: always the same one.
pub fn worker_of(id: TaskId, workers: usize) -> usize {
    (id.0 + id.1 as usize) % workers.max(1)
}

/// Changelog offsets acknowledged by the broker: (topic, partition) → offset.
pub type ChangelogOffsets = Arc<Mutex<HashMap<(String, i32), i64>>>;

/// What every worker shares.
pub struct Shared {
    /// The process's metrics.
    pub metrics: Arc<Metrics>,
    /// The topology.
    pub t: Topology,
    /// Consumed topics.
    pub inputs: Arc<Vec<Input>>,
    /// The producer.
    pub producer: Arc<ThreadedProducer<super::delivery::Delivery>>,
    /// Reports a failed input partition to the poll loop.
    pub fail: Sender<((usize, i32), String)>,
    /// Acknowledged changelog offsets.
    pub changelog_offsets: ChangelogOffsets,
    /// Settings for restore consumers.
    pub restore_client: ClientConfig,
    /// `<state dir>/<application id>`.
    pub state_root: PathBuf,
    /// Which tasks are assigned and open.
    pub instance: Arc<Instance>,
}

struct Task {
    pipeline: TaskPipeline,
    /// Dropped records already reported.
    reported: crate::ops::Dropped,
    /// Changelog topic of each store.
    changelogs: Vec<String>,
    /// Where restore ended, per changelog.
    restored_to: HashMap<String, i64>,
    /// The offsets of the last checkpoint written, per changelog.
    checkpointed: HashMap<String, i64>,
}

/// Changelog records after which a commit also checkpoints (flushing
/// RocksDB's memtables costs; Kafka Streams waits for 10,000 too).
const CHECKPOINT_EVERY: i64 = 10_000;

/// Runs until the channel closes. New operator versions from `swaps` are
/// swapped in between messages: at a batch boundary, for every task of the
/// worker at once.
pub fn worker(rx: &Receiver<Msg>, swaps: Receiver<Swap>, mut chain: Chain, s: &Shared) {
    let mut tasks: HashMap<TaskId, Task> = HashMap::new();
    let mut failed: HashSet<(usize, i32)> = HashSet::new();
    let mut swaps = swaps;
    loop {
        let msg = crossbeam_channel::select! {
            recv(swaps) -> swap => {
                match swap {
                    Ok(swap) => swap.apply(&mut chain),
                    // No more reloads: stop listening for them.
                    Err(_) => swaps = crossbeam_channel::never(),
                }
                continue;
            }
            recv(rx) -> msg => match msg {
                Ok(msg) => msg,
                Err(_) => break,
            },
        };
        // A swap that arrived with the message goes first.
        while let Ok(swap) = swaps.try_recv() {
            swap.apply(&mut chain);
        }
        match msg {
            Msg::Work(work) => run_batch(work, &mut chain, &mut tasks, &mut failed, s),
            Msg::Commit(reply) => {
                let ids: Vec<TaskId> = tasks.keys().copied().collect();
                commit(&ids, &mut chain, &mut tasks, s, false);
                let _ = reply.send(());
            }
            Msg::Close(ids, reply) => {
                commit(&ids, &mut chain, &mut tasks, s, true);
                for id in &ids {
                    if tasks.remove(id).is_some() {
                        tracing::info!(task = %name(*id), "closed");
                    }
                }
                failed.retain(|(input, p)| !ids.contains(&(s.inputs[*input].sub, *p)));
                let _ = reply.send(());
            }
            Msg::Open(ids) => {
                for id in ids {
                    if tasks.contains_key(&id) {
                        continue;
                    }
                    match open(id, s) {
                        Ok(task) => {
                            tasks.insert(id, task);
                        }
                        // The first batch tries again, and stops the
                        // partition if it fails too.
                        Err(why) => {
                            tracing::error!(task = %name(id), "could not open: {why}");
                            s.instance.broken(id, &why);
                        }
                    }
                }
            }
            Msg::Query(q, reply) => {
                let open = tasks
                    .iter_mut()
                    .map(|(id, task)| (*id, task.pipeline.state().map(|s| &*s)));
                let _ = reply.send(super::instance::answer(&q, open));
            }
        }
    }
    let ids: Vec<TaskId> = tasks.keys().copied().collect();
    commit(&ids, &mut chain, &mut tasks, s, true);
}

fn name(id: TaskId) -> String {
    format!("{}_{}", id.0, id.1)
}

fn run_batch(
    work: Work,
    chain: &mut Chain,
    tasks: &mut HashMap<TaskId, Task>,
    failed: &mut HashSet<(usize, i32)>,
    s: &Shared,
) {
    let Work {
        input,
        partition,
        batch,
        offsets,
        ticket: processing,
    } = work;
    let topic = &s.inputs[input].topic;
    let fail = |failed: &mut HashSet<(usize, i32)>, why: String| {
        failed.insert((input, partition));
        processing.ticket().fail(why.clone());
        let _ = s.fail.send(((input, partition), why));
    };
    if failed.contains(&(input, partition)) {
        processing
            .ticket()
            .fail("an earlier batch of this partition failed".into());
        return;
    }
    let id = (s.inputs[input].sub, partition);
    let task = match tasks.entry(id) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(v) => match open(id, s) {
            Ok(task) => v.insert(task),
            Err(why) => {
                s.instance.broken(id, &why);
                return fail(failed, format!("task {} could not start: {why}", name(id)));
            }
        },
    };
    let m = &s.metrics;
    m.topic(&m.records_in, topic, offsets.len() as u64);
    m.batch_records.observe(offsets.len() as f64);
    let started = Instant::now();
    let records = Records::new(batch, (0..offsets.len() as u32).collect());
    let processed = task.pipeline.process(s.inputs[input].read, chain, records);
    m.batch_seconds.observe(started.elapsed().as_secs_f64());
    match processed {
        Ok(out) => {
            let source = Some((topic.as_str(), partition, &offsets[..]));
            deliver_output(&out, task, id, chain, source, &processing, s);
        }
        Err(e) => {
            let at = match e.input_index() {
                Some(i) => format!("offset {}", offsets[i as usize]),
                None => format!("offsets {}..={}", offsets[0], offsets[offsets.len() - 1]),
            };
            fail(
                failed,
                format!("{e}, on topic {topic}, partition {partition}, {at}"),
            );
        }
    }
    // `processing` drops here: processing finished, outputs may still be
    // in flight.
}

/// Opens a task's stores and restores them from their changelogs.
fn open(id: TaskId, s: &Shared) -> Result<Task, String> {
    let task = open_stores(id, s)?;
    s.instance.opened(id);
    Ok(task)
}

fn open_stores(id: TaskId, s: &Shared) -> Result<Task, String> {
    let stores = s.t.plan.store_names(id.0);
    let changelogs: Vec<String> = stores.iter().map(|st| s.t.changelog_topic(st)).collect();
    if changelogs.is_empty() {
        let pipeline = TaskPipeline::new(&s.t, id.0, None).map_err(|e| e.to_string())?;
        return Ok(Task {
            pipeline,
            reported: crate::ops::Dropped::default(),
            changelogs,
            restored_to: HashMap::new(),
            checkpointed: HashMap::new(),
        });
    }
    let dir = s.state_root.join(name(id));
    let persistent = s.t.state.store == crate::topology::StoreKind::RocksDb;
    let checkpoint = if persistent {
        restore::prepare_dir(&dir, &changelogs, id.1)
    } else {
        None
    };
    let opening = Instant::now();
    let mut pipeline = TaskPipeline::new(&s.t, id.0, Some(&dir)).map_err(|e| e.to_string())?;
    let opened_ms = opening.elapsed().as_millis() as u64;
    let state = pipeline.state().expect("stores");
    let started = Instant::now();
    let restored = restore::restore(
        rdkafka::producer::Producer::client(s.producer.as_ref()),
        &s.restore_client,
        state,
        &changelogs,
        id.1,
        checkpoint.as_ref(),
        &restore::Progress {
            task: &name(id),
            metrics: &s.metrics,
        },
    )?;
    let task_labels = crate::metrics::TaskLabels { task: name(id) };
    s.metrics
        .restored_records
        .get_or_create(&task_labels)
        .inc_by(restored.records);
    s.metrics
        .restore_remaining
        .get_or_create(&task_labels)
        .set(0);
    tracing::info!(
        task = %name(id),
        records = restored.records,
        from = ?restored.from,
        open_ms = opened_ms,
        took_ms = started.elapsed().as_millis() as u64,
        "restored"
    );
    let restored_to = restored
        .to
        .iter()
        .map(|(t, _, o)| (t.clone(), *o))
        .collect();
    Ok(Task {
        pipeline,
        reported: crate::ops::Dropped::default(),
        changelogs,
        restored_to,
        checkpointed: HashMap::new(),
    })
}

/// Flushes the tasks' caches (producing what that emits), waits until
/// everything they produced is acknowledged, then checkpoints their stores:
/// always when `force` (closing), else once enough was written since the
/// last checkpoint.
fn commit(
    ids: &[TaskId],
    chain: &mut Chain,
    tasks: &mut HashMap<TaskId, Task>,
    s: &Shared,
    force: bool,
) {
    let mut tickets = Vec::new();
    for id in ids {
        let Some(task) = tasks.get_mut(id) else {
            continue;
        };
        let d = task.pipeline.dropped;
        if d != task.reported {
            tracing::warn!(
                task = %name(*id),
                late = d.late - task.reported.late,
                no_key = d.no_key - task.reported.no_key,
                "records dropped since the last commit: late for their windows, or without a key"
            );
            task.reported = d;
        }
        let (ticket, processing) = BatchTicket::new(0);
        match task.pipeline.flush(chain) {
            Ok(out) => deliver_output(&out, task, *id, chain, None, &processing, s),
            Err(e) => ticket.fail(format!("flushing task {}: {e}", name(*id))),
        }
        drop(processing);
        tickets.push((*id, ticket));
    }
    // Checkpoints may only cover what the broker has.
    let deadline = Instant::now() + Duration::from_secs(60);
    for (id, ticket) in &tickets {
        match ticket.wait(deadline) {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(task = %name(*id), "changelog writes not acknowledged within 60s; not checkpointing");
            }
            Err(why) => tracing::error!(task = %name(*id), "{why}"),
        }
    }
    for (id, ticket) in tickets {
        if ticket.finished() != Ok(true) {
            continue;
        }
        let task = tasks.get_mut(&id).expect("present");
        let Some(state) = task.pipeline.state() else {
            continue;
        };
        for (store, name_of) in s.t.plan.store_names(id.0).iter().enumerate() {
            s.metrics
                .store_bytes
                .get_or_create(&crate::metrics::StoreLabels {
                    store: name_of.clone(),
                    task: name(id),
                })
                .set(state.store_bytes(store) as i64);
        }
        let acked = s.changelog_offsets.lock().expect("not poisoned");
        let mut cp = Checkpoint::default();
        let mut written = 0;
        for topic in &task.changelogs {
            let after_acked = acked.get(&(topic.clone(), id.1)).map(|o| o + 1);
            let restored = task.restored_to.get(topic).copied();
            let offset = after_acked.max(restored).unwrap_or(0);
            written += offset - task.checkpointed.get(topic).copied().unwrap_or(0);
            cp.offsets.insert((topic.clone(), id.1), offset);
        }
        drop(acked);
        if !force && written < CHECKPOINT_EVERY {
            continue;
        }
        match state.checkpoint(&cp) {
            Ok(()) => {
                task.checkpointed = cp
                    .offsets
                    .iter()
                    .map(|((t, _), o)| (t.clone(), *o))
                    .collect();
            }
            Err(e) => tracing::warn!(task = %name(id), "writing the checkpoint: {e}"),
        }
    }
}

/// Delivers a task's output through the producer, each record a share of
/// `held`'s batch.
fn deliver_output(
    out: &TaskOutput,
    task: &Task,
    id: TaskId,
    chain: &Chain,
    source: Source<'_>,
    held: &InFlight,
    s: &Shared,
) {
    let info = TaskInfo {
        t: &s.t,
        partition: id.1,
        changelogs: &task.changelogs,
    };
    deliver(
        out,
        &info,
        chain,
        source,
        held,
        &mut Producing { s },
        Some(&s.metrics),
    );
}

/// The producer as the I/O layer of a task's output.
struct Producing<'a> {
    s: &'a Shared,
}

impl Output for Producing<'_> {
    fn to_sink(
        &mut self,
        sink: &Sink,
        r: &RecordRef<'_>,
        at: Option<SourceAt<'_>>,
        held: &InFlight,
    ) {
        send_to_sink(self.s, held, sink, r, at);
    }

    fn to_topic(&mut self, topic: &str, r: &RecordRef<'_>, old: bool, held: &InFlight) {
        send(self.s, held, topic, None, r, old);
    }

    fn to_changelog(&mut self, topic: &str, partition: i32, c: &ChangelogRecord, held: &InFlight) {
        let mut rec = BaseRecord::<[u8], [u8], InFlight>::with_opaque_to(topic, held.hold())
            .partition(partition)
            .key(&c.key)
            .timestamp(c.timestamp);
        if let Some(v) = &c.value {
            rec = rec.payload(v);
        }
        send_record(self.s, topic, rec);
    }

    fn dead_letter(&mut self, d: &DeadLetter, held: &InFlight) {
        super::delivery::send_dead(&self.s.producer, held.hold(), d);
    }
}

/// Sends one record; `old` puts a table change's old value in a header.
fn send(
    s: &Shared,
    held: &InFlight,
    topic: &str,
    partition: Option<i32>,
    r: &RecordRef<'_>,
    old: bool,
) {
    let mut rec = record(held.hold(), topic, r, old);
    if let Some(p) = partition {
        rec = rec.partition(p);
    }
    send_record(s, topic, rec);
}

/// `r` as a record for `topic`, carrying the share `held`; `old` puts a
/// table change's old value in a header.
fn record<'a>(
    held: InFlight,
    topic: &'a str,
    r: &RecordRef<'a>,
    old: bool,
) -> BaseRecord<'a, [u8], [u8], InFlight> {
    let mut rec =
        BaseRecord::<[u8], [u8], InFlight>::with_opaque_to(topic, held).timestamp(r.timestamp);
    if let Some(k) = r.key {
        rec = rec.key(k);
    }
    if let Some(v) = r.value {
        rec = rec.payload(v);
    }
    let carry_old = old && r.aux.is_some();
    if !r.headers.is_empty() || carry_old {
        let mut h = copy_headers(r, 1);
        if carry_old {
            h = h.insert(Header {
                key: OLD_VALUE_HEADER,
                value: r.aux,
            });
        }
        rec = rec.headers(h);
    }
    rec
}

/// Sends a sink record; one the client refuses on its own account (too
/// large, say) goes by the sink's `on_error`.
fn send_to_sink(
    s: &Shared,
    held: &InFlight,
    sink: &Sink,
    r: &RecordRef<'_>,
    from: Option<(&str, i32, i64)>,
) {
    let rec = record(held.hold(), &sink.topic, r, false);
    if let Err(refusal) = try_send(&s.producer, rec) {
        let (e, refused_record) = *refusal;
        drop(refused_record); // its share: the outcome is decided here
        let why = format!("producing to {} failed: {e}", sink.topic);
        if !refused(s, held, sink, &why, &e, r, from) {
            held.ticket().fail(why);
        }
    }
}

/// Whether a production error is about the record itself (its size or
/// contents) rather than the broker or the connection: only those go by
/// a sink's `on_error`.
pub fn record_refused(e: &KafkaError) -> bool {
    matches!(
        e,
        KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::MessageBatchTooLarge
                | RDKafkaErrorCode::InvalidTimestamp
                | RDKafkaErrorCode::InvalidRecord
        )
    )
}

/// Whether a production error is about the record's size: its dead letter
/// then goes without the value (it would be refused too).
pub fn too_large(e: &KafkaError) -> bool {
    matches!(
        e,
        KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::MessageBatchTooLarge
        )
    )
}

/// Applies `sink`'s policy to a record it could not take: false when the
/// policy is to fail (or the error is not the record's).
fn refused(
    s: &Shared,
    held: &InFlight,
    sink: &Sink,
    why: &str,
    e: &KafkaError,
    r: &RecordRef<'_>,
    from: Option<(&str, i32, i64)>,
) -> bool {
    if !record_refused(e) {
        return false;
    }
    let policy = match &sink.on_error {
        ErrorPolicy::Fail => return false,
        ErrorPolicy::Skip => {
            tracing::warn!("skipped a record: {why}");
            "skip"
        }
        ErrorPolicy::DeadLetter(topic) => {
            tracing::warn!("dead-lettered a record to {topic}: {why}");
            let headers = batch_headers(r);
            let parts = Parts {
                key: r.key,
                value: r.value,
                timestamp: r.timestamp,
                headers: &headers,
            };
            let letter = DeadLetter::refused(topic, &sink.topic, parts, why, too_large(e), from);
            super::delivery::send_dead(&s.producer, held.hold(), &letter);
            "dead-letter"
        }
    };
    s.metrics
        .records_unwritable
        .get_or_create(&crate::metrics::TopicPolicyLabels {
            topic: sink.topic.clone(),
            policy: policy.to_string(),
        })
        .inc();
    true
}

/// `r`'s headers, with room for `more`.
fn copy_headers(r: &RecordRef<'_>, more: usize) -> OwnedHeaders {
    let mut h = OwnedHeaders::new_with_capacity(r.headers.len() + more);
    for (name, value) in r.headers.iter() {
        h = h.insert(Header {
            key: std::str::from_utf8(name).unwrap_or("?"),
            value,
        });
    }
    h
}

fn send_record<'a>(s: &Shared, topic: &str, rec: BaseRecord<'a, [u8], [u8], InFlight>) {
    send_with_retry(&s.producer, topic, rec);
}

/// Hands a record to the producer, waiting while its queue is full; a
/// refusal fails the record's batch.
pub fn send_with_retry<'a>(
    producer: &ThreadedProducer<super::delivery::Delivery>,
    topic: &str,
    rec: BaseRecord<'a, [u8], [u8], InFlight>,
) {
    if let Err(refusal) = try_send(producer, rec) {
        let (e, refused) = *refusal;
        refused
            .delivery_opaque
            .ticket()
            .fail(format!("producing to {topic} failed: {e}"));
    }
}

/// A record the producer would not take, and why.
type Refusal<'a> = (KafkaError, BaseRecord<'a, [u8], [u8], InFlight>);

/// Hands a record to the producer; while its queue is full, serves
/// delivery reports (which make room) and tries again.
fn try_send<'a>(
    producer: &ThreadedProducer<super::delivery::Delivery>,
    mut rec: BaseRecord<'a, [u8], [u8], InFlight>,
) -> Result<(), Box<Refusal<'a>>> {
    loop {
        match producer.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                rec = r;
                producer.poll(Duration::from_millis(1));
            }
            Err(refusal) => return Err(Box::new(refusal)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ticket::PartitionLedger;

    #[test]
    fn a_panicking_worker_fails_its_batch_and_every_later_one_and_says_why() {
        let (tx, rx) = crossbeam_channel::unbounded::<Msg>();
        let (died_tx, died) = crossbeam_channel::unbounded();
        let work = |ticket: InFlight| Work {
            input: 0,
            partition: 0,
            batch: Vec::new(),
            offsets: vec![0],
            ticket,
        };
        let (in_hand, in_hand_share) = BatchTicket::new(1);
        let (queued, queued_share) = BatchTicket::new(2);
        let mut ledger = PartitionLedger::default();
        ledger.push(in_hand.clone());
        ledger.push(queued.clone());
        tx.send(Msg::Work(work(queued_share))).unwrap();
        let (reply, committed) = crossbeam_channel::bounded(1);
        tx.send(Msg::Commit(reply)).unwrap();
        drop(tx);
        let batch = work(in_hand_share);
        guarded(3, &rx, &died_tx, move || {
            let _batch = batch;
            panic!("index out of bounds");
        });
        assert_eq!(
            died.try_recv().unwrap(),
            (3, "index out of bounds".to_string())
        );
        assert!(committed.try_recv().is_ok(), "a commit is answered at once");
        assert!(in_hand.finished().unwrap_err().contains("panicked"));
        assert_eq!(
            queued.finished(),
            Err("worker 3 stopped: index out of bounds".into())
        );
        assert!(ledger.advance().is_err());
        assert_eq!(ledger.committable, None, "no offset commits past them");
    }

    #[test]
    fn a_worker_that_ends_normally_reports_nothing() {
        let (_tx, rx) = crossbeam_channel::unbounded::<Msg>();
        let (died_tx, died) = crossbeam_channel::unbounded();
        guarded(0, &rx, &died_tx, || {});
        assert!(died.try_recv().is_err());
    }
}
