//! Hot reload: a new version of an operator is compiled, checked and
//! initialised off the hot path, then handed to every worker, which swaps
//! it in at its next batch boundary. State lives in the host's stores, so it
//! carries over untouched; if anything fails, the old version keeps running.

pub mod watch;

use crate::metrics::{Metrics, OperatorLabels};
use crate::topology::Topology;
use crate::wasm::Chain;
use crate::wasm::{LoadError, LoadedOperator, OperatorEngine, OperatorInstance};
use crossbeam_channel::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A new version of step `step`'s operator, ready to run, for one worker.
pub struct Swap {
    /// Index of the step.
    pub step: usize,
    /// The compiled, checked component.
    pub op: LoadedOperator,
    /// An instance of it, already initialised.
    pub instance: OperatorInstance,
    /// Where the worker reports the swap.
    pub done: Sender<Swapped>,
}

/// What a worker reports after a swap.
pub struct Swapped {
    /// How long the worker spent on the swap, between two batches.
    pub pause: Duration,
    /// The replaced instance, dropped by the reloader (off the hot path).
    pub old: Option<OperatorInstance>,
}

impl Swap {
    /// Applies the swap to a worker's chain and reports it.
    pub fn apply(self, chain: &mut Chain) {
        let started = Instant::now();
        let old = chain.swap(self.step, self.op, self.instance);
        let pause = started.elapsed();
        let _ = self.done.send(Swapped { pause, old });
    }
}

/// The running version of an operator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OperatorVersion {
    /// The step name.
    pub name: String,
    /// The interface it is called through.
    pub interface: String,
    /// The component file named in the spec.
    pub component: String,
    /// Version id: the first 12 hex digits of the component's SHA-256.
    pub version: String,
    /// When this version started running (ms since the Unix epoch).
    pub since_ms: u64,
    /// How many times the operator was reloaded.
    pub reloads: u64,
}

/// A successful reload.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reloaded {
    /// The step name.
    pub name: String,
    /// The new version id.
    pub version: String,
    /// The version it replaced.
    pub previous: String,
    /// The pause of each worker, in microseconds.
    pub pauses_us: Vec<u64>,
}

/// Why a reload was refused (the old version keeps running).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// No step of that name calls an operator.
    #[error("no operator named `{name}`; the operators are: {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: String,
    },
    /// The bytes are not a component, or it does not export what the step
    /// uses, or it cannot be linked.
    #[error("{0}")]
    Load(LoadError),
    /// Its `init` failed with the step's settings.
    #[error("{0}")]
    Init(LoadError),
    /// eddy is shutting down.
    #[error("eddy is shutting down")]
    Closed,
}

impl ReloadError {
    /// Whether the request named something that does not exist.
    pub fn is_unknown(&self) -> bool {
        matches!(self, ReloadError::Unknown { .. })
    }
}

/// Loads new operator versions and hands them to the workers.
pub struct Reloader {
    engine: OperatorEngine,
    t: Topology,
    metrics: Option<Arc<Metrics>>,
    workers: Mutex<Vec<Sender<Swap>>>,
    versions: Mutex<Vec<Option<OperatorVersion>>>,
    /// One reload at a time: versions change in the order they were asked.
    one_at_a_time: Mutex<()>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Reloader {
    /// A reloader for `t`'s operators, currently `ops`, with one swap
    /// channel per worker (see [`Reloader::channels`]).
    pub fn new(
        engine: OperatorEngine,
        t: &Topology,
        ops: &[Option<LoadedOperator>],
        workers: Vec<Sender<Swap>>,
    ) -> Self {
        let versions = t
            .steps
            .iter()
            .zip(ops)
            .map(|(s, op)| {
                op.as_ref().map(|op| OperatorVersion {
                    name: s.name.clone(),
                    interface: s.interface.name().to_string(),
                    component: s
                        .component
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    version: op.version().to_string(),
                    since_ms: now_ms(),
                    reloads: 0,
                })
            })
            .collect();
        Reloader {
            engine,
            t: t.clone(),
            metrics: None,
            workers: Mutex::new(workers),
            versions: Mutex::new(versions),
            one_at_a_time: Mutex::new(()),
        }
    }

    /// Reports running versions and reloads in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        for v in self.versions() {
            metrics.set_version(&v.name, &v.version, None);
        }
        self.metrics = Some(metrics);
        self
    }

    /// The topology whose operators it reloads.
    pub fn topology(&self) -> &Topology {
        &self.t
    }

    /// A swap channel per worker: senders for the reloader, receivers for
    /// the workers.
    pub fn channels(workers: usize) -> (Vec<Sender<Swap>>, Vec<Receiver<Swap>>) {
        (0..workers).map(|_| crossbeam_channel::unbounded()).unzip()
    }

    /// The running version of every operator.
    pub fn versions(&self) -> Vec<OperatorVersion> {
        self.versions
            .lock()
            .expect("not poisoned")
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Makes `bytes` the running version of operator `name` on every
    /// worker; returns once every worker swapped.
    pub fn reload(&self, name: &str, bytes: &[u8]) -> Result<Reloaded, ReloadError> {
        let _one = self.one_at_a_time.lock().expect("not poisoned");
        let k = self
            .t
            .steps
            .iter()
            .position(|s| s.name == name && s.component.is_some())
            .ok_or_else(|| ReloadError::Unknown {
                name: name.to_string(),
                known: self
                    .versions()
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        // Compile, check and initialise here, on the caller's thread.
        let op = LoadedOperator::from_bytes(&self.engine, &self.t.steps[k], bytes)
            .map_err(ReloadError::Load)?;
        let workers = self.workers.lock().expect("not poisoned").clone();
        if workers.is_empty() {
            return Err(ReloadError::Closed);
        }
        let mut instances = Vec::with_capacity(workers.len());
        for _ in &workers {
            instances.push(OperatorInstance::new(&op).map_err(ReloadError::Init)?);
        }
        let (done, reports) = crossbeam_channel::unbounded();
        for (w, instance) in workers.iter().zip(instances) {
            let swap = Swap {
                step: k,
                op: op.clone(),
                instance,
                done: done.clone(),
            };
            w.send(swap).map_err(|_| ReloadError::Closed)?;
        }
        drop(done);
        let mut pauses_us = Vec::with_capacity(workers.len());
        for report in reports.iter().take(workers.len()) {
            pauses_us.push(report.pause.as_micros() as u64);
            drop(report.old);
        }
        if pauses_us.len() < workers.len() {
            return Err(ReloadError::Closed);
        }
        let previous = {
            let mut versions = self.versions.lock().expect("not poisoned");
            let v = versions[k].as_mut().expect("an operator step");
            let previous = std::mem::replace(&mut v.version, op.version().to_string());
            v.since_ms = now_ms();
            v.reloads += 1;
            previous
        };
        if let Some(m) = &self.metrics {
            m.set_version(name, op.version(), Some(&previous));
            m.reloads
                .get_or_create(&OperatorLabels {
                    operator: name.to_string(),
                })
                .inc();
        }
        tracing::info!(
            operator = name,
            version = %op.version(),
            previous = %previous,
            pauses_us = ?pauses_us,
            "reloaded"
        );
        Ok(Reloaded {
            name: name.to_string(),
            version: op.version().to_string(),
            previous,
            pauses_us,
        })
    }

    /// Stops handing out swaps (at shutdown).
    pub fn close(&self) {
        self.workers.lock().expect("not poisoned").clear();
    }
}
