//! DCAT-AP 3.0 catalogues of maillage records, in JSON-LD and Turtle, so that
//! data.gouv.fr, CKAN or any DCAT harvester can harvest a node.
//!
//! This crate does no IO. `PublicRecords` keeps only public records, whatever
//! it is given: the node's HTTP export and `maillage export` both go through
//! it, so a federation or restricted record cannot reach a harvester. Datasets
//! become dcat:Dataset; projects have their own JSON export; the other kinds
//! are not exported. docs/data-model.md maps every field to its DCAT-AP
//! property.

mod graph;

pub use graph::{Graph, Node, Object};

use std::collections::HashMap;

use maillage_record::model::{Agent, Contact, Dataset, Distribution, LicenceRef};
use maillage_record::{Body, Kind, Record, Visibility};

/// What the catalogue says of itself.
#[derive(Debug, Clone)]
pub struct CatalogInfo {
    pub title: String,
    pub description: String,
    /// The organisation that runs the node.
    pub publisher: Agent,
    /// Where the node serves its catalogue, e.g. "https://data.example.fr"
    /// (no trailing slash): record IRIs are minted under it.
    pub base_url: String,
}

impl CatalogInfo {
    /// The catalogue of a node run by `name` (SIREN `siren`), served at
    /// `base_url`: the same words in the HTTP export and `maillage export`.
    pub fn for_node(name: &str, siren: &str, base_url: &str) -> CatalogInfo {
        CatalogInfo {
            title: format!("Catalogue de {name}"),
            description: format!(
                "Jeux de données publics du nœud maillage de {name} et de la fédération qu'il relaie."
            ),
            publisher: Agent {
                name: name.to_string(),
                siren: Some(siren.to_string()),
                url: None,
            },
            base_url: base_url.trim_end_matches('/').to_string(),
        }
    }
}

/// One public record to export, with what the record alone does not say.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// The author's key, hex: with the record_id it names the record.
    pub author: String,
    pub record: &'a Record,
    /// The author's organisation (from its Organisation record), publisher
    /// of a dataset that names none.
    pub author_organisation: Option<Agent>,
    /// Public records related to this one (resources: a guide, code, a
    /// model), as `dct:relation`.
    pub relations: Vec<Relation>,
}

/// A public record related to an exported one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// Its author's key, hex, and its record_id: they name its page.
    pub author: String,
    pub record_id: String,
    pub title: String,
    /// What it is, in French ("Guide", "Code source").
    pub kind: String,
    /// Where it is, if it is elsewhere.
    pub url: Option<String>,
}

/// Where this page sits in the whole catalogue (Hydra paging).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// 1-based.
    pub number: usize,
    pub size: usize,
    /// Datasets in the whole catalogue.
    pub total: usize,
    /// The document paged, relative to the base URL: its links to other
    /// pages name the same one, so a Turtle harvest stays in Turtle.
    pub document: &'static str,
    /// What else the query asked, kept in the links to other pages
    /// (`&org=…`): empty, or starting with '&'.
    pub filters: String,
}

impl Page {
    pub const JSON_LD: &'static str = "catalog.jsonld";
    pub const TURTLE: &'static str = "catalog.ttl";

    pub fn last(&self) -> usize {
        self.total.div_ceil(self.size.max(1)).max(1)
    }
}

/// What a node shows harvesters: its current public datasets and projects,
/// and its authors' organisations (publishers of datasets that name none).
#[derive(Debug, Default)]
pub struct PublicRecords {
    /// (author hex, record), in the order added.
    records: Vec<(String, Record)>,
    organisations: HashMap<String, Agent>,
}

impl PublicRecords {
    /// Takes a current record; keeps it only if it is public and exported.
    pub fn add(&mut self, author: String, record: Record) {
        if record.visibility != Visibility::Public {
            return;
        }
        match &record.body {
            Body::Organisation(o) => {
                let agent = Agent {
                    name: o.name.clone(),
                    siren: Some(o.siren.to_string()),
                    url: o.website.clone(),
                };
                self.organisations.insert(author, agent);
            }
            Body::Dataset(_) | Body::Project(_) => self.records.push((author, record)),
            _ => {}
        }
    }

