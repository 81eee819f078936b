//! The domain model: what a record says, validated, independent of its encoding.
//!
//! These types are also the JSON shape people write and read (`maillage publish
//! dataset.json`, `maillage get --json`): a record is one flat JSON object with
//! `kind`, `record_id`, optional `version` and `visibility`, and the body's fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::envelope::PublicKey;
use crate::siren::{self, Siren};
pub use crate::vocab::{
    AlgorithmType, Audience, BudgetBand, DataAccessMode, DataSource, EpciNature, Frequency,
    Hosting, ImplementationMode, Level, Licence, MembershipRole, OrganisationKind, ProjectStatus,
    ProjectTheme, ResourceKind, RiskCategory, SpatialGranularity, UnknownTerm,
};

/// Largest payload a node accepts: 256 KiB. Bigger documents (data, models)
/// belong behind a distribution URL, not inside a record.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Longest `record_id`.
pub const MAX_RECORD_ID_LEN: usize = 200;
const MAX_TITLE_CHARS: usize = 500;
const MAX_TEXT_CHARS: usize = 20_000;
const MAX_SHORT_CHARS: usize = 2_000;
const MAX_LIST_LEN: usize = 100;
/// Spatial coverage may list every commune of a département.
const MAX_LONG_LIST_LEN: usize = 1_000;
const MAX_COLLECTION_ITEMS: usize = 1_000;

/// A record's content, before or after signing.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub record_id: String,
    pub version: u64,
    pub issued_at_ms: i64,
    pub visibility: Visibility,
    /// Set on imported records: where they come from, on whose behalf.
    pub provenance: Option<Provenance>,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Federation,
    Restricted { audience: Vec<Siren> },
}

impl Visibility {
    /// Whether a collection of this visibility may list a record of
    /// visibility `item`: listing names the record, so no one may learn of
    /// it through the collection who could not see it.
    pub fn may_list(&self, item: &Visibility) -> bool {
        match (self, item) {
            (_, Visibility::Public) => true,
            (Visibility::Federation, Visibility::Federation) => true,
            (Visibility::Restricted { audience: l }, Visibility::Federation) => !l.is_empty(),
            (Visibility::Restricted { audience: l }, Visibility::Restricted { audience: i }) => {
                l.iter().all(|s| i.contains(s))
            }
            _ => false,
        }
    }

    /// Its name in JSON and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Federation => "federation",
            Visibility::Restricted { .. } => "restricted",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Organisation(Organisation),
    Dataset(Dataset),
    Project(Project),
    Tombstone(Tombstone),
    Membership(Membership),
    ProjectDetails(ProjectDetails),
    Resource(Resource),
    Collection(Collection),
    Succession(Succession),
    Revocation(Revocation),
    Aggregate(Aggregate),
    Reuse(Reuse),
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
    ProjectDetails,
    Resource,
    Collection,
    Succession,
    Revocation,
    Aggregate,
    Reuse,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::Organisation,
        Kind::Dataset,
        Kind::Project,
        Kind::Tombstone,
        Kind::Membership,
        Kind::ProjectDetails,
        Kind::Resource,
        Kind::Collection,
        Kind::Succession,
        Kind::Revocation,
        Kind::Aggregate,
        Kind::Reuse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Organisation => "organisation",
            Kind::Dataset => "dataset",
            Kind::Project => "project",
            Kind::Tombstone => "tombstone",
            Kind::Membership => "membership",
            Kind::ProjectDetails => "project_details",
            Kind::Resource => "resource",
            Kind::Collection => "collection",
            Kind::Succession => "succession",
            Kind::Revocation => "revocation",
            Kind::Aggregate => "aggregate",
            Kind::Reuse => "reuse",
        }
    }

    /// The French label, as search results and statistics show it.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Organisation => "Organisation",
            Kind::Dataset => "Jeu de données",
            Kind::Project => "Projet IA",
            Kind::Tombstone => "Retrait",
            Kind::Membership => "Adhésion",
            Kind::ProjectDetails => "Détails de projet",
            Kind::Resource => "Ressource",
            Kind::Collection => "Collection",
            Kind::Succession => "Succession de clé",
            Kind::Revocation => "Révocation de clé",
            Kind::Aggregate => "Statistiques signées",
            Kind::Reuse => "Réutilisation",
        }
    }

    /// A stable one-byte code, used in storage keys (and the Kind enum of
    /// catalogue.proto).
    pub fn code(self) -> u8 {
        match self {
            Kind::Organisation => 1,
            Kind::Dataset => 2,
            Kind::Project => 3,
            Kind::Tombstone => 4,
            Kind::Membership => 5,
            Kind::ProjectDetails => 6,
            Kind::Resource => 7,
            Kind::Collection => 8,
            Kind::Succession => 9,
            Kind::Revocation => 10,
            Kind::Aggregate => 11,
            Kind::Reuse => 12,
        }
    }

    pub fn from_code(code: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Parses a kind name as people type it ("Dataset", "projects").
    pub fn parse(input: &str) -> Result<Kind, ValidationError> {
        let norm = input.trim().to_lowercase().replace([' ', '-'], "_");
        let singular = norm.strip_suffix('s').unwrap_or(&norm);
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == norm || k.as_str() == singular)
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
    pub siren: Siren,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub siret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<OrganisationKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epci_nature: Option<EpciNature>,
    /// INSEE code of a commune: 5 characters, a string ("2A004").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
}

