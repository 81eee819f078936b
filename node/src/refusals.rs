//! What the node refused its callers, counted by reason since it started:
//! `maillage status` shows them, so an operator sees a node under load or
//! under attack, and which limit of docs/security.md it meets. No IO.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a caller was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// TLS port: `accept::MAX_CONNECTIONS` open, none of them idle.
    TlsConnections,
    /// TLS port: `accept::MAX_CONNECTIONS_PER_ADDRESS` from one address.
    TlsConnectionsPerAddress,
    /// TLS port: a handshake refused (an unpinned key, not TLS) or too slow.
    TlsHandshake,
    /// TLS port: a handshake still under way closed to make room for a new
    /// connection (`accept::MAX_HANDSHAKING`).
    TlsHandshakeEvicted,
    /// TLS port: an established connection with no call open closed to make
    /// room for a new one (`accept::MAX_CONNECTIONS`).
    TlsIdleEvicted,
    /// TLS port: a connection closed after `accept::IDLE_ANONYMOUS` (or
    /// `IDLE_PEER`) with no call open.
    TlsIdleTimeout,
    /// TLS port: an anonymous connection closed with a call open for
    /// `accept::ANONYMOUS_CALL_LIMIT`.
    TlsCallTimeout,
    /// HTTP: `http::MAX_CONNECTIONS` open, none of them idle.
    HttpConnections,
    /// HTTP: an idle connection closed to make room for a new one.
    HttpIdleEvicted,
    /// HTTP: a connection closed because its client read nothing of an
    /// answer for `http::WRITE_STALL`.
    HttpWriteStalled,
    /// A search, statistic, List or History that waited too long for its
    /// turn (TLS port or HTTP).
    SearchBusy,
    /// An HTTP export that waited too long for its turn.
    ExportBusy,
    /// A portal page that reads records (a record's page) and waited too
    /// long for its turn.
    PageBusy,
    /// A session or read token over its rate (`tokens::RateLimit`).
    RateLimited,
    /// A reconciliation frame over the limit, or malformed.
    ReconcileFrame,
    /// A reconciliation past `MAX_ROUNDS`.
    ReconcileRounds,
    /// A reconciliation silent for `FRAME_SILENCE`.
    ReconcileSilence,
    /// A Fetch of too many ids, or of ids that are not ids.
    FetchIds,
}

impl Refusal {
    pub const ALL: [Refusal; 18] = [
        Refusal::TlsConnections,
        Refusal::TlsConnectionsPerAddress,
        Refusal::TlsHandshake,
        Refusal::TlsHandshakeEvicted,
        Refusal::TlsIdleEvicted,
        Refusal::TlsIdleTimeout,
        Refusal::TlsCallTimeout,
        Refusal::HttpConnections,
        Refusal::HttpIdleEvicted,
        Refusal::HttpWriteStalled,
        Refusal::SearchBusy,
        Refusal::ExportBusy,
        Refusal::PageBusy,
        Refusal::RateLimited,
        Refusal::ReconcileFrame,
        Refusal::ReconcileRounds,
        Refusal::ReconcileSilence,
        Refusal::FetchIds,
    ];

    /// The name `status` shows.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::TlsConnections => "tls_connections",
            Refusal::TlsConnectionsPerAddress => "tls_connections_per_address",
            Refusal::TlsHandshake => "tls_handshake",
            Refusal::TlsHandshakeEvicted => "tls_handshake_evicted",
            Refusal::TlsIdleEvicted => "tls_idle_evicted",
            Refusal::TlsIdleTimeout => "tls_idle_timeout",
            Refusal::TlsCallTimeout => "tls_call_timeout",
            Refusal::HttpConnections => "http_connections",
            Refusal::HttpIdleEvicted => "http_idle_evicted",
            Refusal::HttpWriteStalled => "http_write_stalled",
            Refusal::SearchBusy => "search_busy",
            Refusal::ExportBusy => "export_busy",
            Refusal::PageBusy => "http_page_busy",
            Refusal::RateLimited => "http_rate_limited",
            Refusal::ReconcileFrame => "reconcile_frame",
            Refusal::ReconcileRounds => "reconcile_rounds",
            Refusal::ReconcileSilence => "reconcile_silence",
            Refusal::FetchIds => "fetch_ids",
        }
    }
}

/// The counters, one per reason.
#[derive(Debug, Default)]
pub struct Refusals([AtomicU64; Refusal::ALL.len()]);

impl Refusals {
    pub fn note(&self, why: Refusal) {
        self.0[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Every reason with its count, zeros included (in `Refusal::ALL`'s
    /// order).
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        Refusal::ALL
            .iter()
            .map(|r| (r.name(), self.0[*r as usize].load(Ordering::Relaxed)))
            .collect()
    }
}
