//! Imports: what collectivities already publish, read into record drafts.
//!
//! Four sources, one module each: the SCDL catalogue CSV (`scdl`), Etalab's
//! catalogue CSV (`etalab`), the bibliothèque des projets IA export
//! (`bibliotheque`) and DCAT-AP JSON-LD as data.gouv.fr and CKAN serve it
//! (`dcat`). Parsing only: the caller reads the file and publishes the drafts.
//!
//! A source row becomes a [`Row`] holding validated drafts, or [`RowError`]s
//! saying which field of which line is wrong and what is accepted; one bad row
//! never stops the others. Only whole-file problems (not UTF-8, a required
//! column missing, JSON that is no DCAT catalogue) are an [`ImportError`].

mod api;
mod bibliotheque;
mod ckan;
mod common;
mod dcat;
mod etalab;
mod jsonld;
mod rdf;
mod scdl;
mod spreadsheet;
mod table;
mod udata;

use std::collections::HashMap;
use std::fmt;

use maillage_record::model::{Agent, Provenance, ValidationError};
use maillage_record::{Body, Record, Visibility};

use crate::common::Problems;

/// Projects in the bibliothèque des projets IA's own CSV layout.
pub use bibliotheque::write as bibliotheque_csv;
pub use common::slug;
pub use dcat::next_page;

/// A source format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    ScdlCatalogue,
    EtalabCatalogue,
    BibliothequeIa,
    /// DCAT-AP in any RDF syntax (JSON-LD, Turtle, RDF/XML); its
    /// `source_format` keeps the name it had when only JSON-LD was read.
    DcatJsonLd,
    /// udata's API (data.gouv.fr): `/api/1/datasets/` pages.
    Udata,
    /// CKAN's action API: package_search or package_show.
    Ckan,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::ScdlCatalogue,
        Format::EtalabCatalogue,
        Format::BibliothequeIa,
        Format::DcatJsonLd,
        Format::Udata,
        Format::Ckan,
    ];

    /// Parses the name given on the command line: "scdl", "etalab",
    /// "bibliotheque-ia", "dcat", or an obvious alias, forgiving case, accents,
    /// spaces and underscores.
    pub fn parse(name: &str) -> Result<Format, ImportError> {
        let wanted = common::slug(name);
        Format::ALL
            .into_iter()
            .find(|f| f.aliases().contains(&wanted.as_str()))
            .ok_or_else(|| ImportError::UnknownFormat {
                name: name.to_string(),
                accepted: Format::ALL.map(Format::cli_name).join(", "),
            })
    }

    /// The value written into `Provenance.source_format`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::ScdlCatalogue => "scdl-catalogue",
            Format::EtalabCatalogue => "etalab-catalogue",
            Format::BibliothequeIa => "bibliotheque-ia",
            Format::DcatJsonLd => "dcat-jsonld",
            Format::Udata => "udata",
            Format::Ckan => "ckan",
        }
    }

    /// What to ask a server for (HTTP `Accept`) when fetching this format.
    pub fn accept(self) -> &'static str {
        match self {
            Format::DcatJsonLd => {
                "application/ld+json, text/turtle;q=0.9, application/rdf+xml;q=0.8, */*;q=0.1"
            }
            Format::Udata | Format::Ckan => "application/json",
            _ => {
                "text/csv, application/vnd.openxmlformats-officedocument.spreadsheetml.sheet;q=0.9, \
                 */*;q=0.5"
            }
        }
    }

    /// The address to fetch first for a source given as `url`: a CKAN
    /// search asks for more than CKAN's 10 rows a page.
    pub fn first_page(self, url: &str) -> String {
        match self {
            Format::Ckan if url.contains("package_search") && api::param(url, "rows").is_none() => {
                api::with_param(url, "rows", &ckan::ROWS.to_string())
            }
            _ => url.to_string(),
        }
    }

    /// The address of the page after `bytes`, read at `url`, for a paged
    /// source: DCAT's Hydra links, udata's `next_page`, CKAN's `start`.
    pub fn next_page(self, url: &str, bytes: &[u8]) -> Option<String> {
        match self {
            Format::DcatJsonLd => dcat::next_page(bytes),
            Format::Udata => udata::next_page(bytes),
            Format::Ckan => ckan::next_page(url, bytes),
            _ => None,
        }
    }

    /// The name on the command line, also the prefix of record ids.
    pub fn cli_name(self) -> &'static str {
        match self {
            Format::ScdlCatalogue => "scdl",
            Format::EtalabCatalogue => "etalab",
            Format::BibliothequeIa => "bibliotheque-ia",
            Format::DcatJsonLd => "dcat",
            Format::Udata => "udata",
            Format::Ckan => "ckan",
        }
    }

    /// Every accepted name, as `common::slug` writes it.
    /// The names it answers to on the command line (slugs).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Format::ScdlCatalogue => &[
                "scdl",
                "scdl-catalogue",
                "catalogue-scdl",
                "opendatafrance",
                "catalogue-simplifie",
            ],
            Format::EtalabCatalogue => &[
                "etalab",
                "etalab-catalogue",
                "catalogue-etalab",
                "schema-catalogue-donnees",
                "catalogue-donnees",
            ],
            Format::BibliothequeIa => &[
                "bibliotheque-ia",
                "bibliotheque",
                "bibliotheque-projets-ia",
                "bibliotheque-des-projets-ia",
                "projets-ia",
                "ia",
            ],
            Format::DcatJsonLd => &[
                "dcat",
                "dcat-jsonld",
                "dcat-ap",
                "jsonld",
                "json-ld",
                "turtle",
                "rdf",
                "rdf-xml",
            ],
            Format::Udata => &["udata", "data-gouv", "data-gouv-fr", "datagouv"],
            Format::Ckan => &["ckan", "package-search", "dkan"],
        }
    }

    /// The source field a row's identifier comes from, named in the error
    /// about two rows sharing one.
    fn identifier_field(self) -> &'static str {
        match self {
            Format::ScdlCatalogue => "ID",
            Format::EtalabCatalogue => "titre",
            Format::BibliothequeIa => "Nom_du_projet",
            Format::DcatJsonLd => "@id",
            Format::Udata | Format::Ckan => "id",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cli_name())
    }
}