impl Organisation {
    /// An organisation with only its SIREN and name.
    pub fn new(siren: Siren, name: impl Into<String>) -> Organisation {
        Organisation {
            siren,
            name: name.into(),
            siret: None,
            website: None,
            kind: None,
            epci_nature: None,
            insee: None,
            departement: None,
            region: None,
            contact: None,
        }
    }
}

/// An organisation as a record names it (a publisher, a provenance).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub siren: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Who to contact: at least a name, an email, a phone or a URL.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub url: String,
}

/// A record named by its author and record_id (its current version when read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordRef {
    /// 64 hex characters; absent: the author of the referring record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub record_id: String,
}

/// Where an imported record comes from (see record.proto's Provenance).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    pub source_format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<Agent>,
    /// What the source wrote that the fields do not hold as written (a value
    /// outside a vocabulary, read as the nearest known one; a note where an
    /// address was expected), by source field.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub as_written: BTreeMap<String, String>,
}

/// A licence: one of the known ones (by its canonical id), or a URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenceRef {
    Known(Licence),
    Uri(String),
}

impl LicenceRef {
    /// Parses what people write: a known licence's name, id or URI, or any
    /// other http(s) URI.
    pub fn parse(text: &str) -> Result<LicenceRef, UnknownTerm> {
        let t = text.trim();
        if let Some(known) = Licence::ALL.iter().find(|l| {
            l.uri()
                .is_some_and(|u| u.trim_end_matches('/') == t.trim_end_matches('/'))
        }) {
            return Ok(LicenceRef::Known(*known));
        }
        match Licence::parse(t) {
            Ok(l) => Ok(LicenceRef::Known(l)),
            Err(_) if is_http_url(t) => Ok(LicenceRef::Uri(t.to_string())),
            Err(mut e) => {
                e.accepted.push_str(", or the licence's http(s) URI");
                Err(e)
            }
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            LicenceRef::Known(l) => l.as_str(),
            LicenceRef::Uri(u) => u,
        }
    }

    /// Its URI; none for a licence known only as "other".
    pub fn uri(&self) -> Option<&str> {
        match self {
            LicenceRef::Known(l) => l.uri(),
            LicenceRef::Uri(u) => Some(u),
        }
    }
}

impl Serialize for LicenceRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for LicenceRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        LicenceRef::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A catalogue entry, aligned on DCAT-AP 3.0 (docs/data-model.md).
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
    pub licence: Option<LicenceRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distributions: Vec<Distribution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<Agent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_point: Option<Contact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spatial: Option<Spatial>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporal: Option<Temporal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency: Option<Frequency>,
    /// ISO 8601 date (YYYY-MM-DD) or date-time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
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
            publisher: None,
            contact_point: None,
            spatial: None,
            temporal: None,
            frequency: None,
            issued: None,
            modified: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spatial {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub insee_codes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granularity: Option<SpatialGranularity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Temporal {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<LicenceRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byte_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
    /// The schema the data follows (a URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conforms_to: Option<String>,
}

impl Distribution {
    /// A distribution with only its access URL.
    pub fn new(access_url: impl Into<String>) -> Distribution {
        Distribution {
            access_url: access_url.into(),
            title: None,
            format: None,
            media_type: None,
            download_url: None,
            licence: None,
            byte_size: None,
            checksum: None,
            conforms_to: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checksum {
    /// e.g. "sha256", "md5".
    pub algorithm: String,
    /// The digest in hex.
    pub value: String,
}

/// An AI use case: the bibliothèque des projets IA's public fields, and what
/// transparency registers add (docs/data-model.md). The restricted part is a
/// `ProjectDetails` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub name: String,
    pub description: String,
    pub status: ProjectStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abandon_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub siret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation_kind: Option<OrganisationKind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partners: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implementation_mode: Option<ImplementationMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<ProjectTheme>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_themes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<Audience>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_category: Option<RiskCategory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proportionality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub human_oversight: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_level: Option<Level>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explainability: Option<Level>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversibility: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objection_procedure: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpia_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codebase_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<RecordRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    /// The territories it serves, apart from who runs it (see
    /// `territory::coverage`); empty: its author's whole territory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coverage: Vec<String>,
}

impl Project {
    /// A project with only its mandatory fields.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        status: ProjectStatus,
    ) -> Project {
        Project {
            name: name.into(),
            description: description.into(),
            status,
            abandon_reason: None,
            start_date: None,
            website: None,
            organisation_name: None,
            siret: None,
            organisation_kind: None,
            partners: vec![],
            implementation_mode: None,
            theme: None,
            sub_themes: vec![],
            audiences: vec![],
            risk_category: None,
            proportionality: None,
            human_oversight: None,
            error_level: None,
            explainability: None,
            reversibility: None,
            objection_procedure: None,
            links: vec![],
            latitude: None,
            longitude: None,
            logo_url: None,
            legal_basis: None,
            dpia_reference: None,
            monitoring: None,
            codebase_url: None,
            datasets: vec![],
            last_updated: None,
            coverage: vec![],
        }
    }
}

/// The part of a project kept out of public view (see record.proto).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectDetails {
    /// The record_id of the Project (same author) it completes.
    pub project: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetBand>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosting: Option<Hosting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosting_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm_operations: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub algorithm_types: Vec<AlgorithmType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_sources: Vec<DataSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_access_modes: Vec<DataAccessMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environmental_impact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_kwh_per_year: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emissions_kgco2e_per_year: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Link>,
}

impl ProjectDetails {
    /// Details with nothing but the project they complete.
    pub fn new(project: impl Into<String>) -> ProjectDetails {
        ProjectDetails {
            project: project.into(),
            contact: None,
            funding: None,
            budget: None,
            hosting: None,
            hosting_location: None,
            algorithm_name: None,
            algorithm_description: None,
            algorithm_operations: None,
            algorithm_types: vec![],
            data_sources: vec![],
            data_access_modes: vec![],
            environmental_impact: None,
            energy_kwh_per_year: None,
            emissions_kgco2e_per_year: None,
            resources: vec![],
        }
    }
}

/// A charter, strategy, code, model, training data, prompt or guide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    pub resource_kind: ResourceKind,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The text itself, for short resources such as a prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<LicenceRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<RecordRef>,
}

