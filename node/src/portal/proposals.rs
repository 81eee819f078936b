//! Proposals in the portal (issue 22):
//!
//!   GET  /propositions                   the organisation's proposals and
//!                                        the records this node publishes
//!                                        for it; for a moderator, those
//!                                        waiting
//!   GET  /propositions/nouvelle?type=projet|jeu|details[&projet=ID]
//!                                        a form for a new record
//!   GET  /propositions/modifier?enregistrement=ID
//!                                        a form to edit one of them
//!   GET  /propositions/retrait?enregistrement=ID
//!                                        to ask for its withdrawal
//!   GET  /propositions/{id}/modifier     to amend a pending proposal
//!   POST /propositions                   sends a proposal or an amendment
//!   POST /propositions/{id}/annulation   the organisation cancels it
//!   POST /propositions/{id}/decision     a moderator accepts or refuses
//!
//! Every form carries the session's CSRF token and must come from this
//! portal (`signin::routes::form_from_here`). An agent changes only its
//! own organisation's proposals, and only records this node signed on its
//! organisation's behalf (`proposals::organisation_record`).

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maillage_record::{Kind, Record, Siren, Visibility};
use maud::{Markup, html};

use super::proposal_form::{self, FormKind, Target, Values};
use super::{Visitor, blocking, page, site_for, view};
use crate::access::{Read, Via};
use crate::http::Http;
use crate::proposals::{Change, OwnRecord, Proposal, ProposalError, State as ProposalState};
use crate::query_string::Params;
use crate::search::{Filters, SearchRequest};
use crate::signin::Session;

/// The organisation's records listed on `/propositions`.
const LISTED: usize = 100;

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
fn signed_in(visitor: &Visitor, back: &str) -> Result<Session, Box<Response>> {
    match &visitor.session {
        Some((_, s)) => Ok(s.clone()),
        None => Err(Box::new(to(&format!(
            "/connexion?retour={}",
            view::encode(back)
        )))),
    }
}

/// A form posted by a signed-in agent from this portal (its CSRF token,
/// its origin), with its values; else the answer that refuses it.
fn posted(
    http: &Http,
    visitor: &Visitor,
    headers: &HeaderMap,
    pairs: Vec<(String, String)>,
) -> Result<(Session, Values), Box<Response>> {
    let session = signed_in(visitor, "/propositions")?;
    let sent = Values::from_pairs(pairs);
    crate::signin::routes::form_from_here(
        http,
        visitor,
        headers,
        Some(sent.one("csrf")),
        &session,
    )?;
    Ok((session, sent))
}

fn organisation_name(siren: &Siren) -> String {
    maillage_record::territory::by_siren(siren.as_str())
        .map(|c| c.name.clone())
        .unwrap_or_else(|| format!("SIREN {siren}"))
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "project" => "Projet d'IA",
        "project_details" => "Détails de projet",
        _ => "Jeu de données",
    }
}

