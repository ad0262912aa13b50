//! `eddy run` put together: the operators, the Kafka runtime that runs
//! them, hot reload (the reloader and the file watcher) and the admin API.
//! Nothing below this module knows of the others: the runtime hands its
//! status to the admin API through [`crate::status::Status`], and takes
//! new operator versions from the reloader's channels.

use crate::admin::Bound;
use crate::kafka::{RunError, Wiring};
use crate::metrics::Metrics;
use crate::reload::Reloader;
use crate::topology::Topology;
use crate::wasm::Chain;
use crate::wasm::OperatorEngine;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Runs the topology against Kafka until `shutdown` is set, with hot
/// reload and, when the spec asks for it, the admin API.
pub fn run(
    t: &Topology,
    engine: &OperatorEngine,
    shutdown: &Arc<AtomicBool>,
) -> Result<(), RunError> {
    let problems = crate::kafka::check(t);
    if !problems.is_empty() {
        return Err(RunError::Config(problems.join("\n")));
    }
    if let Some(warning) = crate::wasm::machine::machine_memory()
        .and_then(|m| crate::wasm::machine::overcommitted(t, m))
    {
        tracing::warn!("{warning}");
    }
    let ops = Chain::load(t, engine)?;
    let metrics = Metrics::new();
    let config = |e: String| RunError::Config(e);
    // Bound first: its address goes into the consumer's client.id, where
    // other instances find it.
    let admin =
        (t.admin.as_ref().map(Bound::bind).transpose()).map_err(|e| config(e.to_string()))?;
    let (swap_senders, swaps) = Reloader::channels(t.runtime.workers);
    let reloader = Arc::new(
        Reloader::new(engine.clone(), t, &ops, swap_senders).with_metrics(metrics.clone()),
    );
    let _watcher = if t.runtime.watch {
        Some(crate::reload::watch::watch(reloader.clone()).map_err(config)?)
    } else {
        None
    };
    let wiring = Wiring {
        ops: &ops,
        metrics: metrics.clone(),
        swaps,
        advertised: admin.as_ref().map(|a| a.advertised().to_string()),
    };
    let mut server = None;
    let started = |status| {
        if let Some(bound) = admin {
            let serving = bound.serve(reloader.clone(), metrics.clone(), status);
            server = Some(serving.map_err(|e| config(e.to_string()))?);
        }
        Ok(())
    };
    let ran = crate::kafka::run(t, wiring, started, shutdown);
    reloader.close();
    drop(server);
    ran
}
