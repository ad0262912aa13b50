//! Folding a batch of updates into their groups' aggregates: counted by the
//! host, or one call of the aggregator operator for the whole batch.
//!
//! A group is what one aggregate belongs to: a key, or a key's window. The
//! updates of a group are folded in arrival order; the operator sees the
//! group's stored aggregate with its first update and continues from its own
//! result for the next ones (see the `aggregator` interface in the WIT).

use super::NodeError;
use crate::topology::ErrorPolicy;
use crate::wasm::CallError;
use crate::wasm::{Chain, ChainError};
use eddy_batch::{BatchView, BatchWriter};
use foldhash::{HashMap, HashMapExt};
use std::borrow::Cow;

/// Which fold a node applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// Counts records (rows).
    Count,
    /// First value, then the aggregator's adder (and subtractor).
    Reduce,
    /// Initializer, adder (and subtractor).
    Aggregate,
}

/// One update of a group: subtract `sub` (if the group has an aggregate),
/// then add `add`.
#[derive(Debug, Clone)]
pub struct Update<'a> {
    /// Index of the record in the node's input.
    pub input: usize,
    /// The record key (what the operator sees).
    pub key: &'a [u8],
    /// The group (its store key).
    pub group: Cow<'a, [u8]>,
    /// A value to take out (a table's old value).
    pub sub: Option<&'a [u8]>,
    /// A value to fold in. For windows, none still counts as an update
    /// (Kafka Streams passes null values of windowed streams on).
    pub add: Option<&'a [u8]>,
    /// Whether `add` applies even when none.
    pub add_none: bool,
    /// The record's timestamp.
    pub timestamp: i64,
}

/// Where an update's resulting aggregate is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Output entry `j` of the aggregator call.
    Entry(usize),
    /// Computed by the host (a count, or a reduce's first value).
    Host(Vec<u8>),
    /// Nothing applied.
    Unchanged,
}

/// The aggregates each group had before the batch: (timestamp, bytes).
pub type Current<'a> = HashMap<&'a [u8], Option<(i64, Vec<u8>)>>;

