//! Every call the benchmarks make into `maillage_node`: starting nodes in
//! this process, pinning and trusting, loading records, syncing, and asking
//! what a node stores or has indexed. Kept in one place so that a change to
//! the node's API is met here only.
//!
//! (The developer's probe, `probe.rs`, drives a node's search directly and
//! keeps its own calls.)

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use maillage_node::config::Config;
use maillage_node::server;
use maillage_node::testkit::{self, Node, Origin};
use maillage_record::{PublicKey, RecordId, SigningKey, VerifiedRecord};

pub use maillage_node::no_transparent_huge_pages;
pub use maillage_node::testkit::{CacheStats, FETCH_BATCH_RECORDS, FRAME_LIMIT, SyncReport};

/// A node started (store open, ports bound) but not serving yet: peers
/// pinned now are linked as soon as it runs.
pub struct Starting {
    started: server::Started,
    url: String,
    http: Option<String>,
    dir: tempfile::TempDir,
}

impl Starting {
    /// A node on 127.0.0.1:0 with its own temp dir; `i` tells nodes apart.
    pub async fn new(i: usize) -> anyhow::Result<Starting> {
        Starting::with(i, "").await
    }

    /// A node that also serves its HTTP interface (on a free port).
    pub async fn with_http(i: usize) -> anyhow::Result<Starting> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        Starting::with(i, &format!("http_listen = \"127.0.0.1:{port}\"\n")).await
    }

    async fn with(i: usize, node_extra: &str) -> anyhow::Result<Starting> {
        let dir = tempfile::tempdir()?;
        let key = maillage_record::keyfile::generate()?;
        maillage_record::keyfile::write_new(&dir.path().join("organisation.key"), &key)?;
        // Real SIRENs are not needed to measure; any valid one will do.
        let text = format!(
            "[organisation]\nsiren = \"243100518\"\nname = \"bench {i}\"\nkey_file = \"organisation.key\"\n\
             [node]\ngrpc_listen = \"127.0.0.1:0\"\n{node_extra}[log]\nlevel = \"warn\"\n"
        );
        // Written too, so that the CLI finds the node (`maillage --dir`).
        std::fs::write(dir.path().join("maillage.toml"), &text)?;
        let config = Config::parse(&dir.path().join("maillage.toml"), &text)?;
        let started = server::start(&config).await?;
        let url = format!("https://{}", started.grpc.local_addr().expect("bound"));
        let http = started
            .http
            .as_ref()
            .map(|(l, _)| l.local_addr().expect("bound").to_string());
        Ok(Starting {
            started,
            url,
            http,
            dir,
        })
    }

    /// Pins `peer` under `name`; the link starts when this node runs.
    pub fn pin(&self, name: &str, peer: &Starting) -> anyhow::Result<()> {
        pin(&self.started.node, name, &peer.url, &peer.started.node)
    }

    pub fn public_key(&self) -> PublicKey {
        self.started.node.public_key()
    }

    pub fn trust(&self, key: PublicKey) -> anyhow::Result<()> {
        self.started.node.ledger().add_root(key, "bench")?;
        Ok(())
    }

    /// Serves (the real `server::run`) until `BenchNode::shutdown`.
    pub fn run(self) -> BenchNode {
        let Starting {
            started,
            url,
            http,
            dir,
        } = self;
        let node = started.node.clone();
        let admin = started.admin_path.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = server::run(started, async {
                let _ = stopped.await;
            })
            .await;
        });
        BenchNode {
            node,
            admin,
            url,
            http,
            stop,
            task,
            dir,
        }
    }
}

/// A running node in this process.
pub struct BenchNode {
    pub node: Arc<Node>,
    /// Its admin socket, where clients search as the CLI does.
    pub admin: PathBuf,
    /// Its TLS port, https://127.0.0.1:PORT.
    pub url: String,
    /// Its HTTP interface's address, if it serves one.
    pub http: Option<String>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
}

