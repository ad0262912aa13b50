//! Inputs the fuzz targets (`fuzz/`, docs/fuzzing.md) found mishandled,
//! kept as tests through the public API (the others live beside their code).

use eddy::admin::Bound;
use eddy::metrics::Metrics;
use eddy::reload::Reloader;
use eddy::state::query::Lookup;
use eddy::status::{Answer, AskError, Owner, Readiness, Status};
use eddy::topology::AdminConfig;
use eddy::wasm::OperatorEngine;
use std::sync::Arc;

const SPEC: &str = r#"
application_id = "a"
[[sources]]
topic = "in"
[[steps]]
name = "by-key"
op = "group_by_key"
[[steps]]
name = "counts"
op = "count"
[[sinks]]
topic = "out"
"#;

/// An instance whose keys all live with another member, which published
/// `admin` as its admin API's address.
struct Elsewhere {
    admin: String,
}

impl Status for Elsewhere {
    fn readiness(&self) -> Readiness {
        Readiness {
            ready: true,
            joined: true,
            tasks: Vec::new(),
            restoring: Vec::new(),
            failed: Default::default(),
            problems: Vec::new(),
        }
    }

    fn ask(&self, _store: &str, _lookup: Lookup) -> Result<Answer, AskError> {
        Ok(Answer::Elsewhere {
            partition: 5,
            owner: Some(Owner {
                client_id: format!("a-consumer@{}", self.admin),
                host: "/10.0.0.7".into(),
                admin: Some(self.admin.clone()),
            }),
        })
    }
}

/// Found by fuzzing (fuzz target `admin`): a member of the group sets its
/// own `client.id`, and an admin address in it that no HTTP header can
/// carry (a control character) made a query for one of its keys answer 500
/// ("failed to parse header value") instead of saying where the key lives.
#[test]
fn a_key_owned_by_a_member_with_an_unusable_address_is_no_server_error() {
    let t = eddy::spec::validate_text(std::path::Path::new("p.toml"), SPEC).unwrap();
    let engine = OperatorEngine::new().unwrap();
    let reloader = Reloader::new(engine, &t, &[], Vec::new());
    let cfg = AdminConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: Some("token".into()),
        advertise: None,
        max_component_bytes: 1 << 20,
    };
    let owner = Elsewhere {
        admin: "10.0.0.7:9470\r\nSet-Cookie: eddy=1".into(),
    };
    let server = (Bound::bind(&cfg).unwrap())
        .serve(Arc::new(reloader), Metrics::new(), Arc::new(owner))
        .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let res = (agent.get(format!("http://{}/stores/counts/alice", server.addr())))
        .call()
        .unwrap();
    // As for a member that published no address: unavailable here, no
    // redirect, nothing of the address in the headers.
    assert_eq!(res.status().as_u16(), 503);
    assert!(res.headers().get("set-cookie").is_none());
}
