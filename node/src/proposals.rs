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

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use maillage_record::model::{Agent, Provenance, Tombstone};
use maillage_record::{Body, Kind, Record, RecordId, Siren, Visibility};
use serde::{Deserialize, Serialize};

use crate::ledger::Ledger;
use crate::node::Node;
use crate::store::{Store, StoreError};

/// Proposals waiting at once, in all and from one organisation: a flood
/// from one agent cannot bury the others'.
const MAX_PENDING: usize = 1_000;
const MAX_PENDING_PER_ORGANISATION: usize = 20;
/// Proposals kept in all: past it, the oldest decided ones are forgotten
/// (a cancelled one is forgotten at once).
const MAX_KEPT: usize = 100_000;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Accepted,
    Refused,
    /// Cancelled by its organisation before any decision (and forgotten).
    Cancelled,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Pending => "en attente",
            State::Accepted => "acceptée",
            State::Refused => "refusée",
            State::Cancelled => "annulée",
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
    /// The version an edit or a withdrawal was written against: accepting
    /// it fails once the record has another.
    #[serde(default)]
    pub base_version: u64,
    /// How many times its organisation amended it: a moderator accepts the
    /// revision it read, not a later one.
    #[serde(default)]
    pub revision: u64,
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
    /// What is wrong with the proposal, in French (agents and moderators
    /// read it on the portal).
    #[error("{0}")]
    Invalid(String),
    #[error("no proposal '{0}': see `maillage proposals list`")]
    NotFound(String),
    #[error("proposal '{0}' is {1} already")]
    Decided(String, State),
    #[error("proposal '{0}' is being accepted right now")]
    Deciding(String),
    #[error("proposal '{0}' was amended since it was read: read it again before deciding")]
    Amended(String),
    #[error("proposal '{0}' is another organisation's")]
    NotYours(String),
    #[error("too many proposals wait already{0}: retry once some are decided")]
    Full(&'static str),
    #[error("the record could not be signed: {0}")]
    Sign(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ProposalError {
    /// What the portal says of it, in French.
    pub fn french(&self) -> String {
        match self {
            ProposalError::Invalid(why) => why.clone(),
            ProposalError::NotFound(id) => {
                format!("Aucune proposition n° {id} n'attend : elle a peut-être été annulée.")
            }
            ProposalError::Decided(id, state) => {
                format!("La proposition n° {id} est déjà {}.", state.label())
            }
            ProposalError::Deciding(id) => {
                format!("La proposition n° {id} est en cours de décision.")
            }
            ProposalError::Amended(id) => format!(
                "La proposition n° {id} a été modifiée par son organisation depuis que vous l'avez lue : relisez-la avant de décider."
            ),
            ProposalError::NotYours(id) => {
                format!("La proposition n° {id} est celle d'une autre organisation.")
            }
            ProposalError::Full(_) => "Trop de propositions attendent déjà : réessayez quand certaines auront été examinées.".into(),
            ProposalError::Sign(_) | ProposalError::Store(_) => {
                "Le nœud n'a pas pu enregistrer la décision ; son opérateur en trouvera la cause dans son journal.".into()
            }
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub struct Proposals {
    by_id: RwLock<BTreeMap<String, Proposal>>,
    /// Proposals being accepted now: their organisation may neither amend
    /// nor cancel them, nor anyone refuse them, meanwhile.
    deciding: Mutex<HashSet<String>>,
    /// One acceptance at a time in the node: its checks, its signing and
    /// its storing are one step (two edits of one record cannot both pass
    /// the checks, then both be published).
    publishing: tokio::sync::Mutex<()>,
}

/// A record this node publishes on behalf of an organisation.
#[derive(Debug, Clone)]
pub struct OwnRecord {
    /// Its current version's envelope id.
    pub id: RecordId,
    pub version: u64,
    pub record: Record,
}

/// A record this node publishes on behalf of `siren`, current and of a
/// kind an agent may propose: one that organisation may edit or withdraw.
pub fn organisation_record(
    node: &Node,
    record_id: &str,
    siren: &Siren,
) -> Result<Option<OwnRecord>, StoreError> {
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
        (behalf == Some(siren.as_str()) && PROPOSABLE.contains(&record.kind())).then_some(
            OwnRecord {
                id: current.id,
                version: current.version,
                record,
            },
        ),
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
/// follows from its document: its kind, title and record_id. An edit or a
/// withdrawal must name the version it was written against
/// (`base_version`), and that must be the current one. Blocking.
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
            let Some(own) = organisation_record(node, &p.record_id, &p.siren)? else {
                return invalid(format!(
                    "Ce nœud ne publie pas « {} » pour votre organisation (SIREN {}) : seuls \
                     ceux-là peuvent être modifiés ou retirés par une proposition.",
                    p.record_id, p.siren
                ));
            };
            if own.version != p.base_version {
                return invalid(changed_since(&p.record_id, p.base_version, own.version));
            }
            Some(own)
        }
    };
    let draft = maillage_record::json::parse_document(&p.document.to_string()).map_err(|e| {
        ProposalError::Invalid(format!(
            "La proposition ne forme pas un enregistrement valide : {e}."
        ))
    })?;
    let record = draft.record;
    if draft.author.is_some_and(|a| a != node.public_key()) {
        return invalid("Une proposition ne nomme pas d'auteur : le nœud la signe.".into());
    }
    match (p.change, &current) {
        (Change::Withdrawal, Some(own)) => {
            if record.kind() != Kind::Tombstone {
                return invalid("Un retrait est un avis de retrait (tombstone).".into());
            }
            p.kind = own.record.kind().as_str().to_string();
            p.title = title_of(&own.record);
        }
        (_, current) => {
            if !PROPOSABLE.contains(&record.kind()) {
                return invalid(
                    "Seuls un projet, les détails d'un projet ou un jeu de données peuvent être proposés.".into(),
                );
            }
            if let Some(own) = current
                && own.record.kind() != record.kind()
            {
                return invalid(format!(
                    "« {} » est un enregistrement de type {} : une modification garde son type.",
                    p.record_id,
                    own.record.kind().label()
                ));
            }
            p.title = title_of(&record);
            if let Body::ProjectDetails(d) = &record.body {
                if record.visibility == Visibility::Public {
                    return invalid(
                        "Les détails d'un projet ne sont pas publics : choisissez les membres de la fédération ou votre organisation.".into(),
                    );
                }
                match organisation_record(node, &d.project, &p.siren)? {
                    Some(project) if project.record.kind() == Kind::Project => {
                        p.title = format!("Détails de « {} »", title_of(&project.record));
                    }
                    _ => {
                        return invalid(format!(
                            "Ce nœud ne publie pas de projet « {} » pour votre organisation : des \
                             détails complètent l'un de ses projets.",
                            d.project
                        ));
                    }
                }
            }
            p.kind = record.kind().as_str().to_string();
        }
    }
    p.record_id = record.record_id.clone();
    Ok(())
}

fn changed_since(record_id: &str, then: u64, now: u64) -> String {
    format!(
        "« {record_id} » a changé depuis que la proposition a été écrite (version {then} alors, \
         {now} maintenant) : rouvrez-le et proposez à nouveau."
    )
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
            publishing: Default::default(),
        })
    }

    fn deciding(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.deciding.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes a pending proposal with `change`, atomically: refused if it
    /// is not pending, is being accepted (unless `accepting`, by the one
    /// accepting it), or is not `siren`'s. Saved (synced) before it shows.
    fn update(
        &self,
        ledger: &Ledger,
        id: &str,
        siren: Option<&Siren>,
        accepting: bool,
        change: impl FnOnce(&mut Proposal) -> Result<(), ProposalError>,
    ) -> Result<Proposal, ProposalError> {
        let mut all = self.by_id.write().unwrap_or_else(PoisonError::into_inner);
        let p = all
            .get(id)
            .ok_or_else(|| ProposalError::NotFound(id.to_string()))?;
        if siren.is_some_and(|s| *s != p.siren) {
            return Err(ProposalError::NotYours(id.to_string()));
        }
        if p.state != State::Pending {
            return Err(ProposalError::Decided(id.to_string(), p.state));
        }
        if !accepting && self.deciding().contains(id) {
            return Err(ProposalError::Deciding(id.to_string()));
        }
        let mut next = p.clone();
        change(&mut next)?;
        ledger.save_proposal(id, &serde_json::to_vec(&next).expect("a proposal encodes"))?;
        all.insert(id.to_string(), next.clone());
        Ok(next)
    }

    /// Keeps a new proposal, once `prepare` finds it sound (blocking).
    pub fn propose(&self, node: &Node, mut p: Proposal) -> Result<Proposal, ProposalError> {
        p.id = random_id();
        p.revision = 0;
        prepare(node, &mut p)?;
        p.state = State::Pending;
        let mut all = self.by_id.write().unwrap_or_else(PoisonError::into_inner);
        let pending = all.values().filter(|x| x.state == State::Pending);
        if pending.clone().count() >= MAX_PENDING {
            return Err(ProposalError::Full(""));
        }
        if pending.filter(|x| x.siren == p.siren).count() >= MAX_PENDING_PER_ORGANISATION {
            return Err(ProposalError::Full(" from this organisation"));
        }
        if all.len() >= MAX_KEPT {
            // The oldest decided one makes room (fewer than MAX_PENDING wait).
            let oldest = all
                .values()
                .filter(|x| x.state != State::Pending)
                .min_by_key(|x| x.decided_at_ms)
                .map(|x| x.id.clone());
            if let Some(old) = oldest {
                node.ledger().delete_proposal(&old)?;
                all.remove(&old);
            }
        }
        node.ledger()
            .save_proposal(&p.id, &serde_json::to_vec(&p).expect("a proposal encodes"))?;
        all.insert(p.id.clone(), p.clone());
        tracing::info!(id = %p.id, siren = %p.siren, kind = %p.kind, change = p.change.as_str(), "a record was proposed");
        Ok(p)
    }

    /// Replaces a pending proposal's document, for its own organisation
    /// (blocking). It keeps its id, its change, its record_id and the
    /// version an edit was written against; its revision goes up.
    pub fn amend(
        &self,
        node: &Node,
        id: &str,
        siren: &Siren,
        document: serde_json::Value,
    ) -> Result<Proposal, ProposalError> {
        let read = self
            .get(id)
            .filter(|p| p.state == State::Pending)
            .ok_or_else(|| ProposalError::NotFound(id.to_string()))?;
        if read.siren != *siren {
            return Err(ProposalError::NotYours(id.to_string()));
        }
        let mut draft = read.clone();
        draft.document = document;
        draft.document["record_id"] = draft.record_id.clone().into();
        prepare(node, &mut draft)?;
        if draft.kind != read.kind {
            return Err(ProposalError::Invalid(format!(
                "La proposition n° {id} porte sur un enregistrement de type {} : une modification \
                 garde son type.",
                read.kind
            )));
        }
        let p = self.update(node.ledger(), id, Some(siren), false, |p| {
            if p.revision != read.revision {
                return Err(ProposalError::Amended(id.to_string()));
            }
            p.document = draft.document;
            p.title = draft.title;
            p.record_id = draft.record_id;
            p.revision += 1;
            Ok(())
        })?;
        tracing::info!(id = %p.id, siren = %p.siren, revision = p.revision, "a proposal was amended");
        Ok(p)
    }

    /// Cancels a pending proposal, for its own organisation: it is
    /// forgotten.
    pub fn cancel(
        &self,
        ledger: &Ledger,
        id: &str,
        siren: &Siren,
    ) -> Result<Proposal, ProposalError> {
        let mut all = self.by_id.write().unwrap_or_else(PoisonError::into_inner);
        let p = all
            .get(id)
            .ok_or_else(|| ProposalError::NotFound(id.to_string()))?;
        if p.siren != *siren {
            return Err(ProposalError::NotYours(id.to_string()));
        }
        if p.state != State::Pending {
            return Err(ProposalError::Decided(id.to_string(), p.state));
        }
        if self.deciding().contains(id) {
            return Err(ProposalError::Deciding(id.to_string()));
        }
        ledger.delete_proposal(id)?;
        let mut p = all.remove(id).expect("checked above");
        p.state = State::Cancelled;
        tracing::info!(id = %p.id, siren = %p.siren, "a proposal was cancelled by its organisation");
        Ok(p)
    }

    pub fn get(&self, id: &str) -> Option<Proposal> {
        self.by_id
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Proposals, newest first: pending ones only, or all; of one
    /// organisation, or of all.
    pub fn list(&self, all: bool, siren: Option<&Siren>) -> Vec<Proposal> {
        let mut out: Vec<Proposal> = self
            .by_id
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|p| all || p.state == State::Pending)
            .filter(|p| siren.is_none_or(|s| p.siren == *s))
            .cloned()
            .collect();
        out.sort_by_key(|p| std::cmp::Reverse(p.created_at_ms));
        out
    }

    /// Refuses a pending proposal, saying why; `revision`, if given, must
    /// be the one the decider read.
    pub fn refuse(
        &self,
        ledger: &Ledger,
        id: &str,
        revision: Option<u64>,
        by: &str,
        reason: &str,
    ) -> Result<Proposal, ProposalError> {
        let p = self.update(ledger, id, None, false, |p| {
            if revision.is_some_and(|r| r != p.revision) {
                return Err(ProposalError::Amended(id.to_string()));
            }
            p.state = State::Refused;
            p.decided_by = by.to_string();
            p.decided_at_ms = maillage_record::now_ms();
            p.reason = reason.trim().chars().take(1_000).collect();
            Ok(())
        })?;
        tracing::info!(id = %p.id, by, "a proposal was refused");
        Ok(p)
    }
}

/// Takes a proposal off `deciding` however its acceptance ends.
struct Deciding<'a>(&'a Proposals, String);

