//! Etalab's "schema-catalogue-donnees" CSV: one dataset per row, attributed to
//! the organisation of `nom_orga` / `siret_orga`.

use maillage_record::Body;
use maillage_record::model::{Contact, Dataset, Frequency, Spatial};

use crate::common::{self, Problems};
use crate::table::{self, Cells};
use crate::{Draft, Entries, RowError};

const COLUMNS: &[&str] = &[
    "titre",
    "description",
    "mots_cles",
    "nom_orga",
    "siret_orga",
    "id_alt_orga",
    "service",
    "si",
    "contact_service",
    "contact_personne",
    "date_pub",
    "date_maj",
    "freq_maj",
    "couv_geo",
    "url",
    "format",
    "licence",
];

/// `siret_orga` may be empty for an organisation without one (then
/// `id_alt_orga` identifies it), but the column must be there.
const REQUIRED: &[&str] = &["titre", "description", "nom_orga", "siret_orga"];

const SOURCES: &[(&str, &str)] = &[
    ("record_id", "titre"),
    ("title", "titre"),
    ("description", "description"),
    ("keywords", "mots_cles"),
    ("identifier", "url"),
    ("landing_page", "url"),
    ("distributions", "url"),
    ("distributions[0].format", "format"),
    ("publisher", "nom_orga"),
    ("contact_point", "contact_service"),
    ("spatial", "couv_geo"),
    ("issued", "date_pub"),
    ("modified", "date_maj"),
    ("provenance.on_behalf_of", "nom_orga"),
    ("provenance.source_identifier", "titre"),
];

pub(crate) fn open(
    bytes: &[u8],
    options: &crate::Options,
    notes: &mut Vec<String>,
) -> Result<Entries, crate::ImportError> {
    let rows = table::read_table(bytes, options, "Etalab catalogue", COLUMNS, REQUIRED, notes)?;
    Ok(Entries::Table(rows, dataset))
}

fn dataset(row: Cells) -> Result<Draft, Vec<RowError>> {
    let mut p = Problems::new(row.line);
    let nom_orga = row.get("nom_orga");
    if nom_orga.is_empty() {
        p.fail(
            "nom_orga",
            "",
            "is empty: the name of the organisation the dataset belongs to is required",
        );
    }
    // The organisation's key in the source identifier: its SIRET, or for an
    // organisation without one, its alternative identifier.
    let alt = common::id_slug(row.get("id_alt_orga"));
    let siret = match row.get("siret_orga") {
        "" if !alt.is_empty() => None,
        raw => p.check("siret_orga", raw, common::siret(raw)),
    };
    let title = common::one_line(row.get("titre"));
    let title_slug = common::slug(&title);
    if title_slug.is_empty() && !title.is_empty() {
        p.fail(
            "titre",
            &title,
            "has no letter or digit to identify the dataset by",
        );
    }

    let mut d = Dataset::new(title.clone(), row.get("description"));
    d.keywords = common::split_list(row.get("mots_cles"), &[';', ',']);
    d.publisher = Some(common::agent(nom_orga, siret.as_deref()));
    d.contact_point = contact(&row);
    if let Some(label) = common::non_empty(&common::one_line(row.get("couv_geo"))) {
        d.spatial = Some(Spatial {
            label: Some(label),
            ..Spatial::default()
        });
    }
    d.issued = p.optional("date_pub", row.get("date_pub"), common::iso_date);
    d.modified = p.optional("date_maj", row.get("date_maj"), common::iso_date);
    d.frequency = p.vocab("freq_maj", row.get("freq_maj"), Some(Frequency::Unknown));
    d.licence = p.licence("licence", row.get("licence"));
    let url = p.web_url("url", row.get("url"));
    common::set_url(&mut d, url, row.get("format"));
    let org_key = siret.clone().unwrap_or(alt);
    Ok(Draft {
        line: row.line,
        source_identifier: format!("{org_key}:{title_slug}"),
        organisation: Some(common::agent(nom_orga, siret.as_deref())),
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

/// The contact point: an email found in `contact_service` or
/// `contact_personne`, and a name (the service's first: it outlives a person
/// in charge; else the `service` column).
fn contact(row: &Cells) -> Option<Contact> {
    let mut c = Contact::default();
    for column in ["contact_service", "contact_personne"] {
        let (name, email) = common::split_email(row.get(column));
        if c.email.is_none() {
            c.email = email;
        }
        if c.name.is_none() {
            c.name = name;
        }
    }
    if c.name.is_none() {
        c.name = common::non_empty(&common::one_line(row.get("service")));
    }
    (c.name.is_some() || c.email.is_some()).then_some(c)
}
