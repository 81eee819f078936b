//! `/territoires/{code}`: a commune, an EPCI, a département or a région
//! (`Place::parse`: `31555`, `243100518`, `31`, `reg:76`), with the records
//! of every collectivity inside it, counts by theme and status, and the sums
//! of the environmental figures the public may see.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maillage_record::territory::Place;
use maud::{Markup, html};

use super::{Visitor, blocking, page, site_for, view};
use crate::http::Http;
use crate::search::{Filters, GroupBy, Results, SearchRequest, Stats};

/// Records listed on the page; the search lists the rest.
const SHOWN: usize = 20;
/// Signed aggregates shown on the page.
const AGGREGATES: usize = 5;

struct Territory {
    aggregates: Vec<crate::aggregate::Shown>,
    by_kind: Stats,
    by_theme: Stats,
    records: Results,
}

pub(super) async fn territory(
    State(http): State<Http>,
    visitor: Visitor,
    Path(code): Path<String>,
) -> Response {
    let site = site_for(&http, &visitor);
    let place = match Place::parse(&code) {
        Ok(p) => p,
        Err(why) => {
            return page(
                StatusCode::NOT_FOUND,
                view::problem(
                    &site,
                    "Territoire introuvable",
                    &format!(
                        "{why}. Un territoire s'écrit par son code : commune (code INSEE, 31555), \
                         EPCI (SIREN, 243100518), département (31) ou région (reg:76)."
                    ),
                ),
            );
        }
    };
    let _turn = match http.search_turn().await {
        Ok(t) => t,
        Err(busy) => return busy,
    };
    let node = http.node.clone();
    let filter = place.to_string();
    let viewer = visitor.viewer.clone();
    let reader = visitor.who().map(|(who, siren)| (who, siren.clone()));
    let found = blocking(&http, move || {
        let stored = node.store().last_seq();
        let filters = Filters {
            territory: Some(filter),
            ..Filters::default()
        };
        let e = |e: crate::search::SearchError| e.to_string();
        let by_kind = node
            .search()
            .stats(&filters, GroupBy::Kind, &viewer, stored)
            .map_err(e)?;
        let by_theme = node
            .search()
            .stats(&filters, GroupBy::Theme, &viewer, stored)
            .map_err(e)?;
        let req = SearchRequest {
            filters,
            page: 1,
            page_size: SHOWN,
            ..SearchRequest::default()
        };
        let mut records = node.search().search(&req, &viewer, stored).map_err(e)?;
        node.finish_hits(
            &viewer,
            &mut records.hits,
            reader.as_ref().map(|(w, s)| (w.as_str(), s)),
        )
        .map_err(|e| e.to_string())?;
        let aggregates = crate::aggregate::published(
            &node,
            &viewer,
            Some(&req.filters.territory.clone().unwrap_or_default()),
            AGGREGATES,
        )
        .map_err(|e| e.to_string())?;
        Ok(Territory {
            aggregates,
            by_kind,
            by_theme,
            records,
        })
    })
    .await;
    let t = match found {
        Ok(t) => t,
        Err(failed) => return failed,
    };
    let title = place.label();
    page(
        StatusCode::OK,
        view::page(&site, &title, "", territory_page(&title, &place, &t)),
    )
}

fn territory_page(title: &str, place: &Place, t: &Territory) -> Markup {
    let p = &t.by_kind.projects;
    let search = format!("/recherche?territory={}", view::encode(&place.to_string()));
    html! {
        h1 { (title) }
        p class="chapeau" {
            (t.by_kind.total) " enregistrements publics de collectivités de ce territoire, dont "
            (p.projects) " projets d'IA."
        }
        section aria-labelledby="chiffres" {
            h2 id="chiffres" { "En chiffres" }
            ul class="grille" {
                @for b in &t.by_kind.groups {
                    li class="carte-chiffre" { strong { (b.count) } (b.label) }
                }
                li class="carte-chiffre" {
                    strong { (format_number(p.energy_kwh_per_year)) " kWh/an" }
                    "consommation d'énergie déclarée (" (p.energy_reported) " projets)"
                }
                li class="carte-chiffre" {
                    strong { (format_number(p.emissions_kgco2e_per_year)) " kgCO₂e/an" }
                    "émissions déclarées (" (p.emissions_reported) " projets)"
                }
            }
        }
        @if !t.by_theme.groups.is_empty() {
            section aria-labelledby="themes" {
                h2 id="themes" { "Par thème" }
                table {
                    caption class="evitement" { "Enregistrements par thème" }
                    thead { tr { th scope="col" { "Thème" } th scope="col" { "Enregistrements" } } }
                    tbody {
                        @for b in &t.by_theme.groups {
                            tr { td { (b.label) } td { (b.count) } }
                        }
                    }
                }
            }
        }
        @if !p.by_status.is_empty() {
            section aria-labelledby="statuts" {
                h2 id="statuts" { "Projets par statut" }
                table {
                    caption class="evitement" { "Projets par statut" }
                    thead { tr { th scope="col" { "Statut" } th scope="col" { "Projets" } } }
                    tbody {
                        @for b in &p.by_status {
                            tr { td { (b.label) } td { (b.count) } }
                        }
                    }
                }
            }
        }
        @if !t.aggregates.is_empty() {
            (super::aggregate::section(&t.aggregates))
        }
        section aria-labelledby="enregistrements" {
            h2 id="enregistrements" { "Ses enregistrements" }
            ol class="resultats" {
                @for hit in &t.records.hits { li { (super::search::hit_item(hit)) } }
            }
            @if t.records.total > t.records.hits.len() as u64 {
                p { a href=(search) { "Tous les enregistrements de ce territoire" } }
            }
        }
    }
}

/// A figure with a thin space between thousands, no needless decimals.
fn format_number(x: f64) -> String {
    let whole = x.round() as i64;
    let digits = whole.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    if whole < 0 {
        out.insert(0, '-');
    }
    out
}
