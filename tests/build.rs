//! Builds every operator the tests use (the examples and the fixtures) for
//! wasm32-wasip2 and exposes their paths as constants, so a test can never
//! run against a stale or missing component.

use std::path::PathBuf;
use std::process::Command;

const OPERATORS: &[(&str, &str)] = &[
    ("normalize-json", "examples/normalize-json"),
    ("filter-severity", "examples/filter-severity"),
    ("split-words", "examples/split-words"),
    ("route-by-size", "examples/route-by-size"),
    ("region-balance", "examples/region-balance"),
    ("validate-orders", "examples/validate-orders"),
    ("attribute-click", "examples/attribute-click"),
    ("hostile", "tests/fixtures/hostile"),
    ("identity", "tests/fixtures/identity"),
    ("sum", "tests/fixtures/sum"),
    ("stamp", "tests/fixtures/stamp"),
];

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("..");
    // A target dir of its own (beside the main one, so it persists): the
    // outer cargo holds a lock on the main one while this script runs.
    let target = out
        .ancestors()
        .nth(4)
        .map_or_else(|| out.join("wasm"), |t| t.join("wasm-fixtures"));
    for dir in [
        "wit",
        "batch/src",
        "guest-sdk/src",
        "guest-sdk/build.rs",
        ".cargo/config.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target);
    for (name, dir) in OPERATORS {
        println!(
            "cargo:rerun-if-changed={}",
            root.join(dir).join("src").display()
        );
        println!(
            "cargo:rerun-if-changed={}",
            root.join(dir).join("Cargo.toml").display()
        );
        cmd.args(["-p", name]);
    }
    for var in [
        "CARGO_TARGET_DIR",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running cargo for the wasm fixtures");
    assert!(
        status.success(),
        "building the operator components failed; is the wasm32-wasip2 target installed (rustup target add wasm32-wasip2)?"
    );
    let mut consts = String::new();
    for (name, _) in OPERATORS {
        let file = format!("{}.wasm", name.replace('-', "_"));
        let built = target.join("wasm32-wasip2/release").join(&file);
        let dest = out.join(&file);
        std::fs::copy(&built, &dest).unwrap_or_else(|e| panic!("{}: {e}", built.display()));
        consts.push_str(&format!(
            "/// The `{name}` component.\npub const {}: &str = {:?};\n",
            name.replace('-', "_").to_uppercase(),
            dest.display().to_string()
        ));
    }
    std::fs::write(out.join("components.rs"), consts).unwrap();
}
