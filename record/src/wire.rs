//! The one place that converts between generated protobuf types
//! (`maillage_proto::v1`) and the domain model (`crate::model`).
//!
//! Decoding validates: a payload that decodes but breaks a rule of the model is
//! refused here, with the field named, so nothing invalid gets past `verify`.

use maillage_proto::v1 as pb;
use prost::Message;

use crate::model::{
    Agent, Aggregate, AlgorithmType, Audience, Body, BudgetBand, Checksum, Collection, Contact,
    DataAccessMode, DataSource, Dataset, Distribution, EpciNature, Figure, Frequency, Hosting,
    ImplementationMode, Kind, Level, LicenceRef, Link, Membership, MembershipRole, Organisation,
    OrganisationKind, Project, ProjectDetails, ProjectStatus, ProjectTheme, Provenance, Record,
    RecordRef, Resource, ResourceKind, Reuse, Revocation, RiskCategory, Spatial,
    SpatialGranularity, Succession, Temporal, Tombstone, ValidationError, Visibility,
};
use crate::siren::Siren;

/// Encodes a record as the payload bytes its author signs.
pub fn encode_payload(record: &Record) -> Vec<u8> {
    payload_to_proto(record).encode_to_vec()
}

/// Decodes and validates payload bytes.
pub fn decode_payload(bytes: &[u8]) -> Result<Record, PayloadError> {
    let p = pb::Payload::decode(bytes).map_err(|e| PayloadError::Decode(e.to_string()))?;
    let record = payload_from_proto(p)?;
    record.validate()?;
    Ok(record)
}

/// The kind of a payload, read from its body's field number without
/// decoding anything else: cheap enough to ask of every envelope served.
/// `None` if the bytes are not a protobuf message with a body.
pub fn payload_kind(bytes: &[u8]) -> Option<Kind> {
    fn varint(b: &[u8], at: &mut usize) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *b.get(*at)?;
            *at += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    }
    let mut at = 0;
    let mut kind = None;
    while at < bytes.len() {
        let tag = varint(bytes, &mut at)?;
        match tag & 7 {
            0 => {
                varint(bytes, &mut at)?;
            }
            1 => at += 8,
            2 => {
                let len = usize::try_from(varint(bytes, &mut at)?).ok()?;
                at = at.checked_add(len)?;
            }
            5 => at += 4,
            _ => return None,
        }
        if at > bytes.len() {
            return None;
        }
        // The body's fields, as payload.proto numbers them; the last wins,
        // as in a protobuf decoder.
        kind = match tag >> 3 {
            10 => Some(Kind::Organisation),
            11 => Some(Kind::Dataset),
            12 => Some(Kind::Project),
            13 => Some(Kind::Tombstone),
            14 => Some(Kind::Membership),
            15 => Some(Kind::ProjectDetails),
            16 => Some(Kind::Resource),
            17 => Some(Kind::Collection),
            18 => Some(Kind::Succession),
            19 => Some(Kind::Revocation),
            20 => Some(Kind::Aggregate),
            21 => Some(Kind::Reuse),
            _ => kind,
        };
    }
    kind
}

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("payload is not a valid protobuf Payload: {0}")]
    Decode(String),
    #[error("payload is invalid: {0}")]
    Invalid(#[from] ValidationError),
}