/// Folds `updates`; returns each update's outcome and the operator's
/// encoded output (empty when it was not called).
pub fn fold(
    name: &str,
    step: usize,
    how: Fold,
    updates: &[Update<'_>],
    current: &Current<'_>,
    origins: &[u32],
    chain: &mut Chain,
) -> Result<(Vec<Outcome>, Vec<u8>), NodeError> {
    match how {
        Fold::Count => Ok((count(name, updates, current)?, Vec::new())),
        Fold::Reduce | Fold::Aggregate => call(name, step, how, updates, current, origins, chain),
    }
}

/// The aggregate an outcome stands for.
pub fn outcome_value<'o>(o: &'o Outcome, output: Option<&BatchView<'o>>) -> Option<&'o [u8]> {
    match o {
        Outcome::Unchanged => None,
        Outcome::Host(v) => Some(v),
        Outcome::Entry(j) => output.and_then(|v| v.get(*j).value),
    }
}

fn count(
    name: &str,
    updates: &[Update<'_>],
    current: &Current<'_>,
) -> Result<Vec<Outcome>, NodeError> {
    let mut counts: HashMap<&[u8], i64> = HashMap::new();
    let mut results = Vec::with_capacity(updates.len());
    for u in updates {
        let group: &[u8] = &u.group;
        let had = counts.contains_key(group) || current[group].is_some();
        let c = match counts.get(group) {
            Some(c) => *c,
            None => match &current[group] {
                Some((_, v)) => std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| NodeError::State {
                        step: name.to_string(),
                        error: crate::state::StateError::Corrupt {
                            store: name.to_string(),
                            reason: "a stored count is not a decimal number".into(),
                        },
                    })?,
                None => 0,
            },
        };
        let subtract = u.sub.is_some() && had;
        let add = u.add.is_some() || u.add_none;
        let n = c - i64::from(subtract) + i64::from(add);
        counts.insert(group, n);
        results.push(if add || subtract {
            Outcome::Host(n.to_string().into_bytes())
        } else {
            Outcome::Unchanged
        });
    }
    Ok(results)
}

/// Builds one aggregator batch for all updates, calls the operator, and
/// says where each update's result is. Under `skip` or `dead-letter`, the
/// input an update fails on is taken out (all its updates) and the rest
/// folded again; its updates then change nothing.
fn call(
    name: &str,
    step: usize,
    how: Fold,
    updates: &[Update<'_>],
    current: &Current<'_>,
    origins: &[u32],
    chain: &mut Chain,
) -> Result<(Vec<Outcome>, Vec<u8>), NodeError> {
    let mut excluded: Vec<usize> = Vec::new();
    loop {
        let (results, mut batch, entry_update) = entries(how, updates, current, &excluded);
        if entry_update.is_empty() {
            return Ok((results, Vec::new()));
        }
        let input_of = |j: u32| entry_update.get(j as usize).map(|&n| updates[n].input);
        match call_or_take_out(
            name,
            step,
            batch.finish(),
            entry_update.len(),
            chain,
            input_of,
            |i| origins[i],
        ) {
            Ok(out) => return Ok((results, out)),
            Err(Taken::Out(input, error)) => {
                let u = updates
                    .iter()
                    .find(|u| u.input == input)
                    .expect("an update");
                let record = one_record(u.key, u.add.or(u.sub), u.timestamp);
                chain.reject(step, error, Some(origins[input]), record);
                excluded.push(input);
            }
            Err(Taken::No(e)) => return Err(e),
        }
    }
}

/// A call's failure: an input taken out under the step's policy, or an
/// error that stops the task.
enum Taken {
    Out(usize, CallError),
    No(NodeError),
}

/// Calls the aggregator; under `skip` or `dead-letter` a failure the call
/// pins to an entry names that entry's input instead of failing.
fn call_or_take_out(
    name: &str,
    step: usize,
    batch: &[u8],
    n: usize,
    chain: &mut Chain,
    input_of: impl Fn(u32) -> Option<usize>,
    origin_of: impl Fn(usize) -> u32,
) -> Result<Vec<u8>, Taken> {
    let tolerant = *chain.policy(step) != ErrorPolicy::Fail;
    match chain.call(step, batch) {
        Ok(out) => check(name, out, n, |j| input_of(j).map(&origin_of)).map_err(Taken::No),
        Err((error, Some(j))) if tolerant && input_of(j).is_some() => {
            Err(Taken::Out(input_of(j).expect("checked"), error))
        }
        Err((error, at)) => Err(Taken::No(NodeError::Operator(ChainError {
            step: name.to_string(),
            error,
            input_index: at.and_then(|j| input_of(j).map(&origin_of)),
        }))),
    }
}

/// A one-record batch, for a dead letter of what an aggregator failed on.
fn one_record(key: &[u8], value: Option<&[u8]>, timestamp: i64) -> Vec<u8> {
    let mut w = BatchWriter::new();
    w.record(0, Some(key), value, timestamp, std::iter::empty());
    w.finish().to_vec()
}

/// The aggregator entries for `updates` but those of `excluded` inputs:
/// each update's outcome, the batch being written, and the update of each
/// entry.
fn entries(
    how: Fold,
    updates: &[Update<'_>],
    current: &Current<'_>,
    excluded: &[usize],
) -> (Vec<Outcome>, BatchWriter, Vec<usize>) {
    // Group updates, groups in order of first appearance.
    let mut order: Vec<&[u8]> = Vec::new();
    let mut groups: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (n, u) in updates.iter().enumerate() {
        if excluded.contains(&u.input) {
            continue;
        }
        groups
            .entry(&u.group)
            .or_insert_with(|| {
                order.push(&u.group);
                Vec::new()
            })
            .push(n);
    }
    let mut w = BatchWriter::with_capacity(64 << 10, updates.len());
    // For each aggregator entry, the update it belongs to.
    let mut entry_update: Vec<usize> = Vec::with_capacity(updates.len());
    let mut results = vec![Outcome::Unchanged; updates.len()];
    for group in order {
        // The group's aggregate as the host holds it (none once the operator
        // holds a newer one), and whether the group has one at all.
        let mut host_agg: Option<Vec<u8>> = current[group].as_ref().map(|(_, v)| v.clone());
        let mut exists = host_agg.is_some();
        let mut guest_has = false;
        for &n in &groups[group] {
            let u = &updates[n];
            let mut push = |w: &mut BatchWriter,
                            value: Option<&[u8]>,
                            subtract: bool,
                            host: &Option<Vec<u8>>,
                            guest: bool| {
                let tag = u32::from(subtract) | if guest { 2 } else { 0 };
                let aux = if guest { None } else { host.as_deref() };
                let j = entry_update.len() as u32;
                w.record_full(j, Some(u.key), value, aux, tag, u.timestamp, []);
                entry_update.push(n);
                entry_update.len() - 1
            };
            if let Some(old) = u.sub
                && exists
            {
                let j = push(&mut w, Some(old), true, &host_agg, guest_has);
                guest_has = true;
                host_agg = None;
                results[n] = Outcome::Entry(j);
            }
            if u.add.is_none() && !exists && how == Fold::Reduce {
                // Nothing to start a reduce from (see docs/state.md).
                continue;
            }
            if u.add.is_some() || u.add_none {
                if !exists && how == Fold::Reduce {
                    // A reduce starts from its first value.
                    let v = u.add.unwrap_or_default().to_vec();
                    host_agg = Some(v.clone());
                    guest_has = false;
                    results[n] = Outcome::Host(v);
                } else {
                    let j = push(&mut w, u.add, false, &host_agg, guest_has);
                    guest_has = true;
                    host_agg = None;
                    results[n] = Outcome::Entry(j);
                }
                exists = true;
            }
        }
    }
    (results, w, entry_update)
}

/// One step of an [`OpChain`].
#[derive(Debug, Clone, Copy)]
pub enum ChainStep<'a> {
    /// Fold a value in (none: a null value).
    Add(Option<&'a [u8]>),
    /// Merge another aggregate in (session windows).
    Merge(&'a [u8]),
}

/// A sequence of folds starting from a known aggregate, or from the
/// initializer (none); session and sliding windows build one per window
/// they update.
#[derive(Debug, Clone)]
pub struct OpChain<'a> {
    /// The record key.
    pub key: &'a [u8],
    /// The starting aggregate; none for the initializer (a reduce then
    /// starts from its first value).
    pub start: Option<Vec<u8>>,
    /// What to fold, in order.
    pub steps: Vec<ChainStep<'a>>,
    /// The record's timestamp.
    pub timestamp: i64,
    /// The source record, for errors.
    pub origin: u32,
    /// The node input it folds (what an error policy takes out).
    pub input: usize,
}

/// Runs every chain (one operator call for all of them) and returns each
/// chain's final aggregate. Under `skip` or `dead-letter`, the chains of an
/// input the operator fails on are taken out (none for them) and the rest
/// run again.
pub fn run_chains(
    name: &str,
    step: usize,
    how: Fold,
    chains: &[OpChain<'_>],
    chain: &mut Chain,
) -> Result<Vec<Option<Vec<u8>>>, NodeError> {
    if how == Fold::Count {
        return chains
            .iter()
            .map(|c| {
                let mut n: i64 = match &c.start {
                    Some(v) => parse_count(name, v)?,
                    None => 0,
                };
                for s in &c.steps {
                    n += match s {
                        ChainStep::Add(_) => 1,
                        ChainStep::Merge(other) => parse_count(name, other)?,
                    };
                }
                Ok(Some(n.to_string().into_bytes()))
            })
            .collect();
    }
    let mut excluded: Vec<usize> = Vec::new();
    loop {
        let mut w = BatchWriter::with_capacity(64 << 10, chains.len() * 2);
        let mut entry_chain: Vec<usize> = Vec::new();
        // Per chain: the host's result, or the guest entry holding it.
        let mut results: Vec<Result<Option<Vec<u8>>, usize>> = Vec::with_capacity(chains.len());
        for (c_idx, c) in chains.iter().enumerate() {
            if excluded.contains(&c.input) {
                results.push(Ok(None));
                continue;
            }
            let mut host = c.start.clone();
            let mut last_entry = None;
            for s in &c.steps {
                let (value, merge) = match s {
                    ChainStep::Add(v) => (*v, false),
                    ChainStep::Merge(v) => (Some(*v), true),
                };
                if host.is_none() && last_entry.is_none() && how == Fold::Reduce {
                    // A reduce starts from its first value.
                    host = Some(value.unwrap_or_default().to_vec());
                    continue;
                }
                let guest = last_entry.is_some();
                let tag = if guest { 2 } else { 0 } | if merge { 4 } else { 0 };
                let aux = if guest { None } else { host.as_deref() };
                let j = entry_chain.len() as u32;
                w.record_full(j, Some(c.key), value, aux, tag, c.timestamp, []);
                entry_chain.push(c_idx);
                last_entry = Some(j as usize);
            }
            results.push(match last_entry {
                Some(j) => Err(j),
                None => Ok(Some(host.unwrap_or_default())),
            });
        }
        if entry_chain.is_empty() {
            return Ok(results.into_iter().map(|r| r.unwrap_or_default()).collect());
        }
        let input_of = |j: u32| entry_chain.get(j as usize).map(|&c| chains[c].input);
        let origin_of = |input: usize| {
            chains
                .iter()
                .find(|c| c.input == input)
                .map_or(0, |c| c.origin)
        };
        match call_or_take_out(
            name,
            step,
            w.finish(),
            entry_chain.len(),
            chain,
            input_of,
            origin_of,
        ) {
            Ok(out) => {
                let view = BatchView::already_checked(&out).expect("checked");
                return Ok(results
                    .into_iter()
                    .map(|r| match r {
                        Ok(v) => v,
                        Err(j) => Some(view.get(j).value.unwrap_or_default().to_vec()),
                    })
                    .collect());
            }
            Err(Taken::Out(input, error)) => {
                let c = chains.iter().find(|c| c.input == input).expect("a chain");
                let value = c.steps.iter().rev().find_map(|s| match s {
                    ChainStep::Add(v) => Some(*v),
                    ChainStep::Merge(_) => None,
                });
                chain.reject(
                    step,
                    error,
                    Some(c.origin),
                    one_record(c.key, value.flatten(), c.timestamp),
                );
                excluded.push(input);
            }
            Err(Taken::No(e)) => return Err(e),
        }
    }
}

/// Checks an aggregator answered each of `n` updates with one aggregate,
/// in order; `origin` maps an update to the source record it belongs to,
/// for errors.
fn check(
    name: &str,
    out: Vec<u8>,
    n: usize,
    origin: impl Fn(u32) -> Option<u32>,
) -> Result<Vec<u8>, NodeError> {
    let fail = |error: CallError, at: Option<u32>| {
        NodeError::Operator(ChainError {
            step: name.to_string(),
            error,
            input_index: at.and_then(&origin),
        })
    };
    let view = BatchView::new(&out).map_err(|e| fail(CallError::BadBatch(e.0), None))?;
    if view.len() != n {
        return Err(fail(
            CallError::BadBatch(format!(
                "returned {} aggregates for {n} updates; the aggregator interface answers each update with one aggregate",
                view.len(),
            )),
            None,
        ));
    }
    for j in 0..n {
        let e = view.get(j);
        if e.index as usize != j || e.value.is_none() {
            return Err(fail(
                CallError::BadBatch(format!(
                    "aggregate {j} has index {} and {} value; expected index {j} and a value",
                    e.index,
                    if e.value.is_some() { "a" } else { "no" }
                )),
                Some(j as u32),
            ));
        }
    }
    Ok(out)
}

fn parse_count(name: &str, v: &[u8]) -> Result<i64, NodeError> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| NodeError::State {
            step: name.to_string(),
            error: crate::state::StateError::Corrupt {
                store: name.to_string(),
                reason: "a stored count is not a decimal number".into(),
            },
        })
}
