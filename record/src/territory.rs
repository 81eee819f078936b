//! The reference list of collectivities: every French commune and EPCI with
//! its SIREN, INSEE code, département, région and EPCI (data/collectivites.csv,
//! from INSEE/DGCL, Licence Ouverte), and every département, région and
//! collectivité à statut particulier with its SIREN
//! (data/departements-regions.csv). Built into the binary, read on first use.
//!
//! Used to check that a SIREN names a real collectivity, and to fill an
//! organisation's name and territory from its SIREN.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::model::{Organisation, ValidationError};
use crate::vocab::{EpciNature, OrganisationKind};

const CSV: &str = include_str!("../../data/collectivites.csv");
const DEPARTEMENTS_REGIONS: &str = include_str!("../../data/departements-regions.csv");

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
    /// Where it is: a commune at its commune, an EPCI at itself, a
    /// département at its département, a région at its région, a
    /// collectivité territoriale unique at its départements and région.
    pub places: Vec<Place>,
}

struct Index {
    rows: Vec<Collectivity>,
    by_siren: HashMap<String, usize>,
    by_insee: HashMap<String, usize>,
    region_by_dep: HashMap<String, String>,
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
        let places = match kind {
            OrganisationKind::Commune => vec![Place::Commune(f[4].clone())],
            _ => vec![Place::Epci(f[0].clone())],
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
            places,
        });
    }
    for line in DEPARTEMENTS_REGIONS.lines().skip(1) {
        let f = split_csv_line(line);
        if f.len() < 6 {
            continue;
        }
        let codes: Vec<String> = f[4].split(',').map(|c| c.trim().to_string()).collect();
        let region = f[5].trim().to_string();
        let (kind, places) = match (f[1].as_str(), f[2].as_str()) {
            ("region", _) => (
                OrganisationKind::Region,
                vec![Place::Region(region.clone())],
            ),
            // Alsace: two départements within the Grand Est région.
            ("collectivite", "CEA") => (
                OrganisationKind::Departement,
                codes.iter().cloned().map(Place::Departement).collect(),
            ),
            // Corse, Martinique, Guyane, Mayotte: départements and région
            // in one collectivity.
            ("collectivite", sub) => (
                if sub == "CTU" {
                    OrganisationKind::Region
                } else {
                    OrganisationKind::Departement
                },
                codes
                    .iter()
                    .cloned()
                    .map(Place::Departement)
                    .chain([Place::Region(region.clone())])
                    .collect(),
            ),
            _ => (
                OrganisationKind::Departement,
                codes.iter().cloned().map(Place::Departement).collect(),
            ),
        };
        rows.push(Collectivity {
            siren: f[0].clone(),
            kind,
            epci_nature: None,
            name: f[3].clone(),
            insee: None,
            departement: (kind == OrganisationKind::Departement || codes.len() == 1)
                .then(|| codes[0].clone())
                .filter(|c| departement_name(c).is_some()),
            region: Some(region),
            population: None,
            epci_siren: None,
            places,
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
    let region_by_dep = rows
        .iter()
        .filter_map(|r| Some((r.departement.clone()?, r.region.clone()?)))
        .collect();
    Index {
        rows,
        by_siren,
        by_insee,
        region_by_dep,
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

/// The collectivity with this SIREN (9 digits): a commune, an EPCI, a
/// département, a région or a collectivité à statut particulier.
pub fn by_siren(siren: &str) -> Option<&'static Collectivity> {
    let index = &*INDEX;
    index.by_siren.get(siren).map(|&i| &index.rows[i])
}

/// The commune with this INSEE code.
pub fn by_insee(code: &str) -> Option<&'static Collectivity> {
    let index = &*INDEX;
    index.by_insee.get(code).map(|&i| &index.rows[i])
}

/// Every collectivity of the reference list.
pub fn all() -> &'static [Collectivity] {
    &INDEX.rows
}

/// The région of a département, from the communes of the reference list.
pub fn region_of_departement(dep: &str) -> Option<&'static str> {
    INDEX.region_by_dep.get(dep).map(String::as_str)
}

/// The name of a département (INSEE code: "01", "2A", "974").
pub fn departement_name(code: &str) -> Option<&'static str> {
    DEPARTEMENTS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, name)| *name)
}

