//! The consumer's rebalance callbacks: tasks opened at assignment; on a
//! revoke, the partition's batches in flight finished (bounded), its tasks
//! flushed, checkpointed and closed, and its offsets committed before it
//! goes.

use super::instance::Instance;
use super::topics::Task;
use super::worker::{Msg, worker_of};
use crate::runtime::tasks::TaskId;
use crate::runtime::ticket::PartitionLedger;
use crossbeam_channel::{Sender, bounded};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a revoked partition may take to finish its in-flight batches.
pub(super) const REVOKE_DRAIN: Duration = Duration::from_secs(30);

/// What the poll loop and the rebalance callbacks share about partitions.
#[derive(Default)]
pub(super) struct Partitions {
    pub(super) ledgers: HashMap<Task, PartitionLedger>,
    pub(super) failed: HashSet<Task>,
    /// Revoked since the poll loop last looked; their unsent records go.
    pub(super) revoked: Vec<Task>,
    /// Where each newly assigned input partition of a task with several
    /// inputs starts (its committed offset; none: the partition's start),
    /// so the poll loop knows whether it has records to wait for.
    pub(super) starts: HashMap<Task, Option<i64>>,
}

pub(super) struct Ctx {
    pub(super) shared: Arc<Mutex<Partitions>>,
    /// Each consumed topic and the sub-topology reading it (set before
    /// the consumer subscribes).
    pub(super) topics: std::sync::OnceLock<Vec<(String, usize)>>,
    /// The workers, to close revoked tasks (set once they run).
    pub(super) workers: Mutex<Vec<Sender<Msg>>>,
    /// Set by a revoke; the poll loop then drops the revoked partitions'
    /// records it has not dispatched, before it takes any new record (the
    /// callback runs inside `poll`, so a record `poll` returns afterwards may
    /// already belong to a new assignment of the same partition).
    pub(super) rebalanced: AtomicBool,
    /// Which tasks are assigned and open (set once the workers run).
    pub(super) instance: std::sync::OnceLock<Arc<Instance>>,
    /// Told the state of the broker connections.
    pub(super) health: Arc<super::health::Health>,
}

