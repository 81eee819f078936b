//! What of a record is indexed, and how. Does no IO: the indexer hands in
//! what it looked up (the organisation a record speaks for).

use std::collections::BTreeSet;

use maillage_record::aggregate;
use maillage_record::model::LicenceRef;
use maillage_record::territory::{self, Place};
use maillage_record::vocab::{Licence, ProjectTheme, SpatialGranularity, eu_data_theme, normalize};
use maillage_record::{Body, Kind, PublicKey, Record, RecordId, Visibility};
use rustc_hash::FxHashMap;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, StopWordFilter,
    TextAnalyzer, Token, TokenFilter, TokenStream, Tokenizer,
};
use tantivy::{Index, TantivyDocument};

use super::Facet;

/// The analyzer of titles and descriptions: French words, compared without
/// case or accents, stemmed ("énergies" finds "energie").
const FRENCH: &str = "fr";

pub const READER_PUBLIC: &str = "public";
pub const READER_FEDERATION: &str = "federation";

pub fn reader_key(key: &PublicKey) -> String {
    format!("key:{}", key.to_hex())
}

pub fn reader_siren(siren: &str) -> String {
    format!("siren:{siren}")
}

/// The fields of the index.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// author ‖ "/" ‖ record_id: one document per record, replaced on update.
    pub key: Field,
    /// For project details: the key of their project (statistics join them).
    pub project_key: Field,
    pub id: Field,
    pub record_id: Field,
    pub version: Field,
    pub author: Field,
    pub kind: Field,
    /// Title words, for ranking only.
    pub title: Field,
    /// Every word, the title's included: what a search matches. One field
    /// to match keeps a query of several words an intersection of one
    /// posting list per word, instead of one union (title or body) per word.
    pub body: Field,
    pub theme: Field,
    pub org: Field,
    pub org_name: Field,
    /// Every place the record is about and every place above it.
    pub place: Field,
    /// The places it serves (its coverage; by default, its organisation's
    /// territory), not those above: a search in a commune finds a record
    /// that covers the commune's département.
    pub covers: Field,
    /// Its départements, for the territory facet.
    pub dep: Field,
    pub status: Field,
    pub risk: Field,
    pub licence: Field,
    pub budget: Field,
    /// The quarter it dates from (`Facet::Quarter`).
    pub quarter: Field,
    pub kwh: Field,
    pub co2: Field,
    /// Who may see it: "public", "federation", or for restricted records
    /// "siren:…" per audience member and "key:…" for the author.
    pub reader: Field,
    pub origin: Field,
    pub received: Field,
    /// 1 for a public record, else 0: whether showing its hit to a reader
    /// beyond the public is a read the access log keeps.
    pub public: Field,
}

impl Fields {
    pub fn schema() -> (Fields, Schema) {
        let mut b = Schema::builder();
        let words = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(FRENCH)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        // Exact values, counted by facets (fast) and matched by filters.
        // Those counted are named by their `Facet`: the tally then reads
        // the very columns made here.
        let keyword = STRING | FAST;
        let fields = Fields {
            key: b.add_text_field("key", STRING | FAST),
            project_key: b.add_text_field("project_key", STRING | FAST),
            id: b.add_text_field("id", STORED),
            record_id: b.add_text_field("record_id", STORED),
            version: b.add_u64_field("version", STORED),
            author: b.add_text_field("author", STORED),
            kind: b.add_text_field(Facet::Kind.column(), keyword.clone() | STORED),
            title: b.add_text_field("title", words.clone().set_stored()),
            body: b.add_text_field("body", words),
            theme: b.add_text_field(Facet::Theme.column(), keyword.clone()),
            org: b.add_text_field(Facet::Organisation.column(), keyword.clone() | STORED),
            org_name: b.add_text_field("org_name", STORED),
            place: b.add_text_field("place", STRING),
            covers: b.add_text_field("covers", STRING),
            dep: b.add_text_field(Facet::Territory.column(), keyword.clone()),
            status: b.add_text_field(Facet::Status.column(), keyword.clone()),
            risk: b.add_text_field(Facet::Risk.column(), keyword.clone()),
            licence: b.add_text_field("licence", keyword.clone()),
            budget: b.add_text_field(Facet::Budget.column(), keyword.clone()),
            quarter: b.add_text_field(Facet::Quarter.column(), keyword),
            kwh: b.add_f64_field("kwh", FAST),
            co2: b.add_f64_field("co2", FAST),
            reader: b.add_text_field("reader", STRING),
            origin: b.add_text_field("origin", STORED),
            received: b.add_i64_field("received", STORED | INDEXED | FAST),
            public: b.add_u64_field("public", STORED),
        };
        (fields, b.build())
    }
}

