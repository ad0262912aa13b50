//! From the poll loop to the workers: what was polled for each input
//! partition waits in a [`Pending`] batch; dispatching gives each batch a
//! ticket on its partition's ledger and hands it to its task's worker.

use super::delivery::Delivery;
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
}

impl Pending {
    pub fn new() -> Self {
        Pending {
            batch: BatchWriter::with_capacity(64 << 10, 256),
            offsets: Vec::new(),
            next: None,
            dead: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.batch.clear();
        self.offsets.clear();
        self.next = None;
        self.dead.clear();
    }
}

/// Drops unsent records of partitions revoked since the last look.
pub(super) fn drop_revoked(pending: &mut HashMap<Task, Pending>, shared: &Mutex<Partitions>) {
    let revoked = std::mem::take(&mut shared.lock().expect("not poisoned").revoked);
    for t in revoked {
        pending.remove(&t);
    }
}

/// Hands every pending batch to its task's worker, and sends the dead
/// letters gathered with it under the same ticket (so its offsets commit
/// only once they are acknowledged).
pub(super) fn dispatch(
    pending: &mut HashMap<Task, Pending>,
    shared: &Mutex<Partitions>,
    senders: &[Sender<Msg>],
    inputs: &[Input],
    producer: &ThreadedProducer<Delivery>,
) {
    for (task, p) in pending.iter_mut() {
        let Some(next) = p.next else {
            continue;
        };
        let mut s = shared.lock().expect("not poisoned");
        if s.failed.contains(task) {
            p.clear();
            continue;
        }
        let (ticket, processing) = BatchTicket::new(next);
        s.ledgers.entry(*task).or_default().push(ticket);
        drop(s);
        for d in p.dead.drain(..) {
            send_dead(producer, processing.hold(), &d);
        }
        p.next = None;
        if p.offsets.is_empty() {
            // Nothing to process: only skipped or dead-lettered records.
            drop(processing);
            continue;
        }
        let work = Work {
            input: task.0,
            partition: task.1,
            batch: p.batch.finish().to_vec(),
            offsets: std::mem::take(&mut p.offsets),
            ticket: processing,
        };
        p.batch.clear();
        // Every input partition of one task goes to the same worker.
        let worker = worker_of((inputs[task.0].sub, task.1), senders.len());
        if senders[worker].send(Msg::Work(work)).is_err() {
            tracing::error!("worker {worker} is gone");
        }
    }
}