/// Notes in the access log the organisation's records beyond the public
/// that a page showed the agent.
fn note<'a>(http: &Http, visitor: &Visitor, shown: impl Iterator<Item = &'a OwnRecord>, via: Via) {
    let Some((who, siren)) = visitor.who() else {
        return;
    };
    let author = http.node.public_key().to_hex();
    let reads: Vec<Read> = shown
        .filter(|own| own.record.visibility != Visibility::Public)
        .map(|own| Read {
            id: own.id.to_hex(),
            author: author.clone(),
            record_id: own.record.record_id.clone(),
            kind: own.record.kind(),
        })
        .collect();
    if !reads.is_empty() {
        http.node.note_reads(&who, siren, via, reads);
    }
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
    let records = match published_for(&http, &visitor, &session).await {
        Ok(r) => r,
        Err(failed) => return failed,
    };
    note(&http, &visitor, records.iter(), Via::Search);
    let node = http.node.clone();
    let shown_waiting = waiting.clone();
    let currents = match blocking(&http, move || {
        shown_waiting
            .iter()
            .map(|p| {
                crate::proposals::organisation_record(&node, &p.record_id, &p.siren)
                    .map(|c| c.map(|own| own.record))
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    {
        Ok(c) => c,
        Err(failed) => return failed,
    };
    let node_key = http.node.public_key().to_hex();
    // Said only of the organisation's own proposals.
    let ours = |key: &str| {
        params
            .get(key)
            .filter(|id| own.iter().any(|p| p.id == *id))
            .map(str::to_string)
    };
    let (sent, amended) = (ours("envoyee"), ours("modifiee"));
    let main = html! {
        h1 { "Propositions" }
        @if let Some(id) = sent {
            p class="confirmation" role="status" {
                "Votre proposition " code { (id) } " est envoyée : elle attend la décision d'un modérateur."
            }
        }
        @if let Some(id) = amended {
            p class="confirmation" role="status" {
                "Votre proposition " code { (id) } " est modifiée : elle attend toujours la décision d'un modérateur."
            }
        }
        @if params.get("annulee").is_some() {
            p class="confirmation" role="status" { "La proposition est annulée." }
        }
        p {
            "Proposez un projet ou un jeu de données de " (organisation_name(&session.siren))
            ", une modification ou le retrait de ceux que ce nœud publie pour elle"
            " : une fois acceptée, la proposition est publiée par ce nœud, signée de sa clé, au nom de votre organisation."
        }
        ul {
            li { a href="/propositions/nouvelle?type=projet" { "Proposer un projet d'IA" } }
            li { a href="/propositions/nouvelle?type=jeu" { "Proposer un jeu de données" } }
            @if session.siren == *http.node.siren() || session.moderator {
                li { a href="/membres" { "Les membres de ce nœud" } }
            }
        }
        @if session.moderator {
            section aria-labelledby="a-moderer" {
                h2 id="a-moderer" { "À modérer (" (waiting.len()) ")" }
                @if waiting.is_empty() { p { "Aucune proposition n'attend." } }
                @for (p, current) in waiting.iter().zip(&currents) {
                    (moderation(p, &session.csrf, current.as_ref(), &node_key))
                }
            }
        }
        section aria-labelledby="les-votres" {
            h2 id="les-votres" { "Propositions de votre organisation" }
            @if own.is_empty() { p { "Aucune proposition pour l'instant." } }
            @else {
                table {
                    thead { tr {
                        th scope="col" { "Titre" } th scope="col" { "Demande" }
                        th scope="col" { "Proposée le" } th scope="col" { "État" } th scope="col" { "Actions" }
                    } }
                    tbody {
                        @for p in &own {
                            tr {
                                td {
                                    @if p.state == ProposalState::Accepted && p.change != Change::Withdrawal {
                                        a href=(view::record_href(&node_key, &p.record_id)) { (p.title) }
                                    } @else { (p.title) }
                                }
                                td { (kind_label(&p.kind)) " · " (p.change.label()) }
                                td { (view::when(p.created_at_ms)) }
                                td {
                                    (p.state.label())
                                    @if p.state == ProposalState::Refused && !p.reason.is_empty() { " : " span class="texte" { (p.reason) } }
                                }
                                td {
                                    @if p.state == ProposalState::Pending {
                                        a href=(format!("/propositions/{}/modifier", p.id)) aria-label=(format!("Modifier la proposition « {} »", p.title)) { "Modifier" }
                                        " "
                                        form class="en-ligne" method="post" action=(format!("/propositions/{}/annulation", p.id)) {
                                            input type="hidden" name="csrf" value=(session.csrf);
                                            button type="submit" aria-label=(format!("Annuler la proposition « {} »", p.title)) { "Annuler" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="publies" {
            h2 id="publies" { "Publiés par ce nœud pour votre organisation" }
            @if records.is_empty() { p { "Aucun pour l'instant." } }
            @else {
                ul {
                    @for r in &records {
                        li {
                            a href=(view::record_href(&node_key, &r.record.record_id)) { (crate::proposals::title_of(&r.record)) }
                            " (" (r.record.kind().label()) ") · "
                            (actions(r.record.kind(), &r.record.record_id))
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

/// What an agent may propose about one of its organisation's records.
pub(super) fn actions(kind: Kind, record_id: &str) -> Markup {
    let id = view::encode(record_id);
    html! {
        a href=(format!("/propositions/modifier?enregistrement={id}")) { "Proposer une modification" }
        " · "
        a href=(format!("/propositions/retrait?enregistrement={id}")) { "Proposer le retrait" }
        @if kind == Kind::Project {
            " · "
            a href=(format!("/propositions/nouvelle?type=details&projet={id}")) { "Détails du projet" }
        }
    }
}

/// The records this node publishes on behalf of the agent's organisation
/// (the first `LISTED`): those its accepted proposals made (known at once,
/// before the index has them), then those the index finds (imported on its
/// behalf), each checked in the store.
async fn published_for(
    http: &Http,
    visitor: &Visitor,
    session: &Session,
) -> Result<Vec<OwnRecord>, Response> {
    let _turn = http.search_turn().await?;
    let node = http.node.clone();
    let viewer = visitor.viewer.clone();
    let siren = session.siren.clone();
    blocking(http, move || {
        let mut candidates: Vec<String> = node
            .proposals()
            .list(true, Some(&siren))
            .into_iter()
            .filter(|p| p.state == ProposalState::Accepted)
            .map(|p| p.record_id)
            .collect();
        let req = SearchRequest {
            filters: Filters {
                organisation: Some(siren.to_string()),
                ..Filters::default()
            },
            page: 1,
            page_size: LISTED,
            ..SearchRequest::default()
        };
        let results = node
            .search()
            .search(&req, &viewer, node.store().last_seq())
            .map_err(|e| e.to_string())?;
        candidates.extend(
            results
                .hits
                .into_iter()
                .filter(|h| h.author == node.public_key())
                .map(|h| h.record_id),
        );
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for record_id in candidates {
            if out.len() >= LISTED || !seen.insert(record_id.clone()) {
                continue;
            }
            if let Some(own) = crate::proposals::organisation_record(&node, &record_id, &siren)
                .map_err(|e| e.to_string())?
            {
                out.push(own);
            }
        }
        Ok(out)
    })
    .await
}

/// A waiting proposal, with what it changes and the moderator's two
/// buttons. `current` is the record an edit or a withdrawal changes.
fn moderation(p: &Proposal, csrf: &str, current: Option<&Record>, node_key: &str) -> Markup {
    let action = format!("/propositions/{}/decision", p.id);
    let changed = current.map(|r| {
        proposal_form::changed_fields(&maillage_record::json::record_to_json(r), &p.document)
    });
    html! {
        article class="proposition" aria-labelledby=(format!("p-{}", p.id)) {
            h3 id=(format!("p-{}", p.id)) { (kind_label(&p.kind)) " : " (p.title) }
            p class="meta" { "proposée par " (p.agent) " pour " (p.organisation) " (SIREN " (p.siren) "), le " (view::when(p.created_at_ms)) }
            p class="meta" {
                "identifiant " code { (p.record_id) } " — "
                @match p.change {
                    Change::New => { "nouvel enregistrement" }
                    Change::Edit => {
                        "modifie la version " (p.base_version) " de "
                        a href=(view::record_href(node_key, &p.record_id)) { "l'enregistrement" }
                        " que ce nœud publie pour cette organisation"
                    }
                    Change::Withdrawal => {
                        "retire "
                        a href=(view::record_href(node_key, &p.record_id)) { "l'enregistrement" }
                        " (version " (p.base_version) ") que ce nœud publie pour cette organisation"
                    }
                }
            }
            @if current.is_none() && p.change != Change::New {
                p class="erreur" { "Cet enregistrement a été retiré ou n'est plus publié pour cette organisation : la proposition ne peut plus être acceptée." }
            }
            @match (p.change, &changed) {
                (Change::Withdrawal, _) => {
                    @if let Some(reason) = p.document["reason"].as_str().filter(|r| !r.is_empty()) {
                        p { "Raison donnée : " span class="texte" { (reason) } }
                    }
                }
                (Change::Edit, Some(changed)) => {
                    p { "Champs modifiés : "
                        @if changed.is_empty() { "aucun" } @else { (changed.join(", ")) }
                    }
                    (view::fields(&p.document, &["kind", "record_id", "visibility", "audience"]))
                }
                _ => { (view::fields(&p.document, &["kind", "record_id", "visibility", "audience"])) }
            }
            p class="meta" { "Visible par : " (audience(&p.document)) }
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="revision" value=(p.revision);
                button type="submit" name="decision" value="accepter" {
                    @if p.change == Change::Withdrawal { "Accepter et retirer" } @else { "Accepter et publier" }
                }
            }
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="revision" value=(p.revision);
                label for=(format!("raison-{}", p.id)) { "Raison du refus" }
                " "
                input type="text" id=(format!("raison-{}", p.id)) name="raison" maxlength="1000";
                " "
                button type="submit" name="decision" value="refuser" { "Refuser" }
            }
        }
    }
}

fn audience(doc: &serde_json::Value) -> String {
    match doc["visibility"].as_str() {
        Some("federation") => "les membres de la fédération".into(),
        Some("restricted") => {
            let sirens: Vec<&str> = doc["audience"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str())
                .collect();
            format!("les organisations {}", sirens.join(", "))
        }
        Some("public") => "tout le monde".into(),
        // A withdrawal goes to whoever saw the record.
        _ => "ceux qui voient l'enregistrement".into(),
    }
}

/// The form, filled with `values`, with `error` above it if it came back.
fn form_page(
    http: &Http,
    visitor: &Visitor,
    session: &Session,
    target: &Target,
    values: &Values,
    error: Option<&str>,
) -> Response {
    let title = target.kind.title(target.change);
    let main = html! {
        h1 { (title) }
        p {
            "Pour " (organisation_name(&session.siren)) " (SIREN " (session.siren) ")."
            @if let Some(id) = &target.record_id {
                @if target.kind == FormKind::Details && target.change == Change::New {
                    " Détails du projet " code { (id) } "."
                } @else {
                    " Enregistrement " code { (id) } "."
                }
            }
            @if target.amend.is_some() { " Vous modifiez une proposition en attente." }
            " Les champs marqués d'un astérisque sont obligatoires."
        }
        @if let Some(e) = error {
            div class="erreur" role="alert" {
                h2 { "La proposition n'a pas été envoyée" }
                p class="texte" { (e) }
            }
        }
        form method="post" action="/propositions" {
            (proposal_form::hidden(target, &session.csrf))
            (proposal_form::inputs(target.kind, values))
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

/// The withdrawal's page: which record, and why.
fn withdrawal_page(
    http: &Http,
    visitor: &Visitor,
    session: &Session,
    target: &Target,
    title: &str,
    reason: &str,
    error: Option<&str>,
) -> Response {
    let main = html! {
        h1 { "Proposer le retrait" }
        p {
            "Le retrait de « " (title) " » (" code { (target.record_id.as_deref().unwrap_or("")) } "), que ce nœud publie pour "
            (organisation_name(&session.siren)) ". Accepté, il est signé par ce nœud et parvient à tous ceux qui voyaient l'enregistrement."
        }
        @if let Some(e) = error {
            div class="erreur" role="alert" {
                h2 { "La proposition n'a pas été envoyée" }
                p class="texte" { (e) }
            }
        }
        form method="post" action="/propositions" {
            (proposal_form::hidden(target, &session.csrf))
            p {
                label for="raison" { "Raison du retrait" }
                br;
                textarea id="raison" name="raison" rows="3" cols="60" maxlength="1000" { (reason) }
            }
            button type="submit" { "Proposer le retrait" }
        }
    };
    page(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        view::page(&site_for(http, visitor), "Proposer le retrait", "", main),
    )
}

fn not_yours(http: &Http, visitor: &Visitor) -> Response {
    problem(
        http,
        visitor,
        StatusCode::NOT_FOUND,
        "Enregistrement introuvable",
        "Ce nœud ne publie pas cet enregistrement pour votre organisation : seuls ceux-là peuvent être modifiés ou retirés ici.",
    )
}

/// The record this node publishes on behalf of the session's organisation
/// under `record_id`, if any.
async fn organisation_record(
    http: &Http,
    session: &Session,
    record_id: &str,
) -> Result<Option<OwnRecord>, Response> {
    let node = http.node.clone();
    let siren = session.siren.clone();
    let id = record_id.to_string();
    blocking(http, move || {
        crate::proposals::organisation_record(&node, &id, &siren).map_err(|e| e.to_string())
    })
    .await
}

pub(super) async fn new(State(http): State<Http>, visitor: Visitor, params: Params) -> Response {
    let slug = params.get("type").unwrap_or("projet").to_string();
    let project = params.get("projet").unwrap_or("").to_string();
    let back = format!(
        "/propositions/nouvelle?type={}&projet={}",
        view::encode(&slug),
        view::encode(&project)
    );
    let session = match signed_in(&visitor, &back) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let Some(kind) = FormKind::parse(&slug) else {
        return problem(
            &http,
            &visitor,
            StatusCode::NOT_FOUND,
            "Type inconnu",
            "On peut proposer un projet (type=projet), ses détails (type=details) ou un jeu de données (type=jeu).",
        );
    };
    let mut target = Target {
        kind,
        change: Change::New,
        record_id: None,
        version: None,
        amend: None,
    };
    if kind == FormKind::Details {
        // Details complete one of the organisation's projects; if it has
        // some already, they are edited.
        match organisation_record(&http, &session, &project).await {
            Ok(Some(own)) if own.record.kind() == Kind::Project => {}
            Ok(_) => return not_yours(&http, &visitor),
            Err(failed) => return failed,
        }
        let details = format!("{project}-details");
        match organisation_record(&http, &session, &details).await {
            Ok(Some(_)) => {
                return to(&format!(
                    "/propositions/modifier?enregistrement={}",
                    view::encode(&details)
                ));
            }
            Ok(None) => {}
            Err(failed) => return failed,
        }
        target.record_id = Some(project);
    }
    form_page(&http, &visitor, &session, &target, &Values::default(), None)
}

/// The organisation's record that `?enregistrement=` names, with the
/// target of a form that edits or withdraws it; else the page that says
/// it is not the organisation's.
async fn to_change(
    http: &Http,
    visitor: &Visitor,
    session: &Session,
    record_id: &str,
    change: Change,
) -> Result<(OwnRecord, Target), Response> {
    let own = match organisation_record(http, session, record_id).await {
        Ok(Some(own)) => own,
        Ok(None) => return Err(not_yours(http, visitor)),
        Err(failed) => return Err(failed),
    };
    let Some(kind) = FormKind::of(own.record.kind().as_str()) else {
        return Err(not_yours(http, visitor));
    };
    let target = Target {
        kind,
        change,
        record_id: Some(record_id.to_string()),
        version: Some(own.version),
        amend: None,
    };
    Ok((own, target))
}

pub(super) async fn edit(State(http): State<Http>, visitor: Visitor, params: Params) -> Response {
    let record_id = params.get("enregistrement").unwrap_or("").to_string();
    let back = format!(
        "/propositions/modifier?enregistrement={}",
        view::encode(&record_id)
    );
    let session = match signed_in(&visitor, &back) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let (own, target) = match to_change(&http, &visitor, &session, &record_id, Change::Edit).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    note(&http, &visitor, std::iter::once(&own), Via::Page);
    let values = Values::of_document(
        target.kind,
        &maillage_record::json::record_to_json(&own.record),
    );
    form_page(&http, &visitor, &session, &target, &values, None)
}

pub(super) async fn withdraw(
    State(http): State<Http>,
    visitor: Visitor,
    params: Params,
) -> Response {
    let record_id = params.get("enregistrement").unwrap_or("").to_string();
    let back = format!(
        "/propositions/retrait?enregistrement={}",
        view::encode(&record_id)
    );
    let session = match signed_in(&visitor, &back) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let (own, target) =
        match to_change(&http, &visitor, &session, &record_id, Change::Withdrawal).await {
            Ok(t) => t,
            Err(r) => return r,
        };
    note(&http, &visitor, std::iter::once(&own), Via::Search);
    let title = crate::proposals::title_of(&own.record);
    withdrawal_page(&http, &visitor, &session, &target, &title, "", None)
}

/// The organisation's pending proposal `id`, if it is one.
fn own_pending(http: &Http, session: &Session, id: &str) -> Option<Proposal> {
    http.node
        .proposals()
        .get(id)
        .filter(|p| p.siren == session.siren && p.state == ProposalState::Pending)
}

fn no_such_proposal(http: &Http, visitor: &Visitor) -> Response {
    problem(
        http,
        visitor,
        StatusCode::NOT_FOUND,
        "Proposition introuvable",
        "Votre organisation n'a pas de proposition en attente sous ce numéro : elle a peut-être déjà été décidée ou annulée.",
    )
}

pub(super) async fn amend(
    State(http): State<Http>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Response {
    let session = match signed_in(
        &visitor,
        &format!("/propositions/{}/modifier", view::encode(&id)),
    ) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let Some((p, kind)) =
        own_pending(&http, &session, &id).and_then(|p| FormKind::of(&p.kind).map(|k| (p, k)))
    else {
        return no_such_proposal(&http, &visitor);
    };
    let target = Target {
        kind,
        change: p.change,
        // New details keep naming their project.
        record_id: match (p.change, kind) {
            (Change::New, FormKind::Details) => p.document["project"].as_str().map(str::to_string),
            (Change::New, _) => None,
            _ => Some(p.record_id.clone()),
        },
        version: (p.change != Change::New).then_some(p.base_version),
        amend: Some(p.id.clone()),
    };
    if p.change == Change::Withdrawal {
        let reason = p.document["reason"].as_str().unwrap_or("");
        return withdrawal_page(&http, &visitor, &session, &target, &p.title, reason, None);
    }
    if p.change == Change::Edit {
        // What it shows beyond what the agent wrote is the record's.
        match organisation_record(&http, &session, &p.record_id).await {
            Ok(Some(own)) => note(&http, &visitor, std::iter::once(&own), Via::Page),
            Ok(None) => {}
            Err(failed) => return failed,
        }
    }
    let values = Values::of_document(kind, &p.document);
    form_page(&http, &visitor, &session, &target, &values, None)
}

pub(super) async fn send(
    State(http): State<Http>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let (session, sent) = match posted(&http, &visitor, &headers, pairs) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let Some(target) = proposal_form::target_of(&sent) else {
        return problem(
            &http,
            &visitor,
            StatusCode::BAD_REQUEST,
            "Proposition incomplète",
            "Ce formulaire ne dit pas ce qu'il propose : revenez à la page des propositions.",
        );
    };
    // What the form starts from: the proposal amended, or the record
    // edited (as it is now: `prepare` refuses it if that is not the
    // version the form was filled from).
    let (base, title) = match (&target.amend, target.change, &target.record_id) {
        (Some(id), ..) => match own_pending(&http, &session, id) {
            Some(p) => (p.document, p.title),
            None => return no_such_proposal(&http, &visitor),
        },
        (None, Change::Edit | Change::Withdrawal, Some(record_id)) => {
            match organisation_record(&http, &session, record_id).await {
                Ok(Some(own)) => (
                    maillage_record::json::record_to_json(&own.record),
                    crate::proposals::title_of(&own.record),
                ),
                Ok(None) => return not_yours(&http, &visitor),
                Err(failed) => return failed,
            }
        }
        _ => (serde_json::Value::Null, String::new()),
    };
    let organisation = organisation_name(&session.siren);
    let reason = sent.one("raison").chars().take(1_000).collect::<String>();
    let doc = if target.change == Change::Withdrawal {
        Ok(serde_json::json!({
            "kind": "tombstone",
            "record_id": target.record_id.clone().unwrap_or_default(),
            "reason": reason,
        }))
    } else {
        proposal_form::document(&target, &sent, &base, &session, &organisation)
    };
    let back_with = |why: &str| {
        if target.change == Change::Withdrawal {
            withdrawal_page(
                &http,
                &visitor,
                &session,
                &target,
                &title,
                &reason,
                Some(why),
            )
        } else {
            form_page(&http, &visitor, &session, &target, &sent, Some(why))
        }
    };
    let doc = match doc {
        Ok(d) => d,
        Err(e) => return back_with(&e),
    };
    let node = http.node.clone();
    let (made, done) = match &target.amend {
        Some(id) => {
            let (id, siren) = (id.clone(), session.siren.clone());
            let made = tokio::task::spawn_blocking(move || {
                node.proposals().amend(&node, &id, &siren, doc)
            })
            .await;
            (made, "modifiee")
        }
        None => {
            let proposal = Proposal {
                id: String::new(),
                document: doc,
                title: String::new(),
                kind: String::new(),
                record_id: target.record_id.clone().unwrap_or_default(),
                change: target.change,
                base_version: target.version.unwrap_or(0),
                revision: 0,
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
            let made =
                tokio::task::spawn_blocking(move || node.proposals().propose(&node, proposal))
                    .await;
            (made, "envoyee")
        }
    };
    match made {
        Ok(Ok(p)) => to(&format!("/propositions?{done}={}", p.id)),
        Ok(Err(ProposalError::Invalid(why))) => back_with(&why),
        Ok(Err(e @ ProposalError::Full(_))) => problem(
            &http,
            &visitor,
            StatusCode::TOO_MANY_REQUESTS,
            "Trop de propositions en attente",
            &e.french(),
        ),
        Ok(Err(ProposalError::NotYours(_) | ProposalError::NotFound(_))) => {
            no_such_proposal(&http, &visitor)
        }
        Ok(Err(
            e @ (ProposalError::Decided(..)
            | ProposalError::Deciding(_)
            | ProposalError::Amended(_)),
        )) => problem(
            &http,
            &visitor,
            StatusCode::CONFLICT,
            "Proposition déjà décidée",
            &e.french(),
        ),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "a proposal could not be kept");
            node_error(&http, &visitor)
        }
        Err(_) => node_error(&http, &visitor),
    }
}

fn node_error(http: &Http, visitor: &Visitor) -> Response {
    problem(
        http,
        visitor,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Erreur du nœud",
        "La proposition n'a pas pu être enregistrée ; l'opérateur du nœud trouvera la cause dans son journal.",
    )
}

pub(super) async fn cancel(
    State(http): State<Http>,
    visitor: Visitor,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let (session, _) = match posted(&http, &visitor, &headers, pairs) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let node = http.node.clone();
    let siren = session.siren.clone();
    let done =
        tokio::task::spawn_blocking(move || node.proposals().cancel(node.ledger(), &id, &siren))
            .await;
    match done {
        Ok(Ok(_)) => to("/propositions?annulee=1"),
        Ok(Err(ProposalError::NotYours(_) | ProposalError::NotFound(_))) => {
            no_such_proposal(&http, &visitor)
        }
        Ok(Err(e @ (ProposalError::Decided(..) | ProposalError::Deciding(_)))) => problem(
            &http,
            &visitor,
            StatusCode::CONFLICT,
            "Proposition déjà décidée",
            &e.french(),
        ),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "a proposal could not be cancelled");
            node_error(&http, &visitor)
        }
        Err(_) => node_error(&http, &visitor),
    }
}

pub(super) async fn decide(
    State(http): State<Http>,
    visitor: Visitor,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let (session, sent) = match posted(&http, &visitor, &headers, pairs) {
        Ok(p) => p,
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
    // The revision the moderator read: a later amendment is not decided
    // unseen.
    let Ok(revision) = sent.one("revision").parse::<u64>() else {
        return problem(
            &http,
            &visitor,
            StatusCode::BAD_REQUEST,
            "Décision impossible",
            "Ce formulaire ne dit pas quelle version de la proposition vous avez lue : rechargez la page.",
        );
    };
    let by = format!("moderator:{}", session.email);
    let outcome = match sent.one("decision") {
        "accepter" => crate::proposals::accept(&http.node, &id, &by, Some(revision))
            .await
            .map(|_| ()),
        "refuser" => {
            let node = http.node.clone();
            let reason = sent.one("raison").to_string();
            let id = id.clone();
            tokio::task::spawn_blocking(move || {
                node.proposals()
                    .refuse(node.ledger(), &id, Some(revision), &by, &reason)
                    .map(|_| ())
            })
            .await
            .unwrap_or_else(|e| Err(ProposalError::Sign(e.to_string())))
        }
        _ => Err(ProposalError::Invalid(
            "Ni acceptée ni refusée : choisissez.".into(),
        )),
    };
    match outcome {
        Ok(()) => to("/propositions"),
        Err(e @ (ProposalError::Sign(_) | ProposalError::Store(_))) => {
            tracing::error!(error = %e, "a proposal could not be decided");
            problem(
                &http,
                &visitor,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Erreur du nœud",
                &e.french(),
            )
        }
        Err(e) => problem(
            &http,
            &visitor,
            StatusCode::CONFLICT,
            "Décision impossible",
            &e.french(),
        ),
    }
}
