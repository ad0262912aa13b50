//! The pipeline spec: a TOML file that declares a topology.
//!
//! Parsing is strict: unknown keys are errors, and every error names the
//! file, the line and the key. `docs/spec.md` documents every key.

mod error;
mod model;
mod validate;

pub use error::{SpecError, SpecErrors};
pub use model::{
    DirGrant, FromSpec, GrantsSpec, KafkaValue, LimitsSpec, RuntimeSpec, SinkSpec, SourceSpec,
    SpecFile, StepSpec,
};
#[cfg(test)]
pub(crate) use validate::parse_with;
pub use validate::{load, load_shape, parse as validate_text};