/// A curated, ordered list of records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collection {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub items: Vec<RecordRef>,
}

/// A key hands over to another (see record.proto): signed by the
/// predecessor itself (a rotation), or, when that key is lost, by a trust
/// root or the committee that endorsed it (a recovery). From its
/// `issued_at`, records by the predecessor are refused; the successor
/// inherits what the predecessor was trusted for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Succession {
    /// 64 hex characters in JSON.
    pub predecessor: PublicKey,
    pub successor: PublicKey,
    /// The successor's consent: its signature (128 hex characters) over
    /// `Succession::consent_message`. Without it, a key could name any
    /// other key as its successor and pass its trust on to it.
    pub successor_signature: String,
}

impl Succession {
    /// What the successor signs to consent.
    pub fn consent_message(predecessor: &PublicKey, successor: &PublicKey) -> Vec<u8> {
        let mut m = b"maillage succession v1\0".to_vec();
        m.extend_from_slice(&predecessor.0);
        m.extend_from_slice(&successor.0);
        m
    }

    /// A succession from `predecessor` to the key `successor` signs with.
    pub fn consented(predecessor: PublicKey, successor: &ed25519_dalek::SigningKey) -> Succession {
        use ed25519_dalek::Signer;
        let to = PublicKey(successor.verifying_key().to_bytes());
        let signature = successor.sign(&Succession::consent_message(&predecessor, &to));
        Succession {
            predecessor,
            successor: to,
            successor_signature: hex::encode(signature.to_bytes()),
        }
    }

    /// Whether the successor consented.
    fn check_consent(&self) -> Result<(), ValidationError> {
        let bad = |why: &str| ValidationError::new("successor_signature", why);
        let bytes: [u8; 64] = hex::decode(&self.successor_signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("must be 128 hex characters: the successor's signature (`maillage key consent`)"))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&self.successor.0)
            .map_err(|_| ValidationError::new("successor", "is not a usable ed25519 key"))?;
        key.verify_strict(
            &Succession::consent_message(&self.predecessor, &self.successor),
            &ed25519_dalek::Signature::from_bytes(&bytes),
        )
        .map_err(|_| bad("is not the successor's signature of this succession"))
    }
}

/// A key is compromised (see record.proto): signed by the key itself, a
/// trust root, or the committee that endorsed it. Records by the key issued
/// from `compromised_since_ms` on are refused everywhere; earlier ones are
/// kept, and flagged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// 64 hex characters in JSON.
    pub key: PublicKey,
    /// Milliseconds since the Unix epoch.
    pub compromised_since_ms: i64,
    #[serde(default)]
    pub reason: String,
}

/// Statistics of a territory's records, signed by who computed them (see
/// record.proto and `crate::aggregate`, which computes and checks them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregate {
    /// As a coverage names it (31, dep:31, an EPCI's SIREN), or "france".
    pub territory: String,
    /// A year ("2026") or a quarter ("2026-T3").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// Milliseconds since the Unix epoch: the state counted.
    pub as_of_ms: i64,
    /// Record versions (leaf) or aggregates (roll-up) it was computed from.
    pub inputs: u64,
    /// 64 hex characters: SHA-256 over the inputs' ids, sorted.
    pub inputs_hash: String,
    /// The organisations counted, ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organisations: Vec<Siren>,
    /// Leaf only, one per organisation: the hash of its versions' ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organisation_hashes: Vec<String>,
    /// Roll-up only: the ids (64 hex) of the aggregates combined, ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub combines: Vec<String>,
    #[serde(default)]
    pub figures: Vec<Figure>,
}

/// One figure of an aggregate: `records` is `None` where it is secret
/// (fewer than `aggregate::MIN_ORGANISATIONS` organisations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    pub group: String,
    /// The value counted; empty: the group's total.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// None: secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisations: Option<u64>,
    /// Measured quantities only (energy, emissions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
    /// A roll-up's figure some of whose parts are secret: at least `records`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lower_bound: bool,
}

impl Figure {
    pub fn is_secret(&self) -> bool {
        self.records.is_none()
    }
}

/// A collectivity reuses a project (see record.proto).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reuse {
    pub project: RecordRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub how: Option<String>,
}

/// Figures an aggregate holds at most.
pub const MAX_FIGURES: usize = 2_000;
/// Organisations an aggregate names at most (every commune of France fits).
pub const MAX_AGGREGATE_ORGANISATIONS: usize = 40_000;
/// Aggregates a roll-up combines at most.
pub const MAX_COMBINED: usize = 1_000;