/// The name of a région (INSEE code: "84", "11", "04").
pub fn region_name(code: &str) -> Option<&'static str> {
    REGIONS.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// A place at one level of the commune → EPCI → département → région
/// hierarchy, written as search indexes it: `commune:69123`, `epci:200046977`,
/// `dep:69`, `reg:84`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Place {
    Commune(String),
    Epci(String),
    Departement(String),
    Region(String),
}

impl Place {
    /// Reads a territory as a user writes it: `commune:`, `epci:`, `dep:` or
    /// `reg:` followed by a code; or a bare code: 5 characters are a
    /// commune's INSEE code, 9 digits an EPCI's SIREN, 2 or 3 characters a
    /// département (a région must be written `reg:84`, since "84" is also
    /// Vaucluse). A commune's SIREN stands for the commune.
    pub fn parse(text: &str) -> Result<Place, String> {
        let t = text.trim();
        let (prefix, code) = match t.split_once(':') {
            Some((p, c)) => (Some(p.trim().to_lowercase()), c.trim()),
            None => (None, t),
        };
        let code = code.to_uppercase();
        let place = match prefix.as_deref() {
            Some("commune" | "insee") => Place::Commune(code),
            Some("epci") => Place::Epci(code),
            Some("dep" | "departement" | "département") => Place::Departement(code),
            Some("reg" | "region" | "région") => Place::Region(code),
            Some(p) => {
                return Err(format!(
                    "'{text}': unknown level '{p}'; write commune:INSEE, epci:SIREN, dep:CODE or reg:CODE"
                ));
            }
            None => match code.len() {
                5 => Place::Commune(code),
                9 => match by_siren(&code) {
                    Some(c) if c.kind == OrganisationKind::Commune => {
                        Place::Commune(c.insee.clone().unwrap_or(code))
                    }
                    // A département's or a région's SIREN: its territory
                    // (a collectivité territoriale unique: its région).
                    Some(c) if c.kind != OrganisationKind::Epci => c
                        .places
                        .iter()
                        .find(|p| matches!(p, Place::Region(_)))
                        .or(c.places.first())
                        .cloned()
                        .unwrap_or(Place::Epci(code)),
                    _ => Place::Epci(code),
                },
                2 | 3 => Place::Departement(code),
                _ => {
                    return Err(format!(
                        "'{text}' is not a territory: give an INSEE commune code (69123), an EPCI SIREN (200046977), a département (69, 2A, 974) or a région (reg:84)"
                    ));
                }
            },
        };
        let known = match &place {
            Place::Commune(c) => by_insee(c).is_some(),
            Place::Epci(s) => by_siren(s).is_some_and(|c| c.kind == OrganisationKind::Epci),
            Place::Departement(d) => departement_name(d).is_some(),
            Place::Region(r) => region_name(r).is_some(),
        };
        if known {
            Ok(place)
        } else {
            Err(format!(
                "'{text}': no such {} in the reference list",
                place.level()
            ))
        }
    }

    fn level(&self) -> &'static str {
        match self {
            Place::Commune(_) => "commune",
            Place::Epci(_) => "EPCI",
            Place::Departement(_) => "département",
            Place::Region(_) => "région",
        }
    }

    /// The place and every place above it: a commune is in its EPCI, its
    /// département and its région. An EPCI is in the département of its seat.
    pub fn with_ancestors(&self) -> Vec<Place> {
        let mut out = vec![self.clone()];
        let dep = match self {
            Place::Commune(insee) => by_insee(insee).and_then(|c| {
                if let Some(e) = &c.epci_siren {
                    out.push(Place::Epci(e.clone()));
                }
                c.departement.clone()
            }),
            Place::Epci(siren) => by_siren(siren).and_then(|c| c.departement.clone()),
            Place::Departement(d) => {
                out.pop();
                Some(d.clone())
            }
            Place::Region(_) => None,
        };
        if let Some(dep) = dep {
            if let Some(r) = region_of_departement(&dep) {
                out.push(Place::Region(r.to_string()));
            }
            out.push(Place::Departement(dep));
        }
        out.sort();
        out.dedup();
        out
    }

    /// Where a collectivity of the reference list is, by its SIREN (a
    /// collectivité territoriale unique is at its départements and its
    /// région); none for a SIREN the list does not hold.
    pub fn of_siren(siren: &str) -> &'static [Place] {
        by_siren(siren).map_or(&[], |c| c.places.as_slice())
    }

    /// A readable name: "Lyon (69123)", "Rhône (69)".
    pub fn label(&self) -> String {
        let name = match self {
            Place::Commune(c) => by_insee(c).map(|x| x.name.as_str()),
            Place::Epci(s) => by_siren(s).map(|x| x.name.as_str()),
            Place::Departement(d) => departement_name(d),
            Place::Region(r) => region_name(r),
        };
        let code = self.code();
        match name {
            Some(n) => format!("{n} ({code})"),
            None => code.to_string(),
        }
    }

    pub fn code(&self) -> &str {
        match self {
            Place::Commune(c) | Place::Epci(c) | Place::Departement(c) | Place::Region(c) => c,
        }
    }
}