impl Drop for Deciding<'_> {
    fn drop(&mut self) {
        self.0.deciding().remove(&self.1);
    }
}

/// Accepts a pending proposal: the node signs it with its key, on behalf of
/// the proposing organisation, and stores it (it replicates from there).
/// `revision`, if given, must be the one the decider read. The acceptance
/// runs on its own task: a caller that goes away does not stop it halfway.
pub async fn accept(
    node: &Arc<Node>,
    id: &str,
    by: &str,
    revision: Option<u64>,
) -> Result<(Proposal, maillage_proto::v1::PublishResponse), ProposalError> {
    let (node, id, by) = (node.clone(), id.to_string(), by.to_string());
    tokio::spawn(async move {
        let proposals = node.proposals();
        let _one = proposals.publishing.lock().await;
        let p = {
            let all = proposals.by_id.read().unwrap_or_else(PoisonError::into_inner);
            let p = all
                .get(&id)
                .ok_or_else(|| ProposalError::NotFound(id.clone()))?;
            if p.state != State::Pending {
                return Err(ProposalError::Decided(id.clone(), p.state));
            }
            if revision.is_some_and(|r| r != p.revision) {
                return Err(ProposalError::Amended(id.clone()));
            }
            if !proposals.deciding().insert(id.clone()) {
                return Err(ProposalError::Deciding(id.clone()));
            }
            p.clone()
        };
        let _deciding = Deciding(proposals, id.clone());
        let published = publish(&node, &p).await?;
        let p = proposals.update(node.ledger(), &id, None, true, |p| {
            p.state = State::Accepted;
            p.decided_by = by.clone();
            p.decided_at_ms = maillage_record::now_ms();
            Ok(())
        })?;
        tracing::info!(id = %p.id, by, record_id = %p.record_id, siren = %p.siren, change = p.change.as_str(), "a proposal was accepted and published");
        Ok((p, published))
    })
    .await
    .map_err(|e| ProposalError::Sign(e.to_string()))?
}

