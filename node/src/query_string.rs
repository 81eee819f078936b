//! The query string of an HTTP request (`?q=…&page=2`), read as the HTTP
//! interface takes it. No IO and no dependency but std: the fuzz targets
//! (`fuzz/`) build this file alone, without the node.

/// Datasets per page when the harvester does not say.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The largest page an export serves.
pub const MAX_PAGE_SIZE: usize = 1_000;
/// Parameters a query may hold: the interface reads a dozen at most.
pub const MAX_PARAMS: usize = 64;

/// The (name, value) pairs of `query`, percent-decoded (`+` is a space).
/// An error says what is wrong, for a 400 answer.
pub fn params(query: &str) -> Result<Vec<(String, String)>, String> {
    let decode = |s: &str| -> Result<String, String> {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = s
                        .get(i + 1..i + 3)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| format!("bad percent-encoding in '{s}'\n"))?;
                    out.push(hex);
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).map_err(|_| format!("'{s}' is not UTF-8 once decoded\n"))
    };
    let pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    if pairs.len() > MAX_PARAMS {
        return Err(format!(
            "{} parameters; at most {MAX_PARAMS}\n",
            pairs.len()
        ));
    }
    pairs
        .into_iter()
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// The page an export asks for: `None` for the whole, else (page from 1,
/// page size capped at `MAX_PAGE_SIZE`).
pub fn page(query: &str) -> Result<Option<(usize, usize)>, String> {
    let (mut page, mut size) = (None, None);
    for (k, v) in params(query)? {
        let n = || {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{k}='{v}' is not a positive number\n"))
        };
        match k.as_str() {
            "page" => page = Some(n()?),
            "page_size" => size = Some(n()?.min(MAX_PAGE_SIZE)),
            _ => {}
        }
    }
    Ok(match (page, size) {
        (None, None) => None,
        (p, s) => Some((p.unwrap_or(1), s.unwrap_or(DEFAULT_PAGE_SIZE))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_browsers_send() {
        assert_eq!(
            params("q=d%C3%A9chets+m%C3%A9nagers&page=2").unwrap(),
            [
                ("q".to_string(), "déchets ménagers".to_string()),
                ("page".to_string(), "2".to_string())
            ]
        );
        assert_eq!(
            page("page=3&page_size=5000").unwrap(),
            Some((3, MAX_PAGE_SIZE))
        );
        assert_eq!(page("").unwrap(), None);
        for bad in ["q=%", "q=%zz", "q=%C3", "page=0", "page=-1", "q=%é1"] {
            assert!(page(bad).is_err(), "{bad}");
        }
        assert!(params(&"a=1&".repeat(MAX_PARAMS + 1)).is_err());
    }
}
