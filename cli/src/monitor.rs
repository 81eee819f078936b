//! `maillage check`, as monitoring tools run it (Centreon, Nagios, Icinga,
//! Zabbix): one line "MAILLAGE <STATE> - what | perfdata", and the exit
//! status those tools read: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
//! `--health` asks the node's status (cheap: every minute is fine); the
//! plain `check` verifies the whole store and index (long: once a day).

use std::path::Path;

use maillage_proto::v1::{CheckRequest, StatusRequest};
use serde_json::json;

use crate::connect::NodeConn;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }
}

/// A check that found the node not OK: `main` prints nothing more and
/// exits with the state's status (the line is printed already).
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.name())]
pub struct NotOk(pub State);

impl NotOk {
    pub fn exit_status(&self) -> i32 {
        self.0 as i32
    }
}

/// Changes in the store the index may lag behind before it is a warning.
const INDEX_LAG_WARNING: u64 = 10_000;

fn report(state: State, findings: &[String], perf: &str, json_out: bool) -> anyhow::Result<()> {
    // '|' starts the perfdata in the plugins' format: not in the text.
    let text = if findings.is_empty() {
        "all is well".to_string()
    } else {
        findings.join("; ").replace('|', "/")
    };
    if json_out {
        println!(
            "{}",
            json!({"state": state.name(), "exit_status": state as i32, "findings": findings})
        );
    } else {
        println!("MAILLAGE {} - {text} | {perf}", state.name());
    }
    match state {
        State::Ok => Ok(()),
        s => Err(NotOk(s).into()),
    }
}

/// Opens the node, or says why not as a monitoring state: not running is
/// CRITICAL (the service is down), anything else UNKNOWN (the check could
/// not tell: permission, config).
async fn open(at: &Path, json_out: bool) -> anyhow::Result<NodeConn> {
    match NodeConn::open(at).await {
        Ok(conn) => Ok(conn),
        Err(e) => {
            let text = format!("{e:#}");
            let state = if text.contains("not running") || text.contains("does not answer") {
                State::Critical
            } else {
                State::Unknown
            };
            report(state, &[text], "", json_out).map(|()| unreachable!("never OK"))
        }
    }
}

/// The node's state from its status: peers, index, quarantine, conflicts,
/// restore, snapshots.
pub async fn health(at: &Path, json_out: bool) -> anyhow::Result<()> {
    let conn = open(at, json_out).await?;
    // The node answers its socket but not its status: it is not well.
    let s = match conn.admin().status(StatusRequest {}).await {
        Ok(s) => s.into_inner(),
        Err(e) => return report(State::Critical, &[e.message().to_string()], "", json_out),
    };
    let mut state = State::Ok;
    let mut findings = Vec::new();
    let mut raise = |to: State, what: String| {
        state = state.max(to);
        findings.push(what);
    };
    if s.peers > 0 && s.peers_healthy == 0 {
        raise(
            State::Critical,
            format!("no peer of {} answered its last sync", s.peers),
        );
    } else if s.peers_healthy < s.peers {
        raise(
            State::Warning,
            format!("{} of {} peers failing", s.peers - s.peers_healthy, s.peers),
        );
    }
    let lag = s.last_seq.saturating_sub(s.indexed_seq);
    if s.search_rebuilding {
        raise(State::Warning, "search index rebuilding".into());
    } else if lag > INDEX_LAG_WARNING {
        raise(State::Warning, format!("search index {lag} changes behind"));
    }
    if !s.restore_waiting.is_empty() {
        raise(
            State::Warning,
            format!(
                "restored: signs nothing until synced with {}",
                s.restore_waiting.join(", ")
            ),
        );
    }
    if !s.conflicts.is_empty() {
        raise(
            State::Warning,
            format!(
                "{} version(s) signed twice (`maillage status`)",
                s.conflicts.len()
            ),
        );
    }
    if !s.last_backup_error.is_empty() {
        raise(
            State::Warning,
            format!("last snapshot failed: {}", s.last_backup_error),
        );
    } else if s.backup_interval_s > 0 {
        // A snapshot missed (the node down at its time) is a warning once
        // the last is twice the interval old; none at all since the node
        // started, after twice the interval of uptime.
        let limit_ms = 2 * s.backup_interval_s as i64 * 1000;
        let late = if s.last_backup_ms > 0 {
            maillage_record::now_ms() - s.last_backup_ms > limit_ms
        } else {
            s.uptime_seconds as i64 * 1000 > limit_ms
        };
        if late {
            raise(
                State::Warning,
                format!(
                    "no snapshot for twice the interval ({})",
                    humantime::format_duration(std::time::Duration::from_secs(
                        2 * s.backup_interval_s
                    ))
                ),
            );
        }
    }
    let failed_harvests = s.harvests.iter().filter(|h| !h.error.is_empty()).count();
    if failed_harvests > 0 {
        raise(
            State::Warning,
            format!("{failed_harvests} harvest(s) failed their last run"),
        );
    }
    let perf = format!(
        "envelopes={} peers={} peers_ok={} index_lag={lag} quarantined={} conflicts={}",
        s.envelopes,
        s.peers,
        s.peers_healthy,
        s.quarantined,
        s.conflicts.len()
    );
    report(state, &findings, &perf, json_out)
}

/// Every signature and table verified again (`Admin.Check`): CRITICAL if
/// anything is wrong.
pub async fn verify(at: &Path, json_out: bool) -> anyhow::Result<()> {
    let conn = open(at, json_out).await?;
    let r = match conn.admin().check(CheckRequest {}).await {
        Ok(r) => r.into_inner(),
        Err(e) => return report(State::Unknown, &[e.message().to_string()], "", json_out),
    };
    if json_out {
        // The full report, as scripts read it, then the state.
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "sound": r.problem_count == 0,
                "checked": r.checked,
                "problems": r.problems,
                "problem_count": r.problem_count,
                "last_seq": r.last_seq,
                "indexed_seq": r.indexed_seq,
                "state": if r.problem_count == 0 { "OK" } else { "CRITICAL" },
            }))?
        );
        return match r.problem_count {
            0 => Ok(()),
            _ => Err(NotOk(State::Critical).into()),
        };
    }
    let mut checked: Vec<(&String, &u64)> = r.checked.iter().collect();
    checked.sort();
    let total: u64 = checked.iter().map(|(_, n)| **n).sum();
    let mut findings: Vec<String> = r.problems.clone();
    if r.problem_count as usize > r.problems.len() {
        findings.push(format!(
            "... and {} more",
            r.problem_count as usize - r.problems.len()
        ));
    }
    if !findings.is_empty() {
        findings.push(
            "restore the store from a backup, or run `maillage reindex` if only the search index is wrong"
                .into(),
        );
    }
    let state = if r.problem_count == 0 {
        State::Ok
    } else {
        State::Critical
    };
    let perf = format!("checked={total} problems={}", r.problem_count);
    report(state, &findings, &perf, false)
}
