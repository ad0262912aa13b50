//! The settings' defaults and bounds: `[runtime]`, `[admin]`, step limits.

use super::tests::{errors, with_steps};
use super::*;

#[test]
fn runtime_and_admin_settings_have_defaults_and_bounds() {
    let base = with_steps("");
    let t = parse_with(Path::new("p.toml"), &base, false).unwrap();
    assert_eq!(t.runtime.stall_after, std::time::Duration::from_secs(60));
    let set =
        format!("{base}[runtime]\nstall_after = \"5s\"\n[admin]\nmax_component_size = \"2MiB\"\n");
    let t = parse_with(Path::new("p.toml"), &set, false).unwrap();
    assert_eq!(t.runtime.stall_after, std::time::Duration::from_secs(5));
    let admin = t.admin.unwrap();
    assert_eq!(admin.max_component_bytes, 2 << 20);
    assert_eq!(admin.token, None, "generated at start");
    let bad =
        format!("{base}[runtime]\nstall_after = \"10ms\"\n[admin]\nmax_component_size = \"12\"\n");
    let errs = errors(&bad);
    assert!(
        errs.iter()
            .any(|e| e.contains("`runtime.stall_after`") && e.contains("1s")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("`admin.max_component_size`")),
        "{errs:#?}"
    );
}

#[test]
fn output_limits_have_defaults_and_bounds() {
    let limits = |l: &str| {
        with_steps(&format!(
            "[[steps]]\nname = \"p\"\ncomponent = \"p.wasm\"\nlimits = {{ {l} }}\n"
        ))
    };
    let t = parse_with(Path::new("p.toml"), &limits(""), false).unwrap();
    assert_eq!(t.steps[0].limits.outputs_per_record, 10_000);
    assert_eq!(t.steps[0].limits.record_bytes, 8 << 20);
    let l = "outputs_per_record = 5, record_size = \"64KiB\"";
    let t = parse_with(Path::new("p.toml"), &limits(l), false).unwrap();
    assert_eq!(t.steps[0].limits.outputs_per_record, 5);
    assert_eq!(t.steps[0].limits.record_bytes, 64 << 10);
    let errs = errors(&limits("outputs_per_record = 0, record_size = \"2GiB\""));
    assert!(
        errs.iter().any(|e| e.contains("limits.outputs_per_record")),
        "{errs:#?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("limits.record_size")),
        "{errs:#?}"
    );
}
