//! Who is asking, and so what they may see: the one visibility rule
//! (`Viewer::may_see`), and the one rule for which SIREN a key speaks for
//! (`Sirens::of`), which decides the restricted records a peer is served
//! and the organisation a record is shown under. Replication, the
//! catalogue, search, the export and the peer list all decide with these.

use std::sync::Arc;

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
    /// A pinned peer: federation records while it is a member (trust
    /// accepts it now: a root, or a current membership; pinning alone is
    /// not enough); restricted records whose audience holds its SIREN (see
    /// `Sirens::of`); and whatever it wrote (a restored node relearns its
    /// own versions from its peers).
    Peer {
        key: PublicKey,
        siren: Option<Siren>,
        member: bool,
    },
    /// An agent of an organisation, signed in on the portal (its provider
    /// named the organisation's SIRET): federation records while that
    /// organisation is a member (a key trust accepts now speaks for its
    /// SIREN); restricted records whose audience holds its SIREN.
    Agent { siren: Siren, member: bool },
}

impl Viewer {
    /// Whether this viewer may learn that a record by `author` with this
    /// visibility exists.
    pub fn may_see(&self, author: &PublicKey, visibility: &Visibility) -> bool {
        match (self, visibility) {
            (Viewer::Operator, _) | (_, Visibility::Public) => true,
            (Viewer::Anonymous, _) => false,
            // A node is always given back what it signed (a restored node
            // relearns its own versions from its peers, membership or not).
            (Viewer::Peer { member, key, .. }, Visibility::Federation) => *member || key == author,
            (Viewer::Peer { key, siren, .. }, Visibility::Restricted { audience }) => {
                key == author || siren.as_ref().is_some_and(|s| audience.contains(s))
            }
            (Viewer::Agent { member, .. }, Visibility::Federation) => *member,
            (Viewer::Agent { siren, .. }, Visibility::Restricted { audience }) => {
                audience.contains(siren)
            }
        }
    }
}

/// Whether `viewer` may read `record` by `author`: its visibility allows
/// it and, for a collection, the viewer may see every record it lists, as
/// this node holds them now (blocking: it reads the items' current
/// versions). A collection names its items: one listing a record the
/// viewer may not see, or one this node does not hold (it cannot tell),
/// is not shown to that viewer; an item's visibility may have narrowed
/// since the collection was signed.
pub fn may_read(
    store: &Store,
    viewer: &Viewer,
    author: &PublicKey,
    record: &maillage_record::Record,
) -> Result<bool, crate::store::StoreError> {
    if !viewer.may_see(author, &record.visibility) {
        return Ok(false);
    }
    let Body::Collection(c) = &record.body else {
        return Ok(true);
    };
    // The operator, and the collection's author (it wrote the list).
    if *viewer == Viewer::Operator || matches!(viewer, Viewer::Peer { key, .. } if key == author) {
        return Ok(true);
    }
    for item in &c.items {
        let item_author = match &item.author {
            None => *author,
            Some(hex) => match PublicKey::parse_hex(hex) {
                Ok(k) => k,
                Err(_) => return Ok(false),
            },
        };
        let Some(current) = store.current(&item_author, &item.record_id)? else {
            return Ok(false);
        };
        let visible = store
            .sync_items_many(&[current.id])?
            .pop()
            .flatten()
            .is_some_and(|i| viewer.may_see(&item_author, &i.visibility));
        if !visible {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Who vouches for the SIREN a key speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SirenSource {
    /// This node's own key, and the SIREN its configuration names.
    Own,
    /// This node's operator, when pinning the peer (`peer add --siren`).
    Operator,
    /// A Membership record by a trust root, or by a committee a root
    /// endorsed (`Trust::endorsement`).
    Membership,
    /// The key's own Organisation record, because the key is a trust root:
    /// it could sign a membership for itself as well.
    Root,
}

impl SirenSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SirenSource::Own => "own",
            SirenSource::Operator => "operator",
            SirenSource::Membership => "membership",
            SirenSource::Root => "root",
        }
    }
}

/// What `Sirens::decide` found.
enum Decided {
    Known(Siren, SirenSource),
    /// A trust root: its own Organisation record says.
    Root,
    Nobody,
}

