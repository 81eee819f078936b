//! `/membres` (issue 23): the members view for the node's own agents (the
//! chef de file's) and its moderators: the collectivities of its scope,
//! which run a node, what the agent may see of each here, which have no
//! catalogue yet. Counts are the agent's (`Viewer::Agent`), not the
//! operator's.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::{Visitor, blocking, page, site_for, view};
use crate::http::Http;
use crate::members::ScopeFrom;

pub(super) async fn members(State(http): State<Http>, visitor: Visitor) -> Response {
    let Some((_, session)) = &visitor.session else {
        return (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, "/connexion?retour=%2Fmembres")],
        )
            .into_response();
    };
    let site = site_for(&http, &visitor);
    if session.siren != *http.node.siren() && !session.moderator {
        return page(
            StatusCode::FORBIDDEN,
            view::problem(
                &site,
                "Réservé à l'organisation du nœud",
                "La vue des membres est celle des agents de l'organisation qui tient ce nœud et de ses modérateurs.",
            ),
        );
    }
    let _turn = match http.search_turn().await {
        Ok(t) => t,
        Err(busy) => return busy,
    };
    let (node, viewer) = (http.node.clone(), visitor.viewer.clone());
    let found = match blocking(&http, move || {
        crate::members::members(&node, None, &viewer).map_err(|e| e.to_string())
    })
    .await
    {
        Ok(m) => m,
        Err(failed) => return failed,
    };
    let scope: Vec<String> = found
        .scope
        .iter()
        .map(|s| {
            maillage_record::territory::coverage(s)
                .ok()
                .and_then(|p| p.first().map(|p| p.label()))
                .unwrap_or_else(|| format!("SIREN {s}"))
        })
        .collect();
    let main = html! {
        h1 { "Membres" }
        p {
            @match found.from {
                ScopeFrom::Membership => { "Le périmètre que l'adhésion de chef de file de ce nœud lui donne : " }
                _ => { "Le territoire de l'organisation qui tient ce nœud (aucune adhésion de chef de file ne lui donne de périmètre) : " }
            }
            (scope.join(", ")) "."
        }
        p role="status" {
            (found.members.len()) " collectivités ; "
            (found.running_a_node()) " tiennent un nœud auquel ce nœud fait confiance ; "
            (found.without_catalogue()) " n'ont encore ni jeu de données ni projet ici."
        }
        table {
            thead { tr {
                th scope="col" { "Collectivité" } th scope="col" { "SIREN" } th scope="col" { "Type" }
                th scope="col" { "Nœud" } th scope="col" { "Jeux de données" } th scope="col" { "Projets" }
                th scope="col" { "Réutilisations" } th scope="col" { "Publiés par ce nœud" }
                th scope="col" { "Dernier enregistrement reçu" }
            } }
            tbody {
                @for m in &found.members {
                    tr {
                        td { a href=(format!("/organisations/{}", m.siren)) { (m.name) } }
                        td { (m.siren) }
                        td { (m.kind.map_or("", |k| k.label())) }
                        td { @if m.runs_node { "oui" } @else { "non" } }
                        td { (m.activity.datasets) }
                        td { (m.activity.projects) }
                        td { (m.activity.reuses) }
                        td { (m.activity.through_own) }
                        td {
                            @if m.activity.last_received_ms > 0 { (view::when(m.activity.last_received_ms)) }
                            @else { "—" }
                        }
                    }
                }
            }
        }
    };
    page(StatusCode::OK, view::page(&site, "Membres", "", main))
}
