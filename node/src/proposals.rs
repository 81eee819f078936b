//! Proposals (issue 22): an agent signed in on the portal proposes a
//! project or a dataset for its own organisation; it waits for the node's
//! operator (`maillage proposals accept|refuse`) or a moderator (`[signin]
//! moderators`, in the portal). Accepted, the node signs it with its key, on
//! behalf of the agent's organisation (`provenance.on_behalf_of`), and it
//! replicates like any record. A proposal naming a record_id the
//! organisation already has through this node proposes its next version.
//!
//! Kept in the store (`proposals`), every state change synced.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use maillage_record::model::{Agent, Provenance};
use maillage_record::{Record, Siren};
use serde::{Deserialize, Serialize};

use crate::ledger::Ledger;
use crate::node::Node;
use crate::store::{Store, StoreError};

/// Proposals waiting at once, in all and from one organisation: a flood
/// from one agent cannot bury the others'.
const MAX_PENDING: usize = 1_000;
const MAX_PENDING_PER_ORGANISATION: usize = 20;
/// Proposals kept in all (decided ones included).
const MAX_KEPT: usize = 100_000;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Accepted,
    Refused,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Pending => "en attente",
            State::Accepted => "acceptée",
            State::Refused => "refusée",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Accepted => "accepted",
            State::Refused => "refused",
        }
    }
}

