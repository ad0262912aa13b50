//! A join of two streams within a window (Kafka Streams'
//! `KStreamKStreamJoin` with the spurious-result fix, docs/joins-semantics.md §2).
//!
//! Each side's records wait in a window store of their own, keyed by
//! (key, timestamp), the records of one key and time kept in arrival order
//! in one value. Left and outer joins keep the records that have not found
//! a match yet in a third store keyed by (timestamp, side, key), and emit
//! them joined with null once stream time passes their window's end plus
//! grace — checked when a record arrives at the join's stream time.

use super::super::aggregate::state_err;
use super::super::{Dropped, NodeError, Records};
use super::buffer::{appended, split_unmatched_key, unmatched_key, values};
use super::recent::Recent;
use super::{LEFT, Outputs};
use crate::state::{StateError, TaskState, keys};
use crate::topology::{JoinKind, JoinWindow};
use eddy_batch::BatchView;
use std::ops::Range;

/// The state of a join of two streams in one task.
#[derive(Debug)]
pub struct StreamStream {
    /// The window bounds and grace.
    pub window: JoinWindow,
    /// Window stores of the left and right records.
    pub sides: [usize; 2],
    /// The store of records without a match yet (left and outer joins).
    pub unmatched: Option<usize>,
    /// The join's stream time: the largest timestamp it has seen.
    stream_time: i64,
    /// A lower bound hint of the unmatched records' times (Kafka Streams'
    /// bookkeeping, kept as it is so that emission matches it).
    min_time: i64,
    /// The largest timestamp put into each side's store.
    observed: [i64; 2],
    /// Where each side's sweep for expired records goes on from.
    sweep: [Vec<u8>; 2],
    /// Per side, no record in its store is older than this (none: not
    /// known before a sweep has passed over the whole store): until time
    /// passes it, nothing can have expired and sweeps are skipped.
    floor: [Option<i64>; 2],
    /// Per side, the oldest record the current sweep pass kept or that was
    /// written during it: the floor once the pass ends.
    pass_floor: [i64; 2],
    /// Per side, a memory copy of its recent records (none before the
    /// first batch, which finds where the store's records end).
    recent: [Option<Recent>; 2],
}

/// What a run of records found in the other side's store.
#[derive(Debug, Default)]
struct Found {
    /// (record index, entry time, its stored bytes in `bytes`).
    hits: Vec<(usize, i64, Range<usize>)>,
    bytes: Vec<u8>,
}

/// `this` and `other` in left–right order.
fn ordered<'a>(
    this_left: bool,
    this: Option<&'a [u8]>,
    other: Option<&'a [u8]>,
) -> (Option<&'a [u8]>, Option<&'a [u8]>) {
    if this_left {
        (this, other)
    } else {
        (other, this)
    }
}

impl StreamStream {
    /// A join's state before any record.
    pub fn new(window: JoinWindow, sides: [usize; 2], unmatched: Option<usize>) -> Self {
        StreamStream {
            window,
            sides,
            unmatched,
            stream_time: -1,
            min_time: i64::MAX,
            observed: [-1, -1],
            sweep: [Vec::new(), Vec::new()],
            floor: [None, None],
            pass_floor: [i64::MAX, i64::MAX],
            recent: [None, None],
        }
    }

