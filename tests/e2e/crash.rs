//! Crash trials: a node killed with SIGKILL at random moments while it
//! publishes, imports and syncs, then started again. After every restart,
//! every record it acknowledged is there, `maillage check` finds the store
//! and the index sound, and a sync resumes to the same set without
//! duplicates.
//!
//! `MAILLAGE_CRASH_TRIALS` sets the number of trials (21 by default, a
//! third of each kind); `MAILLAGE_CRASH_SEED` replays a run (the seed is
//! printed, and named in every failure).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

/// A small, seeded generator: the moments to kill at.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// The bibliothèque IA export of `count` projects of Colomiers, `tag`
/// telling one file's rows from another's.
fn projects_csv(count: usize, tag: &str) -> String {
    colomiers_projects(count, tag, |i| {
        format!("Prévoit les effectifs des écoles {i}.")
    })
}

fn status(dir: &Path) -> serde_json::Value {
    cli_json(dir, &["status", "--json"])
}

/// The ids of every current record on the node.
fn listed(dir: &Path) -> BTreeSet<String> {
    cli_json(dir, &["list", "--json", "--all"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// Waits for the index to reach the store, then runs `maillage check`.
fn assert_sound(dir: &Path, trial: &str) {
    eventually(Duration::from_secs(60), "the index catches up", || {
        let s = status(dir);
        s["indexed_seq"] == s["last_seq"] && s["search_rebuilding"] == false
    });
    let out = cli(dir, &["check", "--json"]);
    assert!(
        out.status.success(),
        "{trial}: check found problems:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kills `node` after `delay` while `work` runs, lets `work` see the node
/// gone, and returns what it acknowledged.
fn kill_during<T: Send + 'static>(
    node: &mut NodeProc,
    delay: Duration,
    work: impl FnOnce(Arc<AtomicBool>) -> T + Send + 'static,
) -> T {
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = stop.clone();
        std::thread::spawn(move || work(stop))
    };
    std::thread::sleep(delay);
    node.kill();
    stop.store(true, Ordering::Release);
    worker.join().unwrap()
}

#[test]
fn a_node_killed_at_random_loses_nothing_it_acknowledged() {
    let trials: usize = std::env::var("MAILLAGE_CRASH_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(21);
    let seed: u64 = std::env::var("MAILLAGE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash trials: {trials}, MAILLAGE_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();

    // The source of every sync: 3,000 projects, imported once.
    let source = tmp.path().join("source");
    init(&source, "213101496", "Colomiers");
    let _source_node = start(&source);
    let file = tmp.path().join("source.csv");
    std::fs::write(&file, projects_csv(3_000, "source")).unwrap();
    let out = cli(
        &source,
        &["import", "bibliotheque-ia", file.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let source_envelopes = status(&source)["envelopes"].as_u64().unwrap();

    // The node that publishes and imports, killed again and again.
    let dir = tmp.path().join("metropole");
    init(&dir, "243100518", "Toulouse Métropole");
    let mut node = start(&dir);
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();
    let started = Instant::now();
    for trial in 0..trials {
        let delay = Duration::from_millis(50 + rng.below(1_500));
        let mut reimport = None;
        let began = Instant::now();
        let what = format!("trial {trial} (seed {seed}, kill after {delay:?})");
        match trial % 3 {
            // Publishing, one record after another.
            0 => {
                let (d, n) = (dir.clone(), trial);
                let acked = Arc::new(Mutex::new(Vec::new()));
                let seen = acked.clone();
                kill_during(&mut node, delay, move |stop| {
                    for i in 0.. {
                        if stop.load(Ordering::Acquire) {
                            return;
                        }
                        let doc = write_doc(
                            &d,
                            &format!("t{n}-{i}.json"),
                            serde_json::json!({
                                "kind": "dataset",
                                "record_id": format!("essai-{n}-{i}"),
                                "title": format!("Essai {n} {i}"),
                                "description": "Publié pendant un essai de panne.",
                                "visibility": "public",
                            }),
                        );
                        let out = cli(&d, &["publish", "--json", doc.to_str().unwrap()]);
                        if out.status.success() {
                            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                            seen.lock()
                                .unwrap()
                                .push(v["id"].as_str().unwrap().to_string());
                        }
                    }
                });
                acknowledged.extend(acked.lock().unwrap().drain(..));
            }
            // Importing a file of 400 rows, in batches.
            1 => {
                let csv = tmp.path().join(format!("import-{trial}.csv"));
                std::fs::write(&csv, projects_csv(400, &format!("import {trial}"))).unwrap();
                let d = dir.clone();
                let finished = kill_during(&mut node, delay, move |_| {
                    cli(
                        &d,
                        &["import", "--json", "bibliotheque-ia", csv.to_str().unwrap()],
                    )
                    .status
                    .success()
                });
                reimport = Some((tmp.path().join(format!("import-{trial}.csv")), finished));
            }
            // Syncing 3,000 records from the source into a new node.
            _ => {
                let fresh = tmp.path().join(format!("sync-{trial}"));
                init(&fresh, "213100696", "Blagnac");
                let mut syncing = start(&fresh);
                peer(&source, &format!("blagnac{trial}"), &fresh);
                trust(&fresh, &source);
                peer(&fresh, "colomiers", &source);
                // Killed once it holds a random part of the source.
                let target = 2 + rng.below(source_envelopes - 2);
                let mut had = 0;
                while had < target {
                    had = status(&fresh)["envelopes"].as_u64().unwrap();
                }
                syncing.kill();
                syncing = start(&fresh);
                assert_sound(&fresh, &what);
                // The source's envelopes and its own Organisation record.
                let expected = source_envelopes + 1;
                eventually(
                    Duration::from_secs(120),
                    "the sync resumes to the end",
                    || status(&fresh)["envelopes"].as_u64().unwrap() >= expected,
                );
                // None twice.
                assert_eq!(
                    status(&fresh)["envelopes"].as_u64().unwrap(),
                    expected,
                    "{what}"
                );
                assert_sound(&fresh, &what);
                syncing.kill();
                let out = cli(&source, &["peer", "remove", &format!("blagnac{trial}")]);
                assert!(out.status.success());
                eprintln!(
                    "trial {trial}: sync killed at {had} envelopes or a little more, {:?}",
                    began.elapsed()
                );
                continue;
            }
        }
        eprintln!("{what}: killed at {:?}", began.elapsed());
        node = start(&dir);
        let held = listed(&dir);
        let lost: Vec<&String> = acknowledged.difference(&held).collect();
        assert!(
            lost.is_empty(),
            "{what}: {} acknowledged, then lost, among them {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        assert_sound(&dir, &what);
        // An import that said it was done is all there; one cut short
        // completes when run again.
        if let Some((csv, finished)) = reimport {
            let out = cli_json(
                &dir,
                &["import", "--json", "bibliotheque-ia", csv.to_str().unwrap()],
            );
            if finished {
                assert_eq!(out["unchanged"], 400, "{what}: {out}");
            } else {
                assert_eq!(
                    out["rejected"].as_array().unwrap().len(),
                    0,
                    "{what}: {out}"
                );
            }
        }
    }
    eprintln!(
        "crash trials: {trials} passed in {:?}, {} acknowledged publishes kept",
        started.elapsed(),
        acknowledged.len()
    );
}
