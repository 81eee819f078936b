//! udata's API (data.gouv.fr and the portals built on it): a page of
//! `/api/1/datasets/` (an organisation's, or a search's), one dataset per
//! entry, paged by `next_page`.

use maillage_record::Body;
use maillage_record::model::{
    Agent, Checksum, Distribution, Frequency, Spatial, SpatialGranularity, Temporal, is_http_url,
};
use serde_json::Value;

use crate::api::{self, field, items};
use crate::common::{self, Problems};
use crate::{Draft, Drafts, ImportError, RowError};

/// The datasets of a page: `{"data": [...], "next_page": ...}`, or the bare
/// list older versions of the API answer.
pub(crate) fn parse(bytes: &[u8]) -> Result<Drafts, ImportError> {
    let doc = api::json(bytes)?;
    let entries = match &doc {
        Value::Array(list) => list.as_slice(),
        Value::Object(o) if o.contains_key("data") => items(o.get("data")),
        _ => {
            return Err(ImportError::NotApi {
                api: "udata",
                reason:
                    "expected the answer of /api/1/datasets/: an object with \"data\", or a list"
                        .into(),
            });
        }
    };
    Ok(entries
        .iter()
        .enumerate()
        .map(|(i, d)| dataset(d, i + 1))
        .collect())
}

/// The page after this one, if any.
pub(crate) fn next_page(bytes: &[u8]) -> Option<String> {
    let doc = api::json(bytes).ok()?;
    field(&doc, "next_page").filter(|u| is_http_url(u))
}

fn dataset(d: &Value, index: usize) -> Result<Draft, Vec<RowError>> {
    let mut p = Problems::new(index);
    let id = field(d, "id").unwrap_or_default();
    if id.is_empty() {
        p.fail(
            "id",
            "",
            "is missing: a re-import could not find this dataset again",
        );
    }
    let mut ds = api::titled(d, "description", &mut p);
    ds.keywords = items(d.get("tags"))
        .iter()
        .filter_map(|t| api::text(Some(t)))
        .collect();
    ds.landing_page = field(d, "page").filter(|u| is_http_url(u));
    ds.identifier = ds.landing_page.clone().or_else(|| field(d, "uri"));
    if let Some(licence) = field(d, "license") {
        ds.licence = p.licence("license", &licence);
    }
    if let Some(freq) = field(d, "frequency") {
        ds.frequency = p.vocab("frequency", &freq, Some(Frequency::Unknown));
    }
    ds.issued = p.optional(
        "created_at",
        &field(d, "created_at").unwrap_or_default(),
        common::iso_date,
    );
    ds.modified = p.optional(
        "last_modified",
        &field(d, "last_modified").unwrap_or_default(),
        common::iso_date,
    );
    if let Some(t) = d.get("temporal_coverage").filter(|t| t.is_object()) {
        let start = p.optional(
            "temporal_coverage.start",
            &field(t, "start").unwrap_or_default(),
            common::iso_date,
        );
        let end = p.optional(
            "temporal_coverage.end",
            &field(t, "end").unwrap_or_default(),
            common::iso_date,
        );
        if start.is_some() || end.is_some() {
            ds.temporal = Some(Temporal { start, end });
        }
    }
    ds.spatial = spatial(d.get("spatial"), &mut p);
    let organisation = organisation(d.get("organization"));
    ds.publisher = organisation.clone();
    for (i, r) in items(d.get("resources")).iter().enumerate() {
        if let Some(x) = resource(r, &format!("resources[{i}]"), &mut p) {
            ds.distributions.push(x);
        }
    }
    Ok(Draft {
        line: index,
        source_identifier: id,
        organisation,
        body: Body::Dataset(ds),
        sources: vec![
            (
                "title",
                "title".into(),
                field(d, "title").unwrap_or_default(),
            ),
            ("description", "description".into(), String::new()),
            (
                "landing_page",
                "page".into(),
                field(d, "page").unwrap_or_default(),
            ),
        ],
        rename: None,
        order: vec![],
        problems: p,
    })
}

/// The organisation: its name, its SIREN when the portal knows its SIRET
/// (`business_number_id`), its page.
fn organisation(o: Option<&Value>) -> Option<Agent> {
    let o = o.filter(|o| o.is_object())?;
    let name = common::one_line(&field(o, "name")?);
    let siret = field(o, "business_number_id").and_then(|s| common::siret(&s).ok());
    let mut agent = common::agent(&name, siret.as_deref());
    agent.url = field(o, "page").filter(|u| is_http_url(u));
    Some(agent)
}

/// Zones ("fr:commune:31069", "fr:departement:31") as INSEE codes; the
/// granularity ("fr:commune", "other") as the vocabulary's.
fn spatial(s: Option<&Value>, p: &mut Problems) -> Option<Spatial> {
    let s = s.filter(|s| s.is_object())?;
    let insee_codes: Vec<String> = items(s.get("zones"))
        .iter()
        .filter_map(|z| z.as_str())
        .filter_map(|z| {
            let z = z.split('@').next().unwrap_or(z);
            let mut parts = z.split(':');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("fr"), Some("commune" | "departement" | "region"), Some(code)) => {
                    Some(code.to_string())
                }
                _ => None,
            }
        })
        .collect();
    let granularity = field(s, "granularity").and_then(|g| {
        let g = g.strip_prefix("fr:").unwrap_or(&g).to_string();
        p.vocab("spatial.granularity", &g, Some(SpatialGranularity::Autre))
    });
    (granularity.is_some() || !insee_codes.is_empty()).then_some(Spatial {
        insee_codes,
        granularity,
        label: None,
    })
}

fn resource(r: &Value, name: &str, p: &mut Problems) -> Option<Distribution> {
    let url = api::resource_url(r, name, p)?;
    let mut x = Distribution::new(url.clone());
    x.download_url = (field(r, "filetype").as_deref() == Some("file")).then_some(url);
    x.title = field(r, "title").map(|t| common::one_line(&t));
    x.format = field(r, "format");
    x.media_type = field(r, "mime");
    x.byte_size = api::count(r.get("filesize"));
    x.checksum = r.get("checksum").and_then(|c| {
        let value = field(c, "value")?;
        let algorithm = field(c, "type")?.to_ascii_lowercase();
        value
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
            .then_some(Checksum { algorithm, value })
    });
    Some(x)
}
