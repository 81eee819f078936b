//! DCAT-AP as JSON-LD: data.gouv.fr's `/catalog.jsonld` (compacted with its
//! own context, paged with Hydra) and CKAN's ckanext-dcat output (prefixed or
//! expanded), read through `jsonld`: one dataset per `dcat:Dataset` node.

use std::collections::HashSet;

use maillage_record::Body;
use maillage_record::model::{
    Agent, Checksum, Contact, Dataset, Distribution, Frequency, LicenceRef, Spatial, Temporal,
    is_http_url,
};
use serde_json::Value;

use crate::common::{self, Problems};
use crate::jsonld::{
    Graph, Node, first_iri, flatten, has_type, iri_or_text, last_segment, local, text, texts,
    values,
};
use crate::rdf::{self, Syntax};
use crate::{Draft, Drafts, ImportError, RowError};

/// A DCAT document as JSON-LD `jsonld.rs` reads: Turtle and RDF/XML through
/// the RDF parser; JSON-LD too, its context expanded, unless the context
/// cannot be (a remote one, offline): then as written, its properties
/// matched by their names (said in `notes`).
fn document(bytes: &[u8], source: &str, notes: &mut Vec<String>) -> Result<Value, ImportError> {
    let syntax = Syntax::detect(bytes);
    // Relative IRIs are relative to where the document was read.
    let base = if is_http_url(source) {
        source.to_string()
    } else {
        format!("file:///{}", source.trim_start_matches('/'))
    };
    if syntax != Syntax::JsonLd {
        notes.push(format!("read as {}", syntax.name()));
        return rdf::to_json(bytes, syntax, &base, notes);
    }
    let doc = crate::api::json(bytes)?;
    if !doc.is_object() && !doc.is_array() {
        return Err(ImportError::NotDcat {
            reason: "the document is a single JSON value, not a JSON-LD object or array of nodes"
                .into(),
        });
    }
    let mut parsing = Vec::new();
    match rdf::to_json(bytes, Syntax::JsonLd, &base, &mut parsing) {
        Ok(expanded) => {
            notes.extend(parsing);
            Ok(expanded)
        }
        Err(e) => {
            notes.push(format!(
                "its JSON-LD context was not expanded ({e}): properties read by their names"
            ));
            Ok(doc)
        }
    }
}

/// Reads a DCAT document's datasets (JSON-LD, Turtle or RDF/XML), and the
/// address of its next page, if it is a page of a paged catalogue.
pub(crate) fn parse(
    bytes: &[u8],
    source: &str,
    notes: &mut Vec<String>,
) -> Result<(Drafts, Option<String>), ImportError> {
    let doc = document(bytes, source, notes)?;
    let graph = Graph::new(&doc);
    let next = next_in(&graph);
    let mut seen = HashSet::new();
    let datasets: Vec<&Node> = graph
        .nodes
        .iter()
        .copied()
        .filter(|n| has_type(n, "Dataset"))
        // The same dataset embedded twice, or embedded and referenced.
        .filter(|n| match n.get("@id").and_then(Value::as_str) {
            Some(id) => seen.insert(id),
            None => true,
        })
        .map(|n| match n.get("@id").and_then(Value::as_str) {
            Some(id) => graph.by_id.get(id).copied().unwrap_or(n),
            None => n,
        })
        .collect();
    if datasets.is_empty() && !graph.nodes.iter().any(|n| has_type(n, "Catalog")) {
        let mut types: Vec<String> = graph
            .nodes
            .iter()
            .filter_map(|n| n.get("@type"))
            .flat_map(|t| {
                let mut v = Vec::new();
                flatten(t, &mut v);
                v.into_iter()
                    .filter_map(Value::as_str)
                    .map(rdf::compact)
                    .collect::<Vec<_>>()
            })
            .collect();
        types.sort();
        types.dedup();
        return Err(ImportError::NotDcat {
            reason: format!(
                "no node typed dcat:Dataset or dcat:Catalog (types found: {})",
                if types.is_empty() {
                    "none".to_string()
                } else {
                    types.join(", ")
                }
            ),
        });
    }
    let drafts = datasets
        .into_iter()
        .enumerate()
        .map(|(i, node)| dataset(&graph, node, i + 1))
        .collect();
    Ok((drafts, next))
}