/// The places a coverage entry names: a place as `Place::parse` reads it
/// (31555, 243100518, dep:31, reg:76), or any collectivity's SIREN (a
/// département's is its département). The error says what to write.
pub fn coverage(entry: &str) -> Result<Vec<Place>, String> {
    let t = entry.trim();
    if t.len() == 9 && t.bytes().all(|b| b.is_ascii_digit()) {
        let places = Place::of_siren(t);
        if !places.is_empty() {
            return Ok(places.to_vec());
        }
    }
    Place::parse(t).map(|p| vec![p]).map_err(|_| {
        format!(
            "'{entry}' is not a territory: write an INSEE commune code (31555), an EPCI's \
             SIREN (243100518), dep:31, reg:76, or a collectivity's SIREN"
        )
    })
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self {
            Place::Commune(_) => "commune",
            Place::Epci(_) => "epci",
            Place::Departement(_) => "dep",
            Place::Region(_) => "reg",
        };
        write!(f, "{level}:{}", self.code())
    }
}

/// Régions (INSEE codes, 2016 boundaries).
const REGIONS: &[(&str, &str)] = &[
    ("01", "Guadeloupe"),
    ("02", "Martinique"),
    ("03", "Guyane"),
    ("04", "La Réunion"),
    ("06", "Mayotte"),
    ("11", "Île-de-France"),
    ("24", "Centre-Val de Loire"),
    ("27", "Bourgogne-Franche-Comté"),
    ("28", "Normandie"),
    ("32", "Hauts-de-France"),
    ("44", "Grand Est"),
    ("52", "Pays de la Loire"),
    ("53", "Bretagne"),
    ("75", "Nouvelle-Aquitaine"),
    ("76", "Occitanie"),
    ("84", "Auvergne-Rhône-Alpes"),
    ("93", "Provence-Alpes-Côte d'Azur"),
    ("94", "Corse"),
];

