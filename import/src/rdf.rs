//! RDF documents (Turtle, RDF/XML, N-Triples, JSON-LD with its context
//! expanded) read by a real RDF parser (oxrdfio), then given to the DCAT
//! reader as flattened JSON-LD: one node per subject, each property under
//! its full IRI, each value an `{"@id"}` or an `{"@value"}` (with its
//! language). `jsonld.rs` reads that as it reads any JSON-LD.

use std::collections::HashMap;

use oxrdf::{NamedOrBlankNode, Term};
use oxrdfio::{JsonLdProfileSet, RdfFormat, RdfParser};
use serde_json::{Map, Value, json};

use crate::ImportError;

/// The RDF syntaxes a DCAT catalogue comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    JsonLd,
    Turtle,
    RdfXml,
}

impl Syntax {
    /// The syntax a document is written in, from its first characters.
    pub fn detect(bytes: &[u8]) -> Syntax {
        let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        let first = text.iter().find(|b| !b.is_ascii_whitespace()).copied();
        match first {
            Some(b'{' | b'[') => Syntax::JsonLd,
            Some(b'<') if looks_like_xml(text) => Syntax::RdfXml,
            // A lone JSON value ("42") is JSON, to be told it is no JSON-LD.
            _ if serde_json::from_slice::<Value>(text).is_ok() => Syntax::JsonLd,
            _ => Syntax::Turtle,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Syntax::JsonLd => "JSON-LD",
            Syntax::Turtle => "Turtle",
            Syntax::RdfXml => "RDF/XML",
        }
    }

    fn format(self) -> RdfFormat {
        match self {
            Syntax::JsonLd => RdfFormat::JsonLd {
                profile: JsonLdProfileSet::empty(),
            },
            Syntax::Turtle => RdfFormat::Turtle,
            Syntax::RdfXml => RdfFormat::RdfXml,
        }
    }
}

/// "<?xml", "<rdf:RDF", a comment: XML; "<http://…> a dcat:Dataset": Turtle.
fn looks_like_xml(text: &[u8]) -> bool {
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let rest = &text[start..];
    rest.starts_with(b"<?xml")
        || rest.starts_with(b"<!--")
        || rest.starts_with(b"<!DOCTYPE")
        || rest
            .get(1)
            .is_some_and(|b| b.is_ascii_alphabetic() && !rest.starts_with(b"<http"))
}

/// The document's triples as flattened JSON-LD (named graphs merged into
/// one), relative IRIs resolved against `base`; or where the document is not
/// valid in its syntax. Real exports are not always valid (Opendatasoft's
/// RDF/XML has IRIs such as "Rennes"): a document refused by the strict
/// parser is read again leniently, and `notes` says so.
pub(crate) fn to_json(
    bytes: &[u8],
    syntax: Syntax,
    base: &str,
    notes: &mut Vec<String>,
) -> Result<Value, ImportError> {
    match triples(bytes, syntax, base, false) {
        Ok(v) => Ok(v),
        Err(strict) => {
            let v = triples(bytes, syntax, base, true).map_err(|_| strict.clone())?;
            notes.push(format!(
                "the document is not strictly valid ({strict}): read leniently"
            ));
            Ok(v)
        }
    }
}

fn triples(bytes: &[u8], syntax: Syntax, base: &str, lenient: bool) -> Result<Value, ImportError> {
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut parser = RdfParser::from_format(syntax.format());
    if let Ok(with_base) = parser.clone().with_base_iri(base) {
        parser = with_base;
    }
    if lenient {
        parser = parser.lenient();
    }
    // In the order subjects first appear: a dataset's number in the report
    // is its place in the document.
    let mut nodes: Vec<Map<String, Value>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for quad in parser.for_slice(text) {
        let quad = quad.map_err(|e| ImportError::Rdf {
            syntax: syntax.name(),
            message: e.to_string(),
        })?;
        let subject = match &quad.subject {
            NamedOrBlankNode::NamedNode(n) => n.as_str().to_string(),
            NamedOrBlankNode::BlankNode(b) => format!("_:{}", b.as_str()),
        };
        let at = *index.entry(subject.clone()).or_insert_with(|| {
            let mut m = Map::new();
            m.insert("@id".into(), Value::String(subject));
            nodes.push(m);
            nodes.len() - 1
        });
        let node = &mut nodes[at];
        let predicate = quad.predicate.as_str();
        let (key, value) = if predicate == RDF_TYPE {
            let Term::NamedNode(t) = &quad.object else {
                continue;
            };
            ("@type".to_string(), Value::String(t.as_str().to_string()))
        } else {
            let value = match &quad.object {
                Term::NamedNode(n) => json!({"@id": n.as_str()}),
                Term::BlankNode(b) => json!({"@id": format!("_:{}", b.as_str())}),
                Term::Literal(l) => match l.language() {
                    Some(lang) => json!({"@value": l.value(), "@language": lang}),
                    None => json!({"@value": l.value()}),
                },
                #[allow(unreachable_patterns)]
                _ => continue,
            };
            (predicate.to_string(), value)
        };
        match node.get_mut(&key) {
            Some(Value::Array(values)) => values.push(value),
            _ => {
                node.insert(key, Value::Array(vec![value]));
            }
        }
    }
    Ok(Value::Array(nodes.into_iter().map(Value::Object).collect()))
}

/// An IRI with a namespace people know written with its usual prefix
/// ("http://xmlns.com/foaf/0.1/Person" is "foaf:Person").
pub(crate) fn compact(iri: &str) -> String {
    const PREFIXES: &[(&str, &str)] = &[
        ("http://www.w3.org/ns/dcat#", "dcat:"),
        ("http://purl.org/dc/terms/", "dct:"),
        ("http://xmlns.com/foaf/0.1/", "foaf:"),
        ("http://www.w3.org/2006/vcard/ns#", "vcard:"),
        ("http://schema.org/", "schema:"),
        ("https://schema.org/", "schema:"),
        ("http://www.w3.org/ns/hydra/core#", "hydra:"),
        ("http://www.w3.org/2004/02/skos/core#", "skos:"),
        ("http://www.w3.org/2000/01/rdf-schema#", "rdfs:"),
        ("http://www.w3.org/1999/02/22-rdf-syntax-ns#", "rdf:"),
    ];
    PREFIXES
        .iter()
        .find_map(|(ns, prefix)| iri.strip_prefix(ns).map(|local| format!("{prefix}{local}")))
        .unwrap_or_else(|| iri.to_string())
}

const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
