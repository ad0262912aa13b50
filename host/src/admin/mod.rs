//! The admin HTTP API: health, metrics, the topology, the running operator
//! versions, and hot reload (`POST /operators/<name>` with the component's
//! bytes), readiness, and interactive queries of the state stores.
//!
//! It runs on a thread of its own (a single-threaded tokio runtime), apart
//! from the workers; a reload compiles on tokio's blocking pool. Endpoints
//! that change something need `Authorization: Bearer <token>`: the spec's
//! `admin.token`, else one generated at start ([`token`]).

mod stores;
pub mod token;

use crate::metrics::Metrics;
use crate::reload::{ReloadError, Reloader};
use crate::status::Status;
use crate::topology::AdminConfig;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use stores::{readyz, store_get};

/// Largest component a reload accepts unless `admin.max_component_size` says.
pub const DEFAULT_MAX_COMPONENT_BYTES: usize = 128 << 20;

/// Why the admin API could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The address could not be bound.
    #[error(
        "the admin API cannot listen on {addr}: {source} (set admin.listen, or stop what uses the port)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The runtime could not start.
    #[error("the admin API could not start: {0}")]
    Runtime(std::io::Error),
    /// The generated token could not be written.
    #[error(
        "the admin API cannot write its token to {path}: {source} (set admin.token in the spec, or make the directory writable)"
    )]
    Token {
        /// The token file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What the admin API answers from.
pub struct Parts {
    /// The address the instance is published under (`host:port`).
    pub advertised: String,
    /// Reloads operators; knows the topology.
    pub reloader: Arc<Reloader>,
    /// The instance's metrics.
    pub metrics: Arc<Metrics>,
    /// The running instance.
    pub instance: Arc<dyn Status>,
    /// The bearer token that endpoints changing something require.
    pub token: String,
    /// Largest request body (a component) accepted.
    pub max_body: usize,
}

type Api = Parts;

/// The admin API's socket, bound before the Kafka clients start so its
/// address can be published to the group.
pub struct Bound {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    token: String,
    /// The file holding the generated token, when the spec sets none.
    token_file: Option<token::TokenFile>,
    advertised: String,
    max_body: usize,
}

/// A running admin API; it stops when dropped.
pub struct AdminServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Removed when the API stops.
    _token_file: Option<token::TokenFile>,
}

/// The admin API's routes over `parts`, served by [`Bound::serve`]. The
/// reload route reads the caller's address from a
/// `ConnectInfo<SocketAddr>` request extension.
pub fn router(parts: Parts) -> Router {
    let max_body = parts.max_body;
    let api = Arc::new(parts);
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/stores/{store}/{key}", get(store_get))
        .route("/metrics", get(metrics_text))
        .route("/topology", get(topology))
        .route("/operators", get(operators))
        .route("/operators/{name}", get(operator).post(reload))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            known_host,
        ))
        .with_state(api)
}

