//! CKAN's action API: a `package_search` answer (paged by `start` and
//! `rows`), or a `package_show` (one dataset, or DKAN's list of one).

use maillage_record::Body;
use maillage_record::model::{Agent, Distribution, Frequency, is_http_url};
use serde_json::Value;

use crate::api::{self, field, items};
use crate::common::{self, Problems};
use crate::{Draft, Drafts, ImportError, RowError};

/// Datasets asked per page when the address says nothing (CKAN's own
/// default is 10; its maximum, 1,000).
pub(crate) const ROWS: u64 = 100;

/// The packages of an answer: `result.results` (package_search), `result`
/// (package_show), or a list of packages.
pub(crate) fn parse(bytes: &[u8], page_url: Option<&str>) -> Result<Drafts, ImportError> {
    let doc = api::json(bytes)?;
    if doc.get("success").and_then(Value::as_bool) == Some(false) {
        let why = doc
            .get("error")
            .and_then(|e| field(e, "message"))
            .unwrap_or_else(|| "no reason given".into());
        return Err(ImportError::NotApi {
            api: "CKAN",
            reason: format!("the portal answered an error: {why}"),
        });
    }
    let result = doc.get("result").unwrap_or(&doc);
    let packages: Vec<&Value> = match result {
        Value::Object(o) if o.contains_key("results") => items(o.get("results")).iter().collect(),
        Value::Object(o) if o.contains_key("name") || o.contains_key("id") => vec![result],
        Value::Array(list) => list.iter().collect(),
        _ => {
            return Err(ImportError::NotApi {
                api: "CKAN",
                reason: "expected the answer of package_search or package_show".into(),
            });
        }
    };
    let site = page_url.and_then(site_of);
    Ok(packages
        .into_iter()
        .enumerate()
        .map(|(i, p)| package(p, i + 1, site.as_deref()))
        .collect())
}

/// The page after this one: `start` moved past the results, while the
/// count says more remain.
pub(crate) fn next_page(url: &str, bytes: &[u8]) -> Option<String> {
    let doc = api::json(bytes).ok()?;
    let result = doc.get("result")?;
    let total = api::count(result.get("count"))?;
    let got = items(result.get("results")).len() as u64;
    let start = api::param(url, "start")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    let next = start + got;
    (got > 0 && next < total).then(|| {
        let url = api::with_param(url, "start", &next.to_string());
        match api::param(&url, "rows") {
            Some(_) => url,
            None => api::with_param(&url, "rows", &got.max(1).to_string()),
        }
    })
}

/// "https://portal.fr" of "https://portal.fr/api/3/action/package_search?…".
fn site_of(url: &str) -> Option<String> {
    let at = url.find("/api/")?;
    Some(url[..at].to_string())
}

fn package(pkg: &Value, index: usize, site: Option<&str>) -> Result<Draft, Vec<RowError>> {
    let mut p = Problems::new(index);
    let id = field(pkg, "id")
        .or_else(|| field(pkg, "name"))
        .unwrap_or_default();
    if id.is_empty() {
        p.fail(
            "id",
            "",
            "is missing, and so is name: a re-import could not find this dataset again",
        );
    }
    let mut d = api::titled(pkg, "notes", &mut p);
    d.keywords = items(pkg.get("tags"))
        .iter()
        .filter_map(|t| {
            field(t, "display_name")
                .or_else(|| field(t, "name"))
                .or_else(|| api::text(Some(t)))
        })
        .collect();
    d.themes = items(pkg.get("groups"))
        .iter()
        .filter_map(|g| field(g, "title").or_else(|| field(g, "name")))
        .collect();
    // The dataset's page on the portal; its own `url` is the source's.
    let page = match (site, field(pkg, "name")) {
        (Some(site), Some(name)) => Some(format!("{site}/dataset/{name}")),
        _ => None,
    };
    d.landing_page = page
        .clone()
        .or_else(|| field(pkg, "url").filter(|u| is_http_url(u)));
    d.identifier = page.or_else(|| field(pkg, "id"));
    let licence = field(pkg, "license_url")
        .filter(|u| is_http_url(u))
        .or_else(|| field(pkg, "license_id"))
        .or_else(|| field(pkg, "license_title"));
    if let Some(l) = licence {
        d.licence = p.licence("license_id", &l);
    }
    // Extras as ckanext-dcat and others write them.
    for extra in items(pkg.get("extras")) {
        let (Some(key), Some(value)) = (field(extra, "key"), field(extra, "value")) else {
            continue;
        };
        if matches!(
            key.as_str(),
            "frequency" | "accrual_periodicity" | "update_frequency"
        ) {
            d.frequency = p.vocab("extras.frequency", &value, Some(Frequency::Unknown));
        }
    }
    d.issued = p.optional(
        "metadata_created",
        &field(pkg, "metadata_created").unwrap_or_default(),
        common::iso_date,
    );
    d.modified = p.optional(
        "metadata_modified",
        &field(pkg, "metadata_modified").unwrap_or_default(),
        common::iso_date,
    );
    let organisation = pkg
        .get("organization")
        .filter(|o| o.is_object())
        .and_then(|o| field(o, "title").or_else(|| field(o, "name")))
        .map(|name| Agent {
            name: common::one_line(&name),
            siren: None,
            url: None,
        });
    d.publisher = organisation.clone();
    for (i, r) in items(pkg.get("resources")).iter().enumerate() {
        let Some(url) = api::resource_url(r, &format!("resources[{i}]"), &mut p) else {
            continue;
        };
        let mut x = Distribution::new(url);
        x.title = field(r, "name").map(|t| common::one_line(&t));
        x.format = field(r, "format");
        x.media_type = field(r, "mimetype");
        x.byte_size = api::count(r.get("size"));
        d.distributions.push(x);
    }
    Ok(Draft {
        line: index,
        source_identifier: id,
        organisation,
        body: Body::Dataset(d),
        sources: vec![
            (
                "title",
                "title".into(),
                field(pkg, "title").unwrap_or_default(),
            ),
            (
                "landing_page",
                "url".into(),
                field(pkg, "url").unwrap_or_default(),
            ),
        ],
        rename: None,
        order: vec![],
        problems: p,
    })
}