/// A trusted author endorses a member key (see record.proto).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    /// The endorsed key; 64 hex characters in JSON.
    pub member_key: PublicKey,
    pub siren: Siren,
    pub role: MembershipRole,
    /// Milliseconds since the Unix epoch; 0: unbounded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub valid_from_ms: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub valid_until_ms: i64,
    /// A chef de file's or a committee's scope (see record.proto); empty:
    /// the territory of its SIREN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<String>,
}

/// Entries a membership's scope holds at most.
pub const MAX_SCOPE: usize = 5_000;

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
            Body::ProjectDetails(_) => Kind::ProjectDetails,
            Body::Resource(_) => Kind::Resource,
            Body::Collection(_) => Kind::Collection,
            Body::Succession(_) => Kind::Succession,
            Body::Revocation(_) => Kind::Revocation,
            Body::Aggregate(_) => Kind::Aggregate,
            Body::Reuse(_) => Kind::Reuse,
        }
    }

    /// A one-line human label: the title or name.
    pub fn label(&self) -> &str {
        match self {
            Body::Organisation(o) => &o.name,
            Body::Dataset(d) => &d.title,
            Body::Project(p) => &p.name,
            Body::Tombstone(_) => "(withdrawn)",
            Body::Membership(m) => m.siren.as_str(),
            Body::ProjectDetails(d) => &d.project,
            Body::Resource(r) => &r.title,
            Body::Collection(c) => &c.title,
            Body::Succession(_) => "(key succession)",
            Body::Revocation(_) => "(key revocation)",
            Body::Aggregate(a) => &a.territory,
            Body::Reuse(r) => &r.project.record_id,
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

    /// Every rule a draft breaks, in the order `validate_draft` checks them
    /// (its error is the first): an import reports them all at once. A
    /// dataset's and a project's fields are each checked; within other
    /// kinds, and within one distribution, contact or agent, the first
    /// problem only.
    pub fn draft_problems(&self) -> Vec<ValidationError> {
        let mut out = Vec::new();
        let record_level = self.record_level_problem();
        out.extend(record_level.err());
        match &self.body {
            Body::Dataset(d) => dataset_problems(d, &mut out),
            Body::Project(p) => project_problems(p, &mut out),
            _ => {
                if out.is_empty() {
                    out.extend(self.validate_draft().err());
                }
            }
        }
        out
    }

    /// Like `validate`, but allows version 0 and issued_at 0 ("fill in for me").
    pub fn validate_draft(&self) -> Result<(), ValidationError> {
        self.record_level_problem()?;
        self.validate_body()
    }

    /// The rules of the record around its body: its id, date, audience and
    /// provenance.
    fn record_level_problem(&self) -> Result<(), ValidationError> {
        validate_record_id(&self.record_id)?;
        if self.issued_at_ms < 0 {
            return Err(ValidationError::new("issued_at", "must not be before 1970"));
        }
        if let Visibility::Restricted { audience } = &self.visibility
            && audience.is_empty()
        {
            return Err(ValidationError::new(
                "audience",
                "a restricted record needs at least one SIREN in its audience",
            ));
        }
        if let Some(p) = &self.provenance {
            validate_provenance(p).map_err(|e| e.within("provenance"))?;
        }
        Ok(())
    }

    fn validate_body(&self) -> Result<(), ValidationError> {
        match &self.body {
            Body::Organisation(o) => validate_organisation(o),
            Body::Dataset(d) => validate_dataset(d),
            Body::Project(p) => validate_project(p),
            Body::ProjectDetails(d) => validate_project_details(d),
            Body::Resource(r) => validate_resource(r),
            Body::Collection(c) => validate_collection(c),
            Body::Tombstone(t) => max_chars("reason", &t.reason, MAX_SHORT_CHARS),
            Body::Membership(m) => validate_membership(m),
            Body::Succession(x) => {
                if x.predecessor == x.successor {
                    return Err(ValidationError::new(
                        "successor",
                        "must be another key than the predecessor",
                    ));
                }
                x.check_consent()
            }
            Body::Revocation(r) => {
                if r.compromised_since_ms < 0 {
                    return Err(ValidationError::new(
                        "compromised_since_ms",
                        "must not be before 1970",
                    ));
                }
                max_chars("reason", &r.reason, MAX_SHORT_CHARS)
            }
            Body::Aggregate(a) => validate_aggregate(a),
            Body::Reuse(r) => validate_reuse(r),
        }
    }
}

impl ValidationError {
    /// The same error, its field placed inside `parent` ("contact" →
    /// "publisher.contact", or "[2]" → "distributions[2]").
    pub fn within(mut self, parent: &str) -> ValidationError {
        self.field = if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

fn validate_organisation(o: &Organisation) -> Result<(), ValidationError> {
    required("name", &o.name, MAX_TITLE_CHARS)?;
    if let Some(siret) = &o.siret {
        let digits =
            siren::parse_siret(siret).map_err(|e| ValidationError::new("siret", e.to_string()))?;
        if !digits.starts_with(o.siren.as_str()) {
            return Err(ValidationError::new(
                "siret",
                format!("'{siret}' does not start with the SIREN '{}'", o.siren),
            ));
        }
    }
    url("website", &o.website)?;
    if o.epci_nature.is_some() && o.kind.is_some_and(|k| k != OrganisationKind::Epci) {
        return Err(ValidationError::new(
            "epci_nature",
            "only an EPCI has an EPCI nature: set kind to \"epci\" or remove epci_nature",
        ));
    }
    if let Some(code) = &o.insee {
        insee_code("insee", code)?;
    }
    if let Some(d) = &o.departement {
        departement_code("departement", d)?;
    }
    if let Some(r) = &o.region
        && !(r.len() == 2 && r.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ValidationError::new(
            "region",
            format!("'{r}' is not a région code (2 digits, e.g. \"76\")"),
        ));
    }
    if let Some(c) = &o.contact {
        validate_contact(c).map_err(|e| e.within("contact"))?;
    }
    Ok(())
}

fn validate_dataset(d: &Dataset) -> Result<(), ValidationError> {
    first(|out| dataset_problems(d, out))
}

/// Every rule `d` breaks, in the order `validate_dataset` checks them.
fn dataset_problems(d: &Dataset, out: &mut Vec<ValidationError>) {
    let mut check = |r: Result<(), ValidationError>| out.extend(r.err());
    check(required("title", &d.title, MAX_TITLE_CHARS));
    check(required("description", &d.description, MAX_TEXT_CHARS));
    check(short_list("keywords", &d.keywords));
    check(short_list("themes", &d.themes));
    check(optional("identifier", &d.identifier, MAX_SHORT_CHARS));
    check(url("landing_page", &d.landing_page));
    check(each(
        "distributions",
        &d.distributions,
        validate_distribution,
    ));
    if let Some(p) = &d.publisher {
        check(validate_agent(p).map_err(|e| e.within("publisher")));
    }
    if let Some(c) = &d.contact_point {
        check(validate_contact(c).map_err(|e| e.within("contact_point")));
    }
    if let Some(sp) = &d.spatial {
        if sp.insee_codes.len() > MAX_LONG_LIST_LEN {
            check(Err(too_many(
                "spatial.insee_codes",
                sp.insee_codes.len(),
                MAX_LONG_LIST_LEN,
            )));
        } else {
            for (i, code) in sp.insee_codes.iter().enumerate() {
                check(
                    territory_code(code)
                        .map_err(|e| e.within(&format!("spatial.insee_codes[{i}]"))),
                );
            }
        }
        check(optional("spatial.label", &sp.label, MAX_TITLE_CHARS));
    }
    if let Some(t) = &d.temporal {
        let start = date("temporal.start", &t.start);
        let end = date("temporal.end", &t.end);
        let both_dates = start.is_ok() && end.is_ok();
        check(start);
        check(end);
        if let (Some(a), Some(b)) = (&t.start, &t.end)
            && both_dates
            && b.get(..10).unwrap_or(b) < a.get(..10).unwrap_or(a)
        {
            check(Err(ValidationError::new(
                "temporal.end",
                format!("'{b}' is before the start '{a}'"),
            )));
        }
    }
    check(date("issued", &d.issued));
    check(date("modified", &d.modified));
}

/// The first of the problems `collect` finds.
fn first(collect: impl FnOnce(&mut Vec<ValidationError>)) -> Result<(), ValidationError> {
    let mut out = Vec::new();
    collect(&mut out);
    out.into_iter().next().map_or(Ok(()), Err)
}

fn validate_distribution(x: &Distribution) -> Result<(), ValidationError> {
    required("access_url", &x.access_url, MAX_SHORT_CHARS)?;
    url("access_url", &Some(x.access_url.clone()))?;
    url("download_url", &x.download_url)?;
    optional("title", &x.title, MAX_TITLE_CHARS)?;
    optional("format", &x.format, MAX_TITLE_CHARS)?;
    optional("media_type", &x.media_type, MAX_TITLE_CHARS)?;
    url("conforms_to", &x.conforms_to)?;
    if let Some(c) = &x.checksum {
        required("checksum.algorithm", &c.algorithm, 40)?;
        if c.value.is_empty() || !c.value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ValidationError::new(
                "checksum.value",
                format!("'{}' is not a hexadecimal digest", c.value),
            ));
        }
    }
    Ok(())
}

