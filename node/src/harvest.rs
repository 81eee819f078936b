//! Sources the node harvests by itself (`[[harvest]]` in the config): each
//! on its own schedule, fetched and followed page by page
//! (`maillage-harvest`), read by `maillage-import`, and imported as
//! `maillage import` does: signed by the node, on behalf of the organisation
//! the source names, matched on the source's identifiers so a run updates
//! rather than duplicates. `status` shows each source's last run.
//!
//! A run that cannot read its source to the end (an address that does not
//! answer, a page that is not the format) imports nothing and says why;
//! the next run tries again. Records that left the source are withdrawn
//! only when asked (`withdraw_missing`) and only after a run that refused
//! no row (a refused row may be a record still in the source).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maillage_harvest::Fetcher;
use maillage_import::Options;
use maillage_record::Record;

use crate::author::Outcome;
use crate::config;
use crate::node::Node;

/// Drafts imported in one write.
const BATCH: usize = 1_000;
/// How long after the node starts each source runs first: the node settles
/// (and a node restarting in a loop does not hammer its sources).
const FIRST_RUN: Duration = Duration::from_secs(30);

/// The sources and their last runs.
pub struct Harvests {
    sources: Vec<Source>,
}

struct Source {
    config: config::Harvest,
    last: Mutex<Run>,
    /// Held while a run is under way: one at a time per source.
    running: tokio::sync::Mutex<()>,
}

/// A run of a harvest, as `status` shows it.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub started_ms: i64,
    pub finished_ms: i64,
    pub next_ms: i64,
    pub running: bool,
    pub pages: u64,
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rows_with_warnings: u64,
    pub refused_rows: u64,
    pub withdrawn: u64,
    /// Why it imported nothing.
    pub error: Option<String>,
}

/// Why a harvest cannot be run now.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no harvest is named '{0}' in the config ([[harvest]] name = …)")]
    NotFound(String),
    #[error("the harvest '{0}' is running already")]
    Running(String),
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Harvests {
    pub fn new(sources: &[config::Harvest]) -> Harvests {
        Harvests {
            sources: sources
                .iter()
                .map(|c| Source {
                    config: c.clone(),
                    last: Mutex::default(),
                    running: tokio::sync::Mutex::new(()),
                })
                .collect(),
        }
    }

    /// Every source with its last run.
    pub fn statuses(&self) -> Vec<(config::Harvest, Run)> {
        self.sources
            .iter()
            .map(|s| (s.config.clone(), lock(&s.last).clone()))
            .collect()
    }

    /// One task per source, running it on its schedule until the node stops.
    pub fn spawn(node: &Arc<Node>) {
        for at in 0..node.harvests().sources.len() {
            let node = node.clone();
            tokio::spawn(async move {
                let mut stopping = node.stopping();
                let mut wait = FIRST_RUN;
                loop {
                    let interval = node.harvests().sources[at].config.interval;
                    lock(&node.harvests().sources[at].last).next_ms =
                        now_ms() + wait.as_millis() as i64;
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stopping.wait_for(|s| *s) => return,
                    }
                    let source = &node.harvests().sources[at];
                    let guard = source.running.lock().await;
                    tokio::select! {
                        _ = run(&node, at) => {}
                        _ = stopping.wait_for(|s| *s) => return,
                    }
                    drop(guard);
                    wait = interval;
                }
            });
        }
    }

    /// Runs the harvest `name` now; its run when done.
    pub async fn run_now(node: &Arc<Node>, name: &str) -> Result<Run, RunError> {
        let at = node
            .harvests()
            .sources
            .iter()
            .position(|s| s.config.name == name)
            .ok_or_else(|| RunError::NotFound(name.to_string()))?;
        let source = &node.harvests().sources[at];
        let Ok(_guard) = source.running.try_lock() else {
            return Err(RunError::Running(name.to_string()));
        };
        Ok(run(node, at).await)
    }
}

