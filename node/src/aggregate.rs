//! Signed aggregates, node side (docs/aggregates.md): which record versions
//! a territory's aggregate counts, read from the search index and the store;
//! a roll-up's aggregates, read from the store; and the verdict on an
//! aggregate this node holds. The figures themselves are computed by
//! `maillage_record::aggregate`, the same code on every node.
//!
//! Reads only (blocking): signing and storing what `publish` prepares is
//! the admin service's, through `Author` and the ledger like any record.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use maillage_record::aggregate::{self, CombineError, Finding, Input, Period};
use maillage_record::model::Aggregate;
use maillage_record::territory::Place;
use maillage_record::{Body, Kind, PublicKey, Record, RecordId, Siren, Visibility};

use crate::node::Node;
use crate::search::{Org, SearchError, org_of};
use crate::store::StoreError;

/// The kinds an aggregate counts.
const COUNTED: [Kind; 4] = [
    Kind::Dataset,
    Kind::Project,
    Kind::ProjectDetails,
    Kind::Reuse,
];

/// How long an aggregate waits for the index to hold what the store holds.
const INDEX_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Combine(#[from] CombineError),
    #[error("no aggregate {0} here: this node does not hold it")]
    Unknown(String),
    #[error("record {0} is a {1}, not an aggregate")]
    NotAggregate(String, Kind),
    #[error("the search index has not caught up with the store after {0:?}: try again")]
    IndexBehind(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Search(#[from] SearchError),
}

/// What to publish.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub territory: String,
    pub period: Option<String>,
    /// Roll-up: the aggregates to combine (record ids); empty: a leaf
    /// aggregate, computed from records.
    pub combine: Vec<RecordId>,
}

/// The territory a request names: a place, or France.
fn place_of(territory: &str) -> Result<Option<Place>, AggregateError> {
    let t = territory.trim();
    if t.eq_ignore_ascii_case(aggregate::FRANCE) {
        return Ok(None);
    }
    Place::parse(t).map(Some).map_err(|e| {
        AggregateError::BadRequest(format!(
            "territory '{t}': {e} (or 'france' for a national roll-up)"
        ))
    })
}

/// The state an aggregate of `period` counts: the period's end, or now if
/// it has not ended (or no period is given).
fn as_of(period: Option<&Period>) -> i64 {
    let now = maillage_record::now_ms();
    period.map_or(now, |p| (p.end_ms - 1).min(now))
}

/// The aggregate `request` asks for, computed (not signed), with its
/// record_id: one per territory and period, a new version each time.
pub fn prepare(node: &Node, request: &Request) -> Result<Record, AggregateError> {
    let place = place_of(&request.territory)?;
    let territory = place
        .as_ref()
        .map_or_else(|| aggregate::FRANCE.to_string(), Place::to_string);
    let period = request
        .period
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(Period::parse)
        .transpose()
        .map_err(|e| AggregateError::BadRequest(format!("--period: {e}")))?;
    let as_of_ms = as_of(period.as_ref());
    let body = if request.combine.is_empty() {
        let Some(place) = &place else {
            return Err(AggregateError::BadRequest(
                "a national aggregate combines others: name them with --combine".into(),
            ));
        };
        let selected = inputs(node, place, as_of_ms)?;
        let inputs: Vec<Input<'_>> = selected.iter().map(Selected::input).collect();
        aggregate::compute(&territory, period.as_ref(), as_of_ms, &inputs)
    } else {
        let children = combined(node, &request.combine)?;
        let mut lacking = Vec::new();
        let mut held = Vec::new();
        for (id, child) in request.combine.iter().zip(&children) {
            match child {
                Some((a, Visibility::Public)) => held.push((*id, a)),
                // Its figures would reach the public through the roll-up.
                Some(_) => {
                    return Err(AggregateError::BadRequest(format!(
                        "aggregate {} is not public: a roll-up combines public aggregates only",
                        id.to_hex()
                    )));
                }
                None => lacking.push(id.to_hex()),
            }
        }
        if !lacking.is_empty() {
            return Err(AggregateError::BadRequest(format!(
                "this node does not hold the aggregate(s) {}: sync with their authors first",
                lacking.join(", ")
            )));
        }
        for (id, child) in &held {
            if let Some(why) = outside(place.as_ref(), child) {
                return Err(AggregateError::BadRequest(format!(
                    "aggregate {}: {why}",
                    id.to_hex()
                )));
            }
        }
        let refs: Vec<(RecordId, &Aggregate)> = held.iter().map(|(id, a)| (*id, *a)).collect();
        aggregate::combine(&territory, period.as_ref(), as_of_ms, &refs)?
    };
    // A leaf and a roll-up of one territory are two records: publishing
    // one does not replace the other.
    let prefix = if body.combines.is_empty() {
        "aggregate"
    } else {
        "rollup"
    };
    let record_id = match &body.period {
        Some(p) => format!("{prefix}-{territory}-{p}"),
        None => format!("{prefix}-{territory}"),
    };
    Ok(Record {
        record_id,
        version: 0,
        issued_at_ms: 0,
        visibility: Visibility::Public,
        provenance: None,
        body: Body::Aggregate(body),
    })
}

/// Why `child` cannot be part of a roll-up of `place` (None: France), if
/// it cannot: its territory is not within.
fn outside(place: Option<&Place>, child: &Aggregate) -> Option<String> {
    let Some(place) = place else { return None };
    match place_of(&child.territory) {
        Ok(Some(inner)) if inner.with_ancestors().contains(place) => None,
        _ => Some(format!(
            "it covers {}, which is not within {place}",
            child.territory
        )),
    }
}

/// One record version an aggregate counts.
struct Selected {
    id: RecordId,
    author: PublicKey,
    organisation: Siren,
    record: Record,
}

impl Selected {
    fn input(&self) -> Input<'_> {
        Input {
            id: self.id,
            author: &self.author,
            organisation: &self.organisation,
            record: &self.record,
        }
    }
}

