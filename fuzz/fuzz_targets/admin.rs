//! The admin HTTP API's request handling, in process: the router `eddy
//! run` serves (`eddy::admin::router`) over a topology with an operator
//! step and a stand-in instance whose store answers depend on the key asked
//! for, driven with requests built from the input (method, path, query,
//! headers, body). It never panics, never answers 500, and a reload only
//! goes through with no `Origin`, a component's content type, the right
//! bearer token and a known `Host`.
#![no_main]

use arbitrary::Arbitrary;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Request as HttpRequest};
use eddy::admin::{Parts, router};
use eddy::metrics::Metrics;
use eddy::reload::Reloader;
use eddy::state::query::{Lookup, Rows, Stored, WindowRow};
use eddy::status::{Answer, AskError, Owner, Readiness, Status};
use eddy::wasm::OperatorEngine;
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tower::ServiceExt;

const TOKEN: &str = "fuzz-token";
const ADVERTISED: &str = "eddy-0.svc:9470";
/// Small, so that the fuzzer reaches the limit.
const MAX_BODY: usize = 1024;
const SPEC: &str = r#"
application_id = "fuzz"
[[sources]]
topic = "in"
[[steps]]
name = "upper"
component = "op.wasm"
[[steps]]
name = "by-key"
op = "group_by_key"
[[steps]]
name = "counts"
op = "count"
[[sinks]]
topic = "out"
"#;

/// An instance whose one store, `counts`, answers by the key's first byte.
struct Instance;

impl Status for Instance {
    fn readiness(&self) -> Readiness {
        Readiness {
            ready: false,
            joined: true,
            tasks: vec!["0_0".into(), "0_1".into()],
            restoring: vec!["0_0".into()],
            failed: [("0_1".to_string(), "cannot open".to_string())].into(),
            problems: vec!["no broker reachable".into()],
        }
    }

    fn ask(&self, store: &str, lookup: Lookup) -> Result<Answer, AskError> {
        if store != "counts" {
            return Err(AskError::UnknownStore {
                name: store.into(),
                known: "counts".into(),
            });
        }
        let rest = lookup.key.get(1..).unwrap_or_default();
        let text = String::from_utf8_lossy(rest).into_owned();
        let (from, to) = lookup.range.unwrap_or((0, 0));
        let stored = Stored {
            timestamp: from,
            value: rest.to_vec(),
        };
        let owner = |admin| Owner {
            client_id: text.clone(),
            host: text.clone(),
            admin,
        };
        Ok(match lookup.key.first().copied().unwrap_or(0) % 9 {
            0 => Answer::Here {
                partition: 0,
                rows: Rows::Value(Some(stored)),
            },
            1 => Answer::Here {
                partition: 1,
                rows: Rows::Value(None),
            },
            2 => Answer::Here {
                partition: 2,
                rows: Rows::Windows(vec![WindowRow {
                    start: from,
                    end: to,
                    stored,
                }]),
            },
            3 => Answer::Restoring { partition: 3 },
            4 => Answer::Elsewhere {
                partition: 4,
                owner: None,
            },
            5 => Answer::Elsewhere {
                partition: 5,
                owner: Some(owner(Some(text.clone()))),
            },
            6 => Answer::Elsewhere {
                partition: 6,
                owner: Some(owner(None)),
            },
            7 => return Err(AskError::Busy(Duration::from_millis(1))),
            _ => return Err(AskError::Broken(text)),
        })
    }
}