pub fn register_tokenizers(index: &Index) {
    index
        .tokenizers()
        .register(FRENCH, TextAnalyzer::from(French::default()));
}

/// What one word goes through. Folding before stemming: "energie" and
/// "énergie" then stem alike, whichever of the two the user typed.
fn word_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(StopWordFilter::new(Language::French).expect("French stop words ship with tantivy"))
        .filter(StopWordFilter::remove(
            // Elisions: "l'eau", "d'ouvrage", "qu'il".
            ["l", "d", "j", "m", "n", "s", "t", "c", "qu"].map(String::from),
        ))
        .filter(AsciiFoldingFilter)
        .filter(FrenchStem)
        .build()
}

/// The value of a keyword field that a document lacks, where every document
/// gets one (facets do not count it).
pub const NONE: &str = "";

/// Distinct words cached per analyzer before the cache is emptied.
const WORD_CACHE: usize = 100_000;

/// The French analyzer: text split as `SimpleTokenizer` splits it (runs of
/// letters and digits, positions counted the same), each word put through
/// `word_analyzer` once and its result (or its removal) cached as written.
/// A catalogue's vocabulary is small, so nearly every word is a cache hit:
/// one hash lookup instead of five filters and a stemmer, which were most
/// of the indexing cost. The output is the chain's exactly (see the test).
/// The analyzer registered with the index stays empty: tantivy clones it
/// for each segment writer and query, and each clone fills its own cache.
#[derive(Clone)]
struct French {
    words: FxHashMap<Box<str>, Option<Box<str>>>,
    analyzer: TextAnalyzer,
    token: Token,
}

impl Default for French {
    fn default() -> French {
        French {
            words: FxHashMap::default(),
            analyzer: word_analyzer(),
            token: Token::default(),
        }
    }
}

impl Tokenizer for French {
    type TokenStream<'a> = FrenchStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> FrenchStream<'a> {
        if self.words.len() > WORD_CACHE {
            self.words.clear();
        }
        self.token.reset();
        FrenchStream {
            text,
            chars: text.char_indices(),
            words: &mut self.words,
            analyzer: &mut self.analyzer,
            token: &mut self.token,
        }
    }
}

struct FrenchStream<'a> {
    text: &'a str,
    chars: std::str::CharIndices<'a>,
    words: &'a mut FxHashMap<Box<str>, Option<Box<str>>>,
    analyzer: &'a mut TextAnalyzer,
    token: &'a mut Token,
}

