//! Signed aggregates (docs/aggregates.md): the figures of a territory's
//! records, computed from the records' contents alone, and the checks of an
//! aggregate against what a verifier holds.
//!
//! Does no IO: the node hands in the record versions it selected (or the
//! aggregates a roll-up combines), so the node that publishes and every node
//! that verifies run this same code on the same inputs and get the same
//! figures, to the bit.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::model::{Aggregate, Body, Figure, Record};
use crate::siren::Siren;
use crate::territory;
use crate::vocab::OrganisationKind;
use crate::{PublicKey, RecordId};

/// The territory of a national aggregate.
pub const FRANCE: &str = "france";

/// A figure counted from fewer organisations than this is secret: with one
/// or two, a reader would learn what a given collectivity does.
pub const MIN_ORGANISATIONS: u64 = 3;

/// The value a partition group gives a record without one ("non renseigné").
pub const UNSPECIFIED: &str = "non_renseigne";

/// The population band of a commune the reference list gives none.
pub const UNKNOWN_POPULATION: &str = "population_inconnue";

/// The groups, in the order an aggregate lists them. A *partition* group
/// puts each counted record under exactly one value, so its values add up to
/// its total: secondary suppression applies to it (below).
const GROUPS: &[(&str, bool)] = &[
    ("organisations", false),
    ("datasets", false),
    ("projects", false),
    ("theme", true),
    ("status", true),
    ("risk", true),
    ("implementation_mode", true),
    ("organisation_kind", true),
    ("population_band", true),
    ("project_details", false),
    ("budget", true),
    ("hosting", true),
    ("algorithm_type", false),
    ("energy_kwh_per_year", false),
    ("emissions_kgco2e_per_year", false),
    ("reuse", false),
    ("reused_projects", false),
];

fn group_rank(group: &str) -> usize {
    GROUPS
        .iter()
        .position(|(g, _)| *g == group)
        .unwrap_or(GROUPS.len())
}

fn is_partition(group: &str) -> bool {
    GROUPS.iter().any(|(g, p)| *g == group && *p)
}

/// A year ("2026") or a quarter ("2026-T3"; "2026-Q3" is read the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// As records write it: "2026" or "2026-T3".
    pub name: String,
    /// Milliseconds since the epoch, UTC: the first instant, and the first
    /// instant after.
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Period {
    pub fn parse(input: &str) -> Result<Period, String> {
        let bad =
            || format!("'{input}' is not a period: write a year (2026) or a quarter (2026-T3)");
        let s = input.trim();
        let (year, quarter) = match s.split_once('-') {
            None => (s, None),
            Some((y, q)) => {
                let q = q
                    .strip_prefix(['T', 'Q', 't', 'q'])
                    .and_then(|q| q.parse::<u32>().ok())
                    .filter(|q| (1..=4).contains(q))
                    .ok_or_else(bad)?;
                (y, Some(q))
            }
        };
        let year: i64 = (year.len() == 4)
            .then(|| year.parse().ok())
            .flatten()
            .filter(|y| (1970..=9998).contains(y))
            .ok_or_else(bad)?;
        let (name, first, last) = match quarter {
            None => (format!("{year}"), 1, 12),
            Some(q) => (format!("{year}-T{q}"), 3 * q - 2, 3 * q),
        };
        let (next_year, next_month) = if last == 12 {
            (year + 1, 1)
        } else {
            (year, last + 1)
        };
        Ok(Period {
            name,
            start_ms: days_from_civil(year, first) * 86_400_000,
            end_ms: days_from_civil(next_year, next_month) * 86_400_000,
        })
    }
}

/// The quarter of a date as people write it ("2025-03-15", "2025-03",
/// "03/2025", "15/03/2025"), as `Period` names it: "2025-T1".
pub fn quarter_of_date(text: &str) -> Option<String> {
    let t = text.trim();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (year, month) = if t.as_bytes().get(4) == Some(&b'-') {
        (t.get(..4)?, t.get(5..7)?)
    } else {
        let parts: Vec<&str> = t.split('/').collect();
        match parts[..] {
            [m, y] | [_, m, y] => (y, m),
            _ => return None,
        }
    };
    if !digits(year) || year.len() != 4 || !digits(month) {
        return None;
    }
    let month: u32 = month.parse().ok().filter(|m| (1..=12).contains(m))?;
    Some(format!("{year}-T{}", (month - 1) / 3 + 1))
}

/// The quarter of an instant (milliseconds since the epoch, UTC).
pub fn quarter_of_ms(ms: i64) -> String {
    let (year, month) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{year}-T{}", (month - 1) / 3 + 1)
}

/// (year, month) of a day counted from 1970-01-01 (Howard Hinnant's
/// algorithm, the inverse of `days_from_civil`).
fn civil_from_days(days: i64) -> (i64, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month)
}

/// Days from 1970-01-01 to the first of `month` of `year` (proleptic
/// Gregorian; Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32) -> i64 {
    let m = i64::from(month);
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// One record version an aggregate counts, and the organisation it counts
/// under.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub id: RecordId,
    /// Who signed it: a reuse naming a project without an author names
    /// one of its own author's.
    pub author: &'a PublicKey,
    pub organisation: &'a Siren,
    pub record: &'a Record,
}

