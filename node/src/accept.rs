//! The TLS port's connections: accepted, shaken hands with, counted, and
//! closed when they only hold a place.
//!
//! Anyone may connect to the TLS port (anonymous callers read the public
//! catalogue), so every connection is bounded by what it costs the node: a
//! file descriptor (which RocksDB also needs), a task, memory. Three pools:
//! - connections in their handshake, at most `MAX_HANDSHAKING`, the oldest
//!   closed to make room for a new one;
//! - established connections, at most `MAX_CONNECTIONS`; when full, the one
//!   idle the longest (no call open) is closed to make room, so idle
//!   connections cannot keep a peer or a searcher out, they only push each
//!   other out;
//! - per address, at most `MAX_CONNECTIONS_PER_ADDRESS` of both.
//!
//! An established connection is closed when no call has been open on it
//! for `IDLE_ANONYMOUS` (an anonymous client) or `IDLE_PEER` (a pinned
//! peer, which syncs every minute by default), and an anonymous one when a
//! call has been open on it for `ANONYMOUS_CALL_LIMIT` (anonymous calls are
//! short: a search, a page of a list; one held open, its answer unread, only
//! holds memory). Calls are counted by `Track`, a layer of the server, for
//! as long as their answer is being sent.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use maillage_record::PublicKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tonic::codegen::http;
use tonic::transport::server::Connected;

use crate::refusals::{Refusal, Refusals};
use crate::tls::key_of_certificate;

/// A TLS handshake that takes longer than this is dropped, so a client that
/// connects and says nothing cannot hold a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Established connections open at once on the TLS port (each holds a file
/// descriptor, which RocksDB needs).
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections in their TLS handshake at once; past it, the oldest is
/// closed to make room.
pub const MAX_HANDSHAKING: usize = 256;
/// Connections open at once from one address: one client cannot take them
/// all.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 64;
/// An anonymous connection with no call open for this long is closed.
pub const IDLE_ANONYMOUS: Duration = Duration::from_secs(60);
/// A pinned peer's connection with no call open for this long is closed.
pub const IDLE_PEER: Duration = Duration::from_secs(300);
/// An anonymous connection with a call open for this long is closed.
pub const ANONYMOUS_CALL_LIMIT: Duration = Duration::from_secs(60);

/// Who is on the other end of a connection, attached to every request.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The client's pinned key; `None` for an anonymous client.
    pub key: Option<PublicKey>,
    /// The connection's calls, counted by `Track`.
    activity: Option<Arc<Activity>>,
}

impl PeerInfo {
    /// A caller whose connection is not counted (tests of a service alone).
    #[cfg(test)]
    pub fn uncounted(key: Option<PublicKey>) -> PeerInfo {
        PeerInfo {
            key,
            activity: None,
        }
    }

    /// The caller of a request served over `incoming`.
    pub fn of<T>(request: &tonic::Request<T>) -> Option<&PeerInfo> {
        request.extensions().get::<PeerInfo>()
    }
}

/// What a connection is doing: its open calls and when the last one ended;
/// shared by the connection, its calls, and the registry of established
/// connections (which may ask it to close).
#[derive(Debug)]
pub struct Activity {
    id: u64,
    anonymous: bool,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Open calls, by number, with when they began.
    calls: Vec<(u64, Instant)>,
    next_call: u64,
    /// When the last call ended (or the connection was established).
    last: Instant,
    /// Asked to close (to make room); the connection reads end of stream.
    closing: bool,
    /// Wakes the connection's reader, to close it.
    reader: Option<Waker>,
}

/// Why a connection is closed, or when to look again.
enum Verdict {
    Close(Refusal),
    Until(Instant),
}

