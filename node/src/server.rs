//! Starting a node and serving it: `start` prepares everything that can fail
//! (key, store, sockets) before anything is served; `run` serves until
//! `shutdown` resolves. Tests drive `run` with listeners bound on 127.0.0.1:0.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use maillage_proto::v1::admin_server::AdminServer;
use maillage_proto::v1::catalogue_server::CatalogueServer;
use maillage_proto::v1::publish_server::PublishServer;
use maillage_proto::v1::replication_server::ReplicationServer;
use maillage_record::{ORGANISATION_ENVELOPE, envelope, keyfile};
use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::codegen::http::{HeaderName, HeaderValue};
use tonic::transport::Server;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::Config;
use crate::node::Node;
use crate::replication::{Replicator, service::ReplicationService};
use crate::search::Search;
use crate::service::{
    admin::AdminService,
    catalogue::{CatalogueService, Port},
    publish::PublishService,
};
use crate::store::{Admission, Store, StoreError};
use crate::tls::{self, Identity};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Key(#[from] keyfile::KeyFileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot open the store at {path}: {source}")]
    OpenStore { path: PathBuf, source: StoreError },
    #[error(
        "cannot listen for gRPC on {addr}: {source}; is another node using it? change node.grpc_listen in {config}"
    )]
    BindGrpc {
        addr: std::net::SocketAddr,
        config: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot listen for HTTP on {addr}: {source}; is another program using it? change node.http_listen in {config}"
    )]
    BindHttp {
        addr: std::net::SocketAddr,
        config: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot listen for metrics on {addr}: {source}; is another program using it? change metrics.listen in {config}"
    )]
    BindMetrics {
        addr: std::net::SocketAddr,
        config: PathBuf,
        source: std::io::Error,
    },
    #[error("metrics.token_file {path}: {problem}")]
    MetricsToken { path: PathBuf, problem: String },
    #[error("{0}; see [signin] in the config")]
    SignIn(#[from] crate::signin::SignInError),
    #[error("cannot create the admin socket {path}: {source}")]
    BindAdmin {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Organisation { path: PathBuf, problem: String },
    #[error(
        "the key in {path} ({key}) was handed over to {successor} (`maillage key rotate`): \
         put the new key in its place (organisation.key.next beside it, if the rotation stopped \
         half-way), then start the node again"
    )]
    HandedOver {
        path: PathBuf,
        key: maillage_record::PublicKey,
        successor: maillage_record::PublicKey,
    },
    #[error("serving failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Search(#[from] crate::search::SearchError),
}

impl StartError {
    /// Whether the operator must change something before the node can
    /// start: the config, the key, the store's version. The daemon exits
    /// with `EXIT_CONFIG` then, which the systemd unit does not restart
    /// (a loop of restarts would only fill the journal).
    pub fn is_configuration(&self) -> bool {
        match self {
            StartError::Key(_)
            | StartError::SignIn(_)
            | StartError::Organisation { .. }
            | StartError::HandedOver { .. }
            | StartError::MetricsToken { .. } => true,
            StartError::OpenStore { source, .. } => matches!(source, StoreError::Schema { .. }),
            _ => false,
        }
    }
}

/// The daemon's exit status when its configuration is wrong (sysexits.h's
/// EX_CONFIG): `RestartPreventExitStatus=78` in the unit.
pub const EXIT_CONFIG: i32 = 78;

/// The header every answer on the gRPC port carries: the version of
/// maillage that answers (`maillage peer list` shows the peers').
pub const VERSION_HEADER: &str = "maillage-version";

/// A node ready to serve: state plus its bound listeners.
pub struct Started {
    pub node: Arc<Node>,
    pub grpc: TcpListener,
    /// The public HTTP export, with the base URL of its documents.
    pub http: Option<(TcpListener, String)>,
    pub admin: UnixListener,
    pub admin_path: PathBuf,
    /// What the portal's map shows.
    pub portal: crate::config::Portal,
    /// Members' sign-in on the portal, if `[signin]` is configured.
    pub signin: Option<Arc<crate::signin::SignIn>>,
    /// The metrics and probes' listener (`[metrics]`), with the token
    /// `/metrics` asks for, if any.
    pub metrics: Option<(TcpListener, Option<String>)>,
}

