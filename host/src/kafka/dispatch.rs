//! From the poll loop to the workers: what was polled for each input
//! partition waits in a [`Pending`] batch; dispatching gives each batch a
//! ticket on its partition's ledger and hands it to its task's worker
//! (for a task with several inputs, in timestamp order: [`super::order`]).

use super::delivery::Delivery;
use super::order::{BACKPRESSURE, Chunk, Held};
use super::rebalance::Partitions;
use super::send::send_dead;
use super::topics::{Input, Task};
use super::worker::{Msg, Work, worker_of};
use crate::runtime::dead_letter::DeadLetter;
use crate::runtime::ticket::BatchTicket;
use crossbeam_channel::Sender;
use eddy_batch::BatchWriter;
use rdkafka::producer::ThreadedProducer;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// What the poll loop gathered for one input partition since it last
/// dispatched it.
pub(super) struct Pending {
    pub batch: BatchWriter,
    /// The offset of each record in the batch.
    pub offsets: Vec<i64>,
    /// The offset after the last record taken, batched or not (records
    /// skipped or dead-lettered at the source are passed too).
    pub next: Option<i64>,
    /// Records whose event time could not be read, for a dead-letter topic.
    pub dead: Vec<DeadLetter>,
    /// The timestamp of the first record in the batch.
    pub head: Option<i64>,
    /// The offset after the last record taken from the partition so far
    /// (kept across batches).
    pub position: Option<i64>,
}

impl Pending {
    pub fn new() -> Self {
        Pending {
            batch: BatchWriter::with_capacity(64 << 10, 256),
            offsets: Vec::new(),
            next: None,
            dead: Vec::new(),
            head: None,
            position: None,
        }
    }
}

/// Drops unsent records of partitions revoked since the last look.
pub(super) fn drop_revoked(
    pending: &mut HashMap<Task, Pending>,
    held: &mut Held,
    shared: &Mutex<Partitions>,
) {
    let revoked = std::mem::take(&mut shared.lock().expect("not poisoned").revoked);
    for t in revoked {
        pending.remove(&t);
        held.drop_task(t);
    }
}

/// Hands every pending batch to its task's worker, and sends the dead
/// letters gathered with it under the same ticket (so its offsets commit
/// only once they are acknowledged). The batches of tasks with several
/// inputs go through `held`, in timestamp order ([`super::order`]);
/// `caught_up(task, position)` says whether an input partition whose next
/// record is at `position` (none: not read from yet) has nothing more to
/// fetch (none: not known); `all` sends everything held (stopping).
#[allow(clippy::too_many_arguments)]
pub(super) fn dispatch(
    pending: &mut HashMap<Task, Pending>,
    held: &mut Held,
    caught_up: impl Fn(Task, Option<i64>) -> Option<bool>,
    all: bool,
    shared: &Mutex<Partitions>,
    senders: &[Sender<Msg>],
    inputs: &[Input],
    producer: &ThreadedProducer<Delivery>,
) {
    let now = Instant::now();
    for (task, p) in pending.iter_mut() {
        let Some(next) = p.next.take() else {
            continue;
        };
        let chunk = Chunk {
            batch: p.batch.finish().to_vec(),
            offsets: std::mem::take(&mut p.offsets),
            next,
            dead: std::mem::take(&mut p.dead),
            head: p.head.take(),
        };
        p.batch.clear();
        if held.ordered(task.0) {
            held.saw(*task, now);
            held.hold(*task, chunk, now);
        } else {
            send(*task, chunk, shared, senders, inputs, producer);
        }
    }
    if !held.is_empty() {
        let position = |t: Task| pending.get(&t).and_then(|p| p.position);
        // Below the backpressure bound, only as many as the workers take
        // at once.
        let blocking = all || held.bytes() > BACKPRESSURE;
        let mut free: Vec<usize> = senders
            .iter()
            .map(|s| s.capacity().unwrap_or(usize::MAX).saturating_sub(s.len()))
            .collect();
        let room = |t: Task| {
            let w = worker_of((inputs[t.0].sub, t.1), senders.len());
            let ok = blocking || free[w] > 0;
            free[w] = free[w].saturating_sub(1);
            ok
        };
        let released = held.release(now, all, |t| caught_up(t, position(t)), room);
        for (task, chunk) in released {
            send(task, chunk, shared, senders, inputs, producer);
        }
    }
}

/// Gives `chunk` a ticket on its partition's ledger and hands it to its
/// task's worker.
fn send(
    task: Task,
    mut chunk: Chunk,
    shared: &Mutex<Partitions>,
    senders: &[Sender<Msg>],
    inputs: &[Input],
    producer: &ThreadedProducer<Delivery>,
) {
    let mut s = shared.lock().expect("not poisoned");
    if s.failed.contains(&task) {
        return;
    }
    let (ticket, processing) = BatchTicket::new(chunk.next);
    s.ledgers.entry(task).or_default().push(ticket);
    drop(s);
    for d in chunk.dead.drain(..) {
        send_dead(producer, processing.hold(), &d);
    }
    if chunk.offsets.is_empty() {
        // Nothing to process: only skipped or dead-lettered records.
        return;
    }
    let work = Work {
        input: task.0,
        partition: task.1,
        batch: chunk.batch,
        offsets: chunk.offsets,
        ticket: processing,
    };
    // Every input partition of one task goes to the same worker.
    let worker = worker_of((inputs[task.0].sub, task.1), senders.len());
    if senders[worker].send(Msg::Work(work)).is_err() {
        tracing::error!("worker {worker} is gone");
    }
}