impl Bound {
    /// Binds `cfg.listen`.
    pub fn bind(cfg: &AdminConfig) -> Result<Self, AdminError> {
        let listener =
            std::net::TcpListener::bind(cfg.listen).map_err(|source| AdminError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(AdminError::Runtime)?;
        listener
            .set_nonblocking(true)
            .map_err(AdminError::Runtime)?;
        let (token, token_file) = match &cfg.token {
            Some(t) => (t.clone(), None),
            None => {
                let file =
                    token::TokenFile::create(addr.port()).map_err(|source| AdminError::Token {
                        path: token::token_path(addr.port()).map_or_else(
                            || "(no home directory)".into(),
                            |p| p.display().to_string(),
                        ),
                        source,
                    })?;
                tracing::info!(
                    "admin API token written to {} (`eddy reload` reads it from there)",
                    file.path.display()
                );
                (file.token.clone(), Some(file))
            }
        };
        Ok(Bound {
            listener,
            addr,
            token,
            token_file,
            advertised: cfg.advertise.clone().unwrap_or_else(|| addr.to_string()),
            max_body: cfg.max_component_bytes,
        })
    }

    /// Where other instances and clients reach the API (`host:port`).
    pub fn advertised(&self) -> &str {
        &self.advertised
    }

    /// Serves the API on a thread of its own.
    pub fn serve(
        self,
        reloader: Arc<Reloader>,
        metrics: Arc<Metrics>,
        instance: Arc<dyn Status>,
    ) -> Result<AdminServer, AdminError> {
        let Bound {
            listener,
            addr,
            token,
            token_file,
            advertised,
            max_body,
        } = self;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(AdminError::Runtime)?;
        let app = router(Parts {
            advertised,
            reloader,
            metrics,
            instance,
            token,
            max_body,
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("eddy-admin".into())
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!("admin API: {e}");
                            return;
                        }
                    };
                    let app = app.into_make_service_with_connect_info::<SocketAddr>();
                    let served = axum::serve(listener, app).with_graceful_shutdown(async {
                        let _ = stopped.await;
                    });
                    if let Err(e) = served.await {
                        tracing::error!("admin API: {e}");
                    }
                });
            })
            .map_err(AdminError::Runtime)?;
        tracing::info!("admin API listening on http://{addr}");
        Ok(AdminServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
            _token_file: token_file,
        })
    }
}

impl AdminServer {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// The refusal of a request that changes something without the right
/// bearer token; none when it may go ahead.
fn denied(api: &Api, headers: &HeaderMap) -> Option<Response> {
    let token = &api.token;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => None,
        Some(_) => Some(error(StatusCode::FORBIDDEN, "wrong bearer token")),
        None => Some(error(
            StatusCode::UNAUTHORIZED,
            "this endpoint needs `Authorization: Bearer <token>`: the spec's admin.token, or the one eddy run wrote at start (`eddy reload` reads it)",
        )),
    }
}

/// The content types a reload takes: none a browser may send across sites
/// without asking first (a "simple request": text/plain, forms).
const COMPONENT_TYPES: &[&str] = &["application/wasm", "application/octet-stream"];

/// The refusal of a change a web page could have made: browsers send
/// `Origin` with every cross-site POST, and cannot send a component's
/// content type without a preflight eddy never answers.
fn forged(headers: &HeaderMap) -> Option<Response> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        return Some(error(
            StatusCode::FORBIDDEN,
            format!(
                "a request from a web page (Origin: {origin}) may not change anything; use `eddy reload` or send the request without an Origin header"
            ),
        ));
    }
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match given {
        Some(t) if COMPONENT_TYPES.contains(&t.as_str()) => None,
        _ => Some(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the component with `Content-Type: application/wasm`",
        )),
    }
}

/// Refuses requests whose `Host` names neither an IP address, `localhost`
/// nor the advertised host: a page served from elsewhere whose name was
/// rebound to this address (DNS rebinding) names its own host.
async fn known_host(
    State(api): State<Arc<Api>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
    match host {
        Some(h) if !host_allowed(&h, &api.advertised) => error(
            StatusCode::FORBIDDEN,
            format!(
                "Host {h:?} is not this instance's address; reach it by IP address, localhost or its advertised name"
            ),
        ),
        _ => next.run(req).await,
    }
}

/// Whether `host` (`name[:port]`) names this instance: an IP address,
/// `localhost`, or the host of `advertised`.
fn host_allowed(host: &str, advertised: &str) -> bool {
    let name = |h: &str| -> String {
        let h = h.trim();
        let bare = match h.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => h.rsplit_once(':').map_or(h, |(n, _)| n),
        };
        bare.to_ascii_lowercase()
    };
    let host = name(host);
    host.parse::<std::net::IpAddr>().is_ok() || host == "localhost" || host == name(advertised)
}

