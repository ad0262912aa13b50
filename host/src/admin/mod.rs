//! The admin HTTP API: health, metrics, the topology, the running operator
//! versions, and hot reload (`POST /operators/<name>` with the component's
//! bytes), readiness, and interactive queries of the state stores.
//!
//! It runs on a thread of its own (a single-threaded tokio runtime), apart
//! from the workers; a reload compiles on tokio's blocking pool. When a
//! token is configured, endpoints that change something need
//! `Authorization: Bearer <token>`.

mod stores;

use crate::metrics::Metrics;
use crate::reload::{ReloadError, Reloader};
use crate::status::Status;
use crate::topology::AdminConfig;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use stores::{readyz, store_get};

/// Largest component a reload accepts.
pub const MAX_COMPONENT_BYTES: usize = 256 << 20;

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
}

struct Api {
    reloader: Arc<Reloader>,
    metrics: Arc<Metrics>,
    instance: Arc<dyn Status>,
    token: Option<String>,
}

/// The admin API's socket, bound before the Kafka clients start so its
/// address can be published to the group.
pub struct Bound {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    token: Option<String>,
    advertised: String,
}

/// A running admin API; it stops when dropped.
pub struct AdminServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
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
        Ok(Bound {
            listener,
            addr,
            token: cfg.token.clone(),
            advertised: cfg.advertise.clone().unwrap_or_else(|| addr.to_string()),
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
            ..
        } = self;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(AdminError::Runtime)?;
        let api = Arc::new(Api {
            reloader,
            metrics,
            instance,
            token,
        });
        let app = Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .route("/stores/{store}/{key}", get(store_get))
            .route("/metrics", get(metrics_text))
            .route("/topology", get(topology))
            .route("/operators", get(operators))
            .route("/operators/{name}", get(operator).post(reload))
            .layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES))
            .with_state(api);
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
    let Some(token) = &api.token else {
        return None;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => None,
        Some(_) => Some(error(StatusCode::FORBIDDEN, "wrong bearer token")),
        None => Some(error(
            StatusCode::UNAUTHORIZED,
            "this endpoint needs `Authorization: Bearer <admin.token>`",
        )),
    }
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
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = denied(&api, &headers) {
        return refusal;
    }
    let reloader = api.reloader.clone();
    let done = tokio::task::spawn_blocking(move || reloader.reload(&name, &body)).await;
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
