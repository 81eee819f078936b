//! Mutual TLS with pinned keys, as Syncthing does it: a node's TLS identity is
//! a self-signed certificate made from its organisation key, and each side
//! accepts exactly the ed25519 keys its operator pinned. There is no
//! certificate authority, no hostname check and no expiry to manage: the key
//! *is* the identity, the same one that signs the organisation's records.
//!
//! The server offers client authentication but does not demand it, so an
//! anonymous client may still read the public catalogue; a client that
//! presents a key must present a pinned one, or the handshake fails. Services
//! learn who called from the `PeerInfo` attached to each request.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use ed25519_dalek::{Signature, VerifyingKey};
use hyper_util::rt::TokioIo;
use maillage_record::{PublicKey, SigningKey};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tonic::transport::server::Connected;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::refusals::{Refusal, Refusals};

/// HTTP/2 flow-control windows for replication connections, both ways.
pub const STREAM_WINDOW: u32 = 4 << 20;
pub const CONNECTION_WINDOW: u32 = 8 << 20;

/// A TLS handshake that takes longer than this is dropped, so a client that
/// connects and says nothing cannot hold a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Established connections open at once on the TLS port; more are closed
/// after their handshake (each holds a file descriptor, which RocksDB needs).
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections in their TLS handshake at once; past it, the oldest is
/// closed to make room (see `incoming`).
pub const MAX_HANDSHAKING: usize = 256;
/// Connections open at once from one address: one client cannot take them
/// all.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 64;
/// Calls open at once on one connection.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 64;

/// The keys allowed to connect, shared with the peer table (`peer add` and
/// `peer remove` take effect on the next handshake).
pub type PinnedKeys = Arc<RwLock<HashSet<PublicKey>>>;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make the TLS certificate from the organisation key: {0}")]
    Certificate(String),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("peer address '{0}' is not https://host:port")]
    Url(String),
    #[error("cannot reach {url}: {source}")]
    Connect {
        url: String,
        source: tonic::transport::Error,
    },
}

/// The node's TLS identity: a certificate and key made from the organisation key.
#[derive(Clone)]
pub struct Identity {
    cert: CertificateDer<'static>,
    pkcs8: Vec<u8>,
}

impl Identity {
    pub fn new(key: &SigningKey) -> Result<Identity, TlsError> {
        // PKCS#8 v1 for Ed25519 (RFC 8410): a fixed prefix, then the 32-byte seed.
        let mut pkcs8 = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        pkcs8.extend_from_slice(&key.to_bytes());
        let bad = |e: rcgen::Error| TlsError::Certificate(e.to_string());
        let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(pkcs8.clone()),
            &rcgen::PKCS_ED25519,
        )
        .map_err(bad)?;
        let public = PublicKey(key.verifying_key().to_bytes());
        let mut params =
            rcgen::CertificateParams::new(vec!["maillage".to_string()]).map_err(bad)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("maillage {public}"));
        // Validity is not checked by either side (the pinned key is what counts);
        // a wide window keeps other TLS tools from complaining.
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2100, 1, 1);
        let cert = params.self_signed(&key_pair).map_err(bad)?;
        Ok(Identity {
            cert: cert.der().clone(),
            pkcs8,
        })
    }

    fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.clone()))
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server side: our certificate, and clients with a pinned key or none.
pub fn acceptor(identity: &Identity, pinned: PinnedKeys) -> Result<TlsAcceptor, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(PinnedClients { pinned }))
        .with_single_cert(vec![identity.cert.clone()], identity.key_der())?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The client side: our certificate, and a server that must hold `expected`.