/// One source row (or JSON-LD dataset entry) that became records.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based line where the row starts in the file; for JSON-LD, the
    /// 1-based index of the dataset entry.
    pub line: usize,
    /// The row's stable identifier in its source: what a re-import matches on.
    pub source_identifier: String,
    /// The organisation the source attributes the row to.
    pub organisation: Option<Agent>,
    /// Drafts: version 0, issued_at_ms 0, provenance set, validated.
    pub records: Vec<Record>,
    /// What was read otherwise than written (a value outside a vocabulary
    /// read as the nearest, a note where an address was expected): the row
    /// is imported, the text kept in `Provenance::as_written`.
    pub warnings: Vec<RowError>,
}

/// A problem of a row: where, which field, its value, and why. A row with
/// any refusing problem is not imported (`Parsed::errors`); warnings go with
/// the imported row (`Row::warnings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    /// The source's name for the field (a CSV column, a DCAT property), or
    /// empty when the whole row is at fault.
    pub field: String,
    pub value: String,
    /// What is wrong and what is accepted, written to follow the quoted value
    /// ("is not a known project status; accepted: ...").
    pub reason: String,
    /// A warning: alone, it would not have refused the row.
    pub warning: bool,
}

impl RowError {
    pub(crate) fn new(
        line: usize,
        field: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> RowError {
        RowError {
            line,
            field: field.into(),
            value: value.into(),
            reason: reason.into(),
            warning: false,
        }
    }
}

impl RowError {
    /// What is wrong, without the line: "field `X`: 'value' reason".
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if !self.field.is_empty() {
            out.push_str(&format!("field `{}`: ", self.field));
        }
        out.push_str(&format!("'{}' {}", self.value, self.reason));
        out
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.describe())
    }
}

impl std::error::Error for RowError {}

/// What a file gave: the rows imported and the rows refused.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    /// How the file was read, when it was not plain UTF-8 CSV or JSON (its
    /// encoding, the sheet of a spreadsheet).
    pub notes: Vec<String>,
    pub rows: Vec<Row>,
    /// Every problem of every refused row, by line (a row's in the order of
    /// its columns; its warnings among them, marked).
    pub errors: Vec<RowError>,
}

