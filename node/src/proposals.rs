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
    /// an agent may propose (a project or a dataset).
    pub fn propose(&self, ledger: &Ledger, mut p: Proposal) -> Result<Proposal, ProposalError> {
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
        p.id = random_id();
        self.save(ledger, &p)?;
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
    node.proposals().save(node.ledger(), &p)?;
    tracing::info!(id = %p.id, by, record_id = %p.record_id, siren = %p.siren, "a proposal was accepted and published");
    Ok((p, published))
}

fn random_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    hex::encode(bytes)
}
