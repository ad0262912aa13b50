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

use super::Chain;
use super::dead_letter::{DeadLetter, Parts, SourceAt, batch_headers};
use super::deliver::{Output, TaskInfo, deliver};
use super::task::{TaskOutput, TaskPipeline};
use super::ticket::{BatchTicket, InFlight};
use crate::ops::{Emitter, NodeError, Records};
use crate::records::{InputLine, OwnedRecord, write_record};
use crate::state::{ChangelogRecord, StateError};
use crate::time::extract::{TimestampError, extract};
use crate::topology::{ErrorPolicy, Sink, StoreKind, SubInput, Topics, Topology};
use crate::wasm::{LoadError, OperatorEngine};
use eddy_batch::{BatchWriter, RecordRef};
use std::collections::HashMap;
use std::io::Write;

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
    /// Stores could not be opened.
    #[error(transparent)]
    State(#[from] StateError),
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
        offset: usize,
    },
    /// A failure not tied to an input record (a commit's flush).
    #[error("{0}")]
    Flush(NodeError),
    /// Writing output failed.
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}

struct Driver<'t, W: Write> {
    t: &'t Topology,
    chain: Chain,
    tasks: Vec<TaskPipeline>,
    out: W,
    written: usize,
    /// The topic of the run being processed, and each record's offset.
    topic: String,
    offsets: Vec<i64>,
    /// The changelog topic of each store, per sub-topology.
    changelogs: Vec<Vec<String>>,
    /// Records skipped by `on_error = "skip"`.
    skipped: usize,
    /// Source records without a readable event time, skipped.
    unreadable: usize,
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
    // Each topic's source, found once per topic (a pattern is a regex).
    let mut source_of: HashMap<&str, usize> = HashMap::new();
    for (line, l) in input {
        let InputLine::Record(r) = l else { continue };
        if source_of.contains_key(r.topic.as_str()) {
            continue;
        }
        if let Some(src) = topology.source_of_topic(&r.topic) {
            source_of.insert(&r.topic, src);
        } else {
            let sources: Vec<String> = topology
                .sources
                .iter()
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
    }
    let ops = Chain::load(topology, engine)?;
    let mut t = topology.clone();
    t.state.store = StoreKind::Memory;
    let tasks = (0..t.plan.subtopologies.len())
        .map(|s| TaskPipeline::new(&t, s, None))
        .collect::<Result<Vec<_>, _>>()?;
    let mut d = Driver {
        t: topology,
        chain: Chain::new(&ops)?,
        tasks,
        out,
        written: 0,
        topic: String::new(),
        offsets: Vec::new(),
        changelogs: (0..t.plan.subtopologies.len())
            .map(|s| {
                t.plan
                    .store_names(s)
                    .iter()
                    .map(|n| t.changelog_topic(n))
                    .collect()
            })
            .collect(),
        skipped: 0,
        unreadable: 0,
    };
    let mut pending: Vec<Pending<'_>> = Vec::new();
    for (line, l) in input {
        match l {
            InputLine::Record(r) => {
                let src = source_of[r.topic.as_str()];
                let source = &topology.sources[src];
                let ts = match extract(&source.timestamp, r.timestamp, r.value.as_deref()) {
                    Ok(ts) => ts,
                    Err(error) => {
                        match &source.on_error {
                            ErrorPolicy::Fail => {
                                return Err(TestDriverError::Timestamp {
                                    line: *line,
                                    topic: r.topic.clone(),
                                    error,
                                });
                            }
                            ErrorPolicy::Skip => d.unreadable += 1,
                            ErrorPolicy::DeadLetter(topic) => {
                                // In input order: what came before goes first.
                                d.batch(input, &pending)?;
                                pending.clear();
                                let offset = offset_of(input, *line, &r.topic);
                                let parts = Parts {
                                    key: r.key.as_deref(),
                                    value: r.value.as_deref(),
                                    timestamp: r.timestamp,
                                    headers: &r.headers,
                                };
                                let letter = DeadLetter::unreadable(
                                    topic,
                                    parts,
                                    &error,
                                    (&r.topic, 0, offset),
                                );
                                d.write_dead(&letter)?;
                            }
                        }
                        continue;
                    }
                };
                pending.push((*line, r, ts, src));
                if pending.len() == topology.runtime.batch_size {
                    d.batch(input, &pending)?;
                    pending.clear();
                }
            }
            InputLine::AdvanceTime(ts) => {
                d.batch(input, &pending)?;
                pending.clear();
                d.advance(*ts)?;
            }
        }
    }
    d.batch(input, &pending)?;
    let (late, no_key) = d.tasks.iter().fold((0, 0), |(l, k), t| {
        (l + t.dropped.late, k + t.dropped.no_key)
    });
    if late > 0 {
        tracing::warn!("{late} late record(s) dropped (later than their windows' end + grace)");
    }
    if no_key > 0 {
        tracing::warn!(
            "{no_key} record(s) without a key skipped (a grouping or an aggregation needs one)"
        );
    }
    if d.unreadable > 0 {
        tracing::warn!(
            "{} record(s) without a readable event time skipped (the source's on_error = \"skip\")",
            d.unreadable
        );
    }
    if d.skipped > 0 {
        tracing::warn!(
            "{} record(s) an operator failed on skipped (on_error = \"skip\")",
            d.skipped
        );
    }
    Ok(d.written)
}

