//! Spreadsheets (.xlsx, .xls, .ods): the first sheet, read as a table of
//! text cells, as a CSV export of it would read.

use std::io::Cursor;

use calamine::{Data, Reader, open_workbook_auto_from_rs};

use crate::ImportError;
use crate::table::Records;

/// Whether `bytes` are a spreadsheet: a ZIP archive (.xlsx, .ods) or an OLE
/// compound file (.xls).
pub(crate) fn is_spreadsheet(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0])
}

/// The first sheet's name, and its rows: the spreadsheet's row number
/// (from 1, as the spreadsheet shows it), and each cell as text.
///
/// A spreadsheet crafted to make the reader fail in an unforeseen way (a
/// panic: calamine 0.38 overflows on a cell reference of too many letters)
/// is refused like any unreadable one: a file must not take the CLI or the
/// node down with it.
pub(crate) fn first_sheet(bytes: &[u8]) -> Result<(String, Records), ImportError> {
    std::panic::catch_unwind(|| read_first_sheet(bytes)).unwrap_or_else(|_| {
        Err(ImportError::Spreadsheet {
            message: "it is malformed: its reader gave up on it".into(),
        })
    })
}

fn read_first_sheet(bytes: &[u8]) -> Result<(String, Records), ImportError> {
    let unreadable = |e: &dyn std::fmt::Display| ImportError::Spreadsheet {
        message: e.to_string(),
    };
    let mut book = open_workbook_auto_from_rs(Cursor::new(bytes)).map_err(|e| unreadable(&e))?;
    let name = book
        .sheet_names()
        .first()
        .cloned()
        .ok_or_else(|| unreadable(&"it has no sheet"))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or_else(|| unreadable(&"it has no sheet"))?
        .map_err(|e| unreadable(&e))?;
    // The range starts at its first used cell: row and column numbers are
    // the spreadsheet's.
    let (top, left) = range.start().unwrap_or((0, 0));
    let rows = range
        .rows()
        .enumerate()
        .map(|(i, cells)| {
            let mut texts: Vec<String> = vec![String::new(); left as usize];
            texts.extend(cells.iter().map(text));
            (top as usize + i + 1, texts)
        })
        .collect();
    Ok((name, rows))
}

/// A cell as a CSV export writes it: numbers without a needless ".0" (a
/// SIRET typed as a number stays 14 digits), dates as YYYY-MM-DD (with the
/// time when there is one).
fn text(cell: &Data) -> String {
    match cell {
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::DateTime(d) if d.is_datetime() => {
            let (y, mo, day, h, mi, s, _) = d.to_ymd_hms_milli();
            if (h, mi, s) == (0, 0, 0) {
                format!("{y:04}-{mo:02}-{day:02}")
            } else {
                format!("{y:04}-{mo:02}-{day:02}T{h:02}:{mi:02}:{s:02}")
            }
        }
        Data::Error(_) => String::new(),
        other => other.to_string(),
    }
}