impl Parsed {
    /// How many rows were refused (a row may have several problems).
    pub fn refused_rows(&self) -> usize {
        self.errors
            .iter()
            .map(|e| e.line)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    }
}

/// A problem with the whole file: nothing in it can be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("unknown import format '{name}'; accepted: {accepted}")]
    UnknownFormat { name: String, accepted: String },
    #[error(
        "the file is not UTF-8 text (byte 0x{byte:02X} on line {line}); save it as UTF-8 \
         (in a spreadsheet: \"CSV UTF-8\") and import it again"
    )]
    NotUtf8 { line: usize, byte: u8 },
    #[error("the file is empty: expected a header line naming the columns ({expected})")]
    Empty { expected: String },
    #[error("line {line}: not readable as CSV: {message}")]
    Csv { line: usize, message: String },
    #[error(
        "missing required column{plural} {missing} for the {format} format; the header has: {found}",
        plural = if missing.contains(", ") { "s" } else { "" }
    )]
    MissingColumns {
        format: &'static str,
        /// The missing columns, backquoted and comma-separated.
        missing: String,
        /// The header's columns as written.
        found: String,
    },
    #[error("not JSON (line {line}, column {column}): {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("not a DCAT catalogue: {reason}")]
    NotDcat { reason: String },
    #[error("{message}")]
    Encoding { message: String },
    #[error("not an answer of the {api} API: {reason}")]
    NotApi { api: &'static str, reason: String },
    #[error("not valid {syntax}: {message}")]
    Rdf {
        syntax: &'static str,
        message: String,
    },
    #[error(
        "the spreadsheet cannot be read ({message}); save its first sheet as CSV UTF-8 and \
         import that"
    )]
    Spreadsheet { message: String },
}

/// How to read a file, when its own look is not enough.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A CSV's separator (`--delimiter`); default: the one its header uses
    /// most among ';', ',' and tab.
    pub delimiter: Option<u8>,
    /// Where the document was read (a page's URL): what its relative
    /// addresses are relative to. Default: the source's name.
    pub base: Option<String>,
}

/// Reads a source file into record drafts.
pub fn parse(format: Format, source_name: &str, bytes: &[u8]) -> Result<Parsed, ImportError> {
    parse_with(format, source_name, bytes, &Options::default())
}

/// Reads a source file into record drafts, as `options` say.
pub fn parse_with(
    format: Format,
    source_name: &str,
    bytes: &[u8],
    options: &Options,
) -> Result<Parsed, ImportError> {
    let mut whole = Parsed::default();
    open(format, source_name, bytes, options)?.parts(usize::MAX, |part| {
        whole.notes.extend(part.notes);
        whole.rows.extend(part.rows);
        whole.errors.extend(part.errors);
    });
    Ok(whole)
}

/// Opens a source file: everything that can refuse the file as a whole
/// (its encoding, its header, its syntax) is checked here, so a caller that
/// opens every file before it imports any imports nothing from a run with a
/// bad file. The rows become drafts afterwards, a part at a time
/// ([`Opened::parts`]): an import can send the first rows while the next
/// are read.
pub fn open(
    format: Format,
    source_name: &str,
    bytes: &[u8],
    options: &Options,
) -> Result<Opened, ImportError> {
    let mut notes = Vec::new();
    let mut next_page = None;
    let entries = match format {
        Format::ScdlCatalogue => scdl::open(bytes, options, &mut notes)?,
        Format::EtalabCatalogue => etalab::open(bytes, options, &mut notes)?,
        Format::BibliothequeIa => bibliotheque::open(bytes, options, &mut notes)?,
        Format::DcatJsonLd => {
            let base = options.base.as_deref().unwrap_or(source_name);
            let (drafts, next) = dcat::parse(bytes, base, &mut notes)?;
            next_page = next;
            Entries::Read(drafts)
        }
        Format::Udata => {
            next_page = udata::next_page(bytes);
            Entries::Read(udata::parse(bytes)?)
        }
        Format::Ckan => {
            let url = options.base.as_deref().unwrap_or(source_name);
            next_page = ckan::next_page(url, bytes);
            Entries::Read(ckan::parse(bytes, options.base.as_deref())?)
        }
    };
    Ok(Opened {
        format,
        source_name: source_name.to_string(),
        notes,
        entries,
        next_page,
    })
}