fn validate_project(p: &Project) -> Result<(), ValidationError> {
    first(|out| project_problems(p, out))
}

/// Every rule `p` breaks, in the order `validate_project` checks them.
fn project_problems(p: &Project, out: &mut Vec<ValidationError>) {
    let mut check = |r: Result<(), ValidationError>| out.extend(r.err());
    check(required("name", &p.name, MAX_TITLE_CHARS));
    check(required("description", &p.description, MAX_TEXT_CHARS));
    if p.abandon_reason.is_some() && p.status != ProjectStatus::Abandonne {
        check(Err(ValidationError::new(
            "abandon_reason",
            "only an abandoned project (status \"abandonne\") has an abandon reason",
        )));
    }
    check(optional(
        "abandon_reason",
        &p.abandon_reason,
        MAX_SHORT_CHARS,
    ));
    if let Some(date) = &p.start_date {
        check(validate_start_date(date));
    }
    check(url("website", &p.website));
    check(optional(
        "organisation_name",
        &p.organisation_name,
        MAX_TITLE_CHARS,
    ));
    if let Some(siret) = &p.siret {
        check(
            siren::parse_siret(siret)
                .map(|_| ())
                .map_err(|e| ValidationError::new("siret", e.to_string())),
        );
    }
    check(short_list("partners", &p.partners));
    if p.sub_themes.len() > 2 {
        check(Err(ValidationError::new(
            "sub_themes",
            format!(
                "has {} entries; a project has at most two sub-themes",
                p.sub_themes.len()
            ),
        )));
    }
    check(short_list("sub_themes", &p.sub_themes));
    if p.audiences.len() > MAX_LIST_LEN {
        check(Err(too_many("audiences", p.audiences.len(), MAX_LIST_LEN)));
    }
    for (name, text) in [
        ("proportionality", &p.proportionality),
        ("human_oversight", &p.human_oversight),
        ("reversibility", &p.reversibility),
        ("objection_procedure", &p.objection_procedure),
        ("legal_basis", &p.legal_basis),
        ("monitoring", &p.monitoring),
    ] {
        check(optional(name, text, MAX_TEXT_CHARS));
    }
    check(optional(
        "dpia_reference",
        &p.dpia_reference,
        MAX_SHORT_CHARS,
    ));
    check(each("links", &p.links, validate_link));
    match (p.latitude, p.longitude) {
        (None, None) => {}
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) {
                check(Err(ValidationError::new(
                    "latitude",
                    format!("{lat} is not a latitude in degrees (-90 to 90)"),
                )));
            }
            if !(-180.0..=180.0).contains(&lon) {
                check(Err(ValidationError::new(
                    "longitude",
                    format!("{lon} is not a longitude in degrees (-180 to 180)"),
                )));
            }
        }
        _ => check(Err(ValidationError::new(
            "latitude",
            "latitude and longitude go together: give both or neither",
        ))),
    }
    check(url("logo_url", &p.logo_url));
    check(url("codebase_url", &p.codebase_url));
    check(each("datasets", &p.datasets, validate_ref));
    check(date("last_updated", &p.last_updated));
    if p.coverage.len() > MAX_LIST_LEN {
        check(Err(too_many("coverage", p.coverage.len(), MAX_LIST_LEN)));
    }
    for (i, c) in p.coverage.iter().enumerate() {
        check(
            crate::territory::coverage(c)
                .map(|_| ())
                .map_err(|e| ValidationError::new(format!("coverage[{i}]"), e)),
        );
    }
}

