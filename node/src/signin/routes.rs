//! The sign-in's pages:
//!
//!   GET  /connexion?retour=PATH   sends the agent to the identity provider
//!   GET  /connexion/retour        where the provider sends the agent back
//!   GET  /compte                  who is signed in, for which organisation,
//!                                 and what that lets the agent see
//!   POST /deconnexion             signs out (the form carries the session's
//!                                 CSRF token)
//!
//! Every failure is a French page that says what happened and what to do;
//! nothing of the provider's answer is shown as markup.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::SignInError;
use crate::http::Http;
use crate::portal::{self, Visitor, view};
use crate::query_string::Params;
use crate::viewer::Viewer;

/// A redirection that also sets cookies.
fn redirect(to: &str, cookies: &[String]) -> Response {
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response();
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

fn problem(http: &Http, visitor: &Visitor, status: StatusCode, title: &str, why: &str) -> Response {
    portal::page(
        status,
        view::problem(&portal::site_for(http, visitor), title, why),
    )
}

fn not_configured(http: &Http, visitor: &Visitor) -> Response {
    problem(
        http,
        visitor,
        StatusCode::NOT_FOUND,
        "Connexion indisponible",
        "Ce nœud ne propose pas de connexion : son opérateur n'a pas configuré de fournisseur d'identité ([signin]).",
    )
}

pub(crate) async fn begin(State(http): State<Http>, visitor: Visitor, params: Params) -> Response {
    let Some(signin) = http.signin.clone() else {
        return not_configured(&http, &visitor);
    };
    let return_to = params.get("retour").unwrap_or("/");
    match signin.begin(return_to).await {
        Ok((url, cookie)) => redirect(&url, &[cookie]),
        Err(SignInError::Busy) => problem(
            &http,
            &visitor,
            StatusCode::SERVICE_UNAVAILABLE,
            "Trop de connexions en cours",
            "Ce nœud reçoit trop de demandes de connexion à la fois. Réessayez dans un instant.",
        ),
        Err(e) => {
            tracing::error!(error = %e, "sign-in could not start");
            problem(
                &http,
                &visitor,
                StatusCode::BAD_GATEWAY,
                "Fournisseur d'identité injoignable",
                "Le fournisseur d'identité de ce nœud ne répond pas comme prévu. Réessayez plus tard ; \
                 si cela dure, prévenez l'opérateur du nœud.",
            )
        }
    }
}

pub(crate) async fn back(
    State(http): State<Http>,
    visitor: Visitor,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let Some(signin) = http.signin.clone() else {
        return not_configured(&http, &visitor);
    };
    if let Some(error) = params.get("error") {
        // The agent declined, or the provider refused: said as the
        // provider's code, as text.
        let why = format!(
            "Le fournisseur d'identité n'a pas accepté la connexion ({error}). Vous pouvez réessayer."
        );
        return problem(
            &http,
            &visitor,
            StatusCode::BAD_REQUEST,
            "Connexion refusée",
            &why,
        );
    }
    let (Some(code), Some(state)) = (params.get("code"), params.get("state")) else {
        return problem(
            &http,
            &visitor,
            StatusCode::BAD_REQUEST,
            "Connexion incomplète",
            "Le retour du fournisseur d'identité ne porte ni code ni état. Recommencez la connexion.",
        );
    };
    let login_cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .find_map(|h| signin.login_cookie(h));
    match signin.finish(code, state, login_cookie).await {
        Ok((session, return_to)) => {
            let known = session.siren == *http.node.siren()
                || maillage_record::territory::by_siren(session.siren.as_str()).is_some()
                || matches!(
                    http.node.agent_viewer(session.siren.clone()),
                    Viewer::Agent { member: true, .. }
                );
            if !known {
                // Signed in, but for an organisation the federation does not
                // know: no session is opened.
                let why = format!(
                    "Votre fournisseur d'identité vous rattache au SIREN {}, que la fédération ne connaît pas \
                     (ni collectivité de la liste de référence, ni membre). Demandez à l'opérateur du nœud \
                     de l'ajouter.",
                    session.siren
                );
                let mut r = problem(
                    &http,
                    &visitor,
                    StatusCode::FORBIDDEN,
                    "Organisation inconnue",
                    &why,
                );
                if let Ok(v) = HeaderValue::from_str(&signin.login_done()) {
                    r.headers_mut().append(header::SET_COOKIE, v);
                }
                return r;
            }
            tracing::info!(siren = %session.siren, "an agent signed in");
            match signin.open(session) {
                Ok(cookie) => redirect(&return_to, &[cookie, signin.login_done()]),
                Err(_) => problem(
                    &http,
                    &visitor,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Trop de sessions ouvertes",
                    "Ce nœud tient trop de sessions à la fois. Réessayez dans un instant.",
                ),
            }
        }
        Err(e) => {
            let (status, title, why) = match &e {
                SignInError::UnknownState => (
                    StatusCode::BAD_REQUEST,
                    "Connexion inconnue ou expirée",
                    "Cette connexion n'a pas été commencée dans ce navigateur, a expiré ou a déjà servi. \
                     Recommencez-la depuis le lien « Se connecter »."
                        .to_string(),
                ),
                SignInError::BadSiret(s) => (
                    StatusCode::FORBIDDEN,
                    "SIRET non valide",
                    format!(
                        "Votre fournisseur d'identité vous rattache au SIRET « {s} », qui n'est pas un SIRET \
                         valide (14 chiffres, clé de Luhn). Vérifiez votre organisation auprès de lui."
                    ),
                ),
                SignInError::NoSiret(_) => (
                    StatusCode::FORBIDDEN,
                    "Organisation non précisée",
                    "Votre fournisseur d'identité ne dit pas à quelle organisation vous appartenez (SIRET) : \
                     la connexion ne peut pas se faire."
                        .to_string(),
                ),
                _ => (
                    StatusCode::BAD_GATEWAY,
                    "Connexion impossible",
                    "La réponse du fournisseur d'identité n'a pas pu être vérifiée. Recommencez ; si cela \
                     dure, prévenez l'opérateur du nœud."
                        .to_string(),
                ),
            };
            tracing::warn!(error = %e, "a sign-in failed");
            let mut r = problem(&http, &visitor, status, title, &why);
            if let Ok(v) = HeaderValue::from_str(&signin.login_done()) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
    }
}

pub(crate) async fn account(State(http): State<Http>, visitor: Visitor) -> Response {
    let site = portal::site_for(&http, &visitor);
    let Some((_, session)) = &visitor.session else {
        let main = html! {
            h1 { "Mon compte" }
            p { "Vous n'êtes pas connecté·e." }
            @if http.signin.is_some() {
                p { a href="/connexion?retour=%2Fcompte" { "Se connecter" } }
            }
        };
        return portal::page(StatusCode::OK, view::page(&site, "Mon compte", "", main));
    };
    let member = matches!(visitor.viewer, Viewer::Agent { member: true, .. });
    let organisation = maillage_record::territory::by_siren(session.siren.as_str())
        .map(|c| c.name.clone())
        .unwrap_or_else(|| format!("SIREN {}", session.siren));
    let main = html! {
        h1 { "Mon compte" }
        dl class="champs" {
            dt { "Connecté·e" } dd { (session.name) }
            dt { "Organisation" } dd {
                a href=(format!("/organisations/{}", session.siren)) { (organisation) }
                " (SIRET " (session.siret) ")"
            }
            dt { "Ce que vous voyez" } dd {
                "les enregistrements publics ; ceux réservés à votre organisation"
                @if member { " ; ceux réservés aux membres de la fédération, votre organisation en étant membre" }
                @else { " (votre organisation n'est pas membre de la fédération : les enregistrements réservés aux membres ne vous sont pas montrés)" }
                "."
            }
        }
        form method="post" action="/deconnexion" {
            input type="hidden" name="csrf" value=(session.csrf);
            button type="submit" { "Se déconnecter" }
        }
    };
    portal::page(StatusCode::OK, view::page(&site, "Mon compte", "", main))
}

pub(crate) async fn sign_out(
    State(http): State<Http>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> Response {
    let (Some(signin), Some((id, session))) = (http.signin.clone(), &visitor.session) else {
        return redirect("/", &[]);
    };
    if let Err(refused) = form_from_here(
        &http,
        &visitor,
        &headers,
        form.get("csrf").map(String::as_str),
        session,
    ) {
        return *refused;
    }
    redirect("/", &[signin.end(id)])
}

/// A form of `session` as this portal sent it: from this portal's pages
/// (`same_origin`) and carrying the session's CSRF token; else the page
/// that refuses it.
pub(crate) fn form_from_here(
    http: &Http,
    visitor: &Visitor,
    headers: &HeaderMap,
    csrf: Option<&str>,
    session: &super::Session,
) -> Result<(), Box<Response>> {
    if same_origin(http, headers) && csrf == Some(session.csrf.as_str()) {
        return Ok(());
    }
    Err(Box::new(problem(
        http,
        visitor,
        StatusCode::FORBIDDEN,
        "Demande refusée",
        "Ce formulaire ne vient pas de ce site, ou a expiré. Revenez à la page et réessayez.",
    )))
}

/// Whether a form was sent from this portal: its Origin (or, lacking one,
/// its Referer) is the portal's own address. A form without either is let
/// through to the CSRF token's check.
pub(crate) fn same_origin(http: &Http, headers: &HeaderMap) -> bool {
    let own = origin_of(&http.public_url);
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    match header(header::ORIGIN).or(header(header::REFERER)) {
        Some(from) => origin_of(from) == own,
        None => true,
    }
}

/// scheme://host[:port] of an address.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    )
}