/// The next page of a paged catalogue (Hydra's `next` or `nextPage`, as
/// data.gouv.fr and udata write them), if the document has one.
pub fn next_page(bytes: &[u8]) -> Option<String> {
    let doc = document(bytes, "", &mut Vec::new()).ok()?;
    next_in(&Graph::new(&doc))
}

fn next_in(graph: &Graph) -> Option<String> {
    graph.nodes.iter().find_map(|n| {
        let next = first_iri(n, &["next", "nextPage"])?;
        // A page pointing at itself would loop a caller following pages.
        let own = n.get("@id").and_then(Value::as_str);
        (is_http_url(&next) && own != Some(next.as_str())).then_some(next)
    })
}

fn dataset(graph: &Graph, node: &Node, index: usize) -> Result<Draft, Vec<RowError>> {
    let mut p = Problems::new(index);
    let id = node
        .get("@id")
        .and_then(Value::as_str)
        .filter(|id| !id.starts_with("_:") && !id.trim().is_empty());
    let identifier = text(node, &["identifier"]);
    let source_identifier = match (id, &identifier) {
        (Some(id), _) => id.to_string(),
        (None, Some(ident)) => ident.clone(),
        (None, None) => {
            p.fail("@id", "", "is missing, and so is dct:identifier: a re-import could not find this dataset again");
            String::new()
        }
    };

    let mut d = Dataset::new(
        text(node, &["title"])
            .map(|t| common::one_line(&t))
            .unwrap_or_default(),
        text(node, &["description"])
            .map(|d| common::html_to_text(&d))
            .unwrap_or_default(),
    );
    d.keywords = texts(node, &["keyword", "keywords"]);
    d.themes = themes(graph, node);
    d.identifier = identifier;
    d.landing_page = first_iri(node, &["landingPage"]);
    d.licence = licence(graph, node, &mut p, "license");
    if let Some(freq) = values(node, &["accrualPeriodicity"])
        .into_iter()
        .find_map(iri_or_text)
    {
        d.frequency = match frequency(&freq) {
            Ok(f) => Some(f),
            Err(_) => p.vocab("accrualPeriodicity", &freq, Some(Frequency::Unknown)),
        };
    }
    d.issued = p.optional(
        "issued",
        &text(node, &["issued"]).unwrap_or_default(),
        common::iso_date,
    );
    d.modified = p.optional(
        "modified",
        &text(node, &["modified"]).unwrap_or_default(),
        common::iso_date,
    );
    d.publisher = publisher(graph, node);
    d.contact_point = contact(graph, node);
    d.spatial = spatial(graph, node);
    if let Some(t) = values(node, &["temporal"])
        .into_iter()
        .find_map(|v| graph.resolve(v))
    {
        let start = text(t, &["startDate", "start"]).unwrap_or_default();
        let end = text(t, &["endDate", "end"]).unwrap_or_default();
        let start = p.optional("temporal.startDate", &start, common::iso_date);
        let end = p.optional("temporal.endDate", &end, common::iso_date);
        if start.is_some() || end.is_some() {
            d.temporal = Some(Temporal { start, end });
        }
    }
    for (i, v) in values(node, &["distribution"]).into_iter().enumerate() {
        let field = format!("distribution[{i}]");
        match graph.resolve(v) {
            Some(dist) => {
                if let Some(x) = distribution(graph, dist, &field, &mut p) {
                    d.distributions.push(x);
                }
            }
            None => p.fail(
                &field,
                &iri_or_text(v).unwrap_or_default(),
                "names no distribution node of the document",
            ),
        }
    }

    Ok(Draft {
        line: index,
        source_identifier,
        organisation: d.publisher.clone(),
        body: Body::Dataset(d),
        sources: vec![],
        rename: Some(property_path),
        // Problems in the order they were found, the document's.
        order: vec![],
        problems: p,
    })
}

