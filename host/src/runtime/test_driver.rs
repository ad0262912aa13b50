//! The in-process test driver behind `eddy test`: the same topology and the
//! same components, fed from a records file instead of Kafka (Kafka
//! Streams' TopologyTestDriver).
//!
//! - Every input is partition 0 of its topic, so each sub-topology is one
//!   task; a repartition topic hands records straight to the sub-topology
//!   reading it.
//! - Records are processed in file order, in batches of
//!   `runtime.batch_size` (consecutive records of one source at a time);
//!   after each batch the driver commits, which flushes the write caches
//!   (`batch_size = 1` commits after every record, as TopologyTestDriver
//!   does).
//! - Within a batch, records bound for sinks are written in the order of
//!   the input records they came from.
//! - Stores are in memory and start empty.
//! - A time line (`{"advance_time": T}`) commits, then moves every window
//!   step's stream time to at least T.

use super::dead_letter::{DeadLetter, SourceAt, batch_headers};
use super::deliver::Output;
use super::intake::{self, Intake};
use super::task::TaskPipeline;
use super::tasks::{CommitError, Opened, TaskError, TaskId, TaskIo, Tasks};
use super::ticket::{BatchTicket, InFlight};
use crate::ops::{Emitter, NodeError, Records};
use crate::records::{InputLine, OwnedRecord, write_record};
use crate::state::ChangelogRecord;
use crate::state::global::Globals;
use crate::time::extract::TimestampError;
use crate::topology::{Sink, StoreKind, SubInput, Topics, Topology};
use crate::wasm::Chain;
use crate::wasm::{LoadError, OperatorEngine};
use eddy_batch::{BatchWriter, RecordRef};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

/// Why a test run stopped.
#[derive(Debug, thiserror::Error)]
pub enum TestDriverError {
    /// A record names a topic the pipeline does not read.
    #[error(
        "input line {line} (topic {topic:?}): not a source of this pipeline; its sources read {sources}"
    )]
    UnknownTopic {
        /// Line in the input file.
        line: usize,
        /// The topic.
        topic: String,
        /// What the pipeline's sources read.
        sources: String,
    },
    /// An operator failed to load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A task could not be opened (its stores).
    #[error("{0}")]
    Open(String),
    /// A record's event time could not be read.
    #[error("input line {line} (topic {topic:?}): {error}")]
    Timestamp {
        /// Line in the input file.
        line: usize,
        /// The topic.
        topic: String,
        /// What is wrong.
        error: TimestampError,
    },
    /// An operator or a store failed on a record.
    #[error("{error}, on input line {line} (topic {topic:?}, offset {offset})")]
    Operator {
        /// The failure.
        error: NodeError,
        /// Line of the record in the input file.
        line: usize,
        /// Its topic.
        topic: String,
        /// Its offset within the topic (position among that topic's records).
        offset: i64,
    },
    /// A failure not tied to an input record (a commit's flush).
    #[error("{0}")]
    Flush(NodeError),
    /// A commit failed otherwise.
    #[error("{0}")]
    Commit(CommitError),
    /// Writing output failed.
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}

impl From<CommitError> for TestDriverError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Flush { error, .. } => TestDriverError::Flush(error),
            other => TestDriverError::Commit(other),
        }
    }
}

/// A record waiting for its batch: input line, record, event time,
/// source, offset in its topic.
type Pending<'a> = (usize, &'a OwnedRecord, i64, usize, i64);

struct Driver<'t, W: Write> {
    t: &'t Topology,
    tasks: Tasks<Writing<W>>,
    /// Records skipped by `on_error = "skip"`.
    skipped: u64,
}

/// Every sub-topology is one task, on partition 0.
fn task(sub: usize) -> TaskId {
    (sub, 0)
}

