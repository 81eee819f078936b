//! Queries: what a search's words and filters become, restricted to what
//! the caller may see. Shared by searches and by the warmer (`cache.rs`),
//! which rebuilds the queries people asked recently.

use maillage_record::territory::Place;
use maillage_record::vocab::{ProjectStatus, RiskCategory};
use tantivy::Index;
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query, QueryParser, TermQuery,
};
use tantivy::schema::{IndexRecordOption, Term};

use super::scoring::Readers;
use super::{Fields, Filters, SearchError, TITLE_BOOST, document};
use crate::viewer::Viewer;

/// The longest search text, in characters, and its most words: a search is
/// what a person types, and each word is one more posting list to walk.
pub const MAX_TEXT_CHARS: usize = 500;
pub const MAX_WORDS: usize = 32;
/// The longest filter value, in characters (a theme, a place, a SIREN...).
pub const MAX_FILTER_CHARS: usize = 200;

/// The index's fields and the parsers of typed words.
pub struct Queries {
    pub fields: Fields,
    /// Matches words in the whole text.
    parser: QueryParser,
    /// Ranks: words in the title.
    title_parser: QueryParser,
}

impl Queries {
    pub fn new(index: &Index, fields: Fields) -> Queries {
        // Every word must be in the text (which holds the title too); each
        // one also found in the title adds to the score, three times as
        // much as in the description.
        let mut parser = QueryParser::for_index(index, vec![fields.body]);
        parser.set_conjunction_by_default();
        let mut title_parser = QueryParser::for_index(index, vec![fields.title]);
        title_parser.set_field_boost(fields.title, TITLE_BOOST);
        Queries {
            fields,
            parser,
            title_parser,
        }
    }

    /// `query` (the matches), scored higher where the words are in the
    /// title: the same records, in a better order.
    pub fn ranked(&self, text: &str, query: Box<dyn Query>) -> Box<dyn Query> {
        let text = text.trim();
        if text.is_empty() {
            return query;
        }
        let (title, _) = self.title_parser.parse_query_lenient(text);
        Box::new(BooleanQuery::new(vec![
            (Occur::Must, query),
            (Occur::Should, title),
        ]))
    }

    /// The `reader` terms of the records `viewer` may see (any one of them
    /// will do); `None` for the operator, who sees every record.
    pub fn readers(&self, viewer: &Viewer) -> Option<Readers> {
        let reader = |value: &str| Term::from_field_text(self.fields.reader, value);
        match viewer {
            Viewer::Operator => None,
            Viewer::Anonymous => Some(vec![reader(document::READER_PUBLIC)]),
            Viewer::Peer { key, siren, member } => {
                let mut any = vec![
                    reader(document::READER_PUBLIC),
                    reader(&document::reader_key(key)),
                ];
                if *member {
                    any.push(reader(document::READER_FEDERATION));
                }
                if let Some(s) = siren {
                    any.push(reader(&document::reader_siren(s.as_str())));
                }
                Some(any)
            }
            Viewer::Agent { siren, member } => {
                let mut any = vec![
                    reader(document::READER_PUBLIC),
                    reader(&document::reader_siren(siren.as_str())),
                ];
                if *member {
                    any.push(reader(document::READER_FEDERATION));
                }
                Some(any)
            }
        }
    }

