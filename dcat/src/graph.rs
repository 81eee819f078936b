//! A small RDF graph, written out as JSON-LD or Turtle. Only what the
//! catalogue needs: named or blank nodes with types and properties whose
//! objects are IRIs, other nodes, or literals (typed or in a language).

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

/// The prefixes both serialisations declare; predicates and types are written
/// compact ("dct:title") in the code.
pub const PREFIXES: [(&str, &str); 12] = [
    ("dcat", "http://www.w3.org/ns/dcat#"),
    ("dct", "http://purl.org/dc/terms/"),
    ("foaf", "http://xmlns.com/foaf/0.1/"),
    ("vcard", "http://www.w3.org/2006/vcard/ns#"),
    ("skos", "http://www.w3.org/2004/02/skos/core#"),
    ("spdx", "http://spdx.org/rdf/terms#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
    ("hydra", "http://www.w3.org/ns/hydra/core#"),
    ("locn", "http://www.w3.org/ns/locn#"),
    ("adms", "http://www.w3.org/ns/adms#"),
    ("dcatap", "http://data.europa.eu/r5r/"),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
];

#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// An absolute IRI.
    Iri(String),
    /// Another node of the graph, by its id (an IRI or "_:name").
    Node(String),
    Literal {
        value: String,
        /// Compact datatype, e.g. "xsd:date".
        datatype: Option<&'static str>,
        lang: Option<&'static str>,
    },
}

impl Object {
    pub fn text_fr(value: impl Into<String>) -> Object {
        Object::Literal {
            value: value.into(),
            datatype: None,
            lang: Some("fr"),
        }
    }

    pub fn plain(value: impl Into<String>) -> Object {
        Object::Literal {
            value: value.into(),
            datatype: None,
            lang: None,
        }
    }

    pub fn typed(value: impl Into<String>, datatype: &'static str) -> Object {
        Object::Literal {
            value: value.into(),
            datatype: Some(datatype),
            lang: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// An absolute IRI, or a blank node "_:name".
    pub id: String,
    pub types: Vec<&'static str>,
    pub props: Vec<(&'static str, Object)>,
}

impl Node {
    pub fn new(id: impl Into<String>, ty: &'static str) -> Node {
        Node {
            id: id.into(),
            types: vec![ty],
            props: vec![],
        }
    }

    pub fn add(&mut self, predicate: &'static str, object: Object) -> &mut Node {
        self.props.push((predicate, object));
        self
    }
}

#[derive(Debug, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    blanks: usize,
    /// The ids of the nodes added by `push` and `typed_iri`: whether an IRI
    /// is described already is one lookup, not a walk through every node
    /// (a catalogue page would cost the square of its size).
    described: std::collections::HashSet<String>,
}

impl Graph {
    /// A fresh blank node id.
    pub fn blank(&mut self) -> String {
        self.blanks += 1;
        format!("_:b{}", self.blanks)
    }

    /// Whether a node of this IRI is in the graph already.
    pub fn is_described(&self, iri: &str) -> bool {
        self.described.contains(iri)
    }

    pub fn push(&mut self, node: Node) {
        self.described.insert(node.id.clone());
        self.nodes.push(node);
    }

    /// Adds a node for an IRI that only needs a type (a licence, a
    /// frequency...), once; DCAT-AP's range shapes check the class of
    /// what a property points to.
    pub fn typed_iri(&mut self, iri: &str, ty: &'static str, label: Option<&str>) -> Object {
        if self.described.insert(iri.to_string()) {
            let mut node = Node::new(iri, ty);
            if let Some(l) = label {
                node.add("skos:prefLabel", Object::text_fr(l));
            }
            self.nodes.push(node);
        }
        Object::Node(iri.to_string())
    }

    pub fn to_jsonld(&self) -> Value {
        let context: Map<String, Value> = PREFIXES
            .iter()
            .map(|(p, iri)| (p.to_string(), Value::from(*iri)))
            .collect();
        let nodes: Vec<Value> = self
            .nodes
            .iter()
            .map(|n| {
                let mut obj = Map::new();
                obj.insert("@id".into(), n.id.clone().into());
                let types: Vec<Value> = n.types.iter().map(|t| Value::from(*t)).collect();
                obj.insert(
                    "@type".into(),
                    if types.len() == 1 {
                        types[0].clone()
                    } else {
                        Value::Array(types)
                    },
                );
                for (pred, object) in &n.props {
                    let v = match object {
                        Object::Iri(i) | Object::Node(i) => json!({ "@id": i }),
                        Object::Literal {
                            value,
                            datatype,
                            lang,
                        } => {
                            let mut l = Map::new();
                            l.insert("@value".into(), value.clone().into());
                            if let Some(d) = datatype {
                                l.insert("@type".into(), (*d).into());
                            }
                            if let Some(g) = lang {
                                l.insert("@language".into(), (*g).into());
                            }
                            Value::Object(l)
                        }
                    };
                    match obj.get_mut(*pred) {
                        Some(Value::Array(a)) => a.push(v),
                        Some(prev) => *prev = Value::Array(vec![prev.clone(), v]),
                        None => {
                            obj.insert(pred.to_string(), v);
                        }
                    }
                }
                Value::Object(obj)
            })
            .collect();
        json!({ "@context": context, "@graph": nodes })
    }

    pub fn to_turtle(&self) -> String {
        let mut out = String::new();
        for (p, iri) in PREFIXES {
            let _ = writeln!(out, "@prefix {p}: <{iri}> .");
        }
        for n in &self.nodes {
            let _ = write!(out, "\n{} a {}", subject(&n.id), n.types.join(", "));
            for (pred, object) in &n.props {
                let o = match object {
                    Object::Iri(i) | Object::Node(i) => subject(i),
                    Object::Literal {
                        value,
                        datatype,
                        lang,
                    } => {
                        let mut s = format!("\"{}\"", escape_literal(value));
                        if let Some(d) = datatype {
                            s.push_str("^^");
                            s.push_str(d);
                        } else if let Some(l) = lang {
                            s.push('@');
                            s.push_str(l);
                        }
                        s
                    }
                };
                let _ = write!(out, " ;\n    {pred} {o}");
            }
            out.push_str(" .\n");
        }
        out
    }
}

fn subject(id: &str) -> String {
    if id.starts_with("_:") {
        id.to_string()
    } else {
        format!("<{}>", escape_iri(id))
    }
}

/// Characters Turtle does not allow inside <...>, percent-encoded.
pub fn escape_iri(iri: &str) -> String {
    let mut out = String::with_capacity(iri.len());
    for c in iri.chars() {
        match c {
            '<' | '>' | '"' | '{' | '}' | '|' | '^' | '`' | '\\' | ' ' => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "%{b:02X}");
                }
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn escape_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}