/// What accepting `p` publishes, checked again now: the record_id still
/// free (a new record), the record still at the version the proposal was
/// written against (an edit, a withdrawal), the project its details
/// complete still the organisation's. Blocking.
fn recheck(node: &Node, p: &Proposal) -> Result<(), ProposalError> {
    match p.change {
        Change::New => {
            if node
                .store()
                .current(&node.public_key(), &p.record_id)?
                .is_some()
            {
                return Err(ProposalError::Invalid(format!(
                    "Ce nœud publie désormais un autre enregistrement sous « {} » : \
                     l'organisation doit proposer à nouveau.",
                    p.record_id
                )));
            }
        }
        Change::Edit | Change::Withdrawal => {
            match organisation_record(node, &p.record_id, &p.siren)? {
                Some(own) if own.version == p.base_version => {}
                Some(own) => {
                    return Err(ProposalError::Invalid(changed_since(
                        &p.record_id,
                        p.base_version,
                        own.version,
                    )));
                }
                None => {
                    return Err(ProposalError::Invalid(format!(
                        "Ce nœud ne publie plus « {} » pour l'organisation (SIREN {}).",
                        p.record_id, p.siren
                    )));
                }
            }
        }
    }
    if p.change != Change::Withdrawal && p.kind == Kind::ProjectDetails.as_str() {
        let project = p.document["project"].as_str().unwrap_or_default();
        if organisation_record(node, project, &p.siren)?
            .is_none_or(|own| own.record.kind() != Kind::Project)
        {
            return Err(ProposalError::Invalid(format!(
                "Le projet « {project} » que ces détails complètent n'est plus publié pour l'organisation."
            )));
        }
    }
    Ok(())
}

