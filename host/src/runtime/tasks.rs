//! The tasks one worker runs and their commits, the same code for
//! `eddy run` (Kafka) and `eddy test` (the records file); what differs is
//! the I/O layer, a [`TaskIo`].
//!
//! A batch runs through its task's nodes and what it outputs is delivered,
//! each record a share of the batch's ticket. A commit flushes the tasks'
//! write caches (delivering what that emits), waits until everything they
//! produced is acknowledged, then checkpoints their stores: only what the
//! changelogs hold may be covered by a checkpoint.

use super::deliver::{Output, Rejections, Source, TaskInfo, deliver};
use super::task::TaskPipeline;
use super::ticket::{BatchTicket, InFlight};
use crate::metrics::{Metrics, StoreLabels};
use crate::ops::{Dropped, NodeError, Records};
use crate::state::{Checkpoint, StateError, TaskState};
use crate::topology::{SubInput, Topology};
use crate::wasm::Chain;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A task: a sub-topology and a partition.
pub type TaskId = (usize, i32);

/// A task's name in logs and metrics: `<sub-topology>_<partition>`.
pub fn task_name(id: TaskId) -> String {
    format!("{}_{}", id.0, id.1)
}

/// Changelog records after which a commit may checkpoint (Kafka Streams
/// waits for 10,000 too).
const CHECKPOINT_EVERY: i64 = 10_000;

/// The least time between two checkpoints of a task. A checkpoint flushes
/// RocksDB's memtables, which blocks the worker and leaves one more sorted
/// run that every range read must seek in until compaction merges it; the
/// cost of waiting is only a longer changelog tail to replay after a crash
/// (a clean stop always checkpoints). Kafka Streams flushes at most once
/// per commit, and its default commit interval is 30 s.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(30);

/// How long a commit waits for the task's output to be acknowledged.
const ACK_WAIT: Duration = Duration::from_secs(60);

/// What tasks need from the I/O layer besides sending their output.
pub trait TaskIo: Output {
    /// Opens task `id` of `t`: its nodes, with its stores restored from
    /// `changelogs` (one per store).
    fn open(&mut self, t: &Topology, id: TaskId, changelogs: &[String]) -> Result<Opened, String>;

    /// The offset after the last acknowledged write to `partition` of the
    /// changelog `topic`.
    fn acked(&self, topic: &str, partition: i32) -> Option<i64>;
}

/// A task as the I/O layer opened it.
pub struct Opened {
    /// Its nodes and stores.
    pub pipeline: TaskPipeline,
    /// Where restore ended, per changelog (the offset after the last record read).
    pub restored_to: HashMap<String, i64>,
}

/// Why a batch failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Its task could not be opened.
    #[error("task {task} could not start: {why}")]
    Open {
        /// The task's name.
        task: String,
        /// Why.
        why: String,
    },
    /// A node failed (the operator's error is pinned to a record when it can be).
    #[error(transparent)]
    Node(#[from] NodeError),
}

/// Why a task's commit did not checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Flushing its caches failed.
    #[error("flushing task {task}: {error}")]
    Flush {
        /// The task's name.
        task: String,
        /// The failure.
        error: NodeError,
    },
    /// Some of its output could not be delivered.
    #[error("task {task}: {why}")]
    Delivery {
        /// The task's name.
        task: String,
        /// Why.
        why: String,
    },
    /// Its output was not acknowledged in time.
    #[error("task {task}: changelog writes not acknowledged within {}s; not checkpointing", ACK_WAIT.as_secs())]
    Unacknowledged {
        /// The task's name.
        task: String,
    },
    /// The checkpoint could not be written.
    #[error("task {task}: writing the checkpoint: {error}")]
    Checkpoint {
        /// The task's name.
        task: String,
        /// The failure.
        error: StateError,
    },
}

struct Task {
    pipeline: TaskPipeline,
    /// Dropped records already reported.
    reported: Dropped,
    /// Changelog topic of each store.
    changelogs: Vec<String>,
    /// Where restore ended, per changelog.
    restored_to: HashMap<String, i64>,
    /// The offsets of the last checkpoint written, per changelog.
    checkpointed: HashMap<String, i64>,
    /// When the last checkpoint was written (or the task opened).
    checkpointed_at: Instant,
}