/// Runs the input lines (records and time lines, with their line numbers)
/// through the topology and writes every output record to `out`. Returns
/// how many records were written.
pub fn run(
    topology: &Topology,
    engine: &OperatorEngine,
    input: &[(usize, InputLine)],
    out: &mut impl Write,
) -> Result<usize, TestDriverError> {
    let source_of = sources_of(topology, input)?;
    let ops = Chain::load(topology, engine)?;
    let mut t = topology.clone();
    t.state.store = StoreKind::Memory;
    let io = Writing::new(&t, out);
    let mut d = Driver {
        t: topology,
        tasks: Tasks::new(t, Chain::new(&ops)?, io, None),
        skipped: 0,
    };
    for sub in 0..topology.plan.subtopologies.len() {
        d.tasks.open(task(sub)).map_err(TestDriverError::Open)?;
    }
    // The next offset of each topic: its records are numbered in file order.
    let mut next: HashMap<&str, i64> = HashMap::new();
    let mut pending: Vec<Pending<'_>> = Vec::new();
    for (line, l) in input {
        match l {
            InputLine::Record(r) => {
                let offset = next.entry(r.topic.as_str()).or_insert(0);
                let at = *offset;
                *offset += 1;
                let src = source_of[r.topic.as_str()];
                let source = &topology.sources[src];
                if source.global {
                    // A global table takes its rows as they are read, as
                    // Kafka Streams' test driver applies piped global records.
                    d.batch(&pending)?;
                    pending.clear();
                    let row = (r.key.as_deref(), r.value.as_deref(), r.timestamp);
                    d.tasks.io().globals.apply(src, [row]);
                    continue;
                }
                let (key, value) = (r.key.as_deref(), r.value.as_deref());
                let headers = || r.headers.clone();
                let at = (r.topic.as_str(), 0, at);
                match intake::take(source, key, value, r.timestamp, headers, at, None) {
                    Intake::Take(ts) => pending.push((*line, r, ts, src, at.2)),
                    Intake::Skip => {}
                    Intake::Dead(letter) => {
                        // In input order: what came before goes first.
                        d.batch(&pending)?;
                        pending.clear();
                        d.write_dead(&letter)?;
                    }
                    Intake::Fail(error) => {
                        let topic = r.topic.clone();
                        let line = *line;
                        return Err(TestDriverError::Timestamp { line, topic, error });
                    }
                }
                if pending.len() == topology.runtime.batch_size {
                    d.batch(&pending)?;
                    pending.clear();
                }
            }
            InputLine::AdvanceTime(ts) => {
                d.batch(&pending)?;
                pending.clear();
                d.advance(*ts)?;
            }
        }
    }
    d.batch(&pending)?;
    let dropped = d.tasks.dropped();
    if dropped.late > 0 {
        tracing::warn!(
            "{} late record(s) dropped (later than their windows' end + grace)",
            dropped.late
        );
    }
    if dropped.no_key > 0 {
        tracing::warn!(
            "{} record(s) without a key skipped (a grouping, an aggregation or a join needs one; a join also skips records without a value)",
            dropped.no_key
        );
    }
    if d.skipped > 0 {
        tracing::warn!(
            "{} record(s) an operator failed on skipped (on_error = \"skip\")",
            d.skipped
        );
    }
    Ok(d.tasks.io().written)
}

/// Each topic's source, found once per topic (a pattern is a regex).
fn sources_of<'a>(
    topology: &Topology,
    input: &'a [(usize, InputLine)],
) -> Result<HashMap<&'a str, usize>, TestDriverError> {
    let mut source_of: HashMap<&str, usize> = HashMap::new();
    for (line, l) in input {
        let InputLine::Record(r) = l else { continue };
        if source_of.contains_key(r.topic.as_str()) {
            continue;
        }
        if let Some(src) = topology.source_of_topic(&r.topic) {
            source_of.insert(&r.topic, src);
            continue;
        }
        let sources: Vec<String> = (topology.sources.iter())
            .map(|s| match &s.topics {
                Topics::Names(n) => n.join(", "),
                Topics::Pattern(p) => format!("topics matching {p:?}"),
            })
            .collect();
        return Err(TestDriverError::UnknownTopic {
            line: *line,
            topic: r.topic.clone(),
            sources: sources.join("; "),
        });
    }
    Ok(source_of)
}

