//! What the formats share: text clean-up, dates, SIRETs, slugs, the
//! record-id hash, and the row error collector.

use maillage_record::Record;
use std::borrow::Cow;
use std::collections::BTreeMap;

use maillage_record::model::{
    Agent, Body, Dataset, Distribution, Licence, LicenceRef, is_http_url,
};
use maillage_record::siren::{self, SirenError};
use maillage_record::vocab::{UnknownTerm, Vocabulary};
use serde_json::Value;

use crate::{ImportError, RowError};

const BOM: &str = "\u{feff}";

/// A table's text, however it was saved: UTF-8 (a byte-order mark
/// dropped), UTF-16 with its byte-order mark (Excel's "Unicode text"), or
/// else Windows-1252 (what a French Excel writes by default: "CSV
/// (séparateur: point-virgule)"), which gives a character for every byte.
/// The note says how the text was read when it was not UTF-8.
pub(crate) fn decode_text(bytes: &[u8]) -> Result<(Cow<'_, str>, Option<String>), ImportError> {
    if let Some(utf16) = bytes
        .strip_prefix(&[0xFF, 0xFE])
        .map(|b| (b, u16::from_le_bytes as fn([u8; 2]) -> u16))
        .or_else(|| {
            bytes
                .strip_prefix(&[0xFE, 0xFF])
                .map(|b| (b, u16::from_be_bytes as fn([u8; 2]) -> u16))
        })
    {
        let (body, unit) = utf16;
        let units = body
            .chunks(2)
            .map(|c| unit([c[0], *c.get(1).unwrap_or(&0)]));
        let text: Result<String, _> = char::decode_utf16(units).collect();
        return match text {
            Ok(t) => Ok((
                Cow::Owned(t),
                Some("read as UTF-16 (its byte-order mark says so)".into()),
            )),
            Err(_) => Err(ImportError::Encoding {
                message: "the file starts as UTF-16 but is not valid UTF-16: save it again as \
                          CSV UTF-8"
                    .into(),
            }),
        };
    }
    match decode(bytes) {
        Ok(text) => Ok((Cow::Borrowed(text), None)),
        Err(ImportError::NotUtf8 { line, byte }) => Ok((
            Cow::Owned(bytes.iter().map(|b| windows_1252(*b)).collect()),
            Some(format!(
                "read as Windows-1252: the file is not UTF-8 (byte 0x{byte:02X} on line {line}); \
                 if its accents look wrong, save it as \"CSV UTF-8\" and import it again"
            )),
        )),
        Err(e) => Err(e),
    }
}

/// A Windows-1252 byte as a character: Latin-1 but for 0x80-0x9F, where
/// it has the euro sign, typographic quotes, dashes, œ and Œ... (the five
/// bytes it leaves undefined are kept as the control characters of the
/// same value, as browsers read them).
fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž',
        '\u{8F}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9F => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

/// The file as text, without a UTF-8 byte-order mark.
pub(crate) fn decode(bytes: &[u8]) -> Result<&str, ImportError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.strip_prefix(BOM).unwrap_or(text)),
        Err(e) => {
            let at = e.valid_up_to();
            Err(ImportError::NotUtf8 {
                line: 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count(),
                byte: bytes.get(at).copied().unwrap_or(0),
            })
        }
    }
}

/// Collapses every run of whitespace (newlines included) into one space:
/// names and titles are one line.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits a multi-valued cell on any of `separators`, trimming, dropping
/// empty and repeated values.
pub(crate) fn split_list(text: &str, separators: &[char]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in text.split(separators) {
        let part = one_line(part);
        if !part.is_empty() && !out.contains(&part) {
            out.push(part);
        }
    }
    out
}

