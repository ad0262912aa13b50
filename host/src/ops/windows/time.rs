//! Tumbling and hopping window aggregation: Kafka Streams'
//! `KStreamWindowAggregate`.
//!
//! - Stream time T is the largest timestamp this node has seen (records
//!   without a key do not count), updated before the lateness check.
//! - A record updates each of its windows `[start, end)` with
//!   `end > T - grace`; for the others it is late (counted once per window),
//!   and when it updates none it goes to the late topic, if there is one.
//! - Records without a key are skipped; a record without a value still
//!   updates its windows (count counts it), as in Kafka Streams.
//! - `emit = update`: every update goes downstream (windows of a record in
//!   start order), through the cache when caching is on.
//! - `emit = final`: a window goes downstream once, when `end + grace <= T`
//!   (Kafka Streams' emit-on-window-close with its emit interval at 0),
//!   windows in end, start, key order, with the headers of the record that
//!   closed it. The result's timestamp is the largest in the window.
//! - Closed windows are deleted from the store (a tombstone in the changelog).

use super::super::aggregate::read_current;
use super::super::fold::{Fold, Update, fold, outcome_value};
use super::super::{Dropped, Emitter, NodeError, Records};
use super::{Closer, WindowStep, close_windows, flush_cached, windowed_key, write};
use crate::state::{TaskState, keys};
use crate::time::windows::time_window_starts;
use crate::topology::Emit;
use crate::wasm::Chain;
use eddy_batch::BatchView;
use std::borrow::Cow;

/// A tumbling or hopping window aggregation node.
#[derive(Debug, Clone)]
pub struct TimeWindowAggregate {
    /// Step name.
    pub name: String,
    /// Index of the step in the topology.
    pub step: usize,
    /// The fold.
    pub fold: Fold,
    /// Index of its store in the task's state.
    pub store: usize,
    /// Window size, ms.
    pub size: i64,
    /// Distance between window starts, ms (= size for tumbling).
    pub advance: i64,
    /// Grace, ms.
    pub grace: i64,
    /// When results go downstream.
    pub emit: Emit,
    /// Stream time of this node (-1 before any record).
    pub stream_time: i64,
}