    /// The DCAT-AP catalogue: whole, or page `number` (1-based) of `size`.
    pub fn catalog(&self, info: &CatalogInfo, page: Option<(usize, usize)>) -> Graph {
        let datasets: Vec<Entry<'_>> = self
            .records
            .iter()
            .filter(|(_, r)| r.kind() == Kind::Dataset)
            .map(|(author, record)| Entry {
                author: author.clone(),
                record,
                author_organisation: self.organisations.get(author).cloned(),
                relations: Vec::new(),
            })
            .collect();
        match page {
            None => catalog(info, &datasets, None),
            Some((number, size)) => {
                let total = datasets.len();
                let start = number.saturating_sub(1).saturating_mul(size).min(total);
                let end = start.saturating_add(size).min(total);
                let p = Page {
                    number,
                    size,
                    total,
                    document: Page::JSON_LD,
                    filters: String::new(),
                };
                catalog(info, &datasets[start..end], Some(p))
            }
        }
    }

    /// Public projects as maillage JSON documents, with their author.
    pub fn projects_json(&self) -> serde_json::Value {
        self.records
            .iter()
            .filter(|(_, r)| r.kind() == Kind::Project)
            .map(|(author, record)| {
                let mut doc = maillage_record::json::record_to_json(record);
                doc["author"] = author.clone().into();
                doc
            })
            .collect()
    }
}

/// The IRI of a record: under the node's base URL, by author and record_id.
pub fn record_iri(base_url: &str, author: &str, record_id: &str) -> String {
    format!("{base_url}/records/{author}/{}", percent_encode(record_id))
}

/// An identifier of a record that does not depend on where it is served:
/// its author's key and its record_id.
fn stable_identifier(e: &Entry<'_>) -> String {
    format!("urn:maillage:{}:{}", e.author, e.record.record_id)
}