pub fn payload_to_proto(r: &Record) -> pb::Payload {
    use pb::visibility::Scope;
    let (scope, audience) = match &r.visibility {
        Visibility::Public => (Scope::Public, vec![]),
        Visibility::Federation => (Scope::Federation, vec![]),
        Visibility::Restricted { audience } => (
            Scope::Restricted,
            audience.iter().map(|s| s.as_str().to_string()).collect(),
        ),
    };
    let body = match &r.body {
        Body::Organisation(o) => pb::payload::Body::Organisation(pb::Organisation {
            siren: o.siren.to_string(),
            name: o.name.clone(),
            siret: text(&o.siret),
            website: text(&o.website),
            kind: code(o.kind, OrganisationKind::code),
            epci_nature: code(o.epci_nature, EpciNature::code),
            insee: text(&o.insee),
            departement: text(&o.departement),
            region: text(&o.region),
            contact: o.contact.as_ref().map(contact_to_proto),
        }),
        Body::Dataset(d) => pb::payload::Body::Dataset(pb::Dataset {
            title: d.title.clone(),
            description: d.description.clone(),
            keywords: d.keywords.clone(),
            themes: d.themes.clone(),
            identifier: text(&d.identifier),
            landing_page: text(&d.landing_page),
            licence: licence_text(&d.licence),
            distributions: d
                .distributions
                .iter()
                .map(|x| pb::Distribution {
                    access_url: x.access_url.clone(),
                    title: text(&x.title),
                    format: text(&x.format),
                    media_type: text(&x.media_type),
                    download_url: text(&x.download_url),
                    licence: licence_text(&x.licence),
                    byte_size: x.byte_size.unwrap_or(0),
                    checksum_algorithm: x
                        .checksum
                        .as_ref()
                        .map(|c| c.algorithm.clone())
                        .unwrap_or_default(),
                    checksum: x
                        .checksum
                        .as_ref()
                        .map(|c| c.value.clone())
                        .unwrap_or_default(),
                    conforms_to: text(&x.conforms_to),
                })
                .collect(),
            publisher: d.publisher.as_ref().map(agent_to_proto),
            contact_point: d.contact_point.as_ref().map(contact_to_proto),
            spatial: d.spatial.as_ref().map(|sp| pb::Spatial {
                insee_codes: sp.insee_codes.clone(),
                granularity: code(sp.granularity, SpatialGranularity::code),
                label: text(&sp.label),
            }),
            temporal: d.temporal.as_ref().map(|t| pb::Temporal {
                start: text(&t.start),
                end: text(&t.end),
            }),
            frequency: code(d.frequency, Frequency::code),
            issued: text(&d.issued),
            modified: text(&d.modified),
        }),
        Body::Project(p) => pb::payload::Body::Project(pb::Project {
            name: p.name.clone(),
            description: p.description.clone(),
            status: p.status.code(),
            abandon_reason: text(&p.abandon_reason),
            start_date: text(&p.start_date),
            website: text(&p.website),
            organisation_name: text(&p.organisation_name),
            siret: text(&p.siret),
            organisation_kind: code(p.organisation_kind, OrganisationKind::code),
            partners: p.partners.clone(),
            implementation_mode: code(p.implementation_mode, ImplementationMode::code),
            theme: code(p.theme, ProjectTheme::code),
            sub_themes: p.sub_themes.clone(),
            audiences: p.audiences.iter().map(|a| a.code()).collect(),
            risk_category: code(p.risk_category, RiskCategory::code),
            proportionality: text(&p.proportionality),
            human_oversight: text(&p.human_oversight),
            error_level: code(p.error_level, Level::code),
            explainability: code(p.explainability, Level::code),
            reversibility: text(&p.reversibility),
            objection_procedure: text(&p.objection_procedure),
            links: p.links.iter().map(link_to_proto).collect(),
            latitude: p.latitude,
            longitude: p.longitude,
            logo_url: text(&p.logo_url),
            legal_basis: text(&p.legal_basis),
            dpia_reference: text(&p.dpia_reference),
            monitoring: text(&p.monitoring),
            codebase_url: text(&p.codebase_url),
            datasets: p.datasets.iter().map(ref_to_proto).collect(),
            last_updated: text(&p.last_updated),
            coverage: p.coverage.clone(),
        }),
        Body::ProjectDetails(d) => pb::payload::Body::ProjectDetails(pb::ProjectDetails {
            project: d.project.clone(),
            contact: d.contact.as_ref().map(contact_to_proto),
            funding: text(&d.funding),
            budget: code(d.budget, BudgetBand::code),
            hosting: code(d.hosting, Hosting::code),
            hosting_location: text(&d.hosting_location),
            algorithm_name: text(&d.algorithm_name),
            algorithm_description: text(&d.algorithm_description),
            algorithm_operations: text(&d.algorithm_operations),
            algorithm_types: d.algorithm_types.iter().map(|a| a.code()).collect(),
            data_sources: d.data_sources.iter().map(|a| a.code()).collect(),
            data_access_modes: d.data_access_modes.iter().map(|a| a.code()).collect(),
            environmental_impact: text(&d.environmental_impact),
            energy_kwh_per_year: d.energy_kwh_per_year,
            emissions_kgco2e_per_year: d.emissions_kgco2e_per_year,
            resources: d.resources.iter().map(link_to_proto).collect(),
        }),
        Body::Resource(x) => pb::payload::Body::Resource(pb::Resource {
            kind: x.resource_kind.code(),
            title: x.title.clone(),
            description: text(&x.description),
            url: text(&x.url),
            content: text(&x.content),
            licence: licence_text(&x.licence),
            related: x.related.iter().map(ref_to_proto).collect(),
        }),
        Body::Collection(c) => pb::payload::Body::Collection(pb::Collection {
            title: c.title.clone(),
            description: text(&c.description),
            items: c.items.iter().map(ref_to_proto).collect(),
        }),
        Body::Tombstone(t) => pb::payload::Body::Tombstone(pb::Tombstone {
            reason: t.reason.clone(),
        }),
        Body::Membership(m) => pb::payload::Body::Membership(pb::Membership {
            member_key: m.member_key.0.to_vec(),
            siren: m.siren.to_string(),
            role: m.role.code(),
            valid_from_ms: m.valid_from_ms,
            valid_until_ms: m.valid_until_ms,
            scope: m.scope.clone(),
        }),
        Body::Succession(x) => pb::payload::Body::Succession(pb::Succession {
            predecessor: x.predecessor.0.to_vec(),
            successor: x.successor.0.to_vec(),
            // Validated as hex before signing; anything else encodes empty.
            successor_signature: hex::decode(&x.successor_signature).unwrap_or_default(),
        }),
        Body::Revocation(r) => pb::payload::Body::Revocation(pb::Revocation {
            key: r.key.0.to_vec(),
            compromised_since_ms: r.compromised_since_ms,
            reason: r.reason.clone(),
        }),
        Body::Aggregate(a) => pb::payload::Body::Aggregate(pb::Aggregate {
            territory: a.territory.clone(),
            period: text(&a.period),
            as_of_ms: a.as_of_ms,
            inputs: a.inputs,
            // Validated as hex before signing; anything else encodes empty.
            inputs_hash: hex::decode(&a.inputs_hash).unwrap_or_default(),
            organisations: a
                .organisations
                .iter()
                .map(|s| s.as_str().parse::<u32>().unwrap_or_default())
                .collect(),
            organisation_hashes: a
                .organisation_hashes
                .iter()
                .map(|h| hex::decode(h).unwrap_or_default())
                .collect(),
            combines: a
                .combines
                .iter()
                .map(|h| hex::decode(h).unwrap_or_default())
                .collect(),
            figures: a
                .figures
                .iter()
                .map(|f| pb::aggregate::Figure {
                    group: f.group.clone(),
                    value: f.value.clone(),
                    secret: f.records.is_none(),
                    records: f.records.unwrap_or_default(),
                    organisations: f.organisations.unwrap_or_default(),
                    sum: f.sum,
                    lower_bound: f.lower_bound,
                })
                .collect(),
        }),
        Body::Reuse(r) => pb::payload::Body::Reuse(pb::Reuse {
            project: Some(ref_to_proto(&r.project)),
            since: text(&r.since),
            how: text(&r.how),
        }),
    };
    pb::Payload {
        record_id: r.record_id.clone(),
        version: r.version,
        issued_at_ms: r.issued_at_ms,
        visibility: Some(pb::Visibility {
            scope: scope as i32,
            audience,
        }),
        provenance: r.provenance.as_ref().map(|p| pb::Provenance {
            source_format: p.source_format.clone(),
            source: text(&p.source),
            source_identifier: text(&p.source_identifier),
            on_behalf_of: p.on_behalf_of.as_ref().map(agent_to_proto),
            as_written: p
                .as_written
                .iter()
                .map(|(field, value)| pb::SourceValue {
                    field: field.clone(),
                    value: value.clone(),
                })
                .collect(),
        }),
        body: Some(body),
    }
}

