//! The searchers: clients that query a node over gRPC on its admin socket,
//! as the CLI does, and the latencies they measure.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use maillage_proto::v1::catalogue_client::CatalogueClient;
use maillage_proto::v1::{SearchFilters, SearchRequest};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

pub const CLIENTS: usize = 8;
/// Each client runs at least this many queries, and goes on while the sync lasts.
pub const MIN_QUERIES_PER_CLIENT: usize = 100;

/// (words, kind filter, territory filter)
pub const QUERIES: &[(&str, Option<&str>, Option<&str>)] = &[
    ("budget", None, None),
    ("collecte des déchets", None, None),
    ("qualité de l'air", None, None),
    ("vélos", None, None),
    ("énergie bâtiments", None, None),
    ("subventions associations", None, None),
    ("transport scolaire", None, None),
    ("eau potable", None, None),
    ("éclairage public", None, None),
    ("agent conversationnel", None, None),
    ("urbanisme", None, None),
    ("marchés publics", None, None),
    ("arbres", None, None),
    ("cantines", None, None),
    ("stationnement", None, None),
    ("piscines horaires", None, None),
    ("délibérations", None, None),
    ("mobilité douce", None, None),
    ("lyon", None, None),
    ("toulouse déchets", None, None),
    ("déchets", None, Some("69")),
    ("déchets", Some("project"), None),
    ("énergie", None, Some("reg:84")),
    ("vélos", Some("dataset"), Some("33")),
    ("fuites réseau eau", Some("project"), None),
];

#[derive(Debug, Default, Clone)]
pub struct Latencies {
    pub micros: Vec<u64>,
    pub wall: Duration,
    /// How many records each search matched (its total).
    pub totals: Vec<u64>,
    /// Whether each search was asked for the first time.
    pub new: Vec<bool>,
}

/// What the clients ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `QUERIES`, over and over, as people repeat a catalogue's usual
    /// searches: caches answer most of them.
    Repeated,
    /// A different search each time (`corpus::distinct_query`), shared out
    /// between the clients: no cache helps; the index answers every one.
    Distinct,
    /// The usual searches, and one new search in `NEW_IN_MIXED`: a
    /// catalogue's traffic, where the caches answer most searches while the
    /// index computes the new ones on the same cores.
    Mixed,
}

/// One search in this many is new in `Workload::Mixed`.
pub const NEW_IN_MIXED: usize = 10;

impl Latencies {
    pub fn pct_ms(&self, p: usize) -> f64 {
        crate::report::pct(&self.micros, p) as f64 / 1000.0
    }
    pub fn qps(&self) -> f64 {
        self.micros.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The searches that were new (`true`), or asked before (`false`).
    pub fn only(&self, new: bool) -> Latencies {
        let keep = |i: &usize| self.new[*i] == new;
        let indices: Vec<usize> = (0..self.micros.len()).filter(keep).collect();
        Latencies {
            micros: indices.iter().map(|i| self.micros[*i]).collect(),
            wall: self.wall,
            totals: indices.iter().map(|i| self.totals[*i]).collect(),
            new: vec![new; indices.len()],
        }
    }
}

/// A gRPC channel to a node's admin socket, as the CLI opens it.
pub async fn admin_channel(socket: &Path) -> anyhow::Result<Channel> {
    let path = socket.to_path_buf();
    Ok(Endpoint::try_from("http://admin.sock")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { UnixStream::connect(path).await.map(TokioIo::new) }
        }))
        .await?)
}

/// A gRPC Catalogue client on a node's admin socket.
async fn client(socket: &Path) -> anyhow::Result<CatalogueClient<Channel>> {
    Ok(CatalogueClient::new(admin_channel(socket).await?))
}

fn request(workload: Workload, i: usize) -> SearchRequest {
    let (words, kind, territory) = QUERIES[i % QUERIES.len()];
    if workload == Workload::Distinct {
        return SearchRequest {
            query: crate::corpus::distinct_query(i),
            filters: None,
            page: 1,
            page_size: 20,
            with_envelopes: false,
        };
    }
    SearchRequest {
        query: words.into(),
        filters: Some(SearchFilters {
            kind: kind.map_or(0, |k| {
                maillage_record::wire::kind_to_proto(
                    maillage_record::Kind::parse(k).expect("known kind"),
                ) as i32
            }),
            territory: territory.unwrap_or_default().into(),
            ..Default::default()
        }),
        page: 1,
        page_size: 20,
        with_envelopes: false,
    }
}

/// Asks each of `QUERIES` once, untimed: what follows measures a node in
/// use, not its first searches after a start.
pub async fn warm_up(socket: &Path) -> anyhow::Result<()> {
    let mut cl = client(socket).await?;
    for i in 0..QUERIES.len() {
        cl.search(request(Workload::Repeated, i)).await?;
    }
    Ok(())
}

/// Runs `CLIENTS` clients against the node at `socket` until `done` is set
/// and each ran `MIN_QUERIES_PER_CLIENT`. Returns every latency.
pub async fn query_node_owned(
    socket: PathBuf,
    done: Arc<AtomicBool>,
    workload: Workload,
) -> anyhow::Result<Latencies> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    // Distinct searches are numbered across clients, from where the last
    // run stopped: none is ever asked twice.
    static NEXT_DISTINCT: AtomicUsize = AtomicUsize::new(0);
    for c in 0..CLIENTS {
        let mut cl = client(&socket).await?;
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut i = c * 3;
            while out.len() < MIN_QUERIES_PER_CLIENT || !done.load(Ordering::Acquire) {
                let asked = match workload {
                    Workload::Mixed if i % NEW_IN_MIXED == NEW_IN_MIXED - 1 => Workload::Distinct,
                    Workload::Mixed => Workload::Repeated,
                    w => w,
                };
                let n = match asked {
                    Workload::Distinct => NEXT_DISTINCT.fetch_add(1, Ordering::Relaxed),
                    _ => i,
                };
                let t = Instant::now();
                let found = cl.search(request(asked, n)).await?.into_inner();
                let new = asked == Workload::Distinct;
                out.push((t.elapsed().as_micros() as u64, found.total, new));
                i += 1;
            }
            Ok::<_, anyhow::Error>(out)
        }));
    }
    let mut all = Latencies::default();
    for t in tasks {
        for (us, total, new) in t.await?? {
            all.micros.push(us);
            all.totals.push(total);
            all.new.push(new);
        }
    }
    all.wall = started.elapsed();
    Ok(all)
}
