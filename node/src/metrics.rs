//! Prometheus metrics and health probes, on a listener of their own
//! (`[metrics] listen`): `/metrics` in the text exposition format, and
//! `/healthz`, `/readyz` (also on the portal's listener).
//!
//! Gauges are read from the node's parts when scraped (nothing is kept
//! twice); only request durations are kept here, as histograms by gRPC
//! method and HTTP route. Labels come from bounded sets (methods this node
//! serves, routes it declares, its peers, refusal reasons), never from
//! what a caller writes: no request can make the scrape grow.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::codegen::http;

use crate::node::Node;

/// Upper bounds of the duration buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, seconds: f64) {
        // The count first: a scrape in between sees no bucket above +Inf.
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }
}

/// Request durations by one label (a gRPC method, an HTTP route).
#[derive(Default)]
pub struct Durations {
    by: Mutex<BTreeMap<String, Arc<Histogram>>>,
}

impl Durations {
    fn observe(&self, label: &str, seconds: f64) {
        let histogram = {
            let mut by = self.by.lock().unwrap_or_else(|p| p.into_inner());
            match by.get(label) {
                Some(h) => h.clone(),
                None => by.entry(label.to_string()).or_default().clone(),
            }
        };
        histogram.observe(seconds);
    }

    fn render(&self, out: &mut String, name: &str, label: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let by = self.by.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for (value, h) in by {
            let value = escape(&value);
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{label}=\"{value}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{label}=\"{value}\",le=\"+Inf\"}} {count}"
            );
            let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "{name}_sum{{{label}=\"{value}\"}} {sum}");
            let _ = writeln!(out, "{name}_count{{{label}=\"{value}\"}} {count}");
        }
    }
}

/// What the node measures of its requests.
#[derive(Default)]
pub struct Metrics {
    pub grpc: Durations,
    pub http: Durations,
}

/// A label value as the exposition format quotes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Times each gRPC call until its answer's headers (a stream's first
/// message), by method: a layer of both gRPC servers.
#[derive(Clone)]
pub struct TimeGrpc(pub Arc<Metrics>);

impl<S> tower::Layer<S> for TimeGrpc {
    type Service = TimedGrpc<S>;
    fn layer(&self, inner: S) -> TimedGrpc<S> {
        TimedGrpc {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct TimedGrpc<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, R> tower::Service<http::Request<B>> for TimedGrpc<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let began = Instant::now();
        let path = request.uri().path().to_string();
        let metrics = self.metrics.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            // A method this node does not serve is answered UNIMPLEMENTED
            // (12) at once: counted under one label, so that made-up paths
            // cannot add labels.
            let unimplemented = response
                .headers()
                .get("grpc-status")
                .is_some_and(|s| s.as_bytes() == b"12");
            let label = if unimplemented || path.len() > 100 {
                "unimplemented"
            } else {
                path.as_str()
            };
            metrics.grpc.observe(label, began.elapsed().as_secs_f64());
            Ok(response)
        })
    }
}

/// Times an HTTP request until its answer's headers, by the route it
/// matched (`/fiche/{id}`, not the address asked): a route layer of the
/// portal.
pub async fn time_http(
    metrics: axum::extract::State<Arc<Metrics>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let began = Instant::now();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "other".to_string(), |m| m.as_str().to_string());
    let response = next.run(request).await;
    metrics.http.observe(&route, began.elapsed().as_secs_f64());
    response
}

/// How the node is, for the probes, the gRPC health service and systemd's
/// watchdog (cheap: a point read and counters).
#[derive(Debug, Clone)]
pub struct Health {
    /// The store answers a read.
    pub store: Result<(), String>,
    pub last_seq: u64,
    pub indexed_seq: u64,
    pub rebuilding: bool,
    pub peers: usize,
    /// Peers whose last sync succeeded.
    pub peers_ok: usize,
}

/// An index further behind the store than this is not ready: searches
/// would miss too much (a first full sync, a rebuild).
pub const READY_INDEX_LAG: u64 = 50_000;

impl Health {
    pub fn of(node: &Node) -> Health {
        let peers = node.peers().list();
        Health {
            store: node.store().readable().map_err(|e| {
                tracing::error!(error = %e, "the store does not answer a read");
                e.to_string()
            }),
            last_seq: node.store().last_seq(),
            indexed_seq: node.search().indexed_seq(),
            rebuilding: node.search().rebuilding(),
            peers: peers.iter().filter(|p| !p.revoked).count(),
            peers_ok: peers.iter().filter(|p| p.answers()).count(),
        }
    }