/// Départements (INSEE codes).
const DEPARTEMENTS: &[(&str, &str)] = &[
    ("01", "Ain"),
    ("02", "Aisne"),
    ("03", "Allier"),
    ("04", "Alpes-de-Haute-Provence"),
    ("05", "Hautes-Alpes"),
    ("06", "Alpes-Maritimes"),
    ("07", "Ardèche"),
    ("08", "Ardennes"),
    ("09", "Ariège"),
    ("10", "Aube"),
    ("11", "Aude"),
    ("12", "Aveyron"),
    ("13", "Bouches-du-Rhône"),
    ("14", "Calvados"),
    ("15", "Cantal"),
    ("16", "Charente"),
    ("17", "Charente-Maritime"),
    ("18", "Cher"),
    ("19", "Corrèze"),
    ("2A", "Corse-du-Sud"),
    ("2B", "Haute-Corse"),
    ("21", "Côte-d'Or"),
    ("22", "Côtes-d'Armor"),
    ("23", "Creuse"),
    ("24", "Dordogne"),
    ("25", "Doubs"),
    ("26", "Drôme"),
    ("27", "Eure"),
    ("28", "Eure-et-Loir"),
    ("29", "Finistère"),
    ("30", "Gard"),
    ("31", "Haute-Garonne"),
    ("32", "Gers"),
    ("33", "Gironde"),
    ("34", "Hérault"),
    ("35", "Ille-et-Vilaine"),
    ("36", "Indre"),
    ("37", "Indre-et-Loire"),
    ("38", "Isère"),
    ("39", "Jura"),
    ("40", "Landes"),
    ("41", "Loir-et-Cher"),
    ("42", "Loire"),
    ("43", "Haute-Loire"),
    ("44", "Loire-Atlantique"),
    ("45", "Loiret"),
    ("46", "Lot"),
    ("47", "Lot-et-Garonne"),
    ("48", "Lozère"),
    ("49", "Maine-et-Loire"),
    ("50", "Manche"),
    ("51", "Marne"),
    ("52", "Haute-Marne"),
    ("53", "Mayenne"),
    ("54", "Meurthe-et-Moselle"),
    ("55", "Meuse"),
    ("56", "Morbihan"),
    ("57", "Moselle"),
    ("58", "Nièvre"),
    ("59", "Nord"),
    ("60", "Oise"),
    ("61", "Orne"),
    ("62", "Pas-de-Calais"),
    ("63", "Puy-de-Dôme"),
    ("64", "Pyrénées-Atlantiques"),
    ("65", "Hautes-Pyrénées"),
    ("66", "Pyrénées-Orientales"),
    ("67", "Bas-Rhin"),
    ("68", "Haut-Rhin"),
    ("69", "Rhône"),
    ("70", "Haute-Saône"),
    ("71", "Saône-et-Loire"),
    ("72", "Sarthe"),
    ("73", "Savoie"),
    ("74", "Haute-Savoie"),
    ("75", "Paris"),
    ("76", "Seine-Maritime"),
    ("77", "Seine-et-Marne"),
    ("78", "Yvelines"),
    ("79", "Deux-Sèvres"),
    ("80", "Somme"),
    ("81", "Tarn"),
    ("82", "Tarn-et-Garonne"),
    ("83", "Var"),
    ("84", "Vaucluse"),
    ("85", "Vendée"),
    ("86", "Vienne"),
    ("87", "Haute-Vienne"),
    ("88", "Vosges"),
    ("89", "Yonne"),
    ("90", "Territoire de Belfort"),
    ("91", "Essonne"),
    ("92", "Hauts-de-Seine"),
    ("93", "Seine-Saint-Denis"),
    ("94", "Val-de-Marne"),
    ("95", "Val-d'Oise"),
    ("971", "Guadeloupe"),
    ("972", "Martinique"),
    ("973", "Guyane"),
    ("974", "La Réunion"),
    ("976", "Mayotte"),
];