/// `Some(text)` unless it is empty.
pub(crate) fn non_empty(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// A web address as people write it: "www.ville.fr" gets its https scheme;
/// anything else is kept for validation to judge.
pub(crate) fn web_url(text: &str) -> Option<String> {
    let t = text.trim();
    if t.is_empty() {
        None
    } else if t.to_ascii_lowercase().starts_with("www.") {
        Some(format!("https://{t}"))
    } else {
        Some(t.to_string())
    }
}

/// The reason a value is outside a vocabulary, to follow the quoted value.
pub(crate) fn unknown_term(e: &UnknownTerm) -> String {
    format!("is not a known {}; accepted: {}", e.what, e.accepted)
}

/// What a catalogue row's one URL gives a dataset: its distribution (with
/// the format, when only one is named: with several, which is which is
/// unknown), its landing page, and its identifier when it is an http URL.
pub(crate) fn set_url(d: &mut Dataset, url: Option<String>, formats: &str) {
    let Some(url) = url else { return };
    let formats = split_list(formats, &[';', ',', '|']);
    let mut dist = Distribution::new(url.clone());
    if let [only] = formats.as_slice() {
        dist.format = Some(only.clone());
    }
    d.distributions = vec![dist];
    if is_http_url(&url) {
        d.identifier = Some(url.clone());
    }
    d.landing_page = Some(url);
}

/// A SIRET's 14 digits (spaces ignored), or why it is not one.
pub(crate) fn siret(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("is empty: a SIRET (14 digits: the SIREN, then 5 digits) is required".into());
    }
    siren::parse_siret(text).map_err(|e| match e {
        SirenError::Length { found, .. } => format!(
            "is not a SIRET: a SIRET has 14 digits (the SIREN, then 5 digits), found {found}"
        ),
        SirenError::NotDigits { .. } => {
            "is not a SIRET: it must contain digits only (spaces are ignored)".to_string()
        }
        SirenError::Checksum { .. } => {
            "fails the SIRET's Luhn check: check for a mistyped digit".to_string()
        }
    })
}

/// An organisation named by a source: its name, and its SIREN when the SIRET
/// given is valid.
pub(crate) fn agent(name: &str, siret_digits: Option<&str>) -> Agent {
    Agent {
        name: one_line(name),
        siren: siret_digits.and_then(|s| s.get(..9)).map(str::to_string),
        url: None,
    }
}

/// An email address, without "mailto:", if the text holds one ("Service SIG
/// <sig@ville.fr>" holds "sig@ville.fr"); the rest of the text is a name.
pub(crate) fn split_email(text: &str) -> (Option<String>, Option<String>) {
    let mut email = None;
    let mut name = Vec::new();
    for word in text.split_whitespace() {
        let w = word
            .trim_matches(|c: char| matches!(c, '<' | '>' | '(' | ')' | ',' | ';'))
            .trim_start_matches("mailto:");
        if email.is_none() && w.contains('@') {
            email = Some(w.to_string());
        } else {
            name.push(word);
        }
    }
    let name = name.join(" ");
    (
        non_empty(name.trim_matches(|c: char| c == '-' || c.is_whitespace())),
        email,
    )
}

const DATE_FORMS: &str = "write YYYY-MM-DD or DD/MM/YYYY (e.g. 2026-03-31 or 31/03/2026)";