    /// The query for words and filters, restricted to what `viewer` may see.
    pub fn query(
        &self,
        text: &str,
        filters: &Filters,
        viewer: &Viewer,
    ) -> Result<Box<dyn Query>, SearchError> {
        bounded(text, filters)?;
        let f = &self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let text = text.trim();
        if text.is_empty() {
            clauses.push((Occur::Must, Box::new(AllQuery)));
        } else {
            // Lenient: quotes, colons and dashes as people type them are not
            // errors; what does not parse is searched as words.
            let (q, _) = self.parser.parse_query_lenient(text);
            clauses.push((Occur::Must, q));
        }
        let term = |field, value: &str| -> Box<dyn Query> {
            Box::new(ConstScoreQuery::new(
                Box::new(TermQuery::new(
                    Term::from_field_text(field, value),
                    IndexRecordOption::Basic,
                )),
                0.0,
            ))
        };
        let mut must = |q| clauses.push((Occur::Must, q));
        if let Some(kind) = filters.kind {
            if !document::searchable(kind) {
                return Err(SearchError::BadRequest(format!(
                    "records of kind '{kind}' are not searched: `maillage list --kind {kind}` lists them"
                )));
            }
            must(term(f.kind, kind.as_str()));
        }
        if let Some(theme) = &filters.theme {
            must(term(f.theme, &document::theme_value(theme)));
        }
        if let Some(t) = &filters.territory {
            // In the territory (by its author or what it covers), or
            // serving a territory the place is in: a commune finds the
            // projects its EPCI and its département run for it.
            let place = Place::parse(t).map_err(SearchError::BadRequest)?;
            let mut any = vec![(Occur::Should, term(f.place, &place.to_string()))];
            for above in place.with_ancestors().into_iter().filter(|p| *p != place) {
                any.push((Occur::Should, term(f.covers, &above.to_string())));
            }
            must(Box::new(BooleanQuery::new(any)));
        }
        if let Some(org) = &filters.organisation {
            let siren: String = org.chars().filter(|c| !c.is_whitespace()).collect();
            let siren = siren.get(..9).unwrap_or(&siren).to_string();
            if maillage_record::Siren::parse(&siren).is_err() {
                return Err(SearchError::BadRequest(format!(
                    "'{org}' is not a SIREN: give the organisation's 9 digits"
                )));
            }
            must(term(f.org, &siren));
        }
        if let Some(s) = &filters.status {
            let s = ProjectStatus::parse(s).map_err(|e| SearchError::BadRequest(e.to_string()))?;
            must(term(f.status, s.as_str()));
        }
        if let Some(r) = &filters.risk {
            let r = RiskCategory::parse(r).map_err(|e| SearchError::BadRequest(e.to_string()))?;
            must(term(f.risk, r.as_str()));
        }
        if let Some(l) = &filters.licence {
            must(term(f.licence, &document::licence_value(l)));
        }
        if let Some(readers) = self.readers(viewer) {
            let any = readers
                .into_iter()
                .map(|t| {
                    let q: Box<dyn Query> = Box::new(ConstScoreQuery::new(
                        Box::new(TermQuery::new(t, IndexRecordOption::Basic)),
                        0.0,
                    ));
                    (Occur::Should, q)
                })
                .collect();
            must(Box::new(BooleanQuery::new(any)));
        }
        Ok(Box::new(BooleanQuery::new(clauses)))
    }
}

/// Refuses a text or a filter longer than a person would type, before any
/// of it is parsed.
fn bounded(text: &str, filters: &Filters) -> Result<(), SearchError> {
    // Counted only when the bytes leave a doubt (a character is 1 to 4).
    let too_long =
        |s: &str, max: usize| s.len() > max && (s.len() > 4 * max || s.chars().count() > max);
    if too_long(text, MAX_TEXT_CHARS) {
        return Err(SearchError::BadRequest(format!(
            "the search text is {} characters long; at most {MAX_TEXT_CHARS}: search with fewer words, or use the filters",
            text.chars().count()
        )));
    }
    let words = text.split_whitespace().count();
    if words > MAX_WORDS {
        return Err(SearchError::BadRequest(format!(
            "the search text has {words} words; at most {MAX_WORDS}"
        )));
    }
    let values = [
        ("theme", &filters.theme),
        ("territory", &filters.territory),
        ("organisation", &filters.organisation),
        ("status", &filters.status),
        ("risk", &filters.risk),
        ("licence", &filters.licence),
    ];
    for (name, value) in values {
        if let Some(v) = value
            && too_long(v, MAX_FILTER_CHARS)
        {
            return Err(SearchError::BadRequest(format!(
                "the {name} filter is {} characters long; at most {MAX_FILTER_CHARS}",
                v.chars().count()
            )));
        }
    }
    Ok(())
}
