//! `maillage token create|list|revoke`: read tokens for scripts, which see
//! on the node's HTTP JSON endpoints what an agent of one organisation sees.

use std::path::Path;

use anyhow::anyhow;
use maillage_proto::v1::{Token, TokenCreateRequest, TokenListRequest, TokenRevokeRequest};
use maillage_record::json::format_time;
use serde_json::{Value, json};

use crate::connect::{NodeConn, refused};

fn token_json(t: &Token) -> Value {
    json!({
        "id": t.id,
        "siren": t.siren,
        "name": t.name,
        "created": format_time(t.created_at_ms),
        "expires": format_time(t.expires_at_ms),
        "expired": t.expires_at_ms <= maillage_record::now_ms(),
    })
}

pub async fn create(
    dir: &Path,
    siren: &str,
    name: &str,
    expires: &str,
    json_out: bool,
) -> anyhow::Result<()> {
    let lasts = humantime::parse_duration(expires).map_err(|e| {
        anyhow!("--expires '{expires}' is not a duration ({e}): write it as 90d, 12h or 1y")
    })?;
    let expires_at_ms = maillage_record::now_ms().saturating_add(lasts.as_millis() as i64);
    let conn = NodeConn::open(dir).await?;
    let answer = conn
        .admin()
        .token_create(TokenCreateRequest {
            siren: siren.to_string(),
            name: name.to_string(),
            expires_at_ms,
        })
        .await
        .map_err(refused)?
        .into_inner();
    let info = answer.info.unwrap_or_default();
    if json_out {
        let mut doc = token_json(&info);
        doc["token"] = answer.token.into();
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("{}", answer.token);
        eprintln!(
            "read token {} for SIREN {} ({}), until {}: shown once, keep it safe; \
             scripts send it as `Authorization: Bearer TOKEN`",
            info.id,
            info.siren,
            info.name,
            format_time(info.expires_at_ms)
        );
    }
    Ok(())
}

pub async fn list(dir: &Path, json_out: bool) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let tokens = conn
        .admin()
        .token_list(TokenListRequest {})
        .await
        .map_err(refused)?
        .into_inner()
        .tokens;
    if json_out {
        let items: Vec<Value> = tokens.iter().map(token_json).collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else if tokens.is_empty() {
        eprintln!(
            "no read tokens: make one with `maillage token create --siren SIREN --name NAME`"
        );
    } else {
        for t in &tokens {
            let state = if t.expires_at_ms <= maillage_record::now_ms() {
                "expired"
            } else {
                "until"
            };
            println!(
                "{}  {}  {} {}  {}",
                t.id,
                t.siren,
                state,
                format_time(t.expires_at_ms),
                t.name
            );
        }
    }
    Ok(())
}

pub async fn revoke(dir: &Path, id: &str, json_out: bool) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    conn.admin()
        .token_revoke(TokenRevokeRequest { id: id.to_string() })
        .await
        .map_err(refused)?;
    if json_out {
        println!("{}", json!({ "revoked": id }));
    } else {
        eprintln!("revoked read token {id}: it is refused from now on");
    }
    Ok(())
}

/// `maillage access-log`: who read what beyond the public.
pub async fn access_log(
    dir: &Path,
    since: &str,
    siren: Option<&str>,
    limit: u32,
    json_out: bool,
) -> anyhow::Result<()> {
    let back = humantime::parse_duration(since).map_err(|e| {
        anyhow!("--since '{since}' is not a duration ({e}): write it as 7d, 24h or 90d")
    })?;
    let since_ms = maillage_record::now_ms().saturating_sub(back.as_millis() as i64);
    let conn = NodeConn::open(dir).await?;
    let lines = conn
        .admin()
        .access_log(maillage_proto::v1::AccessLogRequest {
            since_ms,
            siren: siren.unwrap_or_default().to_string(),
            limit,
        })
        .await
        .map_err(refused)?
        .into_inner()
        .lines;
    if json_out {
        let items: Vec<Value> = lines
            .iter()
            .map(|a| {
                json!({
                    "at": format_time(a.at_ms), "who": a.who, "siren": a.siren, "id": a.id,
                    "author": a.author, "record_id": a.record_id, "kind": a.kind, "via": a.via,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else if lines.is_empty() {
        eprintln!("no record beyond the public was read by an agent or a token since {since} ago");
    } else {
        for a in &lines {
            println!(
                "{}  {}  SIREN {}  {:<6}  {} {} ({})",
                format_time(a.at_ms),
                a.who,
                a.siren,
                a.via,
                a.kind,
                a.record_id,
                a.id
            );
        }
    }
    Ok(())
}

/// `maillage proposals list [--all]`.
pub async fn proposals_list(dir: &Path, all: bool, json_out: bool) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let proposals = conn
        .admin()
        .proposal_list(maillage_proto::v1::ProposalListRequest { all })
        .await
        .map_err(refused)?
        .into_inner()
        .proposals;
    if json_out {
        let items: Vec<Value> = proposals.iter().map(proposal_json).collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else if proposals.is_empty() {
        eprintln!("no proposal waits: agents propose records on the portal (/propositions)");
    } else {
        for p in &proposals {
            println!(
                "{}  {}  {}  {} {}  SIREN {}  by {}  {}",
                p.id,
                p.state,
                format_time(p.created_at_ms),
                p.change,
                p.kind,
                p.siren,
                p.agent,
                p.title
            );
        }
    }
    Ok(())
}

fn proposal_json(p: &maillage_proto::v1::Proposal) -> Value {
    json!({
        "id": p.id, "state": p.state, "change": p.change, "base_version": p.base_version,
        "kind": p.kind, "title": p.title, "record_id": p.record_id,
        "siren": p.siren, "organisation": p.organisation, "agent": p.agent, "subject": p.subject,
        "created": format_time(p.created_at_ms), "decided_by": p.decided_by, "reason": p.reason,
        "document": serde_json::from_str::<Value>(&p.document).unwrap_or(Value::Null),
    })
}

/// `maillage proposals accept ID` / `refuse ID --reason R`.
pub async fn proposals_decide(
    dir: &Path,
    id: &str,
    accept: bool,
    reason: &str,
    json_out: bool,
) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let answer = conn
        .admin()
        .proposal_decide(maillage_proto::v1::ProposalDecideRequest {
            id: id.to_string(),
            accept,
            reason: reason.to_string(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    let p = answer.proposal.unwrap_or_default();
    if json_out {
        let mut doc = proposal_json(&p);
        doc["record"] = hex::encode(&answer.record).into();
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if accept {
        eprintln!(
            "accepted {}: {} {} published on behalf of {} (SIREN {}), id {}",
            p.id,
            if p.change == "withdrawal" {
                "the withdrawal of"
            } else {
                "the record"
            },
            p.record_id,
            p.organisation,
            p.siren,
            hex::encode(&answer.record)
        );
    } else {
        eprintln!("refused {}: the agent's organisation sees why", p.id);
    }
    Ok(())
}
