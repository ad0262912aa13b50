//! Sliding window aggregation: Kafka Streams' `SlidingWindows` and
//! `KStreamSlidingWindowAggregate` (its reverse-iteration path, which its
//! built-in stores use).
//!
//! - Windows are `[start, start + difference]`, both ends inclusive, and
//!   exist only where records are: each record has a left window
//!   `[ts - difference, ts]`, and a right window `[ts + 1, ts + 1 + difference]`
//!   when a later record falls within `difference` of it. Records with
//!   `ts < difference` share the window `[0, difference]`.
//! - Records without a key or a value are skipped.
//! - Stream time T as for time windows; a window takes updates while
//!   `end >= T - grace`; a record with `ts + difference < T - grace` is late.
//! - `emit = update`: updates of existing windows (latest start first), then
//!   the previous record's right window, the record's left window, its right
//!   window; `emit = final`: a window goes downstream once `end < T - grace`,
//!   in end, start, key order.
//! - Windows are kept until `end < T - grace - difference`: newer windows
//!   copy their aggregates. A batch is folded in rounds (the n-th record of
//!   every key per round), one operator call per round.

use super::super::aggregate::state_err;
use super::super::fold::{ChainStep, Fold, OpChain, run_chains};
use super::super::{Dropped, Emitter, NodeError, Records};
use super::{Closer, WindowStep, delete_windows, emit_windows, flush_cached, windowed_key, write};
use crate::state::{TaskState, keys};
use crate::topology::Emit;
use crate::wasm::Chain;
use foldhash::{HashMap, HashMapExt};

/// A sliding window aggregation node.
#[derive(Debug, Clone)]
pub struct SlidingAggregate {
    /// Step name.
    pub name: String,
    /// Index of the step in the topology.
    pub step: usize,
    /// The fold.
    pub fold: Fold,
    /// Index of its store in the task's state.
    pub store: usize,
    /// Largest time difference within a window, ms.
    pub difference: i64,
    /// Grace, ms.
    pub grace: i64,
    /// When results go downstream.
    pub emit: Emit,
    /// Stream time of this node (-1 before any record).
    pub stream_time: i64,
    /// Final results are sent for windows ending up to here.
    pub emitted_through: i64,
}

/// A window update to send downstream: start, old and new aggregate, timestamp.
type Emitted = (i64, Option<Vec<u8>>, Vec<u8>, i64);

/// A window write a record causes, in the order Kafka Streams forwards them.
struct Write {
    start: i64,
    /// The aggregate to fold the record into (none: the initializer), or a
    /// copy to store as is.
    base: Option<Vec<u8>>,
    /// Timestamp of the base (for an existing window).
    base_ts: Option<i64>,
    /// Store `base` without folding the record in (a copied right window).
    copy: bool,
}

