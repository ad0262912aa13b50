//! Embeds `wit/operator.wit` into the export macros, so an operator crate
//! generates its bindings from the one WIT source without depending on its
//! location or on wit-bindgen directly.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let wit_path = manifest.join("../wit/operator.wit");
    println!("cargo:rerun-if-changed={}", wit_path.display());
    let wit = std::fs::read_to_string(&wit_path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", wit_path.display()));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let code = format!(
        r#"/// Generates the component bindings of one operator world (internal).
#[doc(hidden)]
#[macro_export]
macro_rules! __eddy_generate {{
    ($world:tt) => {{
        $crate::__private::wit_bindgen::generate!({{
            inline: {wit:?},
            world: $world,
            runtime_path: "::eddy_sdk::__private::wit_bindgen::rt",
        }});
    }};
}}
"#
    );
    std::fs::write(out.join("generate.rs"), code).expect("writing generated macro");
}