impl TokenStream for FrenchStream<'_> {
    fn advance(&mut self) -> bool {
        loop {
            let Some((from, _)) = self.chars.find(|(_, c)| c.is_alphanumeric()) else {
                return false;
            };
            let to = self
                .chars
                .find(|(_, c)| !c.is_alphanumeric())
                .map_or(self.text.len(), |(o, _)| o);
            // Counted for every word, kept or not, as the chain counts them.
            self.token.position = self.token.position.wrapping_add(1);
            let word = &self.text[from..to];
            if !self.words.contains_key(word) {
                let mut stream = self.analyzer.token_stream(word);
                let analyzed = stream
                    .advance()
                    .then(|| stream.token().text.as_str().into());
                self.words.insert(word.into(), analyzed);
            }
            if let Some(Some(indexed)) = self.words.get(word) {
                self.token.offset_from = from;
                self.token.offset_to = to;
                self.token.text.clear();
                self.token.text.push_str(indexed);
                return true;
            }
        }
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

/// Snowball's French stemmer, then a final "s" or "x" it leaves on short
/// words dropped ("vélos" → "velo"; "bus" kept). Applied to the index and the
/// query alike, the second step only has to be consistent.
#[derive(Clone)]
struct FrenchStem;

impl TokenFilter for FrenchStem {
    type Tokenizer<T: Tokenizer> = FrenchStemFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> FrenchStemFilter<T> {
        FrenchStemFilter(tokenizer)
    }
}

#[derive(Clone)]
struct FrenchStemFilter<T>(T);

impl<T: Tokenizer> Tokenizer for FrenchStemFilter<T> {
    type TokenStream<'a> = FrenchStemStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        FrenchStemStream(self.0.token_stream(text))
    }
}

struct FrenchStemStream<S>(S);

fn stem_french(word: &str) -> String {
    let mut stem = frostem::Stemmer::new(frostem::Algorithm::French)
        .stem(word)
        .into_owned();
    if stem.len() > 3 && (stem.ends_with('s') || stem.ends_with('x')) {
        stem.pop();
    }
    stem
}

impl<S: TokenStream> TokenStream for FrenchStemStream<S> {
    fn advance(&mut self) -> bool {
        if !self.0.advance() {
            return false;
        }
        let token = self.0.token_mut();
        token.text = stem_french(&token.text);
        true
    }

    fn token(&self) -> &Token {
        self.0.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.0.token_mut()
    }
}

/// A theme as indexed, memoized (parsing a vocabulary value compares it
/// with every name of every value).
fn theme_cached(theme: &str) -> String {
    thread_local! {
        static THEMES: std::cell::RefCell<std::collections::HashMap<String, String>> =
            Default::default();
    }
    THEMES.with(|m| {
        let mut m = m.borrow_mut();
        if let Some(v) = m.get(theme) {
            return v.clone();
        }
        if m.len() > 10_000 {
            m.clear();
        }
        let v = theme_value(theme);
        m.insert(theme.to_string(), v.clone());
        v
    })
}

/// Whether records of this kind are searched.
pub fn searchable(kind: Kind) -> bool {
    !matches!(
        kind,
        Kind::Tombstone | Kind::Membership | Kind::Succession | Kind::Revocation
    )
}

/// A theme as indexed and filtered: a project theme by its canonical value
/// (whichever of its names is given), an EU data theme by its code, any
/// other theme normalized.
pub fn theme_value(theme: &str) -> String {
    if let Ok(t) = ProjectTheme::parse(theme) {
        return t.as_str().to_string();
    }
    match eu_data_theme(theme) {
        Some((code, _)) => code.to_string(),
        None => normalize(theme),
    }
}

/// A licence as indexed and filtered: a known licence by its id, a URI as is.
pub fn licence_value(licence: &str) -> String {
    Licence::parse(licence)
        .map(|l| l.as_str().to_string())
        .unwrap_or_else(|_| licence.trim().to_string())
}

/// A record's licence as indexed (what `licence_value` makes of its name).
fn licence_id(l: &LicenceRef) -> String {
    match l {
        LicenceRef::Known(k) => k.as_str().to_string(),
        LicenceRef::Uri(u) => licence_value(u),
    }
}

/// The organisation a record speaks for: SIREN and name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Org {
    pub siren: Option<String>,
    pub name: Option<String>,
}

/// Everything the index needs of one record besides the record itself.
pub struct Context<'a> {
    pub id: RecordId,
    pub author: PublicKey,
    /// The author's organisation (from memberships or its Organisation record).
    pub author_org: &'a Org,
    pub relayed_by: Option<&'a str>,
    pub received_at_ms: i64,
}