    pub fn index_lag(&self) -> u64 {
        self.last_seq.saturating_sub(self.indexed_seq)
    }

    /// Alive: the store answers.
    pub fn live(&self) -> bool {
        self.store.is_ok()
    }

    /// Ready to serve searches and pages: alive, and the index follows
    /// the store closely (not rebuilding).
    pub fn ready(&self) -> bool {
        self.live() && !self.rebuilding && self.index_lag() <= READY_INDEX_LAG
    }

    /// Replication works: no peer, or at least one answered its last sync.
    pub fn replicating(&self) -> bool {
        self.peers == 0 || self.peers_ok > 0
    }

    /// What the probes answer: a line per part. A store's error stays in
    /// the node's log (it names paths): the probes are public.
    pub fn describe(&self) -> String {
        format!(
            "store: {}\nindex: {} ({} changes behind{})\npeers: {} of {} answered their last sync\n",
            match &self.store {
                Ok(()) => "ok",
                Err(_) => "failing (the node's log says why)",
            },
            if self.ready() { "ok" } else { "behind" },
            self.index_lag(),
            if self.rebuilding { ", rebuilding" } else { "" },
            self.peers_ok,
            self.peers,
        )
    }
}

/// `/healthz` (`ready`: false) or `/readyz` (true): 200 and what each part
/// says, or 503 with the same. Public: it says whether the node works, and
/// how far its index is behind, not what it holds.
pub fn probe(node: &Node, ready: bool) -> axum::response::Response {
    use axum::response::IntoResponse;
    let health = Health::of(node);
    let ok = if ready { health.ready() } else { health.live() };
    let status = if ok {
        http::StatusCode::OK
    } else {
        http::StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [
            (http::header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (http::header::CACHE_CONTROL, "no-store"),
        ],
        health.describe(),
    )
        .into_response()
}

/// Connections the metrics listener serves at once: a scraper or two and
/// a probe; one more is closed at once.
const MAX_CONNECTIONS: usize = 16;

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until
/// `shutdown`. With a `token`, `/metrics` asks for `Authorization: Bearer
/// <token>` (the probes never do: they say nothing a port scan would not).
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: Arc<Node>,
    token: Option<String>,
    shutdown: impl Future<Output = ()>,
) {
    use axum::routing::get;
    use tower::ServiceExt;
    let token = token.map(|t| sha256(t.as_bytes()));
    let metrics_node = node.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move |headers: http::HeaderMap| {
                let node = metrics_node.clone();
                let token = token;
                async move { scrape(node, token, &headers).await }
            }),
        )
        .route(
            "/healthz",
            get({
                let node = node.clone();
                move || async move { probe(&node, false) }
            }),
        )
        .route(
            "/readyz",
            get({
                let node = node.clone();
                move || async move { probe(&node, true) }
            }),
        )
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            http::StatusCode::REQUEST_TIMEOUT,
            std::time::Duration::from_secs(30),
        ));
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: accept failed; trying again shortly");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    app.clone().oneshot(req)
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            drop(slot);
        });
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

