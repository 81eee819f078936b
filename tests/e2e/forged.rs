//! A malicious peer: a real node pins it and trusts its key, and it serves a
//! forged envelope (a genuine signature over a payload altered afterwards)
//! through reconciliation, fetch and announcements. The forged record must be
//! refused, never stored, never relayed.
//!
//! The malicious peer runs in this process on real mutual TLS (the node's own
//! `tls` module, with its own key), since no honest node would serve it.

use std::sync::Arc;
use std::time::Duration;

use maillage_node::testkit::tls;
use maillage_proto::v1 as pb;
use maillage_proto::v1::replication_server::{Replication, ReplicationServer};
use maillage_record::{Body, PublicKey, Record, SigningKey, Visibility, envelope};
use negentropy::{Id, Negentropy, NegentropyStorageVector};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::support::{cli, cli_json, eventually, init, start};

struct Evil {
    forged: pb::Envelope,
    forged_id: [u8; 32],
    /// A valid record of its own, never announced nor asked for, slipped
    /// into every Fetch answer.
    stray: pb::Envelope,
}

type Out<T> = ReceiverStream<Result<T, Status>>;

#[tonic::async_trait]
impl Replication for Evil {
    type ReconcileStream = Out<pb::ReconcileFrame>;
    type FetchStream = Out<pb::FetchBatch>;
    type SubscribeStream = Out<pb::Announcement>;