fn validate_project_details(d: &ProjectDetails) -> Result<(), ValidationError> {
    validate_record_id(&d.project).map_err(|e| ValidationError::new("project", e.message))?;
    if let Some(c) = &d.contact {
        validate_contact(c).map_err(|e| e.within("contact"))?;
    }
    for (name, text) in [
        ("funding", &d.funding),
        ("algorithm_description", &d.algorithm_description),
        ("algorithm_operations", &d.algorithm_operations),
        ("environmental_impact", &d.environmental_impact),
    ] {
        optional(name, text, MAX_TEXT_CHARS)?;
    }
    optional("hosting_location", &d.hosting_location, MAX_SHORT_CHARS)?;
    for (name, n) in [
        ("algorithm_types", d.algorithm_types.len()),
        ("data_sources", d.data_sources.len()),
        ("data_access_modes", d.data_access_modes.len()),
    ] {
        if n > MAX_LIST_LEN {
            return Err(too_many(name, n, MAX_LIST_LEN));
        }
    }
    optional("algorithm_name", &d.algorithm_name, MAX_TITLE_CHARS)?;
    for (name, v) in [
        ("energy_kwh_per_year", d.energy_kwh_per_year),
        ("emissions_kgco2e_per_year", d.emissions_kgco2e_per_year),
    ] {
        if let Some(v) = v
            && (!v.is_finite() || v < 0.0)
        {
            return Err(ValidationError::new(
                name,
                format!("{v} is not a measured amount (a number, 0 or more)"),
            ));
        }
    }
    each("resources", &d.resources, validate_link)
}

fn validate_resource(r: &Resource) -> Result<(), ValidationError> {
    required("title", &r.title, MAX_TITLE_CHARS)?;
    optional("description", &r.description, MAX_TEXT_CHARS)?;
    url("url", &r.url)?;
    optional("content", &r.content, MAX_TEXT_CHARS)?;
    if r.url.is_none() && r.content.is_none() {
        return Err(ValidationError::new(
            "url",
            "a resource needs a url, or its text in content",
        ));
    }
    each("related", &r.related, validate_ref)
}

fn validate_collection(c: &Collection) -> Result<(), ValidationError> {
    required("title", &c.title, MAX_TITLE_CHARS)?;
    optional("description", &c.description, MAX_TEXT_CHARS)?;
    if c.items.len() > MAX_COLLECTION_ITEMS {
        return Err(too_many("items", c.items.len(), MAX_COLLECTION_ITEMS));
    }
    for (i, item) in c.items.iter().enumerate() {
        validate_ref(item).map_err(|e| e.within(&format!("items[{i}]")))?;
    }
    Ok(())
}

fn validate_membership(m: &Membership) -> Result<(), ValidationError> {
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
    if !m.scope.is_empty() && m.role == MembershipRole::Member {
        return Err(ValidationError::new(
            "scope",
            "only a chef de file or a committee has a scope",
        ));
    }
    if m.scope.len() > MAX_SCOPE {
        return Err(too_many("scope", m.scope.len(), MAX_SCOPE));
    }
    for (i, entry) in m.scope.iter().enumerate() {
        let is_siren = entry.len() == 9 && Siren::parse(entry).is_ok();
        if !is_siren && crate::territory::coverage(entry).is_err() {
            return Err(ValidationError::new(
                format!("scope[{i}]"),
                format!(
                    "'{entry}' is neither a territory (31555, dep:31, reg:76, an EPCI's SIREN) nor a SIREN"
                ),
            ));
        }
    }
    Ok(())
}

