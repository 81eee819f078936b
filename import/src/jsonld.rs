//! Just enough JSON-LD to read DCAT: the nodes of a document (top-level, in
//! `@graph`, or embedded), references resolved by `@id`, properties matched
//! by their local name whatever the prefix or IRI ("dct:title", "title",
//! "http://purl.org/dc/terms/title"), literals as strings, `{"@value"}`
//! objects or language maps, French preferred among language-tagged values.
//! Not a JSON-LD processor: no context is expanded.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::common;

pub(crate) type Node = Map<String, Value>;

/// The nodes of a JSON-LD document, and those that have an `@id` by it.
pub(crate) struct Graph<'a> {
    pub nodes: Vec<&'a Node>,
    pub by_id: HashMap<&'a str, &'a Node>,
}

impl<'a> Graph<'a> {
    pub fn new(doc: &'a Value) -> Graph<'a> {
        let mut g = Graph {
            nodes: Vec::new(),
            by_id: HashMap::new(),
        };
        g.collect(doc);
        g
    }

    /// Gathers every node: top-level, in `@graph`, or embedded in another.
    fn collect(&mut self, v: &'a Value) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| self.collect(i)),
            Value::Object(obj) if obj.contains_key("@value") => {}
            Value::Object(obj) => {
                let is_node = obj
                    .keys()
                    .any(|k| k != "@id" && k != "@context" && k != "@graph");
                if is_node {
                    self.nodes.push(obj);
                    if let Some(Value::String(id)) = obj.get("@id") {
                        // A node may appear whole once and as bare references
                        // elsewhere: keep the fullest description.
                        let fuller = self
                            .by_id
                            .get(id.as_str())
                            .is_none_or(|n| n.len() < obj.len());
                        if fuller {
                            self.by_id.insert(id, obj);
                        }
                    }
                }
                for (k, child) in obj {
                    if k != "@context" {
                        self.collect(child);
                    }
                }
            }
            _ => {}
        }
    }

    /// The node a value stands for: an embedded node, a `{"@id"}` reference,
    /// or an IRI string naming a node of the document.
    pub fn resolve(&self, v: &'a Value) -> Option<&'a Node> {
        match v {
            Value::Object(obj) if obj.contains_key("@value") => None,
            Value::Object(obj) => match obj.get("@id") {
                Some(Value::String(id)) => self.by_id.get(id.as_str()).copied().or(Some(obj)),
                _ => Some(obj),
            },
            Value::String(s) => self.by_id.get(s.as_str()).copied(),
            _ => None,
        }
    }
}

/// The local name of a property or type: after the last '#', '/' or ':'.
pub(crate) fn local(name: &str) -> &str {
    name.rsplit(['#', '/', ':']).next().unwrap_or(name)
}

/// Every value of the node's properties whose local name is one of `names`,
/// arrays and `@list`s flattened.
pub(crate) fn values<'a>(node: &'a Node, names: &[&str]) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for (k, v) in node {
        if !k.starts_with('@') && names.iter().any(|n| local(k).eq_ignore_ascii_case(n)) {
            flatten(v, &mut out);
        }
    }
    out
}

pub(crate) fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        Value::Object(obj) if obj.contains_key("@list") => {
            if let Some(list) = obj.get("@list") {
                flatten(list, out);
            }
        }
        other => out.push(other),
    }
}

pub(crate) fn has_type(node: &Node, wanted: &str) -> bool {
    let mut types = Vec::new();
    if let Some(t) = node.get("@type") {
        flatten(t, &mut types);
    }
    types
        .iter()
        .any(|t| t.as_str().is_some_and(|t| local(t) == wanted))
}

/// A literal's text and language: a string, a number, `{"@value"}`; for a
/// language map (`{"fr": "...", "en": "..."}`), each entry.
pub(crate) fn literals(v: &Value) -> Vec<(String, Option<String>)> {
    match v {
        Value::String(s) => vec![(s.clone(), None)],
        Value::Number(n) => vec![(n.to_string(), None)],
        Value::Bool(b) => vec![(b.to_string(), None)],
        Value::Object(obj) => match obj.get("@value") {
            Some(inner) => {
                let lang = obj
                    .get("@language")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                literals(inner)
                    .into_iter()
                    .map(|(t, _)| (t, lang.clone()))
                    .collect()
            }
            None if is_language_map(obj) => obj
                .iter()
                .filter_map(|(lang, t)| t.as_str().map(|t| (t.to_string(), Some(lang.clone()))))
                .collect(),
            None => vec![],
        },
        _ => vec![],
    }
}

fn is_language_map(obj: &Node) -> bool {
    !obj.is_empty()
        && obj.iter().all(|(k, v)| {
            v.is_string()
                && (2..=8).contains(&k.len())
                && k.chars().all(|c| c.is_ascii_alphabetic() || c == '-')
        })
}

/// The text of a property: its French value, else an untagged one, else the
/// first.
pub(crate) fn text(node: &Node, names: &[&str]) -> Option<String> {
    let all: Vec<(String, Option<String>)> = values(node, names)
        .into_iter()
        .flat_map(literals)
        .filter(|(t, _)| !t.trim().is_empty())
        .collect();
    let french = |l: &Option<String>| {
        l.as_deref().is_some_and(|l| {
            l.eq_ignore_ascii_case("fr") || l.to_ascii_lowercase().starts_with("fr-")
        })
    };
    all.iter()
        .find(|(_, l)| french(l))
        .or_else(|| all.iter().find(|(_, l)| l.is_none()))
        .or_else(|| all.first())
        .map(|(t, _)| t.trim().to_string())
}

/// All texts of a multi-valued property (keywords): the French and untagged
/// ones when some are French, else all.
pub(crate) fn texts(node: &Node, names: &[&str]) -> Vec<String> {
    let all: Vec<(String, Option<String>)> =
        values(node, names).into_iter().flat_map(literals).collect();
    let any_french = all.iter().any(|(_, l)| {
        l.as_deref()
            .is_some_and(|l| l.to_ascii_lowercase().starts_with("fr"))
    });
    let mut out: Vec<String> = Vec::new();
    for (t, l) in all {
        let keep = !any_french
            || l.as_deref()
                .is_none_or(|l| l.to_ascii_lowercase().starts_with("fr"));
        let t = common::one_line(&t);
        if keep && !t.is_empty() && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// An IRI or literal value as text: `{"@id"}`'s IRI, else the literal.
pub(crate) fn iri_or_text(v: &Value) -> Option<String> {
    match v {
        Value::Object(obj) if !obj.contains_key("@value") => {
            obj.get("@id").and_then(Value::as_str).map(str::to_string)
        }
        other => literals(other).into_iter().next().map(|(t, _)| t),
    }
    .map(|t| t.trim().to_string())
    .filter(|t| !t.is_empty())
}

/// The first IRI or literal of a property.
pub(crate) fn first_iri(node: &Node, names: &[&str]) -> Option<String> {
    values(node, names).into_iter().find_map(iri_or_text)
}

/// The last segment of an IRI ("…/data-theme/ECON" → "ECON"), or the text.
pub(crate) fn last_segment(text: &str) -> String {
    let t = text.trim().trim_end_matches(['/', '#']);
    if t.starts_with("http://") || t.starts_with("https://") {
        t.rsplit(['/', '#']).next().unwrap_or(t).to_string()
    } else {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names() {
        assert_eq!(local("dct:title"), "title");
        assert_eq!(local("http://purl.org/dc/terms/title"), "title");
        assert_eq!(local("http://www.w3.org/ns/dcat#accessURL"), "accessURL");
        assert_eq!(local("title"), "title");
    }
}
