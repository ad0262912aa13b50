//! `count`, `reduce` and `aggregate` over groups without windows: Kafka
//! Streams' `KStreamAggregate`/`KStreamReduce` for grouped streams and
//! `KTableAggregate`/`KTableReduce` for grouped tables.
//!
//! Per batch: the updates are grouped by key (arrival order kept within a
//! key), the stored aggregates are read once, the aggregator operator is
//! called once for the whole batch, and the results are written and sent
//! downstream in input order, so a key updated twice in a batch emits both
//! results, as Kafka Streams does record by record.
//!
//! - A stream record with no key or no value is skipped (counted).
//! - A table change subtracts its old value (only when the group has an
//!   aggregate), then adds its new value (initialising the group if needed):
//!   one result per change.
//! - A result's timestamp is the record's, or the previous result's when
//!   that is later.
//! - `count` keeps decimal text ("3"); a table count may go down to 0.

use super::fold::{Current, Fold, Update, fold, outcome_value};
use super::{Dropped, Emitter, NodeError, Records};
use crate::state::{StateError, TaskState, keys};
use crate::wasm::Chain;
use eddy_batch::BatchView;
use std::borrow::Cow;

/// A non-windowed aggregation node.
#[derive(Debug, Clone)]
pub struct KvAggregate {
    /// Step name.
    pub name: String,
    /// Index of the step in the topology (its operator, for reduce/aggregate).
    pub step: usize,
    /// The fold.
    pub fold: Fold,
    /// Index of its store in the task's state.
    pub store: usize,
    /// Whether the input is a grouped table (changes with old values).
    pub table: bool,
}

/// Reads the stored aggregates of the groups `updates` touch.
pub(crate) fn read_current<'u>(
    name: &str,
    state: &TaskState,
    store: usize,
    updates: &'u [Update<'_>],
) -> Result<Current<'u>, NodeError> {
    let mut current: Current<'u> = Current::default();
    for u in updates {
        if !current.contains_key(&u.group[..]) {
            let stored = state.get(store, &u.group).map_err(|e| state_err(name, e))?;
            let decoded = match stored {
                Some(mut s) => {
                    let (ts, _) =
                        keys::decode_value(&s).ok_or_else(|| state_err(name, corrupt(name)))?;
                    // The value without its timestamp, in the same buffer.
                    s.drain(..8);
                    Some((ts, s))
                }
                None => None,
            };
            current.insert(&u.group, decoded);
        }
    }
    Ok(current)
}

pub(crate) fn state_err(name: &str, error: StateError) -> NodeError {
    NodeError::State {
        step: name.to_string(),
        error,
    }
}

impl KvAggregate {
    /// Folds a batch into the store and emits the results (at once when
    /// caching is off; at the next flush otherwise).
    pub fn process(
        &self,
        input: &Records,
        state: &mut TaskState,
        chain: &mut Chain,
        out: &mut Emitter,
        dropped: &mut Dropped,
    ) -> Result<(), NodeError> {
        let view = input.view();
        let mut updates = Vec::with_capacity(view.len());
        for (i, r) in view.iter().enumerate() {
            let (sub, add) = if self.table {
                (r.aux, r.value)
            } else {
                (None, r.value)
            };
            match r.key {
                Some(key) if sub.is_some() || add.is_some() => updates.push(Update {
                    input: i,
                    key,
                    group: Cow::Borrowed(key),
                    sub,
                    add,
                    add_none: false,
                    timestamp: r.timestamp,
                }),
                _ => dropped.no_key += 1,
            }
        }
        let mut current = read_current(&self.name, state, self.store, &updates)?;
        let (results, output) = fold(
            &self.name,
            self.step,
            self.fold,
            &updates,
            &current,
            &input.origins,
            chain,
        )?;
        let output_view =
            (!output.is_empty()).then(|| BatchView::already_checked(&output).expect("checked"));
        // Write and emit in input order.
        for (u, res) in updates.iter().zip(&results) {
            let Some(agg) = outcome_value(res, output_view.as_ref()) else {
                continue;
            };
            let cur = current.get_mut(&u.group[..]).expect("read above");
            let ts = cur
                .as_ref()
                .map_or(u.timestamp, |(t, _)| u.timestamp.max(*t));
            let old = cur.replace((ts, agg.to_vec()));
            state.put(self.store, u.key, Some(keys::encode_value(ts, agg)), ts);
            if !state.caching() {
                let r = view.get(u.input);
                out.emit(
                    input.origins[u.input],
                    Some(u.key),
                    Some(agg),
                    old.as_ref().map(|(_, v)| v.as_slice()),
                    ts,
                    r.headers.iter(),
                );
            }
        }
        if state.caching() {
            if state.over_budget() {
                self.flush(state, out)?;
            }
        } else if state.writes_due() {
            state
                .flush_store(self.store)
                .map_err(|e| state_err(&self.name, e))?;
        }
        Ok(())
    }

    /// Writes pending results to the store and, when caching, sends them
    /// downstream (newest result per key, least recently updated first).
    pub fn flush(&self, state: &mut TaskState, out: &mut Emitter) -> Result<(), NodeError> {
        let caching = state.caching();
        let flushed = state
            .flush_store(self.store)
            .map_err(|e| state_err(&self.name, e))?;
        if caching {
            for (key, e) in flushed {
                let Some((ts, v)) = e.value.as_deref().and_then(keys::decode_value) else {
                    continue;
                };
                out.emit(0, Some(&key), Some(v), None, ts, []);
            }
        }
        Ok(())
    }
}

pub(crate) fn corrupt(store: &str) -> StateError {
    StateError::Corrupt {
        store: store.to_string(),
        reason: "a stored aggregate is not in eddy's format (timestamp + value)".into(),
    }
}
