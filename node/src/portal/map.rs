//! `/carte`: the public projects with coordinates, filterable by theme and
//! status. The page lists them (it works without JavaScript); a script,
//! the only one of the portal, draws them on a map with Leaflet (vendored,
//! BSD-2-Clause) over the configured tiles (`[portal] map_tiles`; default:
//! the IGN Géoplateforme's plan). Without tiles the map is blank and the
//! list remains.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maillage_record::Body;
use maillage_record::vocab::{ProjectStatus, ProjectTheme};
use maud::html;

use super::{Visitor, page, site_for, view};
use crate::http::{Http, text};
use crate::query_string::Params;

pub(super) async fn map(State(http): State<Http>, visitor: Visitor, params: Params) -> Response {
    let theme = params
        .get("theme")
        .and_then(|t| ProjectTheme::parse(t).ok());
    let status = params
        .get("status")
        .and_then(|s| ProjectStatus::parse(s).ok());
    let _turn = match http.export_turn().await {
        Ok(t) => t,
        Err(busy) => return busy,
    };
    let (node, exports) = (http.node.clone(), http.exports.clone());
    let found = tokio::task::spawn_blocking(move || {
        exports
            .index(&node)?
            .project_records(&node, super::projects::MAX_PROJECTS)
    })
    .await;
    let projects = match found {
        Ok(Ok((p, _))) => p,
        _ => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the record store failed; see the node's log\n",
            );
        }
    };
    let shown: Vec<_> = projects
        .iter()
        .filter_map(|(author, r)| match &r.body {
            Body::Project(p)
                if p.latitude.is_some()
                    && p.longitude.is_some()
                    && theme.is_none_or(|t| p.theme == Some(t))
                    && status.is_none_or(|s| p.status == s) =>
            {
                Some((author, r, p))
            }
            _ => None,
        })
        .collect();
    let site = site_for(&http, &visitor);
    let portal = &http.portal;
    let main = html! {
        h1 { "Carte des projets d'IA" }
        form action="/carte" method="get" {
            label for="theme" { "Thème" } " "
            select id="theme" name="theme" {
                option value="" { "Tous" }
                @for t in ProjectTheme::ALL {
                    option value=(t.as_str()) selected[theme == Some(*t)] { (t.label()) }
                }
            }
            " "
            label for="statut" { "Statut" } " "
            select id="statut" name="status" {
                option value="" { "Tous" }
                @for s in ProjectStatus::ALL {
                    option value=(s.as_str()) selected[status == Some(*s)] { (s.label()) }
                }
            }
            " "
            button type="submit" { "Filtrer" }
        }
        div id="carte" class="carte" hidden
            data-tuiles=[portal.map_tiles.as_deref()]
            data-attribution=(portal.map_attribution)
            role="region" aria-label="Carte des projets (la liste ci-dessous dit la même chose)" {}
        h2 {
            @match shown.len() {
                0 => "Aucun projet situé",
                1 => "1 projet situé",
                n => (format!("{n} projets situés")),
            }
        }
        ul class="projets-carte" {
            @for (author, r, p) in &shown {
                li data-lat=(p.latitude.unwrap_or_default()) data-lon=(p.longitude.unwrap_or_default()) {
                    a href=(view::record_href(author, &r.record_id)) { (p.name) }
                    span class="meta" {
                        @if let Some(o) = &p.organisation_name { " · " (o) }
                        " · " (p.status.label())
                        @if let Some(t) = p.theme { " · " (t.label()) }
                    }
                }
            }
        }
        p { "Les mêmes projets en fichiers : " a href="/projets.geojson" { "GeoJSON" } ", " a href="/projets.csv" download="projets.csv" { "CSV (format de la bibliothèque des projets IA)" } "." }
    };
    let head = html! {
        link rel="stylesheet" href="/static/leaflet/leaflet.css";
        script src="/static/leaflet/leaflet.js" defer {}
        script src="/static/carte.js" defer {}
    };
    let mut response = page(
        StatusCode::OK,
        view::page_with(&site, "Carte des projets", "", head, main),
    );
    // The tiles' host may serve images to this page, and nothing more.
    let tiles = portal
        .map_tiles
        .as_deref()
        .and_then(|t| {
            let rest = t.strip_prefix("https://")?;
            Some(format!(" https://{}", rest.split(['/', '?']).next()?))
        })
        .unwrap_or_default();
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:{tiles}; \
         connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
    response
}

/// The portal's one script, and the map library it drives.
pub(super) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("carte.js"))
}

pub(super) async fn leaflet_js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("vendor/leaflet/leaflet.js"),
    )
}

pub(super) async fn leaflet_css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("vendor/leaflet/leaflet.css"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
