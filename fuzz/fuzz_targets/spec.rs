//! The pipeline spec: parsing, checking and lowering spec text to a
//! topology never panics; every error points at a line of the text; a spec
//! that checks out can be described (text, JSON, Graphviz).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The spec's path: a directory holding `op.wasm`, so that specs naming
/// `component = "op.wasm"` (the seeds do) pass the file check and reach
/// the planner, which runs only on specs without errors.
fn spec_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join("eddy-fuzz-spec");
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        std::fs::write(dir.join("op.wasm"), b"").expect("a component file");
        dir.join("pipeline.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = spec_path();
    match eddy::spec::validate_text(path, text) {
        Ok(t) => {
            let _ = eddy::topology::describe::describe(&t);
            let json = eddy::topology::describe::to_json(&t);
            serde_json::to_string(&json).expect("the description serializes");
            let _ = eddy::topology::describe::to_dot(&t);
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an error without a problem");
            let lines = text.bytes().filter(|&b| b == b'\n').count() + 1;
            for e in &errors.0 {
                assert!(
                    (1..=lines).contains(&e.line),
                    "line {} of a {lines}-line spec: {e}",
                    e.line
                );
                assert_eq!(e.file, path);
                let _ = e.to_string();
            }
        }
    }
});