/// Which SIREN a key speaks for: the one rule (`of`), for every path that
/// needs to know (the restricted records a peer is served, the
/// organisation search and the export show a record under, the peer list).
pub struct Sirens {
    own: PublicKey,
    own_siren: Siren,
    trust: Arc<Trust>,
    peers: Arc<PeerTable>,
    store: Arc<Store>,
}

impl Sirens {
    pub fn new(
        own: PublicKey,
        own_siren: Siren,
        trust: Arc<Trust>,
        peers: Arc<PeerTable>,
        store: Arc<Store>,
    ) -> Sirens {
        Sirens {
            own,
            own_siren,
            trust,
            peers,
            store,
        }
    }

    /// The SIREN `key` speaks for now, and who vouches for it, in this
    /// order: this node's own; this node's operator, who pinned the key
    /// with `peer add --siren` (the operator's word on its own node
    /// outranks any record); an accepted Membership (by a root or a
    /// committee a root endorsed, never the key's own); for a trust root
    /// only, its own Organisation record. What a key's Organisation record
    /// claims is not enough otherwise: anyone can sign one, and a member
    /// whose membership was withdrawn or expired keeps its own.
    pub fn of(&self, key: &PublicKey) -> Option<(Siren, SirenSource)> {
        match self.decide(key) {
            Decided::Known(siren, source) => Some((siren, source)),
            Decided::Root => {
                let claimed = self.store.organisation_record(key).ok().flatten()?;
                match claimed.body {
                    Body::Organisation(o) => Some((o.siren, SirenSource::Root)),
                    _ => None,
                }
            }
            Decided::Nobody => None,
        }
    }

    /// Who vouches that `key` speaks for `shown` (as `of` decides), without
    /// reading the store: for a root, `shown` is taken to be what its own
    /// Organisation record claims (the index read it there). Asked for
    /// every search hit, so it must stay cheap.
    pub fn source_of(&self, key: &PublicKey, shown: &str) -> Option<SirenSource> {
        match self.decide(key) {
            Decided::Known(siren, source) => (siren.as_str() == shown).then_some(source),
            Decided::Root => Some(SirenSource::Root),
            Decided::Nobody => None,
        }
    }

    /// `of`, up to the root's own Organisation record.
    fn decide(&self, key: &PublicKey) -> Decided {
        if *key == self.own {
            return Decided::Known(self.own_siren.clone(), SirenSource::Own);
        }
        if let Some(siren) = self.peers.siren_of(key) {
            return Decided::Known(siren, SirenSource::Operator);
        }
        if let Some(e) = self.trust.endorsement(key, maillage_record::now_ms()) {
            return Decided::Known(e.siren, SirenSource::Membership);
        }
        if self.trust.is_root(key) {
            Decided::Root
        } else {
            Decided::Nobody
        }
    }

    /// What an agent of `siren` may see: whether the organisation is a
    /// member now (this node's own, or a key trust accepts now speaks for
    /// that SIREN, by the one rule `of`).
    pub fn agent(&self, siren: Siren) -> Viewer {
        let member = siren == self.own_siren
            || self
                .trust
                .keys_named_for(&siren)
                .into_iter()
                .chain(self.peers.keys_for(&siren))
                .any(|k| self.trust.is_member(&k) && self.of(&k).is_some_and(|(s, _)| s == siren));
        Viewer::Agent { siren, member }
    }

    /// What `key` is as a peer: its SIREN, and whether it is a member now.
    pub fn viewer(&self, key: &PublicKey) -> Viewer {
        Viewer::Peer {
            key: *key,
            siren: self.of(key).map(|(siren, _)| siren),
            member: self.trust.is_member(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer sees what it signed whatever its visibility, even once its
    /// membership lapsed; another peer does not.
    #[test]
    fn a_peer_sees_what_it_wrote() {
        let own = PublicKey([1; 32]);
        let other = PublicKey([2; 32]);
        let lapsed = Viewer::Peer {
            key: own,
            siren: None,
            member: false,
        };
        let restricted = Visibility::Restricted {
            audience: vec![Siren::parse("213101496").unwrap()],
        };
        for visibility in [
            Visibility::Public,
            Visibility::Federation,
            restricted.clone(),
        ] {
            assert!(lapsed.may_see(&own, &visibility), "{visibility:?}");
        }
        assert!(!lapsed.may_see(&other, &Visibility::Federation));
        assert!(!lapsed.may_see(&other, &restricted));
    }
}