/// The hash an aggregate commits to: SHA-256 over the ids, sorted.
pub fn hash_ids<'a>(ids: impl IntoIterator<Item = &'a RecordId>) -> String {
    let mut ids: Vec<&RecordId> = ids.into_iter().collect();
    ids.sort();
    let mut h = Sha256::new();
    for id in ids {
        h.update(id.0);
    }
    hex::encode(h.finalize())
}

/// One figure while it is being counted.
#[derive(Default)]
struct Cell {
    records: u64,
    organisations: BTreeSet<Siren>,
    sum: Option<f64>,
}

#[derive(Default)]
struct Cells(BTreeMap<(String, String), Cell>);

impl Cells {
    fn count(&mut self, group: &str, value: &str, org: &Siren) {
        let c = self
            .0
            .entry((group.to_string(), value.to_string()))
            .or_default();
        c.records += 1;
        c.organisations.insert(org.clone());
    }

    fn measure(&mut self, group: &str, v: Option<f64>, org: &Siren) {
        if let Some(v) = v.filter(|v| v.is_finite() && *v >= 0.0) {
            self.count(group, "", org);
            let c = self
                .0
                .get_mut(&(group.to_string(), String::new()))
                .expect("counted");
            c.sum = Some(c.sum.unwrap_or(0.0) + v);
        }
    }
}

/// A population band, as statistics of the DGCL write them.
pub fn population_band(population: u64) -> &'static str {
    match population {
        0..2_000 => "moins_de_2000",
        2_000..10_000 => "2000_a_9999",
        10_000..50_000 => "10000_a_49999",
        50_000..200_000 => "50000_a_199999",
        _ => "200000_et_plus",
    }
}

