//! `/organisations/{siren}`: an organisation's public records, and its
//! register of algorithms and AI projects with the transparency fields a
//! public body must publish (risk category, human oversight, legal basis,
//! how to object, contact).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maillage_record::territory::Place;
use maillage_record::{Body, Record, Siren};
use maud::{Markup, html};

use super::{Visitor, blocking, labels, page, site_for, view};
use crate::http::Http;
use crate::search::{Filters, Hit, SearchRequest};

/// Records listed on the page, most relevant first.
const SHOWN: usize = 100;

struct Organisation {
    name: Option<String>,
    total: u64,
    hits: Vec<Hit>,
    /// The projects among the hits, with their record.
    projects: Vec<(Hit, Record)>,
}

pub(super) async fn organisation(
    State(http): State<Http>,
    visitor: Visitor,
    Path(siren): Path<String>,
) -> Response {
    let site = site_for(&http, &visitor);
    let Ok(siren) = Siren::parse(&siren) else {
        return page(
            StatusCode::NOT_FOUND,
            view::problem(
                &site,
                "Organisation introuvable",
                &format!("« {siren} » n'est pas un numéro SIREN valide (9 chiffres, clé de Luhn)."),
            ),
        );
    };
    let _turn = match http.search_turn().await {
        Ok(t) => t,
        Err(busy) => return busy,
    };
    let node = http.node.clone();
    let wanted = siren.to_string();
    let viewer = visitor.viewer.clone();
    let reader = visitor.who().map(|(who, siren)| (who, siren.clone()));
    let found = blocking(&http, move || {
        let req = SearchRequest {
            filters: Filters {
                organisation: Some(wanted),
                ..Filters::default()
            },
            page: 1,
            page_size: SHOWN,
            ..SearchRequest::default()
        };
        let mut results = node
            .search()
            .search(&req, &viewer, node.store().last_seq())
            .map_err(|e| e.to_string())?;
        node.finish_hits(
            &viewer,
            &mut results.hits,
            reader.as_ref().map(|(w, s)| (w.as_str(), s)),
        )
        .map_err(|e| e.to_string())?;
        let mut projects = Vec::new();
        for hit in &results.hits {
            if hit.kind != maillage_record::Kind::Project {
                continue;
            }
            if let Some(record) = node.store().record(&hit.id).map_err(|e| e.to_string())? {
                projects.push((hit.clone(), record));
            }
        }
        Ok(Organisation {
            name: results
                .hits
                .iter()
                .find_map(|h| h.organisation_name.clone()),
            total: results.total,
            hits: results.hits,
            projects,
        })
    })
    .await;
    let org = match found {
        Ok(o) => o,
        Err(failed) => return failed,
    };
    let title = org
        .name
        .clone()
        .unwrap_or_else(|| format!("Organisation {siren}"));
    page(
        StatusCode::OK,
        view::page(&site, &title, "", organisation_page(&title, &siren, &org)),
    )
}

fn organisation_page(title: &str, siren: &Siren, org: &Organisation) -> Markup {
    html! {
        h1 { (title) }
        p class="chapeau" {
            "SIREN " (siren.as_str()) " · " (org.total) " enregistrements publics connus de ce nœud."
        }
        @let places: std::collections::BTreeSet<Place> = Place::of_siren(siren.as_str()).iter().flat_map(Place::with_ancestors).collect();
        @if !places.is_empty() {
            nav aria-label="Territoires de l'organisation" {
                p {
                    "Ses territoires : "
                    @for (i, p) in places.iter().enumerate() {
                        @if i > 0 { " · " }
                        a href=(view::territory_href(p)) { (p.label()) }
                    }
                }
            }
        }
        @if org.total == 0 {
            p { "Ce nœud ne connaît aucun enregistrement public de cette organisation." }
        }
        @if !org.projects.is_empty() {
            section aria-labelledby="registre" {
                h2 id="registre" { "Registre des algorithmes et projets d'IA" }
                p {
                    "Ce que l'organisation publie de chacun de ses projets : à quoi il sert, "
                    "le risque au sens du règlement européen sur l'IA, le contrôle humain, "
                    "la base légale, et comment s'y opposer."
                }
                @for (hit, record) in &org.projects {
                    (register_entry(hit, record))
                }
            }
        }
        section aria-labelledby="enregistrements" {
            h2 id="enregistrements" { "Ses enregistrements" }
            ol class="resultats" {
                @for hit in &org.hits { li { (super::search::hit_item(hit)) } }
            }
            @if org.total > org.hits.len() as u64 {
                p { a href=(format!("/recherche?org={}", siren.as_str())) { "Tous ses enregistrements" } }
            }
        }
    }
}

/// One project of the register: its transparency fields in plain French;
/// what the project does not say is said to be missing, not left out.
fn register_entry(hit: &Hit, record: &Record) -> Markup {
    let Body::Project(p) = &record.body else {
        return html! {};
    };
    let missing = "non renseigné";
    let or_missing = |v: &Option<String>| v.clone().unwrap_or_else(|| missing.to_string());
    let href = view::record_href(&hit.author.to_hex(), &record.record_id);
    html! {
        article {
            h3 { a href=(href) { (p.name) } }
            dl class="champs" {
                dt { (labels::field("status").unwrap_or_default()) } dd { (p.status.label()) }
                dt { (labels::field("description").unwrap_or_default()) } dd class="texte" { (p.description) }
                dt { (labels::field("risk_category").unwrap_or_default()) }
                dd { (p.risk_category.map_or(missing, |r| r.label())) }
                dt { (labels::field("human_oversight").unwrap_or_default()) } dd class="texte" { (or_missing(&p.human_oversight)) }
                dt { (labels::field("legal_basis").unwrap_or_default()) } dd class="texte" { (or_missing(&p.legal_basis)) }
                dt { (labels::field("objection_procedure").unwrap_or_default()) } dd class="texte" { (or_missing(&p.objection_procedure)) }
                dt { "Contact" } dd {
                    @match &p.website {
                        Some(w) if maillage_record::model::is_http_url(w) => { a href=(w) rel="nofollow noopener" { (w) } }
                        _ => { (missing) }
                    }
                }
            }
        }
    }
}