/// The API's routes and the runtime that runs them, made on first use.
fn api() -> &'static (Router, tokio::runtime::Runtime) {
    static API: OnceLock<(Router, tokio::runtime::Runtime)> = OnceLock::new();
    API.get_or_init(|| {
        let dir = std::env::temp_dir().join("eddy-fuzz-admin");
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        std::fs::write(dir.join("op.wasm"), b"").expect("a component file");
        let t = eddy::spec::validate_text(&dir.join("pipeline.toml"), SPEC).expect("the spec");
        let engine = OperatorEngine::new().expect("a Wasm engine");
        let metrics = Metrics::new();
        let reloader = Reloader::new(engine, &t, &[], Vec::new()).with_metrics(metrics.clone());
        let routes = router(Parts {
            advertised: ADVERTISED.into(),
            reloader: Arc::new(reloader),
            metrics,
            instance: Arc::new(Instance),
            token: TOKEN.into(),
            max_body: MAX_BODY,
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        (routes, rt)
    })
}

#[derive(Arbitrary, Debug)]
struct Request {
    method: Method,
    target: Target,
    query: Vec<(Word, String)>,
    headers: Vec<(Name, Value)>,
    body: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
enum Method {
    Get,
    Post,
    Head,
    Put,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Target {
    Healthz,
    Readyz,
    Metrics,
    Topology,
    Operators,
    Operator(Word),
    Store(Word, String),
    Segments(Vec<String>),
    Raw(String),
}

/// Names the API knows, and anything else.
#[derive(Arbitrary, Debug)]
enum Word {
    Upper,
    Counts,
    Encoding,
    From,
    To,
    Format,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Name {
    Host,
    Origin,
    ContentType,
    Authorization,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Value {
    Wasm,
    OctetStream,
    Text,
    Bearer,
    WrongBearer,
    Localhost,
    Advertised,
    Foreign,
    Other(String),
}

impl Word {
    fn text(&self) -> &str {
        match self {
            Word::Upper => "upper",
            Word::Counts => "counts",
            Word::Encoding => "encoding",
            Word::From => "from",
            Word::To => "to",
            Word::Format => "format",
            Word::Other(s) => s,
        }
    }
}

/// Percent-encodes all but unreserved bytes.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A header name or method: token characters only, never empty; never
/// one that frames the message (HTTP/1 framing is the server's, not the
/// router's: a `content-length` at odds with the body cannot reach it).
fn token(s: &str, empty: &str) -> String {
    let t: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(*c))
        .collect();
    match t.to_ascii_lowercase().as_str() {
        "" => empty.to_string(),
        "content-length" | "transfer-encoding" | "connection" => format!("x-{t}"),
        _ => t,
    }
}

impl Request {
    /// The headers as sent: those with a valid name and value.
    fn header_lines(&self) -> Vec<(HeaderName, HeaderValue)> {
        (self.headers.iter())
            .filter_map(|(n, v)| {
                let name = match n {
                    Name::Host => "host".to_string(),
                    Name::Origin => "origin".to_string(),
                    Name::ContentType => "content-type".to_string(),
                    Name::Authorization => "authorization".to_string(),
                    Name::Other(s) => token(s, "x-fuzz"),
                };
                let value = match v {
                    Value::Wasm => "application/wasm".to_string(),
                    Value::OctetStream => "Application/Octet-Stream; q=1".to_string(),
                    Value::Text => "text/plain".to_string(),
                    Value::Bearer => format!("Bearer {TOKEN}"),
                    Value::WrongBearer => format!("Bearer {TOKEN}x"),
                    Value::Localhost => "localhost:9470".to_string(),
                    Value::Advertised => ADVERTISED.to_string(),
                    Value::Foreign => "evil.example:9470".to_string(),
                    Value::Other(s) => s.clone(),
                };
                let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
                Some((name, HeaderValue::from_bytes(value.as_bytes()).ok()?))
            })
            .collect()
    }

    fn method(&self) -> String {
        match &self.method {
            Method::Get => "GET".to_string(),
            Method::Post => "POST".to_string(),
            Method::Head => "HEAD".to_string(),
            Method::Put => "PUT".to_string(),
            Method::Other(s) => token(s, "GET"),
        }
    }

    /// The request, if its method and target make a valid one.
    fn http(&self) -> Option<HttpRequest<Body>> {
        let mut target = match &self.target {
            Target::Healthz => "/healthz".to_string(),
            Target::Readyz => "/readyz".to_string(),
            Target::Metrics => "/metrics".to_string(),
            Target::Topology => "/topology".to_string(),
            Target::Operators => "/operators".to_string(),
            Target::Operator(w) => format!("/operators/{}", encode(w.text())),
            Target::Store(s, k) => format!("/stores/{}/{}", encode(s.text()), encode(k)),
            Target::Segments(s) => s.iter().map(|s| format!("/{}", encode(s))).collect(),
            Target::Raw(s) => format!("/{s}"),
        };
        let query: Vec<String> = (self.query.iter())
            .map(|(k, v)| format!("{}={}", encode(k.text()), encode(v)))
            .collect();
        if !query.is_empty() {
            target = format!("{target}?{}", query.join("&"));
        }
        let mut req = HttpRequest::builder()
            .method(self.method().as_str())
            .uri(target)
            .body(Body::from(self.body.clone()))
            .ok()?;
        for (n, v) in self.header_lines() {
            req.headers_mut().append(n, v);
        }
        let peer: SocketAddr = "127.0.0.1:50000".parse().expect("an address");
        req.extensions_mut().insert(ConnectInfo(peer));
        Some(req)
    }

    /// Whether the API may let this request reload an operator.
    fn may_reload(&self) -> Vec<&'static str> {
        let headers = self.header_lines();
        // As the server reads a header: the first of its name.
        let first = |name: &str| {
            (headers.iter())
                .find(|(n, _)| n.as_str() == name)
                .map(|(_, v)| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let visible = |v: &String| v.bytes().all(|b| b == b'\t' || (32..127).contains(&b));
        let mut why_not = Vec::new();
        if first("origin").is_some() {
            why_not.push("an Origin header");
        }
        let kind = first("content-type").filter(visible).map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        if !matches!(
            kind.as_deref(),
            Some("application/wasm" | "application/octet-stream")
        ) {
            why_not.push("not a component's content type");
        }
        let token = first("authorization").filter(visible);
        if token.as_deref().and_then(|v| v.strip_prefix("Bearer ")) != Some(TOKEN) {
            why_not.push("not the bearer token");
        }
        if first("host").is_some_and(|h| !host_allowed(&h)) {
            why_not.push("a foreign Host");
        }
        why_not
    }
}

/// The hosts the API answers to (an IP address, `localhost`, the
/// advertised name), as documented.
fn host_allowed(host: &str) -> bool {
    let name = |h: &str| -> String {
        let h = h.trim();
        let bare = match h.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => h.rsplit_once(':').map_or(h, |(n, _)| n),
        };
        bare.to_ascii_lowercase()
    };
    let host = name(host);
    host.parse::<std::net::IpAddr>().is_ok() || host == "localhost" || host == name(ADVERTISED)
}

fuzz_target!(|r: Request| {
    let Some(req) = r.http() else {
        return;
    };
    let shown = format!(
        "{} {} {:?} body {:?}",
        req.method(),
        req.uri(),
        req.headers(),
        String::from_utf8_lossy(&r.body)
    );
    let (routes, rt) = api();
    let (code, text) = rt.block_on(async {
        let res = routes
            .clone()
            .oneshot(req)
            .await
            .expect("a router is infallible");
        let code = res.status().as_u16();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX).await;
        (
            code,
            String::from_utf8_lossy(&body.expect("a body")).into_owned(),
        )
    });
    assert_ne!(code, 500, "{shown}\n{text}");
    // Only a reload answers a POST with these (other routes take GET).
    let reloaded = r.method() == "POST"
        && [
            "the running version stays",
            "pauses_us",
            "admin.max_component_size",
        ]
        .iter()
        .any(|m| text.contains(m));
    let why_not = r.may_reload();
    assert!(
        !reloaded || why_not.is_empty(),
        "a reload went through with {why_not:?}:\n{shown}\n{text}"
    );
});