/// Sums are kept to the gram and the watt-hour: the same figure whatever
/// the platform's last bit.
fn rounded(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// What a leaf aggregate says, computed from its inputs. `territory`,
/// `period` and `as_of_ms` are the caller's: they chose the inputs.
pub fn compute(
    territory: &str,
    period: Option<&Period>,
    as_of_ms: i64,
    inputs: &[Input<'_>],
) -> Aggregate {
    let mut sorted: Vec<&Input<'_>> = inputs.iter().collect();
    // Sums add in one order on every node.
    sorted.sort_by_key(|i| i.id);
    let mut cells = Cells::default();
    let mut by_org: BTreeMap<&Siren, Vec<RecordId>> = BTreeMap::new();
    let mut reused: BTreeSet<(PublicKey, String)> = BTreeSet::new();
    for input in &sorted {
        let org = input.organisation;
        by_org.entry(org).or_default().push(input.id);
        cells.count("organisations", "", org);
        match &input.record.body {
            Body::Dataset(_) => cells.count("datasets", "", org),
            Body::Project(p) => {
                cells.count("projects", "", org);
                let or_unspecified = |v: Option<&'static str>| v.unwrap_or(UNSPECIFIED);
                cells.count("theme", or_unspecified(p.theme.map(|t| t.as_str())), org);
                cells.count("status", p.status.as_str(), org);
                cells.count(
                    "risk",
                    or_unspecified(p.risk_category.map(|r| r.as_str())),
                    org,
                );
                cells.count(
                    "implementation_mode",
                    or_unspecified(p.implementation_mode.map(|m| m.as_str())),
                    org,
                );
                let known = territory::by_siren(org.as_str());
                cells.count(
                    "organisation_kind",
                    or_unspecified(known.map(|c| c.kind.as_str())),
                    org,
                );
                // The bands partition the communes' projects (whose count is
                // organisation_kind = commune), not all projects: a band
                // "not a commune" would be the projects minus the communes'.
                if let Some(c) = known.filter(|c| c.kind == OrganisationKind::Commune) {
                    let band = c.population.map_or(UNKNOWN_POPULATION, population_band);
                    cells.count("population_band", band, org);
                }
            }
            Body::ProjectDetails(d) => {
                cells.count("project_details", "", org);
                let or_unspecified = |v: Option<&'static str>| v.unwrap_or(UNSPECIFIED);
                cells.count("budget", or_unspecified(d.budget.map(|b| b.as_str())), org);
                cells.count(
                    "hosting",
                    or_unspecified(d.hosting.map(|h| h.as_str())),
                    org,
                );
                let types: BTreeSet<&str> = d.algorithm_types.iter().map(|t| t.as_str()).collect();
                for t in types {
                    cells.count("algorithm_type", t, org);
                }
                cells.measure("energy_kwh_per_year", d.energy_kwh_per_year, org);
                cells.measure(
                    "emissions_kgco2e_per_year",
                    d.emissions_kgco2e_per_year,
                    org,
                );
            }
            Body::Reuse(r) => {
                cells.count("reuse", "", org);
                let author = r
                    .project
                    .author
                    .as_deref()
                    .and_then(|a| PublicKey::parse_hex(a).ok())
                    .unwrap_or(*input.author);
                if reused.insert((author, r.project.record_id.clone())) {
                    cells.count("reused_projects", "", org);
                }
            }
            _ => {}
        }
    }
    // "organisations" counted records per organisation: its figure is the
    // number of organisations.
    if let Some(c) = cells
        .0
        .get_mut(&("organisations".to_string(), String::new()))
    {
        c.records = c.organisations.len() as u64;
    }
    let organisations: Vec<Siren> = by_org.keys().map(|s| (*s).clone()).collect();
    let organisation_hashes = by_org.values().map(hash_ids).collect();
    Aggregate {
        territory: territory.to_string(),
        period: period.map(|p| p.name.clone()),
        as_of_ms,
        // Not their count: with the figures shown, it would give a secret
        // one away (the datasets, say, as the inputs minus the rest).
        inputs: 0,
        inputs_hash: hash_ids(inputs.iter().map(|i| &i.id)),
        organisations,
        organisation_hashes,
        combines: vec![],
        figures: suppressed(cells),
    }
}

/// The figures, small counts made secret (docs/aggregates.md):
/// - primary: every figure from fewer than `MIN_ORGANISATIONS`
///   organisations;
/// - secondary, in a partition group (its values add up to a published
///   total): while its secret values together come from fewer than
///   `MIN_ORGANISATIONS` organisations, the smallest shown value is made
///   secret too (else the total minus the others would give them away);
/// - linked: the population bands partition the communes' projects; if
///   their count (organisation_kind = commune) is secret, so are they.
fn suppressed(cells: Cells) -> Vec<Figure> {
    let cells = cells.0;
    let mut hidden: BTreeSet<&(String, String)> = cells
        .iter()
        .filter(|(_, c)| (c.organisations.len() as u64) < MIN_ORGANISATIONS)
        .map(|(k, _)| k)
        .collect();
    let groups: BTreeSet<&str> = cells.keys().map(|(g, _)| g.as_str()).collect();
    let communes = ("organisation_kind".to_string(), "commune".to_string());
    for group in groups.into_iter().filter(|g| is_partition(g)) {
        if group == "population_band" && hidden.contains(&communes) {
            hidden.extend(cells.keys().filter(|(g, _)| g == group));
            continue;
        }
        loop {
            let in_group = || cells.iter().filter(|((g, _), _)| g == group);
            let secret: BTreeSet<&Siren> = in_group()
                .filter(|(k, _)| hidden.contains(k))
                .flat_map(|(_, c)| &c.organisations)
                .collect();
            if secret.is_empty() || secret.len() as u64 >= MIN_ORGANISATIONS {
                break;
            }
            let smallest = in_group()
                .filter(|(k, _)| !hidden.contains(k))
                .min_by_key(|((_, v), c)| (c.records, v.clone()))
                .map(|(k, _)| k);
            match smallest {
                Some(k) => {
                    hidden.insert(k);
                }
                None => break,
            }
        }
    }
    let mut figures: Vec<Figure> = cells
        .iter()
        .map(|(key, c)| {
            let (group, value) = key.clone();
            if hidden.contains(key) {
                secret(group, value)
            } else {
                Figure {
                    group,
                    value,
                    records: Some(c.records),
                    organisations: Some(c.organisations.len() as u64),
                    sum: c.sum.map(rounded),
                    lower_bound: false,
                }
            }
        })
        .collect();
    sort(&mut figures);
    figures
}

fn secret(group: String, value: String) -> Figure {
    Figure {
        group,
        value,
        records: None,
        organisations: None,
        sum: None,
        lower_bound: false,
    }
}

/// The order figures are listed in: groups in their order, then by value.
pub fn figure_order(f: &Figure) -> (usize, &str, &str) {
    (group_rank(&f.group), &f.group, &f.value)
}

fn sort(figures: &mut [Figure]) {
    figures.sort_by(|a, b| figure_order(a).cmp(&figure_order(b)));
}

/// Why aggregates cannot be combined.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CombineError {
    #[error(
        "organisation {siren} is counted by two of the aggregates combined, {first} and {second}: combining them would count it twice"
    )]
    DoubleCounted {
        siren: Siren,
        first: String,
        second: String,
    },
    #[error("aggregate {id} is of period {found}, not {expected}")]
    Period {
        id: String,
        found: String,
        expected: String,
    },
    #[error("aggregate {id} is listed twice")]
    Repeated { id: String },
    #[error("a roll-up combines at least one aggregate")]
    Empty,
    #[error("the figures of group '{group}' add up past what a figure holds")]
    TooLarge { group: String },
}

