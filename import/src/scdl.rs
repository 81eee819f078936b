//! The SCDL "catalogue" CSV (OpenDataFrance's schema): one dataset per row.

use maillage_record::Body;
use maillage_record::model::{Dataset, Frequency, Spatial, SpatialGranularity, Temporal};

use crate::common::{self, Problems};
use crate::table::{self, Cells};
use crate::{Draft, Entries};

const COLUMNS: &[&str] = &[
    "COLL_NOM",
    "COLL_SIRET",
    "ID",
    "TITRE",
    "DESCRIPTION",
    "THEME",
    "PRODUCTEUR_NOM",
    "PRODUCTEUR_SIRET",
    "COUV_SPAT_MAILLE",
    "COUV_SPAT_NOM",
    "COUV_TEMP_DEBUT",
    "COUV_TEMP_FIN",
    "DATE_PUBL",
    "FREQ_MAJ",
    "DATE_MAJ",
    "MOTS_CLES",
    "LICENCE",
    "NOMBRE_RESSOURCES",
    "FORMAT_RESSOURCES",
    "URL",
];

/// What identifies a row and makes a valid dataset; the other columns may be
/// left out of a file.
const REQUIRED: &[&str] = &["COLL_NOM", "COLL_SIRET", "ID", "TITRE", "DESCRIPTION"];

/// Where validation errors point: model field → SCDL column.
const SOURCES: &[(&str, &str)] = &[
    ("record_id", "ID"),
    ("title", "TITRE"),
    ("description", "DESCRIPTION"),
    ("keywords", "MOTS_CLES"),
    ("themes", "THEME"),
    ("identifier", "URL"),
    ("landing_page", "URL"),
    ("distributions", "URL"),
    ("distributions[0].format", "FORMAT_RESSOURCES"),
    ("publisher", "PRODUCTEUR_NOM"),
    ("spatial", "COUV_SPAT_NOM"),
    ("temporal.start", "COUV_TEMP_DEBUT"),
    ("temporal.end", "COUV_TEMP_FIN"),
    ("issued", "DATE_PUBL"),
    ("modified", "DATE_MAJ"),
    ("provenance.on_behalf_of", "COLL_NOM"),
    ("provenance.source_identifier", "ID"),
];

pub(crate) fn open(
    bytes: &[u8],
    options: &crate::Options,
    notes: &mut Vec<String>,
) -> Result<Entries, crate::ImportError> {
    let rows = table::read_table(bytes, options, "SCDL catalogue", COLUMNS, REQUIRED, notes)?;
    Ok(Entries::Table(rows, dataset))
}

fn dataset(row: Cells) -> Result<Draft, Vec<crate::RowError>> {
    // Every problem of the row is collected; `Draft::into_row` refuses it
    // if any is an error.
    let mut p = Problems::new(row.line);
    let coll_nom = row.get("COLL_NOM");
    if coll_nom.is_empty() {
        p.fail(
            "COLL_NOM",
            "",
            "is empty: the name of the collectivity publishing the catalogue is required",
        );
    }
    let coll_siret = p.check(
        "COLL_SIRET",
        row.get("COLL_SIRET"),
        common::siret(row.get("COLL_SIRET")),
    );
    let id = row.get("ID");
    if id.is_empty() {
        p.fail("ID", "", "is empty: each dataset needs the identifier its catalogue gives it, which a re-import matches on");
    }

    let mut d = Dataset::new(common::one_line(row.get("TITRE")), row.get("DESCRIPTION"));
    // SCDL theme labels hold commas ("Culture, patrimoine"): only ';'
    // separates themes.
    d.themes = common::split_list(row.get("THEME"), &[';']);
    d.keywords = common::split_list(row.get("MOTS_CLES"), &[';', ',']);
    d.publisher = Some(publisher(&row, coll_siret.as_deref()));

    let granularity = p.vocab(
        "COUV_SPAT_MAILLE",
        row.get("COUV_SPAT_MAILLE"),
        Some(SpatialGranularity::Autre),
    );
    let label = common::non_empty(&common::one_line(row.get("COUV_SPAT_NOM")));
    if granularity.is_some() || label.is_some() {
        d.spatial = Some(Spatial {
            insee_codes: vec![],
            granularity,
            label,
        });
    }
    let start = p.optional(
        "COUV_TEMP_DEBUT",
        row.get("COUV_TEMP_DEBUT"),
        common::iso_date,
    );
    let end = p.optional("COUV_TEMP_FIN", row.get("COUV_TEMP_FIN"), common::iso_date);
    if start.is_some() || end.is_some() {
        d.temporal = Some(Temporal { start, end });
    }
    d.issued = p.optional("DATE_PUBL", row.get("DATE_PUBL"), common::iso_date);
    d.modified = p.optional("DATE_MAJ", row.get("DATE_MAJ"), common::iso_date);
    d.frequency = p.vocab("FREQ_MAJ", row.get("FREQ_MAJ"), Some(Frequency::Unknown));
    d.licence = p.licence("LICENCE", row.get("LICENCE"));
    let url = p.web_url("URL", row.get("URL"));
    common::set_url(&mut d, url, row.get("FORMAT_RESSOURCES"));

    let siret = coll_siret.unwrap_or_default();
    Ok(Draft {
        line: row.line,
        source_identifier: format!("{siret}:{id}"),
        organisation: Some(common::agent(coll_nom, Some(&siret))),
        body: Body::Dataset(d),
        sources: SOURCES
            .iter()
            .map(|(model, col)| (*model, col.to_string(), row.get(col).to_string()))
            .collect(),
        rename: None,
        order: row.column_order(),
        problems: p,
    })
}

/// The producer when the row names one (its SIREN from PRODUCTEUR_SIRET when
/// valid; the collectivity's when the producer is the collectivity itself),
/// else the collectivity.
fn publisher(row: &Cells, coll_siret: Option<&str>) -> maillage_record::model::Agent {
    let coll_nom = row.get("COLL_NOM");
    let name = row.get("PRODUCTEUR_NOM");
    if name.is_empty() {
        return common::agent(coll_nom, coll_siret);
    }
    let own = common::siret(row.get("PRODUCTEUR_SIRET")).ok();
    let same_as_coll = common::slug(name) == common::slug(coll_nom);
    match own {
        Some(s) => common::agent(name, Some(&s)),
        None if same_as_coll => common::agent(name, coll_siret),
        None => common::agent(name, None),
    }
}