/// Fills what an organisation leaves out (kind, EPCI nature, INSEE code,
/// département, région) from the reference list, when its SIREN is there.
/// What the organisation says is kept. Returns whether the SIREN was found.
pub fn fill(org: &mut Organisation) -> bool {
    let Some(c) = by_siren(org.siren.as_str()) else {
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

/// What `maillage publish` does to an Organisation document once read (its
/// SIREN and SIRET compacted by json.rs): what the reference list knows
/// fills the gaps, and what contradicts it is an error (a commune's SIREN
/// published as an EPCI, another INSEE code).
pub fn complete(org: &mut Organisation) -> Result<(), ValidationError> {
    let Some(c) = by_siren(org.siren.as_str()) else {
        return Ok(());
    };
    if let Some(kind) = org.kind
        && kind != c.kind
    {
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
    if let (Some(given), Some(known)) = (&org.insee, &c.insee)
        && given != known
    {
        return Err(ValidationError::new(
            "insee",
            format!(
                "'{given}' contradicts the reference list: {} (SIREN {}) has INSEE code {known}",
                c.name, org.siren
            ),
        ));
    }
    fill(org);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Siren;

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

    /// Départements, régions and collectivités à statut particulier have
    /// their place too (data/departements-regions.csv).
    #[test]
    fn departements_and_regions_are_placed() {
        let hg = by_siren("223100017").unwrap();
        assert_eq!(hg.kind, OrganisationKind::Departement);
        assert_eq!(hg.departement.as_deref(), Some("31"));
        assert_eq!(
            Place::of_siren("223100017"),
            [Place::Departement("31".into())]
        );
        assert_eq!(Place::of_siren("200053791"), [Place::Region("76".into())]);
        let corse = Place::of_siren("200076958");
        assert!(corse.contains(&Place::Departement("2A".into())));
        assert!(corse.contains(&Place::Departement("2B".into())));
        assert!(corse.contains(&Place::Region("94".into())));
        let alsace = Place::of_siren("200094332");
        assert_eq!(alsace.len(), 2, "{alsace:?}");
        assert_eq!(by_siren("200094332").unwrap().region.as_deref(), Some("44"));
        // Every département of the list has a council in the reference
        // data, but Paris: the Ville de Paris, a commune, is its council.
        for (code, _) in DEPARTEMENTS.iter().filter(|(c, _)| *c != "75") {
            assert!(
                all().iter().any(|c| c.kind != OrganisationKind::Commune
                    && c.kind != OrganisationKind::Epci
                    && c.places.contains(&Place::Departement(code.to_string()))),
                "no council for département {code}"
            );
        }
        // A département is placed in its région.
        let up = Place::Departement("31".into()).with_ancestors();
        assert!(up.contains(&Place::Region("76".into())), "{up:?}");
        // Communes keep theirs.
        assert_eq!(
            Place::of_siren("213100696"),
            [Place::Commune("31069".into())]
        );
    }

    fn siren(s: &str) -> Siren {
        Siren::parse(s).unwrap()
    }

    #[test]
    fn complete_fills_and_refuses_contradictions() {
        let mut org = Organisation::new(siren("213100696"), "Blagnac");
        complete(&mut org).unwrap();
        assert_eq!(org.insee.as_deref(), Some("31069"));
        let mut wrong = Organisation::new(siren("213100696"), "Blagnac");
        wrong.kind = Some(OrganisationKind::Epci);
        let e = complete(&mut wrong).unwrap_err().to_string();
        assert!(
            e.contains("kind") && e.contains("Blagnac") && e.contains("commune"),
            "{e}"
        );
        let mut wrong = Organisation::new(siren("213100696"), "Blagnac");
        wrong.insee = Some("31555".into());
        let e = complete(&mut wrong).unwrap_err().to_string();
        assert!(e.contains("31555") && e.contains("31069"), "{e}");
    }

    #[test]
    fn places_read_as_users_write_them_and_know_their_ancestors() {
        let lyon = Place::parse("69123").unwrap();
        assert_eq!(lyon, Place::Commune("69123".into()));
        assert_eq!(lyon.to_string(), "commune:69123");
        let up: Vec<String> = lyon
            .with_ancestors()
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(
            up,
            ["commune:69123", "epci:200046977", "dep:69", "reg:84"]
                .map(String::from)
                .to_vec()
        );
        assert_eq!(Place::parse("2a").unwrap(), Place::Departement("2A".into()));
        assert_eq!(
            Place::parse("reg:84").unwrap().label(),
            "Auvergne-Rhône-Alpes (84)"
        );
        assert_eq!(Place::parse("84").unwrap().label(), "Vaucluse (84)");
        // A commune's SIREN stands for the commune.
        assert_eq!(
            Place::parse("213100696").unwrap(),
            Place::Commune("31069".into())
        );
        assert_eq!(
            Place::parse("epci:243100518")
                .unwrap()
                .with_ancestors()
                .len(),
            3
        );
        for bad in ["99", "reg:99", "canton:12", "lyon", "00000"] {
            let e = Place::parse(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        // Every département of the list has a name and a région.
        for c in all() {
            let Some(d) = c.departement.as_deref() else {
                // A région, or Corse (two départements).
                assert!(c.kind == OrganisationKind::Region, "{c:?}");
                continue;
            };
            assert!(departement_name(d).is_some(), "département {d}");
            assert!(
                region_of_departement(d).is_some_and(|r| region_name(r).is_some()),
                "{d}"
            );
        }
    }

    #[test]
    fn fill_keeps_what_is_given() {
        let mut org = Organisation::new(siren("213100696"), "Ville de Blagnac");
        assert!(fill(&mut org));
        assert_eq!(org.name, "Ville de Blagnac");
        assert_eq!(org.kind, Some(OrganisationKind::Commune));
        assert_eq!(org.departement.as_deref(), Some("31"));
        assert_eq!(org.region.as_deref(), Some("76"));
        let mut unknown = Organisation::new(siren("356000000"), "La Poste");
        assert!(!fill(&mut unknown));
        assert_eq!(unknown.kind, None);
    }
}