/// A record waiting for its batch: input line, record, event time, source.
type Pending<'a> = (usize, &'a OwnedRecord, i64, usize);

/// The offset of the record on input line `line` in its topic: how many
/// records of `topic` come before it.
fn offset_of(input: &[(usize, InputLine)], line: usize, topic: &str) -> i64 {
    input
        .iter()
        .take_while(|(l, _)| *l < line)
        .filter(|(_, x)| matches!(x, InputLine::Record(o) if o.topic == topic))
        .count() as i64
}

impl<W: Write> Driver<'_, W> {
    /// Processes one batch of source records, a run of one source's
    /// consecutive records at a time, then commits.
    fn batch(
        &mut self,
        input: &[(usize, InputLine)],
        records: &[Pending<'_>],
    ) -> Result<(), TestDriverError> {
        if records.is_empty() {
            return Ok(());
        }
        for run in records.chunk_by(|a, b| a.1.topic == b.1.topic) {
            self.run(input, run)?;
        }
        self.commit()
    }

    /// Runs consecutive records of one topic through its sub-topology.
    fn run(
        &mut self,
        input: &[(usize, InputLine)],
        records: &[Pending<'_>],
    ) -> Result<(), TestDriverError> {
        let mut writer = BatchWriter::new();
        for (i, (_, r, ts, _)) in records.iter().enumerate() {
            writer.record(
                i as u32,
                r.key.as_deref(),
                r.value.as_deref(),
                *ts,
                r.headers.iter().map(|(n, v)| (n.as_bytes(), v.as_deref())),
            );
        }
        let batch = Records::new(writer.into_vec(), (0..records.len() as u32).collect());
        self.topic.clone_from(&records[0].1.topic);
        self.offsets = records
            .iter()
            .map(|(line, r, _, _)| offset_of(input, *line, &r.topic))
            .collect();
        let pinned = |error: NodeError| {
            let i = error.input_index().unwrap_or(0) as usize;
            let (line, r, _, _) = records[i.min(records.len() - 1)];
            TestDriverError::Operator {
                error,
                line,
                topic: r.topic.clone(),
                offset: offset_of(input, line, &r.topic) as usize,
            }
        };
        let src = records[0].3;
        let sub = self.t.plan.source_sub[src];
        self.run_from(sub, SubInput::Source(src), batch)
            .map_err(|e| match e {
                DriverError::Node(n) => pinned(n),
                DriverError::Other(o) => *o,
            })
    }

    /// Flushes every task's caches, in topology order.
    fn commit(&mut self) -> Result<(), TestDriverError> {
        for s in 0..self.tasks.len() {
            let out = self.tasks[s]
                .flush(&mut self.chain)
                .map_err(TestDriverError::Flush)?;
            self.deliver(s, &out, false).map_err(DriverError::flush)?;
        }
        Ok(())
    }

    /// Moves every window step's stream time to at least `ts`.
    fn advance(&mut self, ts: i64) -> Result<(), TestDriverError> {
        for s in 0..self.tasks.len() {
            let out = self.tasks[s]
                .advance_time(ts, &mut self.chain)
                .map_err(TestDriverError::Flush)?;
            self.deliver(s, &out, false).map_err(DriverError::flush)?;
        }
        self.commit()
    }

    /// Runs `batch`, read from `input`, through sub-topology `s` and
    /// everything its outputs reach.
    fn run_from(&mut self, s: usize, input: SubInput, batch: Records) -> Result<(), DriverError> {
        let sourced = matches!(input, SubInput::Source(_));
        let out = self.tasks[s]
            .process(input, &mut self.chain, batch)
            .map_err(DriverError::Node)?;
        self.deliver(s, &out, sourced)
    }

    /// Writes a dead letter of the source's own (not from a task's output).
    fn write_dead(&mut self, letter: &DeadLetter) -> Result<(), TestDriverError> {
        let (_, held) = BatchTicket::new(0);
        let mut io = Writing::new(self.t, &mut self.out);
        io.dead_letter(letter, &held);
        self.written += io.written;
        io.failed.map_or(Ok(()), |e| Err(TestDriverError::Io(e)))
    }

    /// Delivers a task's output through the shared delivery code: dead
    /// letters, late and sink records are written; repartitioned records go
    /// on to the sub-topology reading them. `sourced` when the task's input
    /// was source records (dead letters then name them).
    fn deliver(&mut self, s: usize, out: &TaskOutput, sourced: bool) -> Result<(), DriverError> {
        let info = TaskInfo {
            t: self.t,
            partition: 0,
            changelogs: &self.changelogs[s],
        };
        let source = sourced.then_some((self.topic.as_str(), 0, &self.offsets[..]));
        // Written at once: the share completes as soon as it is dropped.
        let (_, held) = BatchTicket::new(0);
        let mut io = Writing::new(self.t, &mut self.out);
        let done = deliver(out, &info, &self.chain, source, &held, &mut io, None);
        let Writing {
            written,
            failed,
            repartitioned,
            ..
        } = io;
        self.written += written;
        self.skipped += done.skipped as usize;
        if let Some(e) = failed {
            return Err(DriverError::Other(Box::new(TestDriverError::Io(e))));
        }
        for (r, records) in repartitioned {
            let to = self.t.plan.repartitions[r].to;
            self.run_from(to, SubInput::Repartition(r), records.finish())
                .map_err(|e| match e {
                    // The next sub-topology's records are not input lines.
                    DriverError::Node(n) => DriverError::Other(Box::new(TestDriverError::Flush(n))),
                    other => other,
                })?;
        }
        Ok(())
    }
}

enum DriverError {
    Node(NodeError),
    Other(Box<TestDriverError>),
}

impl DriverError {
    fn flush(self) -> TestDriverError {
        match self {
            DriverError::Node(n) => TestDriverError::Flush(n),
            DriverError::Other(o) => *o,
        }
    }
}

/// The records file as the I/O layer of a task's output: sink, late and
/// dead-letter records are written; records for a repartition topic are
/// kept for the sub-topology reading it; changelog writes go nowhere (the
/// stores are in memory and start empty).
struct Writing<'a, W: Write> {
    t: &'a Topology,
    out: &'a mut W,
    written: usize,
    /// The first write that failed.
    failed: Option<std::io::Error>,
    /// Records for each repartition topic, in order.
    repartitioned: Vec<(usize, Emitter)>,
}

impl<'a, W: Write> Writing<'a, W> {
    fn new(t: &'a Topology, out: &'a mut W) -> Self {
        Writing {
            t,
            out,
            written: 0,
            failed: None,
            repartitioned: Vec::new(),
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
        match write_record(self.out, topic, key, value, timestamp, headers) {
            Ok(()) => self.written += 1,
            Err(e) => self.failed = Some(e),
        }
    }

    fn write_ref(&mut self, topic: &str, r: &RecordRef<'_>) {
        let headers = batch_headers(r).into_iter();
        self.write(topic, r.key, r.value, r.timestamp, headers);
    }
}

impl<W: Write> Output for Writing<'_, W> {
    fn to_sink(&mut self, sink: &Sink, r: &RecordRef<'_>, _: Option<SourceAt<'_>>, _: &InFlight) {
        self.write_ref(&sink.topic, r);
    }

    fn to_topic(&mut self, topic: &str, r: &RecordRef<'_>, old: bool, _: &InFlight) {
        let Some(rep) = self
            .t
            .plan
            .repartitions
            .iter()
            .position(|p| p.topic == topic)
        else {
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
