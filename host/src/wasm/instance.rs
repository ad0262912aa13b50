//! One live instance of an operator, owned by one worker.

use super::bindings::eddy::operator::types::{Error as WitError, Failure};
use super::component::LoadedOperator;
use super::engine::OperatorEngine;
use super::error::{CallError, LoadError};
use super::sandbox::HostState;
use super::text::operator_text;
use wasmtime::component::{Func, TypedFunc};
use wasmtime::{Store, Trap};

type CallParams<'a> = (&'a [u8],);
type CallResults = (Result<Vec<u8>, WitError>,);

/// A store with an initialised operator instance in it.
pub struct OperatorInstance {
    store: Store<HostState>,
    call: Func,
    op: LoadedOperator,
}

impl OperatorInstance {
    /// Instantiates the operator and calls its `init` with the step's settings.
    pub fn new(op: &LoadedOperator) -> Result<Self, LoadError> {
        let init_err = |reason: String| LoadError::Init {
            step: op.step.name.clone(),
            reason,
        };
        let data =
            HostState::new(op.name.clone(), &op.step.grants, &op.step.limits).map_err(&init_err)?;
        let mut store = Store::new(op.pre.engine(), data);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(OperatorEngine::ticks(op.step.limits.timeout));
        if let Some(fuel) = op.step.limits.fuel {
            store
                .set_fuel(fuel)
                .map_err(|e| init_err(format!("setting fuel: {e}")))?;
        }
        let instance = op.pre.instantiate(&mut store).map_err(|e| {
            let refused = store.data_mut().limits.take_refused();
            init_err(classify(&e, op, refused).to_string())
        })?;
        let init = instance
            .get_typed_func::<(&[(String, String)],), (Result<(), WitError>,)>(&mut store, &op.init)
            .map_err(|e| init_err(format!("`init` has the wrong type: {e:#}")))?;
        let call = instance
            .get_func(&mut store, op.call)
            .ok_or_else(|| init_err("export vanished".into()))?;
        // Check the call's type once, so each batch can skip the check.
        call.typed::<CallParams<'_>, CallResults>(&store)
            .map_err(|e| {
                init_err(format!(
                    "`{}` has the wrong type: {e:#}",
                    op.step.interface.name()
                ))
            })?;
        let (res,) = init.call(&mut store, (&op.step.settings,)).map_err(|e| {
            let refused = store.data_mut().limits.take_refused();
            init_err(classify(&e, op, refused).to_string())
        })?;
        res.map_err(|e| init_err(describe(e)))?;
        Ok(OperatorInstance {
            store,
            call,
            op: op.clone(),
        })
    }

    /// Calls the operator with one encoded batch and returns its encoded output.
    pub fn call(&mut self, batch: &[u8]) -> Result<Vec<u8>, CallError> {
        self.store
            .set_epoch_deadline(OperatorEngine::ticks(self.op.step.limits.timeout));
        if let Some(fuel) = self.op.step.limits.fuel {
            // Each call gets the whole allowance again.
            let _ = self.store.set_fuel(fuel);
        }
        // SAFETY: the function's type was checked against these parameter
        // and result types in `new`.
        let typed = unsafe { TypedFunc::<CallParams<'_>, CallResults>::new_unchecked(self.call) };
        match typed.call(&mut self.store, (batch,)) {
            Ok((Ok(out),)) => Ok(out),
            Ok((Err(e),)) => Err(match e {
                WitError::Failed(Failure {
                    message,
                    input_index,
                }) => CallError::Failed {
                    message: operator_text(&message),
                    input_index,
                },
                WitError::BadBatch(m) => CallError::BadBatch(operator_text(&m)),
                WitError::InvalidSettings(m) => CallError::Failed {
                    message: format!("invalid settings: {}", operator_text(&m)),
                    input_index: None,
                },
            }),
            Err(e) => Err(
                match (
                    classify(&e, &self.op, self.store.data_mut().limits.take_refused()),
                    self.store.data_mut().panic.take(),
                ) {
                    (CallError::Trap(t), Some(panic)) => CallError::Trap(format!("{t} ({panic})")),
                    (other, _) => other,
                },
            ),
        }
    }
}

fn describe(e: WitError) -> String {
    match e {
        WitError::InvalidSettings(m) => format!("invalid settings: {}", operator_text(&m)),
        WitError::Failed(f) => operator_text(&f.message),
        WitError::BadBatch(m) => format!("bad batch: {}", operator_text(&m)),
    }
}

/// Sorts a runtime error into timeout, out of memory or trap; `refused` is
/// what the instance's budget refused during the call, if anything.
fn classify(e: &wasmtime::Error, op: &LoadedOperator, refused: Option<String>) -> CallError {
    if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
        return CallError::Timeout(op.step.limits.timeout);
    }
    if let Some(Trap::OutOfFuel) = e.downcast_ref::<Trap>() {
        return CallError::OutOfFuel(op.step.limits.fuel.unwrap_or(0));
    }
    if let Some(what) = refused {
        tracing::debug!(operator = %op.name, "out of memory: {what}");
        return CallError::OutOfMemory(op.step.limits.memory_bytes);
    }
    match e.downcast_ref::<Trap>() {
        Some(trap) => CallError::Trap(trap.to_string()),
        None => CallError::Trap(
            format!("{e:#}")
                .lines()
                .next()
                .unwrap_or("unknown error")
                .to_string(),
        ),
    }
}
