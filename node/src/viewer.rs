//! Who is asking, and so what they may see: the one visibility rule
//! (`Viewer::may_see`) and how a peer's SIREN, which decides the restricted
//! records it is served, is found (`peer_siren`). Replication, the
//! catalogue, search and the export all decide with these two.

use maillage_record::{Body, PublicKey, Siren, Visibility};

use crate::peers::PeerTable;
use crate::store::Store;
use crate::trust::Trust;

/// Who is asking: decides which records a read or a sync may reveal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Viewer {
    /// The node's operator, on the admin socket: sees everything.
    Operator,
    /// An unauthenticated caller on the public port: public records only.
    Anonymous,
    /// A pinned peer: a federation member; restricted records whose audience
    /// holds its SIREN (see `peer_siren`) or that it wrote.
    Peer {
        key: PublicKey,
        siren: Option<Siren>,
    },
}

impl Viewer {
    /// Whether this viewer may learn that a record by `author` with this
    /// visibility exists.
    pub fn may_see(&self, author: &PublicKey, visibility: &Visibility) -> bool {
        match (self, visibility) {
            (Viewer::Operator, _) | (_, Visibility::Public) => true,
            (Viewer::Anonymous, _) => false,
            (Viewer::Peer { .. }, Visibility::Federation) => true,
            (Viewer::Peer { key, siren }, Visibility::Restricted { audience }) => {
                key == author || siren.as_ref().is_some_and(|s| audience.contains(s))
            }
        }
    }
}

/// Who vouches for a peer's SIREN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SirenSource {
    /// An accepted Membership record names the peer's key.
    Membership,
    /// This node's operator, when pinning the peer.
    Operator,
    /// The peer's own Organisation record, because the peer is a trust
    /// root: it could sign a membership for itself as well.
    Root,
}

impl SirenSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SirenSource::Membership => "membership",
            SirenSource::Operator => "operator",
            SirenSource::Root => "root",
        }
    }
}

/// The SIREN a peer is served restricted records for, and who vouches for
/// it: an accepted Membership, else this node's operator (`peer add
/// --siren`), else, for a trust root only, its own Organisation record (a
/// root could sign a membership for itself). Otherwise what a peer's
/// Organisation record claims is not enough: a member whose membership was
/// withdrawn or expired keeps its Organisation record, and must not keep
/// receiving its organisation's restricted records.
pub fn peer_siren(
    trust: &Trust,
    peers: &PeerTable,
    store: &Store,
    key: &PublicKey,
) -> Option<(Siren, SirenSource)> {
    if let Some(siren) = trust.siren_of(key) {
        return Some((siren, SirenSource::Membership));
    }
    if let Some(siren) = peers.siren_of(key) {
        return Some((siren, SirenSource::Operator));
    }
    if !trust.is_root(key) {
        return None;
    }
    let claimed = store.organisation_record(key).ok().flatten()?;
    match &claimed.body {
        Body::Organisation(o) => Some((o.siren.clone(), SirenSource::Root)),
        _ => None,
    }
}
