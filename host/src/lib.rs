//! eddy: Kafka Streams-style stream processing whose operators are
//! WebAssembly components.
//!
//! - [`spec`] reads a pipeline spec into a [`topology::Topology`];
//! - [`wasm`] loads operator components and runs them in a sandbox;
//! - [`runtime`] runs a topology: the operator chain, the in-process test
//!   driver, and the Kafka loop ([`kafka`]);
//! - [`ops`] are the host-side steps (grouping, aggregation, tables,
//!   windows) over [`state`] stores, with event time from [`time`];
//! - [`records`] reads and writes records as JSON lines.
#![deny(missing_docs)]

pub mod admin;
pub mod app;
pub mod build;
pub mod kafka;
pub mod metrics;
pub mod ops;
pub mod records;
pub mod reload;
pub mod runtime;
pub mod spec;
pub mod state;
pub mod status;
pub mod time;
pub mod topology;
pub mod units;
pub mod wasm;