fn lock(m: &Mutex<Run>) -> std::sync::MutexGuard<'_, Run> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One run of source `at` (its `running` lock held by the caller).
async fn run(node: &Arc<Node>, at: usize) -> Run {
    let source = &node.harvests().sources[at];
    let cfg = &source.config;
    {
        let mut last = lock(&source.last);
        last.running = true;
        last.started_ms = now_ms();
    }
    tracing::info!(harvest = %cfg.name, url = %cfg.url, "harvest started");
    let mut run = harvest(node, cfg).await;
    {
        // The schedule says when the next run is (a run asked for now does
        // not move it).
        let last = lock(&source.last);
        run.started_ms = last.started_ms;
        run.next_ms = last.next_ms;
    }
    run.finished_ms = now_ms();
    match &run.error {
        None => tracing::info!(
            harvest = %cfg.name,
            pages = run.pages,
            rows = run.rows,
            created = run.created,
            updated = run.updated,
            unchanged = run.unchanged,
            warned = run.rows_with_warnings,
            refused = run.refused_rows,
            withdrawn = run.withdrawn,
            "harvest done"
        ),
        Some(e) => {
            tracing::warn!(harvest = %cfg.name, error = %e, "harvest failed; nothing imported")
        }
    }
    *lock(&source.last) = run.clone();
    run
}

async fn harvest(node: &Arc<Node>, cfg: &config::Harvest) -> Run {
    let mut run = Run::default();
    let mut fetcher = Fetcher::new();
    fetcher.timeout = cfg.timeout;
    let options = Options {
        delimiter: cfg.delimiter,
        ..Options::default()
    };
    let mut drafts: Vec<Record> = Vec::new();
    let mut keep: HashSet<String> = HashSet::new();
    let read =
        maillage_harvest::harvest(&fetcher, cfg.format, &cfg.url, &cfg.url, &options, |page| {
            run.pages += 1;
            let refused = page.parsed.refused_rows();
            run.refused_rows += refused as u64;
            run.rows += (page.parsed.rows.len() + refused) as u64;
            for row in page.parsed.rows {
                run.rows_with_warnings += u64::from(!row.warnings.is_empty());
                for record in row.records {
                    // The same row twice (across pages): the first is kept.
                    if keep.insert(record.record_id.clone()) {
                        drafts.push(record);
                    } else {
                        run.refused_rows += 1;
                    }
                }
            }
        })
        .await;
    if let Err(e) = read {
        return Run {
            error: Some(e.to_string()),
            ..Run::default()
        };
    }
    for batch in drafts.chunks(BATCH) {
        let (n, batch) = (node.clone(), batch.to_vec());
        let outcomes = node
            .background()
            .spawn(move || n.author().import(batch))
            .await;
        match outcomes {
            Ok(Ok(outcomes)) => {
                for o in outcomes {
                    match o {
                        Outcome::Created { .. } => run.created += 1,
                        Outcome::Updated { .. } => run.updated += 1,
                        Outcome::Unchanged { .. } => run.unchanged += 1,
                        Outcome::Rejected(why) => {
                            tracing::info!(harvest = %cfg.name, %why, "a row refused");
                            run.refused_rows += 1;
                        }
                    }
                }
            }
            Ok(Err(e)) => {
                run.error = Some(format!("the records could not be stored: {e}"));
                return run;
            }
            Err(e) => {
                run.error = Some(format!("the import task failed: {e}"));
                return run;
            }
        }
    }
    if cfg.withdraw_missing && run.refused_rows == 0 && !keep.is_empty() {
        let (n, format, url) = (node.clone(), cfg.format.as_str(), cfg.url.clone());
        match node
            .background()
            .spawn(move || n.author().withdraw_missing(format, &url, &keep))
            .await
        {
            Ok(Ok(gone)) => run.withdrawn = gone.len() as u64,
            Ok(Err(e)) => run.error = Some(format!("withdrawing what left the source failed: {e}")),
            Err(e) => run.error = Some(format!("the withdrawal task failed: {e}")),
        }
    }
    run
}