impl WindowStep for TimeWindowAggregate {
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
        let mut updates = Vec::with_capacity(view.len());
        let mut windows: Vec<(i64, i64)> = Vec::with_capacity(view.len());
        let mut closer = Closer { steps: Vec::new() };
        for (i, r) in view.iter().enumerate() {
            let Some(key) = r.key else {
                dropped.no_key += 1;
                continue;
            };
            let ts = r.timestamp;
            if ts > self.stream_time {
                self.stream_time = ts;
                closer
                    .steps
                    .push((self.stream_time - self.grace, r.headers));
            }
            let close = self.stream_time - self.grace;
            let mut matched = 0;
            let mut updated = 0;
            for start in time_window_starts(ts, self.size, self.advance) {
                matched += 1;
                let end = start + self.size;
                if end > close {
                    updated += 1;
                    windows.push((start, end));
                    updates.push(Update {
                        input: i,
                        key,
                        group: Cow::Owned(keys::window_key(key, start, end)),
                        sub: None,
                        add: r.value,
                        add_none: true,
                        timestamp: ts,
                    });
                } else {
                    dropped.late += 1;
                }
            }
            if matched > 0 && updated == 0 {
                late.emit(input.origins[i], r.key, r.value, None, ts, r.headers.iter());
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
        for ((u, res), (start, end)) in updates.iter().zip(&results).zip(&windows) {
            let Some(agg) = outcome_value(res, output_view.as_ref()) else {
                continue;
            };
            let cur = current.get_mut(&u.group[..]).expect("read above");
            let ts = cur
                .as_ref()
                .map_or(u.timestamp, |(t, _)| u.timestamp.max(*t));
            let old = cur.replace((ts, agg.to_vec()));
            let stored = Some(keys::encode_value(ts, agg));
            if old.is_some() {
                // The window exists, and so does its time index entry.
                state.put(self.store, &u.group, stored, ts);
            } else {
                state.put_window(self.store, u.key, *start, *end, stored, ts);
            }
            if self.emit == Emit::Update && !state.caching() {
                out.emit(
                    input.origins[u.input],
                    Some(&windowed_key(u.key, *start, *end)),
                    Some(agg),
                    old.as_ref().map(|(_, v)| v.as_slice()),
                    ts,
                    view.get(u.input).headers.iter(),
                );
            }
        }
        let close = self.stream_time - self.grace;
        match (self.emit, state.caching()) {
            (Emit::Final, _) => {
                close_windows(&self.name, state, self.store, close, Some((out, &closer)))?;
                if state.writes_due() {
                    write(&self.name, state, self.store)?;
                }
            }
            (Emit::Update, false) => {
                close_windows(&self.name, state, self.store, close, None)?;
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
        let close = self.stream_time - self.grace;
        match self.emit {
            Emit::Final => {
                let closer = Closer { steps: Vec::new() };
                close_windows(&self.name, state, self.store, close, Some((out, &closer)))?;
            }
            Emit::Update if state.caching() => return Ok(()),
            Emit::Update => {
                close_windows(&self.name, state, self.store, close, None)?;
            }
        }
        if state.writes_due() {
            write(&self.name, state, self.store)?;
        }
        Ok(())
    }

    fn flush(&mut self, state: &mut TaskState, out: &mut Emitter) -> Result<(), NodeError> {
        if self.emit == Emit::Update && state.caching() {
            flush_cached(&self.name, state, self.store, out, false)?;
            close_windows(
                &self.name,
                state,
                self.store,
                self.stream_time - self.grace,
                None,
            )?;
        }
        write(&self.name, state, self.store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StoreSpec;
    use crate::topology::StoreKind;
    use eddy_batch::BatchWriter;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn node(size: i64, advance: i64, grace: i64, emit: Emit) -> TimeWindowAggregate {
        TimeWindowAggregate {
            name: "w".into(),
            step: 0,
            fold: Fold::Count,
            store: 0,
            size,
            advance,
            grace,
            emit,
            stream_time: -1,
        }
    }

    fn state() -> TaskState {
        let specs = [StoreSpec {
            name: "w".into(),
            windowed: true,
            scanned: false,
            buffer: false,
        }];
        TaskState::open(StoreKind::Memory, None, &specs, 0).unwrap()
    }

    /// Runs (key, timestamp) records through `node` in batches of `batch`;
    /// returns what it emitted (windowed key text, count) and late records.
    fn run(
        node: &mut TimeWindowAggregate,
        state: &mut TaskState,
        records: &[(&str, i64)],
        batch: usize,
    ) -> (Vec<(String, String)>, u64) {
        let mut chain = Chain::new(&[]).unwrap();
        let (mut emitted, mut late_records) = (Vec::new(), 0);
        for chunk in records.chunks(batch) {
            let mut w = BatchWriter::new();
            for (i, (k, ts)) in chunk.iter().enumerate() {
                w.record(i as u32, Some(k.as_bytes()), Some(b"v"), *ts, []);
            }
            let input = Records::new(w.into_vec(), (0..chunk.len() as u32).collect());
            let (mut out, mut late, mut dropped) =
                (Emitter::new(), Emitter::new(), Dropped::default());
            node.process(&input, state, &mut chain, &mut out, &mut late, &mut dropped)
                .unwrap();
            late_records += dropped.late;
            for r in out.finish().view().iter() {
                emitted.push((
                    String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                    String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                ));
            }
        }
        (emitted, late_records)
    }

    fn window(key: &str, start: i64, size: i64) -> String {
        String::from_utf8(windowed_key(key.as_bytes(), start, start + size)).unwrap()
    }

    proptest! {
        #[test]
        fn every_update_counts_the_records_of_each_window_so_far(
            records in proptest::collection::vec((0usize..3, 0i64..100), 1..40),
            size in 1i64..30,
            advance_part in 1i64..30,
            batch in 1usize..8,
        ) {
            let advance = advance_part.min(size);
            let keys = ["a", "b", "c"];
            let records: Vec<(&str, i64)> = records.iter().map(|(k, t)| (keys[*k], *t)).collect();
            // A grace past every record: nothing is late, every update goes out.
            let mut n = node(size, advance, 1_000_000, Emit::Update);
            let mut st = state();
            let (got, late) = run(&mut n, &mut st, &records, batch);
            prop_assert_eq!(late, 0);
            let mut model: BTreeMap<String, u64> = BTreeMap::new();
            let mut want = Vec::new();
            for (k, ts) in &records {
                for start in time_window_starts(*ts, size, advance) {
                    let c = model.entry(window(k, start, size)).or_default();
                    *c += 1;
                    want.push((window(k, start, size), c.to_string()));
                }
            }
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn emit_final_sends_each_window_once_when_it_closes_and_drops_late_records() {
        let mut n = node(10, 10, 5, Emit::Final);
        let mut st = state();
        // Window [0,10) closes at stream time 15 (end + grace).
        let (got, late) = run(&mut n, &mut st, &[("a", 1), ("a", 9), ("a", 12)], 8);
        assert!(got.is_empty(), "nothing closed yet: {got:?}");
        assert_eq!(late, 0);
        let (got, _) = run(&mut n, &mut st, &[("a", 14), ("a", 3), ("a", 15)], 8);
        assert_eq!(got, [(window("a", 0, 10), "3".to_string())]);
        // [0,10) is closed: a record for it is late and changes nothing.
        let (got, late) = run(&mut n, &mut st, &[("a", 2), ("a", 26)], 8);
        assert_eq!(late, 1);
        assert_eq!(got, [(window("a", 10, 10), "3".to_string())]);
    }
}
