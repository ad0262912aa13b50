//! Session window aggregation: Kafka Streams' `KStreamSessionWindowAggregate`.
//!
//! - A session `[start, end]` (both inclusive) holds a key's records that are
//!   at most `gap` apart. A record at `ts` finds the sessions of its key with
//!   `end >= ts - gap` and `start <= ts + gap`, merges them (end, then start
//!   order) starting from the initializer, then adds itself.
//! - Stream time T as for time windows; a record is late when the merged
//!   session's end `< T - grace - gap` (counted once, sent to the late topic).
//!   A record only finds sessions ending after `T' - grace - gap`, T' the
//!   stream time before it (what Kafka Streams' session store still holds).
//! - `emit = update`: each session merged away (or extended) goes downstream
//!   as a tombstone with its end as timestamp, then the merged session, its
//!   end as timestamp. A record that starts a session alone sends no tombstone.
//! - `emit = final`: a session goes downstream when its end `< T - grace - gap`,
//!   sessions in end, start, key order.
//! - Records of one key depend on each other (a session is the previous
//!   record's result), so a batch is folded in rounds: round n takes the
//!   n-th record of every key, one operator call per round.

use super::super::aggregate::state_err;
use super::super::fold::{ChainStep, Fold, OpChain, run_chains};
use super::super::{Dropped, Emitter, NodeError, Records};
use super::{Closer, WindowStep, delete_windows, emit_windows, flush_cached, windowed_key, write};
use crate::state::{TaskState, keys};
use crate::topology::Emit;
use crate::wasm::Chain;
use foldhash::{HashMap, HashMapExt};

/// A session window aggregation node.
#[derive(Debug, Clone)]
pub struct SessionAggregate {
    /// Step name.
    pub name: String,
    /// Index of the step in the topology.
    pub step: usize,
    /// The fold.
    pub fold: Fold,
    /// Index of its store in the task's state.
    pub store: usize,
    /// Inactivity gap, ms.
    pub gap: i64,
    /// Grace, ms.
    pub grace: i64,
    /// When results go downstream.
    pub emit: Emit,
    /// Stream time of this node (-1 before any record).
    pub stream_time: i64,
}

/// What one record did, to emit in input order.
struct Done {
    removed: Vec<(i64, i64, Vec<u8>)>,
    merged: (i64, i64),
    agg: Vec<u8>,
}

