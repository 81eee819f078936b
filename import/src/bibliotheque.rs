//! The CSV export of the bibliothèque des projets IA (Interconnectés'
//! bibliothèque d'IA territoriale): one project per row.
//!
//! Real exports join multiple values with commas, write SIRETs with spaces,
//! latitudes with a decimal comma, and hold names that span lines inside
//! quotes; all of that is read here. A SIRET failing its check, or a status
//! that names none, refuses the row with the field named; a value outside
//! another enumeration, or a note where an address is expected, is kept as
//! written, with a warning.

use maillage_record::Body;
use maillage_record::model::{Audience, OrganisationKind, Project, ProjectStatus, ProjectTheme};
use maillage_record::vocab::Vocabulary;

use crate::common::{self, Problems};
use crate::table::{self, Cells};
use crate::{Draft, Entries, RowError};

const COLUMNS: &[&str] = &[
    "Nom_collectivite",
    "Nom_du_projet",
    "SIRET",
    "Latitude",
    "Longitude",
    "Type_de_collectivite",
    "Date_de_demarrage",
    "Statut_du_projet",
    "Partenaires",
    "Description_service",
    "Theme",
    "Sous_Theme",
    "Audience",
    "URL_Service",
    "URL_Logo",
    "Date_de_derniere_mise_a_jour",
    // Not in the bibliothèque's export: a chef de file's own files may say
    // which territories a project serves (INSEE codes, SIRENs, dep:31).
    "Territoires_couverts",
];

const REQUIRED: &[&str] = &[
    "Nom_collectivite",
    "Nom_du_projet",
    "SIRET",
    "Statut_du_projet",
    "Description_service",
];

const SOURCES: &[(&str, &str)] = &[
    ("record_id", "Nom_du_projet"),
    ("name", "Nom_du_projet"),
    ("description", "Description_service"),
    ("start_date", "Date_de_demarrage"),
    ("website", "URL_Service"),
    ("organisation_name", "Nom_collectivite"),
    ("siret", "SIRET"),
    ("partners", "Partenaires"),
    ("sub_themes", "Sous_Theme"),
    ("latitude", "Latitude"),
    ("longitude", "Longitude"),
    ("logo_url", "URL_Logo"),
    ("last_updated", "Date_de_derniere_mise_a_jour"),
    ("coverage", "Territoires_couverts"),
    ("provenance.on_behalf_of", "Nom_collectivite"),
    ("provenance.source_identifier", "Nom_du_projet"),
];

pub(crate) fn open(
    bytes: &[u8],
    options: &crate::Options,
    notes: &mut Vec<String>,
) -> Result<Entries, crate::ImportError> {
    let rows = table::read_table(bytes, options, "bibliothèque IA", COLUMNS, REQUIRED, notes)?;
    Ok(Entries::Table(rows, project))
}

/// Writes projects in the bibliothèque's own column layout, the file
/// `open` reads: values in French as the bibliothèque writes them, lists
/// joined by commas. Read back, each row gives the same project. A project
/// without a SIRET has its organisation's SIREN, if one is given, in that
/// column (read back as the organisation); without either, a row the
/// reader refuses, as it would the bibliothèque's own.
pub fn write(projects: &[(&Project, Option<&str>)]) -> Vec<u8> {
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Writing to memory does not fail.
    let _ = out.write_record(COLUMNS);
    for (p, siren) in projects {
        let join = |items: &[String]| items.join(", ");
        let number = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
        let row: [String; 17] = [
            p.organisation_name.clone().unwrap_or_default(),
            p.name.clone(),
            p.siret
                .clone()
                .or(siren.map(str::to_string))
                .unwrap_or_default(),
            number(p.latitude),
            number(p.longitude),
            p.organisation_kind
                .map(|k| k.label().to_string())
                .unwrap_or_default(),
            p.start_date.clone().unwrap_or_default(),
            p.status.label().to_string(),
            join(&p.partners),
            p.description.clone(),
            p.theme.map(|t| t.label().to_string()).unwrap_or_default(),
            join(&p.sub_themes),
            p.audiences
                .iter()
                .map(|a| a.label())
                .collect::<Vec<_>>()
                .join(", "),
            p.website.clone().unwrap_or_default(),
            p.logo_url.clone().unwrap_or_default(),
            p.last_updated.clone().unwrap_or_default(),
            join(&p.coverage),
        ];
        let _ = out.write_record(&row);
    }
    out.into_inner().unwrap_or_default()
}

