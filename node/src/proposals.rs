//! Proposals (issue 22): an agent signed in on the portal proposes a
//! project, a project's details or a dataset for its own organisation, the
//! next version of one this node publishes on its organisation's behalf, or
//! its withdrawal. It waits for the node's operator (`maillage proposals
//! accept|refuse`) or a moderator (`[signin] moderators`, in the portal);
//! until then its organisation may amend or cancel it. Accepted, the node
//! signs it with its key, on behalf of the agent's organisation
//! (`provenance.on_behalf_of`), and it replicates like any record.
//!
//! What an organisation may change: records this node signed on its behalf
//! (`on_behalf_of` names its SIREN), of a kind an agent may propose.
//! Nothing else, whatever the proposal names.
//!
//! Kept in the store (`proposals`), every state change synced.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use maillage_record::model::{Agent, Provenance};
use maillage_record::{Body, Kind, Record, Siren};
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
    /// Withdrawn by its organisation before any decision.
    Cancelled,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Pending => "en attente",
            State::Accepted => "acceptée",
            State::Refused => "refusée",
            State::Cancelled => "retirée par son organisation",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Accepted => "accepted",
            State::Refused => "refused",
            State::Cancelled => "cancelled",
        }
    }
}

/// What a proposal asks of the node.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// A record this node does not publish yet.
    #[default]
    New,
    /// The next version of a record this node publishes on behalf of the
    /// proposing organisation.
    Edit,
    /// That record's withdrawal.
    Withdrawal,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::New => "new",
            Change::Edit => "edit",
            Change::Withdrawal => "withdrawal",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Change::New => "nouvel enregistrement",
            Change::Edit => "modification",
            Change::Withdrawal => "retrait",
        }
    }
}

/// The kinds of record an agent may propose.
pub const PROPOSABLE: [Kind; 3] = [Kind::Project, Kind::ProjectDetails, Kind::Dataset];

/// A proposal, as kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Proposal {
    /// 16 hex characters.
    pub id: String,
    /// The record as a JSON document (`maillage publish` reads the same);
    /// a withdrawal's is a tombstone.
    pub document: serde_json::Value,
    /// Its title, for lists.
    pub title: String,
    /// The kind of the record proposed, edited or withdrawn.
    pub kind: String,
    pub record_id: String,
    #[serde(default)]
    pub change: Change,
    /// The version an edit or a withdrawal was written against.
    #[serde(default)]
    pub base_version: u64,
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
    #[error("proposal '{0}' is another organisation's")]
    NotYours(String),
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

/// A record this node publishes on behalf of `siren`, current and of a
/// kind an agent may propose: one that organisation may edit or withdraw.
pub fn organisation_record(
    node: &Node,
    record_id: &str,
    siren: &Siren,
) -> Result<Option<(u64, Record)>, StoreError> {
    let store = node.store();
    let Some(current) = store.current(&node.public_key(), record_id)? else {
        return Ok(None);
    };
    let Some(record) = store.record(&current.id)? else {
        return Ok(None);
    };
    let behalf = record
        .provenance
        .as_ref()
        .and_then(|p| p.on_behalf_of.as_ref())
        .and_then(|a| a.siren.as_deref());
    Ok(
        (behalf == Some(siren.as_str()) && PROPOSABLE.contains(&record.kind()))
            .then_some((current.version, record)),
    )
}

/// A record's title, for lists.
pub fn title_of(record: &Record) -> String {
    match &record.body {
        Body::Project(x) => x.name.clone(),
        Body::Dataset(x) => x.title.clone(),
        Body::ProjectDetails(x) => format!("Détails du projet {}", x.project),
        _ => record.record_id.clone(),
    }
}