impl Ctx {
    /// The tasks of the consumed partitions in `tpl`.
    fn tasks_of(&self, tpl: &TopicPartitionList) -> Vec<TaskId> {
        let topics = self.topics.get().map_or(&[][..], Vec::as_slice);
        let mut ids: Vec<TaskId> = tpl
            .elements()
            .iter()
            .filter_map(|e| {
                let (_, sub) = topics.iter().find(|(t, _)| t == e.topic())?;
                Some((*sub, e.partition()))
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

impl Ctx {
    /// Records where the assigned partitions of tasks with several inputs
    /// start.
    fn note_starts(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let topics = self.topics.get().map_or(&[][..], Vec::as_slice);
        let subs: Vec<usize> = topics.iter().map(|(_, sub)| *sub).collect();
        let ordered = super::order::groups(&subs);
        let mut ask = TopicPartitionList::new();
        for e in tpl.elements() {
            if let Some(i) = topics.iter().position(|(t, _)| t == e.topic())
                && !ordered[i].is_empty()
            {
                ask.add_partition(e.topic(), e.partition());
            }
        }
        if ask.count() == 0 {
            return;
        }
        let committed = match consumer.committed_offsets(ask, Duration::from_secs(10)) {
            Ok(c) => c,
            Err(e) => {
                // The poll loop then waits only for those it has read from.
                tracing::warn!(
                    "reading committed offsets: {e}; their tasks' inputs are not kept in timestamp order until each has sent a record"
                );
                return;
            }
        };
        let mut s = self.shared.lock().expect("not poisoned");
        for e in committed.elements() {
            if let Some(input) = topics.iter().position(|(t, _)| t == e.topic()) {
                let start = match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                };
                s.starts.insert((input, e.partition()), start);
            }
        }
    }
}

impl Partitions {
    /// The tasks whose oldest batch has been in flight longer than
    /// `stall_after`, with its age (failed ones aside).
    pub(super) fn stalled(
        &self,
        inputs: &[super::worker::Input],
        stall_after: std::time::Duration,
    ) -> std::collections::BTreeMap<TaskId, std::time::Duration> {
        self.ledgers
            .iter()
            .filter(|(task, _)| !self.failed.contains(task))
            .filter_map(|(task, l)| {
                let age = l.oldest()?.created.elapsed();
                (age > stall_after).then_some(((inputs[task.0].sub, task.1), age))
            })
            .collect()
    }
}

impl ClientContext for Ctx {
    fn stats_raw(&self, statistics: &[u8]) {
        self.health.statistics(statistics);
    }
}

impl ConsumerContext for Ctx {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(tpl) = rebalance else {
            return;
        };
        let ids = self.tasks_of(tpl);
        self.note_starts(consumer, tpl);
        if let Some(instance) = self.instance.get() {
            instance.assigned(&ids);
        }
        // Open (restore) new tasks now rather than at their first batch, so
        // readiness and queries do not wait for records.
        let workers = self.workers.lock().expect("not poisoned");
        if workers.is_empty() {
            return;
        }
        let mut per_worker: Vec<Vec<TaskId>> = vec![Vec::new(); workers.len()];
        for id in ids {
            per_worker[worker_of(id, workers.len())].push(id);
        }
        for (w, ids) in workers.iter().zip(per_worker) {
            if !ids.is_empty() {
                let _ = w.send(Msg::Open(ids));
            }
        }
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            if let Rebalance::Assign(tpl) = rebalance {
                tracing::info!(partitions = %describe(tpl), "assigned");
            }
            return;
        };
        tracing::info!(partitions = %describe(tpl), "revoked; finishing in-flight batches");
        let topics = self.topics.get().map_or(&[][..], Vec::as_slice);
        let tasks: Vec<Task> = tpl
            .elements()
            .iter()
            .filter_map(|e| {
                topics
                    .iter()
                    .position(|(t, _)| t == e.topic())
                    .map(|i| (i, e.partition()))
            })
            .collect();
        // Finish what is in flight (bounded), then commit it, so the next
        // owner starts right after what this instance delivered.
        let deadline = Instant::now() + REVOKE_DRAIN;
        loop {
            let mut s = self.shared.lock().expect("not poisoned");
            // The oldest batch still in flight of a task that can finish
            // (a failed batch never does).
            let mut in_flight = None;
            for t in &tasks {
                let failed = s.failed.contains(t);
                if let Some(l) = s.ledgers.get_mut(t)
                    && l.advance().is_ok()
                    && !failed
                    && in_flight.is_none()
                {
                    in_flight = l.oldest().cloned();
                }
            }
            let busy = in_flight.is_some();
            if !busy || Instant::now() > deadline {
                if busy {
                    tracing::warn!(
                        "in-flight batches did not finish within {REVOKE_DRAIN:?}; their records will be processed again by the next owner"
                    );
                }
                drop(s);
                // Stateful tasks flush, checkpoint and close their stores
                // before their offsets are committed.
                let ids: Vec<TaskId> = tasks.iter().map(|t| (topics[t.0].1, t.1)).collect();
                close_tasks(&self.workers.lock().expect("not poisoned"), &ids);
                if let Some(instance) = self.instance.get() {
                    instance.revoked(&ids);
                }
                let mut s = self.shared.lock().expect("not poisoned");
                for t in &tasks {
                    if let Some(l) = s.ledgers.get_mut(t) {
                        let _ = l.advance();
                    }
                }
                let mut commit = TopicPartitionList::new();
                self.rebalanced.store(true, Ordering::Release);
                for t in &tasks {
                    if let Some(l) = s.ledgers.remove(t)
                        && let Some(o) = l.to_commit()
                    {
                        let _ = commit.add_partition_offset(&topics[t.0].0, t.1, Offset::Offset(o));
                    }
                    s.failed.remove(t);
                    s.starts.remove(t);
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
            // Woken when that batch completes or fails, or at the deadline.
            if let Some(batch) = in_flight {
                let _ = batch.wait(deadline);
            }
        }
    }
}

pub(super) fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements()
        .iter()
        .map(|e| format!("{}-{}", e.topic(), e.partition()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Asks the workers to flush, checkpoint and close tasks; waits (bounded).
pub(super) fn close_tasks(workers: &[Sender<Msg>], ids: &[TaskId]) {
    let mut replies = Vec::new();
    for w in workers {
        let (tx, rx) = bounded(1);
        if w.send(Msg::Close(ids.to_vec(), tx)).is_ok() {
            replies.push(rx);
        }
    }
    for r in replies {
        if r.recv_timeout(REVOKE_DRAIN).is_err() {
            tracing::warn!("a worker did not close its revoked tasks within {REVOKE_DRAIN:?}");
        }
    }
}
