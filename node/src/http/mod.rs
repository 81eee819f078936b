//! The public HTTP interface (`node.http_listen`): the portal, a French web
//! site of the federation this node sees (`portal/`), and the exports
//! harvesters and scripts read (`api.rs`):
//!
//!   GET /catalog.jsonld[?page=N&page_size=M]   DCAT-AP JSON-LD, Hydra paging (over
//!                                              1,000 datasets, paged when not asked)
//!   GET /catalog.ttl[?page=N&page_size=M]      the same in Turtle
//!   GET /projects.json[?page=N&page_size=M]    public projects, maillage JSON
//!                                              (a Link header names the next page)
//!   GET /search?q=…&kind=…&theme=…&territory=…&org=…&status=…&risk=…&licence=…&page=N
//!                                              full-text search, JSON
//!   GET /stats?territory=…&by=kind|theme|status|org|territory&…
//!                                              counts and project figures, JSON
//!
//! Plain HTTP, read-only, anonymous: only public records are ever served
//! (`Viewer::Anonymous`), so a restricted record or a project's details
//! (usually federation-only) cannot appear here.
//!
//! This file holds what every request goes through: the accept loop and its
//! connection limits (hand-written: a connection idle the longest makes room
//! for a new one), then axum's routing with tower-http's layers (a deadline
//! per request, compression, security headers), then turns: a few exports,
//! searches and pages at a time, each waiting a bounded time.

mod api;

pub(crate) use api::filters;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::export::Exports;
use crate::node::Node;
use crate::refusals::Refusal;
use crate::stalled::Stalled;

/// Exports computed at once; more requests wait their turn.
const MAX_CONCURRENT_EXPORTS: usize = 2;
/// How long an export waits for its turn before the client is told to
/// come back (503 with Retry-After).
const EXPORT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);
/// Searches answered at once, so the public cannot take the cores that sync
/// and the operator need; more wait their turn (each connection asks one
/// thing at a time: at most `MAX_CONNECTIONS` wait). The portal's pages that
/// search (home, search, territories) take these turns too.
const MAX_CONCURRENT_SEARCHES: usize = 4;
/// Pages built at once that read a few records (a record's page, an
/// organisation's); more wait their turn, as long as `SEARCH_PATIENCE`.
const MAX_CONCURRENT_PAGES: usize = 8;
/// The largest request body accepted, but for the proposal forms.
const MAX_REQUEST_BODY: usize = 16 << 10;
/// The largest proposal form (`POST /propositions`): a project's long
/// texts, URL-encoded.
pub(crate) const FORM_BODY_MAX: usize = 256 << 10;
/// How long any request may take, answer included, before it is answered
/// 408 (a client that reads slowly is `WRITE_STALL`'s business).
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);
/// How long a search waits in all, for one of those turns and then for the
/// node's turn to search (shared with gRPC), before it is told to come back
/// (503 with Retry-After).
const SEARCH_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);
/// Connections open at once; more are closed as they come (each holds a
/// file descriptor, which RocksDB needs too).
pub const MAX_CONNECTIONS: usize = 512;
/// An answer whose client reads nothing of it for this long is given up,
/// and its connection closed (`stalled.rs`).
pub const WRITE_STALL: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a client may take to send a request's headers (a slow client
/// must not hold a connection for ever).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long to wait after a failed accept (out of file descriptors, say)
/// before the next: not a loop at full CPU.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Serves until `shutdown` completes; connections in progress finish.
pub async fn serve(
    listener: TcpListener,
    node: Arc<Node>,
    public_url: String,
    portal: crate::config::Portal,
    signin: Option<Arc<crate::signin::SignIn>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut http = Http::new(node.clone(), public_url, portal);
    http.signin = signin;
    // The export index, built before the first harvester asks for it.
    http.exports.rebuild_in_background(&http.node);
    let app = router(http);
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let idle = Arc::new(std::sync::Mutex::new(Idle::default()));
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "http: accept failed; trying again shortly");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        // At the limit, the connection idle the longest (one that has sent
        // no request yet, or is kept alive between two) makes room; with
        // none idle, the new one is closed at once.
        let held = match connections.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => match evict_oldest(&idle) {
                Some(oldest) => {
                    oldest.abort();
                    node.refusals().note(Refusal::HttpIdleEvicted);
                    tokio::time::timeout(EVICTION_WAIT, connections.clone().acquire_owned())
                        .await
                        .ok()
                        .and_then(Result::ok)
                }
                None => None,
            },
        };
        let Some(held) = held else {
            tracing::debug!("http: too many connections; one closed");
            node.refusals().note(Refusal::HttpConnections);
            continue;
        };
        // Held while the task is spawned and registered: it cannot mark
        // itself before it is there.
        let mut registry = lock(&idle);
        registry.next += 1;
        let conn = registry.next;
        let conn_idle = idle.clone();
        let refusals = node.refusals().clone();
        let app = app.clone();
        let task = tokio::spawn(async move {
            let service_idle = conn_idle.clone();
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let (app, idle) = (app.clone(), service_idle.clone());
                async move {
                    lock(&idle).busy(conn);
                    let answer = app.oneshot(req).await;
                    lock(&idle).idle(conn);
                    answer
                }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(Stalled::new(stream, WRITE_STALL)), service)
                .await;
            if let Err(e) = served
                && timed_out(&e)
            {
                refusals.note(Refusal::HttpWriteStalled);
            }
            lock(&conn_idle).gone(conn);
            drop(held);
        });
        registry.add(conn, task.abort_handle());
        drop(registry);
    }
}

