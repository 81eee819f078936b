//! Backups of a running node (`maillage backup`, and the snapshots
//! `[backup]` takes on an interval), and the hold a restored node keeps
//! until it has synced with its peers.
//!
//! A backup is a directory: `store/` (a RocksDB checkpoint: peers, trust,
//! tokens and proposals live in the store, so they are in it),
//! `maillage.toml`, `organisation.envelope`, `manifest.json`, and
//! `organisation.key` only when asked. The search index is not in it: a
//! node rebuilds it from the store at start. `maillage restore` (in the
//! CLI, which links no RocksDB) turns one back into a node directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::node::Node;
use crate::store::StoreError;

/// The backup's description, read by `maillage restore`.
pub const MANIFEST: &str = "manifest.json";
/// Written by `maillage restore` into the directory it restores: the node
/// signs nothing until it has synced with each peer, then removes it.
pub const RESTORED: &str = "restored.json";
/// The layout of a backup directory; `maillage restore` refuses others.
pub const FORMAT: u32 = 1;
/// What the automatic snapshots are named: this, then the UTC time.
const SNAPSHOT_PREFIX: &str = "maillage-";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("'{0}' is not an absolute path: give the backup's directory from the root")]
    Relative(PathBuf),
    #[error("{0} exists already: a backup goes to a new directory (give another name)")]
    Exists(PathBuf),
    #[error(
        "cannot write {path}: {source}. The node's own user writes backups: give a directory it \
         may write (under systemd, /var/backups/maillage or /var/lib/maillage)"
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Serialize)]
struct Manifest<'a> {
    format: u32,
    maillage_version: &'static str,
    siren: &'a str,
    name: &'a str,
    public_key: String,
    created_ms: i64,
    last_seq: u64,
    envelopes: u64,
    peers: Vec<String>,
    trust_roots: usize,
    with_key: bool,
    /// The node directory backed up: relative paths of the config were
    /// relative to it (`maillage restore` makes them absolute).
    node_dir: String,
}

/// A backup written.
#[derive(Debug, Clone)]
pub struct Written {
    pub dir: PathBuf,
    pub last_seq: u64,
    pub envelopes: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub with_key: bool,
}

/// Where a node's files are, for its backups.
#[derive(Debug, Clone)]
pub struct Sources {
    pub node_dir: PathBuf,
    pub config: PathBuf,
    pub organisation: PathBuf,
    pub key: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a backup of `node` into `dest` (blocking). It is written in a
/// hidden sibling directory and renamed at the end: `dest` is complete
/// or absent, even if the node dies half-way.
pub fn write(
    node: &Node,
    sources: &Sources,
    dest: &Path,
    with_key: bool,
) -> Result<Written, BackupError> {
    let began = Instant::now();
    if !dest.is_absolute() {
        return Err(BackupError::Relative(dest.to_path_buf()));
    }
    // Under systemd the node has a /tmp of its own (PrivateTmp), gone when
    // it stops: a backup there would vanish unseen.
    if std::env::var_os("INVOCATION_ID").is_some()
        && (dest.starts_with("/tmp") || dest.starts_with("/var/tmp"))
    {
        return Err(BackupError::Io {
            path: dest.to_path_buf(),
            source: std::io::Error::other(
                "the node runs under systemd with a private /tmp, which nobody else sees",
            ),
        });
    }
    if dest.exists() {
        return Err(BackupError::Exists(dest.to_path_buf()));
    }
    let parent = dest.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".into());
    let partial = parent.join(format!(".{name}.partial"));
    // A partial one left by a node that died half-way is garbage.
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(io(&partial))?;
    }
    let result = fill(node, sources, &partial, with_key);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    let (last_seq, envelopes) = result?;
    std::fs::rename(&partial, dest).map_err(io(dest))?;
    sync_dir(parent);
    Ok(Written {
        dir: dest.to_path_buf(),
        last_seq,
        envelopes,
        bytes: dir_bytes(dest),
        elapsed: began.elapsed(),
        with_key,
    })
}

