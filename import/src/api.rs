//! What the JSON APIs of open-data portals share: the page's entries, and
//! reading their values forgivingly (a number where text is expected, an
//! empty string for none).

use maillage_record::model::{Dataset, is_http_url};
use serde_json::Value;

use crate::ImportError;
use crate::common::{self, Problems};

/// The JSON of an API answer (or of any JSON document), or why it is none.
pub(crate) fn json(bytes: &[u8]) -> Result<Value, ImportError> {
    let text = crate::common::decode(bytes)?;
    serde_json::from_str(text).map_err(|e| ImportError::Json {
        line: e.line(),
        column: e.column(),
        message: e
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or("")
            .to_string(),
    })
}

/// A text value: a string (trimmed) or a number; None for null or "".
pub(crate) fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A field of an object as text.
pub(crate) fn field(obj: &Value, name: &str) -> Option<String> {
    text(obj.get(name))
}

/// A whole number, written as a number or as digits.
pub(crate) fn count(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The items of an array (none when it is not one).
pub(crate) fn items(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// `url` with its query parameter `name` set to `value` (added when absent).
pub(crate) fn with_param(url: &str, name: &str, value: &str) -> String {
    let (base, fragment) = url
        .split_once('#')
        .map_or((url, None), |(b, f)| (b, Some(f)));
    let (path, query) = base.split_once('?').map_or((base, ""), |(p, q)| (p, q));
    let mut params: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some(name))
        .map(str::to_string)
        .collect();
    params.push(format!("{name}={value}"));
    let mut out = format!("{path}?{}", params.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// A query parameter of `url`, if present.
pub(crate) fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split('#').next()?.split_once('?')?.1;
    query.split('&').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (k == name).then(|| v.to_string())
    })
}

/// A portal's dataset as a draft: its title, and its description (the
/// title, with a warning, when the portal has none: portals do not require
/// one, records do).
pub(crate) fn titled(obj: &Value, description_field: &str, p: &mut Problems) -> Dataset {
    let title = common::one_line(&field(obj, "title").unwrap_or_default());
    let mut description = field(obj, description_field).unwrap_or_default();
    if description.is_empty() && !title.is_empty() {
        p.warn(
            description_field,
            "",
            "is empty: the title is used as the description",
        );
        description = title.clone();
    }
    Dataset::new(title, description)
}

/// A resource's address, if it is a web address; a resource without one is
/// left out, with a warning on `name`.url.
pub(crate) fn resource_url(r: &Value, name: &str, p: &mut Problems) -> Option<String> {
    let url = field(r, "url").filter(|u| is_http_url(u));
    if url.is_none() {
        p.warn(
            &format!("{name}.url"),
            &field(r, "url").unwrap_or_default(),
            "is not a web address: the resource is left out",
        );
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters() {
        assert_eq!(
            with_param(
                "https://ex.fr/api/3/action/package_search?q=x&start=0",
                "start",
                "100"
            ),
            "https://ex.fr/api/3/action/package_search?q=x&start=100"
        );
        assert_eq!(
            with_param("https://ex.fr/s", "rows", "50"),
            "https://ex.fr/s?rows=50"
        );
        assert_eq!(
            param("https://ex.fr/s?rows=50&start=7", "start").as_deref(),
            Some("7")
        );
        assert_eq!(param("https://ex.fr/s", "start"), None);
    }
}