/// A date as an ISO 8601 date ("2026-03-31"), or a date-time kept whole
/// ("2026-03-31T10:00:00Z"). Accepts YYYY-MM-DD, DD/MM/YYYY (also with '-' or
/// '.'), YYYY/MM/DD, and a time after the date.
pub(crate) fn iso_date(text: &str) -> Result<String, String> {
    let t = text.trim();
    let (date, time) = match t.split_once(['T', ' ']) {
        Some((d, rest)) => (d, Some(rest.trim())),
        None => (t, None),
    };
    let parts: Vec<&str> = date.split(['-', '/', '.']).collect();
    let num = |s: &str, max_len: usize| -> Option<u32> {
        (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (y, m, d) = match parts.as_slice() {
        [y, m, d] if y.len() == 4 => (num(y, 4), num(m, 2), num(d, 2)),
        [d, m, y] if y.len() == 4 => (num(y, 4), num(m, 2), num(d, 2)),
        _ => (None, None, None),
    };
    let (Some(y), Some(m), Some(d)) = (y, m, d) else {
        return Err(format!("is not a date: {DATE_FORMS}"));
    };
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) || y < 1000 {
        return Err(format!("is not a date in the calendar: {DATE_FORMS}"));
    }
    let day = format!("{y:04}-{m:02}-{d:02}");
    // A time is kept only after an ISO date written with 'T', as DCAT gives
    // it; elsewhere (a spreadsheet's "31/03/2026 10:00") the day is enough.
    match time {
        Some(time)
            if date.len() == 10
                && t.as_bytes().get(10) == Some(&b'T')
                && !time.is_empty()
                && t.len() <= 40
                && !time.contains(char::is_whitespace) =>
        {
            Ok(format!("{day}T{time}"))
        }
        _ => Ok(day),
    }
}

/// Like `iso_date`, the day only.
pub(crate) fn iso_day(text: &str) -> Result<String, String> {
    iso_date(text).map(|d| d[..10].to_string())
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Collects the problems of one row, field by field, so a user sees every
/// problem of a row at once: errors (the row cannot become a correct record:
/// it is refused) and warnings (it is imported, something was read
/// otherwise than written), with what the source wrote that the record's
/// fields do not hold as written (`Provenance::as_written`).
#[derive(Debug, Default)]
pub(crate) struct Problems {
    pub line: usize,
    pub errors: Vec<RowError>,
    pub warnings: Vec<RowError>,
    pub as_written: BTreeMap<String, String>,
}

impl Problems {
    pub fn new(line: usize) -> Problems {
        Problems {
            line,
            ..Problems::default()
        }
    }

    /// A warning on `field`: the row is imported, `raw` kept as written.
    pub fn warn(&mut self, field: &str, raw: &str, reason: impl Into<String>) {
        let raw = raw.trim();
        let mut w = RowError::new(self.line, field, raw, reason);
        w.warning = true;
        self.warnings.push(w);
        self.keep(field, raw);
    }

    /// Keeps what the source wrote in `field` (values of one field joined
    /// by "; ").
    fn keep(&mut self, field: &str, raw: &str) {
        if raw.is_empty() {
            return;
        }
        self.as_written
            .entry(field.to_string())
            .and_modify(|v| {
                v.push_str("; ");
                v.push_str(raw);
            })
            .or_insert_with(|| raw.to_string());
    }

    /// A descriptive field in a vocabulary: the value it names; else the
    /// nearest (a known name inside what was written), else `fallback`
    /// ("other", "unknown"), each with a warning and the text kept as
    /// written; None (kept, warned) when nothing fits. None when empty.
    pub fn vocab<T: Vocabulary>(
        &mut self,
        field: &str,
        raw: &str,
        fallback: Option<T>,
    ) -> Option<T> {
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        if let Ok(v) = T::parse(raw) {
            return Some(v);
        }
        match T::nearest(raw).or(fallback) {
            Some(v) => {
                self.warn(
                    field,
                    raw,
                    format!(
                        "is not a known {}: read as '{}', and kept as written",
                        T::WHAT,
                        v.as_str()
                    ),
                );
                Some(v)
            }
            None => {
                self.warn(
                    field,
                    raw,
                    format!("is not a known {}: kept as written only", T::WHAT),
                );
                None
            }
        }
    }

    /// Every value of a list field in a vocabulary (a cell of values
    /// separated by `separators`): the known ones and the nearest, each once;
    /// the others kept as written, with a warning each.
    pub fn vocab_list<T: Vocabulary + PartialEq>(
        &mut self,
        field: &str,
        raw: &str,
        separators: &[char],
    ) -> Vec<T> {
        let mut out = Vec::new();
        for item in split_list(raw, separators) {
            if let Some(v) = self.vocab::<T>(field, &item, None)
                && !out.contains(&v)
            {
                out.push(v);
            }
        }
        out
    }

    /// A licence as catalogues write it: a known licence (by name, id or
    /// URI) or any http(s) URI; else the nearest known licence, else
    /// "other", with a warning and the text kept as written.
    pub fn licence(&mut self, field: &str, raw: &str) -> Option<LicenceRef> {
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        if let Ok(l) = LicenceRef::parse(raw) {
            return Some(l);
        }
        self.vocab::<Licence>(field, raw, Some(Licence::Other))
            .map(LicenceRef::Known)
    }

    /// A web address where one is expected; a note there instead ("accès
    /// interne uniquement") is kept as written, with a warning, and the
    /// field left empty.
    pub fn web_url(&mut self, field: &str, raw: &str) -> Option<String> {
        let url = web_url(raw)?;
        if is_http_url(&url) {
            return Some(url);
        }
        self.warn(
            field,
            raw,
            "is not a web address (http:// or https://): kept as a note, the address left empty",
        );
        None
    }

    /// The value, or None after recording why `raw` (the source's text of
    /// `field`) was refused.
    pub fn check<T>(&mut self, field: &str, raw: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(reason) => {
                self.errors
                    .push(RowError::new(self.line, field, raw.trim(), reason));
                None
            }
        }
    }

    /// An optional field (a date, a coordinate): None when empty; a value
    /// that does not read is not a reason to lose the row: the field is
    /// left empty, the text kept as written, with a warning.
    pub fn optional<T>(
        &mut self,
        field: &str,
        raw: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        if raw.trim().is_empty() {
            return None;
        }
        match parse(raw.trim()) {
            Ok(v) => Some(v),
            Err(reason) => {
                self.warn(
                    field,
                    raw,
                    format!("{reason}; kept as written, the field left empty"),
                );
                None
            }
        }
    }

    pub fn fail(&mut self, field: &str, raw: &str, reason: impl Into<String>) {
        self.errors
            .push(RowError::new(self.line, field, raw.trim(), reason));
    }
}

/// Lowercase ASCII words joined by '-', accents dropped: "Tri des
/// courriers (pilote)" → "tri-des-courriers-pilote".
pub fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match fold(c) {
            Some(f) if f.bytes().all(|b| b.is_ascii_alphanumeric()) => out.push_str(f),
            _ if c.is_ascii_alphanumeric() => out.push(c),
            _ => {
                if !out.is_empty() && !out.ends_with('-') {
                    out.push('-');
                }
            }
        }
    }
    out.trim_end_matches('-').to_string()
}