pub fn connector(identity: &Identity, expected: PublicKey) -> Result<TlsConnector, TlsError> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer { expected }))
        .with_client_auth_cert(vec![identity.cert.clone()], identity.key_der())?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The `host:port` of a peer address `https://host:port` (a trailing `/`
/// allowed), if it is one.
pub fn authority(url: &str) -> Option<&str> {
    let authority = url.strip_prefix("https://")?.trim_end_matches('/');
    let (host, port) = authority.rsplit_once(':')?;
    let valid =
        !host.is_empty() && !authority.contains('/') && port.parse::<u16>().is_ok_and(|p| p > 0);
    valid.then_some(authority)
}

/// Bytes a channel moved on its TCP connections, TLS included: what a network
/// operator would see.
#[derive(Debug, Default)]
pub struct WireCounters {
    pub sent: std::sync::atomic::AtomicU64,
    pub received: std::sync::atomic::AtomicU64,
}

impl WireCounters {
    pub fn total(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        self.sent.load(Relaxed) + self.received.load(Relaxed)
    }
}

/// A TCP stream that counts its bytes into `WireCounters`.
struct Counted {
    inner: TcpStream,
    counters: Arc<WireCounters>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.counters
            .received
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.counters
                .sent
                .fetch_add(*n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Opens a gRPC channel to a peer at `url` (https://host:port) over mutual TLS,
/// accepting only a server holding `expected`. The channel connects lazily
/// and reconnects by itself; calls fail if the peer refuses our key. Its
/// traffic is counted into `counters`.
pub fn channel(
    url: &str,
    identity: &Identity,
    expected: PublicKey,
    counters: Arc<WireCounters>,
) -> Result<Channel, TlsError> {
    channel_with(url, connector(identity, expected)?, counters)
}

/// A channel to the node at `url` as an anonymous client (no certificate:
/// public records only), accepting only a server holding `expected`.
#[cfg_attr(not(feature = "testkit"), allow(dead_code))]
pub fn anonymous_channel(url: &str, expected: PublicKey) -> Result<Channel, TlsError> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer { expected }))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    channel_with(url, TlsConnector::from(Arc::new(config)), Arc::default())
}

fn channel_with(
    url: &str,
    tls: TlsConnector,
    counters: Arc<WireCounters>,
) -> Result<Channel, TlsError> {
    let authority = authority(url)
        .ok_or_else(|| TlsError::Url(url.to_string()))?
        .to_string();
    // The connector does TLS itself: tonic sees a plain stream, hence http://.
    let endpoint = Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|_| TlsError::Url(url.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
        // HTTP/2's default 64 KiB windows would stall a fetch of ~1 MiB
        // batches on window updates; these let a few batches be in flight.
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW);
    Ok(
        endpoint.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let tls = tls.clone();
            let authority = authority.clone();
            let counters = counters.clone();
            async move {
                let tcp = TcpStream::connect(&authority).await?;
                tcp.set_nodelay(true)?;
                let tcp = Counted {
                    inner: tcp,
                    counters,
                };
                // No hostname is checked (PinnedServer checks the key), but SNI needs a name.
                let name = ServerName::try_from("maillage").expect("valid DNS name");
                let stream = tls.connect(name, tcp).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        })),
    )
}

/// Who is on the other end of a connection, attached to every request.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The client's pinned key; `None` for an anonymous client.
    pub key: Option<PublicKey>,
}

impl PeerInfo {
    /// The caller of a request served over `incoming`.
    pub fn of<T>(request: &tonic::Request<T>) -> Option<&PeerInfo> {
        request.extensions().get::<PeerInfo>()
    }
}

/// An accepted TLS connection, carrying its peer's identity for tonic.
pub struct TlsConn {
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    info: PeerInfo,
    /// Its place among the connections counted; given back when it closes.
    _slot: Slot,
}

