//! The one place that converts between generated protobuf types
//! (`maillage_proto::v1`) and the domain model (`crate::model`).
//!
//! Decoding validates: a payload that decodes but breaks a rule of the model is
//! refused here, with the field named, so nothing invalid gets past `verify`.

use maillage_proto::v1 as pb;
use prost::Message;

use crate::model::{
    Body, Dataset, Distribution, Kind, Membership, MembershipRole, Organisation, Project,
    ProjectStatus, Record, Tombstone, ValidationError, Visibility,
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
            siren: o.siren.clone(),
            name: o.name.clone(),
            siret: o.siret.clone().unwrap_or_default(),
            website: o.website.clone().unwrap_or_default(),
        }),
        Body::Dataset(d) => pb::payload::Body::Dataset(pb::Dataset {
            title: d.title.clone(),
            description: d.description.clone(),
            keywords: d.keywords.clone(),
            themes: d.themes.clone(),
            identifier: d.identifier.clone().unwrap_or_default(),
            landing_page: d.landing_page.clone().unwrap_or_default(),
            licence: d.licence.clone().unwrap_or_default(),
            distributions: d
                .distributions
                .iter()
                .map(|x| pb::Distribution {
                    access_url: x.access_url.clone(),
                    title: x.title.clone().unwrap_or_default(),
                    format: x.format.clone().unwrap_or_default(),
                    media_type: x.media_type.clone().unwrap_or_default(),
                })
                .collect(),
        }),
        Body::Project(p) => pb::payload::Body::Project(pb::Project {
            name: p.name.clone(),
            description: p.description.clone(),
            status: status_to_proto(p.status) as i32,
            themes: p.themes.clone(),
            start_date: p.start_date.clone().unwrap_or_default(),
            website: p.website.clone().unwrap_or_default(),
        }),
        Body::Tombstone(t) => pb::payload::Body::Tombstone(pb::Tombstone {
            reason: t.reason.clone(),
        }),
        Body::Membership(m) => pb::payload::Body::Membership(pb::Membership {
            member_key: crate::envelope::PublicKey::parse_hex(&m.member_key)
                .map(|k| k.0.to_vec())
                .unwrap_or_default(),
            siren: m.siren.clone(),
            role: match m.role {
                MembershipRole::Member => pb::membership::Role::Member,
                MembershipRole::ChefDeFile => pb::membership::Role::ChefDeFile,
                MembershipRole::Committee => pb::membership::Role::Committee,
            } as i32,
            valid_from_ms: m.valid_from_ms,
            valid_until_ms: m.valid_until_ms,
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
            siren: o.siren,
            name: o.name,
            siret: non_empty(o.siret),
            website: non_empty(o.website),
        }),
        Some(pb::payload::Body::Dataset(d)) => Body::Dataset(Dataset {
            title: d.title,
            description: d.description,
            keywords: d.keywords,
            themes: d.themes,
            identifier: non_empty(d.identifier),
            landing_page: non_empty(d.landing_page),
            licence: non_empty(d.licence),
            distributions: d
                .distributions
                .into_iter()
                .map(|x| Distribution {
                    access_url: x.access_url,
                    title: non_empty(x.title),
                    format: non_empty(x.format),
                    media_type: non_empty(x.media_type),
                })
                .collect(),
        }),
        Some(pb::payload::Body::Project(p)) => Body::Project(Project {
            name: p.name,
            description: p.description,
            status: status_from_proto(p.status)?,
            themes: p.themes,
            start_date: non_empty(p.start_date),
            website: non_empty(p.website),
        }),
        Some(pb::payload::Body::Tombstone(t)) => Body::Tombstone(Tombstone { reason: t.reason }),
        Some(pb::payload::Body::Membership(m)) => Body::Membership(Membership {
            member_key: crate::envelope::PublicKey::from_slice(&m.member_key)
                .ok_or_else(|| {
                    ValidationError::new(
                        "member_key",
                        format!("must be 32 bytes, found {}", m.member_key.len()),
                    )
                })?
                .to_hex(),
            siren: m.siren,
            role: match pb::membership::Role::try_from(m.role) {
                Ok(pb::membership::Role::Member) => MembershipRole::Member,
                Ok(pb::membership::Role::ChefDeFile) => MembershipRole::ChefDeFile,
                Ok(pb::membership::Role::Committee) => MembershipRole::Committee,
                _ => {
                    return Err(ValidationError::new(
                        "role",
                        format!(
                            "unknown role number {}; expected member, chef_de_file or committee",
                            m.role
                        ),
                    ));
                }
            },
            valid_from_ms: m.valid_from_ms,
            valid_until_ms: m.valid_until_ms,
        }),
    };
    Ok(Record {
        record_id: p.record_id,
        version: p.version,
        issued_at_ms: p.issued_at_ms,
        visibility,
        body,
    })
}

/// The generated enum for a kind, for filters in requests.
pub fn kind_to_proto(kind: Kind) -> pb::Kind {
    match kind {
        Kind::Organisation => pb::Kind::Organisation,
        Kind::Dataset => pb::Kind::Dataset,
        Kind::Project => pb::Kind::Project,
        Kind::Tombstone => pb::Kind::Tombstone,
        Kind::Membership => pb::Kind::Membership,
    }
}

/// `None` for KIND_UNSPECIFIED ("any kind"); an error for unknown numbers.
pub fn kind_from_proto(value: i32) -> Result<Option<Kind>, ValidationError> {
    match pb::Kind::try_from(value) {
        Ok(pb::Kind::Unspecified) => Ok(None),
        Ok(pb::Kind::Organisation) => Ok(Some(Kind::Organisation)),
        Ok(pb::Kind::Dataset) => Ok(Some(Kind::Dataset)),
        Ok(pb::Kind::Project) => Ok(Some(Kind::Project)),
        Ok(pb::Kind::Tombstone) => Ok(Some(Kind::Tombstone)),
        Ok(pb::Kind::Membership) => Ok(Some(Kind::Membership)),
        Err(_) => Err(ValidationError::new(
            "kind",
            format!("unknown kind number {value}"),
        )),
    }
}

fn status_to_proto(s: ProjectStatus) -> pb::project::Status {
    use pb::project::Status;
    match s {
        ProjectStatus::Experimentation => Status::Experimentation,
        ProjectStatus::Deploiement => Status::Deploiement,
        ProjectStatus::Termine => Status::Termine,
        ProjectStatus::Abandonne => Status::Abandonne,
    }
}

fn status_from_proto(v: i32) -> Result<ProjectStatus, ValidationError> {
    use pb::project::Status;
    match Status::try_from(v) {
        Ok(Status::Experimentation) => Ok(ProjectStatus::Experimentation),
        Ok(Status::Deploiement) => Ok(ProjectStatus::Deploiement),
        Ok(Status::Termine) => Ok(ProjectStatus::Termine),
        Ok(Status::Abandonne) => Ok(ProjectStatus::Abandonne),
        Ok(Status::Unspecified) | Err(_) => Err(ValidationError::new(
            "status",
            format!(
                "{v} is not a project status (experimentation, deploiement, termine, abandonne)"
            ),
        )),
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}