impl WindowStep for SessionAggregate {
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
        // Stream time after each record, and each key's records in order.
        let mut close_at: Vec<i64> = vec![i64::MIN; view.len()];
        // Sessions a record can see: Kafka Streams' session store keeps
        // `gap + grace` behind the latest session it stored.
        let mut visible_after: Vec<i64> = vec![i64::MIN; view.len()];
        let mut closer = Closer { steps: Vec::new() };
        let mut rounds: Vec<Vec<usize>> = Vec::new();
        let mut seen: HashMap<&[u8], usize> = HashMap::new();
        for (i, r) in view.iter().enumerate() {
            let Some(key) = r.key else {
                dropped.no_key += 1;
                continue;
            };
            visible_after[i] = if self.stream_time < 0 {
                i64::MIN
            } else {
                self.stream_time - self.grace - self.gap
            };
            if r.timestamp > self.stream_time {
                self.stream_time = r.timestamp;
                closer.steps.push((self.close_through(), r.headers));
            }
            close_at[i] = self.stream_time - self.grace - self.gap;
            let n = seen.entry(key).or_insert(0);
            if rounds.len() <= *n {
                rounds.push(Vec::new());
            }
            rounds[*n].push(i);
            *n += 1;
        }
        let mut done: Vec<Option<Done>> = (0..view.len()).map(|_| None).collect();
        for round in &rounds {
            let mut chains = Vec::with_capacity(round.len());
            let mut plans = Vec::with_capacity(round.len());
            for &i in round {
                let r = view.get(i);
                let key = r.key.expect("keyed");
                let ts = r.timestamp;
                let found = self.find(state, key, ts, visible_after[i])?;
                let start = found.iter().map(|f| f.0).chain([ts]).min().expect("one");
                let end = found.iter().map(|f| f.1).chain([ts]).max().expect("one");
                if end < close_at[i] {
                    dropped.late += 1;
                    late.emit(input.origins[i], r.key, r.value, None, ts, r.headers.iter());
                    continue;
                }
                plans.push((i, found, (start, end)));
            }
            for (i, found, _) in &plans {
                let r = view.get(*i);
                let mut steps: Vec<ChainStep<'_>> =
                    found.iter().map(|f| ChainStep::Merge(&f.2)).collect();
                steps.push(ChainStep::Add(r.value));
                chains.push(OpChain {
                    key: r.key.expect("keyed"),
                    start: None,
                    steps,
                    timestamp: r.timestamp,
                    origin: input.origins[*i],
                    input: *i,
                });
            }
            let aggs = run_chains(&self.name, self.step, self.fold, &chains, chain)?;
            for ((i, found, merged), agg) in plans.into_iter().zip(aggs) {
                // Taken out by the step's error policy: as if never seen.
                let Some(agg) = agg else { continue };
                let key = view.get(i).key.expect("keyed");
                let ts = view.get(i).timestamp;
                let removed = if merged == (ts, ts) {
                    Vec::new()
                } else {
                    found
                };
                for (s, e, _) in &removed {
                    state.put_window(self.store, key, *s, *e, None, *e);
                }
                state.put_window(
                    self.store,
                    key,
                    merged.0,
                    merged.1,
                    Some(keys::encode_value(merged.1, &agg)),
                    merged.1,
                );
                done[i] = Some(Done {
                    removed,
                    merged,
                    agg,
                });
            }
        }
        if self.emit == Emit::Update && !state.caching() {
            for (i, d) in done.iter().enumerate() {
                let Some(d) = d else { continue };
                let r = view.get(i);
                let key = r.key.expect("keyed");
                for (s, e, old) in &d.removed {
                    out.emit(
                        input.origins[i],
                        Some(&windowed_key(key, *s, *e)),
                        None,
                        Some(old),
                        *e,
                        r.headers.iter(),
                    );
                }
                let (s, e) = d.merged;
                out.emit(
                    input.origins[i],
                    Some(&windowed_key(key, s, e)),
                    Some(&d.agg),
                    None,
                    e,
                    r.headers.iter(),
                );
            }
        }
        let through = self.close_through();
        match (self.emit, state.caching()) {
            (Emit::Final, _) => {
                emit_windows(
                    &self.name,
                    state,
                    self.store,
                    i64::MIN,
                    through,
                    out,
                    &closer,
                )?;
                delete_windows(&self.name, state, self.store, through)?;
                if state.writes_due() {
                    write(&self.name, state, self.store)?;
                }
            }
            (Emit::Update, false) => {
                delete_windows(&self.name, state, self.store, through)?;
                if state.writes_due() {
                    write(&self.name, state, self.store)?;
                }
            }
            (Emit::Update, true) => {
                if state.over_budget() {
                    self.flush(state, out)?;
                }
            }
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
        let through = self.close_through();
        if self.emit == Emit::Final {
            let closer = Closer { steps: Vec::new() };
            emit_windows(
                &self.name,
                state,
                self.store,
                i64::MIN,
                through,
                out,
                &closer,
            )?;
        } else if state.caching() {
            return Ok(());
        }
        delete_windows(&self.name, state, self.store, through)?;
        if state.writes_due() {
            write(&self.name, state, self.store)?;
        }
        Ok(())
    }

    fn flush(&mut self, state: &mut TaskState, out: &mut Emitter) -> Result<(), NodeError> {
        if self.emit == Emit::Update && state.caching() {
            // A session created and merged away between commits sends nothing.
            flush_cached(&self.name, state, self.store, out, true)?;
            delete_windows(&self.name, state, self.store, self.close_through())?;
        }
        write(&self.name, state, self.store)
    }
}