/// A source identifier in record-id characters (`A-Za-z0-9._-:/@#+`), case
/// kept, accents dropped, anything else '-' (runs collapsed).
pub(crate) fn id_slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut push = |s: &str| {
        for c in s.chars() {
            if c == '-' && (out.is_empty() || out.ends_with('-')) {
                continue;
            }
            out.push(c);
        }
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || "._-:/@#+".contains(c) {
            push(c.encode_utf8(&mut [0; 4]));
            continue;
        }
        let lower = c.to_lowercase().next().unwrap_or(c);
        match fold(lower) {
            Some(f) if c.is_uppercase() => push(&f.to_ascii_uppercase()),
            Some(f) => push(f),
            None => push("-"),
        }
    }
    out.trim_end_matches('-').to_string()
}

/// The ASCII letters of a lowercase accented Latin letter.
fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'â' | 'ä' | 'á' | 'ã' | 'å' => "a",
        'é' | 'è' | 'ê' | 'ë' => "e",
        'î' | 'ï' | 'í' | 'ì' => "i",
        'ô' | 'ö' | 'ó' | 'ò' | 'õ' | 'ø' => "o",
        'ù' | 'û' | 'ü' | 'ú' => "u",
        'ç' => "c",
        'ñ' => "n",
        'ÿ' | 'ý' => "y",
        'œ' => "oe",
        'æ' => "ae",
        'ß' => "ss",
        _ => return None,
    })
}

