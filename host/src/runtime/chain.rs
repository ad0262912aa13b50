//! The operator chain of a task: one Wasm call per step per batch.
//!
//! A batch goes through every step in order. Between steps the host
//! renumbers the entries (each step sees indices 0..n) and keeps, for every
//! record, the index of the source record it came from, so outputs can be
//! tied to input offsets and errors to the record that caused them.

use crate::wasm::{CallError, LoadError, LoadedOperator, OperatorInstance};
use eddy_batch::{BatchView, BatchWriter};

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
        })
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
        let last = self.ops.len().saturating_sub(1);
        for k in 0..self.ops.len() {
            let batch: &[u8] = current.as_deref().unwrap_or(input);
            let (out, next) = self.process(k, batch, &origins, k == last)?;
            origins = next;
            current = Some(out);
        }
        Ok(ChainOutput {
            batch: current.unwrap_or_else(|| input.to_vec()),
            origins,
        })
    }

    /// Runs processor step `k` over `batch`, whose records came from source
    /// records `origins`; returns its output, numbered 0..n unless `last`
    /// (then tags are branches), and the origins of its records.
    pub fn process(
        &mut self,
        k: usize,
        batch: &[u8],
        origins: &[u32],
        last: bool,
    ) -> Result<(Vec<u8>, Vec<u32>), ChainError> {
        let name = self.op(k).name.clone();
        let fail = |error: CallError, idx: Option<u32>| ChainError {
            step: name.to_string(),
            error,
            input_index: idx.and_then(|i| origins.get(i as usize).copied()),
        };
        let mut out = self.call(k, batch).map_err(|(e, i)| fail(e, i))?;
        let branches = self.op(k).step.branches.len().max(1) as u32;
        let checked = BatchView::new(&out).map_err(|e| e.0).and_then(|view| {
            view.check_output_indices(origins.len()).map_err(|e| e.0)?;
            let mut next = Vec::with_capacity(view.len());
            for j in 0..view.len() {
                let e = view.entry(j);
                if e.tag >= branches || (!last && e.tag != 0) {
                    return Err(format!(
                        "output {j} goes to branch {} but the step has {branches} output(s)",
                        e.tag
                    ));
                }
                next.push(origins[e.index as usize]);
            }
            Ok((next, view.layout()))
        });
        let (next, layout) = checked.map_err(|m| fail(CallError::BadBatch(m), None))?;
        if !last {
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
        match self.instance(k).and_then(|inst| inst.call(batch)) {
            Ok(out) => Ok(out),
            Err(error) => {
                let idx = match &error {
                    CallError::Failed {
                        input_index: Some(i),
                        ..
                    } => Some(*i),
                    e if e.poisons_instance() => {
                        self.instances[k] = None;
                        self.replay(k, batch)
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

    /// Finds the record a trap happened on by replaying the batch one record
    /// at a time on fresh instances (only on this error path).
    fn replay(&mut self, k: usize, batch: &[u8]) -> Option<u32> {
        let view = BatchView::new(batch).ok()?;
        let mut one = BatchWriter::new();
        for i in 0..view.len() {
            let r = view.get(i);
            one.clear();
            // Alone, an aggregator update cannot continue a previous one.
            one.record_full(
                0,
                r.key,
                r.value,
                r.aux,
                r.tag & !2,
                r.timestamp,
                r.headers.iter(),
            );
            let res = self.instance(k).ok()?.call(one.finish());
            if let Err(e) = res {
                if e.poisons_instance() {
                    self.instances[k] = None;
                }
                return Some(i as u32);
            }
        }
        None
    }
}
