//! Errors of loading components and of calling operators.

use std::path::PathBuf;

/// Why a component could not be loaded for a step.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("operator `{step}`: cannot read {}: {source}", path.display())]
    Read {
        /// Step name.
        step: String,
        /// Component path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid component.
    #[error("operator `{step}`: {} is not a WebAssembly component: {reason}", path.display())]
    NotAComponent {
        /// Step name.
        step: String,
        /// Component path.
        path: PathBuf,
        /// What is wrong, with a hint.
        reason: String,
    },
    /// The component does not export what the step needs.
    #[error("operator `{step}`: {} does not export `{missing}` (the step uses interface `{interface}`); it exports: {exports}. Export it with the SDK's `export_{interface}!` macro, or change `interface` in the spec", path.display())]
    MissingExport {
        /// Step name.
        step: String,
        /// Component path.
        path: PathBuf,
        /// The interface the step uses.
        interface: String,
        /// The missing export.
        missing: String,
        /// What it does export.
        exports: String,
    },
    /// The component imports something eddy does not provide.
    #[error("operator `{step}`: {} cannot be linked: {reason}", path.display())]
    Link {
        /// Step name.
        step: String,
        /// Component path.
        path: PathBuf,
        /// The linker's message.
        reason: String,
    },
    /// The operator's `init` failed or trapped.
    #[error("operator `{step}`: init failed: {reason}")]
    Init {
        /// Step name.
        step: String,
        /// What the operator or the runtime said.
        reason: String,
    },
}

/// Why an operator call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The call ran past the step's time limit.
    #[error("timed out after {0:?} (limits.timeout)")]
    Timeout(std::time::Duration),
    /// The call used up the step's fuel.
    #[error("ran out of fuel after {0} units (limits.fuel)")]
    OutOfFuel(u64),
    /// The instance tried to grow memory past the step's memory limit.
    #[error("ran out of memory: the limit is {0} bytes (limits.memory)")]
    OutOfMemory(usize),
    /// The guest trapped (a panic, an unreachable, a bad memory access).
    #[error("trapped: {0}")]
    Trap(String),
    /// The operator returned an error.
    #[error("failed: {message}")]
    Failed {
        /// The operator's message.
        message: String,
        /// The input record it names, if any.
        input_index: Option<u32>,
    },
    /// The operator returned a batch that breaks the encoding.
    #[error("returned a bad batch: {0}")]
    BadBatch(String),
    /// The operator emitted more, or larger records, than its limits allow.
    #[error("{0}")]
    OutputLimit(String),
}

impl CallError {
    /// A short name of the kind of failure: `timeout`, `out-of-fuel`,
    /// `out-of-memory`, `trap`, `failed`, `bad-batch` or `output-limit`.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Timeout(_) => "timeout",
            CallError::OutOfFuel(_) => "out-of-fuel",
            CallError::OutOfMemory(_) => "out-of-memory",
            CallError::Trap(_) => "trap",
            CallError::Failed { .. } => "failed",
            CallError::BadBatch(_) => "bad-batch",
            CallError::OutputLimit(_) => "output-limit",
        }
    }

    /// Whether the instance is unusable afterwards and must be replaced.
    pub fn poisons_instance(&self) -> bool {
        matches!(
            self,
            CallError::Timeout(_)
                | CallError::OutOfFuel(_)
                | CallError::OutOfMemory(_)
                | CallError::Trap(_)
        )
    }
}