/// Signs and stores what `p` proposes, once `recheck` holds; a project's
/// withdrawal withdraws its details (`RECORD_ID-details`) with it.
async fn publish(
    node: &Arc<Node>,
    p: &Proposal,
) -> Result<maillage_proto::v1::PublishResponse, ProposalError> {
    let draft = maillage_record::json::parse_document(&p.document.to_string()).map_err(|e| {
        ProposalError::Invalid(format!(
            "La proposition ne forme pas un enregistrement valide : {e}."
        ))
    })?;
    let mut record: Record = draft.record;
    record.version = 0;
    record.issued_at_ms = 0;
    record.provenance = Some(provenance(p));
    let (n, q) = (node.clone(), p.clone());
    let signed = tokio::task::spawn_blocking(move || {
        recheck(&n, &q)?;
        let signed = n
            .author()
            .sign(&[], record)
            .map_err(|e| ProposalError::Sign(e.to_string()))?;
        // What was current when signing must be what the checks saw: the
        // version before the one signed (before the narrowing notice, if
        // the edit narrows who may see it).
        let first = signed
            .notice
            .as_ref()
            .map_or(signed.record.record().version, |n| n.record().version);
        if first != q.base_version + 1 {
            return Err(ProposalError::Invalid(changed_since(
                &q.record_id,
                q.base_version,
                first - 1,
            )));
        }
        Ok(signed)
    })
    .await
    .map_err(|e| ProposalError::Sign(e.to_string()))??;
    let published = crate::service::publish::store_signed(node, signed)
        .await
        .map_err(|e| ProposalError::Sign(e.message().to_string()))?;
    if p.change == Change::Withdrawal && p.kind == Kind::Project.as_str() {
        let details = format!("{}-details", p.record_id);
        if let Err(e) = withdraw_too(node, p, &details).await {
            tracing::error!(error = %e, record_id = %details, "a withdrawn project's details could not be withdrawn");
        }
    }
    Ok(published)
}

