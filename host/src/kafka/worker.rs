//! A worker thread: owns an instance of every operator and the tasks routed
//! to it (a task always goes to the same worker), and runs their batches in
//! order through [`Tasks`], with Kafka as the I/O layer ([`Producing`]).
//! Every record a batch produces carries the batch's ticket, so its input
//! offsets are committed only once all of them are acknowledged.
//!
//! At a commit the poll loop asks each worker to commit its tasks (flush
//! the write caches, wait for what that produced, checkpoint). On a revoke
//! the worker does the same for the revoked tasks, then closes them.

use super::instance::{Instance, StoreQuery, WorkerAnswer};
use super::produce::Producing;
pub use super::topics::Input;
use crate::metrics::Metrics;
use crate::ops::Records;
use crate::reload::Swap;
use crate::runtime::tasks::{TaskError, TaskId, Tasks, task_name};
use crate::runtime::ticket::InFlight;
use crate::topology::Topology;
use crate::wasm::Chain;
use crossbeam_channel::{Receiver, Sender};
use std::collections::HashSet;
use std::sync::Arc;

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

/// What every worker shares.
pub struct Env {
    /// The process's metrics.
    pub metrics: Arc<Metrics>,
    /// The topology.
    pub t: Topology,
    /// Consumed topics.
    pub inputs: Arc<Vec<Input>>,
    /// Reports a failed input partition to the poll loop.
    pub fail: Sender<((usize, i32), String)>,
    /// Kafka as the workers' I/O layer.
    pub io: Producing,
    /// Which tasks are assigned and open.
    pub instance: Arc<Instance>,
}

/// Runs until the channel closes. New operator versions from `swaps` are
/// swapped in between messages: at a batch boundary, for every task of the
/// worker at once.
pub fn worker(rx: &Receiver<Msg>, swaps: Receiver<Swap>, chain: Chain, s: &Env) {
    let mut tasks = Tasks::new(s.t.clone(), chain, s.io.clone(), Some(s.metrics.clone()));
    let mut failed: HashSet<(usize, i32)> = HashSet::new();
    let mut swaps = swaps;
    loop {
        let msg = crossbeam_channel::select! {
            recv(swaps) -> swap => {
                match swap {
                    Ok(swap) => swap.apply(tasks.chain()),
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
            swap.apply(tasks.chain());
        }
        match msg {
            Msg::Work(work) => run_batch(work, &mut tasks, &mut failed, s),
            Msg::Commit(reply) => {
                let ids = tasks.ids();
                commit(&mut tasks, &ids, false);
                let _ = reply.send(());
            }
            Msg::Close(ids, reply) => {
                tasks.report_dropped(&ids);
                log_errors(tasks.close(&ids));
                failed.retain(|(input, p)| !ids.contains(&(s.inputs[*input].sub, *p)));
                let _ = reply.send(());
            }
            Msg::Open(ids) => {
                for id in ids {
                    // The first batch tries again, and stops the partition
                    // if it fails too.
                    open(&mut tasks, id, s).ok();
                }
            }
            Msg::Query(q, reply) => {
                let _ = reply.send(super::instance::answer(&q, tasks.stores()));
            }
        }
    }
    let ids = tasks.ids();
    tasks.report_dropped(&ids);
    log_errors(tasks.close(&ids));
}

/// Commits tasks `ids`, logging what went wrong.
fn commit(tasks: &mut Tasks<Producing>, ids: &[TaskId], force: bool) {
    tasks.report_dropped(ids);
    log_errors(tasks.commit(ids, force).1);
}

fn log_errors(errors: Vec<crate::runtime::tasks::CommitError>) {
    for e in errors {
        tracing::error!("{e}");
    }
}

/// Opens task `id`, telling the instance (and so `/readyz`) how it went.
fn open(tasks: &mut Tasks<Producing>, id: TaskId, s: &Env) -> Result<(), String> {
    match tasks.open(id) {
        Ok(true) => {
            s.instance.opened(id);
            Ok(())
        }
        Ok(false) => Ok(()),
        Err(why) => {
            tracing::error!(task = %task_name(id), "could not open: {why}");
            s.instance.broken(id, &why);
            Err(why)
        }
    }
}

fn run_batch(
    work: Work,
    tasks: &mut Tasks<Producing>,
    failed: &mut HashSet<(usize, i32)>,
    s: &Env,
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
    if let Err(why) = open(tasks, id, s) {
        let why = format!("task {} could not start: {why}", task_name(id));
        return fail(failed, why);
    }
    let records = Records::new(batch, (0..offsets.len() as u32).collect());
    let source = Some((topic.as_str(), partition, &offsets[..]));
    match tasks.run(id, s.inputs[input].read, records, source, &processing) {
        Ok(_) => {}
        Err(TaskError::Open { task, why }) => {
            fail(failed, format!("task {task} could not start: {why}"));
        }
        Err(TaskError::Node(e)) => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ticket::{BatchTicket, PartitionLedger};

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