fn fill(
    node: &Node,
    sources: &Sources,
    dir: &Path,
    with_key: bool,
) -> Result<(u64, u64), BackupError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let (envelopes, _, _) = node.store().counts();
    let last_seq = node.store().checkpoint(&dir.join("store"))?;
    copy_private(&sources.config, &dir.join("maillage.toml"))?;
    if sources.organisation.exists() {
        copy_private(&sources.organisation, &dir.join("organisation.envelope"))?;
    }
    if with_key {
        copy_private(&sources.key, &dir.join("organisation.key"))?;
    }
    let manifest = Manifest {
        format: FORMAT,
        maillage_version: env!("CARGO_PKG_VERSION"),
        siren: node.siren().as_str(),
        name: node.name(),
        public_key: node.public_key().to_hex(),
        created_ms: maillage_record::now_ms(),
        last_seq,
        envelopes,
        peers: node.peers().list().into_iter().map(|p| p.name).collect(),
        trust_roots: node.trust().roots().len(),
        with_key,
        node_dir: std::path::absolute(&sources.node_dir)
            .unwrap_or_else(|_| sources.node_dir.clone())
            .display()
            .to_string(),
    };
    let path = dir.join(MANIFEST);
    let text = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    write_private(&path, &text)?;
    sync_dir(dir);
    Ok((last_seq, envelopes))
}

/// Copies `from` to `to`, readable by its owner only, synced.
fn copy_private(from: &Path, to: &Path) -> Result<(), BackupError> {
    let bytes = std::fs::read(from).map_err(io(from))?;
    write_private(to, &bytes)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// Makes a rename or a new file in `dir` durable (best effort: a backup
/// that is not durable is retaken at the next interval).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// The automatic snapshots' state, for `status` and the metrics.
#[derive(Debug, Clone, Default)]
pub struct SnapshotState {
    pub last_ms: i64,
    pub last_dir: String,
    pub last_error: String,
}

/// The UTC time as a directory name: `maillage-20261207T230000Z`.
fn snapshot_name(at: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(at).to_string();
    format!("{SNAPSHOT_PREFIX}{}", stamp.replace(['-', ':'], ""))
}

/// The snapshots in `dir` (complete ones: with a manifest), oldest first.
fn snapshots(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(SNAPSHOT_PREFIX))
        .map(|e| e.path())
        .filter(|p| p.join(MANIFEST).is_file())
        .collect();
    // The names sort as their times.
    found.sort();
    found
}

/// The newest snapshot in `dir`, with when it was written.
fn newest(dir: &Path) -> Option<(PathBuf, SystemTime)> {
    let path = snapshots(dir).pop()?;
    let at = std::fs::metadata(path.join(MANIFEST))
        .and_then(|m| m.modified())
        .ok()?;
    Some((path, at))
}

/// Removes the snapshots in `dir` beyond the `keep` newest; returns those
/// removed. Other directories are left alone, incomplete snapshots too.
fn prune(dir: &Path, keep: usize) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for old in snapshots(dir).into_iter().rev().skip(keep) {
        match std::fs::remove_dir_all(&old) {
            Ok(()) => removed.push(old),
            Err(e) => {
                tracing::warn!(snapshot = %old.display(), error = %e, "could not remove an old snapshot")
            }
        }
    }
    removed
}

/// Takes a snapshot into `config.dir` every `config.interval` (the first
/// one an interval after the newest already there, or at once), and
/// removes the oldest beyond `config.keep`. Runs until the node stops.
pub async fn snapshots_forever(node: std::sync::Arc<Node>, config: crate::config::Backup) {
    let mut stopping = node.stopping();
    // What is there already is the last snapshot, for status and the
    // metrics, until the next one.
    if let Some((newest, at)) = newest(&config.dir) {
        node.set_snapshot_state(SnapshotState {
            last_ms: at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            last_dir: newest.display().to_string(),
            last_error: String::new(),
        });
    }
    loop {
        // A time in the future (the clock went back) counts as just taken.
        let wait = newest(&config.dir)
            .map(|(_, at)| at.elapsed().unwrap_or(Duration::ZERO))
            .map_or(Duration::ZERO, |age| config.interval.saturating_sub(age));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        let (n, c) = (node.clone(), config.clone());
        let taken = tokio::task::spawn_blocking(move || {
            let dest = c.dir.join(snapshot_name(SystemTime::now()));
            // Through the node: one backup at a time, snapshots included.
            let written = n.backup(&dest, false)?;
            prune(&c.dir, c.keep as usize);
            Ok::<_, BackupError>(written)
        })
        .await;
        let state = match taken {
            Ok(Ok(w)) => {
                tracing::info!(dir = %w.dir.display(), bytes = w.bytes, ms = w.elapsed.as_millis() as u64, "snapshot taken");
                SnapshotState {
                    last_ms: maillage_record::now_ms(),
                    last_dir: w.dir.display().to_string(),
                    last_error: String::new(),
                }
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "could not take a snapshot; tried again in a minute");
                failed(&node, e.to_string())
            }
            Err(e) => failed(&node, e.to_string()),
        };
        let failed = !state.last_error.is_empty();
        node.set_snapshot_state(state);
        if failed {
            // Not a whole interval: a full disk may be freed soon.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                _ = stopping.wait_for(|s| *s) => return,
            }
        }
    }
}