/// Whether a connection ended because a write stalled (`Stalled`'s error,
/// somewhere in hyper's chain of causes).
fn timed_out(e: &hyper::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// How long a new connection waits for the slot of one evicted for it.
const EVICTION_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// The task of the connection idle the longest, if any (the lock is not
/// held past this call).
fn evict_oldest(idle: &std::sync::Mutex<Idle>) -> Option<tokio::task::AbortHandle> {
    lock(idle).evict_oldest()
}

fn lock(idle: &std::sync::Mutex<Idle>) -> std::sync::MutexGuard<'_, Idle> {
    idle.lock().unwrap_or_else(|p| p.into_inner())
}

/// The open connections, and those idle (no request under way) in the
/// order they became so: the oldest is closed to make room for a new one.
#[derive(Default)]
struct Idle {
    next: u64,
    tick: u64,
    /// (connection, tick) as they became idle; entries whose tick is no
    /// longer the connection's are stale and skipped.
    queue: std::collections::VecDeque<(u64, u64)>,
    /// Each open connection's task, and its tick while idle.
    conns: std::collections::HashMap<u64, (tokio::task::AbortHandle, Option<u64>)>,
}

impl Idle {
    fn add(&mut self, conn: u64, task: tokio::task::AbortHandle) {
        self.conns.insert(conn, (task, None));
        self.idle(conn);
    }

    fn idle(&mut self, conn: u64) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(entry) = self.conns.get_mut(&conn) {
            entry.1 = Some(tick);
            self.queue.push_back((conn, tick));
        }
        // Stale entries are dropped now and then, not only when evicting.
        if self.queue.len() > 4 * self.conns.len() + 64 {
            let conns = &self.conns;
            self.queue
                .retain(|(c, t)| conns.get(c).is_some_and(|e| e.1 == Some(*t)));
        }
    }

    fn busy(&mut self, conn: u64) {
        if let Some(entry) = self.conns.get_mut(&conn) {
            entry.1 = None;
        }
    }

    fn gone(&mut self, conn: u64) {
        self.conns.remove(&conn);
    }

    /// The task of the connection idle the longest, forgotten here.
    fn evict_oldest(&mut self) -> Option<tokio::task::AbortHandle> {
        while let Some((conn, tick)) = self.queue.pop_front() {
            if self.conns.get(&conn).is_some_and(|e| e.1 == Some(tick)) {
                return self.conns.remove(&conn).map(|(task, _)| task);
            }
        }
        None
    }
}

/// What every request handler may use: the node, and the turns that bound
/// how much of it the public may take at once.
#[derive(Clone)]
pub(crate) struct Http {
    pub node: Arc<Node>,
    /// Where the node's HTTP interface is reached from outside (no
    /// trailing slash): record IRIs and paging links are minted under it.
    pub public_url: Arc<String>,
    pub exports: Arc<Exports>,
    /// The map's tiles.
    pub portal: Arc<crate::config::Portal>,
    /// Members' sign-in, if configured.
    pub signin: Option<Arc<crate::signin::SignIn>>,
    /// Requests per session or read token.
    pub limit: Arc<crate::tokens::RateLimit>,
    /// An export scans the store: a few at a time, so a client looping on
    /// it cannot take every blocking thread the node's other work needs.
    export_turns: Arc<Semaphore>,
    search_turns: Arc<Semaphore>,
    page_turns: Arc<Semaphore>,
}

/// The turn a request holds while it is answered.
pub(crate) struct Turn {
    _http: OwnedSemaphorePermit,
    _node: Option<OwnedSemaphorePermit>,
}

