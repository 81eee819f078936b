//! The domain model: what a record says, validated, independent of its encoding.
//!
//! These types are also the JSON shape people write and read (`maillage publish
//! dataset.json`, `maillage get --json`): a record is one flat JSON object with
//! `kind`, `record_id`, optional `version` and `visibility`, and the body's fields.

use serde::{Deserialize, Serialize};

use crate::siren::{self, Siren};

/// Largest payload a node accepts: 256 KiB. Bigger documents (data, models)
/// belong behind a distribution URL, not inside a record.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Longest `record_id`.
pub const MAX_RECORD_ID_LEN: usize = 200;
const MAX_TITLE_CHARS: usize = 500;
const MAX_TEXT_CHARS: usize = 20_000;
const MAX_SHORT_CHARS: usize = 2_000;
const MAX_LIST_LEN: usize = 100;

/// A record's content, before or after signing.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub record_id: String,
    pub version: u64,
    pub issued_at_ms: i64,
    pub visibility: Visibility,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Federation,
    Restricted { audience: Vec<Siren> },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Organisation(Organisation),
    Dataset(Dataset),
    Project(Project),
    Tombstone(Tombstone),
    Membership(Membership),
}

/// The kind of a record, named after its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Organisation,
    Dataset,
    Project,
    Tombstone,
    Membership,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Organisation,
        Kind::Dataset,
        Kind::Project,
        Kind::Tombstone,
        Kind::Membership,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Organisation => "organisation",
            Kind::Dataset => "dataset",
            Kind::Project => "project",
            Kind::Tombstone => "tombstone",
            Kind::Membership => "membership",
        }
    }

    /// A stable one-byte code, used in storage keys.
    pub fn code(self) -> u8 {
        match self {
            Kind::Organisation => 1,
            Kind::Dataset => 2,
            Kind::Project => 3,
            Kind::Tombstone => 4,
            Kind::Membership => 5,
        }
    }

    pub fn from_code(code: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Parses a kind name as people type it ("Dataset", "projects").
    pub fn parse(input: &str) -> Result<Kind, ValidationError> {
        let norm = input.trim().to_lowercase();
        let norm = norm.strip_suffix('s').unwrap_or(&norm);
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == norm)
            .ok_or_else(|| {
                ValidationError::new(
                    "kind",
                    format!(
                        "unknown kind '{input}'; expected one of: {}",
                        Kind::ALL.map(Kind::as_str).join(", ")
                    ),
                )
            })
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organisation {
    pub siren: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub siret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    pub title: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub themes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing_page: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distributions: Vec<Distribution>,
}

impl Dataset {
    /// A dataset with only its two mandatory fields.
    pub fn new(title: impl Into<String>, description: impl Into<String>) -> Dataset {
        Dataset {
            title: title.into(),
            description: description.into(),
            keywords: vec![],
            themes: vec![],
            identifier: None,
            landing_page: None,
            licence: None,
            distributions: vec![],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    pub access_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub name: String,
    pub description: String,
    pub status: ProjectStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub themes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
}

/// Where an AI project stands (the bibliothèque des projets IA's statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectStatus {
    /// En expérimentation.
    Experimentation,
    /// En déploiement.
    Deploiement,
    /// Terminé.
    Termine,
    /// Abandonné.
    Abandonne,
}

/// A trusted author endorses a member key (see record.proto).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    /// The endorsed key, 64 hex characters.
    pub member_key: String,
    pub siren: String,
    pub role: MembershipRole,
    /// Milliseconds since the Unix epoch; 0: unbounded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub valid_from_ms: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub valid_until_ms: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl Membership {
    /// Whether the endorsement covers a record issued at `at_ms`.
    pub fn covers(&self, at_ms: i64) -> bool {
        (self.valid_from_ms == 0 || at_ms >= self.valid_from_ms)
            && (self.valid_until_ms == 0 || at_ms < self.valid_until_ms)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipRole {
    Member,
    #[serde(alias = "chef de file", alias = "Chef de file")]
    ChefDeFile,
    #[serde(alias = "comité", alias = "Comité", alias = "comite")]
    Committee,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tombstone {
    #[serde(default)]
    pub reason: String,
}

/// A field that breaks a rule: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl Body {
    pub fn kind(&self) -> Kind {
        match self {
            Body::Organisation(_) => Kind::Organisation,
            Body::Dataset(_) => Kind::Dataset,
            Body::Project(_) => Kind::Project,
            Body::Tombstone(_) => Kind::Tombstone,
            Body::Membership(_) => Kind::Membership,
        }
    }

    /// A one-line human label: the title or name.
    pub fn label(&self) -> &str {
        match self {
            Body::Organisation(o) => &o.name,
            Body::Dataset(d) => &d.title,
            Body::Project(p) => &p.name,
            Body::Tombstone(_) => "(withdrawn)",
            Body::Membership(m) => &m.siren,
        }
    }
}

impl Record {
    pub fn kind(&self) -> Kind {
        self.body.kind()
    }

    /// Checks every rule a stored record must satisfy. Drafts (version 0, which
    /// the node fills in) are checked with `validate_draft`.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.version == 0 {
            return Err(ValidationError::new("version", "must be at least 1"));
        }
        self.validate_draft()
    }

    /// Like `validate`, but allows version 0 and issued_at 0 ("fill in for me").
    pub fn validate_draft(&self) -> Result<(), ValidationError> {
        validate_record_id(&self.record_id)?;
        if self.issued_at_ms < 0 {
            return Err(ValidationError::new("issued_at", "must not be before 1970"));
        }
        if let Visibility::Restricted { audience } = &self.visibility {
            if audience.is_empty() {
                return Err(ValidationError::new(
                    "audience",
                    "a restricted record needs at least one SIREN in its audience",
                ));
            }
        }
        match &self.body {
            Body::Organisation(o) => {
                Siren::parse(&o.siren).map_err(|e| ValidationError::new("siren", e.to_string()))?;
                required("name", &o.name, MAX_TITLE_CHARS)?;
                if let Some(siret) = &o.siret {
                    let digits = siren::parse_siret(siret)
                        .map_err(|e| ValidationError::new("siret", e.to_string()))?;
                    if !digits.starts_with(&o.siren) {
                        return Err(ValidationError::new(
                            "siret",
                            format!("'{siret}' does not start with the SIREN '{}'", o.siren),
                        ));
                    }
                }
                optional("website", &o.website, MAX_SHORT_CHARS)?;
            }
            Body::Dataset(d) => {
                required("title", &d.title, MAX_TITLE_CHARS)?;
                required("description", &d.description, MAX_TEXT_CHARS)?;
                short_list("keywords", &d.keywords)?;
                short_list("themes", &d.themes)?;
                optional("identifier", &d.identifier, MAX_SHORT_CHARS)?;
                optional("landing_page", &d.landing_page, MAX_SHORT_CHARS)?;
                optional("licence", &d.licence, MAX_SHORT_CHARS)?;
                if d.distributions.len() > MAX_LIST_LEN {
                    return Err(too_many("distributions", d.distributions.len()));
                }
                for (i, dist) in d.distributions.iter().enumerate() {
                    let f = |name: &str| format!("distributions[{i}].{name}");
                    required(&f("access_url"), &dist.access_url, MAX_SHORT_CHARS)?;
                    optional(&f("title"), &dist.title, MAX_TITLE_CHARS)?;
                    optional(&f("format"), &dist.format, MAX_TITLE_CHARS)?;
                    optional(&f("media_type"), &dist.media_type, MAX_TITLE_CHARS)?;
                }
            }
            Body::Project(p) => {
                required("name", &p.name, MAX_TITLE_CHARS)?;
                required("description", &p.description, MAX_TEXT_CHARS)?;
                short_list("themes", &p.themes)?;
                if let Some(date) = &p.start_date {
                    validate_start_date(date)?;
                }
                optional("website", &p.website, MAX_SHORT_CHARS)?;
            }
            Body::Tombstone(t) => {
                if t.reason.chars().count() > MAX_SHORT_CHARS {
                    return Err(too_long("reason", MAX_SHORT_CHARS));
                }
            }
            Body::Membership(m) => {
                crate::envelope::PublicKey::parse_hex(&m.member_key)
                    .map_err(|e| ValidationError::new("member_key", e.to_string()))?;
                Siren::parse(&m.siren).map_err(|e| ValidationError::new("siren", e.to_string()))?;
                if m.valid_from_ms < 0 || m.valid_until_ms < 0 {
                    return Err(ValidationError::new(
                        "valid_until_ms",
                        "validity bounds are milliseconds since 1970, or 0 for none",
                    ));
                }
                if m.valid_until_ms != 0 && m.valid_until_ms <= m.valid_from_ms {
                    return Err(ValidationError::new(
                        "valid_until_ms",
                        "must be after valid_from_ms (or 0 for no end)",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Checks a record_id: 1 to 200 characters from `A-Za-z0-9._-:/@#+`.
pub fn validate_record_id(id: &str) -> Result<(), ValidationError> {
    if id.is_empty() {
        return Err(ValidationError::new(
            "record_id",
            "must not be empty: choose a stable id, e.g. \"budget-primitif-2026\"; publishing again \
             with the same record_id supersedes the previous version",
        ));
    }
    if id.len() > MAX_RECORD_ID_LEN {
        return Err(ValidationError::new(
            "record_id",
            format!(
                "is {} characters long; the limit is {MAX_RECORD_ID_LEN}",
                id.len()
            ),
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-:/@#+".contains(*c)))
    {
        return Err(ValidationError::new(
            "record_id",
            format!("'{id}' contains '{c}'; allowed: letters A-Z a-z, digits and . _ - : / @ # +"),
        ));
    }
    Ok(())
}

/// "MM/YYYY" or "DD/MM/YYYY", as the bibliothèque des projets IA writes them.
fn validate_start_date(date: &str) -> Result<(), ValidationError> {
    let bad = || {
        ValidationError::new(
            "start_date",
            format!("'{date}' is not a date written MM/YYYY or DD/MM/YYYY"),
        )
    };
    let parts: Vec<&str> = date.split('/').collect();
    let num = |s: &str, len: usize| -> Option<u32> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().unwrap())
    };
    let (day, month, year) = match parts.as_slice() {
        [m, y] => (Some(1), num(m, 2), num(y, 4)),
        [d, m, y] => (num(d, 2), num(m, 2), num(y, 4)),
        _ => return Err(bad()),
    };
    match (day, month, year) {
        (Some(d), Some(m), Some(y))
            if (1..=31).contains(&d) && (1..=12).contains(&m) && y >= 1900 =>
        {
            Ok(())
        }
        _ => Err(bad()),
    }
}

fn required(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::new(
            field,
            "is required and must not be empty",
        ));
    }
    if value.chars().count() > max {
        return Err(too_long(field, max));
    }
    Ok(())
}

fn optional(field: &str, value: &Option<String>, max: usize) -> Result<(), ValidationError> {
    match value {
        Some(v) if v.chars().count() > max => Err(too_long(field, max)),
        _ => Ok(()),
    }
}

fn short_list(field: &str, values: &[String]) -> Result<(), ValidationError> {
    if values.len() > MAX_LIST_LEN {
        return Err(too_many(field, values.len()));
    }
    for (i, v) in values.iter().enumerate() {
        // The indexed field name is only formatted for an error: validation
        // runs on every record a sync receives.
        required(field, v, MAX_TITLE_CHARS).map_err(|mut e| {
            e.field = format!("{field}[{i}]");
            e
        })?;
    }
    Ok(())
}

fn too_long(field: &str, max: usize) -> ValidationError {
    ValidationError::new(field, format!("is longer than {max} characters"))
}

fn too_many(field: &str, n: usize) -> ValidationError {
    ValidationError::new(
        field,
        format!("has {n} entries; the limit is {MAX_LIST_LEN}"),
    )
}