/// Builds the catalogue graph of `entries` (datasets; other kinds skipped).
pub fn catalog(info: &CatalogInfo, entries: &[Entry<'_>], page: Option<Page>) -> Graph {
    let mut g = Graph::default();
    let catalog_iri = format!("{}/catalog", info.base_url);
    let mut cat = Node::new(&catalog_iri, "dcat:Catalog");
    cat.add("dct:title", Object::text_fr(&info.title));
    cat.add("dct:description", Object::text_fr(&info.description));
    let publisher = agent(&mut g, &info.publisher);
    cat.add("dct:publisher", publisher);
    cat.add(
        "foaf:homepage",
        g.typed_iri(&info.base_url, "foaf:Document", None),
    );
    for e in entries {
        if let Body::Dataset(d) = &e.record.body {
            let iri = record_iri(&info.base_url, &e.author, &e.record.record_id);
            dataset(&mut g, &info.base_url, &iri, e, d);
            cat.add("dcat:dataset", Object::Node(iri));
        }
    }
    if let Some(p) = page {
        let url = |n: usize| {
            format!(
                "{}/{}?page={n}&page_size={}{}",
                info.base_url, p.document, p.size, p.filters
            )
        };
        let mut view = Node::new(url(p.number), "hydra:PartialCollectionView");
        view.add(
            "hydra:totalItems",
            Object::typed(p.total.to_string(), "xsd:integer"),
        );
        view.add(
            "hydra:itemsPerPage",
            Object::typed(p.size.to_string(), "xsd:integer"),
        );
        view.add("hydra:first", Object::Iri(url(1)));
        view.add("hydra:last", Object::Iri(url(p.last())));
        if p.number > 1 {
            view.add("hydra:previous", Object::Iri(url(p.number - 1)));
        }
        if p.number < p.last() {
            view.add("hydra:next", Object::Iri(url(p.number + 1)));
        }
        g.push(view);
    }
    g.nodes.insert(0, cat);
    g
}

fn dataset(g: &mut Graph, base_url: &str, iri: &str, e: &Entry<'_>, d: &Dataset) {
    let mut n = Node::new(iri, "dcat:Dataset");
    n.add("dct:title", Object::text_fr(&d.title));
    n.add("dct:description", Object::text_fr(&d.description));
    // The source's identifier, or one of the record itself: the same
    // wherever the node is served from (a harvester that keys on it sees
    // no new dataset when `public_url` changes).
    n.add(
        "dct:identifier",
        Object::plain(d.identifier.clone().unwrap_or_else(|| stable_identifier(e))),
    );
    for k in &d.keywords {
        n.add("dcat:keyword", Object::text_fr(k));
    }
    for t in &d.themes {
        // dcat:theme takes concepts (IRIs): the EU data themes. Other labels
        // people use as themes stay findable as keywords.
        match maillage_record::vocab::eu_data_theme(t) {
            Some((code, label)) => {
                let iri =
                    format!("http://publications.europa.eu/resource/authority/data-theme/{code}");
                let o = g.typed_iri(&iri, "skos:Concept", Some(label));
                n.add("dcat:theme", o);
                // Also its French label as a keyword: data.gouv.fr reads
                // keywords, not theme IRIs.
                n.add("dcat:keyword", Object::text_fr(label));
            }
            None => {
                n.add("dcat:keyword", Object::text_fr(t));
            }
        }
    }
    if let Some(p) = &d.landing_page {
        n.add("dcat:landingPage", g.typed_iri(p, "foaf:Document", None));
    }
    if let Some(o) = d.licence.as_ref().and_then(|l| licence(g, l)) {
        n.add("dct:license", o);
    }
    if let Some(p) = d.publisher.as_ref().or(e.author_organisation.as_ref()) {
        let o = agent(g, p);
        n.add("dct:publisher", o);
    }
    if let Some(c) = &d.contact_point {
        let o = contact(g, c);
        n.add("dcat:contactPoint", o);
    }
    if let Some(sp) = &d.spatial {
        let id = g.blank();
        let mut loc = Node::new(&id, "dct:Location");
        if let Some(l) = &sp.label {
            loc.add("locn:geographicName", Object::text_fr(l));
        }
        for code in &sp.insee_codes {
            loc.add("dct:identifier", Object::plain(code));
        }
        if let Some(gr) = sp.granularity {
            loc.add(
                "rdfs:comment",
                Object::text_fr(format!("maille : {}", gr.label())),
            );
        }
        g.push(loc);
        n.add("dct:spatial", Object::Node(id));
    }
    if let Some(t) = &d.temporal {
        let id = g.blank();
        let mut period = Node::new(&id, "dct:PeriodOfTime");
        if let Some(s) = &t.start {
            period.add("dcat:startDate", date(s));
        }
        if let Some(end) = &t.end {
            period.add("dcat:endDate", date(end));
        }
        g.push(period);
        n.add("dct:temporal", Object::Node(id));
    }
    if let Some(f) = d.frequency {
        let o = g.typed_iri(&f.eu_uri(), "dct:Frequency", None);
        n.add("dct:accrualPeriodicity", o);
    }
    if let Some(i) = &d.issued {
        n.add("dct:issued", date(i));
    }
    if let Some(m) = &d.modified {
        n.add("dct:modified", date(m));
    }
    for (i, dist) in d.distributions.iter().enumerate() {
        let id = format!("{iri}/distributions/{}", i + 1);
        distribution(g, &id, dist);
        n.add("dcat:distribution", Object::Node(id));
    }
    for r in &e.relations {
        // The related record's own page on this node; where it is
        // elsewhere, that address too.
        let rel = record_iri(base_url, &r.author, &r.record_id);
        if !g.is_described(&rel) {
            let mut doc = Node::new(&rel, "foaf:Document");
            doc.add("dct:title", Object::text_fr(&r.title));
            doc.add("dct:type", Object::text_fr(&r.kind));
            if let Some(u) = &r.url {
                doc.add("foaf:page", Object::Iri(u.clone()));
            }
            g.push(doc);
        }
        n.add("dct:relation", Object::Node(rel));
    }
    g.push(n);
}

fn distribution(g: &mut Graph, id: &str, x: &Distribution) {
    let mut n = Node::new(id, "dcat:Distribution");
    n.add("dcat:accessURL", Object::Iri(x.access_url.clone()));
    if let Some(u) = &x.download_url {
        n.add("dcat:downloadURL", Object::Iri(u.clone()));
    }
    if let Some(t) = &x.title {
        n.add("dct:title", Object::text_fr(t));
    }
    if let Some(f) = &x.format {
        let code: String = f
            .trim()
            .to_ascii_uppercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        if !code.is_empty() {
            let iri = format!("http://publications.europa.eu/resource/authority/file-type/{code}");
            let o = g.typed_iri(&iri, "dct:MediaTypeOrExtent", None);
            n.add("dct:format", o);
        }
    }
    if let Some(m) = &x.media_type {
        let m = m.trim();
        if m.contains('/') && !m.contains(char::is_whitespace) {
            let iri = format!("https://www.iana.org/assignments/media-types/{m}");
            let o = g.typed_iri(&iri, "dct:MediaType", None);
            n.add("dcat:mediaType", o);
        }
    }
    if let Some(o) = x.licence.as_ref().and_then(|l| licence(g, l)) {
        n.add("dct:license", o);
    }
    if let Some(b) = x.byte_size {
        n.add(
            "dcat:byteSize",
            Object::typed(b.to_string(), "xsd:nonNegativeInteger"),
        );
    }
    if let Some(c) = &x.checksum {
        let cid = g.blank();
        let mut node = Node::new(&cid, "spdx:Checksum");
        let algo = c.algorithm.to_ascii_lowercase().replace('-', "");
        node.add(
            "spdx:algorithm",
            Object::Iri(format!(
                "http://spdx.org/rdf/terms#checksumAlgorithm_{algo}"
            )),
        );
        node.add(
            "spdx:checksumValue",
            Object::typed(c.value.to_ascii_lowercase(), "xsd:hexBinary"),
        );
        g.push(node);
        n.add("spdx:checksum", Object::Node(cid));
    }
    if let Some(s) = &x.conforms_to {
        let o = g.typed_iri(s, "dct:Standard", None);
        n.add("dct:conformsTo", o);
    }
    g.push(n);
}

/// A licence as dct:license, or nothing for "other licence": there is no
/// IRI to name an unnamed licence.
fn licence(g: &mut Graph, l: &LicenceRef) -> Option<Object> {
    let iri = l.uri()?.to_string();
    let label = match l {
        LicenceRef::Known(k) => Some(k.label()),
        LicenceRef::Uri(_) => None,
    };
    let o = g.typed_iri(&iri, "dct:LicenseDocument", None);
    if let (Some(label), Object::Node(iri)) = (label, &o)
        && let Some(node) = g.nodes.iter_mut().find(|n| &n.id == iri)
        && node.props.is_empty()
    {
        node.add("rdfs:label", Object::text_fr(label));
    }
    Some(o)
}

fn agent(g: &mut Graph, a: &Agent) -> Object {
    let id = match &a.siren {
        // A SIREN names an organisation for good: one node per SIREN.
        Some(s) => format!("https://annuaire-entreprises.data.gouv.fr/entreprise/{s}"),
        None => g.blank(),
    };
    if !g.nodes.iter().any(|n| n.id == id) {
        let mut n = Node::new(&id, "foaf:Agent");
        n.add("foaf:name", Object::text_fr(&a.name));
        if let Some(s) = &a.siren {
            n.add("dct:identifier", Object::plain(s));
        }
        if let Some(u) = &a.url {
            n.add("foaf:homepage", Object::Iri(u.clone()));
        }
        g.push(n);
    }
    Object::Node(id)
}

fn contact(g: &mut Graph, c: &Contact) -> Object {
    let id = g.blank();
    let mut n = Node::new(&id, "vcard:Kind");
    if let Some(name) = &c.name {
        n.add("vcard:fn", Object::text_fr(name));
    }
    if let Some(e) = &c.email {
        let e = e.strip_prefix("mailto:").unwrap_or(e);
        n.add("vcard:hasEmail", Object::Iri(format!("mailto:{e}")));
    }
    if let Some(p) = &c.phone {
        n.add("vcard:hasTelephone", Object::plain(p));
    }
    if let Some(u) = &c.url {
        n.add("vcard:hasURL", Object::Iri(u.clone()));
    }
    g.push(n);
    Object::Node(id)
}

/// An ISO 8601 date or date-time as a typed literal. What is not a full
/// xsd:dateTime (hours, minutes and seconds) is exported as its date: one
/// ill-typed literal would fail the whole catalogue's validation.
fn date(s: &str) -> Object {
    let b = s.as_bytes();
    let full_time = b.len() >= 19
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && [11, 12, 14, 15, 17, 18]
            .iter()
            .all(|&i| b[i].is_ascii_digit());
    if full_time {
        Object::typed(s, "xsd:dateTime")
    } else {
        Object::typed(s.get(..10).unwrap_or(s), "xsd:date")
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use maillage_record::model::LicenceRef;

    fn entry(record: &Record) -> Entry<'_> {
        Entry {
            author: "ab".repeat(32),
            record,
            author_organisation: None,
            relations: Vec::new(),
        }
    }

    fn dataset(themes: &[&str], licence: &str) -> Record {
        let mut d = Dataset::new("Comptages vélo", "Les compteurs de la métropole.");
        d.themes = themes.iter().map(|t| t.to_string()).collect();
        d.licence = Some(LicenceRef::parse(licence).unwrap());
        Record {
            record_id: "comptages-velo".into(),
            version: 1,
            issued_at_ms: 1_764_000_000_000,
            visibility: Visibility::Public,
            provenance: None,
            body: Body::Dataset(d),
        }
    }

    /// data.gouv.fr ignores theme IRIs: an EU theme is a keyword too.
    #[test]
    fn eu_themes_are_keywords_too() {
        let r = dataset(&["TRAN"], "etalab-2.0");
        let info = CatalogInfo::for_node("Toulouse Métropole", "243100518", "https://a.example");
        let ttl = catalog(&info, &[entry(&r)], None).to_turtle();
        assert!(ttl.contains("data-theme/TRAN"), "{ttl}");
        let (_, label) = maillage_record::vocab::eu_data_theme("TRAN").unwrap();
        assert!(
            ttl.contains(&format!("dcat:keyword \"{label}\"@fr")),
            "{ttl}"
        );
    }

    /// A dataset with no identifier of its own keeps the same one when the
    /// node is served from another address.
    #[test]
    fn identifiers_do_not_follow_the_address() {
        let r = dataset(&[], "etalab-2.0");
        let id = |base: &str| {
            let info = CatalogInfo::for_node("Toulouse Métropole", "243100518", base);
            let g = catalog(&info, &[entry(&r)], None);
            let node = g
                .nodes
                .iter()
                .find(|n| n.types.contains(&"dcat:Dataset"))
                .unwrap();
            node.props
                .iter()
                .find(|(p, _)| *p == "dct:identifier")
                .map(|(_, o)| format!("{o:?}"))
                .unwrap()
        };
        assert_eq!(id("https://a.example"), id("https://b.example/maillage"));
        assert!(
            id("https://a.example").contains("urn:maillage:"),
            "{}",
            id("https://a.example")
        );
    }

    /// Many datasets with one licence and one theme describe each once
    /// (found in the set of described ids, not by a walk through the nodes).
    #[test]
    fn shared_nodes_are_described_once() {
        let records: Vec<Record> = (0..2_000)
            .map(|i| {
                let mut r = dataset(&["TRAN"], "etalab-2.0");
                r.record_id = format!("jeu-{i}");
                r
            })
            .collect();
        let entries: Vec<Entry<'_>> = records.iter().map(entry).collect();
        let info = CatalogInfo::for_node("Toulouse Métropole", "243100518", "https://a.example");
        let g = catalog(&info, &entries, None);
        let mut ids: Vec<&str> = g.nodes.iter().map(|n| n.id.as_str()).collect();
        let all = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), all, "a node described twice");
    }
}
