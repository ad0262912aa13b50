//! The Wasm side of the host: one engine, components compiled once,
//! instances per worker, the sandbox and its limits, and the chain of a
//! worker's operator instances with their error policies.

mod budget;
mod chain;
mod component;
mod engine;
mod error;
mod instance;
pub mod machine;
mod sandbox;
pub mod text;

pub use chain::{Chain, ChainError, ChainOutput, Rejected};
pub use component::{LoadedOperator, version_of};
pub use engine::OperatorEngine;
pub use error::{CallError, LoadError};
pub use instance::OperatorInstance;

/// Bindings generated from `wit/operator.wit`; the one place that calls
/// `bindgen!`. Only the types and the `log` import are used: exports are
/// looked up one interface at a time, so a component needs only the ones its
/// steps use.
#[allow(missing_docs, clippy::all)]
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "host",
        path: "../wit",
        additional_derives: [PartialEq, Eq],
    });
}

/// The WIT package every export name is qualified with.
pub const WIT_PACKAGE: &str = "eddy:operator@0.1.0";

/// The fully qualified name of an exported interface, e.g. `eddy:operator/processor@0.1.0`.
pub fn interface_export_name(interface: &str) -> String {
    format!("eddy:operator/{interface}@0.1.0")
}