/// Themes: the label of the concept a theme names (when the document
/// describes it), else a theme IRI's last segment ("…/data-theme/ECON" →
/// "ECON"; Opendatasoft's "…?refine.theme=Environnement" → "Environnement"),
/// or the literal.
fn themes(graph: &Graph, node: &Node) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values(node, &["theme"]) {
        let label = graph
            .resolve(v)
            .and_then(|concept| text(concept, &["prefLabel", "label"]));
        let theme = match (label, iri_or_text(v)) {
            (Some(label), _) => Some(label),
            (None, Some(iri)) if iri.contains("refine.theme=") => iri
                .rsplit("refine.theme=")
                .next()
                .map(|t| common::percent_decode(t.split('&').next().unwrap_or(t))),
            (None, Some(iri)) if is_http_url(&iri) => Some(last_segment(&iri)),
            (None, t) => t,
        };
        if let Some(t) = theme
            .map(|t| common::one_line(&t))
            .filter(|t| !t.is_empty())
            && !out.contains(&t)
        {
            out.push(t);
        }
    }
    out
}

/// A licence: a known one by its IRI or name, another IRI as is.
fn licence(graph: &Graph, node: &Node, p: &mut Problems, field: &str) -> Option<LicenceRef> {
    let v = values(node, &["license"]).into_iter().next()?;
    let raw = iri_or_text(v).or_else(|| {
        graph
            .resolve(v)
            .and_then(|n| text(n, &["title", "label", "name"]))
    })?;
    p.licence(field, &raw)
}

/// A frequency: an EU frequency IRI (…/frequency/MONTHLY), udata's names
/// ("monthly", "freq:threeTimesAWeek"), or a French label.
fn frequency(text: &str) -> Result<Frequency, String> {
    let code = local(text.trim().trim_end_matches('/'));
    if let Some(f) = Frequency::ALL
        .iter()
        .find(|f| local(&f.eu_uri()).eq_ignore_ascii_case(code))
    {
        return Ok(*f);
    }
    match code.to_ascii_uppercase().as_str() {
        "CONT" | "UPDATE_CONT" => return Ok(Frequency::Continuous),
        // Provisional data, other: no frequency is said.
        "OP_DATPRO" | "OTHER" => return Ok(Frequency::Unknown),
        _ => {}
    }
    Frequency::parse(code).map_err(|e| {
        format!(
            "{}, or an EU frequency IRI such as \
             http://publications.europa.eu/resource/authority/frequency/MONTHLY",
            common::unknown_term(&e)
        )
    })
}

/// The publisher: a foaf:Agent's name, and its homepage (or its IRI, the
/// organisation's page on the portal).
fn publisher(graph: &Graph, node: &Node) -> Option<Agent> {
    let v = values(node, &["publisher"]).into_iter().next()?;
    let (name, url) = match graph.resolve(v) {
        Some(org) => (
            text(
                org,
                &["name", "prefLabel", "label", "title", "organization-name"],
            ),
            first_iri(org, &["homepage", "url"])
                .or_else(|| org.get("@id").and_then(Value::as_str).map(str::to_string))
                .filter(|u| is_http_url(u)),
        ),
        // A bare name rather than a node.
        None => (iri_or_text(v).filter(|t| !is_http_url(t)), None),
    };
    Some(Agent {
        name: common::one_line(&name?),
        siren: None,
        url,
    })
}

