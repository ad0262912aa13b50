//! The operator chain of a task: one Wasm call per step per batch.
//!
//! A batch goes through every step in order. Between steps the host
//! renumbers the entries (each step sees indices 0..n) and keeps, for every
//! record, the index of the source record it came from, so outputs can be
//! tied to input offsets and errors to the record that caused them.

use super::{CallError, LoadError, LoadedOperator, OperatorInstance};
use crate::metrics::{FailureLabels, Metrics, OperatorLabels, PolicyLabels};
use crate::topology::ErrorPolicy;
use eddy_batch::{BatchView, BatchWriter};
use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

/// Below this many records, a failing batch is searched one record at a
/// time instead of in halves.
const ONE_BY_ONE_BELOW: usize = 8;

/// A chain failure, pinned to a source record when it can be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operator `{step}` {error}")]
pub struct ChainError {
    /// The step that failed.
    pub step: String,
    /// What happened.
    pub error: CallError,
    /// Index of the source record in the input batch, when known.
    pub input_index: Option<u32>,
}

/// A record an operator failed on, taken out of its batch because the
/// step's error policy is `skip` or `dead-letter`.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// Index of the step.
    pub step: usize,
    /// What went wrong.
    pub error: CallError,
    /// Index of the source record it came from (none for records a commit
    /// flush emitted).
    pub origin: Option<u32>,
    /// The record as the operator received it (a one-record batch).
    pub record: Vec<u8>,
}

/// What a batch turned into.
#[derive(Debug)]
pub struct ChainOutput {
    /// The last step's encoded output (or the input when there are no steps).
    pub batch: Vec<u8>,
    /// For each output record, the index of the source record it came from.
    pub origins: Vec<u32>,
}

/// The live instances of a topology's operators, owned by one worker;
/// indexed like the topology's steps (steps without an operator have none).
pub struct Chain {
    ops: Vec<Option<LoadedOperator>>,
    instances: Vec<Option<OperatorInstance>>,
    rejected: Vec<Rejected>,
    metrics: Option<Arc<Metrics>>,
}

impl Chain {
    /// Loads (compiles and checks) the operator of every step that has one.
    pub fn load(
        topology: &crate::topology::Topology,
        engine: &crate::wasm::OperatorEngine,
    ) -> Result<Vec<Option<LoadedOperator>>, LoadError> {
        topology
            .steps
            .iter()
            .map(|s| {
                s.component
                    .as_ref()
                    .map(|_| LoadedOperator::load(engine, s))
                    .transpose()
            })
            .collect()
    }

    /// Instantiates and initialises every operator.
    pub fn new(ops: &[Option<LoadedOperator>]) -> Result<Self, LoadError> {
        let instances = ops
            .iter()
            .map(|op| op.as_ref().map(OperatorInstance::new).transpose())
            .collect::<Result<_, _>>()?;
        Ok(Chain {
            ops: ops.to_vec(),
            instances,
            rejected: Vec::new(),
            metrics: None,
        })
    }

    /// The metrics it counts into, if any.
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    /// Counts calls, their time, failures and records into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Records taken out of batches by error policies since the last call.
    pub fn take_rejected(&mut self) -> Vec<Rejected> {
        std::mem::take(&mut self.rejected)
    }

    /// Takes a record step `k` failed on out under its `skip` or
    /// `dead-letter` policy: counted, and kept for the caller to apply.
    pub fn reject(&mut self, k: usize, error: CallError, origin: Option<u32>, record: Vec<u8>) {
        if let Some(m) = &self.metrics {
            let policy = match self.policy(k) {
                ErrorPolicy::DeadLetter(_) => "dead-letter",
                _ => "skip",
            };
            m.records_rejected
                .get_or_create(&PolicyLabels {
                    operator: self.name(k).to_string(),
                    policy: policy.into(),
                })
                .inc();
        }
        self.rejected.push(Rejected {
            step: k,
            error,
            origin,
            record,
        });
    }

    /// The error policy of step `k`.
    pub fn policy(&self, k: usize) -> &ErrorPolicy {
        &self.op(k).step.on_error
    }

    fn op(&self, k: usize) -> &LoadedOperator {
        self.ops[k].as_ref().expect("the step has an operator")
    }

    fn instance(&mut self, k: usize) -> Result<&mut OperatorInstance, CallError> {
        if self.instances[k].is_none() {
            // The previous instance trapped: start a fresh one.
            let inst = OperatorInstance::new(self.op(k))
                .map_err(|e| CallError::Trap(format!("re-instantiating after a trap: {e}")))?;
            self.instances[k] = Some(inst);
        }
        Ok(self.instances[k].as_mut().expect("just set"))
    }

