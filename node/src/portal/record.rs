//! `/records/{author}/{record_id}`: a record at the IRI the DCAT export
//! mints. Its signature is verified again as the page is built, and the
//! page says what was checked. The same address gives the record as JSON
//! (`Accept: application/json`), a dataset as DCAT-AP JSON-LD (`Accept:
//! application/ld+json`), and the signed envelope itself
//! (`?format=envelope`), which anyone can check with `maillage verify`.
//!
//! A record the public may not see answers exactly as one that does not
//! exist: 404, the same words.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maillage_dcat::CatalogInfo;
use maillage_record::{Body, Kind, PublicKey, Record, envelope};
use maud::{Markup, html};
use prost::Message;

use super::{Visitor, blocking, page, site_for, view};
use crate::http::Http;
use crate::query_string::Params;
use crate::viewer::{self, Viewer};

/// What a record's page shows.
struct Shown {
    author: PublicKey,
    record: Record,
    /// The envelope's id (hex) and its bytes as stored.
    id: String,
    envelope: Vec<u8>,
    /// The signature checked again now: `Err` says why it failed.
    verified: Result<(), String>,
    /// The SIREN trust vouches the author speaks for, and the organisation's
    /// name where its own record says it.
    siren: Option<String>,
    organisation: Option<String>,
    /// What trust says of the author now.
    trust: &'static str,
    /// Received from a peer (else published on this node).
    relayed: bool,
    received_at_ms: i64,
    /// The records completing it that the visitor may read: a project's
    /// details, the resources related to it, the collections it is in.
    related: crate::export::RelatedRecords,
    /// For a project: the organisations that say they reuse it (SIREN,
    /// name), as the visitor may see their reuse records.
    reusers: Vec<(String, String)>,
    /// (version, issued_at_ms) of each version the public may see.
    versions: Vec<(u64, i64)>,
}

/// How the record is asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Html,
    Json,
    JsonLd,
    Envelope,
}

