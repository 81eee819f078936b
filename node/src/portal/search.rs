//! `/recherche`: the search of the CLI, as a page: ranked results, facets
//! as links that add a filter, paging.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::{Visitor, blocking, page, site_for, view};
use crate::http::Http;
use crate::query_string::Params;
use crate::search::{Hit, Results, SearchError, SearchRequest};

/// Results per page.
const PAGE_SIZE: usize = 20;
/// The filters a page keeps from one link to the next, by query name.
const FILTERS: [&str; 7] = [
    "kind",
    "theme",
    "org",
    "territory",
    "status",
    "risk",
    "licence",
];

pub(super) async fn search(State(http): State<Http>, visitor: Visitor, params: Params) -> Response {
    let _turn = match http.search_turn().await {
        Ok(t) => t,
        Err(busy) => return busy,
    };
    let node = http.node.clone();
    let asked = params.clone();
    let viewer = visitor.viewer.clone();
    let reader = visitor.who().map(|(who, siren)| (who, siren.clone()));
    let found = blocking(&http, move || {
        let run = || -> Result<Results, SearchError> {
            let req = SearchRequest {
                text: asked.get("q").unwrap_or_default().to_string(),
                filters: crate::http::filters(&asked)?,
                page: asked.number("page").map_err(SearchError::BadRequest)?,
                page_size: PAGE_SIZE,
            };
            let mut results = node
                .search()
                .search(&req, &viewer, node.store().last_seq())?;
            node.finish_hits(
                &viewer,
                &mut results.hits,
                reader.as_ref().map(|(w, s)| (w.as_str(), s)),
            )
            .map_err(|e| SearchError::Internal(e.to_string()))?;
            Ok(results)
        };
        match run() {
            Ok(r) => Ok(Ok(r)),
            Err(SearchError::BadRequest(msg)) => Ok(Err(msg)),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    let site = site_for(&http, &visitor);
    let q = params.get("q").unwrap_or_default();
    match found {
        Err(failed) => failed,
        Ok(Err(bad)) => page(
            StatusCode::BAD_REQUEST,
            view::problem(&site, "Recherche impossible", bad.trim_end()),
        ),
        Ok(Ok(results)) => {
            let title = if q.trim().is_empty() {
                "Tout le catalogue".to_string()
            } else {
                format!("Recherche « {q} »")
            };
            page(
                StatusCode::OK,
                view::page(&site, &title, q, results_page(&title, &params, &results)),
            )
        }
    }
}

fn results_page(title: &str, params: &Params, results: &Results) -> Markup {
    let last = results
        .total
        .div_ceil(results.page_size.max(1) as u64)
        .max(1) as usize;
    html! {
        h1 { (title) }
        p class="chapeau" role="status" {
            @match results.total {
                0 => "Aucun résultat.",
                1 => "1 résultat.",
                n => (format!("{n} résultats, page {} sur {last}.", results.page)),
            }
        }
        div class="avec-facettes" {
            aside class="facettes" aria-label="Affiner la recherche" {
                h2 { "Affiner" }
                @for (facet, buckets) in &results.facets {
                    @let name = query_name(facet);
                    @if !buckets.is_empty() {
                        h3 { (facet_title(facet)) }
                        ul {
                            @for b in buckets {
                                @let active = params.get(name) == Some(b.value.as_str());
                                li {
                                    @if active {
                                        span class="actif" aria-current="true" { (b.label) " (" (b.count) ")" }
                                        " — " a href=(link(params, &[(name, None)], true)) { "retirer ce filtre" }
                                    } @else {
                                        a href=(link(params, &[(name, Some(&b.value))], true)) { (b.label) } " (" (b.count) ")"
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section aria-label="Résultats" {
                ol class="resultats" {
                    @for hit in &results.hits { li { (hit_item(hit)) } }
                }
                @if last > 1 {
                    nav aria-label="Pages de résultats" {
                        ul class="pagination" {
                            @if results.page > 1 {
                                li { a rel="prev" href=(link(params, &[("page", Some(&(results.page - 1).to_string()))], false)) { "Page précédente" } }
                            }
                            @if results.page < last {
                                li { a rel="next" href=(link(params, &[("page", Some(&(results.page + 1).to_string()))], false)) { "Page suivante" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One result: its title linked to its page, what it is, who signed it.
pub(super) fn hit_item(hit: &Hit) -> Markup {
    let author = hit.author.to_hex();
    html! {
        h3 { a href=(view::record_href(&author, &hit.record_id)) { (hit.title) } }
        p class="meta" {
            (hit.kind.label())
            @if let Some(name) = &hit.organisation_name {
                " · "
                @if let Some(siren) = &hit.organisation_siren {
                    a href=(format!("/organisations/{siren}")) { (name) }
                } @else { (name) }
            }
            @if hit.signature_verified { " · signature vérifiée" }
        }
    }
}

/// A facet's query parameter.
fn query_name(facet: &str) -> &str {
    match facet {
        "organisation" => "org",
        other => other,
    }
}

fn facet_title(facet: &str) -> &str {
    match facet {
        "kind" => "Type",
        "theme" => "Thème",
        "organisation" => "Organisation",
        "territory" => "Département",
        "status" => "Statut du projet",
        "risk" => "Catégorie de risque",
        other => other,
    }
}

/// This search's address with `changes` made (`None`: removed); a new
/// filter starts again from page 1.
fn link(params: &Params, changes: &[(&str, Option<&str>)], first_page: bool) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(q) = params.get("q") {
        pairs.push(("q".into(), q.into()));
    }
    for name in FILTERS {
        if let Some(v) = params.get(name) {
            pairs.push((name.into(), v.into()));
        }
    }
    if !first_page && let Some(p) = params.get("page") {
        pairs.push(("page".into(), p.into()));
    }
    for (name, value) in changes {
        pairs.retain(|(n, _)| n != name);
        if let Some(v) = value {
            pairs.push(((*name).into(), (*v).into()));
        }
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(n, v)| format!("{n}={}", view::encode(v)))
        .collect();
    format!("/recherche?{}", query.join("&"))
}
