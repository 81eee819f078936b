//! `maillage members`: the collectivities this node gathers as a chef de
//! file (or a committee), or those of one territory.

use std::path::Path;

use serde_json::{Value, json};

use crate::connect::{NodeConn, refused};

pub async fn members(dir: &Path, territory: Option<&str>, json_out: bool) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let answer = conn
        .admin()
        .members(maillage_proto::v1::MembersRequest {
            territory: territory.unwrap_or_default().to_string(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    let members = &answer.members;
    let with_node = members.iter().filter(|m| m.runs_node).count();
    let empty = members
        .iter()
        .filter(|m| m.datasets == 0 && m.projects == 0)
        .count();
    if json_out {
        let items: Vec<Value> = members
            .iter()
            .map(|m| {
                json!({"siren": m.siren, "name": m.name, "kind": m.kind, "runs_node": m.runs_node,
                       "datasets": m.datasets, "projects": m.projects, "reuses": m.reuses,
                       "through_this_node": m.through_this_node,
                       "last_record": (m.last_record_ms > 0)
                           .then(|| maillage_record::json::format_time(m.last_record_ms))})
            })
            .collect();
        let doc = json!({
            "scope_from": answer.scope_from, "scope": answer.scope, "members": items,
            "summary": {"members": members.len(), "run_a_node": with_node, "without_catalogue": empty},
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let from = match answer.scope_from.as_str() {
        "membership" => "the scope its chef-de-file or committee membership gives this node",
        "asked" => "the territory asked",
        _ => "this node's own territory (no chef-de-file or committee membership names its key)",
    };
    eprintln!("scope: {} ({from})", answer.scope.join(", "));
    for m in members {
        let last = if m.last_record_ms > 0 {
            maillage_record::json::format_time(m.last_record_ms)
                .get(..10)
                .unwrap_or("-")
                .to_string()
        } else {
            "-".into()
        };
        println!(
            "{}  {:<12} {:<44} {:>5} datasets {:>5} projects {:>4} reuses {:>5} through this node  last {last}  {}",
            m.siren,
            if m.kind.is_empty() {
                "-"
            } else {
                m.kind.as_str()
            },
            m.name,
            m.datasets,
            m.projects,
            m.reuses,
            m.through_this_node,
            if m.runs_node { "runs a node" } else { "" }
        );
    }
    eprintln!(
        "{} member(s): {with_node} run a node this node trusts, {empty} have no catalogue here yet",
        members.len()
    );
    Ok(())
}