    async fn reconcile(
        &self,
        request: Request<Streaming<pb::ReconcileFrame>>,
    ) -> Result<Response<Self::ReconcileStream>, Status> {
        let mut frames = request.into_inner();
        let mut storage = NegentropyStorageVector::new();
        storage
            .insert(1_764_000_000_000, Id::from_byte_array(self.forged_id))
            .unwrap();
        storage.seal().unwrap();
        let mut neg = Negentropy::owned(storage, 0).unwrap();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            while let Ok(Some(f)) = frames.message().await {
                let answer = neg.reconcile(&f.negentropy).unwrap();
                if tx
                    .send(Ok(pb::ReconcileFrame { negentropy: answer }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn fetch(
        &self,
        _: Request<pb::FetchRequest>,
    ) -> Result<Response<Self::FetchStream>, Status> {
        let (tx, rx) = mpsc::channel(1);
        tx.send(Ok(pb::FetchBatch {
            envelopes: vec![self.forged.clone(), self.stray.clone(), self.stray.clone()],
            first_seen_ms: vec![],
        }))
        .await
        .unwrap();
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn subscribe(
        &self,
        _: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let (tx, rx) = mpsc::channel(1);
        let id = self.forged_id.to_vec();
        tokio::spawn(async move {
            let _ = tx
                .send(Ok(pb::Announcement {
                    ids: vec![id],
                    lagged: false,
                }))
                .await;
            tx.closed().await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// A peer that accepts every call and never answers: its streams stay open,
/// silent.
struct Hang;

#[tonic::async_trait]
impl Replication for Hang {
    type ReconcileStream = Out<pb::ReconcileFrame>;
    type FetchStream = Out<pb::FetchBatch>;
    type SubscribeStream = Out<pb::Announcement>;

    async fn reconcile(
        &self,
        request: Request<Streaming<pb::ReconcileFrame>>,
    ) -> Result<Response<Self::ReconcileStream>, Status> {
        Ok(Response::new(silent(request.into_inner())))
    }

    async fn fetch(
        &self,
        _: Request<pb::FetchRequest>,
    ) -> Result<Response<Self::FetchStream>, Status> {
        Ok(Response::new(silent(())))
    }

    async fn subscribe(
        &self,
        _: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        Ok(Response::new(silent(())))
    }
}

/// A stream that never yields, holding `keep` (the caller's frames, read by
/// no one) until the caller gives up.
fn silent<T: Send + 'static, K: Send + 'static>(keep: K) -> Out<T> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        tx.closed().await;
        drop(keep);
    });
    ReceiverStream::new(rx)
}

/// A peer's TLS server on 127.0.0.1 serving `service` under `key`, pinning
/// `pinned`; its address.
fn evil_server<S>(
    rt: &tokio::runtime::Runtime,
    key: &SigningKey,
    pinned: PublicKey,
    service: S,
) -> std::net::SocketAddr
where
    S: Replication,
{
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let identity = tls::Identity::new(key).unwrap();
        let pinned: tls::PinnedKeys = Arc::new(std::sync::RwLock::new([pinned].into()));
        let acceptor = tls::acceptor(&identity, pinned).unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ReplicationServer::new(service))
                .serve_with_incoming(tls::incoming(listener, acceptor, Default::default())),
        );
        addr
    })
}

/// A peer that answers nothing holds up no one: the node syncs with its
/// other peers and answers its clients meanwhile, and the sync with the
/// silent peer ends, with an error that says why.
#[test]
fn a_peer_that_hangs_holds_up_no_one() {
    let fed = linked_pair();
    let (a, b) = (&fed.dirs[0], &fed.dirs[1]);
    let a_key = PublicKey::parse_hex(
        cli_json(a, &["status", "--json"])["public_key"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hang_key = SigningKey::from_bytes(&[43; 32]);
    let hang_pub = PublicKey(hang_key.verifying_key().to_bytes());
    let addr = evil_server(&rt, &hang_key, a_key, Hang);
    let url = format!("https://{addr}");
    let out = cli(
        a,
        &[
            "peer",
            "add",
            "silencieux",
            &url,
            "--key",
            &hang_pub.to_hex(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::scope(|s| {
        let stuck = s.spawn(|| {
            let began = std::time::Instant::now();
            let out = cli(a, &["sync", "silencieux"]);
            (out, began.elapsed())
        });
        std::thread::sleep(Duration::from_millis(500));
        // Meanwhile: another peer's records come, and clients are answered.
        let doc = crate::support::write_doc(
            b,
            "pendant.json",
            serde_json::json!({
                "kind": "dataset",
                "record_id": "pendant-le-silence",
                "title": "Publié pendant le silence",
                "description": "Un essai.",
                "visibility": "public",
            }),
        );
        let id = crate::support::publish(b, &doc);
        let began = std::time::Instant::now();
        let out = cli_json(a, &["sync", "--json", "b"]);
        assert_eq!(out[0]["ok"], true, "{out}");
        assert!(crate::support::has(a, &id));
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "{:?}",
            began.elapsed()
        );
        assert!(cli(a, &["status"]).status.success());
        assert!(!stuck.is_finished(), "the silent peer is still waited for");
        // The silent peer is given up, and the operator told why.
        let (out, took) = stuck.join().unwrap();
        assert!(!out.status.success());
        let said = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(said.contains("silencieux"), "{said}");
        assert!(took < Duration::from_secs(100), "{took:?}");
    });
}

fn forged_envelope(key: &SigningKey) -> pb::Envelope {
    let record = Record {
        record_id: "faux-budget".into(),
        version: 1,
        issued_at_ms: 1_764_000_000_000,
        visibility: Visibility::Public,
        provenance: None,
        body: Body::Dataset(maillage_record::model::Dataset::new(
            "Budget primitif",
            "Le budget voté",
        )),
    };
    let mut env = envelope::sign(key, &record).unwrap().to_proto();
    // Altered after signing: "Budget" becomes "Budgex".
    let at = env.payload.windows(6).position(|w| w == b"Budget").unwrap();
    env.payload[at + 5] = b'x';
    env
}

#[test]
fn a_forged_record_from_a_peer_is_refused_and_not_relayed() {
    let t = tempfile::tempdir().unwrap();
    let (victim, third) = (t.path().join("victim"), t.path().join("third"));
    init(&victim, "243100518", "Toulouse Métropole");
    init(&third, "213105554", "Toulouse");
    let _v = start(&victim);
    let _t = start(&third);
    let status = cli_json(&victim, &["status", "--json"]);
    let victim_key = PublicKey::parse_hex(status["public_key"].as_str().unwrap()).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let evil_key = SigningKey::from_bytes(&[42; 32]);
    let evil_pub = PublicKey(evil_key.verifying_key().to_bytes());
    let forged = forged_envelope(&evil_key);
    let forged_id = envelope::record_id(&forged.payload, &forged.author, &forged.signature).0;
    let stray = envelope::sign(
        &evil_key,
        &Record {
            record_id: "passager-clandestin".into(),
            version: 1,
            issued_at_ms: 1_764_000_000_000,
            visibility: Visibility::Public,
            provenance: None,
            body: Body::Dataset(maillage_record::model::Dataset::new(
                "Jamais demandé",
                "Glissé dans une réponse",
            )),
        },
    )
    .unwrap();
    let evil = Evil {
        forged,
        forged_id,
        stray: stray.to_proto(),
    };
    let addr = evil_server(&rt, &evil_key, victim_key, evil);

    // The victim pins and even trusts the evil key: the signature still decides.
    let key_hex = evil_pub.to_hex();
    assert!(
        cli(&victim, &["trust", "add-root", &key_hex])
            .status
            .success()
    );
    let out = cli(
        &victim,
        &[
            "peer",
            "add",
            "evil",
            &format!("https://{addr}"),
            "--key",
            &key_hex,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A third node follows the victim: it must not receive the forged record either.
    let url = format!("https://{}", status["grpc_listen"].as_str().unwrap());
    let third_key = cli_json(&third, &["status", "--json"])["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        cli(
            &third,
            &[
                "peer",
                "add",
                "victim",
                &url,
                "--key",
                victim_key.to_hex().as_str()
            ]
        )
        .status
        .success()
    );
    let third_url = format!(
        "https://{}",
        cli_json(&third, &["status", "--json"])["grpc_listen"]
            .as_str()
            .unwrap()
    );
    assert!(
        cli(
            &victim,
            &["peer", "add", "third", &third_url, "--key", &third_key]
        )
        .status
        .success()
    );
    assert!(
        cli(&third, &["trust", "add-root", &key_hex])
            .status
            .success()
    );

    // The evil peer announces its record as soon as the victim subscribes; the
    // victim fetches it, refuses it and says so, naming the peer.
    eventually(
        Duration::from_secs(10),
        "the refusal is logged with the peer's name",
        || {
            let log = std::fs::read_to_string(victim.with_extension("log")).unwrap_or_default();
            log.contains("refused a record from a peer") && log.contains("evil")
        },
    );
    let id = hex::encode(forged_id);
    assert!(
        !cli(&victim, &["get", &id]).status.success(),
        "forged record stored"
    );
    // Reconciliation still sees the id on the evil side, but does not fetch a
    // record it refused lately, and stores nothing.
    let sync = cli_json(&victim, &["sync", "--json", "evil"]);
    assert_eq!(sync[0]["ok"], true, "{sync}");
    assert_eq!(sync[0]["need"], 1, "{sync}");
    assert_eq!(sync[0]["stored"], 0, "{sync}");
    assert!(
        !cli(&victim, &["get", &id]).status.success(),
        "forged record stored"
    );
    // The valid record slipped into the answers, never asked for, is not
    // taken either.
    let strays = cli_json(&victim, &["list", "--json", "--author", &key_hex]);
    assert_eq!(
        strays.as_array().unwrap().len(),
        0,
        "a record nobody asked for was stored: {strays}"
    );
    // The third node syncs with the victim: nothing forged to relay.
    let sync = cli_json(&third, &["sync", "--json", "victim"]);
    assert_eq!(sync[0]["ok"], true, "{sync}");
    assert!(
        !cli(&third, &["get", &id]).status.success(),
        "forged record relayed"
    );
    drop(rt);
}

/// A pinned peer that sends reconciliation frames too large: refused with
/// a status that says so, never an empty answer ending as if all were well.
#[test]
fn oversized_reconciliation_frames_are_refused_and_said_so() {
    use maillage_proto::v1::replication_client::ReplicationClient;
    let t = tempfile::tempdir().unwrap();
    let node = t.path().join("node");
    init(&node, "243100518", "Toulouse Métropole");
    let _n = start(&node);
    let status = cli_json(&node, &["status", "--json"]);
    let node_key = PublicKey::parse_hex(status["public_key"].as_str().unwrap()).unwrap();
    let url = format!("https://{}", status["grpc_listen"].as_str().unwrap());
    let evil_key = SigningKey::from_bytes(&[43; 32]);
    let evil_pub = PublicKey(evil_key.verifying_key().to_bytes()).to_hex();
    let out = cli(
        &node,
        &[
            "peer",
            "add",
            "evil",
            "https://127.0.0.1:9",
            "--key",
            &evil_pub,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let send = |size: usize| -> tonic::Status {
        rt.block_on(async {
            let identity = tls::Identity::new(&evil_key).unwrap();
            let channel = tls::channel(&url, &identity, node_key, Arc::default()).unwrap();
            let mut client = ReplicationClient::new(channel)
                .max_encoding_message_size(64 << 20)
                .max_decoding_message_size(64 << 20);
            let frames = tokio_stream::iter(vec![pb::ReconcileFrame {
                negentropy: vec![0x61; size],
            }]);
            let mut answers = match client.reconcile(frames).await {
                Ok(r) => r.into_inner(),
                Err(status) => return status,
            };
            match answers.message().await {
                Err(status) => status,
                Ok(answer) => panic!("a {size}-byte frame got {answer:?}, not a refusal"),
            }
        })
    };
    // Over the protocol's frame limit (512 KiB, with room for framing).
    let big = send(2 << 20);
    assert_eq!(big.code(), tonic::Code::InvalidArgument, "{big:?}");
    assert!(big.message().contains("at most"), "{big:?}");
    // Over gRPC's message limit: said too, not an empty success.
    let huge = send(17 << 20);
    assert_ne!(huge.code(), tonic::Code::Ok, "{huge:?}");
    drop(rt);
    // Both counted, for the operator to see.
    let refused = &cli_json(&node, &["status", "--json"])["refusals"];
    assert_eq!(refused["reconcile_frame"], 2, "{refused}");
}

/// A client that opens an HTTP connection and never finishes its request
/// (slowloris) does not hold it for ever.
#[test]
fn a_slow_http_client_is_cut_off() {
    use std::io::{Read, Write};
    let t = tempfile::tempdir().unwrap();
    let node = t.path().join("node");
    init(&node, "243100518", "Toulouse Métropole");
    let http = crate::support::enable_http(&node);
    let _n = start(&node);
    let mut s = std::net::TcpStream::connect(&http).unwrap();
    s.write_all(b"GET /search?q=budget HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = s.read_to_end(&mut buf);
    assert!(
        read.is_ok(),
        "the connection was still open after {:?}: {read:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

/// One address cannot hold every connection of the TLS port: past its
/// share, a new connection is closed at once, before any handshake.
#[test]
fn one_address_gets_a_bounded_share_of_connections() {
    use std::io::Read;
    let t = tempfile::tempdir().unwrap();
    let node = t.path().join("node");
    init(&node, "243100518", "Toulouse Métropole");
    let _n = start(&node);
    let addr = cli_json(&node, &["status", "--json"])["grpc_listen"]
        .as_str()
        .unwrap()
        .to_string();
    // Connections that never start their handshake.
    let held: Vec<std::net::TcpStream> = (0..64)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = std::net::TcpStream::connect(&addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let closed = extra.read(&mut buf);
    assert!(
        matches!(closed, Ok(0))
            || closed
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "a connection past the address's share stayed open: {closed:?} after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The node still answers its operator, and counts what it refused.
    let refused = &cli_json(&node, &["status", "--json"])["refusals"];
    assert_eq!(refused["tls_connections_per_address"], 1, "{refused}");
    assert_eq!(refused["tls_connections"], 0, "{refused}");
    drop(held);
}

/// Connections that never start their handshake, from many addresses,
/// cannot keep a peer out: past 256 of them, the oldest makes room for the
/// newcomer, and the peer's sync goes through.
#[test]
fn idle_connections_cannot_keep_a_peer_out() {
    let fed = linked_pair();
    let (a, b) = (&fed.dirs[0], &fed.dirs[1]);
    let addr: std::net::SocketAddr = cli_json(b, &["status", "--json"])["grpc_listen"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // 1,100 connections, 50 from each of 22 loopback addresses: more than
    // the port's 1,024, none over an address's share.
    let held: Vec<std::net::TcpStream> = (0..1_100)
        .filter_map(|i| {
            let source = std::net::Ipv4Addr::new(127, 0, 1, 2 + (i / 50) as u8);
            socket2_connect(source, addr)
        })
        .collect();
    assert!(held.len() > 1_024, "only {} connections opened", held.len());
    let refused = &published_then_synced(a, b);
    assert!(
        refused["tls_handshake_evicted"].as_u64().unwrap() > 0,
        "{refused}"
    );
    drop(held);
}

/// Established TLS connections that say nothing, more than the port holds,
/// cannot keep a peer out: the one idle the longest is closed to make room
/// (before, the 1,025th connection was refused after its handshake, whoever
/// it was).
#[test]
fn idle_established_connections_cannot_keep_a_peer_out() {
    use tokio::io::AsyncReadExt;
    let fed = linked_pair();
    let (a, b) = (&fed.dirs[0], &fed.dirs[1]);
    let status = cli_json(b, &["status", "--json"]);
    let addr: std::net::SocketAddr = status["grpc_listen"].as_str().unwrap().parse().unwrap();
    let key = PublicKey::parse_hex(status["public_key"].as_str().unwrap()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // 1,100 handshakes, 50 from each of 22 loopback addresses: more than
    // the port's 1,024, none over an address's share.
    let mut held = rt.block_on(async {
        let mut held = Vec::new();
        for i in 0..1_100u32 {
            let source = std::net::Ipv4Addr::new(127, 0, 2, 2 + (i / 50) as u8);
            if let Ok(c) = tls::anonymous_tls(source.into(), addr, key).await {
                held.push(c);
            }
        }
        held
    });
    assert!(held.len() > 1_024, "only {} connections opened", held.len());
    let refused = &published_then_synced(a, b);
    let evicted = refused["tls_idle_evicted"].as_u64().unwrap();
    assert!(evicted >= 76, "{refused}");
    // The oldest were closed (they read the end of the stream), and only
    // they: a's own connection, idle between two syncs, may have been one.
    let closed: Vec<usize> = rt.block_on(async {
        let mut reads = tokio::task::JoinSet::new();
        for (i, mut c) in held.drain(..).enumerate() {
            reads.spawn(async move {
                // What the node sent (its HTTP/2 settings), then the end.
                let mut sent = Vec::new();
                let read = tokio::time::timeout(Duration::from_secs(2), c.read_to_end(&mut sent));
                (i, read.await.is_ok())
            });
        }
        let mut closed = Vec::new();
        while let Some(r) = reads.join_next().await {
            if let (i, true) = r.unwrap() {
                closed.push(i);
            }
        }
        closed.sort();
        closed
    });
    let evicted = evicted as usize;
    assert!(
        closed.len() + 2 >= evicted && closed.len() <= evicted,
        "{closed:?} of {evicted}"
    );
    assert!(closed.iter().all(|i| *i < evicted), "{closed:?}");
}

/// Two nodes of a federation, a and b, pinned on each other, a trusting b.
fn linked_pair() -> crate::support::Fed {
    let fed = crate::support::federation(&[
        ("243100518", "Toulouse Métropole"),
        ("213101496", "Colomiers"),
    ]);
    let (a, b) = (&fed.dirs[0], &fed.dirs[1]);
    crate::support::peer(a, "b", b);
    crate::support::peer(b, "a", a);
    crate::support::trust(a, b);
    fed
}

/// b publishes a record, a syncs with b and gets it (whatever b's ports
/// are holding); b's refusal counters after.
fn published_then_synced(a: &std::path::Path, b: &std::path::Path) -> serde_json::Value {
    let doc = crate::support::write_doc(
        b,
        "pendant.json",
        serde_json::json!({
            "kind": "dataset",
            "record_id": "pendant-la-saturation",
            "title": "Publié pendant la saturation",
            "description": "Un essai.",
            "visibility": "public",
        }),
    );
    let id = crate::support::publish(b, &doc);
    let out = cli_json(a, &["sync", "--json", "b"]);
    assert_eq!(out[0]["ok"], true, "{out}");
    assert!(crate::support::has(a, &id));
    cli_json(b, &["status", "--json"])["refusals"].clone()
}

/// A TCP connection from `source` (a loopback address) to `to` (std cannot
/// bind before connecting; tokio's socket can).
fn socket2_connect(
    source: std::net::Ipv4Addr,
    to: std::net::SocketAddr,
) -> Option<std::net::TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().ok()?;
        socket.bind((source, 0).into()).ok()?;
        let stream = socket.connect(to).await.ok()?;
        stream.into_std().ok()
    })
}

/// Idle HTTP connections, more than the interface holds, cannot keep a
/// searcher out: the one idle the longest makes room.
#[test]
fn idle_http_connections_cannot_keep_a_searcher_out() {
    let t = tempfile::tempdir().unwrap();
    let node = t.path().join("node");
    init(&node, "243100518", "Toulouse Métropole");
    let http = crate::support::enable_http(&node);
    let _n = start(&node);
    let held: Vec<std::net::TcpStream> = (0..600)
        .filter_map(|_| std::net::TcpStream::connect(&http).ok())
        .collect();
    assert_eq!(held.len(), 600);
    std::thread::sleep(Duration::from_millis(300));
    let (status, body) = crate::support::http_get(&http, "/search?q=budget");
    assert_eq!(status, 200, "{body}");
    let refused = &cli_json(&node, &["status", "--json"])["refusals"];
    assert!(
        refused["http_idle_evicted"].as_u64().unwrap() > 0,
        "{refused}"
    );
    drop(held);
}

/// The operator's services (HarvestNow among them, which makes the node
/// fetch) are on the owner-only admin socket, never on the TLS port: an
/// anonymous client there is told the service does not exist.
#[test]
fn the_admin_service_is_not_on_the_tls_port() {
    use maillage_proto::v1::HarvestNowRequest;
    use maillage_proto::v1::admin_client::AdminClient;
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let node = t.path().join("node");
    init(&node, "243100518", "Toulouse Métropole");
    let _n = start(&node);
    let status = cli_json(&node, &["status", "--json"]);
    let key = PublicKey::parse_hex(status["public_key"].as_str().unwrap()).unwrap();
    let url = format!("https://{}", status["grpc_listen"].as_str().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let code = rt.block_on(async {
        let mut admin = AdminClient::new(tls::anonymous_channel(&url, key).unwrap());
        admin
            .harvest_now(HarvestNowRequest {
                name: "data.gouv.fr".into(),
            })
            .await
            .unwrap_err()
            .code()
    });
    assert_eq!(code, tonic::Code::Unimplemented);
    let socket = node.join("admin.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", socket.display());
}