/// Loads the key (refusing one others can read), opens the store, stores the
/// organisation's own record if it is new, and binds both listeners.
pub async fn start(config: &Config) -> Result<Started, StartError> {
    let key = keyfile::read(&config.key_file)?;
    let (store, writer) =
        Store::open(&config.data_dir).map_err(|source| StartError::OpenStore {
            path: config.data_dir.clone(),
            source,
        })?;

    // The store's lock proves no other node runs on this directory, so a socket
    // file left here is stale (a crash): remove it before binding.
    let admin_path = config.admin_socket.clone();
    if admin_path.exists() {
        std::fs::remove_file(&admin_path).map_err(|source| StartError::BindAdmin {
            path: admin_path.clone(),
            source,
        })?;
    }
    let admin = UnixListener::bind(&admin_path).map_err(|source| StartError::BindAdmin {
        path: admin_path.clone(),
        source,
    })?;
    std::fs::set_permissions(&admin_path, std::fs::Permissions::from_mode(0o600)).map_err(
        |source| StartError::BindAdmin {
            path: admin_path.clone(),
            source,
        },
    )?;
    let grpc = TcpListener::bind(config.grpc_listen)
        .await
        .map_err(|source| StartError::BindGrpc {
            addr: config.grpc_listen,
            config: config.path.clone(),
            source,
        })?;
    let local = grpc
        .local_addr()
        .map_or_else(|_| config.grpc_listen.to_string(), |a| a.to_string());
    let http = match config.http_listen {
        None => None,
        Some(addr) => {
            let listener =
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::BindHttp {
                        addr,
                        config: config.path.clone(),
                        source,
                    })?;
            let bound = listener.local_addr().map_or(addr, |a| a);
            let url = config
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{bound}"));
            Some((listener, url))
        }
    };
    let metrics = match &config.metrics {
        None => None,
        Some(m) => {
            let token = match &m.token_file {
                None => None,
                Some(path) => Some(read_token(path)?),
            };
            if token.is_none() && !m.listen.ip().is_loopback() {
                tracing::warn!(
                    listen = %m.listen,
                    "the metrics listen beyond loopback without metrics.token_file: anyone who reaches {} reads them",
                    m.listen
                );
            }
            let listener =
                TcpListener::bind(m.listen)
                    .await
                    .map_err(|source| StartError::BindMetrics {
                        addr: m.listen,
                        config: config.path.clone(),
                        source,
                    })?;
            Some((listener, token))
        }
    };
    // The client secret is read now: a node that cannot sign agents in as
    // configured does not start.
    let signin = match (&config.signin, &http) {
        (Some(si), Some((_, url))) => Some(Arc::new(crate::signin::SignIn::new(si.clone(), url)?)),
        _ => None,
    };
    let search = Search::open(&config.search_dir, store.last_seq())?;
    let identity = Identity::new(&key)?;
    let node = Arc::new(Node::new(
        config,
        key,
        identity,
        (store, writer),
        search,
        local,
    )?);
    // A key that handed over signs nothing anyone accepts: starting with it
    // would look fine and be useless.
    if let Some((successor, _)) = node.trust().successor(&node.public_key()) {
        return Err(StartError::HandedOver {
            path: config.key_file.clone(),
            key: node.public_key(),
            successor,
        });
    }
    ingest_organisation(&node, &config.dir.join(ORGANISATION_ENVELOPE))?;
    node.hold_if_restored();
    Ok(Started {
        node,
        grpc,
        http,
        admin,
        admin_path,
        portal: config.portal.clone(),
        signin,
        metrics,
    })
}

/// The metrics' bearer token: alone in a file only its owner may read.
fn read_token(path: &Path) -> Result<String, StartError> {
    let bad = |problem: String| StartError::MetricsToken {
        path: path.to_path_buf(),
        problem,
    };
    let token = crate::secret::read(path).map_err(bad)?;
    if token.len() < 16 {
        return Err(bad(
            "holds no token of 16 characters or more: write one (e.g. `openssl rand -hex 32`)"
                .into(),
        ));
    }
    Ok(token)
}