/// The contact point: a vCard's name, email (without "mailto:"), URL, phone.
fn contact(graph: &Graph, node: &Node) -> Option<Contact> {
    let v = values(node, &["contactPoint"]).into_iter().next()?;
    let card = graph.resolve(v)?;
    let strip = |s: String, scheme: &str| {
        s.strip_prefix(scheme)
            .map(str::to_string)
            .unwrap_or(s)
            .trim()
            .to_string()
    };
    let value_of = |names: &[&str]| {
        values(card, names).into_iter().find_map(|v| {
            iri_or_text(v).or_else(|| {
                graph
                    .resolve(v)
                    .and_then(|n| first_iri(n, &["hasValue", "value"]))
            })
        })
    };
    let c = Contact {
        name: text(card, &["fn", "organization-name", "name"]).map(|n| common::one_line(&n)),
        email: value_of(&["hasEmail", "email"]).map(|e| strip(e, "mailto:")),
        phone: value_of(&["hasTelephone", "telephone", "tel"]).map(|t| strip(t, "tel:")),
        url: value_of(&["hasURL", "url"]).filter(|u| is_http_url(u)),
    };
    (c.name.is_some() || c.email.is_some() || c.phone.is_some() || c.url.is_some()).then_some(c)
}

/// Spatial coverage: a label, and the INSEE codes of data.gouv.fr zones
/// ("fr:commune:31555", "fr:departement:31", "fr:region:76").
fn spatial(graph: &Graph, node: &Node) -> Option<Spatial> {
    let mut s = Spatial::default();
    for v in values(node, &["spatial"]) {
        let iri = iri_or_text(v);
        let label = match graph.resolve(v) {
            Some(place) => text(place, &["prefLabel", "label", "title", "name"]),
            None => iri
                .clone()
                .filter(|t| !is_http_url(t) && zone_code(t).is_none()),
        };
        if s.label.is_none() {
            s.label = label.map(|l| common::one_line(&l));
        }
        if let Some(code) = iri.as_deref().and_then(zone_code)
            && !s.insee_codes.contains(&code)
        {
            s.insee_codes.push(code);
        }
    }
    (s.label.is_some() || !s.insee_codes.is_empty()).then_some(s)
}

/// The INSEE code in a data.gouv.fr zone id, if it is a well-formed one.
fn zone_code(text: &str) -> Option<String> {
    let (_, rest) = ["fr:commune:", "fr:departement:", "fr:region:"]
        .iter()
        .find_map(|k| text.find(k).map(|at| (k, &text[at + k.len()..])))?;
    let code: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_uppercase();
    let b = code.as_bytes();
    let ok = match b.len() {
        5 => {
            (b[..2].iter().all(u8::is_ascii_digit) || &b[..2] == b"2A" || &b[..2] == b"2B")
                && b[2..].iter().all(u8::is_ascii_digit)
        }
        2 => code == "2A" || code == "2B" || b.iter().all(u8::is_ascii_digit),
        3 => code.starts_with("97") && b.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    ok.then_some(code)
}

fn distribution(graph: &Graph, node: &Node, field: &str, p: &mut Problems) -> Option<Distribution> {
    let download = first_iri(node, &["downloadURL"]);
    let Some(access) = first_iri(node, &["accessURL"]).or_else(|| download.clone()) else {
        p.warn(
            field,
            node.get("@id").and_then(Value::as_str).unwrap_or(""),
            "has neither an accessURL nor a downloadURL: a distribution needs an address; \
             it is left out",
        );
        return None;
    };
    let mut x = Distribution::new(access);
    x.download_url = download;
    x.title = text(node, &["title"]).map(|t| common::one_line(&t));
    x.format = values(node, &["format"])
        .into_iter()
        .find_map(|v| match graph.resolve(v) {
            Some(n) if !n.contains_key("@id") || n.len() > 1 => {
                text(n, &["label", "prefLabel", "value"])
                    .or_else(|| iri_or_text(v).map(|i| last_segment(&i)))
            }
            _ => iri_or_text(v).map(|i| last_segment(&i)),
        });
    x.media_type = first_iri(node, &["mediaType"]).map(|m| match m.split_once("/media-types/") {
        Some((_, t)) => t.trim_end_matches('/').to_string(),
        None => m,
    });
    if let Some(size) = first_iri(node, &["byteSize"]) {
        x.byte_size = p.optional(&format!("{field}.byteSize"), &size, byte_size);
    }
    x.licence = licence(graph, node, p, &format!("{field}.license"));
    x.conforms_to = first_iri(node, &["conformsTo"]).filter(|u| is_http_url(u));
    x.checksum = values(node, &["checksum"])
        .into_iter()
        .find_map(|v| graph.resolve(v))
        .and_then(|c| {
            let value = text(c, &["checksumValue"])?;
            let algorithm = first_iri(c, &["algorithm"])?;
            let algorithm = local(&algorithm)
                .trim_start_matches("checksumAlgorithm_")
                .to_ascii_lowercase();
            Some(Checksum { algorithm, value })
        });
    Some(x)
}

fn byte_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    t.parse::<u64>()
        .ok()
        .or_else(|| {
            // "48213.0", as some exporters write a decimal.
            t.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 9.0e15)
                .map(|f| f as u64)
        })
        .ok_or_else(|| "is not a size in bytes (a whole number)".to_string())
}

