//! The reference list of collectivities: every French commune and EPCI with
//! its SIREN, INSEE code, département, région and EPCI (data/collectivites.csv,
//! from INSEE/DGCL, Licence Ouverte). Built into the binary, read on first use.
//!
//! Used to check that a SIREN names a real collectivity, and to fill an
//! organisation's name and territory from its SIREN.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::model::{Organisation, ValidationError};
use crate::vocab::{EpciNature, OrganisationKind};

const CSV: &str = include_str!("../../data/collectivites.csv");

/// One row of the reference list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collectivity {
    pub siren: String,
    pub kind: OrganisationKind,
    pub epci_nature: Option<EpciNature>,
    pub name: String,
    /// A commune's INSEE code.
    pub insee: Option<String>,
    pub departement: Option<String>,
    pub region: Option<String>,
    pub population: Option<u64>,
    /// The EPCI a commune belongs to.
    pub epci_siren: Option<String>,
}

struct Index {
    rows: Vec<Collectivity>,
    by_siren: HashMap<String, usize>,
    by_insee: HashMap<String, usize>,
}

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let mut rows = Vec::with_capacity(36_500);
    for line in CSV.lines().skip(1) {
        let f = split_csv_line(line);
        if f.len() < 9 {
            continue;
        }
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let (kind, epci_nature) = match (f[1].as_str(), f[2].as_str()) {
            ("commune", _) => (OrganisationKind::Commune, None),
            (_, nature) => (OrganisationKind::Epci, EpciNature::parse(nature).ok()),
        };
        rows.push(Collectivity {
            siren: f[0].clone(),
            kind,
            epci_nature,
            name: f[3].clone(),
            insee: opt(&f[4]),
            departement: opt(&f[5]),
            region: opt(&f[6]),
            population: f[7].parse().ok(),
            epci_siren: opt(&f[8]),
        });
    }
    let by_siren = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.siren.clone(), i))
        .collect();
    let by_insee = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.insee.clone().map(|c| (c, i)))
        .collect();
    Index {
        rows,
        by_siren,
        by_insee,
    }
});

/// Splits one CSV line; fields may be double-quoted (with "" inside).
fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("non-empty").push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().expect("non-empty").push(c),
        }
    }
    fields
}

/// The collectivity with this SIREN (9 digits), if it is a commune or an EPCI.
pub fn by_siren(siren: &str) -> Option<&'static Collectivity> {
    let index = &*INDEX;
    index.by_siren.get(siren).map(|&i| &index.rows[i])
}

/// The commune with this INSEE code.
pub fn by_insee(code: &str) -> Option<&'static Collectivity> {
    let index = &*INDEX;
    index.by_insee.get(code).map(|&i| &index.rows[i])
}

/// Every commune and EPCI.
pub fn all() -> &'static [Collectivity] {
    &INDEX.rows
}

/// Fills what an organisation leaves out (kind, EPCI nature, INSEE code,
/// département, région) from the reference list, when its SIREN is there.
/// What the organisation says is kept. Returns whether the SIREN was found.
pub fn fill(org: &mut Organisation) -> bool {
    let Some(c) = by_siren(&org.siren) else {
        return false;
    };
    if org.name.trim().is_empty() {
        org.name = c.name.clone();
    }
    org.kind.get_or_insert(c.kind);
    if org.kind == Some(OrganisationKind::Epci) && org.epci_nature.is_none() {
        org.epci_nature = c.epci_nature;
    }
    if org.insee.is_none() {
        org.insee = c.insee.clone();
    }
    if org.departement.is_none() {
        org.departement = c.departement.clone();
    }
    if org.region.is_none() {
        org.region = c.region.clone();
    }
    true
}

