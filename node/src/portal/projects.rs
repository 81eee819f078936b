//! The public projects as files existing widgets read: `/projets.csv` in
//! the column layout of the bibliothèque des projets IA's own export (what
//! `maillage import bibliotheque-ia` reads back), and `/projets.geojson` for
//! maps. Both from the export's index: no scan of the store.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maillage_record::{Body, Record};

use super::view;
use crate::http::{Http, text};

/// Projects a file holds at most: a larger federation is cut there, and
/// the `X-Total-Count` header says how many there are.
pub const MAX_PROJECTS: usize = 20_000;

pub(super) async fn csv(State(http): State<Http>) -> Response {
    let node = http.node.clone();
    file(&http, move |projects| {
        // A project without a SIRET is its organisation's: on whose behalf
        // it is published, else whom its author speaks for.
        let sirens: Vec<Option<String>> = projects
            .iter()
            .map(|(author, r)| {
                let key = maillage_record::PublicKey::parse_hex(author).ok()?;
                let behalf = r
                    .provenance
                    .as_ref()
                    .and_then(|p| p.on_behalf_of.as_ref())
                    .and_then(|a| a.siren.clone());
                match behalf {
                    Some(s) if node.publishes_for_others(&key) => Some(s),
                    _ => node.speaks_for(&key).map(|(s, _)| s.to_string()),
                }
            })
            .collect();
        let bodies: Vec<(&maillage_record::model::Project, Option<&str>)> = projects
            .iter()
            .zip(&sirens)
            .filter_map(|((_, r), siren)| match &r.body {
                Body::Project(p) => Some((p, siren.as_deref())),
                _ => None,
            })
            .collect();
        (
            "text/csv; charset=utf-8",
            maillage_import::bibliotheque_csv(&bodies),
        )
    })
    .await
}

pub(super) async fn geojson(State(http): State<Http>) -> Response {
    file(&http, |projects| {
        let features: Vec<serde_json::Value> = projects
            .iter()
            .filter_map(|(author, r)| feature(author, r))
            .collect();
        let doc = serde_json::json!({"type": "FeatureCollection", "features": features});
        (
            "application/geo+json",
            serde_json::to_vec(&doc).unwrap_or_default(),
        )
    })
    .await
}

/// A project with coordinates as a GeoJSON point (longitude first), with
/// what a map's popup shows.
pub(super) fn feature(author: &str, record: &Record) -> Option<serde_json::Value> {
    let Body::Project(p) = &record.body else {
        return None;
    };
    let (lat, lon) = (p.latitude?, p.longitude?);
    Some(serde_json::json!({
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {
            "name": p.name,
            "organisation": p.organisation_name,
            "status": p.status.label(),
            "theme": p.theme.map(|t| t.label()),
            "page": view::record_href(author, &record.record_id),
        },
    }))
}

async fn file(
    http: &Http,
    write: impl FnOnce(&[(String, Record)]) -> (&'static str, Vec<u8>) + Send + 'static,
) -> Response {
    let _turn = match http.export_turn().await {
        Ok(t) => t,
        Err(busy) => return busy,
    };
    let (node, exports) = (http.node.clone(), http.exports.clone());
    let made = tokio::task::spawn_blocking(move || {
        let (projects, total) = exports.index(&node)?.project_records(&node, MAX_PROJECTS)?;
        Ok::<_, crate::store::StoreError>((write(&projects), total))
    })
    .await;
    match made {
        Ok(Ok(((content_type, body), total))) => {
            let mut r = ([(header::CONTENT_TYPE, content_type)], body).into_response();
            r.headers_mut().insert(
                header::HeaderName::from_static("x-total-count"),
                HeaderValue::from(total),
            );
            r
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "projects file failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the record store failed; see the node's log\n",
            )
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "export task failed\n"),
    }
}