/// Checks a proposal against the store as it is now, and fills in what
/// follows from its document: its kind, title, record_id and, for an edit
/// or a withdrawal, the version it changes. Blocking.
fn prepare(node: &Node, p: &mut Proposal) -> Result<(), ProposalError> {
    let invalid = |why: String| Err(ProposalError::Invalid(why));
    let current = match p.change {
        Change::New => {
            // A new record never takes an id this node uses already (its
            // own records', or others' an organisation must not replace).
            if let Some(id) = p.document["record_id"].as_str().map(str::to_string)
                && node.store().current(&node.public_key(), &id)?.is_some()
            {
                p.document["record_id"] = format!("{id}-{}", &random_id()[..6]).into();
            }
            None
        }
        Change::Edit | Change::Withdrawal => {
            p.document["record_id"] = p.record_id.clone().into();
            match organisation_record(node, &p.record_id, &p.siren)? {
                Some(c) => Some(c),
                None => {
                    return invalid(format!(
                        "this node publishes no record '{}' on behalf of SIREN {}: only those may \
                         be changed through a proposal",
                        p.record_id, p.siren
                    ));
                }
            }
        }
    };
    let draft = maillage_record::json::parse_document(&p.document.to_string())
        .map_err(|e| ProposalError::Invalid(e.to_string()))?;
    let record = draft.record;
    if draft.author.is_some_and(|a| a != node.public_key()) {
        return invalid("a proposal names no author: the node signs it".into());
    }
    match (p.change, &current) {
        (Change::Withdrawal, Some((_, was))) => {
            if record.kind() != Kind::Tombstone {
                return invalid("a withdrawal's document is a tombstone".into());
            }
            p.kind = was.kind().as_str().to_string();
            p.title = title_of(was);
        }
        (_, current) => {
            if !PROPOSABLE.contains(&record.kind()) {
                return invalid(
                    "only a project, a project's details or a dataset may be proposed".into(),
                );
            }
            if let Some((_, was)) = current
                && was.kind() != record.kind()
            {
                return invalid(format!(
                    "'{}' is a {}: an edit keeps its kind",
                    p.record_id,
                    was.kind().as_str()
                ));
            }
            p.title = title_of(&record);
            if let Body::ProjectDetails(d) = &record.body {
                match organisation_record(node, &d.project, &p.siren)? {
                    Some((_, project)) if project.kind() == Kind::Project => {
                        p.title = format!("Détails de « {} »", title_of(&project));
                    }
                    _ => {
                        return invalid(format!(
                            "this node publishes no project '{}' on behalf of SIREN {}: details \
                             complete one of the organisation's projects",
                            d.project, p.siren
                        ));
                    }
                }
            }
            p.kind = record.kind().as_str().to_string();
        }
    }
    p.record_id = record.record_id.clone();
    p.base_version = current.map_or(0, |(v, _)| v);
    Ok(())
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

    /// Keeps a new proposal, once `prepare` finds it sound (blocking).
    pub fn propose(&self, node: &Node, mut p: Proposal) -> Result<Proposal, ProposalError> {
        p.id = random_id();
        prepare(node, &mut p)?;
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
        p.state = State::Pending;
        self.save(node.ledger(), &p)?;
        tracing::info!(id = %p.id, siren = %p.siren, kind = %p.kind, change = p.change.as_str(), "a record was proposed");
        Ok(p)
    }

    /// Replaces a pending proposal's document, for its own organisation
    /// (blocking). It keeps its id, its change and its record_id.
    pub fn amend(
        &self,
        node: &Node,
        id: &str,
        siren: &Siren,
        document: serde_json::Value,
    ) -> Result<Proposal, ProposalError> {
        let mut p = self.pending(id)?;
        if p.siren != *siren {
            return Err(ProposalError::NotYours(id.to_string()));
        }
        let kind = p.kind.clone();
        p.document = document;
        p.document["record_id"] = p.record_id.clone().into();
        prepare(node, &mut p)?;
        if p.kind != kind {
            return Err(ProposalError::Invalid(format!(
                "proposal '{id}' is a {kind}: an amendment keeps its kind"
            )));
        }
        // Decided meanwhile? Then the amendment comes too late.
        self.pending(id)?;
        self.save(node.ledger(), &p)?;
        tracing::info!(id = %p.id, siren = %p.siren, "a proposal was amended");
        Ok(p)
    }

    /// Withdraws a pending proposal, for its own organisation.
    pub fn cancel(
        &self,
        ledger: &Ledger,
        id: &str,
        siren: &Siren,
        by: &str,
    ) -> Result<Proposal, ProposalError> {
        let mut p = self.pending(id)?;
        if p.siren != *siren {
            return Err(ProposalError::NotYours(id.to_string()));
        }
        p.state = State::Cancelled;
        p.decided_by = by.to_string();
        p.decided_at_ms = maillage_record::now_ms();
        self.save(ledger, &p)?;
        tracing::info!(id = %p.id, by, "a proposal was cancelled by its organisation");
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
    // taken, or the record it changes changed.
    let n = node.clone();
    let again = p.clone();
    let (still, now) = tokio::task::spawn_blocking(move || {
        let now = organisation_record(&n, &again.record_id, &again.siren)?.map(|(v, _)| v);
        let still = match again.change {
            Change::New => n
                .store()
                .current(&n.public_key(), &again.record_id)?
                .is_none(),
            Change::Edit | Change::Withdrawal => now == Some(again.base_version),
        };
        // A project's details name a project that must still be the
        // organisation's.
        let details = matches!(again.change, Change::New | Change::Edit)
            && again.kind == Kind::ProjectDetails.as_str();
        let project_kept = !details || {
            let project = again.document["project"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            organisation_record(&n, &project, &again.siren)?
                .is_some_and(|(_, r)| r.kind() == Kind::Project)
        };
        Ok::<_, StoreError>((still && project_kept, now))
    })
    .await
    .map_err(|e| ProposalError::Sign(e.to_string()))??;
    if !still {
        return Err(ProposalError::Invalid(match (p.change, now) {
            (Change::New, _) => format!(
                "this node now holds another record under '{}': the organisation should propose it again",
                p.record_id
            ),
            (_, Some(v)) if v != p.base_version => format!(
                "'{}' has changed since this proposal was written (version {} then, {v} now): \
                 the organisation should propose it again",
                p.record_id, p.base_version
            ),
            (_, None) => format!(
                "this node no longer publishes '{}' on behalf of SIREN {}",
                p.record_id, p.siren
            ),
            _ => "the project these details complete is no longer the organisation's".to_string(),
        }));
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
    record.version = 0;
    record.issued_at_ms = 0;
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

    fn proposal(siren: &str, change: Change, document: serde_json::Value) -> Proposal {
        Proposal {
            id: String::new(),
            record_id: document["record_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            document,
            title: String::new(),
            kind: String::new(),
            change,
            base_version: 0,
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

    fn dataset(record_id: &str, title: &str) -> serde_json::Value {
        serde_json::json!({"kind": "dataset", "record_id": record_id,
            "title": title, "description": "d", "visibility": "public"})
    }

    fn current(node: &Node, record_id: &str) -> Record {
        let c = node
            .store()
            .current(&node.public_key(), record_id)
            .unwrap()
            .unwrap();
        node.store().record(&c.id).unwrap().unwrap()
    }

    /// A proposal never replaces a record it may not change: a new one
    /// whose record_id the node already uses gets its own; an edit or a
    /// withdrawal changes only a record the node publishes on behalf of the
    /// proposing organisation, and only the version it was written against.
    #[tokio::test]
    async fn a_proposal_changes_its_organisation_s_records_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let node = crate::node::tests::start_node(dir.path()).await;
        let record = Record {
            record_id: "213101496-voirie".into(),
            version: 1,
            issued_at_ms: 1_764_000_000_000,
            visibility: maillage_record::Visibility::Public,
            provenance: None,
            body: Body::Dataset(maillage_record::model::Dataset::new(
                "Voirie de la métropole",
                "d",
            )),
        };
        let signed = node.author().sign(&[], record).unwrap().record;
        node.ledger()
            .insert(&signed, crate::store::Admission::RequireNewer)
            .unwrap();
        let colomiers = "213101496";
        let p = node
            .proposals()
            .propose(
                &node,
                proposal(
                    colomiers,
                    Change::New,
                    dataset("213101496-voirie", "Voirie"),
                ),
            )
            .unwrap();
        assert!(p.record_id.starts_with("213101496-voirie-"), "{p:?}");
        let (accepted, _) = accept(&node, &p.id, "operator").await.unwrap();
        assert_eq!(accepted.state, State::Accepted);
        assert!(matches!(
            accept(&node, &p.id, "operator").await,
            Err(ProposalError::Decided(..))
        ));
        let published = current(&node, &p.record_id);
        let behalf = published.provenance.as_ref().unwrap().on_behalf_of.as_ref();
        assert_eq!(behalf.unwrap().siren.as_deref(), Some(colomiers));

        // The metropole's own record is no organisation's to change.
        let refused = node.proposals().propose(
            &node,
            proposal(
                colomiers,
                Change::Edit,
                dataset("213101496-voirie", "Prise"),
            ),
        );
        assert!(
            matches!(refused, Err(ProposalError::Invalid(_))),
            "{refused:?}"
        );
        // Nor is Colomiers' record another organisation's.
        let refused = node.proposals().propose(
            &node,
            proposal("243100518", Change::Edit, dataset(&p.record_id, "Prise")),
        );
        assert!(
            matches!(refused, Err(ProposalError::Invalid(_))),
            "{refused:?}"
        );

        // Two edits written against version 1: the first accepted makes
        // version 2, the second is refused (it would undo the first).
        let first = node
            .proposals()
            .propose(
                &node,
                proposal(colomiers, Change::Edit, dataset(&p.record_id, "Voirie, v2")),
            )
            .unwrap();
        let second = node
            .proposals()
            .propose(
                &node,
                proposal(
                    colomiers,
                    Change::Edit,
                    dataset(&p.record_id, "Voirie, bis"),
                ),
            )
            .unwrap();
        assert_eq!(
            (first.base_version, first.record_id.as_str()),
            (1, p.record_id.as_str())
        );
        accept(&node, &first.id, "operator").await.unwrap();
        let late = accept(&node, &second.id, "operator").await;
        assert!(
            matches!(late, Err(ProposalError::Invalid(ref e)) if e.contains("changed since")),
            "{late:?}"
        );
        assert_eq!(current(&node, &p.record_id).version, 2);
        assert_eq!(title_of(&current(&node, &p.record_id)), "Voirie, v2");

        // Another organisation may neither amend nor cancel Colomiers'
        // pending proposal; Colomiers may.
        let other = Siren::parse("243100518").unwrap();
        let own = Siren::parse(colomiers).unwrap();
        assert!(matches!(
            node.proposals()
                .amend(&node, &second.id, &other, dataset("x", "Prise")),
            Err(ProposalError::NotYours(_))
        ));
        assert!(matches!(
            node.proposals()
                .cancel(node.ledger(), &second.id, &other, "x"),
            Err(ProposalError::NotYours(_))
        ));
        let cancelled = node
            .proposals()
            .cancel(node.ledger(), &second.id, &own, "agent-a")
            .unwrap();
        assert_eq!(cancelled.state, State::Cancelled);

        // The withdrawal: a tombstone, on Colomiers' behalf.
        let gone = node
            .proposals()
            .propose(
                &node,
                proposal(
                    colomiers,
                    Change::Withdrawal,
                    serde_json::json!({"kind": "tombstone", "record_id": p.record_id, "reason": "obsolète"}),
                ),
            )
            .unwrap();
        assert_eq!(
            (gone.kind.as_str(), gone.title.as_str()),
            ("dataset", "Voirie, v2")
        );
        accept(&node, &gone.id, "operator").await.unwrap();
        let withdrawn = current(&node, &p.record_id);
        assert_eq!(withdrawn.kind(), Kind::Tombstone);
        assert_eq!(withdrawn.version, 3);
        // Withdrawn, it is no longer the organisation's to change.
        assert!(
            organisation_record(&node, &p.record_id, &own)
                .unwrap()
                .is_none()
        );
        // The metropole's own record is untouched.
        assert_eq!(current(&node, "213101496-voirie").version, 1);
        node.stop();
    }

    /// A project's details complete one of the organisation's projects
    /// this node publishes, and nothing else.
    #[tokio::test]
    async fn details_complete_the_organisation_s_own_project() {
        let dir = tempfile::tempdir().unwrap();
        let node = crate::node::tests::start_node(dir.path()).await;
        let colomiers = "213101496";
        let project = node
            .proposals()
            .propose(
                &node,
                proposal(
                    colomiers,
                    Change::New,
                    serde_json::json!({"kind": "project", "record_id": "213101496-fuites",
                        "name": "Fuites", "description": "d", "status": "deploiement"}),
                ),
            )
            .unwrap();
        let details = |project: &str| {
            serde_json::json!({"kind": "project_details", "record_id": format!("{project}-details"),
                "project": project, "funding": "fonds propres", "visibility": "restricted",
                "audience": [colomiers]})
        };
        // Not published yet: no details.
        let early = node.proposals().propose(
            &node,
            proposal(colomiers, Change::New, details(&project.record_id)),
        );
        assert!(matches!(early, Err(ProposalError::Invalid(_))), "{early:?}");
        accept(&node, &project.id, "operator").await.unwrap();
        // Another organisation's agent may not detail it.
        let other = node.proposals().propose(
            &node,
            proposal("243100518", Change::New, details(&project.record_id)),
        );
        assert!(matches!(other, Err(ProposalError::Invalid(_))), "{other:?}");
        let d = node
            .proposals()
            .propose(
                &node,
                proposal(colomiers, Change::New, details(&project.record_id)),
            )
            .unwrap();
        assert_eq!(d.kind, "project_details");
        accept(&node, &d.id, "operator").await.unwrap();
        let published = current(&node, &d.record_id);
        assert_eq!(published.kind(), Kind::ProjectDetails);
        assert_eq!(
            published.visibility,
            maillage_record::Visibility::Restricted {
                audience: vec![Siren::parse(colomiers).unwrap()]
            }
        );
        node.stop();
    }
}
