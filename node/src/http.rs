//! The public HTTP export (`node.http_listen`): this node's public records as
//! a DCAT-AP 3.0 catalogue, so data.gouv.fr, CKAN or any DCAT harvester can
//! harvest it, and its public AI projects as JSON.
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

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use maillage_dcat::CatalogInfo;
use maillage_record::Kind;
use tokio::net::TcpListener;

use crate::export::Exports;
use crate::node::Node;
use crate::query_string;
use crate::refusals::Refusal;
use crate::search::{Filters, GroupBy, SearchError, SearchRequest};
use crate::stalled::Stalled;
use crate::store::StoreError;
use crate::viewer::Viewer;

/// Exports computed at once; more requests wait their turn.
const MAX_CONCURRENT_EXPORTS: usize = 2;
/// How long an export waits for its turn before the client is told to
/// come back (503 with Retry-After).
const EXPORT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);
/// Searches answered at once, so the public cannot take the cores that sync
/// and the operator need; more wait their turn (each connection asks one
/// thing at a time: at most `MAX_CONNECTIONS` wait).
const MAX_CONCURRENT_SEARCHES: usize = 4;
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
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let public_url = Arc::new(public_url);
    // An export scans the store: a few at a time, so a client looping on it
    // cannot take every blocking thread the node's other work needs.
    let turns = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_EXPORTS));
    let exports = Arc::new(Exports::default());
    let searches = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_SEARCHES));
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
        let (node, url, turns, exports, searches) = (
            node.clone(),
            public_url.clone(),
            turns.clone(),
            exports.clone(),
            searches.clone(),
        );
        // Held while the task is spawned and registered: it cannot mark
        // itself before it is there.
        let mut registry = lock(&idle);
        registry.next += 1;
        let conn = registry.next;
        let conn_idle = idle.clone();
        let refusals = node.refusals().clone();
        let task = tokio::spawn(async move {
            let service_idle = conn_idle.clone();
            let service = hyper::service::service_fn(move |req| {
                let (node, url, turns, exports, searches, idle) = (
                    node.clone(),
                    url.clone(),
                    turns.clone(),
                    exports.clone(),
                    searches.clone(),
                    service_idle.clone(),
                );
                async move {
                    lock(&idle).busy(conn);
                    let answer = answer(req, node, url, turns, exports, searches).await;
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

/// Answers one request.
async fn answer(
    req: Request<Incoming>,
    node: Arc<Node>,
    url: Arc<String>,
    turns: Arc<tokio::sync::Semaphore>,
    exports: Arc<Exports>,
    searches: Arc<tokio::sync::Semaphore>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    {
        // Searches read the index and do not wait behind exports.
        let path = req.uri().path();
        if path == "/search" || path == "/stats" {
            let until = tokio::time::Instant::now() + SEARCH_PATIENCE;
            let Ok(Ok(_permit)) = tokio::time::timeout_at(until, searches.acquire_owned()).await
            else {
                node.refusals().note(Refusal::SearchBusy);
                return Ok::<_, Infallible>(busy("too many searches at once: retry in a moment\n"));
            };
            return Ok(search(req, node, until).await);
        }
        // A client waits a little for its turn, then is told
        // to come back: requests do not queue without bound.
        let Ok(Ok(_permit)) = tokio::time::timeout(EXPORT_PATIENCE, turns.acquire_owned()).await
        else {
            node.refusals().note(Refusal::ExportBusy);
            return Ok(busy("too many exports at once: retry in a moment\n"));
        };
        Ok(handle(req, node, exports, &url).await)
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

/// An export's answer.
struct Export {
    content_type: &'static str,
    body: Vec<u8>,
    /// A `Link` header value naming the next page.
    next: Option<String>,
}

async fn handle(
    req: Request<Incoming>,
    node: Arc<Node>,
    exports: Arc<Exports>,
    public_url: &str,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "this export is read-only: use GET\n",
        );
    }
    let query = req.uri().query().unwrap_or("").to_string();
    let path = req.uri().path().to_string();
    let page = match query_string::page(&query) {
        Ok(p) => p,
        Err(msg) => return text(StatusCode::BAD_REQUEST, &msg),
    };
    let url = public_url.to_string();
    let result = tokio::task::spawn_blocking(move || -> Result<Option<Export>, StoreError> {
        // A `Link` to the next page, for an export that has one.
        let mut next: Option<String> = None;
        let found = match path.as_str() {
            "/catalog.jsonld" | "/catalog.ttl" => {
                let graph = exports.index(&node)?.catalog(
                    &node,
                    &CatalogInfo::for_node(node.name(), node.siren().as_str(), &url),
                    page,
                )?;
                if path.ends_with(".ttl") {
                    Some(("text/turtle; charset=utf-8", graph.to_turtle().into_bytes()))
                } else {
                    let body = serde_json::to_vec_pretty(&graph.to_jsonld()).unwrap_or_default();
                    Some(("application/ld+json", body))
                }
            }
            "/projects.json" => {
                let (docs, following) = exports.index(&node)?.projects(&node, page)?;
                next = following.map(|(n, size)| format!("<{url}/projects.json?page={n}&page_size={size}>; rel=\"next\""));
                let body = serde_json::to_vec_pretty(&docs).unwrap_or_default();
                Some(("application/json", body))
            }
            "/" => Some((
                "text/plain; charset=utf-8",
                b"maillage node: /catalog.jsonld, /catalog.ttl (DCAT-AP 3.0, ?page=N&page_size=M), /projects.json, /search?q=..., /stats\n"
                    .to_vec(),
            )),
            _ => None,
        };
        Ok(found.map(|(content_type, body)| Export { content_type, body, next }))
    })
    .await;
    match result {
        Ok(Ok(Some(export))) => {
            let mut response = Response::builder().header("content-type", export.content_type);
            if let Some(link) = export.next {
                response = response.header("link", link);
            }
            response
                .body(Full::new(Bytes::from(export.body)))
                .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "bad link header\n"))
        }
        Ok(Ok(None)) => text(
            StatusCode::NOT_FOUND,
            "not found: try /catalog.jsonld, /catalog.ttl, /projects.json, /search?q=... or /stats\n",
        ),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "http export failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the record store failed; see the node's log\n",
            )
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "export task failed\n"),
    }
}

/// `/search` and `/stats`, as the anonymous public: public records only.
/// `until`: how long it may wait for the node's turn.
async fn search(
    req: Request<Incoming>,
    node: Arc<Node>,
    until: tokio::time::Instant,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
    }
    let stats = req.uri().path() == "/stats";
    let params = match query_string::params(req.uri().query().unwrap_or("")) {
        Ok(p) => p,
        Err(msg) => return text(StatusCode::BAD_REQUEST, &msg),
    };
    // The node's turns are shared with gRPC searches.
    let patience = until.saturating_duration_since(tokio::time::Instant::now());
    let Some(_turn) = node.search_turn(Some(patience)).await else {
        return busy("too many searches at once: retry in a moment\n");
    };
    let result = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, SearchError> {
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, v)| n == k && !v.trim().is_empty())
                .map(|(_, v)| v.clone())
        };
        let number = |k: &str| -> Result<usize, SearchError> {
            match get(k) {
                None => Ok(0),
                Some(v) => v.parse().map_err(|_| {
                    SearchError::BadRequest(format!("{k}='{v}' is not a positive number"))
                }),
            }
        };
        let kind = match get("kind") {
            None => None,
            Some(k) => Some(Kind::parse(&k).map_err(|e| SearchError::BadRequest(e.to_string()))?),
        };
        let filters = Filters {
            kind,
            theme: get("theme"),
            territory: get("territory"),
            organisation: get("org"),
            status: get("status"),
            risk: get("risk"),
            licence: get("licence"),
        };
        let stored = node.store().last_seq();
        let viewer = Viewer::Anonymous;
        let body = if stats {
            let by =
                GroupBy::parse(&get("by").unwrap_or_default()).map_err(SearchError::BadRequest)?;
            let mut stats = node.search().stats(&filters, by, &viewer, stored)?;
            // Sequence numbers would count records the public may not see.
            (stats.indexed_seq, stats.stored_seq) = (0, 0);
            serde_json::to_vec_pretty(&stats)
        } else {
            let req = SearchRequest {
                text: get("q").unwrap_or_default(),
                filters,
                page: number("page")?,
                page_size: number("page_size")?,
            };
            let mut page = node.search().search(&req, &viewer, stored)?;
            node.finish_hits(&viewer, &mut page.hits)
                .map_err(|e| SearchError::Internal(e.to_string()))?;
            (page.indexed_seq, page.stored_seq) = (0, 0);
            serde_json::to_vec_pretty(&page)
        };
        body.map_err(|e| SearchError::Internal(e.to_string()))
    })
    .await;
    match result {
        Ok(Ok(body)) => Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("static headers"),
        Ok(Err(SearchError::BadRequest(msg))) => text(StatusCode::BAD_REQUEST, &format!("{msg}\n")),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "http search failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "search failed; see the node's log\n",
            )
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "search task failed\n"),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static headers")
}

/// `page` and `page_size` from a query string; absent: everything on one page.
/// 503 with a Retry-After: the node is busy, the client may come back.
fn busy(body: &str) -> Response<Full<Bytes>> {
    let mut response = text(StatusCode::SERVICE_UNAVAILABLE, body);
    response
        .headers_mut()
        .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
    response
}
