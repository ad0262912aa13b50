//! A component compiled once and checked against the step that uses it.

use super::engine::OperatorEngine;
use super::error::LoadError;
use super::sandbox::HostState;
use crate::topology::Step;
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre};

/// An operator ready to instantiate: compiled, type-checked, linked.
#[derive(Clone)]
pub struct LoadedOperator {
    pub(crate) step: Arc<Step>,
    pub(crate) name: Arc<str>,
    pub(crate) pre: InstancePre<HostState>,
    pub(crate) init: ComponentExportIndex,
    pub(crate) call: ComponentExportIndex,
    pub(crate) version: Arc<str>,
}

/// A component's version id: the first 12 hex digits of its SHA-256.
pub fn version_of(bytes: &[u8]) -> String {
    version_of_digest(&digest(bytes))
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

fn version_of_digest(digest: &[u8; 32]) -> String {
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

impl LoadedOperator {
    /// Compiles the step's component and checks it exports `lifecycle` and
    /// the step's interface.
    pub fn load(engine: &OperatorEngine, step: &Step) -> Result<Self, LoadError> {
        let no_component = PathBuf::new();
        let path = step.component.as_ref().unwrap_or(&no_component);
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            step: step.name.clone(),
            path: path.clone(),
            source,
        })?;
        Self::from_bytes(engine, step, &bytes)
    }

    /// Compiles component `bytes` for the step (a new version of its
    /// operator, or the file's contents) and checks its exports.
    pub fn from_bytes(
        engine: &OperatorEngine,
        step: &Step,
        bytes: &[u8],
    ) -> Result<Self, LoadError> {
        let no_component = PathBuf::new();
        let path = step.component.as_ref().unwrap_or(&no_component);
        if step.limits.fuel.is_some() && !engine.fuel {
            return Err(LoadError::Init {
                step: step.name.clone(),
                reason:
                    "limits.fuel needs an engine with fuel metering (OperatorEngine::for_topology)"
                        .into(),
            });
        }
        let not_component = |reason: String| LoadError::NotAComponent {
            step: step.name.clone(),
            path: path.clone(),
            reason,
        };
        if bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0] {
            return Err(not_component("it is a core Wasm module; build operators for the wasm32-wasip2 target (`eddy build <operator-dir>`), which produces a component".into()));
        }
        if bytes.len() < 4 || bytes[0..4] != *b"\0asm" {
            return Err(not_component(
                "it does not start with the Wasm magic bytes; is this the right file?".into(),
            ));
        }
        let digest = digest(bytes);
        let component = engine
            .compile(bytes, digest)
            .map_err(|e| not_component(format!("{e:#}")))?;
        let exports = exported_interfaces(&engine.engine, &component);
        let lookup = |iface: &str, func: &str| -> Result<ComponentExportIndex, LoadError> {
            let name = super::interface_export_name(iface);
            let missing = || LoadError::MissingExport {
                step: step.name.clone(),
                path: path.clone(),
                interface: step.interface.name().to_string(),
                missing: format!("{name}#{func}"),
                exports: if exports.is_empty() {
                    "nothing".into()
                } else {
                    exports.join(", ")
                },
            };
            let (_, inst) = component.get_export(None, &name).ok_or_else(missing)?;
            let (_, f) = component
                .get_export(Some(&inst), func)
                .ok_or_else(missing)?;
            Ok(f)
        };
        let init = lookup("lifecycle", "init")?;
        let call = lookup(step.interface.name(), call_name(step.interface.name()))?;
        let pre = engine
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link {
                step: step.name.clone(),
                path: path.clone(),
                reason: format!("{e:#}"),
            })?;
        Ok(LoadedOperator {
            step: Arc::new(step.clone()),
            name: step.name.as_str().into(),
            pre,
            init,
            call,
            version: version_of_digest(&digest).into(),
        })
    }

    /// The step name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version id of the component (see [`version_of`]).
    pub fn version(&self) -> &str {
        &self.version
    }
}

fn call_name(interface: &str) -> &'static str {
    match interface {
        "processor" => "process",
        "aggregator" => "aggregate",
        _ => "join",
    }
}

/// Names of the instances (interfaces) a component exports, for error messages.
fn exported_interfaces(engine: &wasmtime::Engine, c: &Component) -> Vec<String> {
    c.component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .filter(|n| !n.ends_with("/types@0.1.0"))
        .collect()
}