fn validate_aggregate(a: &Aggregate) -> Result<(), ValidationError> {
    if a.territory != crate::aggregate::FRANCE && crate::territory::coverage(&a.territory).is_err()
    {
        return Err(ValidationError::new(
            "territory",
            format!(
                "'{}' is not a territory (31555, dep:31, reg:76, an EPCI's SIREN, or france)",
                a.territory
            ),
        ));
    }
    if let Some(p) = &a.period {
        let period =
            crate::aggregate::Period::parse(p).map_err(|e| ValidationError::new("period", e))?;
        // One spelling per period: every node compares them as text.
        if period.name != *p {
            return Err(ValidationError::new(
                "period",
                format!("write '{p}' as \"{}\"", period.name),
            ));
        }
    }
    if a.as_of_ms < 0 {
        return Err(ValidationError::new("as_of_ms", "must not be before 1970"));
    }
    let hash = |field: &str, h: &str| {
        if h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(())
        } else {
            Err(ValidationError::new(
                field,
                format!("'{h}' is not 64 lowercase hex characters"),
            ))
        }
    };
    hash("inputs_hash", &a.inputs_hash)?;
    if a.organisations.len() > MAX_AGGREGATE_ORGANISATIONS {
        return Err(too_many(
            "organisations",
            a.organisations.len(),
            MAX_AGGREGATE_ORGANISATIONS,
        ));
    }
    if a.organisations.windows(2).any(|w| w[0] >= w[1]) {
        return Err(ValidationError::new(
            "organisations",
            "must be ascending, each once",
        ));
    }
    if a.combines.is_empty() {
        if a.organisation_hashes.len() != a.organisations.len() {
            return Err(ValidationError::new(
                "organisation_hashes",
                "must hold one hash per organisation",
            ));
        }
    } else if !a.organisation_hashes.is_empty() {
        return Err(ValidationError::new(
            "organisation_hashes",
            "a roll-up (with combines) has none: it saw no record",
        ));
    }
    for (i, h) in a.organisation_hashes.iter().enumerate() {
        hash(&format!("organisation_hashes[{i}]"), h)?;
    }
    if a.combines.len() > MAX_COMBINED {
        return Err(too_many("combines", a.combines.len(), MAX_COMBINED));
    }
    for (i, h) in a.combines.iter().enumerate() {
        hash(&format!("combines[{i}]"), h)?;
    }
    if a.combines.windows(2).any(|w| w[0] >= w[1]) {
        return Err(ValidationError::new(
            "combines",
            "must be ascending, each once",
        ));
    }
    if a.figures.len() > MAX_FIGURES {
        return Err(too_many("figures", a.figures.len(), MAX_FIGURES));
    }
    // In order, each (group, value) once: a reader, a verifier and a
    // roll-up must all read the same figure.
    if let Some(i) = a.figures.windows(2).position(|w| {
        crate::aggregate::figure_order(&w[0]) >= crate::aggregate::figure_order(&w[1])
    }) {
        return Err(ValidationError::new(
            format!("figures[{}]", i + 1),
            "figures are listed in their groups' order, then by value, each once",
        ));
    }
    for (i, f) in a.figures.iter().enumerate() {
        let at = |e: ValidationError| e.within(&format!("figures[{i}]"));
        required("group", &f.group, 100).map_err(at)?;
        max_chars("value", &f.value, 200).map_err(at)?;
        if f.records.is_none() && (f.organisations.is_some() || f.sum.is_some()) {
            return Err(at(ValidationError::new(
                "records",
                "a secret figure has no number at all",
            )));
        }
        if f.records.is_some() && f.organisations.is_none() {
            return Err(at(ValidationError::new(
                "organisations",
                "a figure shown says how many organisations it comes from",
            )));
        }
        if f.sum.is_some_and(|v| !v.is_finite()) {
            return Err(at(ValidationError::new("sum", "must be a finite number")));
        }
    }
    Ok(())
}

fn validate_reuse(r: &Reuse) -> Result<(), ValidationError> {
    validate_ref(&r.project).map_err(|e| e.within("project"))?;
    if let Some(since) = &r.since {
        // A month is enough: "2025-09".
        let month = since.len() == 7 && date("since", &Some(format!("{since}-01"))).is_ok();
        if !month {
            date("since", &r.since)?;
        }
    }
    optional("how", &r.how, MAX_SHORT_CHARS)
}

fn validate_provenance(p: &Provenance) -> Result<(), ValidationError> {
    required("source_format", &p.source_format, MAX_TITLE_CHARS)?;
    optional("source", &p.source, MAX_SHORT_CHARS)?;
    optional("source_identifier", &p.source_identifier, MAX_SHORT_CHARS)?;
    if let Some(a) = &p.on_behalf_of {
        validate_agent(a).map_err(|e| e.within("on_behalf_of"))?;
    }
    if p.as_written.len() > MAX_LIST_LEN {
        return Err(too_many("as_written", p.as_written.len(), MAX_LIST_LEN));
    }
    for (field, value) in &p.as_written {
        required("as_written", field, MAX_TITLE_CHARS)?;
        max_chars(&format!("as_written.{field}"), value, MAX_SHORT_CHARS)?;
    }
    Ok(())
}