/// A proposal, as kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Proposal {
    /// 16 hex characters.
    pub id: String,
    /// The record as a JSON document (`maillage publish` reads the same).
    pub document: serde_json::Value,
    /// Its title, for lists.
    pub title: String,
    pub kind: String,
    pub record_id: String,
    /// The agent's organisation: the record is published on its behalf.
    pub siren: Siren,
    pub organisation: String,
    /// Who proposed it: the identity provider's subject and the agent's name.
    pub subject: String,
    pub agent: String,
    pub created_at_ms: i64,
    pub state: State,
    /// Who decided, when, and why (a refusal's reason).
    #[serde(default)]
    pub decided_by: String,
    #[serde(default)]
    pub decided_at_ms: i64,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProposalError {
    #[error("{0}")]
    Invalid(String),
    #[error("no proposal '{0}': see `maillage proposals list`")]
    NotFound(String),
    #[error("proposal '{0}' was {1} already")]
    Decided(String, &'static str),
    #[error("too many proposals wait already{0}: retry once some are decided")]
    Full(&'static str),
    #[error("the record could not be signed: {0}")]
    Sign(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Proposals {
    by_id: RwLock<BTreeMap<String, Proposal>>,
    /// Proposals being accepted now: a second accept of one waits for none
    /// and is refused (it would publish a second version).
    deciding: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Whether this node holds a record under `record_id` that is not an
/// earlier proposal of `siren` (which a new one may update): someone
/// else's, which a proposal must not replace.
fn taken(node: &Node, record_id: &str, siren: &Siren) -> Result<bool, StoreError> {
    let store = node.store();
    let Some(current) = store.current(&node.public_key(), record_id)? else {
        return Ok(false);
    };
    let ours = store.record(&current.id)?.is_some_and(|r| {
        r.provenance.as_ref().is_some_and(|p| {
            p.source_format == "proposition"
                && p.on_behalf_of.as_ref().and_then(|a| a.siren.as_deref()) == Some(siren.as_str())
        })
    });
    Ok(!ours)
}

impl Proposals {
    pub fn load(store: &Store) -> Result<Proposals, StoreError> {
        let mut by_id = BTreeMap::new();
        for (id, value) in store.proposals()? {
            match serde_json::from_slice::<Proposal>(&value) {
                Ok(p) => {
                    by_id.insert(id, p);
                }
                Err(e) => {
                    tracing::error!(error = %e, %id, "a stored proposal does not decode; left out")
                }
            }
        }
        Ok(Proposals {
            by_id: RwLock::new(by_id),
            deciding: Default::default(),
        })
    }

    fn save(&self, ledger: &Ledger, p: &Proposal) -> Result<(), StoreError> {
        ledger.save_proposal(&p.id, &serde_json::to_vec(p).expect("a proposal encodes"))?;
        self.by_id
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(p.id.clone(), p.clone());
        Ok(())
    }

    /// Keeps a new proposal, once its document reads as a record of a kind
    /// an agent may propose (a project or a dataset). Its record_id is made
    /// unique if this node holds a record under it that is not an earlier
    /// proposal of the same organisation (that one it updates).
    pub fn propose(&self, node: &Node, mut p: Proposal) -> Result<Proposal, ProposalError> {
        p.id = random_id();
        if let Some(id) = p.document["record_id"].as_str().map(str::to_string)
            && taken(node, &id, &p.siren)?
        {
            p.document["record_id"] = format!("{id}-{}", &p.id[..6]).into();
        }
        let draft = maillage_record::json::parse_document(&p.document.to_string())
            .map_err(|e| ProposalError::Invalid(e.to_string()))?;
        let record = draft.record;
        let (kind, title) = match &record.body {
            maillage_record::Body::Project(x) => ("project", x.name.clone()),
            maillage_record::Body::Dataset(x) => ("dataset", x.title.clone()),
            _ => {
                return Err(ProposalError::Invalid(
                    "only a project or a dataset may be proposed".into(),
                ));
            }
        };
        {
            let all = self.by_id.read().unwrap_or_else(|e| e.into_inner());
            let pending = all.values().filter(|x| x.state == State::Pending);
            if pending.clone().count() >= MAX_PENDING || all.len() >= MAX_KEPT {
                return Err(ProposalError::Full(""));
            }
            if pending.filter(|x| x.siren == p.siren).count() >= MAX_PENDING_PER_ORGANISATION {
                return Err(ProposalError::Full(" from this organisation"));
            }
        }
        p.kind = kind.to_string();
        p.title = title;
        p.record_id = record.record_id.clone();
        p.state = State::Pending;
        self.save(node.ledger(), &p)?;
        tracing::info!(id = %p.id, siren = %p.siren, kind = %p.kind, "a record was proposed");
        Ok(p)
    }

    pub fn get(&self, id: &str) -> Option<Proposal> {
        self.by_id
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Proposals, newest first: pending ones only, or all; of one
    /// organisation, or of all.
    pub fn list(&self, all: bool, siren: Option<&Siren>) -> Vec<Proposal> {
        let mut out: Vec<Proposal> = self
            .by_id
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|p| all || p.state == State::Pending)
            .filter(|p| siren.is_none_or(|s| p.siren == *s))
            .cloned()
            .collect();
        out.sort_by_key(|p| std::cmp::Reverse(p.created_at_ms));
        out
    }

    /// Refuses a pending proposal, saying why.
    pub fn refuse(
        &self,
        ledger: &Ledger,
        id: &str,
        by: &str,
        reason: &str,
    ) -> Result<Proposal, ProposalError> {
        let mut p = self.pending(id)?;
        p.state = State::Refused;
        p.decided_by = by.to_string();
        p.decided_at_ms = maillage_record::now_ms();
        p.reason = reason.trim().chars().take(1_000).collect();
        self.save(ledger, &p)?;
        tracing::info!(id = %p.id, by, "a proposal was refused");
        Ok(p)
    }

    fn pending(&self, id: &str) -> Result<Proposal, ProposalError> {
        let p = self
            .get(id)
            .ok_or_else(|| ProposalError::NotFound(id.to_string()))?;
        if p.state != State::Pending {
            return Err(ProposalError::Decided(id.to_string(), p.state.label()));
        }
        Ok(p)
    }
}

/// Accepts a pending proposal: the node signs it with its key, on behalf of
/// the proposing organisation, and stores it (it replicates from there).
pub async fn accept(
    node: &Arc<Node>,
    id: &str,
    by: &str,
) -> Result<(Proposal, maillage_proto::v1::PublishResponse), ProposalError> {
    let mut p = node.proposals().pending(id)?;
    // One acceptance at a time per proposal.
    if !node
        .proposals()
        .deciding
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.to_string())
    {
        return Err(ProposalError::Decided(
            id.to_string(),
            "en cours de décision",
        ));
    }
    let outcome = publish(node, &mut p, by).await;
    node.proposals()
        .deciding
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(id);
    outcome.map(|published| (p, published))
}

async fn publish(
    node: &Arc<Node>,
    p: &mut Proposal,
    by: &str,
) -> Result<maillage_proto::v1::PublishResponse, ProposalError> {
    // Checked again: since it was proposed, the record_id may have been
    // taken by a record this proposal must not replace.
    if taken(node, &p.record_id, &p.siren)? {
        return Err(ProposalError::Invalid(format!(
            "this node now holds another record under '{}': ask for the proposal again",
            p.record_id
        )));
    }
    if node
        .proposals()
        .get(&p.id)
        .is_none_or(|x| x.state != State::Pending)
    {
        return Err(ProposalError::Decided(p.id.clone(), "décidée"));
    }
    let draft = maillage_record::json::parse_document(&p.document.to_string())
        .map_err(|e| ProposalError::Invalid(e.to_string()))?;
    let mut record: Record = draft.record;
    record.provenance = Some(Provenance {
        source_format: "proposition".into(),
        source: None,
        source_identifier: Some(p.id.clone()),
        on_behalf_of: Some(Agent {
            name: p.organisation.clone(),
            siren: Some(p.siren.to_string()),
            url: None,
        }),
        as_written: Default::default(),
    });
    let n = node.clone();
    let signed = tokio::task::spawn_blocking(move || n.author().sign(&[], record))
        .await
        .map_err(|e| ProposalError::Sign(e.to_string()))?
        .map_err(|e| ProposalError::Sign(e.to_string()))?;
    let published = crate::service::publish::store_signed(node, signed)
        .await
        .map_err(|e| ProposalError::Sign(e.message().to_string()))?;
    p.state = State::Accepted;
    p.decided_by = by.to_string();
    p.decided_at_ms = maillage_record::now_ms();
    node.proposals().save(node.ledger(), p)?;
    tracing::info!(id = %p.id, by, record_id = %p.record_id, siren = %p.siren, "a proposal was accepted and published");
    Ok(published)
}

fn random_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal(siren: &str, record_id: &str, title: &str) -> Proposal {
        Proposal {
            id: String::new(),
            document: serde_json::json!({"kind": "dataset", "record_id": record_id,
                "title": title, "description": "d", "visibility": "public"}),
            title: String::new(),
            kind: String::new(),
            record_id: String::new(),
            siren: Siren::parse(siren).unwrap(),
            organisation: "Colomiers".into(),
            subject: "agent-a".into(),
            agent: "Camille".into(),
            created_at_ms: 1,
            state: State::Pending,
            decided_by: String::new(),
            decided_at_ms: 0,
            reason: String::new(),
        }
    }

    /// A proposal never replaces a record it did not make: one whose
    /// record_id the node already uses for something else gets its own;
    /// one that follows an accepted proposal of the same organisation
    /// updates it.
    #[tokio::test]
    async fn a_proposal_updates_its_own_record_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let node = crate::node::tests::start_node(dir.path()).await;
        let record = Record {
            record_id: "213101496-voirie".into(),
            version: 1,
            issued_at_ms: 1_764_000_000_000,
            visibility: maillage_record::Visibility::Public,
            provenance: None,
            body: maillage_record::Body::Dataset(maillage_record::model::Dataset::new(
                "Voirie de la métropole",
                "d",
            )),
        };
        let signed = node.author().sign(&[], record).unwrap().record;
        node.ledger()
            .insert(&signed, crate::store::Admission::RequireNewer)
            .unwrap();
        let p = node
            .proposals()
            .propose(&node, proposal("213101496", "213101496-voirie", "Voirie"))
            .unwrap();
        assert_ne!(p.record_id, "213101496-voirie", "{p:?}");
        assert!(p.record_id.starts_with("213101496-voirie-"), "{p:?}");
        let (accepted, _) = accept(&node, &p.id, "operator").await.unwrap();
        assert_eq!(accepted.state, State::Accepted);
        assert!(matches!(
            accept(&node, &p.id, "operator").await,
            Err(ProposalError::Decided(..))
        ));
        // The same organisation proposes again under that id: an update.
        let again = node
            .proposals()
            .propose(&node, proposal("213101496", &p.record_id, "Voirie, v2"))
            .unwrap();
        assert_eq!(again.record_id, p.record_id);
        accept(&node, &again.id, "operator").await.unwrap();
        let current = node
            .store()
            .current(&node.public_key(), &p.record_id)
            .unwrap()
            .unwrap();
        assert_eq!(current.version, 2);
        // The metropole's own record is untouched.
        let own = node
            .store()
            .current(&node.public_key(), "213101496-voirie")
            .unwrap()
            .unwrap();
        assert_eq!(own.version, 1);
        node.stop();
    }
}