/// A roll-up: the sums of `children` (each with its record id), which must
/// not count an organisation twice. Figures secret in a child stay secret:
/// a sum that misses some is marked `lower_bound`.
pub fn combine(
    territory: &str,
    period: Option<&Period>,
    as_of_ms: i64,
    children: &[(RecordId, &Aggregate)],
) -> Result<Aggregate, CombineError> {
    if children.is_empty() {
        return Err(CombineError::Empty);
    }
    let mut sorted: Vec<&(RecordId, &Aggregate)> = children.iter().collect();
    sorted.sort_by_key(|c| c.0);
    let name = |p: Option<&String>| p.cloned().unwrap_or_else(|| "(none)".into());
    let mut seen: BTreeMap<&Siren, RecordId> = BTreeMap::new();
    let mut previous: Option<RecordId> = None;
    for (id, child) in &sorted {
        if previous == Some(*id) {
            return Err(CombineError::Repeated { id: id.to_hex() });
        }
        previous = Some(*id);
        if child.period.as_ref() != period.map(|p| &p.name) {
            return Err(CombineError::Period {
                id: id.to_hex(),
                found: name(child.period.as_ref()),
                expected: name(period.map(|p| &p.name)),
            });
        }
        for siren in &child.organisations {
            if let Some(first) = seen.insert(siren, *id) {
                return Err(CombineError::DoubleCounted {
                    siren: siren.clone(),
                    first: first.to_hex(),
                    second: id.to_hex(),
                });
            }
        }
    }
    // Per figure: the known parts' sums, and whether a part is unknown.
    #[derive(Default)]
    struct Sum {
        records: u64,
        organisations: u64,
        sum: Option<f64>,
        known: bool,
        partial: bool,
    }
    let mut sums: BTreeMap<(String, String), Sum> = BTreeMap::new();
    for (_, child) in &sorted {
        for f in &child.figures {
            let s = sums.entry((f.group.clone(), f.value.clone())).or_default();
            match f.records {
                None => s.partial = true,
                Some(r) => {
                    let too_large = || CombineError::TooLarge {
                        group: f.group.clone(),
                    };
                    s.known = true;
                    s.records = s.records.checked_add(r).ok_or_else(too_large)?;
                    s.organisations = s
                        .organisations
                        .checked_add(f.organisations.unwrap_or(0))
                        .ok_or_else(too_large)?;
                    if let Some(v) = f.sum {
                        let total = s.sum.unwrap_or(0.0) + v;
                        if !total.is_finite() {
                            return Err(too_large());
                        }
                        s.sum = Some(total);
                    }
                    s.partial |= f.lower_bound;
                }
            }
        }
    }
    let mut figures: Vec<Figure> = sums
        .into_iter()
        .map(|((group, value), s)| {
            // The parts' authors applied the rule; a hand-signed part may
            // not have: a sum from too few organisations stays secret.
            if !s.known || s.organisations < MIN_ORGANISATIONS {
                return secret(group, value);
            }
            Figure {
                group,
                value,
                records: Some(s.records),
                organisations: Some(s.organisations),
                sum: s.sum.map(rounded),
                lower_bound: s.partial,
            }
        })
        .collect();
    sort(&mut figures);
    let organisations: Vec<Siren> = seen.into_keys().cloned().collect();
    Ok(Aggregate {
        territory: territory.to_string(),
        period: period.map(|p| p.name.clone()),
        as_of_ms,
        inputs: sorted.len() as u64,
        inputs_hash: hash_ids(sorted.iter().map(|(id, _)| id)),
        organisations,
        organisation_hashes: vec![],
        combines: sorted.iter().map(|(id, _)| id.to_hex()).collect(),
        figures,
    })
}

/// One way an aggregate differs from what the verifier recomputes.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// The aggregate counted records of this organisation; the verifier
    /// holds none of them (it lacks them, or sees another organisation).
    OrganisationLacking { siren: Siren },
    /// The verifier holds records of this organisation the aggregate did not count.
    OrganisationNotCounted { siren: Siren, records: u64 },
    /// Both hold records of this organisation, not the same versions.
    OrganisationDiffers { siren: Siren, here: u64 },
    /// The inputs match; this figure does not follow from them.
    Figure {
        group: String,
        value: String,
        claimed: String,
        recomputed: String,
    },
    /// A roll-up names an aggregate the verifier does not hold.
    CombinedLacking { id: String },
    /// A roll-up's aggregates count one organisation twice.
    DoubleCounted {
        siren: Siren,
        first: String,
        second: String,
    },
    /// Another field (the count of inputs, the hash, the organisations, the
    /// period) differs.
    Field {
        field: &'static str,
        claimed: String,
        recomputed: String,
    },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::OrganisationLacking { siren } => write!(
                f,
                "organisation {siren}: the aggregate counts records of it that this node does not hold (sync with the node that published it, then verify again)"
            ),
            Finding::OrganisationNotCounted { siren, records } => write!(
                f,
                "organisation {siren}: this node holds {records} of its records, current at the aggregate's date, that the aggregate does not count"
            ),
            Finding::OrganisationDiffers { siren, here } => write!(
                f,
                "organisation {siren}: the aggregate counts other versions of its records than the {here} this node holds at the aggregate's date"
            ),
            Finding::Figure {
                group,
                value,
                claimed,
                recomputed,
            } => {
                let what = if value.is_empty() {
                    group.clone()
                } else {
                    format!("{group} = {value}")
                };
                write!(
                    f,
                    "figure {what}: the aggregate says {claimed}, its inputs give {recomputed} (the figures do not follow from the records it commits to)"
                )
            }
            Finding::CombinedLacking { id } => write!(
                f,
                "combined aggregate {id}: this node does not hold it (sync, then verify again)"
            ),
            Finding::DoubleCounted {
                siren,
                first,
                second,
            } => write!(
                f,
                "double counting: organisation {siren} is counted by both {first} and {second}"
            ),
            Finding::Field {
                field,
                claimed,
                recomputed,
            } => write!(
                f,
                "{field}: the aggregate says {claimed}, recomputed here {recomputed}"
            ),
        }
    }
}

