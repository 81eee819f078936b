//! `/`: what the node holds, a search box, and a way in by territory.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::{blocking, page, site, view};
use crate::http::Http;
use crate::search::{Bucket, Filters, GroupBy, Hit, SearchRequest};
use crate::viewer::Viewer;

/// What the home page shows.
struct Home {
    total: u64,
    by_kind: Vec<Bucket>,
    by_theme: Vec<Bucket>,
    by_territory: Vec<Bucket>,
    some: Vec<Hit>,
}

pub(super) async fn home(State(http): State<Http>) -> Response {
    let _turn = match http.search_turn().await {
        Ok(t) => t,
        Err(busy) => return busy,
    };
    let node = http.node.clone();
    let found = blocking(&http, move || {
        let viewer = Viewer::Anonymous;
        let stored = node.store().last_seq();
        let all = Filters::default();
        let count = |by| {
            node.search()
                .stats(&all, by, &viewer, stored)
                .map_err(|e| e.to_string())
        };
        let kinds = count(GroupBy::Kind)?;
        let themes = count(GroupBy::Theme)?;
        let territories = count(GroupBy::Territory)?;
        let req = SearchRequest {
            page: 1,
            page_size: 10,
            ..SearchRequest::default()
        };
        let mut some = node
            .search()
            .search(&req, &viewer, stored)
            .map_err(|e| e.to_string())?;
        node.finish_hits(&viewer, &mut some.hits)
            .map_err(|e| e.to_string())?;
        Ok(Home {
            total: kinds.total,
            by_kind: kinds.groups,
            by_theme: themes.groups,
            by_territory: territories.groups,
            some: some.hits,
        })
    })
    .await;
    let home = match found {
        Ok(h) => h,
        Err(failed) => return failed,
    };
    let site = site(&http);
    let main = html! {
        h1 { "Le catalogue des collectivités, vu de " (site.name) }
        p class="chapeau" {
            "Jeux de données et projets d'intelligence artificielle des collectivités de la fédération, "
            "chacun signé par la collectivité qui le publie. "
            (home.total) " enregistrements publics."
        }
        section aria-labelledby="par-type" {
            h2 id="par-type" { "Par type" }
            ul class="grille" {
                @for b in &home.by_kind {
                    li class="carte-chiffre" {
                        strong { (b.count) }
                        a href=(format!("/recherche?kind={}", view::encode(&b.value))) { (b.label) }
                    }
                }
            }
        }
        @if !home.by_theme.is_empty() {
            section aria-labelledby="par-theme" {
                h2 id="par-theme" { "Par thème" }
                ul {
                    @for b in home.by_theme.iter().take(15) {
                        li { a href=(format!("/recherche?theme={}", view::encode(&b.value))) { (b.label) } " (" (b.count) ")" }
                    }
                }
            }
        }
        @if !home.by_territory.is_empty() {
            section aria-labelledby="par-territoire" {
                h2 id="par-territoire" { "Par territoire" }
                form action="/recherche" method="get" {
                    label for="territoire" { "Choisir un département" }
                    " "
                    select id="territoire" name="territory" {
                        @for b in &home.by_territory {
                            option value=(b.value) { (b.label) " (" (b.count) ")" }
                        }
                    }
                    " "
                    button type="submit" { "Voir ses enregistrements" }
                }
            }
        }
        @if !home.some.is_empty() {
            section aria-labelledby="dans-le-catalogue" {
                h2 id="dans-le-catalogue" { "Dans le catalogue" }
                ol class="resultats" {
                    @for hit in &home.some { li { (super::search::hit_item(hit)) } }
                }
                p { a href="/recherche" { "Tout le catalogue" } }
            }
        }
    };
    page(StatusCode::OK, view::page(&site, "Accueil", "", main))
}
