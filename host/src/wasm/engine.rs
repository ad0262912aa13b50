//! The one wasmtime engine of a host process and its configuration.

use super::sandbox::HostState;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, OptLevel};

/// How often the epoch advances; per-call time limits are counted in these.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How many compiled components are kept for reuse (the newest).
const COMPILED_KEPT: usize = 8;

/// Components compiled lately, by the SHA-256 of their bytes, and how many
/// compilations there were.
#[derive(Default)]
pub(crate) struct Compiled {
    recent: Mutex<VecDeque<([u8; 32], Component)>>,
    count: AtomicUsize,
}

/// The engine, the linker every operator is linked with, and the ticker
/// that drives per-call time limits.
#[derive(Clone)]
pub struct OperatorEngine {
    pub(crate) engine: Engine,
    pub(crate) linker: Arc<Linker<HostState>>,
    /// Whether calls can be metered with fuel (`limits.fuel`).
    pub(crate) fuel: bool,
    /// Steps that use the same component compile it once.
    pub(crate) compiled: Arc<Compiled>,
}

impl OperatorEngine {
    /// Creates the engine and starts its epoch ticker (without fuel
    /// metering).
    pub fn new() -> anyhow::Result<Self> {
        Self::with_fuel(false)
    }

    /// The engine for a topology: with fuel metering when a step sets
    /// `limits.fuel` (metering costs every operator some speed, so only then).
    pub fn for_topology(t: &crate::topology::Topology) -> anyhow::Result<Self> {
        Self::with_fuel(t.steps.iter().any(|s| s.limits.fuel.is_some()))
    }

    fn with_fuel(fuel: bool) -> anyhow::Result<Self> {
        let mut cfg = Config::new();
        cfg.consume_fuel(fuel);
        cfg.wasm_component_model(true);
        // Time limits: a call traps once the epoch passes its deadline.
        // Cheaper than fuel (a check at loop heads and calls, no counting).
        cfg.epoch_interruption(true);
        cfg.cranelift_opt_level(OptLevel::Speed);
        let engine = Engine::new(&cfg)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        super::bindings::eddy::operator::log::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )?;
        super::bindings::eddy::operator::types::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("eddy-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(e) => e.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(OperatorEngine {
            engine,
            linker: Arc::new(linker),
            fuel,
            compiled: Arc::default(),
        })
    }

    /// The component of `bytes` (whose SHA-256 is `digest`), compiled now
    /// unless it was lately.
    pub(crate) fn compile(&self, bytes: &[u8], digest: [u8; 32]) -> wasmtime::Result<Component> {
        let found = self
            .compiled
            .recent
            .lock()
            .expect("not poisoned")
            .iter()
            .find(|(d, _)| *d == digest)
            .map(|(_, c)| c.clone());
        if let Some(c) = found {
            return Ok(c);
        }
        let c = Component::new(&self.engine, bytes)?;
        self.compiled.count.fetch_add(1, Ordering::Relaxed);
        let mut recent = self.compiled.recent.lock().expect("not poisoned");
        recent.push_back((digest, c.clone()));
        if recent.len() > COMPILED_KEPT {
            recent.pop_front();
        }
        Ok(c)
    }

    /// How many components this engine has compiled.
    pub fn compilations(&self) -> usize {
        self.compiled.count.load(Ordering::Relaxed)
    }

    /// Epoch ticks that cover `timeout` (at least one).
    pub(crate) fn ticks(timeout: Duration) -> u64 {
        (timeout.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64 + 1
    }
}