/// A connection's place in the counts `incoming` keeps: overall, and per
/// address.
struct Slot {
    /// Taken once the handshake is done.
    _established: Option<tokio::sync::OwnedSemaphorePermit>,
    per_address: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    address: std::net::IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

impl Connected for TlsConn {
    type ConnectInfo = PeerInfo;
    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Accepts TCP connections and completes their TLS handshakes, each in its
/// own task so a slow client delays nobody; failed handshakes are logged and
/// dropped. The stream ends when the listener fails.
///
/// Connections still in their handshake are held apart, at most
/// `MAX_HANDSHAKING`, and the oldest makes room for a new one: clients that
/// connect and say nothing cannot keep a peer or a searcher out, they only
/// push each other out. Established connections are at most
/// `MAX_CONNECTIONS`; each address holds at most `MAX_CONNECTIONS_PER_ADDRESS`
/// of both.
pub fn incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    refusals: Arc<Refusals>,
) -> tokio_stream::wrappers::ReceiverStream<Result<TlsConn, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let established = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let per_address = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let handshaking = Arc::new(std::sync::Mutex::new(Handshaking::default()));
    tokio::spawn(async move {
        loop {
            // The server stopped (shutdown): stop accepting, release the port.
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = tx.closed() => return,
            };
            let (tcp, remote) = match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Over its address's share, closed at once, before any handshake.
            {
                let mut counts = per_address.lock().unwrap_or_else(|p| p.into_inner());
                let n = counts.entry(remote.ip()).or_insert(0);
                if *n >= MAX_CONNECTIONS_PER_ADDRESS {
                    tracing::debug!(%remote, "too many connections from one address; one closed");
                    refusals.note(Refusal::TlsConnectionsPerAddress);
                    continue;
                }
                *n += 1;
            }
            let mut slot = Slot {
                _established: None,
                per_address: per_address.clone(),
                address: remote.ip(),
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let conn_tx = tx.clone();
            let task_refusals = refusals.clone();
            let established = established.clone();
            // Held while the task is spawned and added: it cannot remove
            // itself before it is there.
            let mut pending = handshaking.lock().unwrap_or_else(|p| p.into_inner());
            pending.next += 1;
            let id = pending.next;
            let registry = handshaking.clone();
            let task = tokio::spawn(async move {
                let refusals = task_refusals;
                let done = || {
                    registry
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(id)
                };
                let shaken = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                done();
                let stream = match shaken {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::info!(%remote, error = %e, "TLS handshake refused");
                        refusals.note(Refusal::TlsHandshake);
                        return;
                    }
                    Err(_) => {
                        tracing::info!(%remote, "TLS handshake timed out");
                        refusals.note(Refusal::TlsHandshake);
                        return;
                    }
                };
                let Ok(permit) = established.try_acquire_owned() else {
                    tracing::debug!(%remote, "too many connections; one closed");
                    refusals.note(Refusal::TlsConnections);
                    return;
                };
                slot._established = Some(permit);
                let key = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .and_then(|c| key_of_certificate(c));
                let info = PeerInfo { key };
                let _ = conn_tx
                    .send(Ok(TlsConn {
                        stream,
                        info,
                        _slot: slot,
                    }))
                    .await;
            });
            // Room for this one: the oldest handshake still under way goes.
            let evicted = pending.add(id, task.abort_handle());
            drop(pending);
            if let Some(oldest) = evicted {
                oldest.abort();
                refusals.note(Refusal::TlsHandshakeEvicted);
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// The connections still in their TLS handshake, oldest first.
#[derive(Default)]
struct Handshaking {
    next: u64,
    tasks: std::collections::VecDeque<(u64, tokio::task::AbortHandle)>,
}

impl Handshaking {
    /// Adds a handshake; returns the oldest one when there are too many.
    fn add(&mut self, id: u64, task: tokio::task::AbortHandle) -> Option<tokio::task::AbortHandle> {
        self.tasks.push_back((id, task));
        (self.tasks.len() > MAX_HANDSHAKING)
            .then(|| self.tasks.pop_front().map(|(_, t)| t))
            .flatten()
    }

    fn remove(&mut self, id: u64) {
        if let Some(at) = self.tasks.iter().position(|(i, _)| *i == id) {
            self.tasks.remove(at);
        }
    }
}

/// The ed25519 key of a certificate: its SubjectPublicKeyInfo for Ed25519
/// (RFC 8410) is always these 12 bytes followed by the 32-byte key.
pub fn key_of_certificate(cert: &[u8]) -> Option<PublicKey> {
    const SPKI_PREFIX: [u8; 12] = [
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    let at = cert
        .windows(SPKI_PREFIX.len())
        .position(|w| w == SPKI_PREFIX)?;
    PublicKey::from_slice(cert.get(at + 12..at + 44)?)
}

/// Checks a TLS 1.3 handshake signature against the certificate's key: this
/// proves the other side holds the private key of the key we pinned.
fn verify_handshake(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(rustls::Error::General(
            "maillage peers sign TLS handshakes with ed25519 only".into(),
        ));
    }
    let bad = || rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature);
    let key = key_of_certificate(cert).ok_or_else(bad)?;
    let key = VerifyingKey::from_bytes(&key.0).map_err(|_| bad())?;
    let sig: [u8; 64] = dss.signature().try_into().map_err(|_| bad())?;
    key.verify_strict(message, &Signature::from_bytes(&sig))
        .map_err(|_| bad())?;
    Ok(HandshakeSignatureValid::assertion())
}

fn unknown_key() -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure)
}

/// The handshake checks both verifiers share: TLS 1.3 only, ed25519 only,
/// the signature checked against the certificate's key.
macro_rules! handshake_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::General(
                "maillage peers speak TLS 1.3 only".into(),
            ))
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_handshake(message, cert, dss)
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            vec![SignatureScheme::ED25519]
        }
    };
}

#[derive(Debug)]
struct PinnedClients {
    pinned: PinnedKeys,
}

impl ClientCertVerifier for PinnedClients {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let key = key_of_certificate(end_entity).ok_or_else(unknown_key)?;
        let pinned = self.pinned.read().unwrap_or_else(|p| p.into_inner());
        if pinned.contains(&key) {
            Ok(ClientCertVerified::assertion())
        } else {
            tracing::warn!(%key, "refused a connection from a key that is not a pinned peer");
            Err(unknown_key())
        }
    }
    handshake_checks!();
}

#[derive(Debug)]
struct PinnedServer {
    expected: PublicKey,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match key_of_certificate(end_entity) {
            Some(k) if k == self.expected => Ok(ServerCertVerified::assertion()),
            found => {
                tracing::warn!(expected = %self.expected, found = ?found, "peer presented another key than the pinned one");
                Err(unknown_key())
            }
        }
    }
    handshake_checks!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_carries_the_organisation_key() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let id = Identity::new(&key).unwrap();
        assert_eq!(
            key_of_certificate(&id.cert),
            Some(PublicKey(key.verifying_key().to_bytes()))
        );
    }
}