/// What `maillage publish` does to an Organisation document: a SIRET given
/// as the SIREN is split into both; spaces in either are dropped; then what
/// the reference list knows fills the gaps, and what contradicts it is an
/// error (a commune's SIREN published as an EPCI, another INSEE code).
pub fn complete(org: &mut Organisation) -> Result<(), ValidationError> {
    let digits: String = org.siren.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() == 14 && org.siret.is_none() {
        org.siren = digits[..9].to_string();
        org.siret = Some(digits);
    } else {
        org.siren = digits;
    }
    if let Some(s) = &mut org.siret {
        s.retain(|c| !c.is_whitespace());
    }
    let Some(c) = by_siren(&org.siren) else {
        return Ok(());
    };
    if let Some(kind) = org.kind {
        if kind != c.kind {
            return Err(ValidationError::new(
                "kind",
                format!(
                    "'{kind}' contradicts the reference list: SIREN {} is {} '{}' ({})",
                    org.siren,
                    c.kind.label(),
                    c.name,
                    c.kind
                ),
            ));
        }
    }
    if let (Some(given), Some(known)) = (&org.insee, &c.insee) {
        if given != known {
            return Err(ValidationError::new(
                "insee",
                format!(
                    "'{given}' contradicts the reference list: {} (SIREN {}) has INSEE code {known}",
                    c.name, org.siren
                ),
            ));
        }
    }
    fill(org);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_communes_and_epcis() {
        assert!(all().len() > 36_000);
        let blagnac = by_siren("213100696").unwrap();
        assert_eq!(blagnac.name, "Blagnac");
        assert_eq!(blagnac.kind, OrganisationKind::Commune);
        assert_eq!(blagnac.insee.as_deref(), Some("31069"));
        assert_eq!(blagnac.epci_siren.as_deref(), Some("243100518"));
        assert_eq!(by_insee("31069"), Some(blagnac));
        let tm = by_siren("243100518").unwrap();
        assert_eq!(tm.name, "Toulouse Métropole");
        assert_eq!(tm.epci_nature, Some(EpciNature::Metropole));
        // A quoted name with a comma.
        let beaune = by_siren("200006682").unwrap();
        assert_eq!(
            beaune.name,
            "CA Beaune, Côte et Sud - Communauté Beaune-Chagny-Nolay"
        );
        assert_eq!(beaune.departement.as_deref(), Some("21"));
        // Corsica's codes are strings.
        assert!(
            all()
                .iter()
                .any(|c| c.insee.as_deref().is_some_and(|i| i.starts_with("2A")))
        );
        assert_eq!(by_siren("000000000"), None);
    }

    #[test]
    fn complete_splits_a_siret_and_refuses_contradictions() {
        let mut org = Organisation::new("213 100 696 00011", "Blagnac");
        complete(&mut org).unwrap();
        assert_eq!(org.siren, "213100696");
        assert_eq!(org.siret.as_deref(), Some("21310069600011"));
        assert_eq!(org.insee.as_deref(), Some("31069"));
        let mut wrong = Organisation::new("213100696", "Blagnac");
        wrong.kind = Some(OrganisationKind::Epci);
        let e = complete(&mut wrong).unwrap_err().to_string();
        assert!(
            e.contains("kind") && e.contains("Blagnac") && e.contains("commune"),
            "{e}"
        );
        let mut wrong = Organisation::new("213100696", "Blagnac");
        wrong.insee = Some("31555".into());
        let e = complete(&mut wrong).unwrap_err().to_string();
        assert!(e.contains("31555") && e.contains("31069"), "{e}");
    }

    #[test]
    fn fill_keeps_what_is_given() {
        let mut org = Organisation::new("213100696", "Ville de Blagnac");
        assert!(fill(&mut org));
        assert_eq!(org.name, "Ville de Blagnac");
        assert_eq!(org.kind, Some(OrganisationKind::Commune));
        assert_eq!(org.departement.as_deref(), Some("31"));
        assert_eq!(org.region.as_deref(), Some("76"));
        let mut unknown = Organisation::new("356000000", "La Poste");
        assert!(!fill(&mut unknown));
        assert_eq!(unknown.kind, None);
    }
}
