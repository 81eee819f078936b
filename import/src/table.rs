//! Reading a table: a CSV export (its encoding and separator detected) or a
//! spreadsheet's first sheet; forgiving header matching, and the line where
//! each row starts, even when quoted cells span lines.

use std::sync::Arc;

use crate::common::{decode_text, slug};
use crate::{ImportError, Options, RowError, spreadsheet};

/// One CSV row: its cells for the columns a format reads, and where it starts.
pub(crate) struct Cells {
    pub line: usize,
    columns: &'static [&'static str],
    /// Where each of `columns` is in the file.
    positions: Arc<[Option<usize>]>,
    values: Vec<String>,
}

impl Cells {
    /// The trimmed cell of a column; "" when the column or the cell is absent.
    pub fn get(&self, column: &str) -> &str {
        self.columns
            .iter()
            .position(|c| *c == column)
            .and_then(|i| self.values.get(i))
            .map_or("", String::as_str)
    }

    /// The columns the format reads, in the file's order (those absent
    /// from it last): how a row's problems are listed.
    pub(crate) fn column_order(&self) -> Vec<String> {
        let mut order: Vec<(usize, &str)> = self
            .columns
            .iter()
            .zip(self.positions.iter())
            .map(|(c, at)| (at.unwrap_or(usize::MAX), *c))
            .collect();
        order.sort();
        order.into_iter().map(|(_, c)| c.to_string()).collect()
    }
}

/// Reads a table with a header line: a CSV file (UTF-8, with or without a
/// byte-order mark, UTF-16 with one, or else Windows-1252, what French
/// spreadsheets write), or the first sheet of a spreadsheet (.xlsx, .xls,
/// .ods). A CSV's separator is `options.delimiter`, else the one its
/// header uses most among ';', ',' and tab (a spreadsheet's "sep=" first
/// line is obeyed). Columns are matched forgiving case, accents, spaces and
/// underscores ("Nom du projet" is `Nom_du_projet`); a `required` column
/// missing fails the whole file. A row that has more non-empty cells than
/// the header has columns (a separator inside an unquoted value) is a row
/// error; rows with every cell empty are skipped. What was read otherwise
/// than a plain UTF-8 CSV is said in `notes`.
pub(crate) fn read_table(
    bytes: &[u8],
    options: &Options,
    format: &'static str,
    columns: &'static [&'static str],
    required: &[&'static str],
    notes: &mut Vec<String>,
) -> Result<Vec<Result<Cells, RowError>>, ImportError> {
    let (records, separator) = if spreadsheet::is_spreadsheet(bytes) {
        let (sheet, records) = spreadsheet::first_sheet(bytes)?;
        notes.push(format!("read the sheet '{sheet}' of the spreadsheet"));
        (records, None)
    } else {
        let (text, encoding) = decode_text(bytes)?;
        if let Some(note) = encoding {
            notes.push(note);
        }
        let (records, delimiter) = csv_records(&text, options.delimiter)?;
        (records, Some(delimiter))
    };
    rows(records, separator, format, columns, required)
}

/// A table's records: where each starts, and its cells.
pub(crate) type Records = Vec<(usize, Vec<String>)>;

/// The CSV's records and the separator used.
fn csv_records(text: &str, delimiter: Option<u8>) -> Result<(Records, u8), ImportError> {
    let header_line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    // Spreadsheets may write their separator on a first line of its own
    // ("sep=;"): it is obeyed (unless the user gave one), and skipped.
    let (delimiter, body) = match header_line.trim_end_matches('\r').strip_prefix("sep=") {
        Some(sep) if sep.len() == 1 => {
            // header_line is a slice of text: its offset is a pointer difference.
            let after = header_line.as_ptr() as usize - text.as_ptr() as usize + header_line.len();
            (delimiter.unwrap_or(sep.as_bytes()[0]), after)
        }
        _ => {
            let d = delimiter.unwrap_or_else(|| {
                [b';', b',', b'\t']
                    .into_iter()
                    .max_by_key(|d| header_line.bytes().filter(|b| b == d).count())
                    .unwrap_or(b',')
            });
            (d, 0)
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(false)
        .from_reader(&text.as_bytes()[body..]);
    let lines = LineIndex::new(text, body);
    let mut records = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(&lines, &e))?;
        let line = record
            .position()
            .map_or(0, |p| lines.line_of_record(p.byte() as usize));
        records.push((line, record.iter().map(str::to_string).collect()));
    }
    Ok((records, delimiter))
}

