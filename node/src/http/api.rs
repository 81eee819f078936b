//! The machine-readable endpoints: DCAT-AP catalogue pages, the projects
//! as JSON, search and statistics as JSON. Anonymous: public records only;
//! with a read token (or a portal session), what that SIREN may see, each
//! record beyond the public written to the access log.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maillage_dcat::{CatalogInfo, Page};
use maillage_record::Kind;

use super::{Http, text};
use crate::export::View;
use crate::portal::Visitor;
use crate::query_string::Params;
use crate::search::{Filters, GroupBy, SearchError, SearchRequest};
use crate::store::StoreError;

pub(super) async fn catalog_jsonld(
    state: State<Http>,
    visitor: Visitor,
    params: Params,
) -> Response {
    catalog(state, visitor, params, false).await
}

pub(super) async fn catalog_turtle(
    state: State<Http>,
    visitor: Visitor,
    params: Params,
) -> Response {
    catalog(state, visitor, params, true).await
}

/// Which records an export holds (`?org=SIREN`, `?own=1`).
fn view(params: &Params) -> Result<View, String> {
    let organisation = match params.get("org") {
        None => None,
        Some(s) => Some(
            maillage_record::Siren::parse(s)
                .map_err(|e| format!("org='{s}' is not a SIREN: {e}\n"))?,
        ),
    };
    let own = match params.get("own") {
        None | Some("0" | "false") => false,
        Some("1" | "true") => true,
        Some(v) => {
            return Err(format!(
                "own='{v}': write own=1 for this node's own records\n"
            ));
        }
    };
    let exclude_source = match params.get("exclude_source") {
        None => None,
        Some(h) => Some(View::source_to_exclude(h).map_err(|e| format!("{e}\n"))?),
    };
    Ok(View {
        organisation,
        own,
        exclude_source,
    })
}

/// What an export asks (its page, its view), and its turn to be answered.
async fn export_request(
    http: &Http,
    params: &Params,
) -> Result<(Option<(usize, usize)>, View, crate::http::Turn), Response> {
    let (page, view) = params
        .page()
        .and_then(|p| Ok((p, view(params)?)))
        .map_err(|msg| text(StatusCode::BAD_REQUEST, &msg))?;
    Ok((page, view, http.export_turn().await?))
}

/// The DCAT-AP catalogue, whole or a page of it.
async fn catalog(
    State(http): State<Http>,
    visitor: Visitor,
    params: Params,
    turtle: bool,
) -> Response {
    let (page, view, _turn) = match export_request(&http, &params).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let private = visitor.who().is_some();
    let answer = blocking(move || {
        let node = &http.node;
        let info = CatalogInfo::for_node(node.name(), node.siren().as_str(), &http.public_url);
        let document = if turtle { Page::TURTLE } else { Page::JSON_LD };
        let (graph, read) = http.exports.index(node)?.catalog(
            node,
            &info,
            page,
            document,
            &view,
            &visitor.viewer,
        )?;
        note_export(node, &visitor, read);
        Ok(if turtle {
            (
                [(header::CONTENT_TYPE, "text/turtle; charset=utf-8")],
                graph.to_turtle(),
            )
                .into_response()
        } else {
            let body = serde_json::to_vec_pretty(&graph.to_jsonld()).unwrap_or_default();
            ([(header::CONTENT_TYPE, "application/ld+json")], body).into_response()
        })
    })
    .await;
    for_whoever_asks(answer.unwrap_or_else(|e| e), private)
}

/// The public projects as maillage JSON; a `Link` header names the next page.
pub(super) async fn projects(
    State(http): State<Http>,
    visitor: Visitor,
    params: Params,
) -> Response {
    let (page, view, _turn) = match export_request(&http, &params).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let private = visitor.who().is_some();
    let answer = blocking(move || {
        let (docs, following, read) =
            http.exports
                .index(&http.node)?
                .projects(&http.node, page, &view, &visitor.viewer)?;
        note_export(&http.node, &visitor, read);
        let body = serde_json::to_vec_pretty(&docs).unwrap_or_default();
        let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
        if let Some((n, size)) = following {
            let link = format!(
                "<{}/projects.json?page={n}&page_size={size}{}>; rel=\"next\"",
                http.public_url,
                view.query()
            );
            if let Ok(value) = link.parse() {
                response.headers_mut().insert(header::LINK, value);
            }
        }
        Ok(response)
    })
    .await;
    for_whoever_asks(answer.unwrap_or_else(|e| e), private)
}

/// Notes the records beyond the public an export showed a reader.
fn note_export(node: &crate::node::Node, visitor: &Visitor, read: Vec<crate::access::Read>) {
    if let Some((who, siren)) = visitor.who()
        && !read.is_empty()
    {
        node.note_reads(&who, siren, crate::access::Via::Export, read);
    }
}

/// An export's answer depends on who asks (a token, a session): no shared
/// cache may keep one for another.
fn for_whoever_asks(mut response: Response, private: bool) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::VARY,
        header::HeaderValue::from_static("authorization, cookie"),
    );
    if private {
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("private, no-cache"),
        );
    }
    response
}