impl WindowStep for SlidingAggregate {
    fn process(
        &mut self,
        input: &Records,
        state: &mut TaskState,
        chain: &mut Chain,
        out: &mut Emitter,
        late: &mut Emitter,
        dropped: &mut Dropped,
    ) -> Result<(), NodeError> {
        let view = input.view();
        let td = self.difference;
        let mut close_at = vec![i64::MIN; view.len()];
        let mut closer = Closer { steps: Vec::new() };
        // Stream time at the last record that checks for closed windows
        // (Kafka Streams skips the check for late and early records).
        let mut emit_time = self.stream_time;
        let mut rounds: Vec<Vec<usize>> = Vec::new();
        let mut seen: HashMap<&[u8], usize> = HashMap::new();
        for (i, r) in view.iter().enumerate() {
            let (Some(key), Some(_)) = (r.key, r.value) else {
                dropped.no_key += 1;
                continue;
            };
            self.stream_time = self.stream_time.max(r.timestamp);
            let close = self.stream_time - self.grace;
            close_at[i] = close;
            if r.timestamp + td < close {
                dropped.late += 1;
                late.emit(
                    input.origins[i],
                    r.key,
                    r.value,
                    None,
                    r.timestamp,
                    r.headers.iter(),
                );
                continue;
            }
            if r.timestamp >= td && self.stream_time > emit_time {
                emit_time = self.stream_time;
                closer.steps.push((emit_time - self.grace - 1, r.headers));
            }
            let n = seen.entry(key).or_insert(0);
            if rounds.len() <= *n {
                rounds.push(Vec::new());
            }
            rounds[*n].push(i);
            *n += 1;
        }
        let mut emitted: Vec<Vec<Emitted>> = (0..view.len()).map(|_| Vec::new()).collect();
        for round in &rounds {
            let mut plans: Vec<(usize, Vec<Write>)> = Vec::with_capacity(round.len());
            for &i in round {
                let r = view.get(i);
                let writes = if r.timestamp < td {
                    self.plan_early(state, r.key.expect("keyed"), r.timestamp)?
                } else {
                    self.plan(state, r.key.expect("keyed"), r.timestamp)?
                };
                plans.push((i, writes));
            }
            // Fold the record into every window it updates (closed ones
            // are skipped and counted).
            let mut chains = Vec::new();
            let mut which: Vec<(usize, usize)> = Vec::new();
            for (p, (i, writes)) in plans.iter().enumerate() {
                let r = view.get(*i);
                for (w, write) in writes.iter().enumerate() {
                    if write.copy {
                        continue;
                    }
                    if write.start + td < close_at[*i] {
                        dropped.late += 1;
                        continue;
                    }
                    chains.push(OpChain {
                        key: r.key.expect("keyed"),
                        start: write.base.clone(),
                        steps: vec![ChainStep::Add(r.value)],
                        timestamp: r.timestamp,
                        origin: input.origins[*i],
                        input: *i,
                    });
                    which.push((p, w));
                }
            }
            let aggs = run_chains(&self.name, self.step, self.fold, &chains, chain)?;
            // A record the step's error policy took out writes nothing,
            // not even the windows it would copy: as if never seen.
            let mut taken_out: Vec<usize> = Vec::new();
            let mut results: HashMap<(usize, usize), Vec<u8>> = HashMap::new();
            for ((p, w), agg) in which.into_iter().zip(aggs) {
                match agg {
                    Some(agg) => {
                        results.insert((p, w), agg);
                    }
                    None => taken_out.push(p),
                }
            }
            for (p, (i, writes)) in plans.iter().enumerate() {
                if taken_out.contains(&p) {
                    continue;
                }
                let r = view.get(*i);
                let key = r.key.expect("keyed");
                for (w, write) in writes.iter().enumerate() {
                    let (agg, ts, old) = if write.copy {
                        let base_ts = write.base_ts.expect("a copy has a timestamp");
                        (
                            write.base.clone().expect("a copy has a value"),
                            base_ts,
                            None,
                        )
                    } else {
                        let Some(agg) = results.remove(&(p, w)) else {
                            continue;
                        };
                        let ts = write.base_ts.map_or(r.timestamp, |b| b.max(r.timestamp));
                        (
                            agg,
                            ts,
                            write.base.clone().filter(|_| write.base_ts.is_some()),
                        )
                    };
                    state.put_window(
                        self.store,
                        key,
                        write.start,
                        write.start + td,
                        Some(keys::encode_value(ts, &agg)),
                        ts,
                    );
                    emitted[*i].push((write.start, old, agg, ts));
                }
            }
        }
        if self.emit == Emit::Update && !state.caching() {
            for (i, writes) in emitted.iter().enumerate() {
                let r = view.get(i);
                for (start, old, agg, ts) in writes {
                    out.emit(
                        input.origins[i],
                        Some(&windowed_key(r.key.expect("keyed"), *start, start + td)),
                        Some(agg),
                        old.as_deref(),
                        *ts,
                        r.headers.iter(),
                    );
                }
            }
        }
        self.close(state, out, emit_time - self.grace - 1, &closer)?;
        if state.caching() {
            if state.over_budget() {
                self.flush(state, out)?;
            }
        } else if state.writes_due() {
            write(&self.name, state, self.store)?;
        }
        Ok(())
    }

    fn advance(
        &mut self,
        ts: i64,
        state: &mut TaskState,
        out: &mut Emitter,
    ) -> Result<(), NodeError> {
        self.stream_time = self.stream_time.max(ts);
        let closer = Closer { steps: Vec::new() };
        self.close(state, out, self.stream_time - self.grace - 1, &closer)?;
        if state.writes_due() {
            write(&self.name, state, self.store)?;
        }
        Ok(())
    }

    fn flush(&mut self, state: &mut TaskState, out: &mut Emitter) -> Result<(), NodeError> {
        if self.emit == Emit::Update && state.caching() {
            flush_cached(&self.name, state, self.store, out, false)?;
            let keep = self.stream_time - self.grace - self.difference - 1;
            delete_windows(&self.name, state, self.store, keep)?;
        }
        write(&self.name, state, self.store)
    }
}

impl SlidingAggregate {
    /// Sends final results through `through` (`emit = final`) and deletes
    /// windows no later window can copy from.
    fn close(
        &mut self,
        state: &mut TaskState,
        out: &mut Emitter,
        through: i64,
        closer: &Closer<'_>,
    ) -> Result<(), NodeError> {
        if self.emit == Emit::Final && through > self.emitted_through {
            emit_windows(
                &self.name,
                state,
                self.store,
                self.emitted_through,
                through,
                out,
                closer,
            )?;
            self.emitted_through = through;
        }
        if self.emit == Emit::Final || !state.caching() {
            let mut keep = self.stream_time - self.grace - self.difference - 1;
            if self.emit == Emit::Final {
                keep = keep.min(self.emitted_through);
            }
            delete_windows(&self.name, state, self.store, keep)?;
        }
        Ok(())
    }