/// A source file opened ([`open`]): its rows, not yet drafts.
pub struct Opened {
    format: Format,
    source_name: String,
    notes: Vec<String>,
    entries: Entries,
    next_page: Option<String>,
}

impl Opened {
    /// The address of the next page, when the file is a page of a paged
    /// source (DCAT's Hydra links, udata's `next_page`, CKAN's `start`),
    /// relative links resolved against [`Options::base`].
    pub fn next_page(&self) -> Option<&str> {
        self.next_page.as_deref()
    }

    /// How many rows (or entries) the source holds.
    pub fn len(&self) -> usize {
        match &self.entries {
            Entries::Table(rows, _) => rows.len(),
            Entries::Read(read) => read.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Turns the rows into drafts, `rows` rows at a time (each part on every
    /// core), and gives each part, in the file's order, to `part`: the first
    /// part carries the notes on how the file was read. A row that gives the
    /// record id of an earlier row, in any part, is refused naming it.
    pub fn parts(self, rows: usize, mut part: impl FnMut(Parsed)) {
        let Opened {
            format,
            source_name,
            mut notes,
            entries,
            next_page: _,
        } = self;
        let rows = rows.max(1);
        // Two rows with one record_id would supersede each other when
        // published: the later one is refused, naming the first.
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut emit = |read: Vec<Result<(usize, Row), Vec<RowError>>>| {
            let mut parsed = Parsed {
                notes: std::mem::take(&mut notes),
                ..Parsed::default()
            };
            for row in read {
                match row {
                    Err(errors) => parsed.errors.extend(errors),
                    Ok((line, row)) => {
                        let id = &row.records[0].record_id;
                        if let Some(first) = seen.get(id) {
                            parsed.errors.push(RowError::new(
                                line,
                                format.identifier_field(),
                                row.source_identifier.clone(),
                                format!(
                                    "gives the same record id '{id}' as line {first}: each row \
                                     needs its own identifier, or a re-import could not tell \
                                     them apart"
                                ),
                            ));
                        } else {
                            seen.insert(id.clone(), line);
                            parsed.rows.push(row);
                        }
                    }
                }
            }
            part(parsed);
        };
        let into_row = |draft: Draft| {
            let line = draft.line;
            draft.into_row(format, &source_name).map(|row| (line, row))
        };
        match entries {
            Entries::Read(read) => emit(common::par_map(read, |e| e.and_then(into_row))),
            Entries::Table(cells, draft) => {
                if cells.is_empty() {
                    emit(Vec::new());
                }
                let mut cells = cells.into_iter();
                loop {
                    let chunk: Vec<_> = cells.by_ref().take(rows).collect();
                    if chunk.is_empty() {
                        break;
                    }
                    // Each row becomes a draft, then a row, on every core.
                    emit(common::par_map(chunk, |c| {
                        c.map_err(|e| vec![e]).and_then(draft).and_then(into_row)
                    }));
                }
            }
        }
    }
}

/// The record_id for a source identifier: deterministic, valid, readable
/// ("scdl:24310051800014:budget-2026"). Characters a record_id cannot hold
/// become '-' (accents are dropped first); an id past 200 characters keeps a
/// prefix and ends with a hash of the whole identifier.
pub fn record_id_for(format: Format, source_identifier: &str) -> String {
    const HASH_LEN: usize = 16;
    let max = maillage_record::model::MAX_RECORD_ID_LEN;
    let slug = common::id_slug(source_identifier);
    let id = format!("{}:{slug}", format.cli_name());
    if !slug.is_empty() && id.len() <= max {
        return id;
    }
    let hash = common::fnv1a64(format!("{}:{source_identifier}", format.cli_name()).as_bytes());
    if slug.is_empty() {
        // Nothing readable survives (e.g. an identifier in another script).
        return format!("{}:{hash:0width$x}", format.cli_name(), width = HASH_LEN);
    }
    // The slug is ASCII, so any byte index is a char boundary.
    let prefix = id[..max - HASH_LEN - 1].trim_end_matches(['-', '.']);
    format!("{prefix}-{hash:0width$x}", width = HASH_LEN)
}

/// A row read by a format module, before it becomes a record.
pub(crate) struct Draft {
    pub line: usize,
    pub source_identifier: String,
    pub organisation: Option<Agent>,
    pub body: Body,
    /// The source field a model field comes from: (model field prefix,
    /// source field, its value in the source). Names validation errors
    /// after what the user wrote.
    pub sources: Vec<(&'static str, String, String)>,
    /// Names a model field the source's way when `sources` has no entry for
    /// it (DCAT: "distributions[0].access_url" → "distribution[0].accessURL").
    pub rename: Option<fn(&str) -> String>,
    /// The source's fields in the order a user reads them (a CSV's columns):
    /// how problems are listed; empty keeps the order they were found in.
    pub order: Vec<String>,
    /// What reading the row found: errors, warnings, text kept as written.
    pub problems: Problems,
}

/// What a format module returns: a draft or the errors of each row.
/// What a format reads from a file before its rows become drafts: a
/// table's rows with the function that makes each a draft (so that this
/// runs a part at a time), or the drafts themselves.
pub(crate) enum Entries {
    Table(
        Vec<Result<table::Cells, RowError>>,
        fn(table::Cells) -> Result<Draft, Vec<RowError>>,
    ),
    Read(Drafts),
}

/// Every entry of a source, as a draft or the problems that refuse it.
pub(crate) type Drafts = Vec<Result<Draft, Vec<RowError>>>;

impl Draft {
    /// The row's record, or every problem that refuses it: those found
    /// reading the row, then the record's own rules it breaks (one per
    /// field), in the order of the source's fields.
    fn into_row(self, format: Format, source_name: &str) -> Result<Row, Vec<RowError>> {
        let Draft {
            line,
            source_identifier,
            organisation,
            body,
            sources,
            rename,
            order,
            problems,
        } = self;
        let Problems {
            mut errors,
            mut warnings,
            as_written,
            ..
        } = problems;
        let record = Record {
            record_id: record_id_for(format, &source_identifier),
            version: 0,
            issued_at_ms: 0,
            visibility: Visibility::Public,
            provenance: Some(Provenance {
                source_format: format.as_str().to_string(),
                source: Some(source_name.to_string()),
                source_identifier: Some(source_identifier.clone()),
                on_behalf_of: organisation.clone(),
                as_written,
            }),
            body,
        };
        for e in record.draft_problems() {
            let e = locate(line, &sources, rename, &record, e);
            // A field already refused was left empty: what the record says
            // of it adds nothing.
            if !errors.iter().any(|x| x.field == e.field) {
                errors.push(e);
            }
        }
        let position = |e: &RowError| {
            order
                .iter()
                .position(|f| *f == e.field)
                .unwrap_or(usize::MAX)
        };
        if !errors.is_empty() {
            // Every problem of the row, its warnings too.
            errors.extend(warnings);
            errors.sort_by_key(position);
            return Err(errors);
        }
        warnings.sort_by_key(position);
        Ok(Row {
            line,
            source_identifier,
            organisation,
            records: vec![record],
            warnings,
        })
    }
}

/// Turns a validation error into a row error naming the source field (the
/// longest matching model prefix in `sources`) and the value the user wrote.
fn locate(
    line: usize,
    sources: &[(&'static str, String, String)],
    rename: Option<fn(&str) -> String>,
    record: &Record,
    e: ValidationError,
) -> RowError {
    let source = sources
        .iter()
        .filter(|(prefix, _, _)| common::path_starts_with(&e.field, prefix))
        .max_by_key(|(prefix, _, _)| prefix.len());
    let model_value = common::value_at(record, &e.field);
    let (field, value) = match source {
        Some((_, field, value)) => (field.clone(), value.clone()),
        None => (
            rename.map_or_else(|| e.field.clone(), |r| r(&e.field)),
            model_value.clone(),
        ),
    };
    // Model messages often start with the quoted value; the row error quotes
    // it already.
    let reason = e
        .message
        .strip_prefix(&format!("'{model_value}' "))
        .unwrap_or(&e.message)
        .to_string();
    RowError::new(line, field, value, reason)
}
