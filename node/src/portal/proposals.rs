//! Proposals in the portal (issue 22):
//!
//!   GET  /propositions                   the agent's organisation's proposals;
//!                                        for a moderator, those waiting
//!   GET  /propositions/nouvelle?type=projet|jeu
//!                                        the form (a project, or a dataset)
//!   POST /propositions                   sends a proposal
//!   POST /propositions/{id}/decision     a moderator accepts or refuses
//!
//! Every form carries the session's CSRF token and must come from this
//! portal (`signin::routes::same_origin`).

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maillage_record::vocab::{ProjectStatus, ProjectTheme};
use maud::{Markup, html};

use super::{Visitor, page, site_for, view};
use crate::http::Http;
use crate::proposals::{Proposal, ProposalError, State as ProposalState};
use crate::query_string::Params;
use crate::signin::Session;

fn to(path: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, path.to_string())],
    )
        .into_response()
}

fn problem(http: &Http, visitor: &Visitor, status: StatusCode, title: &str, why: &str) -> Response {
    page(status, view::problem(&site_for(http, visitor), title, why))
}

/// The session, or the way to sign in and come back (boxed: a response is
/// large beside a reference).
fn signed_in<'a>(visitor: &'a Visitor, back: &str) -> Result<&'a Session, Box<Response>> {
    match &visitor.session {
        Some((_, s)) => Ok(s),
        None => Err(Box::new(to(&format!(
            "/connexion?retour={}",
            view::encode(back)
        )))),
    }
}

fn organisation_name(siren: &maillage_record::Siren) -> String {
    maillage_record::territory::by_siren(siren.as_str())
        .map(|c| c.name.clone())
        .unwrap_or_else(|| format!("SIREN {siren}"))
}