/// Compares secrets without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn metrics_text(State(api): State<Arc<Api>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        api.metrics.render(),
    )
        .into_response()
}

async fn topology(
    State(api): State<Arc<Api>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let t = api.reloader.topology();
    match q.get("format").map(String::as_str) {
        None | Some("json") => Json(crate::topology::describe::to_json(t)).into_response(),
        Some("dot") => (
            [(header::CONTENT_TYPE, "text/vnd.graphviz; charset=utf-8")],
            crate::topology::describe::to_dot(t),
        )
            .into_response(),
        Some(other) => error(
            StatusCode::BAD_REQUEST,
            format!("format {other:?}: expected json or dot"),
        ),
    }
}

async fn operators(State(api): State<Arc<Api>>) -> Response {
    Json(api.reloader.versions()).into_response()
}

async fn operator(State(api): State<Arc<Api>>, Path(name): Path<String>) -> Response {
    match api.reloader.versions().into_iter().find(|v| v.name == name) {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no operator named `{name}`")),
    }
}

async fn reload(
    State(api): State<Arc<Api>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    if let Some(refusal) = forged(&headers).or_else(|| denied(&api, &headers)) {
        tracing::warn!(%peer, operator = %name, "reload refused: {}", refusal.status());
        return refusal;
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(%peer, operator = %name, "reload refused: {e}");
            let status = e.status();
            let why = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!(
                    "the component is larger than {} bytes (admin.max_component_size)",
                    api.max_body
                )
            } else {
                e.body_text()
            };
            return error(status, why);
        }
    };
    tracing::info!(%peer, operator = %name, bytes = body.len(), "reload asked for through POST /operators/{name}");
    let reloader = api.reloader.clone();
    let done = tokio::task::spawn_blocking(move || {
        let done = reloader.reload(&name, &body);
        drop(body);
        return_memory();
        done
    })
    .await;
    match done {
        Ok(Ok(reloaded)) => Json(reloaded).into_response(),
        Ok(Err(e)) => {
            let status = match &e {
                e if e.is_unknown() => StatusCode::NOT_FOUND,
                ReloadError::Closed => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            error(status, format!("{e}; the running version stays"))
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("reload: {e}")),
    }
}

/// Gives the system allocator's free memory back to the system: a
/// reload's body (up to the cap, freed by now) would otherwise stay with
/// the process, kept by glibc for allocations that may never come
/// (mimalloc, the `eddy` binary's allocator, returns such blocks itself).
fn return_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers; it only releases free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_this_instance_and_no_other() {
        for ok in [
            "127.0.0.1:9000",
            "[::1]:9000",
            "localhost:9000",
            "LOCALHOST",
            "10.1.2.3",
            "eddy-0.svc:9000",
        ] {
            assert!(host_allowed(ok, "eddy-0.svc:9000"), "{ok}");
        }
        for no in [
            "evil.example:9000",
            "evil.example",
            "127.0.0.1.nip.io:9000",
            "localhost.evil:9000",
        ] {
            assert!(!host_allowed(no, "eddy-0.svc:9000"), "{no}");
        }
    }

    #[test]
    fn changes_need_a_components_content_type_and_no_origin() {
        let with = |pairs: &[(header::HeaderName, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(k.clone(), v.parse().unwrap());
            }
            forged(&h).map(|r| r.status())
        };
        assert_eq!(with(&[(header::CONTENT_TYPE, "application/wasm")]), None);
        assert_eq!(
            with(&[(header::CONTENT_TYPE, "application/octet-stream; x=1")]),
            None
        );
        assert_eq!(
            with(&[(header::CONTENT_TYPE, "text/plain")]),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
        assert_eq!(with(&[]), Some(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        assert_eq!(
            with(&[
                (header::CONTENT_TYPE, "application/wasm"),
                (header::ORIGIN, "http://evil.example")
            ]),
            Some(StatusCode::FORBIDDEN)
        );
    }
}