fn form(headers: &HeaderMap, params: &Params) -> Form {
    if params.get("format") == Some("envelope") {
        return Form::Envelope;
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // The first of the forms named wins (browsers name text/html first).
    let at = |t: &str| accept.find(t).unwrap_or(usize::MAX);
    let (html, ld, json) = (
        at("text/html"),
        at("application/ld+json"),
        at("application/json"),
    );
    if ld < html && ld <= json {
        Form::JsonLd
    } else if json < html {
        Form::Json
    } else {
        Form::Html
    }
}

pub(super) async fn record(
    State(http): State<Http>,
    visitor: Visitor,
    Path((author, record_id)): Path<(String, String)>,
    params: Params,
    headers: HeaderMap,
) -> Response {
    let asked = form(&headers, &params);
    let site = site_for(&http, &visitor);
    let missing = || {
        let mut r = page(
            StatusCode::NOT_FOUND,
            view::problem(
                &site,
                "Enregistrement introuvable",
                "Ce nœud ne connaît aucun enregistrement public à cette adresse.",
            ),
        );
        r.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept"));
        r
    };
    let (Ok(author), Ok(())) = (
        PublicKey::parse_hex(&author),
        maillage_record::model::validate_record_id(&record_id).map(|_| ()),
    ) else {
        return missing();
    };
    let _turn = match http.page_turn().await {
        Ok(t) => t,
        Err(busy) => return busy,
    };
    let node = http.node.clone();
    let exports = http.exports.clone();
    let viewer = visitor.viewer.clone();
    let found = blocking(&http, move || {
        load(&node, &exports, &viewer, author, &record_id)
    })
    .await;
    let shown = match found {
        Ok(Some(s)) => s,
        Ok(None) => return missing(),
        Err(failed) => return failed,
    };
    if let Some((who, siren)) = visitor.who() {
        // Who read what beyond the public, for the operator
        // (`maillage access-log`): the record, and what its page shows
        // with it (a project's details).
        // (The JSON-LD form carries the resources too.)
        let mut reads = if matches!(asked, Form::Html | Form::JsonLd) {
            shown.related.read.clone()
        } else {
            Vec::new()
        };
        if shown.record.visibility != maillage_record::Visibility::Public {
            reads.push(crate::access::Read {
                id: shown.id.clone(),
                author: shown.author.to_hex(),
                record_id: shown.record.record_id.clone(),
                kind: shown.record.kind(),
            });
        }
        http.node
            .note_reads(&who, siren, crate::access::Via::Page, reads);
    }
    let mut response = match asked {
        Form::Envelope => envelope_file(&shown),
        Form::Json => json(&shown),
        Form::JsonLd => json_ld(&http, &shown),
        Form::Html => {
            let actions = proposable(&http, &visitor, &shown)
                .then(|| super::proposals::actions(shown.record.kind(), &shown.record.record_id));
            page(
                StatusCode::OK,
                view::page(
                    &site,
                    &title(&shown.record),
                    "",
                    record_page(&shown, actions),
                ),
            )
        }
    };
    // Whoever asks decides what the answer holds (a signed-in agent, a
    // token): no shared cache keeps it, whatever its form.
    let headers = response.headers_mut();
    headers.insert(
        header::VARY,
        HeaderValue::from_static("accept, cookie, authorization"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    response
}

/// Whether the signed-in agent may propose to change this record: this
/// node publishes it on behalf of the agent's organisation.
fn proposable(http: &Http, visitor: &Visitor, shown: &Shown) -> bool {
    let Some((_, session)) = &visitor.session else {
        return false;
    };
    let behalf = shown
        .record
        .provenance
        .as_ref()
        .and_then(|p| p.on_behalf_of.as_ref())
        .and_then(|a| a.siren.as_deref());
    shown.author == http.node.public_key()
        && behalf == Some(session.siren.as_str())
        && crate::proposals::PROPOSABLE.contains(&shown.record.kind())
}

/// Reads the record, checks it may be shown, verifies its signature again.
fn load(
    node: &Arc<crate::node::Node>,
    exports: &Arc<crate::export::Exports>,
    viewer: &Viewer,
    author: PublicKey,
    record_id: &str,
) -> Result<Option<Shown>, String> {
    let store = node.store();
    let e = |e: crate::store::StoreError| e.to_string();
    let Some(current) = store.current(&author, record_id).map_err(e)? else {
        return Ok(None);
    };
    let Some(stored) = store.get(&current.id).map_err(e)? else {
        return Ok(None);
    };
    let env = maillage_proto::v1::Envelope::decode(stored.bytes.as_slice())
        .map_err(|err| format!("stored envelope {} does not decode: {err}", stored.id))?;
    // Checked again now, in full (sizes, key, signature, content): the page
    // says so only if this holds.
    let (record, verified) = match envelope::verify(&env) {
        Ok(v) => (v.record().clone(), Ok(())),
        Err(err) => (
            maillage_record::wire::decode_payload(&env.payload)
                .map_err(|err| format!("stored record {} does not decode: {err}", stored.id))?,
            Err(err.to_string()),
        ),
    };
    if !viewer::may_read(store, viewer, &author, &record).map_err(e)? {
        return Ok(None);
    }
    let relayed = store
        .change_at(stored.seq)
        .map_err(e)?
        .is_some_and(|c| c.relayed_by.is_some());
    // Versions the public may see, newest first.
    let history = store.history(&author, record_id).map_err(e)?;
    let ids: Vec<_> = history.iter().map(|h| h.id).collect();
    let mut versions: Vec<(u64, i64)> = history
        .iter()
        .zip(store.sync_items_many(&ids).map_err(e)?)
        .filter_map(|(h, item)| {
            let item = item?;
            viewer
                .may_see(&item.author, &item.visibility)
                .then_some((h.version, item.issued_at_ms as i64))
        })
        .collect();
    versions.reverse();
    let vouched = node.speaks_for(&author);
    let index = exports.index(node).map_err(e)?;
    let organisation = index.organisation(&author.to_hex()).map(|a| a.name.clone());
    let related = index
        .related_records(node, viewer, &author, record_id)
        .map_err(e)?;
    let trust = node.trust_of(&author);
    let reusers = if record.kind() == maillage_record::Kind::Project {
        node.search()
            .reusers(&author, record_id, viewer)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|siren| {
                let name = maillage_record::territory::by_siren(&siren)
                    .map_or_else(|| format!("SIREN {siren}"), |c| c.name.clone());
                (siren, name)
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Some(Shown {
        reusers,
        author,
        record,
        id: stored.id.to_hex(),
        envelope: stored.bytes,
        verified,
        siren: vouched.map(|(s, _)| s.to_string()),
        organisation,
        trust,
        relayed,
        received_at_ms: stored.received_at_ms,
        versions,
        related,
    }))
}

fn title(record: &Record) -> String {
    match &record.body {
        Body::Dataset(d) => d.title.clone(),
        Body::Project(p) => p.name.clone(),
        Body::Organisation(o) => o.name.clone(),
        Body::Collection(c) => c.title.clone(),
        Body::Resource(r) => r.title.clone(),
        Body::Aggregate(a) => format!("Statistiques signées : {}", super::aggregate::heading(a)),
        _ => format!("{} « {} »", record.kind().label(), record.record_id),
    }
}

fn record_page(s: &Shown, actions: Option<Markup>) -> Markup {
    let author = s.author.to_hex();
    let doc = maillage_record::json::record_to_json(&s.record);
    let href = view::record_href(&author, &s.record.record_id);
    html! {
        p class="meta" { (s.record.kind().label()) }
        h1 { (title(&s.record)) }
        @match &s.verified {
            Ok(()) => {
                section class="signature" aria-labelledby="signature" {
                    h2 id="signature" { "Signé par "
                        @match (&s.organisation, &s.siren) {
                            (Some(name), Some(siren)) => { a href=(format!("/organisations/{siren}")) { (name) } " (SIREN " (siren) ")" }
                            (None, Some(siren)) => { a href=(format!("/organisations/{siren}")) { "SIREN " (siren) } }
                            _ => { "une clé que la confiance de ce nœud ne rattache à aucune organisation" }
                        }
                        ", signature vérifiée"
                    }
                    p {
                        "Vérifiée à l'instant par ce nœud : la signature Ed25519 de la clé "
                        (view::short(&author))
                        " sur ce contenu exact (empreinte SHA-256 " (view::short(&s.id)) ")"
                        ", et le contenu conforme au modèle. Cette clé est, pour ce nœud, "
                        (super::labels::trust(s.trust)) "."
                    }
                    p {
                        a href=(format!("{href}?format=envelope")) download {
                            "Télécharger l'enveloppe signée"
                        }
                        " pour la vérifier vous-même : "
                        code { "maillage verify fichier" } "."
                    }
                }
            }
            Err(why) => {
                section class="signature echec" aria-labelledby="signature" {
                    h2 id="signature" { "Signature non vérifiée" }
                    p { "La vérification de la signature a échoué : " (why) ". Ne vous fiez pas à ce contenu." }
                }
            }
        }
        @if let Some(actions) = actions {
            section class="actions" aria-labelledby="actions" {
                h2 id="actions" { "Votre organisation" }
                p { "Ce nœud publie cet enregistrement pour votre organisation : " (actions) "." }
            }
        }
        h2 { "Contenu" }
        @if let Body::Aggregate(a) = &s.record.body {
            (super::aggregate::figures(a))
            p {
                @if a.combines.is_empty() { "Calculé à partir des enregistrements de " (a.organisations.len()) " organisations" }
                @else { "Somme de " (a.combines.len()) " agrégats" }
                " ; empreinte des entrées " code { (view::short(&a.inputs_hash)) } ". "
                "Un nœud qui détient les mêmes enregistrements le recalcule : "
                code { "maillage aggregate verify " (s.id) } "."
            }
        } @else {
            (view::fields(&doc, &["kind", "record_id", "version", "issued_at", "visibility", "audience", "provenance", "datasets", "items", "related"]))
        }
        @match &s.record.body {
            Body::Project(p) if !p.datasets.is_empty() => {
                h2 { "Jeux de données utilisés" }
                (references(&author, &p.datasets, false))
            }
            Body::Collection(c) if !c.items.is_empty() => {
                h2 { "Dans cette collection" }
                (references(&author, &c.items, true))
            }
            Body::Resource(r) if !r.related.is_empty() => {
                h2 { "Enregistrements liés" }
                (references(&author, &r.related, false))
            }
            _ => {}
        }
        @if !s.reusers.is_empty() {
            h2 { "Réutilisé par " (s.reusers.len()) @if s.reusers.len() > 1 { " collectivités" } @else { " collectivité" } }
            ul {
                @for (siren, name) in &s.reusers {
                    li { a href=(format!("/organisations/{siren}")) { (name) } }
                }
            }
        }
        @if let Some(d) = &s.related.details {
            h2 { "Détails du projet" }
            (view::fields(&maillage_record::json::record_to_json(d), &["kind", "record_id", "version", "issued_at", "visibility", "audience", "provenance", "project"]))
        }
        @if !s.related.resources.is_empty() {
            h2 { "Ressources" }
            ul {
                @for (by, r) in &s.related.resources {
                    li {
                        a href=(view::record_href(by, &r.record_id)) { (title(r)) }
                        @if let Body::Resource(res) = &r.body { " · " (res.resource_kind.label()) }
                    }
                }
            }
        }
        @if !s.related.collections.is_empty() {
            h2 { "Dans les collections" }
            ul {
                @for (by, c) in &s.related.collections {
                    li { a href=(view::record_href(by, &c.record_id)) { (title(c)) } }
                }
            }
        }
        h2 { "Provenance" }
        dl class="champs" {
            dt { "Identifiant" } dd { code { (s.record.record_id) } }
            dt { "Version" } dd { (s.record.version) ", émise le " (view::when(s.record.issued_at_ms)) }
            dt { "Reçu" } dd {
                @if s.relayed { "d'un pair de ce nœud, " } @else { "publié sur ce nœud, " }
                "le " (view::when(s.received_at_ms))
            }
            @if let Some(p) = &s.record.provenance {
                dt { "Source" } dd {
                    "importé (" (p.source_format) ")"
                    @if let Some(src) = &p.source { " depuis " span class="texte" { (src) } }
                }
            }
        }
        @if s.versions.len() > 1 {
            h2 { "Versions" }
            ol reversed {
                @for (v, at) in &s.versions {
                    li { "version " (v) ", émise le " (view::when(*at)) }
                }
            }
        }
    }
}

/// Links to the records a record names (by the referring record's author
/// where a reference names none), listed in order or not.
fn references(author: &str, refs: &[maillage_record::model::RecordRef], ordered: bool) -> Markup {
    let items = html! {
        @for r in refs {
            @let by = r.author.as_deref().unwrap_or(author);
            li { a href=(view::record_href(by, &r.record_id)) { (r.record_id) } }
        }
    };
    html! {
        @if ordered { ol { (items) } } @else { ul { (items) } }
    }
}

/// The signed envelope as stored, for `maillage verify`.
fn envelope_file(s: &Shown) -> Response {
    let name: String = s
        .record
        .record_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"{name}.v{}.maillage\"",
                    s.record.version
                ),
            ),
        ],
        s.envelope.clone(),
    )
        .into_response()
}