impl Http {
    pub fn new(node: Arc<Node>, public_url: String, portal: crate::config::Portal) -> Http {
        Http {
            node,
            portal: Arc::new(portal),
            public_url: Arc::new(public_url.trim_end_matches('/').to_string()),
            exports: Arc::new(Exports::default()),
            signin: None,
            limit: crate::tokens::RateLimit::new(),
            export_turns: Arc::new(Semaphore::new(MAX_CONCURRENT_EXPORTS)),
            search_turns: Arc::new(Semaphore::new(MAX_CONCURRENT_SEARCHES)),
            page_turns: Arc::new(Semaphore::new(MAX_CONCURRENT_PAGES)),
        }
    }

    /// A turn to export: a client waits a little for it, then is told to
    /// come back (503): requests do not queue without bound.
    pub async fn export_turn(&self) -> Result<Turn, Response> {
        match tokio::time::timeout(EXPORT_PATIENCE, self.export_turns.clone().acquire_owned()).await
        {
            Ok(Ok(permit)) => Ok(Turn {
                _http: permit,
                _node: None,
            }),
            _ => {
                self.node.refusals().note(Refusal::ExportBusy);
                Err(busy("too many exports at once: retry in a moment\n"))
            }
        }
    }

    /// A turn to search: one of the interface's, then one of the node's
    /// (shared with gRPC), within `SEARCH_PATIENCE` in all.
    pub async fn search_turn(&self) -> Result<Turn, Response> {
        let until = tokio::time::Instant::now() + SEARCH_PATIENCE;
        let Ok(Ok(permit)) =
            tokio::time::timeout_at(until, self.search_turns.clone().acquire_owned()).await
        else {
            self.node.refusals().note(Refusal::SearchBusy);
            return Err(busy("too many searches at once: retry in a moment\n"));
        };
        let patience = until.saturating_duration_since(tokio::time::Instant::now());
        // `search_turn` counts its own refusals.
        let Some(node) = self.node.search_turn(Some(patience)).await else {
            return Err(busy("too many searches at once: retry in a moment\n"));
        };
        Ok(Turn {
            _http: permit,
            _node: Some(node),
        })
    }

    /// A turn to build a page that reads a few records.
    pub async fn page_turn(&self) -> Result<Turn, Response> {
        match tokio::time::timeout(SEARCH_PATIENCE, self.page_turns.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Turn {
                _http: permit,
                _node: None,
            }),
            _ => {
                self.node.refusals().note(Refusal::PageBusy);
                Err(busy("too many requests at once: retry in a moment\n"))
            }
        }
    }
}

/// Every route of the interface, with the layers every request goes
/// through.
pub(crate) fn router(state: Http) -> Router {
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    Router::new()
        .route("/catalog.jsonld", get(api::catalog_jsonld))
        .route("/catalog.ttl", get(api::catalog_turtle))
        .route("/projects.json", get(api::projects))
        .route("/search", get(api::search))
        .route("/stats", get(api::stats))
        .merge(crate::portal::routes())
        .route(
            "/healthz",
            get(|State(h): State<Http>| async move { crate::metrics::probe(&h.node, false) }),
        )
        .route(
            "/readyz",
            get(|State(h): State<Http>| async move { crate::metrics::probe(&h.node, true) }),
        )
        // Timed by the route matched: what a route costs, in the metrics.
        .route_layer(axum::middleware::from_fn_with_state(
            state.node.metrics().clone(),
            crate::metrics::time_http,
        ))
        .fallback(crate::portal::not_found)
        .with_state(state)
        // Only the portal's forms read a body, each through an extractor
        // that stops at this size (`portal::routes` lets the proposal
        // form's be larger); a body no route reads is never buffered.
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_DEADLINE,
        ))
        // The portal's pages load scripts, styles and images from this node
        // only, and are never framed (the map's tiles are added to img-src
        // by the map page itself).
        .layer(header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header(header::REFERRER_POLICY, "same-origin"))
        .layer(header(
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ))
        // A span per request (method, path, status, latency), at debug
        // level: `RUST_LOG=tower_http=debug` shows them.
        .layer(TraceLayer::new_for_http())
}

/// A request's query parameters, decoded (form-urlencoded) and bounded:
/// a query that does not decode, or holds too many, is answered 400.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for crate::query_string::Params {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(pairs) =
            axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri).map_err(
                |e| {
                    text(
                        StatusCode::BAD_REQUEST,
                        &format!("bad query string: {}\n", e.body_text()),
                    )
                },
            )?;
        crate::query_string::Params::new(pairs).map_err(|m| text(StatusCode::BAD_REQUEST, &m))
    }
}

/// A plain-text answer (errors of the JSON and export endpoints).
pub(crate) fn text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// 503 with a Retry-After: the node is busy, the client may come back.
pub(crate) fn busy(body: &str) -> Response {
    let mut response = text(StatusCode::SERVICE_UNAVAILABLE, body);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