    /// Runs one encoded batch of `n` records through every step (all of
    /// them processors: a stateless pipeline).
    pub fn run(&mut self, input: &[u8], n: usize) -> Result<ChainOutput, ChainError> {
        let mut current: Option<Vec<u8>> = None;
        let mut origins: Vec<u32> = (0..n as u32).collect();
        for k in 0..self.ops.len() {
            let batch: &[u8] = current.as_deref().unwrap_or(input);
            let branching = !self.op(k).step.branches.is_empty();
            let (out, next) = self.process(k, batch, &origins, branching)?;
            origins = next;
            current = Some(out);
        }
        Ok(ChainOutput {
            batch: current.unwrap_or_else(|| input.to_vec()),
            origins,
        })
    }

    /// Runs processor step `k` over `batch`, whose records came from source
    /// records `origins`; returns its output, numbered 0..n unless
    /// `branching` (then tags are branches), and the origins of its records.
    pub fn process(
        &mut self,
        k: usize,
        batch: &[u8],
        origins: &[u32],
        branching: bool,
    ) -> Result<(Vec<u8>, Vec<u32>), ChainError> {
        let name = self.op(k).name.clone();
        let fail = |error: CallError, idx: Option<u32>, origins: &[u32]| ChainError {
            step: name.to_string(),
            error,
            input_index: idx.and_then(|i| origins.get(i as usize).copied()),
        };
        let tolerant = *self.policy(k) != ErrorPolicy::Fail;
        let mut batch = Cow::Borrowed(batch);
        let mut origins = Cow::Borrowed(origins);
        // Under `skip` or `dead-letter`, a record the operator fails on is
        // taken out and the rest of the batch goes again: the records around
        // it are neither lost nor output twice.
        let limits = &self.op(k).step.limits;
        let (most, largest) = (limits.outputs_per_record, limits.record_bytes);
        let mut out = loop {
            let res = self.call(k, &batch).and_then(|out| {
                match over_limits(&out, origins.len(), most, largest) {
                    Some(over) => Err(over),
                    None => Ok(out),
                }
            });
            match res {
                Ok(out) => break out,
                Err((error, idx)) => {
                    let idx = match (idx, &error) {
                        (Some(i), _) => Some(i),
                        (None, CallError::Failed { .. }) if tolerant => {
                            self.isolate(k, &batch, false)
                        }
                        (None, _) => None,
                    };
                    match idx {
                        Some(i) if tolerant && (i as usize) < origins.len() => {
                            let (rest, record) = split_out(&batch, i as usize);
                            self.reject(k, error, Some(origins[i as usize]), record);
                            batch = Cow::Owned(rest);
                            origins.to_mut().remove(i as usize);
                        }
                        _ => return Err(fail(error, idx, &origins)),
                    }
                }
            }
        };
        let branches = self.op(k).step.branches.len().max(1) as u32;
        let checked = BatchView::new(&out).map_err(|e| e.0).and_then(|view| {
            view.check_output_indices(origins.len()).map_err(|e| e.0)?;
            let mut next = Vec::with_capacity(view.len());
            for j in 0..view.len() {
                let e = view.entry(j);
                if e.tag >= branches || (!branching && e.tag != 0) {
                    return Err(format!(
                        "output {j} goes to branch {} but the step has {branches} output(s)",
                        e.tag
                    ));
                }
                next.push(origins[e.index as usize]);
            }
            Ok((next, view.layout()))
        });
        let (next, layout) = checked.map_err(|m| fail(CallError::BadBatch(m), None, &origins))?;
        if let Some(m) = &self.metrics {
            let operator = OperatorLabels {
                operator: name.to_string(),
            };
            m.operator_records_in
                .get_or_create(&operator)
                .inc_by(origins.len() as u64);
            m.operator_records_out
                .get_or_create(&operator)
                .inc_by(next.len() as u64);
        }
        if !branching {
            // The next step sees its input numbered 0..n.
            for j in 0..next.len() {
                let at = layout.entry_at(j);
                out[at..at + 4].copy_from_slice(&(j as u32).to_le_bytes());
            }
        }
        Ok((out, next))
    }

    /// Calls step `k`'s operator with `batch`. On failure, returns the error
    /// and the index (in `batch`) of the record it is pinned to, if known.
    pub fn call(&mut self, k: usize, batch: &[u8]) -> Result<Vec<u8>, (CallError, Option<u32>)> {
        let started = Instant::now();
        let res = self.instance(k).and_then(|inst| inst.call(batch));
        if let Some(m) = &self.metrics {
            let name = self.op(k).name();
            m.wasm_call(name, started.elapsed());
            if let Err(e) = &res {
                m.operator_failures
                    .get_or_create(&FailureLabels {
                        operator: name.to_string(),
                        kind: e.kind().to_string(),
                    })
                    .inc();
            }
        }
        match res {
            Ok(out) => Ok(out),
            Err(error) => {
                let idx = match &error {
                    CallError::Failed {
                        input_index: Some(i),
                        ..
                    } => Some(*i),
                    e if e.poisons_instance() => {
                        self.instances[k] = None;
                        // A timeout costs the whole time limit per try: try
                        // records alone, so only the offending one times out.
                        let timeout = matches!(e, CallError::Timeout(_));
                        self.isolate(k, batch, timeout)
                    }
                    _ => None,
                };
                Err((error, idx))
            }
        }
    }