pub fn key(author: &PublicKey, record_id: &str) -> String {
    format!("{}/{record_id}", author.to_hex())
}

/// The index document of a record.
pub fn build(f: &Fields, rec: &Record, cx: &Context<'_>) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    let kind = rec.kind();
    doc.add_text(f.key, key(&cx.author, &rec.record_id));
    doc.add_text(f.id, cx.id.to_hex());
    doc.add_text(f.record_id, &rec.record_id);
    doc.add_u64(f.version, rec.version);
    doc.add_text(f.author, cx.author.to_hex());
    doc.add_text(f.kind, kind.as_str());
    doc.add_i64(f.received, cx.received_at_ms);
    if let Some(peer) = cx.relayed_by {
        doc.add_text(f.origin, peer);
    }
    doc.add_u64(f.public, u64::from(rec.visibility == Visibility::Public));
    match &rec.visibility {
        Visibility::Public => doc.add_text(f.reader, READER_PUBLIC),
        Visibility::Federation => doc.add_text(f.reader, READER_FEDERATION),
        Visibility::Restricted { audience } => {
            doc.add_text(f.reader, reader_key(&cx.author));
            for s in audience {
                doc.add_text(f.reader, reader_siren(s.as_str()));
            }
        }
    }

    let mut text = Text::default();
    let mut places: BTreeSet<Place> = BTreeSet::new();
    // What it says it serves (a dataset's spatial coverage, a project's
    // coverage); empty: its organisation's territory.
    let mut covers: BTreeSet<Place> = BTreeSet::new();
    let mut themes: BTreeSet<String> = BTreeSet::new();
    let mut org = org_of(rec, cx.author_org);
    match &rec.body {
        Body::Organisation(o) => {
            text.title(&o.name);
            text.add(o.website.as_deref());
            for code in [&o.insee, &o.departement].into_iter().flatten() {
                places.extend(Place::parse(code).ok());
            }
            if let Some(r) = &o.region {
                places.insert(Place::Region(r.clone()));
            }
        }
        Body::Dataset(d) => {
            text.title(&d.title);
            text.add(Some(&d.description));
            text.all(&d.keywords);
            text.all(&d.themes);
            text.add(d.publisher.as_ref().map(|p| p.name.as_str()));
            text.add(d.identifier.as_deref());
            for dist in &d.distributions {
                text.add(dist.title.as_deref());
                text.add(dist.format.as_deref());
            }
            themes.extend(d.themes.iter().map(|t| theme_cached(t)));
            if let Some(l) = &d.licence {
                doc.add_text(f.licence, licence_id(l));
            }
            if let Some(s) = &d.spatial {
                text.add(s.label.as_deref());
                for code in &s.insee_codes {
                    let place = match s.granularity {
                        Some(SpatialGranularity::Region) => Ok(Place::Region(code.clone())),
                        Some(SpatialGranularity::Departement) => {
                            Ok(Place::Departement(code.to_uppercase()))
                        }
                        _ => Place::parse(code),
                    };
                    covers.extend(place.ok());
                }
            }
        }
        Body::Project(p) => {
            for c in &p.coverage {
                covers.extend(territory::coverage(c).unwrap_or_default());
            }
            text.title(&p.name);
            text.add(Some(&p.description));
            text.add(p.organisation_name.as_deref());
            text.all(&p.sub_themes);
            text.all(&p.partners);
            text.add(p.theme.map(|t| t.label()));
            for a in &p.audiences {
                text.add(Some(a.label()));
            }
            text.add(p.abandon_reason.as_deref());
            themes.extend(p.theme.map(|t| t.as_str().to_string()));
            doc.add_text(f.status, p.status.as_str());
            if let Some(r) = p.risk_category {
                doc.add_text(f.risk, r.as_str());
            }
        }
        Body::ProjectDetails(d) => {
            // Built from the details alone: a document never depends on
            // another record's version, so a rebuild gives the same index.
            text.title(&format!("Détails du projet {}", d.project));
            doc.add_text(f.project_key, key(&cx.author, &d.project));
            text.add(d.algorithm_name.as_deref());
            text.add(d.algorithm_description.as_deref());
            text.add(d.algorithm_operations.as_deref());
            text.add(d.funding.as_deref());
            text.add(d.hosting_location.as_deref());
            text.add(d.environmental_impact.as_deref());
            if let Some(b) = d.budget {
                doc.add_text(f.budget, b.as_str());
            }
            if let Some(k) = d.energy_kwh_per_year.filter(|v| v.is_finite()) {
                doc.add_f64(f.kwh, k);
            }
            if let Some(c) = d.emissions_kgco2e_per_year.filter(|v| v.is_finite()) {
                doc.add_f64(f.co2, c);
            }
        }
        Body::Resource(r) => {
            text.title(&r.title);
            text.add(r.description.as_deref());
            text.add(Some(r.resource_kind.label()));
            // Long contents (a whole charter) are searchable by their start.
            text.add(r.content.as_deref().map(|c| truncate(c, 4096)));
            if let Some(l) = &r.licence {
                doc.add_text(f.licence, licence_id(l));
            }
        }
        Body::Collection(c) => {
            text.title(&c.title);
            text.add(c.description.as_deref());
        }
        Body::Aggregate(a) => {
            let place = Place::parse(&a.territory).ok();
            let name = place
                .as_ref()
                .map_or_else(|| "la France".to_string(), Place::label);
            match &a.period {
                Some(p) => text.title(&format!("Statistiques signées : {name} ({p})")),
                None => text.title(&format!("Statistiques signées : {name}")),
            }
            places.extend(place);
        }
        Body::Reuse(r) => {
            // Who reuses a project is found by the project's key.
            let project_author = r
                .project
                .author
                .as_deref()
                .and_then(|a| PublicKey::parse_hex(a).ok())
                .unwrap_or(cx.author);
            doc.add_text(f.project_key, key(&project_author, &r.project.record_id));
            text.title(&format!("Réutilisation du projet {}", r.project.record_id));
            text.add(r.how.as_deref());
        }
        Body::Membership(_) | Body::Tombstone(_) | Body::Succession(_) | Body::Revocation(_) => {}
    }
    if let Some(siren) = &org.siren {
        let own = Place::of_siren(siren);
        // An aggregate is placed where it counts, not where its author is
        // (a national roll-up is not its author's territory's).
        if !matches!(rec.body, Body::Aggregate(_)) {
            places.extend(own.iter().cloned());
        }
        if covers.is_empty() && matches!(rec.body, Body::Dataset(_) | Body::Project(_)) {
            covers.extend(own.iter().cloned());
        }
        if org.name.is_none() {
            org.name = territory::by_siren(siren).map(|c| c.name.clone());
        }
    }
    // A counted field a record has no value for gets an empty one (not
    // counted): where every document has exactly one value, facets read the
    // column without an index of which documents have one.
    doc.add_text(f.org, org.siren.as_deref().unwrap_or(NONE));
    if let Some(name) = &org.name {
        doc.add_text(f.org_name, name);
        text.add(Some(name));
    }
    for p in &covers {
        doc.add_text(f.covers, p.to_string());
    }
    places.extend(covers);
    let places: BTreeSet<Place> = places.iter().flat_map(Place::with_ancestors).collect();
    let mut deps = 0;
    for p in &places {
        doc.add_text(f.place, p.to_string());
        if let Place::Departement(d) = p {
            doc.add_text(f.dep, d);
            deps += 1;
        }
    }
    if deps == 0 {
        doc.add_text(f.dep, NONE);
    }
    let mut themed = false;
    for t in themes.iter().filter(|t| !t.is_empty()) {
        doc.add_text(f.theme, t);
        themed = true;
    }
    if !themed {
        doc.add_text(f.theme, NONE);
    }
    if !matches!(rec.body, Body::Project(_)) {
        doc.add_text(f.status, NONE);
    }
    // Catalogue entries date from when they began (a project's start, a
    // dataset's issue), else from when they were signed.
    let began = match &rec.body {
        Body::Project(p) => p.start_date.as_deref(),
        Body::Dataset(d) => d.issued.as_deref(),
        _ => None,
    };
    let quarter = match &rec.body {
        Body::Project(_) | Body::Dataset(_) => Some(
            began
                .and_then(aggregate::quarter_of_date)
                .unwrap_or_else(|| aggregate::quarter_of_ms(rec.issued_at_ms)),
        ),
        _ => None,
    };
    doc.add_text(f.quarter, quarter.as_deref().unwrap_or(NONE));
    doc.add_text(f.title, &text.title);
    doc.add_text(f.body, format!("{}\n{}", text.title, text.body));
    doc
}