/// Converts without the version rule, so drafts (version 0) pass; callers
/// validate what they need.
pub fn payload_from_proto(p: pb::Payload) -> Result<Record, ValidationError> {
    use pb::visibility::Scope;
    let vis = p
        .visibility
        .ok_or_else(|| ValidationError::new("visibility", "is required"))?;
    let visibility = match Scope::try_from(vis.scope) {
        Ok(Scope::Public) | Ok(Scope::Federation) if !vis.audience.is_empty() => {
            return Err(ValidationError::new(
                "audience",
                "only a restricted record has an audience",
            ));
        }
        Ok(Scope::Public) => Visibility::Public,
        Ok(Scope::Federation) => Visibility::Federation,
        Ok(Scope::Restricted) => Visibility::Restricted {
            audience: vis
                .audience
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    Siren::parse(s)
                        .map_err(|e| ValidationError::new(format!("audience[{i}]"), e.to_string()))
                })
                .collect::<Result<_, _>>()?,
        },
        Ok(Scope::Unspecified) | Err(_) => {
            return Err(ValidationError::new(
                "visibility",
                format!(
                    "scope {} is not public, federation or restricted",
                    vis.scope
                ),
            ));
        }
    };
    let body = match p.body {
        None => {
            return Err(ValidationError::new(
                "body",
                format!(
                    "is missing or of a kind this node does not know; known kinds: {}",
                    Kind::ALL.map(Kind::as_str).join(", ")
                ),
            ));
        }
        Some(pb::payload::Body::Organisation(o)) => Body::Organisation(Organisation {
            siren: siren_from(&o.siren)?,
            name: o.name,
            siret: non_empty(o.siret),
            website: non_empty(o.website),
            kind: vocab("kind", o.kind, OrganisationKind::from_code)?,
            epci_nature: vocab("epci_nature", o.epci_nature, EpciNature::from_code)?,
            insee: non_empty(o.insee),
            departement: non_empty(o.departement),
            region: non_empty(o.region),
            contact: o.contact.map(contact_from_proto),
        }),
        Some(pb::payload::Body::Dataset(d)) => Body::Dataset(Dataset {
            title: d.title,
            description: d.description,
            keywords: d.keywords,
            themes: d.themes,
            identifier: non_empty(d.identifier),
            landing_page: non_empty(d.landing_page),
            licence: licence_from("licence", d.licence)?,
            distributions: d
                .distributions
                .into_iter()
                .enumerate()
                .map(|(i, x)| {
                    Ok(Distribution {
                        access_url: x.access_url,
                        title: non_empty(x.title),
                        format: non_empty(x.format),
                        media_type: non_empty(x.media_type),
                        download_url: non_empty(x.download_url),
                        licence: licence_from("licence", x.licence)
                            .map_err(|e| e.within(&format!("distributions[{i}]")))?,
                        byte_size: (x.byte_size > 0).then_some(x.byte_size),
                        checksum: (!x.checksum.is_empty()).then_some(Checksum {
                            algorithm: x.checksum_algorithm,
                            value: x.checksum,
                        }),
                        conforms_to: non_empty(x.conforms_to),
                    })
                })
                .collect::<Result<_, ValidationError>>()?,
            publisher: d.publisher.map(agent_from_proto),
            contact_point: d.contact_point.map(contact_from_proto),
            spatial: d
                .spatial
                .map(|sp| {
                    Ok::<_, ValidationError>(Spatial {
                        insee_codes: sp.insee_codes,
                        granularity: vocab(
                            "spatial.granularity",
                            sp.granularity,
                            SpatialGranularity::from_code,
                        )?,
                        label: non_empty(sp.label),
                    })
                })
                .transpose()?,
            temporal: d.temporal.map(|t| Temporal {
                start: non_empty(t.start),
                end: non_empty(t.end),
            }),
            frequency: vocab("frequency", d.frequency, Frequency::from_code)?,
            issued: non_empty(d.issued),
            modified: non_empty(d.modified),
        }),
        Some(pb::payload::Body::Project(p)) => Body::Project(Project {
            name: p.name,
            description: p.description,
            status: vocab("status", p.status, ProjectStatus::from_code)?
                .ok_or_else(|| ValidationError::new("status", "is required"))?,
            abandon_reason: non_empty(p.abandon_reason),
            start_date: non_empty(p.start_date),
            website: non_empty(p.website),
            organisation_name: non_empty(p.organisation_name),
            siret: non_empty(p.siret),
            organisation_kind: vocab(
                "organisation_kind",
                p.organisation_kind,
                OrganisationKind::from_code,
            )?,
            partners: p.partners,
            implementation_mode: vocab(
                "implementation_mode",
                p.implementation_mode,
                ImplementationMode::from_code,
            )?,
            theme: vocab("theme", p.theme, ProjectTheme::from_code)?,
            sub_themes: p.sub_themes,
            audiences: vocabs("audiences", p.audiences, Audience::from_code)?,
            risk_category: vocab("risk_category", p.risk_category, RiskCategory::from_code)?,
            proportionality: non_empty(p.proportionality),
            human_oversight: non_empty(p.human_oversight),
            error_level: vocab("error_level", p.error_level, Level::from_code)?,
            explainability: vocab("explainability", p.explainability, Level::from_code)?,
            reversibility: non_empty(p.reversibility),
            objection_procedure: non_empty(p.objection_procedure),
            links: p.links.into_iter().map(link_from_proto).collect(),
            latitude: p.latitude,
            longitude: p.longitude,
            logo_url: non_empty(p.logo_url),
            legal_basis: non_empty(p.legal_basis),
            dpia_reference: non_empty(p.dpia_reference),
            monitoring: non_empty(p.monitoring),
            codebase_url: non_empty(p.codebase_url),
            datasets: refs_from("datasets", p.datasets)?,
            last_updated: non_empty(p.last_updated),
            coverage: p.coverage,
        }),
        Some(pb::payload::Body::ProjectDetails(d)) => Body::ProjectDetails(ProjectDetails {
            project: d.project,
            contact: d.contact.map(contact_from_proto),
            funding: non_empty(d.funding),
            budget: vocab("budget", d.budget, BudgetBand::from_code)?,
            hosting: vocab("hosting", d.hosting, Hosting::from_code)?,
            hosting_location: non_empty(d.hosting_location),
            algorithm_name: non_empty(d.algorithm_name),
            algorithm_description: non_empty(d.algorithm_description),
            algorithm_operations: non_empty(d.algorithm_operations),
            algorithm_types: vocabs(
                "algorithm_types",
                d.algorithm_types,
                AlgorithmType::from_code,
            )?,
            data_sources: vocabs("data_sources", d.data_sources, DataSource::from_code)?,
            data_access_modes: vocabs(
                "data_access_modes",
                d.data_access_modes,
                DataAccessMode::from_code,
            )?,
            environmental_impact: non_empty(d.environmental_impact),
            energy_kwh_per_year: d.energy_kwh_per_year,
            emissions_kgco2e_per_year: d.emissions_kgco2e_per_year,
            resources: d.resources.into_iter().map(link_from_proto).collect(),
        }),
        Some(pb::payload::Body::Resource(x)) => Body::Resource(Resource {
            resource_kind: vocab("resource_kind", x.kind, ResourceKind::from_code)?
                .ok_or_else(|| ValidationError::new("resource_kind", "is required"))?,
            title: x.title,
            description: non_empty(x.description),
            url: non_empty(x.url),
            content: non_empty(x.content),
            licence: licence_from("licence", x.licence)?,
            related: refs_from("related", x.related)?,
        }),
        Some(pb::payload::Body::Collection(c)) => Body::Collection(Collection {
            title: c.title,
            description: non_empty(c.description),
            items: refs_from("items", c.items)?,
        }),
        Some(pb::payload::Body::Tombstone(t)) => Body::Tombstone(Tombstone { reason: t.reason }),
        Some(pb::payload::Body::Membership(m)) => Body::Membership(Membership {
            member_key: crate::envelope::PublicKey::from_slice(&m.member_key).ok_or_else(|| {
                ValidationError::new(
                    "member_key",
                    format!("must be 32 bytes, found {}", m.member_key.len()),
                )
            })?,
            siren: siren_from(&m.siren)?,
            role: vocab("role", m.role, MembershipRole::from_code)?
                .ok_or_else(|| ValidationError::new("role", "is required"))?,
            valid_from_ms: m.valid_from_ms,
            valid_until_ms: m.valid_until_ms,
            scope: m.scope,
        }),
        Some(pb::payload::Body::Succession(x)) => Body::Succession(Succession {
            predecessor: key_from("predecessor", &x.predecessor)?,
            successor: key_from("successor", &x.successor)?,
            successor_signature: hex::encode(&x.successor_signature),
        }),
        Some(pb::payload::Body::Revocation(r)) => Body::Revocation(Revocation {
            key: key_from("key", &r.key)?,
            compromised_since_ms: r.compromised_since_ms,
            reason: r.reason,
        }),
        Some(pb::payload::Body::Aggregate(a)) => Body::Aggregate(aggregate_from_proto(a)?),
        Some(pb::payload::Body::Reuse(r)) => Body::Reuse(Reuse {
            project: refs_from("project", r.project.into_iter().collect())?
                .pop()
                .ok_or_else(|| ValidationError::new("project", "is required"))?,
            since: non_empty(r.since),
            how: non_empty(r.how),
        }),
    };
    let provenance = match p.provenance {
        None => None,
        Some(x) => {
            // One encoding per record: fields in order, each once.
            if x.as_written.windows(2).any(|w| w[0].field >= w[1].field) {
                return Err(ValidationError::new(
                    "provenance.as_written",
                    "must name each source field once, in order",
                ));
            }
            Some(Provenance {
                source_format: x.source_format,
                source: non_empty(x.source),
                source_identifier: non_empty(x.source_identifier),
                on_behalf_of: x.on_behalf_of.map(agent_from_proto),
                as_written: x
                    .as_written
                    .into_iter()
                    .map(|v| (v.field, v.value))
                    .collect(),
            })
        }
    };
    Ok(Record {
        record_id: p.record_id,
        version: p.version,
        issued_at_ms: p.issued_at_ms,
        visibility,
        provenance,
        body,
    })
}