/// FNV-1a, 64 bits: a stable hash (unlike std's, the same on every build).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Whether a validation error's field path is `prefix` or inside it.
pub(crate) fn path_starts_with(field: &str, prefix: &str) -> bool {
    field
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// The value at a validation error's field path ("distributions[0].access_url")
/// in a record, as text; "" when absent.
pub(crate) fn value_at(record: &Record, path: &str) -> String {
    let body = match &record.body {
        Body::Dataset(d) => serde_json::to_value(d),
        Body::Project(p) => serde_json::to_value(p),
        _ => Ok(Value::Null),
    };
    let mut root = match body {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    root.insert("record_id".into(), Value::String(record.record_id.clone()));
    if let Some(p) = &record.provenance
        && let Ok(v) = serde_json::to_value(p)
    {
        root.insert("provenance".into(), v);
    }
    let mut at = &Value::Object(root);
    let missing = Value::Null;
    for segment in path.split('.') {
        let mut parts = segment.split('[');
        if let Some(key) = parts.next().filter(|k| !k.is_empty()) {
            at = at.get(key).unwrap_or(&missing);
        }
        for index in parts {
            let i = index
                .trim_end_matches(']')
                .parse::<usize>()
                .unwrap_or(usize::MAX);
            at = at.get(i).unwrap_or(&missing);
        }
    }
    match at {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `f` of every item, in order: on every core for a large file (rows are
/// independent once read), on this thread for a small one.
pub(crate) fn par_map<T: Send, U: Send>(items: Vec<T>, f: impl Fn(T) -> U + Sync) -> Vec<U> {
    /// Below this many items, threads cost more than they save.
    const ALONE: usize = 2_000;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if threads < 2 || items.len() < ALONE {
        return items.into_iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let mut parts: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut rest = items.into_iter();
    loop {
        let part: Vec<T> = rest.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        parts.push(part);
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| s.spawn(move || part.into_iter().map(f).collect::<Vec<U>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a reading thread panicked"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_people_write() {
        assert_eq!(iso_date("2026-03-31"), Ok("2026-03-31".into()));
        assert_eq!(iso_date("31/03/2026"), Ok("2026-03-31".into()));
        assert_eq!(iso_date("1/3/2026"), Ok("2026-03-01".into()));
        assert_eq!(iso_date("31.03.2026"), Ok("2026-03-31".into()));
        assert_eq!(iso_date("2026/03/31"), Ok("2026-03-31".into()));
        assert_eq!(iso_date("31/03/2026 10:00"), Ok("2026-03-31".into()));
        assert_eq!(
            iso_date("2016-12-14T18:59:02.737480"),
            Ok("2016-12-14T18:59:02.737480".into())
        );
        assert_eq!(iso_day("2016-12-14T18:59:02Z"), Ok("2016-12-14".into()));
        assert_eq!(iso_date("29/02/2024"), Ok("2024-02-29".into()));
        for bad in [
            "30/02/2026",
            "2026-13-01",
            "03/2026",
            "mars 2026",
            "2026",
            "",
            "12/31/2026",
        ] {
            let e = iso_date(bad).unwrap_err();
            assert!(e.contains("YYYY-MM-DD"), "{bad}: {e}");
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(
            slug("Tri des courriers (pilote)"),
            "tri-des-courriers-pilote"
        );
        assert_eq!(slug("  Chatbot « Allô Mairie » !"), "chatbot-allo-mairie");
        assert_eq!(slug("Œuvres d'art — Blagnac"), "oeuvres-d-art-blagnac");
        assert_eq!(
            id_slug("Équipements sportifs 2024?x=1"),
            "Equipements-sportifs-2024-x-1"
        );
        assert_eq!(id_slug("https://ex.fr/a b"), "https://ex.fr/a-b");
        assert_eq!(id_slug("日本"), "");
    }

    #[test]
    fn fnv_reference_values() {
        // The published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn emails_and_names() {
        assert_eq!(
            split_email("Service SIG <sig@blagnac.fr>"),
            (Some("Service SIG".into()), Some("sig@blagnac.fr".into()))
        );
        assert_eq!(
            split_email("mailto:opendata@toulouse-metropole.fr"),
            (None, Some("opendata@toulouse-metropole.fr".into()))
        );
        assert_eq!(
            split_email("Direction du numérique"),
            (Some("Direction du numérique".into()), None)
        );
    }
}

/// A description written in HTML (as portals export them) as plain text:
/// tags dropped, paragraphs and line breaks as new lines, the usual
/// entities decoded. Text with no tag is returned as it is.
pub(crate) fn html_to_text(text: &str) -> String {
    let looks_html = ["<p", "<br", "</", "<ul", "<li", "<div", "<a "]
        .iter()
        .any(|t| text.to_ascii_lowercase().contains(t));
    if !looks_html {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open].replace(['\n', '\r'], " "));
        let Some(close) = rest[open..].find('>') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let tag = rest[open + 1..open + close].trim().to_ascii_lowercase();
        let name = tag.trim_start_matches('/');
        let name = name.split([' ', '/']).next().unwrap_or("");
        if matches!(
            name,
            "br" | "p" | "div" | "li" | "ul" | "ol" | "tr" | "h1" | "h2" | "h3" | "h4"
        ) && !out.ends_with('\n')
            && !out.is_empty()
        {
            out.push('\n');
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&rsquo;", "’")
        .replace("&eacute;", "é")
        .replace("&egrave;", "è")
        .replace("&agrave;", "à")
        .replace("&amp;", "&");
    decoded
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// "%C3%A9" as "é"; what does not decode is kept as written.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&a), Some(&b)) if hex(a).is_some() && hex(b).is_some() => {
                out.push((hex(a).unwrap_or(0) * 16 + hex(b).unwrap_or(0)) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod text_tests {
    use super::*;

    #[test]
    fn html_descriptions_read_as_text() {
        assert_eq!(
            html_to_text(
                "<p>Un jeu&nbsp;de données.<br/>Mis à jour\nchaque année.</p><p><a href=\"x\">Lien</a> &amp; plus</p>"
            ),
            "Un jeu de données.\nMis à jour chaque année.\nLien & plus"
        );
        // No tag: as written, line breaks and all.
        assert_eq!(html_to_text("a < b\nc"), "a < b\nc");
    }

    #[test]
    fn percent_encoded_text_decodes() {
        assert_eq!(
            percent_decode("Audiar+-+Rennes+M%C3%A9tropole"),
            "Audiar - Rennes Métropole"
        );
        assert_eq!(percent_decode("100%"), "100%");
    }
}