/// Runs a blocking read of the store; a failure is logged and answered 500.
async fn blocking(
    f: impl FnOnce() -> Result<Response, StoreError> + Send + 'static,
) -> Result<Response, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "http export failed");
            Err(text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the record store failed; see the node's log\n",
            ))
        }
        Err(_) => Err(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "export task failed\n",
        )),
    }
}

/// The filters of a search or a count, from the query (`org` is the
/// organisation's SIREN).
pub(crate) fn filters(params: &Params) -> Result<Filters, SearchError> {
    let get = |k: &str| params.get(k).map(str::to_string);
    let kind = match params.get("kind") {
        None => None,
        Some(k) => Some(Kind::parse(k).map_err(|e| SearchError::BadRequest(e.to_string()))?),
    };
    Ok(Filters {
        kind,
        theme: get("theme"),
        territory: get("territory"),
        organisation: get("org"),
        status: get("status"),
        risk: get("risk"),
        licence: get("licence"),
    })
}

pub(super) async fn search(state: State<Http>, visitor: Visitor, params: Params) -> Response {
    search_or_stats(state, visitor, params, false).await
}

pub(super) async fn stats(state: State<Http>, visitor: Visitor, params: Params) -> Response {
    search_or_stats(state, visitor, params, true).await
}

/// Signed aggregates `/stats` lists at most.
const STATS_AGGREGATES: usize = 20;

fn aggregate_json(a: &crate::aggregate::Shown) -> serde_json::Value {
    let mut v = serde_json::to_value(&a.aggregate).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("id".into(), a.id.to_hex().into());
        obj.insert("author".into(), a.author.to_hex().into());
        obj.insert("record_id".into(), a.record_id.clone().into());
        obj.insert(
            "issued_at".into(),
            maillage_record::json::format_time(a.issued_at_ms).into(),
        );
        if let Some(name) = &a.organisation {
            obj.insert("organisation_name".into(), name.clone().into());
        }
        // Hashes and the organisations' list are for verifiers (`maillage
        // aggregate verify`, or the record itself): a région's runs to
        // thousands of entries, and twenty of them would make /stats heavy.
        obj.remove("organisation_hashes");
        let organisations = obj
            .remove("organisations")
            .and_then(|o| o.as_array().map(Vec::len))
            .unwrap_or(0);
        obj.insert("organisation_count".into(), organisations.into());
        let combined = obj
            .remove("combines")
            .and_then(|o| o.as_array().map(Vec::len))
            .unwrap_or(0);
        obj.insert("combined_count".into(), combined.into());
    }
    v
}

/// `/search` and `/stats`: public records, or what a read token's (or a
/// signed-in agent's) organisation may see.
async fn search_or_stats(
    State(http): State<Http>,
    visitor: Visitor,
    params: Params,
    stats: bool,
) -> Response {
    let _turn = match http.search_turn().await {
        Ok(t) => t,
        Err(busy) => return busy,
    };
    let node = http.node.clone();
    let reader = visitor.who().map(|(who, siren)| (who, siren.clone()));
    let viewer = visitor.viewer;
    let result = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, SearchError> {
        let filters = filters(&params)?;
        let stored = node.store().last_seq();
        let body = if stats {
            let by = GroupBy::parse(params.get("by").unwrap_or_default())
                .map_err(SearchError::BadRequest)?;
            let mut stats = node.search().stats(&filters, by, &viewer, stored)?;
            // Sequence numbers would count records the public may not see.
            (stats.indexed_seq, stats.stored_seq) = (0, 0);
            let mut doc =
                serde_json::to_value(&stats).map_err(|e| SearchError::Internal(e.to_string()))?;
            // The signed aggregates of the territory (or inside it): figures
            // that include what only the federation sees, small counts
            // suppressed, verifiable by anyone (docs/aggregates.md).
            let aggregates = crate::aggregate::published(
                &node,
                &viewer,
                filters.territory.as_deref(),
                STATS_AGGREGATES,
            )
            .map_err(|e| SearchError::Internal(e.to_string()))?;
            doc["aggregates"] = aggregates.iter().map(aggregate_json).collect();
            serde_json::to_vec_pretty(&doc)
        } else {
            let req = SearchRequest {
                text: params.get("q").unwrap_or_default().to_string(),
                filters,
                page: params.number("page").map_err(SearchError::BadRequest)?,
                page_size: params
                    .number("page_size")
                    .map_err(SearchError::BadRequest)?,
            };
            let mut page = node.search().search(&req, &viewer, stored)?;
            node.finish_hits(
                &viewer,
                &mut page.hits,
                reader.as_ref().map(|(w, s)| (w.as_str(), s)),
            )
            .map_err(|e| SearchError::Internal(e.to_string()))?;
            (page.indexed_seq, page.stored_seq) = (0, 0);
            serde_json::to_vec_pretty(&page)
        };
        body.map_err(|e| SearchError::Internal(e.to_string()))
    })
    .await;
    match result {
        Ok(Ok(body)) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "private, no-cache"),
            ],
            body,
        )
            .into_response(),
        Ok(Err(SearchError::BadRequest(msg))) => {
            text(StatusCode::BAD_REQUEST, &format!("{}\n", msg.trim_end()))
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "http search failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "search failed; see the node's log\n",
            )
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "search task failed\n"),
    }
}