pub(super) async fn list(State(http): State<Http>, visitor: Visitor, params: Params) -> Response {
    let session = match signed_in(&visitor, "/propositions") {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let own = http.node.proposals().list(true, Some(&session.siren));
    let waiting = if session.moderator {
        http.node.proposals().list(false, None)
    } else {
        Vec::new()
    };
    let sent = params.get("envoyee");
    let main = html! {
        h1 { "Propositions" }
        @if let Some(id) = sent {
            p class="confirmation" role="status" {
                "Votre proposition " code { (id) } " est envoyée : elle attend la décision d'un modérateur."
            }
        }
        p {
            "Proposez un projet ou un jeu de données de " (organisation_name(&session.siren))
            " : une fois acceptée, la proposition est publiée par ce nœud, signée de sa clé, au nom de votre organisation."
        }
        ul {
            li { a href="/propositions/nouvelle?type=projet" { "Proposer un projet d'IA" } }
            li { a href="/propositions/nouvelle?type=jeu" { "Proposer un jeu de données" } }
        }
        @if session.moderator {
            section aria-labelledby="a-moderer" {
                h2 id="a-moderer" { "À modérer (" (waiting.len()) ")" }
                @if waiting.is_empty() { p { "Aucune proposition n'attend." } }
                @for p in &waiting {
                    @let existing = http.node.store().current(&http.node.public_key(), &p.record_id).ok().flatten();
                    (moderation(p, &session.csrf, existing.is_some()))
                }
            }
        }
        section aria-labelledby="les-votres" {
            h2 id="les-votres" { "Celles de votre organisation" }
            @if own.is_empty() { p { "Aucune proposition pour l'instant." } }
            @else {
                table {
                    thead { tr { th scope="col" { "Titre" } th scope="col" { "Type" } th scope="col" { "Proposée le" } th scope="col" { "État" } } }
                    tbody {
                        @for p in &own {
                            tr {
                                td {
                                    @if p.state == ProposalState::Accepted {
                                        a href=(view::record_href(&http.node.public_key().to_hex(), &p.record_id)) { (p.title) }
                                    } @else { (p.title) }
                                }
                                td { (kind_label(&p.kind)) }
                                td { (view::when(p.created_at_ms)) }
                                td {
                                    (p.state.label())
                                    @if p.state == ProposalState::Refused && !p.reason.is_empty() { " : " span class="texte" { (p.reason) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(
        StatusCode::OK,
        view::page(&site_for(&http, &visitor), "Propositions", "", main),
    )
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "project" => "Projet IA",
        _ => "Jeu de données",
    }
}

/// A waiting proposal, with what it says and the moderator's two buttons.
fn moderation(p: &Proposal, csrf: &str, replaces: bool) -> Markup {
    let action = format!("/propositions/{}/decision", p.id);
    html! {
        article class="proposition" aria-labelledby=(format!("p-{}", p.id)) {
            h3 id=(format!("p-{}", p.id)) { (kind_label(&p.kind)) " : " (p.title) }
            p class="meta" { "proposé par " (p.agent) " pour " (p.organisation) " (SIREN " (p.siren) "), le " (view::when(p.created_at_ms)) }
            p class="meta" {
                "identifiant " code { (p.record_id) }
                @if replaces { " — met à jour l'enregistrement que ce nœud publie déjà sous cet identifiant (une proposition précédente de la même organisation)" }
                @else { " — nouvel enregistrement" }
            }
            (view::fields(&p.document, &["kind", "record_id", "visibility"]))
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" name="decision" value="accepter" { "Accepter et publier" }
            }
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                label for=(format!("raison-{}", p.id)) { "Raison du refus" }
                " "
                input type="text" id=(format!("raison-{}", p.id)) name="raison" maxlength="1000";
                " "
                button type="submit" name="decision" value="refuser" { "Refuser" }
            }
        }
    }
}

/// A form's fields: (name, label, input, required).
type Fields = &'static [(&'static str, &'static str, &'static str, bool)];

const PROJECT_FIELDS: Fields = &[
    ("name", "Nom du projet", "text", true),
    (
        "description",
        "Description du service rendu",
        "textarea",
        true,
    ),
    ("status", "Statut", "status", true),
    ("theme", "Thème", "theme", false),
    ("start_date", "Date de démarrage (MM/AAAA)", "text", false),
    ("website", "Adresse du service (https://…)", "url", false),
    ("latitude", "Latitude", "number", false),
    ("longitude", "Longitude", "number", false),
];
const DATASET_FIELDS: Fields = &[
    ("title", "Titre du jeu de données", "text", true),
    ("description", "Description", "textarea", true),
    (
        "keywords",
        "Mots-clés (séparés par des virgules)",
        "text",
        false,
    ),
    (
        "landing_page",
        "Page de présentation (https://…)",
        "url",
        false,
    ),
    (
        "licence",
        "Licence (par exemple Licence Ouverte 2.0)",
        "text",
        false,
    ),
];

fn fields_of(kind: &str) -> Option<(&'static str, Fields)> {
    match kind {
        "projet" => Some(("Proposer un projet d'IA", PROJECT_FIELDS)),
        "jeu" => Some(("Proposer un jeu de données", DATASET_FIELDS)),
        _ => None,
    }
}

fn form_page(
    http: &Http,
    visitor: &Visitor,
    session: &Session,
    kind: &str,
    values: &HashMap<String, String>,
    error: Option<&str>,
) -> Response {
    let Some((title, fields)) = fields_of(kind) else {
        return problem(
            http,
            visitor,
            StatusCode::NOT_FOUND,
            "Type inconnu",
            "On peut proposer un projet (type=projet) ou un jeu de données (type=jeu).",
        );
    };
    let value = |k: &str| values.get(k).map(String::as_str).unwrap_or("");
    let main = html! {
        h1 { (title) }
        p { "Pour " (organisation_name(&session.siren)) " (SIREN " (session.siren) "). Les champs marqués d'un astérisque sont obligatoires." }
        @if let Some(e) = error {
            div class="erreur" role="alert" {
                h2 { "La proposition n'a pas été envoyée" }
                p class="texte" { (e) }
            }
        }
        form method="post" action="/propositions" {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="type" value=(kind);
            @for (name, label, input, required) in fields {
                p {
                    label for=(name) { (label) @if *required { " *" } }
                    br;
                    @match *input {
                        "textarea" => { textarea id=(name) name=(name) rows="5" cols="60" required[*required] { (value(name)) } }
                        "status" => {
                            select id=(name) name=(name) required {
                                @for s in ProjectStatus::ALL {
                                    option value=(s.as_str()) selected[value(name) == s.as_str()] { (s.label()) }
                                }
                            }
                        }
                        "theme" => {
                            select id=(name) name=(name) {
                                option value="" { "(aucun)" }
                                @for t in ProjectTheme::ALL {
                                    option value=(t.as_str()) selected[value(name) == t.as_str()] { (t.label()) }
                                }
                            }
                        }
                        "number" => { input type="text" inputmode="decimal" id=(name) name=(name) value=(value(name)); }
                        other => { input type=(other) id=(name) name=(name) value=(value(name)) required[*required] size="60"; }
                    }
                }
            }
            button type="submit" { "Envoyer la proposition" }
        }
    };
    page(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        view::page(&site_for(http, visitor), title, "", main),
    )
}

pub(super) async fn new(State(http): State<Http>, visitor: Visitor, params: Params) -> Response {
    let kind = params.get("type").unwrap_or("projet").to_string();
    let back = format!("/propositions/nouvelle?type={}", view::encode(&kind));
    let session = match signed_in(&visitor, &back) {
        Ok(s) => s.clone(),
        Err(r) => return *r,
    };
    form_page(&http, &visitor, &session, &kind, &HashMap::new(), None)
}

/// The record document a form describes.
fn document(
    kind: &str,
    form: &HashMap<String, String>,
    session: &Session,
    organisation: &str,
) -> Result<serde_json::Value, String> {
    let text = |k: &str| form.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let slug: String = text(if kind == "projet" { "name" } else { "title" })
        .unwrap_or("")
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|w| !w.is_empty())
        .take(8)
        .collect::<Vec<_>>()
        .join("-");
    let record_id = format!(
        "{}-{}",
        session.siren,
        if slug.is_empty() {
            "proposition".into()
        } else {
            slug
        }
    );
    let mut doc = serde_json::Map::new();
    doc.insert("record_id".into(), record_id.into());
    doc.insert("visibility".into(), "public".into());
    let number = |k: &str| -> Result<Option<f64>, String> {
        match text(k) {
            None => Ok(None),
            Some(v) => v
                .replace(',', ".")
                .parse::<f64>()
                .map(Some)
                .map_err(|_| format!("« {v} » n'est pas un nombre ({k}).")),
        }
    };
    if kind == "projet" {
        doc.insert("kind".into(), "project".into());
        for k in [
            "name",
            "description",
            "status",
            "theme",
            "start_date",
            "website",
        ] {
            if let Some(v) = text(k) {
                doc.insert(k.into(), v.into());
            }
        }
        for k in ["latitude", "longitude"] {
            if let Some(v) = number(k)? {
                doc.insert(k.into(), v.into());
            }
        }
        doc.insert("siret".into(), session.siret.clone().into());
        doc.insert("organisation_name".into(), organisation.into());
    } else {
        doc.insert("kind".into(), "dataset".into());
        for k in ["title", "description", "landing_page", "licence"] {
            if let Some(v) = text(k) {
                doc.insert(k.into(), v.into());
            }
        }
        if let Some(words) = text("keywords") {
            let list: Vec<serde_json::Value> = words
                .split(',')
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(Into::into)
                .collect();
            doc.insert("keywords".into(), list.into());
        }
    }
    Ok(serde_json::Value::Object(doc))
}

pub(super) async fn send(
    State(http): State<Http>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let session = match signed_in(&visitor, "/propositions") {
        Ok(s) => s.clone(),
        Err(r) => return *r,
    };
    if let Err(refused) =
        crate::signin::routes::form_from_here(&http, &visitor, &headers, &form, &session)
    {
        return *refused;
    }
    let kind = form.get("type").cloned().unwrap_or_default();
    if fields_of(&kind).is_none() {
        return form_page(&http, &visitor, &session, &kind, &form, None);
    }
    let organisation = organisation_name(&session.siren);
    let doc = match document(&kind, &form, &session, &organisation) {
        Ok(d) => d,
        Err(e) => return form_page(&http, &visitor, &session, &kind, &form, Some(&e)),
    };
    let proposal = Proposal {
        id: String::new(),
        document: doc,
        title: String::new(),
        kind: String::new(),
        record_id: String::new(),
        siren: session.siren.clone(),
        organisation,
        subject: session.subject.clone(),
        agent: session.name.clone(),
        created_at_ms: maillage_record::now_ms(),
        state: ProposalState::Pending,
        decided_by: String::new(),
        decided_at_ms: 0,
        reason: String::new(),
    };
    let node = http.node.clone();
    let made = tokio::task::spawn_blocking(move || node.proposals().propose(&node, proposal)).await;
    match made {
        Ok(Ok(p)) => to(&format!("/propositions?envoyee={}", p.id)),
        Ok(Err(ProposalError::Invalid(why))) => {
            form_page(&http, &visitor, &session, &kind, &form, Some(&why))
        }
        Ok(Err(ProposalError::Full(_))) => problem(
            &http,
            &visitor,
            StatusCode::TOO_MANY_REQUESTS,
            "Trop de propositions en attente",
            "Votre organisation a déjà de nombreuses propositions en attente : réessayez quand certaines auront été examinées.",
        ),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "a proposal could not be kept");
            problem(
                &http,
                &visitor,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Erreur du nœud",
                "La proposition n'a pas pu être enregistrée ; l'opérateur du nœud trouvera la cause dans son journal.",
            )
        }
        Err(_) => problem(
            &http,
            &visitor,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Erreur du nœud",
            "La proposition n'a pas pu être enregistrée.",
        ),
    }
}

pub(super) async fn decide(
    State(http): State<Http>,
    visitor: Visitor,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let session = match signed_in(&visitor, "/propositions") {
        Ok(s) => s.clone(),
        Err(r) => return *r,
    };
    if !session.moderator {
        return problem(
            &http,
            &visitor,
            StatusCode::FORBIDDEN,
            "Réservé aux modérateurs",
            "Seuls les modérateurs désignés par l'opérateur du nœud acceptent ou refusent les propositions.",
        );
    }
    if let Err(refused) =
        crate::signin::routes::form_from_here(&http, &visitor, &headers, &form, &session)
    {
        return *refused;
    }
    let by = format!("moderator:{}", session.email);
    let outcome = match form.get("decision").map(String::as_str) {
        Some("accepter") => crate::proposals::accept(&http.node, &id, &by)
            .await
            .map(|_| ()),
        Some("refuser") => {
            let node = http.node.clone();
            let reason = form.get("raison").cloned().unwrap_or_default();
            let id = id.clone();
            tokio::task::spawn_blocking(move || {
                node.proposals()
                    .refuse(node.ledger(), &id, &by, &reason)
                    .map(|_| ())
            })
            .await
            .unwrap_or_else(|e| Err(ProposalError::Sign(e.to_string())))
        }
        _ => Err(ProposalError::Invalid("ni acceptée ni refusée".into())),
    };
    match outcome {
        Ok(()) => to("/propositions"),
        Err(
            e @ (ProposalError::NotFound(_)
            | ProposalError::Decided(..)
            | ProposalError::Invalid(_)),
        ) => problem(
            &http,
            &visitor,
            StatusCode::BAD_REQUEST,
            "Décision impossible",
            &e.to_string(),
        ),
        Err(e) => {
            tracing::error!(error = %e, "a proposal could not be decided");
            problem(
                &http,
                &visitor,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Erreur du nœud",
                &e.to_string(),
            )
        }
    }
}