/// Changes the index may not hold yet that an aggregate reads from the
/// store's log instead of waiting for the index (which commits every 2 s).
const UNINDEXED_READ: u64 = 50_000;

/// The records stored since the index's last commit, as candidates (their
/// keys): an aggregate published right after an import counts the import
/// without waiting for the index. If the index is rebuilding, or further
/// behind than `UNINDEXED_READ`, waits (bounded) for it instead.
fn unindexed(node: &Node) -> Result<Vec<(PublicKey, String)>, AggregateError> {
    let start = Instant::now();
    loop {
        let indexed = node.search().indexed_seq();
        let stored = node.store().last_seq();
        if !node.search().rebuilding() && stored.saturating_sub(indexed) <= UNINDEXED_READ {
            let changes = node
                .store()
                .changes_since(indexed, UNINDEXED_READ as usize)?;
            let ids: Vec<RecordId> = changes.iter().map(|c| c.id).collect();
            return Ok(node
                .store()
                .records_many(&ids)?
                .into_iter()
                .flatten()
                .filter(|(_, r)| COUNTED.contains(&r.kind()))
                .map(|(author, r)| (author, r.record_id))
                .collect());
        }
        if start.elapsed() > INDEX_WAIT {
            return Err(AggregateError::IndexBehind(INDEX_WAIT));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `records_many` on both cores: an aggregate may read a hundred thousand.
fn read_many(
    node: &Node,
    ids: &[RecordId],
) -> Result<Vec<Option<(PublicKey, Record)>>, AggregateError> {
    if ids.len() < 2_000 {
        return Ok(node.store().records_many(ids)?);
    }
    let (first, second) = ids.split_at(ids.len() / 2);
    let store = node.store();
    let (a, b) = std::thread::scope(|s| {
        let other = s.spawn(|| store.records_many(second));
        (store.records_many(first), other.join())
    });
    let mut out = a?;
    out.extend(b.map_err(|_| {
        AggregateError::BadRequest("reading the records failed (a thread panicked)".into())
    })??);
    Ok(out)
}

/// The record versions an aggregate of `place` counts as of `as_of_ms`:
/// for each dataset, project, project details and reuse placed there by
/// its organisation, public or federation, the last version issued by then
/// (none if that is a withdrawal).
fn inputs(node: &Node, place: &Place, as_of_ms: i64) -> Result<Vec<Selected>, AggregateError> {
    let recent = unindexed(node)?;
    let candidates = node.search().placed(place, &COUNTED)?;
    // The organisation the index gives is a first cut; each version's own
    // is decided below, the same way on every node.
    let mut inside: HashMap<String, bool> = HashMap::new();
    let mut within = |siren: &str| -> bool {
        *inside.entry(siren.to_string()).or_insert_with(|| {
            Place::of_siren(siren)
                .iter()
                .any(|p| p.with_ancestors().contains(place))
        })
    };
    let mut keys: Vec<(PublicKey, String)> = candidates
        .into_iter()
        .filter(|(_, org)| within(org))
        .filter_map(|(key, _)| {
            let (author, record_id) = key.split_once('/')?;
            Some((PublicKey::parse_hex(author).ok()?, record_id.to_string()))
        })
        .collect();
    // Their place is decided below, with the others'.
    keys.extend(recent);
    keys.sort();
    keys.dedup();
    let refs: Vec<(PublicKey, &str)> = keys.iter().map(|(a, r)| (*a, r.as_str())).collect();
    let current = node.store().current_many(&refs)?;
    let ids: Vec<RecordId> = current.iter().flatten().map(|c| c.id).collect();
    let records = read_many(node, &ids)?;
    let mut authors = Authors::new(node);
    let mut out = Vec::with_capacity(ids.len());
    let mut later: Vec<(PublicKey, String)> = Vec::new();
    for (id, found) in ids.iter().zip(records) {
        let Some((author, record)) = found else {
            continue;
        };
        if record.issued_at_ms > as_of_ms {
            later.push((author, record.record_id.clone()));
            continue;
        }
        out.extend(counted(*id, author, record, &mut authors, &mut within));
    }
    // Changed since: the version before, from the history (rare: an
    // aggregate of a past period, or one verified after an edit).
    for (author, record_id) in later {
        let history = node.store().history(&author, &record_id)?;
        for entry in history.iter().rev() {
            let Some(record) = node.store().record(&entry.id)? else {
                continue;
            };
            if record.issued_at_ms <= as_of_ms {
                out.extend(counted(entry.id, author, record, &mut authors, &mut within));
                break;
            }
        }
    }
    Ok(out)
}

/// `record` as an input, if an aggregate of the place counts it.
fn counted(
    id: RecordId,
    author: PublicKey,
    record: Record,
    authors: &mut Authors<'_>,
    within: &mut impl FnMut(&str) -> bool,
) -> Option<Selected> {
    if !COUNTED.contains(&record.kind())
        || matches!(record.visibility, Visibility::Restricted { .. })
    {
        return None;
    }
    let own = authors.of(&author);
    let named = org_of(&record, own).siren;
    // A record counts under the organisation it names only if its author
    // speaks for it, or for a collectivity whose territory holds it (an
    // EPCI publishing for its communes): else anyone could sign records
    // "for" others, and make a figure seem to come from 3 organisations.
    let siren = match (named, own.siren.as_deref()) {
        (Some(named), Some(own)) if named == own || holds(own, &named) => named,
        (_, Some(own)) => own.to_string(),
        (_, None) => return None,
    };
    let siren = Siren::parse(&siren).ok()?;
    within(siren.as_str()).then_some(Selected {
        id,
        author,
        organisation: siren,
        record,
    })
}

/// Whether the territory of the collectivity `outer` holds every place of
/// `inner` (a SIREN each).
fn holds(outer: &str, inner: &str) -> bool {
    let (outer, inner) = (Place::of_siren(outer), Place::of_siren(inner));
    !inner.is_empty()
        && inner
            .iter()
            .all(|p| outer.iter().any(|o| p.with_ancestors().contains(o)))
}

/// The organisation each author speaks for, asked once each.
struct Authors<'a> {
    node: &'a Node,
    known: HashMap<PublicKey, Org>,
}

impl<'a> Authors<'a> {
    fn new(node: &'a Node) -> Authors<'a> {
        Authors {
            node,
            known: HashMap::new(),
        }
    }

    fn of(&mut self, author: &PublicKey) -> &Org {
        let node = self.node;
        self.known.entry(*author).or_insert_with(|| {
            let siren = if *author == node.public_key() {
                Some(node.siren().clone())
            } else {
                node.speaks_for(author).map(|(s, _)| s)
            };
            Org {
                siren: siren.map(|s| s.as_str().to_string()),
                name: None,
            }
        })
    }
}

/// The aggregates stored under `ids`, with their visibility, in order;
/// `None` for one not held.
fn combined(
    node: &Node,
    ids: &[RecordId],
) -> Result<Vec<Option<(Aggregate, Visibility)>>, AggregateError> {
    let mut out = Vec::with_capacity(ids.len());
    for (id, found) in ids.iter().zip(node.store().records_many(ids)?) {
        out.push(match found {
            None => None,
            Some((_, record)) => match record.body {
                Body::Aggregate(a) => Some((a, record.visibility)),
                other => return Err(AggregateError::NotAggregate(id.to_hex(), other.kind())),
            },
        });
    }
    Ok(out)
}

/// Findings `verify` reports at most: a forged roll-up could otherwise
/// make millions (every organisation of every part counted twice).
const MAX_FINDINGS: usize = 100;

/// What `verify` found.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub author: PublicKey,
    pub record: Record,
    /// Empty: it matches.
    pub findings: Vec<Finding>,
    /// What this node counted (leaf) or combined (roll-up).
    pub inputs_here: u64,
}

/// Recomputes the aggregate stored under `id` from what this node holds:
/// a leaf from the record versions current at its date in its territory, a
/// roll-up from the aggregates it combines (which must not count an
/// organisation twice).
pub fn verify(node: &Node, id: &RecordId) -> Result<Verdict, AggregateError> {
    let Some((author, record)) = node.store().records_many(&[*id])?.pop().flatten() else {
        return Err(AggregateError::Unknown(id.to_hex()));
    };
    let Body::Aggregate(claimed) = &record.body else {
        return Err(AggregateError::NotAggregate(id.to_hex(), record.kind()));
    };
    let period = claimed
        .period
        .as_deref()
        .map(Period::parse)
        .transpose()
        .map_err(AggregateError::BadRequest)?;
    let mut early = Vec::new();
    if let Some(p) = &period
        && !(p.start_ms..p.end_ms).contains(&claimed.as_of_ms)
    {
        early.push(Finding::Field {
            field: "as_of_ms",
            claimed: maillage_record::json::format_time(claimed.as_of_ms),
            recomputed: format!("a date within {}", p.name),
        });
    }
    let (mut findings, inputs_here) = if claimed.combines.is_empty() {
        let place = place_of(&claimed.territory)?.ok_or_else(|| {
            AggregateError::BadRequest(
                "a national aggregate without combines counts nothing".into(),
            )
        })?;
        let selected = inputs(node, &place, claimed.as_of_ms)?;
        let inputs: Vec<Input<'_>> = selected.iter().map(Selected::input).collect();
        let recomputed = aggregate::compute(
            &claimed.territory,
            period.as_ref(),
            claimed.as_of_ms,
            &inputs,
        );
        (
            aggregate::compare(claimed, &recomputed, &aggregate::held(&inputs)),
            inputs.len() as u64,
        )
    } else {
        let ids: Vec<RecordId> = claimed
            .combines
            .iter()
            .filter_map(|h| RecordId::parse_hex(h).ok())
            .collect();
        let children = combined(node, &ids)?;
        let mut findings = Vec::new();
        let mut held = Vec::new();
        let place = place_of(&claimed.territory)?;
        for (id, child) in ids.iter().zip(&children) {
            match child {
                Some((a, visibility)) => {
                    if *visibility != Visibility::Public {
                        findings.push(Finding::Field {
                            field: "combines",
                            claimed: id.to_hex(),
                            recomputed: "an aggregate that is not public".into(),
                        });
                    }
                    if let Some(why) = outside(place.as_ref(), a) {
                        findings.push(Finding::Field {
                            field: "combines",
                            claimed: id.to_hex(),
                            recomputed: why,
                        });
                    }
                    held.push((*id, a));
                }
                None => findings.push(Finding::CombinedLacking { id: id.to_hex() }),
            }
        }
        // Every pair counting one organisation, not only the first (up to
        // a bound).
        let mut seen: BTreeMap<&Siren, RecordId> = BTreeMap::new();
        let mut double = 0usize;
        for (id, child) in &held {
            for siren in &child.organisations {
                if let Some(first) = seen.insert(siren, *id) {
                    double += 1;
                    if findings.len() < MAX_FINDINGS {
                        findings.push(Finding::DoubleCounted {
                            siren: siren.clone(),
                            first: first.to_hex(),
                            second: id.to_hex(),
                        });
                    }
                }
            }
        }
        if findings.len() == MAX_FINDINGS && double > 0 {
            findings.push(Finding::Field {
                field: "organisations",
                claimed: format!("{double} organisations counted twice in all"),
                recomputed: format!("only the first {MAX_FINDINGS} findings are listed"),
            });
        }
        if findings.is_empty() {
            let refs: Vec<(RecordId, &Aggregate)> = held.iter().map(|(id, a)| (*id, *a)).collect();
            match aggregate::combine(&claimed.territory, period.as_ref(), claimed.as_of_ms, &refs) {
                Ok(recomputed) => {
                    findings.extend(aggregate::compare(claimed, &recomputed, &BTreeMap::new()))
                }
                Err(e) => findings.push(Finding::Field {
                    field: "combines",
                    claimed: format!("{} aggregates", claimed.combines.len()),
                    recomputed: format!("they cannot be combined: {e}"),
                }),
            }
        }
        (findings, held.len() as u64)
    };
    early.append(&mut findings);
    Ok(Verdict {
        author,
        record,
        findings: early,
        inputs_here,
    })
}

/// Aggregates of a territory looked at to show the newest.
const CANDIDATES: usize = 100;

/// An aggregate as the portal and `/stats` show it.
#[derive(Debug, Clone)]
pub struct Shown {
    pub id: RecordId,
    pub author: PublicKey,
    pub record_id: String,
    /// Who signed it, as search shows the author.
    pub organisation: Option<String>,
    pub issued_at_ms: i64,
    pub aggregate: Aggregate,
}

/// The current aggregates `viewer` may see about `territory` (of it, or of
/// a territory inside it), or all if none is given: the newest first, at
/// most `max` (blocking).
pub fn published(
    node: &Node,
    viewer: &crate::viewer::Viewer,
    territory: Option<&str>,
    max: usize,
) -> Result<Vec<Shown>, AggregateError> {
    use crate::search::{Filters, SearchRequest};
    let req = SearchRequest {
        filters: Filters {
            kind: Some(Kind::Aggregate),
            territory: territory.map(str::to_string),
            ..Filters::default()
        },
        page: 1,
        // The newest are found by date, not by score: a page of candidates.
        page_size: CANDIDATES.max(max),
        ..SearchRequest::default()
    };
    let mut hits = node
        .search()
        .search(&req, viewer, node.store().last_seq())?
        .hits;
    // Only the newest received are read and decoded: an aggregate may
    // weigh 256 KiB, and this runs for every territory page.
    hits.sort_by_key(|h| std::cmp::Reverse(h.received_at_ms));
    hits.truncate(max);
    let ids: Vec<RecordId> = hits.iter().map(|h| h.id).collect();
    let mut out: Vec<Shown> = hits
        .into_iter()
        .zip(node.store().records_many(&ids)?)
        .filter_map(|(hit, found)| {
            let (author, record) = found?;
            let Body::Aggregate(aggregate) = record.body else {
                return None;
            };
            Some(Shown {
                id: hit.id,
                author,
                record_id: record.record_id,
                organisation: hit.organisation_name,
                issued_at_ms: record.issued_at_ms,
                aggregate,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        (b.aggregate.as_of_ms, b.issued_at_ms).cmp(&(a.aggregate.as_of_ms, a.issued_at_ms))
    });
    out.truncate(max);
    Ok(out)
}