fn shown(f: &Figure) -> String {
    match (f.records, f.sum) {
        (None, _) => "secret".into(),
        (Some(r), None) => format!(
            "{r}{} records from {} organisations",
            if f.lower_bound { "+" } else { "" },
            f.organisations.unwrap_or(0)
        ),
        (Some(r), Some(s)) => format!(
            "{s} over {r}{} records from {} organisations",
            if f.lower_bound { "+" } else { "" },
            f.organisations.unwrap_or(0)
        ),
    }
}

/// How `claimed` differs from `recomputed` (what the verifier computed from
/// the inputs it holds, or from the aggregates it combines): nothing if they
/// match. Inputs are compared organisation by organisation, so a mismatch
/// names whose records differ (`held`: the verifier's records per
/// organisation, see `held`); figures only where the inputs match (else
/// every figure would differ for the same reason).
pub fn compare(
    claimed: &Aggregate,
    recomputed: &Aggregate,
    held: &BTreeMap<Siren, u64>,
) -> Vec<Finding> {
    fn field(out: &mut Vec<Finding>, field: &'static str, c: String, r: String) {
        if c != r {
            out.push(Finding::Field {
                field,
                claimed: c,
                recomputed: r,
            });
        }
    }
    let mut out = Vec::new();
    field(
        &mut out,
        "period",
        claimed.period.clone().unwrap_or_default(),
        recomputed.period.clone().unwrap_or_default(),
    );
    field(
        &mut out,
        "territory",
        claimed.territory.clone(),
        recomputed.territory.clone(),
    );
    if claimed.inputs_hash != recomputed.inputs_hash {
        let before = out.len();
        if claimed.combines.is_empty() {
            out.extend(organisations_differ(claimed, recomputed, held));
        } else {
            field(
                &mut out,
                "combines",
                claimed.combines.join(","),
                recomputed.combines.join(","),
            );
        }
        field(
            &mut out,
            "inputs",
            claimed.inputs.to_string(),
            recomputed.inputs.to_string(),
        );
        if out.len() == before {
            // Same organisations, same hashes each, yet another hash: the
            // hash itself was not computed as the rule says.
            out.push(Finding::Field {
                field: "inputs_hash",
                claimed: claimed.inputs_hash.clone(),
                recomputed: recomputed.inputs_hash.clone(),
            });
        }
        return out;
    }
    field(
        &mut out,
        "inputs",
        claimed.inputs.to_string(),
        recomputed.inputs.to_string(),
    );
    if claimed.organisations != recomputed.organisations
        || claimed.organisation_hashes != recomputed.organisation_hashes
    {
        let before = out.len();
        out.extend(organisations_differ(claimed, recomputed, held));
        if out.len() == before {
            out.push(Finding::Field {
                field: "organisations",
                claimed: format!("{} organisations", claimed.organisations.len()),
                recomputed: format!("{} organisations", recomputed.organisations.len()),
            });
        }
    }
    let key = |f: &Figure| (f.group.clone(), f.value.clone());
    let c: BTreeMap<_, _> = claimed.figures.iter().map(|f| (key(f), f)).collect();
    let r: BTreeMap<_, _> = recomputed.figures.iter().map(|f| (key(f), f)).collect();
    let keys: BTreeSet<_> = c.keys().chain(r.keys()).cloned().collect();
    for k in keys {
        let (a, b) = (c.get(&k), r.get(&k));
        if a != b {
            out.push(Finding::Figure {
                group: k.0.clone(),
                value: k.1.clone(),
                claimed: a.map_or("absent".into(), |f| shown(f)),
                recomputed: b.map_or("absent".into(), |f| shown(f)),
            });
        }
    }
    out
}

/// Organisations whose versions differ between two leaf aggregates.
fn organisations_differ(
    claimed: &Aggregate,
    recomputed: &Aggregate,
    held: &BTreeMap<Siren, u64>,
) -> Vec<Finding> {
    let hashes = |a: &Aggregate| -> BTreeMap<Siren, String> {
        a.organisations
            .iter()
            .cloned()
            .zip(a.organisation_hashes.iter().cloned())
            .collect()
    };
    let (c, r) = (hashes(claimed), hashes(recomputed));
    let here = |siren: &Siren| held.get(siren).copied().unwrap_or(0);
    let mut out = Vec::new();
    for (siren, h) in &c {
        match r.get(siren) {
            None => out.push(Finding::OrganisationLacking {
                siren: siren.clone(),
            }),
            Some(h2) if h2 != h => out.push(Finding::OrganisationDiffers {
                siren: siren.clone(),
                here: here(siren),
            }),
            Some(_) => {}
        }
    }
    for siren in r.keys().filter(|s| !c.contains_key(*s)) {
        out.push(Finding::OrganisationNotCounted {
            siren: siren.clone(),
            records: here(siren),
        });
    }
    out
}