/// Stores the organisation's own signed record, written by `maillage init`.
fn ingest_organisation(node: &Node, path: &Path) -> Result<(), StartError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(StartError::Organisation {
                path: path.into(),
                problem: e.to_string(),
            });
        }
    };
    let bad = |problem: String| StartError::Organisation {
        path: path.into(),
        problem,
    };
    let rec = envelope::verify_bytes(&bytes).map_err(|e| bad(e.to_string()))?;
    if rec.author() != node.public_key() {
        return Err(bad(format!(
            "signed by {}, not by this node's key {}",
            rec.author(),
            node.public_key()
        )));
    }
    match node.ledger().insert(&rec, Admission::KeepHistory) {
        Ok(ins) => {
            tracing::info!(id = %ins.id, "stored the organisation's own record");
            Ok(())
        }
        Err(StoreError::Duplicate(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Serves the gRPC port (TLS) and the admin socket, and replicates with the
/// pinned peers, until `shutdown` resolves; then ends live streams and lets
/// in-flight calls finish.
/// The largest message the admin socket takes (an Import batch).
pub const ADMIN_MESSAGE_BYTES: usize = 16 << 20;

pub async fn run(started: Started, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    let Started {
        node,
        grpc,
        http,
        admin,
        admin_path,
        portal,
        signin,
        metrics,
    } = started;
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<CatalogueServer<CatalogueService>>()
        .await;
    health_reporter
        .set_serving::<PublishServer<PublishService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(maillage_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("descriptor sets embedded at build time are valid");

    let replicator = Replicator::start(node.clone());
    crate::harvest::Harvests::spawn(&node);
    // A peer re-pinned along a succession (or un-revoked) gets its link
    // back: `run_link` ends for a revoked key.
    let relinking = (node.clone(), replicator.clone());
    tokio::spawn(async move {
        let (node, replicator) = relinking;
        let mut repinned = node.repinned();
        let mut stopping = node.stopping();
        loop {
            tokio::select! {
                changed = repinned.changed() => if changed.is_err() { return },
                _ = stopping.wait_for(|s| *s) => return,
            }
            for peer in node.peers().list() {
                replicator.restart(&peer.name);
            }
        }
    });
    let indexer = node.indexer().spawn();
    // Trust stored but not yet applied to the quarantine (the node stopped
    // in between) is applied now.
    let releasing = node.clone();
    tokio::task::spawn_blocking(
        move || match releasing.ledger().release().map(|r| r.total()) {
            Ok(0) => {}
            Ok(released) => tracing::info!(
                released,
                "released quarantined records trusted since they came"
            ),
            Err(e) => {
                tracing::error!(error = %e, "could not look through the quarantine; records trusted since they came wait until the next membership or root")
            }
        },
    );
    // What waited in quarantine past its expiry is dropped, at start and
    // every hour.
    let expiring = node.clone();
    tokio::spawn(async move {
        let mut stopping = expiring.stopping();
        loop {
            let n = expiring.clone();
            let expired = tokio::task::spawn_blocking(move || n.ledger().expire_quarantine()).await;
            if let Ok(Err(e)) = expired {
                tracing::error!(error = %e, "could not drop expired quarantined records; tried again in an hour");
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
                _ = stopping.wait_for(|s| *s) => return,
            }
        }
    });
    // Pins and roots follow successions and revocations: at start, and
    // whenever one becomes current.
    let following = node.clone();
    tokio::spawn(async move {
        let mut events = following.ledger().key_events();
        let mut stopping = following.stopping();
        loop {
            let n = following.clone();
            let followed = tokio::task::spawn_blocking(move || n.follow_keys()).await;
            if let Ok(Err(e)) = followed {
                tracing::error!(error = %e, "could not move pins and roots along a key succession or revocation; tried again at the next one");
            }
            tokio::select! {
                changed = events.changed() => if changed.is_err() { return },
                _ = stopping.wait_for(|s| *s) => return,
            }
        }
    });
    let acceptor = tls::acceptor(node.identity(), node.pinned_keys())?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let stop_rx_http = stop_rx.clone();
    let stopped = |mut rx: tokio::sync::watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };

    let public = Server::builder()
        .initial_stream_window_size(tls::STREAM_WINDOW)
        .initial_connection_window_size(tls::CONNECTION_WINDOW)
        // One connection cannot open thousands of calls at once, and a
        // peer that vanished is noticed.
        .max_concurrent_streams(tls::MAX_STREAMS_PER_CONNECTION)
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        // Calls counted on their connection: an idle one can be closed.
        .layer(crate::accept::Track)
        .layer(crate::metrics::TimeGrpc(node.metrics().clone()))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static(VERSION_HEADER),
            HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
        ))
        .add_service(health.clone())
        .add_service(reflection)
        .add_service(CatalogueServer::new(CatalogueService::new(
            node.clone(),
            Port::Public,
        )))
        .add_service(PublishServer::new(PublishService::new(node.clone())))
        .add_service(
            ReplicationServer::new(ReplicationService::new(node.clone(), replicator.clone()))
                .max_decoding_message_size(16 << 20)
                .max_encoding_message_size(16 << 20),
        )
        .serve_with_incoming_shutdown(
            crate::accept::incoming(grpc, acceptor, node.refusals().clone()),
            stopped(stop_rx.clone()),
        );
    let operator = Server::builder()
        .layer(crate::metrics::TimeGrpc(node.metrics().clone()))
        .add_service(health)
        .add_service(CatalogueServer::new(CatalogueService::new(
            node.clone(),
            Port::Admin,
        )))
        .add_service(PublishServer::new(PublishService::new(node.clone())))
        // The operator's imports come in batches of up to 1,000 drafts:
        // room for rich rows (the CLI keeps a batch under 8 MiB).
        .add_service(
            AdminServer::new(AdminService::new(node.clone(), replicator.clone()))
                .max_decoding_message_size(ADMIN_MESSAGE_BYTES),
        )
        .serve_with_incoming_shutdown(UnixListenerStream::new(admin), stopped(stop_rx));

    tracing::info!(
        grpc = %node.grpc_listen(),
        admin = %admin_path.display(),
        key = %node.public_key(),
        siren = %node.siren(),
        "node serving"
    );
    let export = http.map(|(listener, url)| {
        tracing::info!(url = %url, "public DCAT-AP export serving");
        tokio::spawn(crate::http::serve(
            listener,
            node.clone(),
            url,
            portal.clone(),
            signin.clone(),
            stopped(stop_rx_http.clone()),
        ))
    });
    let probes = metrics.map(|(listener, token)| {
        tracing::info!(addr = ?listener.local_addr().ok(), "metrics and probes serving");
        tokio::spawn(crate::metrics::serve(
            listener,
            node.clone(),
            token,
            stopped(stop_rx_http.clone()),
        ))
    });
    if let Some(b) = node.snapshots().cloned() {
        tracing::info!(dir = %b.dir.display(), every = %humantime::format_duration(b.interval), keep = b.keep, "automatic snapshots");
        tokio::spawn(crate::backup::snapshots_forever(node.clone(), b));
    }
    tokio::spawn(report_health(node.clone(), health_reporter));
    let public = tokio::spawn(public);
    let operator = tokio::spawn(operator);
    crate::systemd::notify("READY=1");
    shutdown.await;
    crate::systemd::notify("STOPPING=1");
    tracing::info!("shutting down");
    node.stop();
    replicator.shutdown();
    let _ = stop_tx.send(());
    let (a, b) = (public.await, operator.await);
    if let Some(export) = export {
        let _ = export.await;
    }
    if let Some(probes) = probes {
        let _ = probes.await;
    }
    let _ = std::fs::remove_file(&admin_path);
    // The indexer commits what it holds on its way out.
    let _ = tokio::task::spawn_blocking(move || indexer.join()).await;
    a.expect("public server task")?;
    b.expect("admin server task")?;
    Ok(())
}

/// Keeps the gRPC health service true, and pings systemd's watchdog, every
/// few seconds until the node stops: "" (the node as a whole), Catalogue
/// and Publish serve when the node is ready (`metrics::Health::ready`);
/// Replication when a peer answers (or there is none). The watchdog is
/// pinged only while the store answers: a node whose store or runtime is
/// stuck is restarted by systemd.
async fn report_health(node: Arc<Node>, reporter: tonic_health::server::HealthReporter) {
    use tonic_health::ServingStatus;
    let watchdog = crate::systemd::watchdog_interval();
    let every = watchdog
        .unwrap_or(std::time::Duration::from_secs(5))
        .min(std::time::Duration::from_secs(5));
    let mut stopping = node.stopping();
    let mut said = String::new();
    loop {
        let n = node.clone();
        if let Ok(health) =
            tokio::task::spawn_blocking(move || crate::metrics::Health::of(&n)).await
        {
            let status = |ok: bool| {
                if ok {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                }
            };
            let ready = status(health.ready());
            reporter.set_service_status("", ready).await;
            reporter
                .set_service_status(
                    <CatalogueServer<CatalogueService> as tonic::server::NamedService>::NAME,
                    ready,
                )
                .await;
            reporter
                .set_service_status(
                    <PublishServer<PublishService> as tonic::server::NamedService>::NAME,
                    ready,
                )
                .await;
            reporter
                .set_service_status(
                    <ReplicationServer<ReplicationService> as tonic::server::NamedService>::NAME,
                    status(health.replicating()),
                )
                .await;
            if health.live() && watchdog.is_some() {
                crate::systemd::notify("WATCHDOG=1");
            }
            let line = health.describe().replace('\n', "; ");
            if line != said {
                crate::systemd::notify(&format!("STATUS={line}"));
                said = line;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
    }
}