/// The organisation a record speaks for: the one it was published on behalf
/// of, else the one it names (a dataset's publisher, a project's SIRET, an
/// organisation itself), else its author's (`author_org`).
pub fn org_of(rec: &Record, author_org: &Org) -> Org {
    let siren9 = |s: &str| {
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        (digits.len() >= 9).then(|| digits[..9].to_string())
    };
    if let Some(a) = rec
        .provenance
        .as_ref()
        .and_then(|p| p.on_behalf_of.as_ref())
        && let Some(s) = a.siren.as_deref().and_then(siren9)
    {
        return Org {
            siren: Some(s),
            name: Some(a.name.clone()),
        };
    }
    let named = match &rec.body {
        Body::Organisation(o) => Some(Org {
            siren: Some(o.siren.to_string()),
            name: Some(o.name.clone()),
        }),
        Body::Dataset(d) => d.publisher.as_ref().and_then(|p| {
            Some(Org {
                siren: Some(siren9(p.siren.as_deref()?)?),
                name: Some(p.name.clone()),
            })
        }),
        Body::Project(p) => p.siret.as_deref().and_then(siren9).map(|s| Org {
            siren: Some(s),
            name: p.organisation_name.clone(),
        }),
        _ => None,
    };
    named.unwrap_or_else(|| author_org.clone())
}

