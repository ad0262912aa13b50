//! eddy's end-to-end tests, one binary with a module per capability: the
//! CLI and the examples, bad input, the sandbox, error policies, stateful
//! pipelines and the golden cases (no broker), then pipelines on a real
//! Kafka broker (`scripts/kafka start`). The binary under test is Cargo's
//! build of `eddy` (`CARGO_BIN_EXE_eddy`); helpers, fixture components and
//! the broker client live in the `eddy-e2e` crate beside this directory.

mod bad_input;
mod error_policies;
mod examples;
mod golden;
mod joins;
mod kafka_admin;
mod kafka_edges;
mod kafka_health;
mod kafka_joins;
mod kafka_limits;
mod kafka_pipelines;
mod kafka_queries;
mod kafka_reload;
mod kafka_restart;
mod kafka_sandbox;
mod kafka_scale;
mod kafka_state;
mod sandbox;
mod stateful;

/// The `eddy` binary under test.
pub fn eddy_bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_eddy"))
}