/// The open tasks of one worker, with its operator instances and I/O.
pub struct Tasks<I> {
    t: Topology,
    chain: Chain,
    tasks: HashMap<TaskId, Task>,
    io: I,
    metrics: Option<Arc<Metrics>>,
}

impl<I: TaskIo> Tasks<I> {
    /// No task open yet; `metrics` counts batches and store sizes when given.
    pub fn new(t: Topology, chain: Chain, io: I, metrics: Option<Arc<Metrics>>) -> Self {
        Tasks {
            t,
            chain,
            tasks: HashMap::new(),
            io,
            metrics,
        }
    }

    /// The I/O layer.
    pub fn io(&mut self) -> &mut I {
        &mut self.io
    }

    /// The operator instances (a reload swaps them between batches).
    pub fn chain(&mut self) -> &mut Chain {
        &mut self.chain
    }

    /// The open tasks.
    pub fn ids(&self) -> Vec<TaskId> {
        let mut ids: Vec<TaskId> = self.tasks.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Opens task `id` unless it is open: true when it was opened now.
    pub fn open(&mut self, id: TaskId) -> Result<bool, String> {
        if self.tasks.contains_key(&id) {
            return Ok(false);
        }
        let changelogs: Vec<String> = (self.t.plan.store_names(id.0).iter())
            .map(|st| self.t.changelog_topic(st))
            .collect();
        let Opened {
            mut pipeline,
            restored_to,
        } = self.io.open(&self.t, id, &changelogs)?;
        pipeline.set_partition(id.1);
        self.tasks.insert(
            id,
            Task {
                pipeline,
                reported: Dropped::default(),
                changelogs,
                restored_to,
                checkpointed: HashMap::new(),
                checkpointed_at: Instant::now(),
            },
        );
        Ok(true)
    }

    /// Runs `records`, read from `input`, through task `id` (opening it
    /// first if need be) and delivers the output, each record a share of
    /// `held`'s batch; `source` names the records' topic, partition and
    /// offsets.
    pub fn run(
        &mut self,
        id: TaskId,
        input: SubInput,
        records: Records,
        source: Source<'_>,
        held: &InFlight,
    ) -> Result<Rejections, TaskError> {
        self.open(id).map_err(|why| TaskError::Open {
            task: task_name(id),
            why,
        })?;
        let task = self.tasks.get_mut(&id).expect("opened");
        let n = records.len();
        let started = Instant::now();
        let out = task.pipeline.process(input, &mut self.chain, records);
        if let Some(m) = &self.metrics {
            if let Some((topic, _, _)) = source {
                m.topic(&m.records_in, topic, n as u64);
            }
            m.batch_records.observe(n as f64);
            m.batch_seconds.observe(started.elapsed().as_secs_f64());
        }
        let out = out?;
        Ok(self.deliver(id, &out, source, held))
    }

    /// Moves the stream time of every window step of task `id` to at least
    /// `ts`, delivering the windows that closes (`eddy test`'s time lines).
    pub fn advance_time(&mut self, id: TaskId, ts: i64) -> Result<Rejections, NodeError> {
        let Some(task) = self.tasks.get_mut(&id) else {
            return Ok(Rejections::default());
        };
        let out = task.pipeline.advance_time(ts, &mut self.chain)?;
        let (_, held) = BatchTicket::new(0);
        Ok(self.deliver(id, &out, None, &held))
    }

    fn deliver(
        &mut self,
        id: TaskId,
        out: &super::task::TaskOutput,
        source: Source<'_>,
        held: &InFlight,
    ) -> Rejections {
        let task = &self.tasks[&id];
        let info = TaskInfo {
            t: &self.t,
            partition: id.1,
            changelogs: &task.changelogs,
        };
        let metrics = self.metrics.as_deref();
        deliver(out, &info, &self.chain, source, held, &mut self.io, metrics)
    }

    /// Logs the records tasks `ids` dropped (late, or without a key) since
    /// they were last reported.
    pub fn report_dropped(&mut self, ids: &[TaskId]) {
        for id in ids {
            let Some(task) = self.tasks.get_mut(id) else {
                continue;
            };
            let d = task.pipeline.dropped;
            if d != task.reported {
                tracing::warn!(
                    task = %task_name(*id),
                    late = d.late - task.reported.late,
                    no_key = d.no_key - task.reported.no_key,
                    "records dropped since the last commit: late for their windows, or without a key (or, at a join, a value)"
                );
                task.reported = d;
            }
        }
    }

    /// Every record the open tasks dropped (late, or without a key).
    pub fn dropped(&self) -> Dropped {
        self.tasks
            .values()
            .fold(Dropped::default(), |a, t| Dropped {
                late: a.late + t.pipeline.dropped.late,
                no_key: a.no_key + t.pipeline.dropped.no_key,
            })
    }

    /// Commits tasks `ids`: flushes their caches, delivering what that
    /// emits; waits until everything they produced is acknowledged; then
    /// checkpoints their stores, always when `force` (closing), else once
    /// enough was written since the last checkpoint. Returns what went
    /// wrong, per task; a task with an error is not checkpointed.
    pub fn commit(&mut self, ids: &[TaskId], force: bool) -> (Rejections, Vec<CommitError>) {
        let mut errors = Vec::new();
        let mut rejected = Rejections::default();
        let mut tickets = Vec::new();
        for &id in ids {
            let Some(task) = self.tasks.get_mut(&id) else {
                continue;
            };
            let (ticket, processing) = BatchTicket::new(0);
            match task.pipeline.flush(&mut self.chain) {
                Ok(out) => {
                    let r = self.deliver(id, &out, None, &processing);
                    rejected.skipped += r.skipped;
                    rejected.dead_lettered += r.dead_lettered;
                }
                Err(error) => {
                    let task = task_name(id);
                    errors.push(CommitError::Flush { task, error });
                    continue;
                }
            }
            drop(processing);
            tickets.push((id, ticket));
        }
        let deadline = Instant::now() + ACK_WAIT;
        for (id, ticket) in tickets {
            match ticket.wait(deadline) {
                Ok(true) => {}
                Ok(false) => {
                    errors.push(CommitError::Unacknowledged {
                        task: task_name(id),
                    });
                    continue;
                }
                Err(why) => {
                    let task = task_name(id);
                    errors.push(CommitError::Delivery { task, why });
                    continue;
                }
            }
            if let Err(error) = self.checkpoint(id, force) {
                errors.push(CommitError::Checkpoint {
                    task: task_name(id),
                    error,
                });
            }
        }
        (rejected, errors)
    }

    /// Commits tasks `ids` (checkpointing them), then closes them.
    pub fn close(&mut self, ids: &[TaskId]) -> Vec<CommitError> {
        let (_, errors) = self.commit(ids, true);
        for id in ids {
            if self.tasks.remove(id).is_some() {
                tracing::info!(task = %task_name(*id), "closed");
            }
        }
        errors
    }

    /// Writes task `id`'s checkpoint: its stores' offsets in their
    /// changelogs, as acknowledged (or restored).
    fn checkpoint(&mut self, id: TaskId, force: bool) -> Result<(), StateError> {
        let task = self.tasks.get_mut(&id).expect("present");
        let Some(state) = task.pipeline.state() else {
            return Ok(());
        };
        if let Some(m) = &self.metrics {
            for (store, name) in self.t.plan.store_names(id.0).iter().enumerate() {
                let labels = StoreLabels {
                    store: name.clone(),
                    task: task_name(id),
                };
                let bytes = state.store_bytes(store) as i64;
                m.store_bytes.get_or_create(&labels).set(bytes);
            }
        }
        let mut cp = Checkpoint::default();
        let mut written = 0;
        for topic in &task.changelogs {
            let acked = self.io.acked(topic, id.1);
            let offset = acked.max(task.restored_to.get(topic).copied()).unwrap_or(0);
            written += offset - task.checkpointed.get(topic).copied().unwrap_or(0);
            cp.offsets.insert((topic.clone(), id.1), offset);
        }
        let due =
            written >= CHECKPOINT_EVERY && task.checkpointed_at.elapsed() >= CHECKPOINT_INTERVAL;
        if !force && !due {
            return Ok(());
        }
        state.checkpoint(&cp)?;
        task.checkpointed_at = Instant::now();
        task.checkpointed = (cp.offsets.into_iter()).map(|((t, _), o)| (t, o)).collect();
        Ok(())
    }

    /// The stores of every open task, for a query.
    pub fn stores(&mut self) -> impl Iterator<Item = (TaskId, Option<&TaskState>)> {
        (self.tasks.iter_mut()).map(|(id, task)| (*id, task.pipeline.state().map(|s| &*s)))
    }
}

#[cfg(test)]
#[path = "tasks_tests.rs"]
mod tests;