fn validate_agent(a: &Agent) -> Result<(), ValidationError> {
    required("name", &a.name, MAX_TITLE_CHARS)?;
    if let Some(s) = &a.siren {
        // Still text: an agent is named as its source names it, and only
        // checked to be a SIREN in the spelling records store.
        Siren::parse_stored(s).map_err(|e| ValidationError::new("siren", e.to_string()))?;
    }
    url("url", &a.url)
}

fn validate_contact(c: &Contact) -> Result<(), ValidationError> {
    if c.name.is_none() && c.email.is_none() && c.url.is_none() && c.phone.is_none() {
        return Err(ValidationError::new(
            "name",
            "a contact needs at least a name, an email, a phone or a URL",
        ));
    }
    optional("name", &c.name, MAX_TITLE_CHARS)?;
    optional("phone", &c.phone, 40)?;
    if let Some(e) = &c.email {
        let e = e.strip_prefix("mailto:").unwrap_or(e);
        let ok = e.split_once('@').is_some_and(|(user, host)| {
            !user.is_empty() && host.contains('.') && !e.contains(char::is_whitespace)
        });
        if !ok || e.len() > 254 {
            return Err(ValidationError::new(
                "email",
                format!("'{e}' is not an email address"),
            ));
        }
    }
    url("url", &c.url)
}

fn validate_link(l: &Link) -> Result<(), ValidationError> {
    optional("title", &l.title, MAX_TITLE_CHARS)?;
    url("url", &Some(l.url.clone()))
}

fn validate_ref(r: &RecordRef) -> Result<(), ValidationError> {
    if let Some(a) = &r.author {
        PublicKey::parse_hex(a).map_err(|e| ValidationError::new("author", e.to_string()))?;
    }
    validate_record_id(&r.record_id)
}

/// Validates every element of a list, naming the failing one ("links[2].url").
fn each<T>(
    field: &str,
    items: &[T],
    check: impl Fn(&T) -> Result<(), ValidationError>,
) -> Result<(), ValidationError> {
    if items.len() > MAX_LIST_LEN {
        return Err(too_many(field, items.len(), MAX_LIST_LEN));
    }
    for (i, item) in items.iter().enumerate() {
        check(item).map_err(|e| e.within(&format!("{field}[{i}]")))?;
    }
    Ok(())
}

/// An http(s) URL: a scheme, a host, no spaces.
pub fn is_http_url(text: &str) -> bool {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    rest.is_some_and(|r| {
        !r.is_empty()
            && !r.starts_with('/')
            && !text.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

fn url(field: &str, value: &Option<String>) -> Result<(), ValidationError> {
    match value {
        None => Ok(()),
        Some(v) if v.chars().count() > MAX_SHORT_CHARS => Err(too_long(field, MAX_SHORT_CHARS)),
        Some(v) if !is_http_url(v) => Err(ValidationError::new(
            field,
            format!("'{v}' is not an http(s) URL such as https://example.fr/page"),
        )),
        Some(_) => Ok(()),
    }
}

/// ISO 8601: YYYY-MM-DD, optionally followed by a time ("T10:00:00Z").
fn date(field: &str, value: &Option<String>) -> Result<(), ValidationError> {
    let Some(v) = value else { return Ok(()) };
    let b = v.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let ok = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && (b.len() == 10 || (b[10] == b'T' && b.len() <= 40))
        && (1..=12).contains(&v[5..7].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&v[8..10].parse::<u32>().unwrap_or(0));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("'{v}' is not an ISO 8601 date such as 2026-03-31 (or 2026-03-31T10:00:00Z)"),
        ))
    }
}

/// A commune's INSEE code: 5 characters, digits, or 2A/2B then 3 digits.
fn insee_code(field: &str, code: &str) -> Result<(), ValidationError> {
    let b = code.as_bytes();
    let ok = b.len() == 5
        && (b[..2].iter().all(u8::is_ascii_digit) || &b[..2] == b"2A" || &b[..2] == b"2B")
        && b[2..].iter().all(u8::is_ascii_digit);
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!(
                "'{code}' is not a commune's INSEE code (5 characters, e.g. \"31555\" or \"2A004\")"
            ),
        ))
    }
}

/// A département code: "01"–"95", "2A", "2B", or "971"–"976".
fn departement_code(field: &str, code: &str) -> Result<(), ValidationError> {
    let ok = match code.len() {
        2 => code == "2A" || code == "2B" || code.bytes().all(|b| b.is_ascii_digit()),
        3 => code.starts_with("97") && code.bytes().all(|b| b.is_ascii_digit()),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("'{code}' is not a département code (e.g. \"31\", \"2A\", \"974\")"),
        ))
    }
}

/// A territory in a dataset's spatial coverage: a commune (5), département
/// (2–3) or région (2) code.
fn territory_code(code: &str) -> Result<(), ValidationError> {
    if code.len() == 5 {
        insee_code("", code)
    } else {
        departement_code("", code)
    }
    .map_err(|_| {
        ValidationError::new(
            "",
            format!("'{code}' is not an INSEE code of a commune, département or région"),
        )
    })
}

fn max_chars(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.chars().count() > max {
        return Err(too_long(field, max));
    }
    Ok(())
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
        return Err(too_many(field, values.len(), MAX_LIST_LEN));
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

fn too_many(field: &str, n: usize, limit: usize) -> ValidationError {
    ValidationError::new(field, format!("has {n} entries; the limit is {limit}"))
}
