//! Mutual TLS with pinned keys, as Syncthing does it: a node's TLS identity is
//! a self-signed certificate made from its organisation key, and each side
//! accepts exactly the ed25519 keys its operator pinned. There is no
//! certificate authority, no hostname check and no expiry to manage: the key
//! *is* the identity, the same one that signs the organisation's records.
//!
//! The server offers client authentication but does not demand it, so an
//! anonymous client may still read the public catalogue; a client that
//! presents a key must present a pinned one, or the handshake fails. Services
//! learn who called from the `PeerInfo` attached to each request
//! (`accept.rs`, which also bounds the port's connections).

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
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tonic::transport::{Channel, Endpoint, Uri};

/// HTTP/2 flow-control windows for replication connections, both ways.
pub const STREAM_WINDOW: u32 = 4 << 20;
pub const CONNECTION_WINDOW: u32 = 8 << 20;

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

/// A TLS connection to the node at `to` from the local address `source`,
/// as an anonymous client that says nothing once connected: what a client
/// holding places on the TLS port looks like.
#[cfg(feature = "testkit")]
pub async fn anonymous_tls(
    source: std::net::IpAddr,
    to: std::net::SocketAddr,
    expected: PublicKey,
) -> std::io::Result<impl AsyncRead + AsyncWrite + Unpin + Send> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(std::io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer { expected }))
        .with_no_client_auth();
    let socket = match source {
        std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind((source, 0).into())?;
    let tcp = socket.connect(to).await?;
    let name = ServerName::try_from("maillage").expect("valid DNS name");
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
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