/// A model field path in DCAT's words, for validation errors:
/// "distributions[0].access_url" → "distribution[0].accessURL".
fn property_path(model: &str) -> String {
    const RENAMES: &[(&str, &str)] = &[
        ("record_id", "@id"),
        ("keywords", "keyword"),
        ("themes", "theme"),
        ("landing_page", "landingPage"),
        ("licence", "license"),
        ("distributions", "distribution"),
        ("access_url", "accessURL"),
        ("download_url", "downloadURL"),
        ("media_type", "mediaType"),
        ("byte_size", "byteSize"),
        ("conforms_to", "conformsTo"),
        ("contact_point", "contactPoint"),
        ("frequency", "accrualPeriodicity"),
        ("insee_codes", "spatial"),
        ("start", "startDate"),
        ("end", "endDate"),
        ("provenance", "publisher"),
        ("on_behalf_of", ""),
        ("source_identifier", "@id"),
    ];
    model
        .split('.')
        .map(|segment| {
            let (name, index) = segment.split_at(segment.find('[').unwrap_or(segment.len()));
            let name = RENAMES
                .iter()
                .find(|(m, _)| *m == name)
                .map_or(name, |(_, d)| *d);
            format!("{name}{index}")
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequencies() {
        for (text, want) in [
            (
                "http://publications.europa.eu/resource/authority/frequency/MONTHLY",
                Frequency::Monthly,
            ),
            (
                "http://publications.europa.eu/resource/authority/frequency/ANNUAL_2",
                Frequency::Semiannual,
            ),
            (
                "http://publications.europa.eu/resource/authority/frequency/UPDATE_CONT",
                Frequency::Continuous,
            ),
            (
                "http://publications.europa.eu/resource/authority/frequency/IRREG",
                Frequency::Irregular,
            ),
            (
                "http://publications.europa.eu/resource/authority/frequency/NEVER",
                Frequency::Punctual,
            ),
            ("freq:threeTimesAWeek", Frequency::ThreeTimesAWeek),
            ("http://purl.org/cld/freq/quarterly", Frequency::Quarterly),
            ("semiannual", Frequency::Semiannual),
            ("punctual", Frequency::Punctual),
            ("Mensuelle", Frequency::Monthly),
        ] {
            assert_eq!(frequency(text), Ok(want), "{text}");
        }
        let e = frequency("fourTimesADay").unwrap_err();
        assert!(
            e.contains("update frequency") && e.contains("monthly"),
            "{e}"
        );
    }

    #[test]
    fn zone_codes() {
        assert_eq!(zone_code("fr:commune:31555"), Some("31555".into()));
        assert_eq!(
            zone_code("https://www.data.gouv.fr/api/1/spatial/zone/fr:departement:2a"),
            Some("2A".into())
        );
        assert_eq!(zone_code("fr:region:76"), Some("76".into()));
        assert_eq!(zone_code("fr:commune:315"), None);
        assert_eq!(zone_code("country:fr"), None);
    }

    #[test]
    fn property_paths() {
        assert_eq!(
            property_path("distributions[1].access_url"),
            "distribution[1].accessURL"
        );
        assert_eq!(property_path("temporal.end"), "temporal.endDate");
        assert_eq!(
            property_path("provenance.on_behalf_of.name"),
            "publisher.name"
        );
        assert_eq!(property_path("title"), "title");
    }
}