    /// The name of step `k`'s operator.
    pub fn name(&self, k: usize) -> &str {
        self.op(k).name()
    }

    /// Replaces step `k`'s operator with a new version and its ready
    /// instance; returns the old instance (for the caller to drop off the
    /// hot path).
    pub fn swap(
        &mut self,
        k: usize,
        op: LoadedOperator,
        instance: OperatorInstance,
    ) -> Option<OperatorInstance> {
        self.ops[k] = Some(op);
        self.instances[k].replace(instance)
    }

    /// The version id of step `k`'s operator.
    pub fn version(&self, k: usize) -> &str {
        self.op(k).version()
    }

    /// Finds the record a failure happens on (only on this error path):
    /// halves of the batch on fresh instances while the failing part is
    /// large, then one record at a time. None when no part fails alone.
    fn isolate(&mut self, k: usize, batch: &[u8], one_by_one: bool) -> Option<u32> {
        let view = BatchView::new(batch).ok()?;
        let (mut lo, mut hi) = (0, view.len());
        while !one_by_one && hi - lo >= ONE_BY_ONE_BELOW {
            let mid = lo + (hi - lo) / 2;
            if self.fails(k, &view, lo..mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        (lo..hi)
            .find(|&i| self.fails(k, &view, i..i + 1))
            .map(|i| i as u32)
    }

    /// Whether step `k` fails on records `range` of `view` alone.
    fn fails(&mut self, k: usize, view: &BatchView<'_>, range: Range<usize>) -> bool {
        let mut part = BatchWriter::new();
        for (j, i) in range.enumerate() {
            let r = view.get(i);
            // Alone, an aggregator update cannot continue a previous one.
            let tag = if j == 0 { r.tag & !2 } else { r.tag };
            part.record_full(
                j as u32,
                r.key,
                r.value,
                r.aux,
                tag,
                r.timestamp,
                r.headers.iter(),
            );
        }
        match self.instance(k).and_then(|inst| inst.call(part.finish())) {
            Ok(_) => false,
            Err(e) => {
                if e.poisons_instance() {
                    self.instances[k] = None;
                }
                true
            }
        }
    }
}

/// The first input record whose outputs break the step's limits (more than
/// `most` records, or one larger than `largest` bytes), and how; none when
/// the batch keeps them (or is malformed: that is told later).
fn over_limits(
    out: &[u8],
    inputs: usize,
    most: usize,
    largest: usize,
) -> Option<(CallError, Option<u32>)> {
    let view = BatchView::new(out).ok()?;
    let len = |b: Option<&[u8]>| b.map_or(0, <[u8]>::len);
    // More outputs than `most` for one input needs more than `most` in all.
    let mut counts = (view.len() > most).then(|| vec![0usize; inputs]);
    for r in view.iter() {
        let size = len(r.key)
            + len(r.value)
            + r.headers
                .iter()
                .map(|(n, v)| n.len() + len(v))
                .sum::<usize>();
        if size > largest {
            let why = format!(
                "emitted a record of {size} bytes for input record {}; limits.record_size is {largest} bytes",
                r.index
            );
            return Some((CallError::OutputLimit(why), Some(r.index)));
        }
        if let Some(counts) = &mut counts {
            let c = counts.get_mut(r.index as usize)?;
            *c += 1;
            if *c > most {
                let why = format!(
                    "emitted more than {most} records for input record {} (limits.outputs_per_record)",
                    r.index
                );
                return Some((CallError::OutputLimit(why), Some(r.index)));
            }
        }
    }
    None
}

/// Splits record `i` out of an input batch: the others (renumbered 0..n-1),
/// and record `i` alone.
fn split_out(batch: &[u8], i: usize) -> (Vec<u8>, Vec<u8>) {
    let view = BatchView::new(batch).expect("checked by the call");
    let mut rest = BatchWriter::with_capacity(batch.len(), view.len());
    let mut alone = BatchWriter::new();
    for j in 0..view.len() {
        let r = view.get(j);
        let (w, index) = if j == i {
            (&mut alone, 0)
        } else {
            (&mut rest, if j < i { j } else { j - 1 } as u32)
        };
        w.record_full(
            index,
            r.key,
            r.value,
            r.aux,
            r.tag,
            r.timestamp,
            r.headers.iter(),
        );
    }
    (rest.into_vec(), alone.into_vec())
}