impl<W: Write> Driver<'_, W> {
    /// Processes one batch of source records, a run of one source's
    /// consecutive records at a time, then commits.
    fn batch(&mut self, records: &[Pending<'_>]) -> Result<(), TestDriverError> {
        if records.is_empty() {
            return Ok(());
        }
        for run in records.chunk_by(|a, b| a.1.topic == b.1.topic) {
            self.run(run)?;
        }
        self.commit()
    }

    /// Runs consecutive records of one topic through its sub-topology and
    /// everything its outputs reach.
    fn run(&mut self, records: &[Pending<'_>]) -> Result<(), TestDriverError> {
        let mut writer = BatchWriter::new();
        for (i, (_, r, ts, _, _)) in records.iter().enumerate() {
            writer.record(
                i as u32,
                r.key.as_deref(),
                r.value.as_deref(),
                *ts,
                r.headers.iter().map(|(n, v)| (n.as_bytes(), v.as_deref())),
            );
        }
        let batch = Records::new(writer.into_vec(), (0..records.len() as u32).collect());
        let topic = &records[0].1.topic;
        let offsets: Vec<i64> = records.iter().map(|p| p.4).collect();
        let src = records[0].3;
        let sub = self.t.plan.source_sub[src];
        // Written at once: the share completes as soon as it is dropped.
        let (_, held) = BatchTicket::new(0);
        let source = Some((topic.as_str(), 0, &offsets[..]));
        let done = self
            .tasks
            .run(task(sub), SubInput::Source(src), batch, source, &held);
        match done {
            Ok(r) => self.skipped += r.skipped,
            Err(TaskError::Node(error)) => {
                let i = error.input_index().unwrap_or(0) as usize;
                let (line, r, _, _, offset) = records[i.min(records.len() - 1)];
                let topic = r.topic.clone();
                return Err(TestDriverError::Operator {
                    error,
                    line,
                    topic,
                    offset,
                });
            }
            Err(e @ TaskError::Open { .. }) => return Err(TestDriverError::Open(e.to_string())),
        }
        self.written()?;
        self.repartitioned()
    }

    /// Runs the records the last run wrote to repartition topics through
    /// the sub-topologies reading them, depth first.
    fn repartitioned(&mut self) -> Result<(), TestDriverError> {
        let written = std::mem::take(&mut self.tasks.io().repartitioned);
        for (r, records) in written {
            let to = self.t.plan.repartitions[r].to;
            let (_, held) = BatchTicket::new(0);
            let input = SubInput::Repartition(r);
            let done = self
                .tasks
                .run(task(to), input, records.finish(), None, &held);
            match done {
                Ok(r) => self.skipped += r.skipped,
                // The next sub-topology's records are not input lines.
                Err(TaskError::Node(n)) => return Err(TestDriverError::Flush(n)),
                Err(e) => return Err(TestDriverError::Open(e.to_string())),
            }
            self.written()?;
            self.repartitioned()?;
        }
        Ok(())
    }

    /// Commits every task, in topology order: what a task's flush sends to
    /// a repartition topic is processed before the next task commits.
    fn commit(&mut self) -> Result<(), TestDriverError> {
        for sub in 0..self.t.plan.subtopologies.len() {
            let (done, errors) = self.tasks.commit(&[task(sub)], false);
            self.skipped += done.skipped;
            if let Some(e) = errors.into_iter().next() {
                return Err(e.into());
            }
            self.written()?;
            self.repartitioned()?;
        }
        Ok(())
    }

    /// Moves every window step's stream time to at least `ts`, then commits.
    fn advance(&mut self, ts: i64) -> Result<(), TestDriverError> {
        for sub in 0..self.t.plan.subtopologies.len() {
            let done = self.tasks.advance_time(task(sub), ts);
            self.skipped += done.map_err(TestDriverError::Flush)?.skipped;
            self.written()?;
            self.repartitioned()?;
        }
        self.commit()
    }

    /// Writes a dead letter of the source's own (not from a task's output).
    fn write_dead(&mut self, letter: &DeadLetter) -> Result<(), TestDriverError> {
        let (_, held) = BatchTicket::new(0);
        self.tasks.io().dead_letter(letter, &held);
        self.written()
    }

    /// The first write that failed, if one did.
    fn written(&mut self) -> Result<(), TestDriverError> {
        self.tasks
            .io()
            .failed
            .take()
            .map_or(Ok(()), |e| Err(e.into()))
    }
}

/// The records file as the I/O layer of a task's output: sink, late and
/// dead-letter records are written; records for a repartition topic are
/// kept for the sub-topology reading it; changelog writes go nowhere (the
/// stores are in memory and start empty).
struct Writing<W: Write> {
    out: W,
    /// The repartition topics, by index.
    repartitions: Vec<String>,
    written: usize,
    /// The first write that failed.
    failed: Option<std::io::Error>,
    /// Records for each repartition topic, in order.
    repartitioned: Vec<(usize, Emitter)>,
    /// The global tables, filled as their records are read.
    globals: Arc<Globals>,
}

impl<W: Write> Writing<W> {
    fn new(t: &Topology, out: W) -> Self {
        Writing {
            out,
            repartitions: t
                .plan
                .repartitions
                .iter()
                .map(|r| r.topic.clone())
                .collect(),
            written: 0,
            failed: None,
            repartitioned: Vec::new(),
            globals: Globals::new(t.sources.iter().map(|s| s.global)),
        }
    }

    fn write(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        headers: impl Iterator<Item = (String, Option<Vec<u8>>)>,
    ) {
        if self.failed.is_some() {
            return;
        }
        match write_record(&mut self.out, topic, key, value, timestamp, headers) {
            Ok(()) => self.written += 1,
            Err(e) => self.failed = Some(e),
        }
    }

    fn write_ref(&mut self, topic: &str, r: &RecordRef<'_>) {
        let headers = batch_headers(r).into_iter();
        self.write(topic, r.key, r.value, r.timestamp, headers);
    }
}

impl<W: Write> TaskIo for Writing<W> {
    fn open(&mut self, t: &Topology, id: TaskId, _: &[String]) -> Result<Opened, String> {
        let pipeline =
            TaskPipeline::new(t, id.0, None, &self.globals).map_err(|e| e.to_string())?;
        let restored_to = HashMap::new();
        Ok(Opened {
            pipeline,
            restored_to,
        })
    }

    fn acked(&self, _: &str, _: i32) -> Option<i64> {
        None
    }
}

impl<W: Write> Output for Writing<W> {
    fn to_sink(&mut self, sink: &Sink, r: &RecordRef<'_>, _: Option<SourceAt<'_>>, _: &InFlight) {
        self.write_ref(&sink.topic, r);
    }

    /// Every topic has one partition here: `partition` is always 0.
    fn to_topic(
        &mut self,
        topic: &str,
        _: Option<i32>,
        r: &RecordRef<'_>,
        old: bool,
        _: &InFlight,
    ) {
        let Some(rep) = self.repartitions.iter().position(|p| p == topic) else {
            return self.write_ref(topic, r);
        };
        let at = match self.repartitioned.iter().position(|(p, _)| *p == rep) {
            Some(at) => at,
            None => {
                self.repartitioned.push((rep, Emitter::new()));
                self.repartitioned.len() - 1
            }
        };
        let records = &mut self.repartitioned[at].1;
        let origin = records.len() as u32;
        let aux = if old { r.aux } else { None };
        records.emit(origin, r.key, r.value, aux, r.timestamp, r.headers.iter());
    }

    fn to_changelog(&mut self, _: &str, _: i32, _: &ChangelogRecord, _: &InFlight) {}

    fn dead_letter(&mut self, d: &DeadLetter, _: &InFlight) {
        self.write(
            &d.topic,
            d.key.as_deref(),
            d.value.as_deref(),
            d.timestamp,
            d.headers.iter().cloned(),
        );
    }
}