/// The generated enum for a kind, for filters in requests.
pub fn kind_to_proto(kind: Kind) -> pb::Kind {
    pb::Kind::try_from(kind.code() as i32).expect("catalogue.proto's Kind follows Kind::code")
}

/// `None` for KIND_UNSPECIFIED ("any kind"); an error for unknown numbers.
pub fn kind_from_proto(value: i32) -> Result<Option<Kind>, ValidationError> {
    if value == 0 {
        return Ok(None);
    }
    u8::try_from(value)
        .ok()
        .and_then(Kind::from_code)
        .map(Some)
        .ok_or_else(|| ValidationError::new("kind", format!("unknown kind number {value}")))
}

/// A 32-byte key field.
fn key_from(field: &str, bytes: &[u8]) -> Result<crate::envelope::PublicKey, ValidationError> {
    crate::envelope::PublicKey::from_slice(bytes).ok_or_else(|| {
        ValidationError::new(field, format!("must be 32 bytes, found {}", bytes.len()))
    })
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn text(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

/// A vocabulary value as its protobuf enum number (0: absent).
fn code<T: Copy>(v: Option<T>, code: fn(T) -> i32) -> i32 {
    v.map_or(0, code)
}

/// An enum number back to a vocabulary value (0: absent; unknown: an error).
fn vocab<T>(field: &str, v: i32, from: fn(i32) -> Option<T>) -> Result<Option<T>, ValidationError> {
    if v == 0 {
        return Ok(None);
    }
    from(v)
        .map(Some)
        .ok_or_else(|| ValidationError::new(field, format!("unknown value number {v}")))
}

fn vocabs<T>(
    field: &str,
    vs: Vec<i32>,
    from: fn(i32) -> Option<T>,
) -> Result<Vec<T>, ValidationError> {
    vs.into_iter()
        .enumerate()
        .map(|(i, v)| {
            vocab(field, v, from)?
                .ok_or_else(|| ValidationError::new(format!("{field}[{i}]"), "is unspecified"))
        })
        .collect()
}

/// A SIREN field of a payload: the stored spelling only, as the model's
/// JSON reads it, so a payload and its JSON accept the same values.
fn siren_from(s: &str) -> Result<Siren, ValidationError> {
    Siren::parse_stored(s).map_err(|e| ValidationError::new("siren", e.to_string()))
}

fn licence_text(l: &Option<LicenceRef>) -> String {
    l.as_ref()
        .map(|l| l.as_str().to_string())
        .unwrap_or_default()
}

fn licence_from(field: &str, s: String) -> Result<Option<LicenceRef>, ValidationError> {
    if s.is_empty() {
        return Ok(None);
    }
    LicenceRef::parse(&s)
        .map(Some)
        .map_err(|e| ValidationError::new(field, e.to_string()))
}

fn agent_to_proto(a: &Agent) -> pb::Agent {
    pb::Agent {
        name: a.name.clone(),
        siren: text(&a.siren),
        url: text(&a.url),
    }
}

fn agent_from_proto(a: pb::Agent) -> Agent {
    Agent {
        name: a.name,
        siren: non_empty(a.siren),
        url: non_empty(a.url),
    }
}

fn contact_to_proto(c: &Contact) -> pb::Contact {
    pb::Contact {
        name: text(&c.name),
        email: text(&c.email),
        phone: text(&c.phone),
        url: text(&c.url),
    }
}

fn contact_from_proto(c: pb::Contact) -> Contact {
    Contact {
        name: non_empty(c.name),
        email: non_empty(c.email),
        phone: non_empty(c.phone),
        url: non_empty(c.url),
    }
}

fn link_to_proto(l: &Link) -> pb::Link {
    pb::Link {
        title: text(&l.title),
        url: l.url.clone(),
    }
}

fn link_from_proto(l: pb::Link) -> Link {
    Link {
        title: non_empty(l.title),
        url: l.url,
    }
}

fn ref_to_proto(r: &RecordRef) -> pb::RecordRef {
    pb::RecordRef {
        author: r
            .author
            .as_deref()
            .and_then(|a| crate::envelope::PublicKey::parse_hex(a).ok())
            .map(|k| k.0.to_vec())
            .unwrap_or_default(),
        record_id: r.record_id.clone(),
    }
}

fn aggregate_from_proto(a: pb::Aggregate) -> Result<Aggregate, ValidationError> {
    let hash = |field: String, b: &[u8]| {
        if b.len() == 32 {
            Ok(hex::encode(b))
        } else {
            Err(ValidationError::new(
                field,
                format!("must be 32 bytes, found {}", b.len()),
            ))
        }
    };
    let organisations = a
        .organisations
        .iter()
        .enumerate()
        .map(|(i, n)| {
            Siren::parse(&format!("{n:09}"))
                .map_err(|e| ValidationError::new(format!("organisations[{i}]"), e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let organisation_hashes = a
        .organisation_hashes
        .iter()
        .enumerate()
        .map(|(i, h)| hash(format!("organisation_hashes[{i}]"), h))
        .collect::<Result<Vec<_>, _>>()?;
    let combines = a
        .combines
        .iter()
        .enumerate()
        .map(|(i, h)| hash(format!("combines[{i}]"), h))
        .collect::<Result<Vec<_>, _>>()?;
    let mut figures = Vec::with_capacity(a.figures.len());
    for (i, f) in a.figures.into_iter().enumerate() {
        // One encoding per record: a secret figure carries no number.
        if f.secret && (f.records != 0 || f.organisations != 0 || f.sum.is_some()) {
            return Err(ValidationError::new(
                format!("figures[{i}]"),
                "a secret figure has no number at all",
            ));
        }
        figures.push(Figure {
            group: f.group,
            value: f.value,
            records: (!f.secret).then_some(f.records),
            organisations: (!f.secret).then_some(f.organisations),
            sum: f.sum,
            lower_bound: f.lower_bound,
        });
    }
    Ok(Aggregate {
        territory: a.territory,
        period: non_empty(a.period),
        as_of_ms: a.as_of_ms,
        inputs: a.inputs,
        inputs_hash: hash("inputs_hash".into(), &a.inputs_hash)?,
        organisations,
        organisation_hashes,
        combines,
        figures,
    })
}

fn refs_from(field: &str, refs: Vec<pb::RecordRef>) -> Result<Vec<RecordRef>, ValidationError> {
    refs.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let author = if r.author.is_empty() {
                None
            } else {
                Some(
                    crate::envelope::PublicKey::from_slice(&r.author)
                        .ok_or_else(|| {
                            ValidationError::new(
                                format!("{field}[{i}].author"),
                                format!("must be 32 bytes, found {}", r.author.len()),
                            )
                        })?
                        .to_hex(),
                )
            };
            Ok(RecordRef {
                author,
                record_id: r.record_id,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::PublicKey;

    fn membership() -> Record {
        Record {
            record_id: "m".into(),
            version: 1,
            issued_at_ms: 1_764_000_000_000,
            visibility: Visibility::Public,
            provenance: None,
            body: Body::Membership(Membership {
                member_key: PublicKey([7; 32]),
                siren: Siren::parse("213101496").unwrap(),
                role: MembershipRole::Member,
                valid_from_ms: 0,
                valid_until_ms: 0,
                scope: vec![],
            }),
        }
    }

    fn with_membership(edit: impl FnOnce(&mut pb::Membership)) -> Vec<u8> {
        let mut p = payload_to_proto(&membership());
        let Some(pb::payload::Body::Membership(m)) = &mut p.body else {
            unreachable!()
        };
        edit(m);
        p.encode_to_vec()
    }

    /// A succession needs its successor's consent: without it, or for
    /// another key, it is refused.
    #[test]
    fn a_succession_carries_its_successors_consent() {
        let to = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let mut rec = membership();
        rec.body = Body::Succession(Succession::consented(PublicKey([7; 32]), &to));
        let bytes = encode_payload(&rec);
        assert_eq!(decode_payload(&bytes).unwrap(), rec);
        let Body::Succession(s) = &mut rec.body else {
            unreachable!()
        };
        s.successor = PublicKey(
            ed25519_dalek::SigningKey::from_bytes(&[8; 32])
                .verifying_key()
                .to_bytes(),
        );
        let err = decode_payload(&encode_payload(&rec))
            .unwrap_err()
            .to_string();
        assert!(err.contains("successor_signature"), "{err}");
        let Body::Succession(s) = &mut rec.body else {
            unreachable!()
        };
        s.successor_signature.clear();
        assert!(decode_payload(&encode_payload(&rec)).is_err());
    }

    #[test]
    fn payload_kind_reads_the_body_field_alone() {
        let mut rec = membership();
        rec.provenance = None;
        assert_eq!(payload_kind(&encode_payload(&rec)), Some(Kind::Membership));
        rec.body = Body::Collection(Collection {
            title: "Projets IA".into(),
            description: Some("x".repeat(300)),
            items: vec![],
        });
        rec.visibility = Visibility::Restricted {
            audience: vec![Siren::parse("213101496").unwrap()],
        };
        let bytes = encode_payload(&rec);
        assert_eq!(payload_kind(&bytes), Some(Kind::Collection));
        assert_eq!(payload_kind(&bytes[..bytes.len() - 1]), None, "cut short");
        assert_eq!(payload_kind(&[]), None);
        assert_eq!(payload_kind(&[0xff; 12]), None);
    }

    #[test]
    fn keys_and_sirens_cross_the_wire_as_bytes_and_digits() {
        let p = payload_to_proto(&membership());
        let Some(pb::payload::Body::Membership(m)) = &p.body else {
            unreachable!()
        };
        assert_eq!(
            (m.member_key.as_slice(), m.siren.as_str()),
            (&[7; 32][..], "213101496")
        );
        assert_eq!(decode_payload(&p.encode_to_vec()).unwrap(), membership());
    }

    /// What the model cannot hold is a decode error naming the field.
    #[test]
    fn bad_keys_and_sirens_do_not_decode() {
        let cases = [
            (
                with_membership(|m| m.member_key.truncate(31)),
                "payload is invalid: field `member_key`: must be 32 bytes, found 31",
            ),
            (
                with_membership(|m| m.siren = "213101497".into()),
                "payload is invalid: field `siren`: SIREN '213101497' fails its Luhn checksum",
            ),
            (
                with_membership(|m| m.siren = "213 101 496".into()),
                "payload is invalid: field `siren`: write '213 101 496' as its 9 digits",
            ),
        ];
        for (bytes, wanted) in cases {
            let err = decode_payload(&bytes).unwrap_err().to_string();
            assert!(err.starts_with(wanted), "{err}\n (wanted {wanted})");
        }
        let mut p = payload_to_proto(&membership());
        p.body = Some(pb::payload::Body::Organisation(pb::Organisation {
            siren: "".into(),
            name: "n".into(),
            ..Default::default()
        }));
        let err = decode_payload(&p.encode_to_vec()).unwrap_err().to_string();
        assert_eq!(
            err,
            "payload is invalid: field `siren`: SIREN '' must have 9 digits, found 0 characters"
        );
    }
}