    /// Its stores.
    pub fn stores(&self) -> impl Iterator<Item = usize> + '_ {
        self.sides.iter().copied().chain(self.unmatched)
    }

    /// How far a side looks back for its own window's end: `after` for a
    /// left record, `before` for a right one.
    fn ahead(&self, left: bool) -> i64 {
        if left {
            self.window.after
        } else {
            self.window.before
        }
    }

    /// Joins a batch of tagged records, in order.
    pub fn process(
        &mut self,
        name: &str,
        kind: JoinKind,
        input: &Records,
        state: &mut TaskState,
        outs: &mut Outputs,
        dropped: &mut Dropped,
    ) -> Result<(), NodeError> {
        let err = |e| state_err(name, e);
        let retention = self.window.retention();
        for side in 0..2 {
            if self.recent[side].is_none() {
                self.recent[side] = Some(self.recent_from(side, state).map_err(err)?);
            }
        }
        let mut written = [0usize; 2];
        let view = input.view();
        let mut start = 0;
        while start < view.len() {
            // A run of one side's records: their matches are read first,
            // with one iterator, as the run never writes the other side.
            let tag = view.get(start).tag;
            let end = (start..view.len())
                .find(|&i| view.get(i).tag != tag)
                .unwrap_or(view.len());
            let found = self.look_up(&view, start..end, state).map_err(err)?;
            let mut hits = found.hits.iter().peekable();
            for i in start..end {
                let r = view.get(i);
                let left = r.tag == LEFT;
                let side = usize::from(!left);
                let outer = kind == JoinKind::Outer || (kind == JoinKind::Left && left);
                let origin = input.origins[i];
                let ts = r.timestamp;
                self.stream_time = self.stream_time.max(ts);
                let (key, value) = match (r.key, r.value) {
                    (Some(k), Some(v)) => (k, v),
                    // KIP-962: an outer side emits a record without a key at once.
                    (None, Some(v)) if outer => {
                        outs.pair(origin, None, ordered(left, Some(v), None), ts, Some(i));
                        continue;
                    }
                    _ => {
                        dropped.no_key += 1;
                        continue;
                    }
                };
                if ts == self.stream_time {
                    self.emit_unmatched(name, left, state, outs, origin, Some(i))?;
                }
                let to = ts.saturating_add(self.ahead(left)).max(0);
                let mut matched = false;
                while let Some((_, other_ts, bytes)) = hits.next_if(|h| h.0 == i) {
                    let Some((_, list)) = keys::decode_value(&found.bytes[bytes.clone()]) else {
                        continue;
                    };
                    if let Some(u) = self.unmatched {
                        state.put(u, &unmatched_key(*other_ts, !left, key), None, *other_ts);
                    }
                    for other in values(list) {
                        matched = true;
                        let pair = ordered(left, Some(value), Some(other));
                        outs.pair(origin, Some(key), pair, ts.max(*other_ts), Some(i));
                    }
                }
                if !matched && outer {
                    match self.unmatched {
                        Some(u) if to >= self.stream_time => {
                            self.min_time = self.min_time.min(ts);
                            let k = unmatched_key(ts, left, key);
                            let stored = state.get(u, &k).map_err(err)?;
                            state.put(u, &k, Some(appended(stored.as_deref(), ts, value)), ts);
                        }
                        // Past its window already (KAFKA-19536: grace is not
                        // waited for): joined with null at once.
                        _ => outs.pair(
                            origin,
                            Some(key),
                            ordered(left, Some(value), None),
                            ts,
                            Some(i),
                        ),
                    }
                }
                let own = self.sides[side];
                self.observed[side] = self.observed[side].max(ts);
                if ts <= self.observed[side].saturating_sub(retention) {
                    dropped.late += 1; // behind the store's retention: never visible
                    continue;
                }
                let wk = keys::window_key(key, ts, ts);
                let recent = self.recent[side].as_mut().expect("set above");
                let value = if recent.covers(ts) {
                    appended(recent.get(key, ts), ts, value)
                } else {
                    let stored = state.get(own, &wk).map_err(err)?;
                    appended(stored.as_deref(), ts, value)
                };
                recent.put(key, ts, &value);
                state.put(own, &wk, Some(value), ts);
                written[side] += 1;
                self.pass_floor[side] = self.pass_floor[side].min(ts);
                if let Some(f) = &mut self.floor[side] {
                    *f = (*f).min(ts);
                }
            }
            start = end;
        }
        // What lookups near stream time need stays in memory; nothing a
        // sweep may delete does.
        let keep = 2 * (self.window.before + self.window.after);
        for side in 0..2 {
            let observed = self.observed[side];
            let low = observed
                .saturating_sub(keep)
                .max(observed.saturating_sub(retention).saturating_add(1));
            self.recent[side].as_mut().expect("set above").shrink(low);
        }
        for (side, n) in written.into_iter().enumerate() {
            if n > 0 {
                self.sweep(side, 2 * n + 16, state).map_err(err)?;
            }
        }
        Ok(())
    }

    /// Deletes the expired records among the next `budget` entries of
    /// side `side`'s store, from where the last sweep stopped (wrapping at
    /// the end). Sweeping two entries per record written passes over the
    /// whole store while it takes in half as many records again, so it
    /// holds little beyond a retention's worth, with no time index written
    /// per record; lookups never see expired records meanwhile. Until
    /// time passes the side's floor, sweeps are skipped.
    fn sweep(
        &mut self,
        side: usize,
        budget: usize,
        state: &mut TaskState,
    ) -> Result<(), StateError> {
        let store = self.sides[side];
        let through = self.observed[side].saturating_sub(self.window.retention());
        if self.floor[side].is_some_and(|f| through < f) {
            return Ok(()); // nothing is that old
        }
        state.write_through(store)?;
        let mut kept = self.pass_floor[side];
        let mut expired: Vec<(Vec<u8>, i64)> = Vec::new();
        let mut visited = 0;
        let mut last: Option<Vec<u8>> = None;
        state.scan(store, false, &self.sweep[side], None, |k, _| {
            match keys::split_window_key(k) {
                Some((_, ts, _)) if ts <= through => expired.push((k.to_vec(), ts)),
                Some((_, ts, _)) => kept = kept.min(ts),
                None => {}
            }
            visited += 1;
            if visited == budget {
                last = Some(k.to_vec());
                return false;
            }
            true
        })?;
        // Past the last key visited; at the end, from the start again,
        // with what this pass kept as the floor.
        self.pass_floor[side] = kept;
        self.sweep[side] = match last {
            Some(mut k) => {
                k.push(0);
                k
            }
            None => {
                self.floor[side] = Some(kept);
                self.pass_floor[side] = i64::MAX;
                Vec::new()
            }
        };
        for (k, ts) in expired {
            state.put(store, &k, None, ts);
        }
        state.write_through(store)
    }

    /// A memory copy of side `side`'s records: empty, covering what comes
    /// after the latest record its store holds (found with one pass over
    /// the store, as the store is in key order).
    fn recent_from(&self, side: usize, state: &mut TaskState) -> Result<Recent, StateError> {
        let mut latest = None::<i64>;
        state.scan(self.sides[side], false, &[], None, |k, _| {
            if let Some((_, ts, _)) = keys::split_window_key(k) {
                latest = Some(latest.map_or(ts, |l| l.max(ts)));
            }
            true
        })?;
        Ok(Recent::new(
            latest.map_or(i64::MIN, |l| l.saturating_add(1)),
        ))
    }

    /// The other side's entries within the window of each record of
    /// `run` (all of one side), as (record index, entry time, stored bytes
    /// in `bytes`), in record order and then time order.
    fn look_up(
        &self,
        view: &BatchView<'_>,
        run: Range<usize>,
        state: &mut TaskState,
    ) -> Result<Found, StateError> {
        let left = view.get(run.start).tag == LEFT;
        let other = self.sides[usize::from(left)];
        // Written in this batch (a join of a stream with itself): to the
        // backend first, so the reads need no merge.
        if state.pending(other) {
            state.write_through(other)?;
        }
        let (before, after) = if left {
            (self.window.before, self.window.after)
        } else {
            (self.window.after, self.window.before)
        };
        // The other side's store holds nothing older than its retention.
        let visible = self.observed[usize::from(left)]
            .saturating_sub(self.window.retention())
            .saturating_add(1);
        let recent = self.recent[usize::from(left)].as_ref();
        let mut found = Found::default();
        let (mut from_memory, mut from_store) = (false, false);
        let ranges: Vec<(Vec<u8>, Vec<u8>)> = run
            .clone()
            .map(|i| {
                let r = view.get(i);
                match (r.key, r.value) {
                    (Some(k), Some(_)) => {
                        let from = r.timestamp.saturating_sub(before).max(0).max(visible);
                        let to = r.timestamp.saturating_add(after).max(0);
                        if let Some(recent) = recent.filter(|m| m.covers(from)) {
                            recent.range(k, from, to, |ts, v| {
                                let at = found.bytes.len();
                                found.bytes.extend_from_slice(v);
                                found.hits.push((i, ts, at..found.bytes.len()));
                            });
                            from_memory = true;
                            return (Vec::new(), Vec::new());
                        }
                        from_store = true;
                        let end = keys::window_key_from(k, to.saturating_add(1));
                        (keys::window_key_from(k, from), end)
                    }
                    _ => (Vec::new(), Vec::new()), // nothing to read
                }
            })
            .collect();
        if !from_store {
            return Ok(found);
        }
        state.scan_ranges(other, &ranges, |i, k, v| {
            if let Some((_, start, _)) = keys::split_window_key(k) {
                let at = found.bytes.len();
                found.bytes.extend_from_slice(v);
                found
                    .hits
                    .push((run.start + i, start, at..found.bytes.len()));
            }
        })?;
        if from_memory {
            // In record order, then time order.
            found.hits.sort_by_key(|h| (h.0, h.1));
        }
        Ok(found)
    }

    /// Emits (joined with null) and deletes the unmatched records whose
    /// windows have closed, in (time, right before left, key) order; the
    /// results carry the headers of input record `headers`.
    fn emit_unmatched(
        &mut self,
        name: &str,
        caller_left: bool,
        state: &mut TaskState,
        outs: &mut Outputs,
        origin: u32,
        headers: Option<usize>,
    ) -> Result<(), NodeError> {
        let Some(u) = self.unmatched else {
            return Ok(());
        };
        let grace = self.window.grace;
        // Kafka Streams' guard, overflow included: `min_time` starts at
        // i64::MAX, and then the sum wraps and the pass runs.
        let guard = self
            .min_time
            .wrapping_add(self.ahead(caller_left))
            .wrapping_add(grace);
        if guard >= self.stream_time {
            return Ok(());
        }
        self.min_time = i64::MAX;
        let (mut left_open, mut right_open) = (false, false);
        let mut expired: Vec<Vec<u8>> = Vec::new();
        let mut min_time = self.min_time;
        let stream_time = self.stream_time;
        let window = self.window;
        state.write_through(u).map_err(|e| state_err(name, e))?;
        state
            .scan(u, false, &[], None, |k, v| {
                let Some((ts, left, key)) = split_unmatched_key(k) else {
                    return true;
                };
                let Some((_, list)) = keys::decode_value(v) else {
                    return true;
                };
                for value in values(list) {
                    min_time = ts;
                    if left_open && right_open {
                        return false;
                    }
                    let ahead = if left { window.after } else { window.before };
                    if ts.wrapping_add(ahead).wrapping_add(grace) >= stream_time {
                        if left {
                            left_open = true;
                        } else {
                            right_open = true;
                        }
                        continue;
                    }
                    let pair = if left {
                        (Some(value), None)
                    } else {
                        (None, Some(value))
                    };
                    outs.pair(origin, Some(key), pair, ts, headers);
                    if expired.last().is_none_or(|e| e.as_slice() != k) {
                        expired.push(k.to_vec());
                    }
                }
                true
            })
            .map_err(|e| state_err(name, e))?;
        self.min_time = min_time;
        for k in expired {
            let ts = split_unmatched_key(&k).map_or(0, |(ts, ..)| ts);
            state.put(u, &k, None, ts);
        }
        Ok(())
    }

    /// Moves stream time to at least `ts`, as a record at `ts` on the left
    /// would, and emits what closed.
    pub fn advance(
        &mut self,
        name: &str,
        ts: i64,
        state: &mut TaskState,
        outs: &mut Outputs,
    ) -> Result<(), NodeError> {
        self.stream_time = self.stream_time.max(ts);
        if ts == self.stream_time {
            self.emit_unmatched(name, true, state, outs, 0, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "stream_stream_tests.rs"]
mod tests;