async fn scrape(
    node: Arc<Node>,
    token: Option<[u8; 32]>,
    headers: &http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Some(expected) = token {
        // Compared as hashes: the time taken says nothing of the token.
        let given = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| sha256(t.trim().as_bytes()));
        if given != Some(expected) {
            return (
                http::StatusCode::UNAUTHORIZED,
                [(http::header::WWW_AUTHENTICATE, "Bearer")],
                "the metrics need the token of metrics.token_file: Authorization: Bearer <token>\n",
            )
                .into_response();
        }
    }
    match tokio::task::spawn_blocking(move || render(&node)).await {
        Ok(text) => (
            [(
                http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Renders every metric (blocking: it reads the store's properties and
/// the index's term counts).
pub fn render(node: &Node) -> String {
    let mut out = String::with_capacity(16 << 10);
    let mut gauge =
        |out: &mut String, name: &str, help: &str, kind: &str, values: &[(String, f64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in values {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        };
    let one = |v: f64| vec![(String::new(), v)];
    gauge(
        &mut out,
        "maillage_build_info",
        "The version of maillage this node runs.",
        "gauge",
        &[(format!("version=\"{}\"", env!("CARGO_PKG_VERSION")), 1.0)],
    );
    gauge(
        &mut out,
        "maillage_uptime_seconds",
        "Seconds since the node started.",
        "gauge",
        &one(node.uptime().as_secs_f64()),
    );
    let (envelopes, last_seq, by_kind) = node.store().counts();
    gauge(
        &mut out,
        "maillage_records",
        "Current records by kind (withdrawn ones count as tombstones).",
        "gauge",
        &by_kind
            .iter()
            .map(|(k, n)| (format!("kind=\"{}\"", k.as_str()), *n as f64))
            .collect::<Vec<_>>(),
    );
    if let Ok((public, federation, restricted)) = node.search().count_by_visibility() {
        gauge(
            &mut out,
            "maillage_records_searchable",
            "Current records in the search index by visibility (approximate until the index merges its segments).",
            "gauge",
            &[
                ("visibility=\"public\"".into(), public as f64),
                ("visibility=\"federation\"".into(), federation as f64),
                ("visibility=\"restricted\"".into(), restricted as f64),
            ],
        );
    }
    gauge(
        &mut out,
        "maillage_envelopes",
        "Stored envelopes, every version.",
        "gauge",
        &one(envelopes as f64),
    );
    gauge(
        &mut out,
        "maillage_store_last_seq",
        "The store's last change number.",
        "gauge",
        &one(last_seq as f64),
    );
    let health = Health::of(node);
    gauge(
        &mut out,
        "maillage_index_lag_records",
        "Changes stored but not yet searchable.",
        "gauge",
        &one(health.index_lag() as f64),
    );
    gauge(
        &mut out,
        "maillage_index_rebuilding",
        "1 while the search index is rebuilt.",
        "gauge",
        &one(f64::from(u8::from(health.rebuilding))),
    );
    gauge(
        &mut out,
        "maillage_ready",
        "1 when /readyz answers 200: the store answers and the index follows it.",
        "gauge",
        &one(f64::from(u8::from(health.ready()))),
    );
    let peers = node.peers().list();
    let per_peer = |f: &dyn Fn(&crate::peers::PeerState) -> f64| {
        peers
            .iter()
            .map(|p| (format!("peer=\"{}\"", escape(&p.name)), f(p)))
            .collect::<Vec<_>>()
    };
    gauge(
        &mut out,
        "maillage_peer_up",
        "1 if the peer answered its last sync.",
        "gauge",
        &per_peer(&|p| f64::from(u8::from(p.answers()))),
    );
    gauge(
        &mut out,
        "maillage_peer_subscribed",
        "1 while the live subscription to the peer is open.",
        "gauge",
        &per_peer(&|p| f64::from(u8::from(p.subscribed))),
    );
    gauge(
        &mut out,
        "maillage_peer_last_sync_timestamp_seconds",
        "When the last successful sync with the peer ended (0: never).",
        "gauge",
        &per_peer(&|p| p.last_sync_ms as f64 / 1000.0),
    );
    let now = maillage_record::now_ms();
    gauge(
        &mut out,
        "maillage_peer_lag_seconds",
        "Seconds since the last successful sync with the peer (since it was added, if never).",
        "gauge",
        &per_peer(&|p| {
            let since = if p.last_sync_ms > 0 {
                p.last_sync_ms
            } else {
                p.added_at_ms
            };
            (now - since).max(0) as f64 / 1000.0
        }),
    );
    gauge(
        &mut out,
        "maillage_peer_failures",
        "Syncs with the peer failed in a row.",
        "gauge",
        &per_peer(&|p| f64::from(p.consecutive_failures)),
    );
    gauge(
        &mut out,
        "maillage_peer_records_received_total",
        "Records received from the peer.",
        "counter",
        &per_peer(&|p| p.records_received as f64),
    );
    gauge(
        &mut out,
        "maillage_peer_records_sent_total",
        "Records sent to the peer.",
        "counter",
        &per_peer(&|p| p.records_sent as f64),
    );
    gauge(
        &mut out,
        "maillage_peer_bytes_total",
        "Bytes exchanged with the peer by this node's syncs (TLS records, both ways), since the node started.",
        "counter",
        &per_peer(&|p| p.wire_bytes as f64),
    );
    gauge(
        &mut out,
        "maillage_refusals_total",
        "What the node refused its callers since it started, by reason (docs/security.md).",
        "counter",
        &node
            .refusals()
            .counts()
            .into_iter()
            .map(|(why, n)| (format!("reason=\"{why}\""), n as f64))
            .collect::<Vec<_>>(),
    );
    gauge(
        &mut out,
        "maillage_quarantine_records",
        "Records from peers waiting for their author to be trusted.",
        "gauge",
        &one(node.ledger().quarantine().len() as f64),
    );
    let cached = node.search().cache_stats();
    gauge(
        &mut out,
        "maillage_search_cache_total",
        "Searches and statistics answered from the cache (hit) or computed (miss).",
        "counter",
        &[
            (
                "what=\"search\",result=\"hit\"".into(),
                cached.page_hits as f64,
            ),
            (
                "what=\"search\",result=\"miss\"".into(),
                cached.page_misses as f64,
            ),
            (
                "what=\"stats\",result=\"hit\"".into(),
                cached.stats_hits as f64,
            ),
            (
                "what=\"stats\",result=\"miss\"".into(),
                cached.stats_misses as f64,
            ),
        ],
    );
    for (name, value) in node.store().engine_gauges() {
        gauge(
            &mut out,
            &format!("maillage_rocksdb_{name}"),
            "RocksDB's property of the same name, over every table.",
            "gauge",
            &one(value as f64),
        );
    }
    let snapshot = node.snapshot_state();
    gauge(
        &mut out,
        "maillage_backup_last_success_timestamp_seconds",
        "When the last automatic snapshot was taken ([backup]; 0: none since the node started).",
        "gauge",
        &one(snapshot.last_ms as f64 / 1000.0),
    );
    gauge(
        &mut out,
        "maillage_backup_failing",
        "1 if the last automatic snapshot failed.",
        "gauge",
        &one(f64::from(u8::from(!snapshot.last_error.is_empty()))),
    );
    gauge(
        &mut out,
        "maillage_restore_waiting_peers",
        "Peers a node restored from a backup still has to sync with before it signs again.",
        "gauge",
        &one(node.author().restore_waiting().len() as f64),
    );
    process(&mut out, &mut gauge);
    node.metrics().grpc.render(
        &mut out,
        "maillage_grpc_request_duration_seconds",
        "method",
        "gRPC calls by method, until the answer's headers.",
    );
    node.metrics().http.render(
        &mut out,
        "maillage_http_request_duration_seconds",
        "route",
        "HTTP requests by route, until the answer's headers.",
    );
    out
}

/// The process's own: memory, open files, start time (from /proc).
fn process(
    out: &mut String,
    gauge: &mut impl FnMut(&mut String, &str, &str, &str, &[(String, f64)]),
) {
    // SAFETY: sysconf reads a constant of the system.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as f64,
        _ => 4096.0,
    };
    if let Some(resident) = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
    {
        gauge(
            out,
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            "gauge",
            &[(String::new(), resident * page)],
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge(
            out,
            "process_open_fds",
            "Open file descriptors.",
            "gauge",
            &[(String::new(), fds.count() as f64)],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Buckets are cumulative, the +Inf bucket is the count, and a label
    /// value is quoted as the format says.
    #[test]
    fn histograms_render_cumulative_buckets() {
        let d = Durations::default();
        d.observe("/a", 0.002);
        d.observe("/a", 0.2);
        d.observe("/a", 60.0);
        d.observe("q\"uote", 0.001);
        let mut out = String::new();
        d.render(&mut out, "x_seconds", "method", "help");
        assert!(
            out.contains("x_seconds_bucket{method=\"/a\",le=\"0.001\"} 0\n"),
            "{out}"
        );
        assert!(out.contains("x_seconds_bucket{method=\"/a\",le=\"0.0025\"} 1\n"));
        assert!(out.contains("x_seconds_bucket{method=\"/a\",le=\"0.25\"} 2\n"));
        assert!(out.contains("x_seconds_bucket{method=\"/a\",le=\"10\"} 2\n"));
        assert!(out.contains("x_seconds_bucket{method=\"/a\",le=\"+Inf\"} 3\n"));
        assert!(out.contains("x_seconds_count{method=\"/a\"} 3\n"));
        assert!(
            out.contains("x_seconds_sum{method=\"/a\"} 60.202\n"),
            "{out}"
        );
        assert!(out.contains("method=\"q\\\"uote\""));
    }
}