/// Records per organisation among `inputs`: what a verifier says it holds
/// (an aggregate does not carry them: they would undo suppression).
pub fn held(inputs: &[Input<'_>]) -> BTreeMap<Siren, u64> {
    let mut out = BTreeMap::new();
    for i in inputs {
        *out.entry(i.organisation.clone()).or_insert(0) += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Dataset, Project, ProjectDetails, Visibility};
    use crate::vocab::{BudgetBand, ProjectStatus, ProjectTheme};

    // Four communes of Toulouse Métropole, and their populations.
    const A: &str = "213100035"; // Aigrefeuille, 1,310
    const B: &str = "213100225"; // Aucamville, 9,447
    const C: &str = "213100324"; // Aussonne, 7,561
    const D: &str = "213100449"; // Balma, 17,677
    // Three more.
    const E: &str = "213100530"; // Beaupuy
    const F: &str = "213100563"; // Beauzelle
    const G: &str = "213100696"; // Blagnac

    fn record(id: &str, body: Body) -> Record {
        Record {
            record_id: id.into(),
            version: 1,
            issued_at_ms: 1_700_000_000_000,
            visibility: Visibility::Federation,
            provenance: None,
            body,
        }
    }

    fn project(theme: ProjectTheme, status: ProjectStatus) -> Body {
        let mut p = Project::new("Projet", "Description", status);
        p.theme = Some(theme);
        Body::Project(p)
    }

    fn details(budget: BudgetBand, kwh: Option<f64>, co2: Option<f64>) -> Body {
        let mut d = ProjectDetails::new("p");
        d.budget = Some(budget);
        d.energy_kwh_per_year = kwh;
        d.emissions_kgco2e_per_year = co2;
        Body::ProjectDetails(d)
    }

    const AUTHOR: PublicKey = PublicKey([7; 32]);

    struct Set(Vec<(RecordId, Siren, Record)>);

    impl Set {
        fn new(rows: Vec<(&str, Body)>) -> Set {
            Set(rows
                .into_iter()
                .enumerate()
                .map(|(i, (org, body))| {
                    let mut id = [0u8; 32];
                    id[..8].copy_from_slice(
                        &(i as u64 + u64::from(org.as_bytes()[8]) * 1000).to_be_bytes(),
                    );
                    id[8..17].copy_from_slice(org.as_bytes());
                    (
                        RecordId(id),
                        Siren::parse(org).unwrap(),
                        record(&format!("r{i}"), body),
                    )
                })
                .collect())
        }

        fn inputs(&self) -> Vec<Input<'_>> {
            self.0
                .iter()
                .map(|(id, org, record)| Input {
                    id: *id,
                    author: &AUTHOR,
                    organisation: org,
                    record,
                })
                .collect()
        }

        fn without(&self, f: impl Fn(&(RecordId, Siren, Record)) -> bool) -> Set {
            Set(self.0.iter().filter(|r| !f(r)).cloned().collect())
        }
    }

    fn epci() -> Set {
        use ProjectStatus::*;
        use ProjectTheme::*;
        Set::new(vec![
            (A, project(Mobility, Deploiement)),
            (A, details(BudgetBand::Under50k, Some(100.5), Some(10.0))),
            (A, Body::Dataset(Dataset::new("Arrêts", "Les arrêts"))),
            (B, project(Mobility, Experimentation)),
            (B, details(BudgetBand::Under50k, Some(200.0), None)),
            (C, project(Mobility, Deploiement)),
            (C, details(BudgetBand::Over100k, Some(50.0), None)),
            (D, project(Administration, Deploiement)),
            (D, Body::Dataset(Dataset::new("Budget", "Le budget"))),
        ])
    }

    fn figure<'a>(a: &'a Aggregate, group: &str, value: &str) -> &'a Figure {
        a.figures
            .iter()
            .find(|f| f.group == group && f.value == value)
            .unwrap_or_else(|| panic!("no figure {group}={value} in {:#?}", a.figures))
    }

    fn shows(a: &Aggregate, group: &str, value: &str) -> Option<(u64, u64)> {
        let f = figure(a, group, value);
        Some((f.records?, f.organisations?))
    }

    #[test]
    fn figures_are_counted_and_small_counts_are_secret() {
        let set = epci();
        let a = compute("243100518", None, 1, &set.inputs());
        // Their number is not said: it would give the datasets away.
        assert_eq!(a.inputs, 0);
        assert_eq!(a.organisations.len(), 4);
        assert_eq!(a.organisation_hashes.len(), 4);
        assert_eq!(shows(&a, "organisations", ""), Some((4, 4)));
        assert_eq!(shows(&a, "projects", ""), Some((4, 4)));
        // Two datasets from two organisations: secret.
        assert_eq!(shows(&a, "datasets", ""), None);
        // Administration is one organisation's (secret); mobilités, three
        // organisations, would then give it away as the total minus
        // mobilités: secret too (secondary suppression).
        assert_eq!(shows(&a, "theme", "administration"), None);
        assert_eq!(shows(&a, "theme", "mobilites"), None);
        assert_eq!(shows(&a, "status", "experimentation"), None);
        assert_eq!(shows(&a, "status", "deploiement"), None);
        assert_eq!(shows(&a, "risk", UNSPECIFIED), Some((4, 4)));
        assert_eq!(shows(&a, "organisation_kind", "commune"), Some((4, 4)));
        // 1,310 / 9,447 and 7,561 / 17,677 inhabitants: no band has three.
        assert_eq!(shows(&a, "population_band", "moins_de_2000"), None);
        assert_eq!(shows(&a, "population_band", "2000_a_9999"), None);
        // The bands count communes only: no "not a commune" band.
        assert!(
            !a.figures
                .iter()
                .any(|f| f.group == "population_band" && f.value == UNSPECIFIED)
        );
        assert_eq!(shows(&a, "project_details", ""), Some((3, 3)));
        assert_eq!(shows(&a, "budget", "under_50k"), None);
        assert_eq!(shows(&a, "budget", "over_100k"), None);
        assert_eq!(shows(&a, "hosting", UNSPECIFIED), Some((3, 3)));
        let energy = figure(&a, "energy_kwh_per_year", "");
        assert_eq!((energy.records, energy.sum), (Some(3), Some(350.5)));
        // One organisation measured its emissions.
        assert!(figure(&a, "emissions_kgco2e_per_year", "").is_secret());
        // Secret means no number at all.
        let secret = figure(&a, "datasets", "");
        assert_eq!((secret.organisations, secret.sum), (None, None));
        // The same inputs in another order: the same aggregate.
        let mut reversed = set.inputs();
        reversed.reverse();
        assert_eq!(compute("243100518", None, 1, &reversed), a);
    }

    #[test]
    fn a_recomputation_names_what_differs() {
        let set = epci();
        let claimed = compute("243100518", None, 1, &set.inputs());
        let same = set.inputs();
        assert!(
            compare(
                &claimed,
                &compute("243100518", None, 1, &same),
                &held(&same)
            )
            .is_empty()
        );

        // Tampered: a figure the records do not give.
        let mut tampered = claimed.clone();
        tampered
            .figures
            .iter_mut()
            .find(|f| f.group == "projects")
            .unwrap()
            .records = Some(40);
        let found = compare(&tampered, &claimed, &held(&same));
        assert!(
            matches!(&found[..], [Finding::Figure { group, claimed, .. }] if group == "projects" && claimed.starts_with("40 ")),
            "{found:?}"
        );

        // The verifier lacks A's project, and every record of D.
        let lacking = set.without(|(_, org, r)| {
            (org.as_str() == A && r.kind() == crate::Kind::Project) || org.as_str() == D
        });
        let inputs = lacking.inputs();
        let here = compute("243100518", None, 1, &inputs);
        let found = compare(&claimed, &here, &held(&inputs));
        let a = Siren::parse(A).unwrap();
        let d = Siren::parse(D).unwrap();
        assert!(
            found.contains(&Finding::OrganisationDiffers { siren: a, here: 2 }),
            "{found:?}"
        );
        assert!(
            found.contains(&Finding::OrganisationLacking { siren: d }),
            "{found:?}"
        );
        assert!(
            found.iter().all(|f| !matches!(f, Finding::Figure { .. })),
            "{found:?}"
        );
        // And the other way: the verifier holds what the aggregate left out.
        let found = compare(&here, &claimed, &held(&same));
        assert!(found.contains(&Finding::OrganisationNotCounted {
            siren: Siren::parse(D).unwrap(),
            records: 2
        }));
    }

    #[test]
    fn a_roll_up_sums_what_is_shown_and_refuses_double_counting() {
        use ProjectStatus::*;
        use ProjectTheme::*;
        let epci = compute("243100518", None, 1, &epci().inputs());
        let other = Set::new(vec![
            (E, project(Mobility, Deploiement)),
            (F, project(Mobility, Deploiement)),
            (G, project(Mobility, Deploiement)),
        ]);
        let other = compute("31", None, 1, &other.inputs());
        assert_eq!(shows(&other, "theme", "mobilites"), Some((3, 3)));
        let (x, y) = (RecordId([1; 32]), RecordId([2; 32]));
        let up = combine("dep:31", None, 2, &[(y, &other), (x, &epci)]).unwrap();
        assert_eq!(up.inputs, 2);
        assert_eq!(up.combines, vec![x.to_hex(), y.to_hex()]);
        assert!(up.organisation_hashes.is_empty());
        assert_eq!(up.organisations.len(), 7);
        assert_eq!(shows(&up, "projects", ""), Some((7, 7)));
        // Secret in the EPCI's: at least the other's three.
        let mobility = figure(&up, "theme", "mobilites");
        assert_eq!((mobility.records, mobility.lower_bound), (Some(3), true));
        assert!(figure(&up, "theme", "administration").is_secret());
        assert_eq!(figure(&up, "energy_kwh_per_year", "").sum, Some(350.5));
        // It verifies: the same roll-up from the same aggregates.
        let again = combine("dep:31", None, 2, &[(x, &epci), (y, &other)]).unwrap();
        assert!(compare(&up, &again, &BTreeMap::new()).is_empty());

        // A member under two chefs de file.
        let twice = Set::new(vec![(A, project(Mobility, Termine))]);
        let twice = compute("31", None, 1, &twice.inputs());
        let z = RecordId([3; 32]);
        let err = combine("dep:31", None, 2, &[(x, &epci), (z, &twice)]).unwrap_err();
        assert_eq!(
            err,
            CombineError::DoubleCounted {
                siren: Siren::parse(A).unwrap(),
                first: x.to_hex(),
                second: z.to_hex()
            }
        );
        // Another period.
        let q = Period::parse("2026-T1").unwrap();
        assert!(matches!(
            combine("dep:31", Some(&q), 2, &[(x, &epci)]),
            Err(CombineError::Period { .. })
        ));
    }

    /// Secret values of a group must together come from 3 organisations:
    /// two secret values of one organisation each are not enough (each
    /// would learn the other's as the total minus the rest).
    #[test]
    fn secondary_suppression_covers_three_organisations() {
        use ProjectStatus::*;
        use ProjectTheme::*;
        let set = Set::new(vec![
            (A, project(Mobility, Deploiement)),
            (B, project(Mobility, Deploiement)),
            (C, project(Mobility, Deploiement)),
            (D, project(Mobility, Deploiement)),
            (E, project(Administration, Deploiement)),
            (F, project(Citizenship, Deploiement)),
            (G, project(Attractiveness, Deploiement)),
            (G, project(Attractiveness, Deploiement)),
            (A, project(Attractiveness, Deploiement)),
            (B, project(Attractiveness, Deploiement)),
        ]);
        let a = compute("243100518", None, 1, &set.inputs());
        // Administration (E) and citoyenneté (F): two secrets, two
        // organisations; the smallest shown (attractivité, 4 from 3) joins
        // them, and mobilités stays.
        assert_eq!(shows(&a, "theme", "administration"), None);
        assert_eq!(shows(&a, "theme", "citoyennete"), None);
        assert_eq!(shows(&a, "theme", "attractivite"), None);
        assert_eq!(shows(&a, "theme", "mobilites"), Some((4, 4)));
        assert_eq!(shows(&a, "projects", ""), Some((10, 7)));
    }

    /// What the node stores is what it signed: figures in order, each
    /// once; a shown figure says its organisations; one spelling of a
    /// period.
    #[test]
    fn an_aggregate_is_refused_unless_written_one_way() {
        let a = compute("243100518", None, 1, &epci().inputs());
        let check = |a: Aggregate| {
            let mut rec = record("aggregate-x", Body::Aggregate(a));
            rec.visibility = Visibility::Public;
            rec.validate()
        };
        assert!(check(a.clone()).is_ok());
        let mut twice = a.clone();
        let projects = twice
            .figures
            .iter()
            .find(|f| f.group == "projects")
            .unwrap()
            .clone();
        twice.figures.insert(
            0,
            Figure {
                records: Some(60),
                ..projects
            },
        );
        assert!(check(twice).unwrap_err().field.starts_with("figures["));
        let mut shuffled = a.clone();
        shuffled.figures.reverse();
        assert!(check(shuffled).is_err());
        let mut half = a.clone();
        half.figures[0].organisations = None;
        assert_eq!(check(half).unwrap_err().field, "figures[0].organisations");
        let mut period = a;
        period.period = Some("2026-q3".into());
        let e = check(period).unwrap_err();
        assert!(e.message.contains("2026-T3"), "{e}");
    }

    #[test]
    fn periods_are_years_and_quarters() {
        let y = Period::parse("2026").unwrap();
        assert_eq!(y.name, "2026");
        // 2026-01-01T00:00:00Z and 2027-01-01T00:00:00Z.
        assert_eq!(
            (y.start_ms, y.end_ms),
            (1_767_225_600_000, 1_798_761_600_000)
        );
        let q = Period::parse("2026-Q3").unwrap();
        assert_eq!(q.name, "2026-T3");
        // 2026-07-01 and 2026-10-01.
        assert_eq!(
            (q.start_ms, q.end_ms),
            (1_782_864_000_000, 1_790_812_800_000)
        );
        assert_eq!(Period::parse("2026-T4").unwrap().end_ms, y.end_ms);
        for bad in ["26", "2026-T5", "2026-03", "T3", ""] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
        // Quarters of dates as records write them, and of instants.
        for (date, quarter) in [
            ("2025-03-15", "2025-T1"),
            ("2025-04", "2025-T2"),
            ("09/2024", "2024-T3"),
            ("15/12/2023", "2023-T4"),
        ] {
            assert_eq!(quarter_of_date(date).as_deref(), Some(quarter), "{date}");
        }
        assert_eq!(quarter_of_date("bientôt"), None);
        assert_eq!(quarter_of_date("13/2025"), None);
        assert_eq!(quarter_of_ms(q.start_ms), "2026-T3");
        assert_eq!(quarter_of_ms(q.end_ms - 1), "2026-T3");
        assert_eq!(quarter_of_ms(q.end_ms), "2026-T4");
        assert_eq!(quarter_of_ms(0), "1970-T1");
    }

    #[test]
    fn an_aggregate_survives_its_encodings() {
        let a = compute(
            "243100518",
            Some(&Period::parse("2026").unwrap()),
            1,
            &epci().inputs(),
        );
        let mut rec = record("aggregate-243100518-2026", Body::Aggregate(a));
        rec.visibility = Visibility::Public;
        rec.validate().unwrap();
        let bytes = crate::wire::encode_payload(&rec);
        assert_eq!(crate::wire::decode_payload(&bytes).unwrap(), rec);
        let json = crate::json::record_to_json(&rec);
        let back = crate::json::parse_document(&json.to_string()).unwrap();
        assert_eq!(back.record.body, rec.body);
    }
}