impl Activity {
    fn new(id: u64, anonymous: bool) -> Activity {
        Activity {
            id,
            anonymous,
            state: Mutex::new(State {
                calls: Vec::new(),
                next_call: 0,
                last: Instant::now(),
                closing: false,
                reader: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A call begins; it ends when the guard is dropped.
    fn begin(self: &Arc<Self>) -> Call {
        let mut state = self.state();
        state.next_call += 1;
        let number = state.next_call;
        state.calls.push((number, Instant::now()));
        Call {
            activity: self.clone(),
            number,
        }
    }

    /// Whether the connection has no call open, and since when.
    fn idle_since(&self) -> Option<Instant> {
        let state = self.state();
        state.calls.is_empty().then_some(state.last)
    }

    /// Asks the connection to close, now.
    fn close(&self) {
        let mut state = self.state();
        state.closing = true;
        if let Some(reader) = state.reader.take() {
            reader.wake();
        }
    }

    /// Whether the connection should close at `now`, and if not, when to
    /// look again: deadlines only move later (a call begins or ends), so a
    /// look at the old deadline is never late.
    fn verdict(&self, now: Instant) -> Verdict {
        let state = self.state();
        let oldest_call = state.calls.iter().map(|(_, at)| *at).min();
        let (deadline, why) = match oldest_call {
            None if self.anonymous => (state.last + IDLE_ANONYMOUS, Refusal::TlsIdleTimeout),
            None => (state.last + IDLE_PEER, Refusal::TlsIdleTimeout),
            Some(began) if self.anonymous => {
                (began + ANONYMOUS_CALL_LIMIT, Refusal::TlsCallTimeout)
            }
            // A peer's long calls (a sync, a subscription) are its own.
            Some(_) => return Verdict::Until(now + IDLE_PEER),
        };
        if deadline <= now {
            Verdict::Close(why)
        } else {
            Verdict::Until(deadline)
        }
    }
}

/// An open call, counted until its answer is sent or dropped.
struct Call {
    activity: Arc<Activity>,
    number: u64,
}

impl Drop for Call {
    fn drop(&mut self) {
        let mut state = self.activity.state();
        state.calls.retain(|(n, _)| *n != self.number);
        state.last = Instant::now();
    }
}

/// An accepted TLS connection, carrying its peer's identity for tonic.
pub struct TlsConn {
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    info: PeerInfo,
    activity: Arc<Activity>,
    /// When to look at the connection's activity again.
    look: Pin<Box<Sleep>>,
    refusals: Arc<Refusals>,
    /// Its place among the connections counted; given back when it closes.
    _slot: Slot,
}

impl TlsConn {
    /// Whether the connection must close: asked to, or idle (or, anonymous,
    /// busy) for too long. Called from every read, which the HTTP/2 server
    /// always has pending: the reader's waker is what a close wakes.
    fn must_close(&mut self, cx: &mut Context<'_>) -> bool {
        {
            let mut state = self.activity.state();
            if state.closing {
                return true;
            }
            if !state
                .reader
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                state.reader = Some(cx.waker().clone());
            }
        }
        while self.look.as_mut().poll(cx).is_ready() {
            match self.activity.verdict(Instant::now()) {
                Verdict::Close(why) => {
                    self.refusals.note(why);
                    self.activity.state().closing = true;
                    return true;
                }
                Verdict::Until(at) => self.look.as_mut().reset(at),
            }
        }
        false
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
        if self.must_close(cx) {
            // End of stream: the HTTP/2 server closes the connection, and
            // drops its calls.
            return Poll::Ready(Ok(()));
        }
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

/// The established connections, by id.
#[derive(Default)]
struct Established {
    next: u64,
    open: HashMap<u64, Arc<Activity>>,
}

impl Established {
    /// Adds a connection, closing the one idle the longest if the pool is
    /// full; `None` (and nothing closed) if none of them is idle.
    fn add(&mut self, anonymous: bool, refusals: &Refusals) -> Option<Arc<Activity>> {
        if self.open.len() >= MAX_CONNECTIONS {
            let idlest = self
                .open
                .values()
                .filter_map(|a| a.idle_since().map(|since| (since, a.id)))
                .min()?;
            if let Some(evicted) = self.open.remove(&idlest.1) {
                evicted.close();
                refusals.note(Refusal::TlsIdleEvicted);
            }
        }
        self.next += 1;
        let activity = Arc::new(Activity::new(self.next, anonymous));
        self.open.insert(self.next, activity.clone());
        Some(activity)
    }
}

type Registry<T> = Arc<Mutex<T>>;

fn lock<T>(registry: &Registry<T>) -> std::sync::MutexGuard<'_, T> {
    registry.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connection's place in the counts `incoming` keeps: per address, and
/// among the established connections once its handshake is done.
struct Slot {
    established: Option<(u64, Registry<Established>)>,
    per_address: Registry<HashMap<IpAddr, usize>>,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((id, established)) = &self.established {
            lock(established).open.remove(id);
        }
        let mut counts = lock(&self.per_address);
        if let Some(n) = counts.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

/// Accepts TCP connections and completes their TLS handshakes, each in its
/// own task so a slow client delays nobody; failed handshakes are logged and
/// dropped. The stream ends when the listener fails. The pools and their
/// bounds are in the module's documentation.
pub fn incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    refusals: Arc<Refusals>,
) -> tokio_stream::wrappers::ReceiverStream<Result<TlsConn, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let established: Registry<Established> = Registry::default();
    let per_address: Registry<HashMap<IpAddr, usize>> = Registry::default();
    let handshaking: Registry<Handshaking> = Registry::default();
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
                let mut counts = lock(&per_address);
                let n = counts.entry(remote.ip()).or_insert(0);
                if *n >= MAX_CONNECTIONS_PER_ADDRESS {
                    tracing::debug!(%remote, "too many connections from one address; one closed");
                    refusals.note(Refusal::TlsConnectionsPerAddress);
                    continue;
                }
                *n += 1;
            }
            let mut slot = Slot {
                established: None,
                per_address: per_address.clone(),
                address: remote.ip(),
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let conn_tx = tx.clone();
            let refusals = refusals.clone();
            let established = established.clone();
            // Held while the task is spawned and added: it cannot remove
            // itself before it is there.
            let mut pending = lock(&handshaking);
            pending.next += 1;
            let id = pending.next;
            let registry = handshaking.clone();
            let task_refusals = refusals.clone();
            let task = tokio::spawn(async move {
                let refusals = task_refusals;
                let shaken = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                lock(&registry).remove(id);
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
                let key = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .and_then(|c| key_of_certificate(c));
                let Some(activity) = lock(&established).add(key.is_none(), &refusals) else {
                    tracing::debug!(%remote, "too many connections, none idle; one closed");
                    refusals.note(Refusal::TlsConnections);
                    return;
                };
                slot.established = Some((activity.id, established));
                let info = PeerInfo {
                    key,
                    activity: Some(activity.clone()),
                };
                let _ = conn_tx
                    .send(Ok(TlsConn {
                        stream,
                        info,
                        activity,
                        // Looked at once at the first read, then at its deadline.
                        look: Box::pin(tokio::time::sleep(Duration::ZERO)),
                        refusals,
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
    tasks: VecDeque<(u64, tokio::task::AbortHandle)>,
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

/// The server layer that counts calls on their connection (`Activity`):
/// from the request until its answer's last byte is sent, or the answer
/// dropped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Track;

impl<S> tower::Layer<S> for Track {
    type Service = Tracked<S>;
    fn layer(&self, inner: S) -> Tracked<S> {
        Tracked(inner)
    }
}

#[derive(Debug, Clone)]
pub struct Tracked<S>(S);

type Body = tonic::body::Body;

impl<S> tower::Service<http::Request<Body>> for Tracked<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let call = request
            .extensions()
            .get::<PeerInfo>()
            .and_then(|p| p.activity.as_ref())
            .map(|a| a.begin());
        let answer = self.0.call(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(match call {
                Some(call) => response.map(|body| {
                    Body::new(CountedBody {
                        inner: body,
                        _call: call,
                    })
                }),
                None => response,
            })
        })
    }
}

/// An answer's body, its call counted as open until it is dropped.
struct CountedBody {
    inner: Body,
    _call: Call,
}

impl http_body::Body for CountedBody {
    type Data = <Body as http_body::Body>::Data;
    type Error = <Body as http_body::Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closes(activity: &Activity, after: Duration) -> Option<Refusal> {
        let now = activity.state().last + after;
        match activity.verdict(now) {
            Verdict::Close(why) => Some(why),
            Verdict::Until(at) => {
                assert!(at > now, "a look is never in the past");
                None
            }
        }
    }

    #[test]
    fn an_idle_connection_closes_after_its_limit_and_a_call_postpones_it() {
        let anonymous = Activity::new(1, true);
        assert_eq!(closes(&anonymous, IDLE_ANONYMOUS / 2), None);
        assert_eq!(
            closes(&anonymous, IDLE_ANONYMOUS),
            Some(Refusal::TlsIdleTimeout)
        );
        let peer = Activity::new(2, false);
        assert_eq!(closes(&peer, IDLE_ANONYMOUS), None);
        assert_eq!(closes(&peer, IDLE_PEER), Some(Refusal::TlsIdleTimeout));
        // A call that ends makes the connection idle from then on.
        let anonymous = Arc::new(anonymous);
        let before = anonymous.state().last;
        std::thread::sleep(Duration::from_millis(5));
        drop(anonymous.begin());
        assert!(anonymous.state().last > before);
        assert_eq!(anonymous.idle_since(), Some(anonymous.state().last));
    }

    #[test]
    fn an_anonymous_call_is_held_open_only_so_long_a_peer_s_as_long_as_it_takes() {
        let anonymous = Arc::new(Activity::new(1, true));
        let call = anonymous.begin();
        assert_eq!(anonymous.idle_since(), None, "a call is open");
        assert_eq!(closes(&anonymous, ANONYMOUS_CALL_LIMIT / 2), None);
        assert_eq!(
            closes(&anonymous, ANONYMOUS_CALL_LIMIT + Duration::from_secs(1)),
            Some(Refusal::TlsCallTimeout)
        );
        drop(call);
        let peer = Arc::new(Activity::new(2, false));
        let _sync = peer.begin();
        assert_eq!(closes(&peer, IDLE_PEER * 100), None);
    }

    #[test]
    fn a_full_pool_closes_the_connection_idle_the_longest_and_never_a_busy_one() {
        let refusals = Refusals::default();
        let mut pool = Established::default();
        let all: Vec<_> = (0..MAX_CONNECTIONS)
            .map(|_| pool.add(true, &refusals).unwrap())
            .collect();
        let mut calls: Vec<Option<Call>> = all.iter().map(|a| Some(a.begin())).collect();
        // Every connection busy: the new one is refused, none closed.
        assert!(pool.add(true, &refusals).is_none());
        assert!(all.iter().all(|a| !a.state().closing));
        // Two become idle: the one idle the longer makes room.
        calls[10] = None;
        std::thread::sleep(Duration::from_millis(5));
        calls[31] = None;
        assert!(pool.add(false, &refusals).is_some());
        assert!(all[10].state().closing);
        assert!(!all[31].state().closing);
        assert_eq!(pool.open.len(), MAX_CONNECTIONS);
        assert!(refusals.counts().contains(&("tls_idle_evicted", 1)));
    }
}