impl SessionAggregate {
    /// Sessions end at or before this can no longer change.
    fn close_through(&self) -> i64 {
        self.stream_time - self.grace - self.gap - 1
    }

    /// Sessions of `key` within `gap` of `ts` that end after `visible_after`,
    /// in end then start order, with their aggregates.
    fn find(
        &self,
        state: &TaskState,
        key: &[u8],
        ts: i64,
        visible_after: i64,
    ) -> Result<Vec<(i64, i64, Vec<u8>)>, NodeError> {
        let mut found = Vec::new();
        let from = keys::key_prefix(key);
        let to = keys::window_key_from(key, ts.saturating_add(self.gap).saturating_add(1));
        state
            .scan(self.store, false, &from, Some(&to), |k, v| {
                if let (Some((_, s, e)), Some((_, agg))) =
                    (keys::split_window_key(k), keys::decode_value(v))
                    && e >= ts.saturating_sub(self.gap)
                    && e > visible_after
                {
                    found.push((s, e, agg.to_vec()));
                }
                true
            })
            .map_err(|e| state_err(&self.name, e))?;
        found.sort_by_key(|f| (f.1, f.0));
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StoreSpec;
    use crate::topology::StoreKind;
    use eddy_batch::BatchWriter;
    use proptest::prelude::*;

    /// Sessions as the definition gives them: sorted times split where two
    /// neighbours are more than `gap` apart; (start, end, count).
    fn model(times: &[i64], gap: i64) -> Vec<(i64, i64, u64)> {
        let mut t = times.to_vec();
        t.sort_unstable();
        let mut out: Vec<(i64, i64, u64)> = Vec::new();
        for ts in t {
            match out.last_mut() {
                Some(s) if ts - s.1 <= gap => {
                    s.1 = ts;
                    s.2 += 1;
                }
                _ => out.push((ts, ts, 1)),
            }
        }
        out
    }

    fn sessions(state: &TaskState) -> Vec<(i64, i64, u64)> {
        let mut got = Vec::new();
        state
            .scan(0, false, &[], None, |k, v| {
                let (_, s, e) = keys::split_window_key(k).unwrap();
                let (_, n) = keys::decode_value(v).unwrap();
                got.push((s, e, std::str::from_utf8(n).unwrap().parse().unwrap()));
                true
            })
            .unwrap();
        got
    }

    proptest! {
        #[test]
        fn merging_in_any_order_and_batching_gives_the_definitions_sessions(
            times in proptest::collection::vec(0i64..200, 1..40),
            gap in 1i64..20,
            batch in 1usize..8,
        ) {
            let specs = [StoreSpec {
                name: "s".into(),
                windowed: true,
                scanned: true,
                buffer: false,
            }];
            let mut state = TaskState::open(StoreKind::Memory, None, &specs, 0).unwrap();
            let mut chain = Chain::new(&[]).unwrap();
            let mut node = SessionAggregate {
                name: "s".into(),
                step: 0,
                fold: Fold::Count,
                store: 0,
                gap,
                grace: 1_000_000,
                emit: Emit::Update,
                stream_time: -1,
            };
            for chunk in times.chunks(batch) {
                let mut w = BatchWriter::new();
                for (i, ts) in chunk.iter().enumerate() {
                    w.record(i as u32, Some(b"k"), Some(b"v"), *ts, []);
                }
                let input = Records::new(w.into_vec(), (0..chunk.len() as u32).collect());
                let (mut out, mut late, mut dropped) = (Emitter::new(), Emitter::new(), Dropped::default());
                node.process(&input, &mut state, &mut chain, &mut out, &mut late, &mut dropped).unwrap();
                prop_assert_eq!(dropped.late, 0);
            }
            prop_assert_eq!(sessions(&state), model(&times, gap));
        }
    }
}