/// Withdraws `record_id` too, if this node publishes it on behalf of the
/// proposal's organisation.
async fn withdraw_too(
    node: &Arc<Node>,
    p: &Proposal,
    record_id: &str,
) -> Result<(), ProposalError> {
    let (n, q, id) = (node.clone(), p.clone(), record_id.to_string());
    let signed = tokio::task::spawn_blocking(move || {
        if organisation_record(&n, &id, &q.siren)?.is_none() {
            return Ok(None);
        }
        let tombstone = Record {
            record_id: id,
            version: 0,
            issued_at_ms: 0,
            visibility: Visibility::Public,
            provenance: Some(provenance(&q)),
            body: Body::Tombstone(Tombstone {
                reason: "projet retiré".into(),
            }),
        };
        n.author()
            .sign(&[], tombstone)
            .map(Some)
            .map_err(|e| ProposalError::Sign(e.to_string()))
    })
    .await
    .map_err(|e| ProposalError::Sign(e.to_string()))??;
    if let Some(signed) = signed {
        crate::service::publish::store_signed(node, signed)
            .await
            .map_err(|e| ProposalError::Sign(e.message().to_string()))?;
    }
    Ok(())
}

/// A proposal's record is the node's, on behalf of the organisation.
fn provenance(p: &Proposal) -> Provenance {
    Provenance {
        source_format: "proposition".into(),
        source: None,
        source_identifier: Some(p.id.clone()),
        on_behalf_of: Some(Agent {
            name: p.organisation.clone(),
            siren: Some(p.siren.to_string()),
            url: None,
        }),
        as_written: Default::default(),
    }
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
            revision: 0,
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

    /// An edit or a withdrawal, written against `version`.
    fn against(mut p: Proposal, version: u64) -> Proposal {
        p.base_version = version;
        p
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

    const COLOMIERS: &str = "213101496";

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
            visibility: Visibility::Public,
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
        let proposals = node.proposals();
        let p = proposals
            .propose(
                &node,
                proposal(
                    COLOMIERS,
                    Change::New,
                    dataset("213101496-voirie", "Voirie"),
                ),
            )
            .unwrap();
        assert!(p.record_id.starts_with("213101496-voirie-"), "{p:?}");
        let (accepted, _) = accept(&node, &p.id, "operator", None).await.unwrap();
        assert_eq!(accepted.state, State::Accepted);
        assert!(matches!(
            accept(&node, &p.id, "operator", None).await,
            Err(ProposalError::Decided(..))
        ));
        let published = current(&node, &p.record_id);
        let behalf = published.provenance.as_ref().unwrap().on_behalf_of.as_ref();
        assert_eq!(behalf.unwrap().siren.as_deref(), Some(COLOMIERS));

        // The metropole's own record is no organisation's to change.
        let refused = proposals.propose(
            &node,
            against(
                proposal(
                    COLOMIERS,
                    Change::Edit,
                    dataset("213101496-voirie", "Prise"),
                ),
                1,
            ),
        );
        assert!(
            matches!(refused, Err(ProposalError::Invalid(_))),
            "{refused:?}"
        );
        // Nor is Colomiers' record another organisation's.
        let refused = proposals.propose(
            &node,
            against(
                proposal("243100518", Change::Edit, dataset(&p.record_id, "Prise")),
                1,
            ),
        );
        assert!(
            matches!(refused, Err(ProposalError::Invalid(_))),
            "{refused:?}"
        );
        // An edit must say which version it was written against.
        let blind = proposals.propose(
            &node,
            proposal(COLOMIERS, Change::Edit, dataset(&p.record_id, "x")),
        );
        assert!(matches!(blind, Err(ProposalError::Invalid(_))), "{blind:?}");

        // Two edits written against version 1: the first accepted makes
        // version 2, the second is refused (it would undo the first), and
        // amending it does not make it acceptable again.
        let first = proposals
            .propose(
                &node,
                against(
                    proposal(COLOMIERS, Change::Edit, dataset(&p.record_id, "Voirie, v2")),
                    1,
                ),
            )
            .unwrap();
        let second = proposals
            .propose(
                &node,
                against(
                    proposal(
                        COLOMIERS,
                        Change::Edit,
                        dataset(&p.record_id, "Voirie, bis"),
                    ),
                    1,
                ),
            )
            .unwrap();
        accept(&node, &first.id, "operator", None).await.unwrap();
        let late = accept(&node, &second.id, "operator", None).await;
        assert!(
            matches!(late, Err(ProposalError::Invalid(ref e)) if e.contains("a changé")),
            "{late:?}"
        );
        let own = Siren::parse(COLOMIERS).unwrap();
        let amended = proposals.amend(
            &node,
            &second.id,
            &own,
            dataset(&p.record_id, "Voirie, ter"),
        );
        assert!(
            matches!(amended, Err(ProposalError::Invalid(ref e)) if e.contains("a changé")),
            "{amended:?}"
        );
        assert_eq!(current(&node, &p.record_id).version, 2);
        assert_eq!(title_of(&current(&node, &p.record_id)), "Voirie, v2");

        // Another organisation may neither amend nor cancel Colomiers'
        // pending proposal; Colomiers may cancel it, and it is forgotten.
        let other = Siren::parse("243100518").unwrap();
        assert!(matches!(
            proposals.amend(&node, &second.id, &other, dataset("x", "Prise")),
            Err(ProposalError::NotYours(_))
        ));
        assert!(matches!(
            proposals.cancel(node.ledger(), &second.id, &other),
            Err(ProposalError::NotYours(_))
        ));
        let cancelled = proposals.cancel(node.ledger(), &second.id, &own).unwrap();
        assert_eq!(cancelled.state, State::Cancelled);
        assert!(proposals.get(&second.id).is_none());
        assert!(
            Proposals::load(node.store())
                .unwrap()
                .get(&second.id)
                .is_none()
        );

        // The withdrawal: a tombstone, on Colomiers' behalf.
        let gone = proposals
            .propose(
                &node,
                against(
                    proposal(
                        COLOMIERS,
                        Change::Withdrawal,
                        serde_json::json!({"kind": "tombstone", "record_id": p.record_id, "reason": "obsolète"}),
                    ),
                    2,
                ),
            )
            .unwrap();
        assert_eq!(
            (gone.kind.as_str(), gone.title.as_str()),
            ("dataset", "Voirie, v2")
        );
        accept(&node, &gone.id, "operator", None).await.unwrap();
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

    /// A moderator decides the revision it read: an amendment made since
    /// is neither accepted nor refused unseen; a proposal being accepted
    /// can be neither amended nor cancelled.
    #[tokio::test]
    async fn a_decision_holds_for_the_revision_read() {
        let dir = tempfile::tempdir().unwrap();
        let node = crate::node::tests::start_node(dir.path()).await;
        let proposals = node.proposals();
        let own = Siren::parse(COLOMIERS).unwrap();
        let p = proposals
            .propose(
                &node,
                proposal(COLOMIERS, Change::New, dataset("213101496-jeu", "Jeu")),
            )
            .unwrap();
        assert_eq!(p.revision, 0);
        let amended = proposals
            .amend(
                &node,
                &p.id,
                &own,
                dataset("ignored", "Jeu, public par erreur"),
            )
            .unwrap();
        assert_eq!(
            (amended.revision, amended.record_id.as_str()),
            (1, p.record_id.as_str())
        );
        assert!(matches!(
            accept(&node, &p.id, "moderator", Some(0)).await,
            Err(ProposalError::Amended(_))
        ));
        assert!(matches!(
            proposals.refuse(node.ledger(), &p.id, Some(0), "moderator", "non"),
            Err(ProposalError::Amended(_))
        ));
        // While it is being accepted, its organisation cannot touch it.
        proposals.deciding().insert(p.id.clone());
        assert!(matches!(
            proposals.cancel(node.ledger(), &p.id, &own),
            Err(ProposalError::Deciding(_))
        ));
        assert!(matches!(
            proposals.amend(&node, &p.id, &own, dataset("x", "y")),
            Err(ProposalError::Deciding(_))
        ));
        proposals.deciding().remove(&p.id);
        let (accepted, _) = accept(&node, &p.id, "moderator", Some(1)).await.unwrap();
        assert_eq!(accepted.state, State::Accepted);
        assert_eq!(
            title_of(&current(&node, &p.record_id)),
            "Jeu, public par erreur"
        );
        // Decided, it is decided for good.
        assert!(matches!(
            proposals.cancel(node.ledger(), &p.id, &own),
            Err(ProposalError::Decided(..))
        ));
        node.stop();
    }

    /// A project's details complete one of the organisation's projects
    /// this node publishes, and nothing else; they are never public; a
    /// project's withdrawal withdraws them too.
    #[tokio::test]
    async fn details_complete_the_organisation_s_own_project() {
        let dir = tempfile::tempdir().unwrap();
        let node = crate::node::tests::start_node(dir.path()).await;
        let proposals = node.proposals();
        let project = proposals
            .propose(
                &node,
                proposal(
                    COLOMIERS,
                    Change::New,
                    serde_json::json!({"kind": "project", "record_id": "213101496-fuites",
                        "name": "Fuites", "description": "d", "status": "deploiement"}),
                ),
            )
            .unwrap();
        let details = |project: &str, visibility: &str| {
            serde_json::json!({"kind": "project_details", "record_id": format!("{project}-details"),
                "project": project, "funding": "fonds propres", "visibility": visibility,
                "audience": [COLOMIERS]})
        };
        // Not published yet: no details.
        let early = proposals.propose(
            &node,
            proposal(
                COLOMIERS,
                Change::New,
                details(&project.record_id, "restricted"),
            ),
        );
        assert!(matches!(early, Err(ProposalError::Invalid(_))), "{early:?}");
        accept(&node, &project.id, "operator", None).await.unwrap();
        // Another organisation's agent may not detail it.
        let other = proposals.propose(
            &node,
            proposal(
                "243100518",
                Change::New,
                details(&project.record_id, "restricted"),
            ),
        );
        assert!(matches!(other, Err(ProposalError::Invalid(_))), "{other:?}");
        // Details are never public, whatever the form says.
        let public = proposals.propose(
            &node,
            proposal(
                COLOMIERS,
                Change::New,
                details(&project.record_id, "public"),
            ),
        );
        assert!(
            matches!(public, Err(ProposalError::Invalid(_))),
            "{public:?}"
        );
        let d = proposals
            .propose(
                &node,
                proposal(
                    COLOMIERS,
                    Change::New,
                    details(&project.record_id, "restricted"),
                ),
            )
            .unwrap();
        assert_eq!(d.kind, "project_details");
        assert_eq!(d.title, "Détails de « Fuites »");
        accept(&node, &d.id, "operator", None).await.unwrap();
        let published = current(&node, &d.record_id);
        assert_eq!(published.kind(), Kind::ProjectDetails);
        assert_eq!(
            published.visibility,
            Visibility::Restricted {
                audience: vec![Siren::parse(COLOMIERS).unwrap()]
            }
        );
        // The project withdrawn, its details go with it.
        let gone = proposals
            .propose(
                &node,
                against(
                    proposal(
                        COLOMIERS,
                        Change::Withdrawal,
                        serde_json::json!({"kind": "tombstone", "record_id": project.record_id}),
                    ),
                    1,
                ),
            )
            .unwrap();
        accept(&node, &gone.id, "operator", None).await.unwrap();
        assert_eq!(current(&node, &project.record_id).kind(), Kind::Tombstone);
        let details_now = current(&node, &d.record_id);
        assert_eq!(details_now.kind(), Kind::Tombstone);
        assert_eq!(details_now.visibility, published.visibility);
        node.stop();
    }
}