/// The header, then each row as `Cells` (see `read_table`). `separator`:
/// the CSV's, named when a row has too many cells.
fn rows(
    records: Records,
    separator: Option<u8>,
    format: &'static str,
    columns: &'static [&'static str],
    required: &[&'static str],
) -> Result<Vec<Result<Cells, RowError>>, ImportError> {
    let list = |names: &[&str]| names.join(", ");
    let empty = || ImportError::Empty {
        expected: list(columns),
    };
    let blank = |cells: &[String]| cells.iter().all(|c| c.trim().is_empty());
    let mut records = records.into_iter().filter(|(_, cells)| !blank(cells));
    let (_, header) = records.next().ok_or_else(empty)?;
    let found: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    let index: Vec<Option<usize>> = columns
        .iter()
        .map(|c| found.iter().position(|h| slug(h) == slug(c)))
        .collect();
    let missing: Vec<String> = columns
        .iter()
        .zip(&index)
        .filter(|(c, i)| i.is_none() && required.contains(c))
        .map(|(c, _)| format!("`{c}`"))
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::MissingColumns {
            format,
            missing: missing.join(", "),
            found: if found.iter().all(String::is_empty) {
                "(nothing)".to_string()
            } else {
                found.join(", ")
            },
        });
    }

    let positions: Arc<[Option<usize>]> = index.clone().into();
    let mut rows = Vec::new();
    for (line, record) in records {
        if let Some((at, extra)) = record
            .iter()
            .enumerate()
            .skip(found.len())
            .find(|(_, c)| !c.trim().is_empty())
        {
            let why = match separator {
                Some(d) => format!(
                    "is in column {} but the header has {} columns: is a '{}' inside a value \
                     that is not between double quotes?",
                    at + 1,
                    found.len(),
                    char::from(d)
                ),
                None => format!(
                    "is in column {} but the header has {} columns: give the column a name",
                    at + 1,
                    found.len()
                ),
            };
            rows.push(Err(RowError::new(line, "", extra.trim(), why)));
            continue;
        }
        let values = index
            .iter()
            .map(|i| {
                i.and_then(|i| record.get(i))
                    .map_or("", String::as_str)
                    .trim()
                    .to_string()
            })
            .collect();
        rows.push(Ok(Cells {
            line,
            columns,
            positions: positions.clone(),
            values,
        }));
    }
    Ok(rows)
}

fn csv_error(lines: &LineIndex, e: &csv::Error) -> ImportError {
    ImportError::Csv {
        line: e
            .position()
            .map_or(0, |p| lines.line_of_record(p.byte() as usize)),
        message: e.to_string(),
    }
}

/// Line numbers from byte offsets. The CSV reader's own line count can point
/// at the end of the previous record (CRLF, blank lines), so a record's line
/// is counted here from its first byte.
struct LineIndex<'a> {
    text: &'a [u8],
    newlines: Vec<usize>,
    /// Where the CSV reader started in `text`.
    base: usize,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str, base: usize) -> LineIndex<'a> {
        let text = text.as_bytes();
        let newlines = text
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i)
            .collect();
        LineIndex {
            text,
            newlines,
            base,
        }
    }

    /// The 1-based line of the first character of the record at `byte`,
    /// skipping the line ends that precede it.
    fn line_of_record(&self, byte: usize) -> usize {
        let byte = byte + self.base;
        let start = self.text[byte.min(self.text.len())..]
            .iter()
            .position(|b| *b != b'\r' && *b != b'\n')
            .map_or(self.text.len(), |n| byte + n);
        1 + self.newlines.partition_point(|&nl| nl < start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lines_skip_line_ends() {
        let text = "a,b\r\n\r\n\"x\ny\",z\r\nlast,1\n";
        let idx = LineIndex::new(text, 0);
        assert_eq!(idx.line_of_record(0), 1);
        assert_eq!(idx.line_of_record(4), 3);
        assert_eq!(idx.line_of_record(text.find("last").unwrap()), 5);
    }
}
