//! Reading a CSV export: separator detection, forgiving header matching,
//! and the line where each row starts, even when quoted cells span lines.

use std::rc::Rc;

use crate::common::{decode, slug};
use crate::{ImportError, RowError};

/// One CSV row: its cells for the columns a format reads, and where it starts.
pub(crate) struct Cells {
    pub line: usize,
    columns: &'static [&'static str],
    /// Where each of `columns` is in the file.
    positions: Rc<[Option<usize>]>,
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

/// Reads a CSV file with a header line. The separator (',', ';' or tab) is the
/// one the header uses most. Columns are matched forgiving case, accents,
/// spaces and underscores ("Nom du projet" is `Nom_du_projet`); a `required`
/// column missing fails the whole file. A row that has more non-empty cells
/// than the header has columns (a separator inside an unquoted value) is a row
/// error; rows with every cell empty are skipped.
pub(crate) fn read_csv(
    bytes: &[u8],
    format: &'static str,
    columns: &'static [&'static str],
    required: &[&'static str],
) -> Result<Vec<Result<Cells, RowError>>, ImportError> {
    let text = decode(bytes)?;
    let list = |names: &[&str]| names.join(", ");
    let empty = || ImportError::Empty {
        expected: list(columns),
    };
    let header_line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(empty)?;
    // Spreadsheets may write their separator on a first line of its own
    // ("sep=;"): it is obeyed, and skipped.
    let (delimiter, body) = match header_line.trim_end_matches('\r').strip_prefix("sep=") {
        Some(sep) if sep.len() == 1 => {
            // header_line is a slice of text: its offset is a pointer difference.
            let after = header_line.as_ptr() as usize - text.as_ptr() as usize + header_line.len();
            (sep.as_bytes()[0], after)
        }
        _ => {
            let d = [b';', b',', b'\t']
                .into_iter()
                .max_by_key(|d| header_line.bytes().filter(|b| b == d).count())
                .unwrap_or(b',');
            (d, 0)
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(false)
        .from_reader(&text.as_bytes()[body..]);
    let lines = LineIndex::new(text, body);

    let mut records = reader.records();
    let header = loop {
        match records.next() {
            None => return Err(empty()),
            Some(Err(e)) => return Err(csv_error(&lines, &e)),
            Some(Ok(r)) if r.iter().all(|c| c.trim().is_empty()) => continue,
            Some(Ok(r)) => break r,
        }
    };
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

    let positions: Rc<[Option<usize>]> = index.clone().into();
    let mut rows = Vec::new();
    for record in records {
        let record = record.map_err(|e| csv_error(&lines, &e))?;
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let line = record
            .position()
            .map_or(0, |p| lines.line_of_record(p.byte() as usize));
        if let Some((at, extra)) = record
            .iter()
            .enumerate()
            .skip(found.len())
            .find(|(_, c)| !c.trim().is_empty())
        {
            rows.push(Err(RowError::new(
                line,
                "",
                extra.trim(),
                format!(
                    "is in column {} but the header has {} columns: is a '{}' inside a value \
                     that is not between double quotes?",
                    at + 1,
                    found.len(),
                    char::from(delimiter)
                ),
            )));
            continue;
        }
        let values = index
            .iter()
            .map(|i| {
                i.and_then(|i| record.get(i))
                    .unwrap_or("")
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
