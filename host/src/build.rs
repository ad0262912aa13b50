//! `eddy build`: compiles an operator crate to a component.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target operators are compiled for; it produces components directly.
pub const TARGET: &str = "wasm32-wasip2";

/// Why an operator could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// No Cargo.toml in the directory.
    #[error("{} has no Cargo.toml; give the directory of an operator crate", .0.display())]
    NotACrate(PathBuf),
    /// cargo could not be started.
    #[error("cannot run cargo: {0}; is a Rust toolchain installed?")]
    Cargo(std::io::Error),
    /// The compile failed (cargo printed why).
    #[error("cargo build failed for {}; if the target is missing, run `rustup target add {TARGET}`", .0.display())]
    Failed(PathBuf),
    /// The build produced no component.
    #[error("the build of {} produced no .wasm; is the crate a `cdylib`? (add `crate-type = [\"cdylib\"]` under [lib])", .0.display())]
    NoArtifact(PathBuf),
    /// Copying the component failed.
    #[error("copying {} to {}: {source}", from.display(), to.display())]
    Copy {
        /// Built file.
        from: PathBuf,
        /// Destination.
        to: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Builds the crate in `dir` in release mode for [`TARGET`] and copies the
/// component next to its Cargo.toml as `<crate_name>.wasm`; returns that path.
pub fn build_operator(dir: &Path) -> Result<PathBuf, BuildError> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(BuildError::NotACrate(dir.to_path_buf()));
    }
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // Wasm SIMD unless the caller chose flags (see docs/performance.md).
    if std::env::var_os("CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS").is_none()
        && std::env::var_os("RUSTFLAGS").is_none()
    {
        cargo.env(
            "CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS",
            "-C target-feature=+simd128",
        );
    }
    let output = cargo
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(BuildError::Cargo)?;
    if !output.status.success() {
        return Err(BuildError::Failed(dir.to_path_buf()));
    }
    // The artifact's path comes from cargo's own messages, so a custom
    // CARGO_TARGET_DIR or workspace layout needs no guessing.
    let manifest = manifest.canonicalize().unwrap_or(manifest);
    let mut built = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact"
            || msg["manifest_path"].as_str().map(Path::new) != Some(&manifest)
        {
            continue;
        }
        if let Some(files) = msg["filenames"].as_array() {
            built = files
                .iter()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
                .map(PathBuf::from)
                .or(built);
        }
    }
    let from = built.ok_or_else(|| BuildError::NoArtifact(dir.to_path_buf()))?;
    let to = dir.join(from.file_name().expect("a file"));
    std::fs::copy(&from, &to).map_err(|source| BuildError::Copy {
        from: from.clone(),
        to: to.clone(),
        source,
    })?;
    Ok(to)
}
