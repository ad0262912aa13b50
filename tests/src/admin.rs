//! Reaching a running eddy's admin API from the tests.

use crate::Eddy;
use std::path::Path;
use std::time::Duration;

/// Starts `eddy run <spec>` with the admin API on a free port; returns the
/// process and the API's address.
pub fn start_with_admin(bin: &Path, spec: &str) -> (Eddy, String) {
    let eddy = Eddy::start(bin, &["run", spec, "--admin", "127.0.0.1:0"]);
    let line = eddy.wait_for_log("admin API listening on http://", Duration::from_secs(60));
    let addr = line.rsplit("http://").next().unwrap().trim().to_string();
    (eddy, addr)
}

/// The token `eddy run` generated for its admin API at `addr` (a spec
/// without `admin.token`).
pub fn generated_token(addr: &str) -> String {
    let port = addr.rsplit(':').next().unwrap().parse().unwrap();
    eddy::admin::token::read_token(port)
        .unwrap_or_else(|| panic!("no generated token for the admin API at {addr}"))
}

/// An HTTP client that returns error statuses as answers.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// GETs `path` from the admin API at `addr`: status and body.
pub fn get_text(addr: &str, path: &str) -> (u16, String) {
    let mut res = agent().get(format!("http://{addr}{path}")).call().unwrap();
    let status = res.status().as_u16();
    (status, res.body_mut().read_to_string().unwrap())
}

/// The value of the metric line starting with `prefix` (name and labels).
pub fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