fn failed(node: &Node, error: String) -> SnapshotState {
    SnapshotState {
        last_error: error,
        ..node.snapshot_state()
    }
}

/// A restore's marker, as `maillage restore` writes it.
#[derive(Debug, serde::Deserialize)]
struct Restored {
    /// When the backup restored was taken.
    backup_created_ms: i64,
}

/// If `dir` was restored from a backup and the node has not synced with
/// each peer since, holds its signing until it has (`Author::synced`).
pub fn hold_if_restored(node: &Node, dir: &Path) {
    let marker = dir.join(RESTORED);
    let Ok(text) = std::fs::read(&marker) else {
        return;
    };
    let taken = serde_json::from_slice::<Restored>(&text)
        .ok()
        .map(|r| {
            let t =
                SystemTime::UNIX_EPOCH + Duration::from_millis(r.backup_created_ms.max(0) as u64);
            humantime::format_rfc3339_seconds(t).to_string()
        })
        .unwrap_or_else(|| "at an unknown time".into());
    let peers: Vec<String> = node
        .peers()
        .list()
        .into_iter()
        .filter(|p| !p.revoked)
        .map(|p| p.name)
        .collect();
    if peers.is_empty() {
        tracing::warn!(
            backup = taken,
            "restored from a backup, and no peer to sync with: signing at once (records signed after the backup and not held elsewhere are lost)"
        );
        remove_marker(&marker);
        return;
    }
    tracing::warn!(
        backup = taken,
        peers = peers.join(", "),
        "restored from a backup: signing nothing until synced with each peer"
    );
    node.author().hold_until_synced(taken, peers);
}

/// After a sync with `peer` (or its removal): lifts a restore's hold when
/// it was the last one waited for.
pub fn synced(node: &Node, dir: &Path, peer: &str) {
    if node.author().synced(peer) {
        remove_marker(&dir.join(RESTORED));
        tracing::info!("synced with every peer since the restore: signing again");
    }
}

/// A marker left behind would hold the node again at its next start.
fn remove_marker(marker: &Path) {
    if let Err(e) = std::fs::remove_file(marker)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::error!(
            marker = %marker.display(),
            error = %e,
            "could not remove the restore's marker: remove it by hand, or the node holds its signing again at its next start"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newest `keep` snapshots stay, by the time in their names; what
    /// is not a complete snapshot (no manifest, another name) is never
    /// removed.
    #[test]
    fn pruning_keeps_the_newest_snapshots_only() {
        let dir = tempfile::tempdir().unwrap();
        let day = |d: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000 + d * 86_400);
        let mut names = Vec::new();
        for d in [3, 1, 4, 2, 5] {
            let name = snapshot_name(day(d));
            std::fs::create_dir(dir.path().join(&name)).unwrap();
            std::fs::write(dir.path().join(&name).join(MANIFEST), "{}").unwrap();
            names.push((d, name));
        }
        // Half-written (no manifest) and the operator's own: left alone.
        let partial = snapshot_name(day(0));
        std::fs::create_dir(dir.path().join(&partial)).unwrap();
        std::fs::create_dir(dir.path().join("avant-migration")).unwrap();

        let removed = prune(dir.path(), 2);
        assert_eq!(removed.len(), 3);
        let left: std::collections::BTreeSet<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let newest: Vec<&String> = names
            .iter()
            .filter(|(d, _)| *d >= 4)
            .map(|(_, n)| n)
            .collect();
        for n in newest {
            assert!(left.contains(n), "{n} was removed: {left:?}");
        }
        assert!(
            left.contains(&partial) && left.contains("avant-migration"),
            "{left:?}"
        );
        assert_eq!(left.len(), 4, "{left:?}");
        assert!(
            snapshot_name(day(1)).starts_with("maillage-2026"),
            "{}",
            snapshot_name(day(1))
        );
    }
}