fn project(row: Cells) -> Result<Draft, Vec<RowError>> {
    let mut p = Problems::new(row.line);
    let org_name = common::one_line(row.get("Nom_collectivite"));
    if org_name.is_empty() {
        p.fail(
            "Nom_collectivite",
            "",
            "is empty: the collectivity running the project is required",
        );
    }
    // A SIREN where the SIRET goes names the organisation (what `write`
    // puts there for a project that has no SIRET): read as written, the
    // organisation's SIREN, nothing changed.
    let raw_siret = row.get("SIRET");
    let compact: String = raw_siret.chars().filter(|c| !c.is_whitespace()).collect();
    let (siret, siren_only) =
        if compact.len() == 9 && maillage_record::Siren::parse(&compact).is_ok() {
            (None, Some(compact))
        } else {
            (p.check("SIRET", raw_siret, common::siret(raw_siret)), None)
        };
    let name = common::one_line(row.get("Nom_du_projet"));
    let name_slug = common::slug(&name);
    if name_slug.is_empty() && !name.is_empty() {
        p.fail(
            "Nom_du_projet",
            &name,
            "has no letter or digit to identify the project by",
        );
    }
    // A project has a status: one that names none refuses the row (the
    // nearest known one is taken, with a warning).
    let status = match row.get("Statut_du_projet") {
        "" => {
            p.fail(
                "Statut_du_projet",
                "",
                "is empty: a project's status is required",
            );
            None
        }
        raw => match ProjectStatus::parse(raw) {
            Ok(s) => Some(s),
            Err(e) => match ProjectStatus::nearest(raw) {
                Some(_) => p.vocab::<ProjectStatus>("Statut_du_projet", raw, None),
                None => {
                    p.fail("Statut_du_projet", raw, common::unknown_term(&e));
                    None
                }
            },
        },
    };

    let mut project = Project::new(
        name,
        row.get("Description_service"),
        status.unwrap_or(ProjectStatus::Experimentation),
    );
    project.organisation_name = common::non_empty(&org_name);
    project.siret = siret.clone();
    project.organisation_kind = p.vocab(
        "Type_de_collectivite",
        row.get("Type_de_collectivite"),
        Some(OrganisationKind::Other),
    );
    project.start_date = p.optional(
        "Date_de_demarrage",
        row.get("Date_de_demarrage"),
        start_date,
    );
    project.partners = common::split_list(row.get("Partenaires"), &[',', ';']);
    project.theme = p.vocab::<ProjectTheme>("Theme", row.get("Theme"), None);
    project.sub_themes = common::split_list(row.get("Sous_Theme"), &[',', ';']);
    project.audiences = p.vocab_list::<Audience>("Audience", row.get("Audience"), &[',', ';']);
    project.website = p.web_url("URL_Service", row.get("URL_Service"));
    project.logo_url = p.web_url("URL_Logo", row.get("URL_Logo"));
    project.latitude = p.optional("Latitude", row.get("Latitude"), degrees);
    project.longitude = p.optional("Longitude", row.get("Longitude"), degrees);
    // A point is both coordinates: when one does not read (warned, kept as
    // written), the other alone is no point.
    let unread = |c: &str| !row.get(c).is_empty();
    if (project.latitude.is_none() && unread("Latitude"))
        || (project.longitude.is_none() && unread("Longitude"))
    {
        project.latitude = None;
        project.longitude = None;
    }
    for covered in common::split_list(row.get("Territoires_couverts"), &[',', ';']) {
        match maillage_record::territory::coverage(&covered) {
            Ok(_) => project.coverage.push(covered),
            Err(why) => p.warn(
                "Territoires_couverts",
                &covered,
                format!("{why}: left out of the coverage (write 31555, dep:31, reg:76 or an EPCI's SIREN)"),
            ),
        }
    }
    project.last_updated = p.optional(
        "Date_de_derniere_mise_a_jour",
        row.get("Date_de_derniere_mise_a_jour"),
        common::iso_day,
    );
    let id = siret.or(siren_only).unwrap_or_default();
    Ok(Draft {
        line: row.line,
        source_identifier: format!("{id}:{name_slug}"),
        organisation: Some(common::agent(&org_name, Some(&id))),
        body: Body::Project(project),
        sources: SOURCES
            .iter()
            .map(|(model, col)| (*model, col.to_string(), row.get(col).to_string()))
            .collect(),
        rename: None,
        order: row.column_order(),
        problems: p,
    })
}

/// A coordinate in degrees; a decimal comma ("43,6045") is read as a point.
fn degrees(text: &str) -> Result<f64, String> {
    let t = text.replace(',', ".");
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err("is not a number of degrees such as 43.6045 (or 43,6045)".to_string()),
    }
}

/// The start date as the model keeps it: "MM/YYYY" or "DD/MM/YYYY"
/// (single-digit days and months padded; an ISO date or month rewritten).
fn start_date(text: &str) -> Result<String, String> {
    let bad = || {
        "is not a start date: write MM/YYYY or DD/MM/YYYY (e.g. 03/2025 or 15/03/2025)".to_string()
    };
    let num = |s: &str| -> Option<u32> {
        (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let parts: Vec<&str> = text.split(['/', '-', '.']).map(str::trim).collect();
    let (day, month, year) = match parts.as_slice() {
        [y, m] if y.len() == 4 => (None, num(m), num(y)),
        [m, y] if y.len() == 4 => (None, num(m), num(y)),
        [y, m, d] if y.len() == 4 => (num(d), num(m), num(y)),
        [d, m, y] if y.len() == 4 => (num(d), num(m), num(y)),
        _ => return Err(bad()),
    };
    let (Some(month), Some(year)) = (month, year) else {
        return Err(bad());
    };
    if !(1..=12).contains(&month) || year < 1900 {
        return Err(bad());
    }
    match day {
        None if parts.len() == 2 => Ok(format!("{month:02}/{year}")),
        Some(d) => {
            // Checks the day against the calendar.
            common::iso_date(&format!("{year}-{month:02}-{d:02}")).map_err(|_| bad())?;
            Ok(format!("{d:02}/{month:02}/{year}"))
        }
        None => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_dates() {
        assert_eq!(start_date("03/2025"), Ok("03/2025".into()));
        assert_eq!(start_date("3/2025"), Ok("03/2025".into()));
        assert_eq!(start_date("15/03/2025"), Ok("15/03/2025".into()));
        assert_eq!(start_date("2025-03"), Ok("03/2025".into()));
        assert_eq!(start_date("2025-03-15"), Ok("15/03/2025".into()));
        for bad in ["2025", "13/2025", "31/02/2025", "mars 2025", "03/25"] {
            assert!(start_date(bad).unwrap_err().contains("MM/YYYY"), "{bad}");
        }
    }

    #[test]
    fn coordinates() {
        assert_eq!(degrees("43,6045"), Ok(43.6045));
        assert_eq!(degrees("1.444"), Ok(1.444));
        assert!(degrees("43°36'N").is_err());
        assert!(degrees("NaN").is_err());
    }
}