/// Two running nodes, a and b, pinned on each other and trusting `authors`;
/// b serves its HTTP interface too.
pub async fn pair(authors: &[SigningKey]) -> anyhow::Result<(BenchNode, BenchNode)> {
    let (sa, sb) = (Starting::new(0).await?, Starting::with_http(1).await?);
    let (a, b) = (sa.run(), sb.run());
    for k in authors {
        let k = PublicKey(k.verifying_key().to_bytes());
        b.trust(k)?;
        a.trust(k)?;
    }
    // Pinned once running: no link task starts, the benchmark drives syncs.
    a.pin("b", &b)?;
    b.pin("a", &a)?;
    Ok((a, b))
}

impl BenchNode {
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }

    fn pin(&self, name: &str, peer: &BenchNode) -> anyhow::Result<()> {
        pin(&self.node, name, &peer.url, &peer.node)
    }

    pub fn trust(&self, key: PublicKey) -> anyhow::Result<()> {
        self.node.ledger().add_root(key, "bench")?;
        Ok(())
    }

    /// One sync with the pinned `peer`, as a link runs it.
    pub async fn sync(&self, peer: &str) -> anyhow::Result<SyncReport> {
        Ok(testkit::sync(&self.node, peer).await?)
    }

    /// Stores `recs` as the node's own, off the async runtime.
    pub async fn load(&self, recs: Vec<VerifiedRecord>) -> anyhow::Result<()> {
        let node = self.node.clone();
        tokio::task::spawn_blocking(move || load(&node, &recs)).await?
    }

    /// Publishes one record, as the node's own, and announces it.
    pub async fn publish(&self, rec: VerifiedRecord) -> anyhow::Result<()> {
        let node = self.node.clone();
        let written =
            tokio::task::spawn_blocking(move || node.ledger().insert_newer(&[rec])).await??;
        for result in written {
            result?;
        }
        Ok(())
    }

    pub fn holds(&self, id: &RecordId) -> anyhow::Result<bool> {
        Ok(self.node.store().contains(id)?)
    }

    /// Waits until the node has indexed everything it stores.
    pub async fn indexed(&self) -> Duration {
        indexed(&self.node).await
    }

    /// Its directory: config, key, store and admin socket, as the CLI
    /// expects them (`maillage --dir`).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn public_key(&self) -> PublicKey {
        self.node.public_key()
    }

    /// An anonymous client's channel to its TLS port.
    pub fn anonymous_channel(&self) -> anyhow::Result<tonic::transport::Channel> {
        Ok(testkit::tls::anonymous_channel(
            &self.url,
            self.node.public_key(),
        )?)
    }

    /// What it refused, by reason.
    pub fn refusals(&self) -> Vec<(&'static str, u64)> {
        self.node.refusals().counts()
    }

    /// Envelopes it stores.
    pub fn envelopes(&self) -> u64 {
        self.node.store().counts().0
    }

    /// A new empty node, pinned on this one both ways and trusting
    /// `authors`, serving: it syncs from this one when asked.
    pub async fn joined(&self, i: usize, authors: &[SigningKey]) -> anyhow::Result<BenchNode> {
        let c = Starting::new(i).await?.run();
        for k in authors {
            c.trust(PublicKey(k.verifying_key().to_bytes()))?;
        }
        c.pin("b", self)?;
        self.pin(&format!("joined{i}"), &c)?;
        Ok(c)
    }

    pub fn segments(&self) -> usize {
        self.node.search().segments()
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.node.search().cache_stats()
    }
}

fn pin(node: &Node, name: &str, url: &str, peer: &Node) -> anyhow::Result<()> {
    node.peers()
        .add(name, url, peer.public_key(), None, node.public_key())?;
    Ok(())
}

/// Stores `recs` in `node` as they are, in batches (blocking).
pub fn load(node: &Node, recs: &[VerifiedRecord]) -> anyhow::Result<()> {
    Ok(testkit::load(node, recs, Origin::Local)?)
}

/// Waits until `node` has indexed everything it stores.
pub async fn indexed(node: &Node) -> Duration {
    testkit::indexed(node).await
}