    /// The windows of `key` with start in `[from, to]`, latest start first:
    /// (start, aggregate, its timestamp).
    fn windows(
        &self,
        state: &TaskState,
        key: &[u8],
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Vec<u8>, i64)>, NodeError> {
        let mut found = Vec::new();
        let lo = keys::window_key_from(key, from);
        let hi = keys::window_key_from(key, to.saturating_add(1));
        state
            .scan(self.store, false, &lo, Some(&hi), |k, v| {
                if let (Some((_, s, _)), Some((ts, agg))) =
                    (keys::split_window_key(k), keys::decode_value(v))
                {
                    found.push((s, agg.to_vec(), ts));
                }
                true
            })
            .map_err(|e| state_err(&self.name, e))?;
        found.reverse();
        Ok(found)
    }

    /// The writes of a record at `ts >= difference`.
    fn plan(&self, state: &TaskState, key: &[u8], ts: i64) -> Result<Vec<Write>, NodeError> {
        let td = self.difference;
        let mut writes = Vec::new();
        let mut left_agg: Option<Vec<u8>> = None;
        let mut right_agg: Option<(Vec<u8>, i64)> = None;
        let (mut left_exists, mut right_exists) = (false, false);
        let mut prev_ts: Option<i64> = None;
        let mut starts = Vec::new();
        for (start, agg, agg_ts) in self.windows(state, key, (ts - 2 * td).max(0), ts + 1)? {
            starts.push(start);
            let end = start + td;
            if start == ts + 1 {
                right_exists = true;
            } else if end > ts {
                if right_agg.is_none() {
                    right_agg = Some((agg.clone(), agg_ts));
                }
                writes.push(existing(start, agg, agg_ts));
            } else if end == ts {
                left_exists = true;
                writes.push(existing(start, agg, agg_ts));
                if agg_ts < ts {
                    prev_ts = Some(agg_ts);
                } else {
                    // A record at this time came before: every window exists.
                    return Ok(writes);
                }
            } else {
                left_agg = Some(agg);
                prev_ts = Some(agg_ts);
                break;
            }
        }
        if let Some(p) = prev_ts {
            let s = p + 1;
            if !starts.contains(&s) && s + td >= ts {
                writes.push(fresh(s));
            }
        }
        if !left_exists {
            let base = match (prev_ts, left_agg) {
                (Some(p), Some(agg)) if ts - td <= p => Some(agg),
                _ => None,
            };
            writes.push(Write {
                start: ts - td,
                base,
                base_ts: None,
                copy: false,
            });
        }
        if !right_exists
            && let Some((agg, agg_ts)) = right_agg
            && agg_ts > ts
        {
            writes.push(Write {
                start: ts + 1,
                base: Some(agg),
                base_ts: Some(agg_ts),
                copy: true,
            });
        }
        Ok(writes)
    }

    /// The writes of a record at `0 <= ts < difference`: its left window is
    /// the shared `[0, difference]`.
    fn plan_early(&self, state: &TaskState, key: &[u8], ts: i64) -> Result<Vec<Write>, NodeError> {
        let mut writes = Vec::new();
        let mut combined: Option<(Vec<u8>, i64)> = None;
        let mut right_agg: Option<(Vec<u8>, i64)> = None;
        let mut right_exists = false;
        let mut prev_ts: Option<i64> = None;
        let mut starts = Vec::new();
        let mut found = self.windows(state, key, 0, ts + 1)?;
        found.reverse(); // ascending start
        for (start, agg, agg_ts) in found {
            starts.push(start);
            if start == 0 {
                if agg_ts < ts {
                    prev_ts = Some(agg_ts);
                }
                combined = Some((agg, agg_ts));
            } else if start <= ts {
                right_agg = Some((agg.clone(), agg_ts));
                writes.push(existing(start, agg, agg_ts));
            } else if start == ts + 1 {
                right_exists = true;
            }
        }
        if right_agg.is_none()
            && let Some((agg, agg_ts)) = &combined
            && *agg_ts > ts
        {
            right_agg = Some((agg.clone(), *agg_ts));
        }
        if !right_exists
            && let Some((agg, agg_ts)) = right_agg
            && agg_ts > ts
        {
            writes.push(Write {
                start: ts + 1,
                base: Some(agg),
                base_ts: Some(agg_ts),
                copy: true,
            });
        }
        if let Some(p) = prev_ts
            && !starts.contains(&(p + 1))
        {
            writes.push(fresh(p + 1));
        }
        writes.push(match combined {
            None => fresh(0),
            Some((agg, agg_ts)) => existing(0, agg, agg_ts),
        });
        Ok(writes)
    }
}

fn existing(start: i64, agg: Vec<u8>, ts: i64) -> Write {
    Write {
        start,
        base: Some(agg),
        base_ts: Some(ts),
        copy: false,
    }
}

fn fresh(start: i64) -> Write {
    Write {
        start,
        base: None,
        base_ts: None,
        copy: false,
    }
}
