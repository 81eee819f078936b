//! The parameters of an HTTP request's query string (`?q=…&page=2`), once
//! decoded (axum's `Query`, form-urlencoded), read as the HTTP interface
//! takes them. No IO and no dependency but std: the fuzz targets (`fuzz/`)
//! build this file alone, without the node.

/// Datasets per page when the harvester does not say.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The largest page an export serves.
pub const MAX_PAGE_SIZE: usize = 1_000;
/// Parameters a query may hold: the interface reads a dozen at most.
pub const MAX_PARAMS: usize = 64;

/// A query's (name, value) pairs, in their order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The decoded pairs of a query; an error (for a 400 answer) if there
    /// are more than `MAX_PARAMS`.
    pub fn new(pairs: Vec<(String, String)>) -> Result<Params, String> {
        if pairs.len() > MAX_PARAMS {
            return Err(format!(
                "{} parameters; at most {MAX_PARAMS}\n",
                pairs.len()
            ));
        }
        Ok(Params(pairs))
    }

    /// The first value of `name` that is not blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.trim().is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// A positive number `name`, 0 when absent.
    pub fn number(&self, name: &str) -> Result<usize, String> {
        match self.get(name) {
            None => Ok(0),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name}='{v}' is not a positive number\n")),
        }
    }

    /// The page an export asks for: `None` for the whole, else (page from
    /// 1, page size capped at `MAX_PAGE_SIZE`).
    pub fn page(&self) -> Result<Option<(usize, usize)>, String> {
        let (page, size) = (self.number("page")?, self.number("page_size")?);
        Ok(match (page, size) {
            (0, 0) => None,
            (p, s) => Some((
                p.max(1),
                if s == 0 {
                    DEFAULT_PAGE_SIZE
                } else {
                    s.min(MAX_PAGE_SIZE)
                },
            )),
        })
    }

    /// The pairs, in their order (the fuzz target reads them).
    #[allow(dead_code)]
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn pages_as_harvesters_ask() {
        assert_eq!(
            params(&[("page", "3"), ("page_size", "5000")]).page(),
            Ok(Some((3, MAX_PAGE_SIZE)))
        );
        assert_eq!(
            params(&[("page", "2")]).page(),
            Ok(Some((2, DEFAULT_PAGE_SIZE)))
        );
        assert_eq!(params(&[]).page(), Ok(None));
        for bad in ["0", "-1", "zero", "1.5"] {
            assert!(params(&[("page", bad)]).page().is_err(), "{bad}");
        }
        let many = vec![("a".to_string(), "1".to_string()); MAX_PARAMS + 1];
        assert!(Params::new(many).is_err());
        assert_eq!(params(&[("q", " "), ("q", "vélo")]).get("q"), Some("vélo"));
    }
}
