//! What an operator instance can reach: nothing, unless the spec grants it.
//!
//! Components built from Rust import WASI (std links it in) even when they
//! never use it, so WASI is linked, backed by a context that grants nothing:
//! no preopened directories, no environment, no network (sockets deny every
//! address, name lookup is off), stdin closed, stdout and stderr discarded,
//! and clocks frozen at zero. Random numbers are allowed: they reach nothing.

use crate::topology::{Grants, Limits};
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// The data of one instance's store.
pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    /// What the instance may allocate, all memories and tables together.
    pub(crate) limits: super::budget::Budget,
    /// Step name, for the operator's log lines.
    pub(crate) step: Arc<str>,
    /// The last panic message the guest logged, to explain its trap.
    pub(crate) panic: Option<String>,
    /// The instance's log rate limit.
    pub(crate) log_limit: super::text::LogLimit,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A clock stopped at the epoch: time is a capability.
struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

impl HostState {
    /// A store's data for `step` with exactly the granted capabilities.
    pub(crate) fn new(step: Arc<str>, grants: &Grants, limits: &Limits) -> Result<Self, String> {
        let mut b = WasiCtxBuilder::new();
        for name in &grants.env {
            if let Ok(v) = std::env::var(name) {
                b.env(name, v);
            }
        }
        for (host, guest, writable) in &grants.dirs {
            let perms = if *writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            b.preopened_dir(host, guest, perms)
                .map_err(|e| format!("granting {}: {e}", host.display()))?;
        }
        if !grants.clock {
            b.wall_clock(FrozenClock);
            b.monotonic_clock(FrozenClock);
        }
        if grants.network {
            b.inherit_network();
            b.allow_ip_name_lookup(true);
        } else {
            b.allow_tcp(false);
            b.allow_udp(false);
        }
        let limits = super::budget::Budget::new(limits.memory_bytes);
        Ok(HostState {
            wasi: b.build(),
            table: ResourceTable::new(),
            limits,
            step,
            panic: None,
            log_limit: super::text::LogLimit::default(),
        })
    }
}

impl crate::wasm::bindings::eddy::operator::log::Host for HostState {
    fn log(&mut self, level: crate::wasm::bindings::eddy::operator::log::Level, message: String) {
        use crate::wasm::bindings::eddy::operator::log::Level;
        if matches!(level, Level::Error) && message.starts_with("operator panicked") {
            // One line, so the task's error stays one log line.
            let line = message.split('\n').map(str::trim).collect::<Vec<_>>();
            self.panic = Some(super::text::operator_text(&line.join(" ")));
        }
        let step = &*self.step;
        let (admitted, suppressed) = self.log_limit.admit(std::time::Instant::now());
        if suppressed > 0 {
            tracing::warn!(
                operator = step,
                "suppressed {suppressed} log line(s): more than {} a second",
                super::text::LOG_LINES_PER_SECOND
            );
        }
        if !admitted {
            return;
        }
        let message = super::text::operator_text(&message);
        match level {
            Level::Trace => tracing::trace!(operator = step, "{message}"),
            Level::Debug => tracing::debug!(operator = step, "{message}"),
            Level::Info => tracing::info!(operator = step, "{message}"),
            Level::Warn => tracing::warn!(operator = step, "{message}"),
            Level::Error => tracing::error!(operator = step, "{message}"),
        }
    }
}

impl crate::wasm::bindings::eddy::operator::types::Host for HostState {}
