//! Import sources where they are: fetched over HTTP(S) and followed page
//! by page (DCAT's Hydra links, udata's `next_page`, CKAN's `start`), each
//! page read by `maillage-import`. The CLI (`maillage import FORMAT URL`)
//! and the node's scheduled harvests share this.
//!
//! Bounds: every GET has a timeout, a size limit and a few retries
//! (`fetch.rs`); a source has at most `MAX_PAGES` pages and `MAX_ENTRIES`
//! entries, and a page seen twice (a loop of links) ends it.

mod fetch;

use std::collections::HashSet;

pub use fetch::{Call, FetchError, Fetcher, form_encode};
use maillage_import::{Format, ImportError, Options, Parsed};

/// Pages followed at most for one source.
pub const MAX_PAGES: usize = 10_000;
/// Entries (rows, datasets) read at most from one source: what its records
/// hold in memory until they are imported stays bounded.
pub const MAX_ENTRIES: usize = 2_000_000;

/// One page of a source: where it was read, and what it gave.
pub struct Page {
    pub url: String,
    pub parsed: Parsed,
}

/// Why a source could not be harvested (pages before the failing one were
/// given to the caller already).
#[derive(Debug, thiserror::Error)]
pub enum HarvestError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{url} is not a {format} page: {source}")]
    Import {
        url: String,
        format: &'static str,
        #[source]
        source: ImportError,
    },
    #[error("{url}: more than {max} pages; the source was not read to its end")]
    TooManyPages { url: String, max: usize },
    #[error("{url}: more than {max} rows or datasets; import the source in parts")]
    TooManyEntries { url: String, max: usize },
}

/// Whether `source` names a web address rather than a file.
pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// Reads the source at `url` page by page, giving each page to `each` as
/// it comes; the number of pages. Entries are numbered across pages (the
/// tenth dataset of the second page of ten is 20), so a report names each
/// once. `source_name` goes into the records' provenance.
pub async fn harvest(
    fetcher: &Fetcher,
    format: Format,
    url: &str,
    source_name: &str,
    options: &Options,
    mut each: impl FnMut(Page),
) -> Result<usize, HarvestError> {
    let mut next = Some(format.first_page(url));
    let mut seen = HashSet::new();
    let mut numbered = 0;
    while let Some(page_url) = next.take() {
        if !seen.insert(page_url.clone()) {
            tracing::warn!(%page_url, "a page links back to one read already: the source ends here");
            break;
        }
        if seen.len() > MAX_PAGES {
            return Err(HarvestError::TooManyPages {
                url: url.to_string(),
                max: MAX_PAGES,
            });
        }
        let (read_at, bytes) = fetcher.get(&page_url, format.accept()).await?;
        let options = Options {
            base: Some(read_at.clone()),
            ..options.clone()
        };
        let opened =
            maillage_import::open(format, source_name, &bytes, &options).map_err(|source| {
                HarvestError::Import {
                    url: page_url.clone(),
                    format: format.cli_name(),
                    source,
                }
            })?;
        // Read from the page as it was read for its entries, not parsed twice.
        next = opened.next_page().map(str::to_string);
        let mut parsed = Parsed::default();
        opened.parts(usize::MAX, |part| {
            parsed.notes.extend(part.notes);
            parsed.rows.extend(part.rows);
            parsed.errors.extend(part.errors);
        });
        // Entries of API and DCAT pages are numbered from 1 on each page.
        let entries = parsed
            .rows
            .iter()
            .map(|r| r.line)
            .chain(parsed.errors.iter().map(|e| e.line))
            .max()
            .unwrap_or(0);
        if numbered > 0 {
            for row in &mut parsed.rows {
                row.line += numbered;
                for w in &mut row.warnings {
                    w.line += numbered;
                }
            }
            for e in &mut parsed.errors {
                e.line += numbered;
            }
        }
        numbered += entries;
        if numbered > MAX_ENTRIES {
            return Err(HarvestError::TooManyEntries {
                url: url.to_string(),
                max: MAX_ENTRIES,
            });
        }
        each(Page {
            url: page_url,
            parsed,
        });
    }
    Ok(seen.len())
}