/// A title and a body, gathered from a record's fields.
#[derive(Default)]
struct Text {
    title: String,
    body: String,
}

impl Text {
    fn title(&mut self, t: &str) {
        self.title = t.to_string();
    }

    fn add(&mut self, s: Option<&str>) {
        if let Some(s) = s.filter(|s| !s.trim().is_empty()) {
            if !self.body.is_empty() {
                self.body.push('\n');
            }
            self.body.push_str(s);
        }
    }

    fn all(&mut self, items: &[String]) {
        for i in items {
            self.add(Some(i));
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(mut stream: impl TokenStream) -> Vec<Token> {
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().clone());
        }
        out
    }

    #[test]
    fn the_cached_analyzer_gives_the_chain_s_tokens() {
        let texts = [
            "Les pistes cyclables de l'agglomération — VÉLOS, vélo et Vélo'v !",
            "Qu'il s'agisse d'énergie, d'eau ou d'ŒUVRES: 3 études, 2026-2030.",
            "un_mot_vraiment_tres_long_qui_depasse_quarante_octets_sans_espace court",
            "   ",
            "",
            "Détails du projet 243100518/velo 東京 ÉNERGIE énergies Energie",
        ];
        let mut french = French::default();
        for round in 0..2 {
            for text in texts {
                let expected = tokens(word_analyzer().token_stream(text));
                assert_eq!(
                    tokens(french.token_stream(text)),
                    expected,
                    "round {round}, text {text:?}"
                );
            }
        }
        // Stop words and elisions dropped, the position of what follows kept.
        let kept: Vec<_> = tokens(French::default().token_stream("l'eau de la ville"))
            .into_iter()
            .map(|t| (t.text, t.position))
            .collect();
        assert_eq!(kept, [("eau".to_string(), 1), ("vill".to_string(), 4)]);
    }
}
