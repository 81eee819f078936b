//! Search and Stats of the Catalogue service: requests into `search`'s
//! types, results back into messages.

use maillage_proto::v1 as pb;
use maillage_record::{RecordId, wire};
use tonic::Status;

use crate::node::Node;
use crate::search::{Bucket, Filters, GroupBy, Results, SearchError, SearchRequest, Stats};
use crate::viewer::Viewer;

pub(crate) fn search_status(e: SearchError) -> Status {
    match e {
        SearchError::BadRequest(m) => Status::invalid_argument(m),
        e => {
            tracing::error!(error = %e, "search failure");
            Status::internal(e.to_string())
        }
    }
}

fn filters(f: Option<pb::SearchFilters>) -> Result<Filters, Status> {
    let f = f.unwrap_or_default();
    let text = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    Ok(Filters {
        kind: wire::kind_from_proto(f.kind).map_err(|e| Status::invalid_argument(e.to_string()))?,
        theme: text(f.theme),
        territory: text(f.territory),
        organisation: text(f.organisation),
        status: text(f.status),
        risk: text(f.risk),
        licence: text(f.licence),
    })
}

fn bucket(b: Bucket) -> pb::Bucket {
    pb::Bucket {
        value: b.value,
        label: b.label,
        count: b.count,
    }
}

/// How far the index follows the store, for the operator only: sequence
/// numbers count every record, those a caller may not see too (0 for
/// anyone else).
pub(crate) fn progress(viewer: &Viewer, indexed_seq: u64, stored_seq: u64) -> (u64, u64) {
    if *viewer == Viewer::Operator {
        (indexed_seq, stored_seq)
    } else {
        (0, 0)
    }
}

/// Runs a search (blocking: it reads the index and the store).
pub(crate) fn search(
    node: &Node,
    req: pb::SearchRequest,
    viewer: &Viewer,
) -> Result<pb::SearchResponse, Status> {
    let with_envelopes = req.with_envelopes;
    let request = SearchRequest {
        text: req.query,
        filters: filters(req.filters)?,
        page: req.page as usize,
        page_size: req.page_size as usize,
    };
    let Results {
        total,
        page,
        page_size,
        mut hits,
        facets,
        indexed_seq,
        stored_seq,
    } = node
        .search()
        .search(&request, viewer, node.store().last_seq())
        .map_err(search_status)?;
    node.finish_hits(viewer, &mut hits, None)
        .map_err(super::store_status)?;
    let (indexed_seq, stored_seq) = progress(viewer, indexed_seq, stored_seq);
    let ids: Vec<RecordId> = hits.iter().map(|h| h.id).collect();
    // The envelopes, visibility checked once more against the store: the
    // index may lag behind a record's new version.
    let mut envelopes = if with_envelopes {
        node.visible_envelopes(&ids, viewer)
            .map_err(super::store_status)?
            .into_iter()
            .map(|(e, _)| {
                (
                    maillage_record::envelope::record_id(&e.payload, &e.author, &e.signature),
                    e,
                )
            })
            .collect()
    } else {
        std::collections::HashMap::new()
    };
    let hits = hits
        .into_iter()
        .map(|h| pb::SearchHit {
            id: h.id.0.to_vec(),
            record_id: h.record_id,
            version: h.version,
            kind: wire::kind_to_proto(h.kind) as i32,
            title: h.title,
            author: h.author.0.to_vec(),
            organisation_siren: h.organisation_siren.unwrap_or_default(),
            organisation_name: h.organisation_name.unwrap_or_default(),
            signature_verified: h.signature_verified,
            relayed_by: h.relayed_by.unwrap_or_default(),
            received_at_ms: h.received_at_ms,
            score: h.score,
            envelope: envelopes.remove(&h.id),
            author_trust: h.author_trust.into(),
            siren_source: h.siren_source.into(),
        })
        .collect();
    Ok(pb::SearchResponse {
        total,
        hits,
        facets: facets
            .into_iter()
            .map(|(name, buckets)| pb::Facet {
                name,
                buckets: buckets.into_iter().map(bucket).collect(),
            })
            .collect(),
        page: page as u32,
        page_size: page_size as u32,
        indexed_seq,
        stored_seq,
    })
}

/// Computes statistics (blocking).
pub(crate) fn stats(
    node: &Node,
    req: pb::StatsRequest,
    viewer: &Viewer,
) -> Result<pb::StatsResponse, Status> {
    let by = GroupBy::parse(&req.by).map_err(Status::invalid_argument)?;
    let Stats {
        total,
        by,
        groups,
        projects: p,
        indexed_seq,
        stored_seq,
    } = node
        .search()
        .stats(&filters(req.filters)?, by, viewer, node.store().last_seq())
        .map_err(search_status)?;
    let (indexed_seq, stored_seq) = progress(viewer, indexed_seq, stored_seq);
    let buckets = |v: Vec<Bucket>| v.into_iter().map(bucket).collect();
    Ok(pb::StatsResponse {
        total,
        by,
        groups: buckets(groups),
        projects: Some(pb::ProjectStats {
            projects: p.projects,
            by_status: buckets(p.by_status),
            by_risk: buckets(p.by_risk),
            with_details: p.with_details,
            by_budget: buckets(p.by_budget),
            energy_kwh_per_year: p.energy_kwh_per_year,
            energy_reported: p.energy_reported,
            emissions_kgco2e_per_year: p.emissions_kgco2e_per_year,
            emissions_reported: p.emissions_reported,
        }),
        indexed_seq,
        stored_seq,
    })
}
