//! `/`: what the node holds, a search box, and a way in by territory.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maillage_record::{Body, Kind};
use maud::html;

use super::{Visitor, blocking, page, site_for, view};
use crate::export::Exports;
use crate::http::Http;
use crate::node::Node;
use crate::search::{Bucket, Filters, GroupBy};
use crate::store::StoreError;
use crate::viewer::Viewer;

/// What the home page shows.
struct Home {
    total: u64,
    by_kind: Vec<Bucket>,
    by_theme: Vec<Bucket>,
    by_territory: Vec<Bucket>,
    latest: Vec<Latest>,
}

/// A public dataset or project among the last this node received.
struct Latest {
    author: String,
    record_id: String,
    title: String,
    kind: Kind,
    organisation: Option<String>,
    received_at_ms: i64,
}

/// Records shown as the latest.
const LATEST: usize = 8;
/// Changes looked at to find them: the latest of a node that received
/// only private records or memberships lately may be fewer.
const LATEST_LOOKED_AT: u64 = 500;

/// The public datasets and projects last received, newest first, each in
/// its current version.
fn latest(node: &Arc<Node>, exports: &Arc<Exports>) -> Result<Vec<Latest>, StoreError> {
    let store = node.store();
    let last = store.last_seq();
    let changes = store.changes_since(
        last.saturating_sub(LATEST_LOOKED_AT),
        LATEST_LOOKED_AT as usize,
    )?;
    let ids: Vec<_> = changes.iter().map(|c| c.id).collect();
    let items = store.sync_items_many(&ids)?;
    let index = exports.index(node)?;
    let mut out = Vec::new();
    for (change, item) in changes.iter().zip(items).rev() {
        if out.len() == LATEST {
            break;
        }
        let Some(item) = item else { continue };
        if !Viewer::Anonymous.may_see(&item.author, &item.visibility) {
            continue;
        }
        // One read: the record, and when it was received.
        let Some(stored) = store.get(&change.id)? else {
            continue;
        };
        let Ok(record) = maillage_record::envelope::decode_stored(&stored.bytes) else {
            continue;
        };
        let title = match &record.body {
            Body::Dataset(d) => d.title.clone(),
            Body::Project(p) => p.name.clone(),
            _ => continue,
        };
        // A version replaced since is not shown; a record received twice
        // (two versions lately) is shown once.
        let current = store.current(&item.author, &record.record_id)?;
        if current.is_none_or(|c| c.id != change.id) {
            continue;
        }
        let author = item.author.to_hex();
        out.push(Latest {
            organisation: index.organisation(&author).map(|a| a.name.clone()),
            author,
            record_id: record.record_id.clone(),
            title,
            kind: record.kind(),
            received_at_ms: stored.received_at_ms,
        });
    }
    Ok(out)
}

pub(super) async fn home(State(http): State<Http>, visitor: Visitor) -> Response {
    let _turn = match http.search_turn().await {
        Ok(t) => t,
        Err(busy) => return busy,
    };
    let (node, exports) = (http.node.clone(), http.exports.clone());
    let viewer = visitor.viewer.clone();
    let found = blocking(&http, move || {
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
        let latest = latest(&node, &exports).map_err(|e| e.to_string())?;
        Ok(Home {
            total: kinds.total,
            by_kind: kinds.groups,
            by_theme: themes.groups,
            by_territory: territories.groups,
            latest,
        })
    })
    .await;
    let home = match found {
        Ok(h) => h,
        Err(failed) => return failed,
    };
    let site = site_for(&http, &visitor);
    let main = html! {
        h1 { "Le catalogue des collectivités, vu de " (site.name) }
        p class="chapeau" {
            "Jeux de données et projets d'intelligence artificielle des collectivités de la fédération, "
            "chacun signé par la collectivité qui le publie. "
            (home.total)
            @if site.account.is_some() { " enregistrements que vous pouvez voir." } @else { " enregistrements publics." }
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
        @if !home.latest.is_empty() {
            section aria-labelledby="derniers" {
                h2 id="derniers" { "Derniers enregistrements reçus" }
                ol class="resultats" {
                    @for l in &home.latest {
                        li {
                            h3 { a href=(view::record_href(&l.author, &l.record_id)) { (l.title) } }
                            p class="meta" {
                                (l.kind.label())
                                @if let Some(o) = &l.organisation { " · " (o) }
                                " · reçu le " (view::when(l.received_at_ms))
                            }
                        }
                    }
                }
                p { a href="/recherche" { "Tout le catalogue" } }
            }
        }
    };
    page(StatusCode::OK, view::page(&site, "Accueil", "", main))
}