/// The record as JSON: what `maillage verify --json` says of its envelope.
fn json(s: &Shown) -> Response {
    let doc = serde_json::json!({
        "id": s.id,
        "author": s.author.to_hex(),
        "signature_verified": s.verified.is_ok(),
        "organisation_siren": s.siren,
        "organisation_name": s.organisation,
        "record": maillage_record::json::record_to_json(&s.record),
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec_pretty(&doc).unwrap_or_default(),
    )
        .into_response()
}

/// A dataset as DCAT-AP JSON-LD, as the catalogue describes it.
fn json_ld(http: &Http, s: &Shown) -> Response {
    if s.record.kind() != Kind::Dataset {
        return crate::http::text(
            StatusCode::NOT_ACCEPTABLE,
            "only datasets have a DCAT-AP form: ask for application/json or text/html\n",
        );
    }
    let node = &http.node;
    let info = CatalogInfo::for_node(node.name(), node.siren().as_str(), &http.public_url);
    let entry = maillage_dcat::Entry {
        author: s.author.to_hex(),
        record: &s.record,
        author_organisation: s
            .organisation
            .as_ref()
            .map(|name| maillage_record::model::Agent {
                name: name.clone(),
                siren: s.siren.clone(),
                url: None,
            }),
        relations: s.related.relations(),
    };
    let graph = maillage_dcat::catalog(&info, &[entry], None);
    (
        [(header::CONTENT_TYPE, "application/ld+json")],
        serde_json::to_vec_pretty(&graph.to_jsonld()).unwrap_or_default(),
    )
        .into_response()
}
