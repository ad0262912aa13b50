//! Joins: a node with two inputs (records tagged 0 for the left, 1 for the
//! right) that finds matches in state stores and emits what its joiner
//! makes of them, with Kafka Streams' semantics (docs/joins-semantics.md).
//!
//! Matching runs on the host, record by record, in input order; the
//! matched pairs of a whole batch then go to the joiner at once — one Wasm
//! call per batch, never one per pair.

mod buffer;
pub mod builtin;
pub mod foreign;
mod pairs;
mod recent;
pub mod stream_stream;
pub mod tables;

use super::table::TableNode;
use super::{Dropped, Emitter, NodeError, Records};
use crate::state::TaskState;
use crate::state::global::Globals;
use crate::topology::{JoinKind, Joiner};
use crate::wasm::Chain;
pub use pairs::{Outputs, Value};
use std::sync::Arc;

/// The left input's tag.
pub const LEFT: u32 = 0;
/// The right input's tag.
pub const RIGHT: u32 = 1;

/// What a join node keeps, by the kind of its inputs.
#[derive(Debug)]
pub enum How {
    /// Two streams in a window.
    Streams(stream_stream::StreamStream),
    /// A stream looking up the table in store `table`.
    StreamTable {
        /// Local index of the table's store.
        table: usize,
        /// A versioned table's history: rows are looked up as of each
        /// record's time.
        history: Option<i64>,
    },
    /// A stream looking up a global table.
    GlobalTable {
        /// The global tables.
        globals: Arc<Globals>,
        /// The global source.
        source: usize,
        /// JSON pointer of the lookup key in the stream value (none: the key).
        pointer: Option<String>,
    },
    /// Two tables, in these stores.
    Tables {
        /// The left table's store.
        left: usize,
        /// The right table's store.
        right: usize,
        /// Whether to compute old results (a grouping reads the join).
        send_old: bool,
    },
    /// A part of a foreign-key join.
    ForeignKey(Fk),
}

/// The part of a foreign-key join a task runs (see [`foreign`]).
#[derive(Debug)]
pub enum Fk {
    /// Left table changes become subscriptions.
    Subscribe {
        /// JSON pointer of the foreign key in the left value.
        pointer: String,
        /// The task's partition, where answers come back to.
        partition: i32,
    },
    /// Subscriptions are kept and answered with the right table's rows.
    Answer {
        /// The subscription store.
        subscriptions: usize,
        /// The right table's store.
        right: usize,
    },
    /// Answers still matching the left row become results.
    Result {
        /// The left table's store.
        left: usize,
        /// The results kept as a table, when their old values are needed.
        table: Option<TableNode>,
    },
}

/// A join step in a task.
#[derive(Debug)]
pub struct JoinNode {
    /// Step name.
    pub name: String,
    /// Step index (its operator, for a component joiner).
    pub step: usize,
    /// Inner, left or outer.
    pub kind: JoinKind,
    /// What a match becomes.
    pub joiner: Joiner,
    /// The state it matches in.
    pub how: How,
}

impl JoinNode {
    /// Joins a batch of tagged records and emits the results.
    pub fn process(
        &mut self,
        input: &Records,
        state: Option<&mut TaskState>,
        chain: &mut Chain,
        out: &mut Emitter,
        dropped: &mut Dropped,
    ) -> Result<(), NodeError> {
        if let How::ForeignKey(fk) = &mut self.how {
            let left_join = self.kind == JoinKind::Left;
            let state = state.expect("a foreign-key join's tables have stores");
            match fk {
                Fk::Subscribe { pointer, partition } => {
                    foreign::subscribe(pointer, left_join, *partition, input, out, dropped);
                }
                Fk::Answer {
                    subscriptions,
                    right,
                } => {
                    let stores = (*subscriptions, *right);
                    foreign::answer(&self.name, stores, input, state, out, dropped)?;
                    return self.write_through(state);
                }
                Fk::Result { left, table } => {
                    let mut outs = Outputs::default();
                    foreign::result(&self.name, left_join, *left, input, state, &mut outs)?;
                    let Some(table) = table else {
                        return outs.finish(&self.name, self.step, &self.joiner, None, chain, out);
                    };
                    let mut results = Emitter::new();
                    outs.finish(
                        &self.name,
                        self.step,
                        &self.joiner,
                        None,
                        chain,
                        &mut results,
                    )?;
                    table.process(&results.finish(), state, out, dropped)?;
                }
            }
            return Ok(());
        }
        let view = input.view();
        let mut outs = Outputs::default();
        if let How::GlobalTable {
            globals,
            source,
            pointer,
        } = &self.how
        {
            let rows = globals.read(*source);
            let pointer = pointer.as_deref();
            tables::stream_global_table(self.kind, &rows, pointer, input, &mut outs, dropped);
            drop(rows);
            return outs.finish(&self.name, self.step, &self.joiner, Some(&view), chain, out);
        }
        let state = state.expect("a join of stored inputs has stores");
        match &mut self.how {
            How::Streams(s) => {
                s.process(&self.name, self.kind, input, state, &mut outs, dropped)?
            }
            How::StreamTable { table, history } => {
                let lookup = (*table, *history);
                tables::stream_table(
                    &self.name, self.kind, lookup, input, state, &mut outs, dropped,
                )?;
            }
            How::GlobalTable { .. } | How::ForeignKey(_) => unreachable!("handled above"),
            How::Tables {
                left,
                right,
                send_old,
            } => tables::table_table(
                &self.name,
                self.kind,
                [*left, *right],
                *send_old,
                input,
                state,
                &mut outs,
            )?,
        }
        outs.finish(&self.name, self.step, &self.joiner, Some(&view), chain, out)?;
        self.write_through(state)
    }

    /// Its join buffers: the stores only it reads and writes.
    fn buffers(&self) -> Vec<usize> {
        match &self.how {
            How::Streams(s) => s.stores().collect(),
            How::ForeignKey(Fk::Answer { subscriptions, .. }) => vec![*subscriptions],
            _ => Vec::new(),
        }
    }

    /// Writes the batch's buffer writes (logged already) to the backend.
    fn write_through(&self, state: &mut TaskState) -> Result<(), NodeError> {
        for store in self.buffers() {
            (state.write_through(store)).map_err(|e| super::aggregate::state_err(&self.name, e))?;
        }
        Ok(())
    }

    /// At a commit: writes the join's own stores (and emits a kept
    /// result table's changes).
    pub fn flush(&mut self, state: &mut TaskState, out: &mut Emitter) -> Result<(), NodeError> {
        if let How::ForeignKey(Fk::Result {
            table: Some(table), ..
        }) = &mut self.how
        {
            return table.flush(state, out);
        }
        self.write_through(state)
    }

    /// Tells the node which partition its task runs.
    pub fn set_partition(&mut self, p: i32) {
        if let How::ForeignKey(Fk::Subscribe { partition, .. }) = &mut self.how {
            *partition = p;
        }
    }

    /// Moves a join of two streams' time to at least `ts` (a test device),
    /// emitting the unmatched records whose windows closed.
    pub fn advance(
        &mut self,
        ts: i64,
        state: &mut TaskState,
        chain: &mut Chain,
        out: &mut Emitter,
    ) -> Result<(), NodeError> {
        let How::Streams(s) = &mut self.how else {
            return Ok(());
        };
        let mut outs = Outputs::default();
        s.advance(&self.name, ts, state, &mut outs)?;
        outs.finish(&self.name, self.step, &self.joiner, None, chain, out)?;
        self.write_through(state)
    }
}
