//! `maillage backup` (asks the running node: only it may read its store)
//! and `maillage restore` (plain files: a node directory made from a
//! backup, with no node running on it; the CLI links no RocksDB).

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use maillage_record::{ORGANISATION_ENVELOPE, PublicKey, keyfile};
use serde::Deserialize;
use serde_json::json;

use crate::connect::{self, CONFIG_FILE, NodeConn, refused};
use crate::init::{KEY_FILE, write_private};

/// The layout of a backup this CLI restores (`backup::FORMAT` in the node).
const FORMAT: u32 = 1;
const MANIFEST: &str = "manifest.json";
/// Read by the node at start (`backup::RESTORED`).
const RESTORED: &str = "restored.json";

pub async fn backup(at: &Path, to: &Path, with_key: bool, json_out: bool) -> anyhow::Result<()> {
    // The node resolves nothing against the CLI's directory.
    let to = std::path::absolute(to).with_context(|| format!("cannot resolve {}", to.display()))?;
    let conn = NodeConn::open(at).await?;
    let written = conn
        .admin()
        .backup(maillage_proto::v1::BackupRequest {
            dir: to.display().to_string(),
            with_key,
        })
        .await
        .map_err(refused)?
        .into_inner();
    // The node writes in its own view of the files: under systemd, a /tmp
    // of its own, and nothing outside its directories.
    if !Path::new(&written.dir).join(MANIFEST).is_file() {
        bail!(
            "the node wrote the backup into {}, but it is not there for this command: the node \
             sees the files otherwise (systemd's PrivateTmp, or another container); back up \
             into /var/backups/maillage",
            written.dir
        );
    }
    if json_out {
        println!(
            "{}",
            json!({
                "dir": written.dir,
                "last_seq": written.last_seq,
                "envelopes": written.envelopes,
                "bytes": written.bytes,
                "millis": written.millis,
                "with_key": written.with_key,
            })
        );
    } else {
        println!(
            "backed up {} envelopes (up to change {}) into {}: {} in {} ms",
            written.envelopes,
            written.last_seq,
            written.dir,
            crate::status::human_bytes(written.bytes),
            written.millis
        );
        if written.with_key {
            println!("  it holds the organisation's private key: keep it as safe as the key");
        } else {
            println!("  the private key is not in it: keep a copy of it apart (see the guide)");
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
struct Manifest {
    format: u32,
    maillage_version: String,
    siren: String,
    name: String,
    public_key: String,
    created_ms: i64,
    last_seq: u64,
    envelopes: u64,
    #[serde(default)]
    peers: Vec<String>,
    node_dir: String,
}

/// `into`: the new node directory. `node`: a node (directory or config)
/// whose key may serve when neither --key nor the backup gives one.
pub fn restore(
    backup: &Path,
    into: Option<&Path>,
    key: Option<&Path>,
    node: Option<&Path>,
    json_out: bool,
) -> anyhow::Result<()> {
    let manifest_path = backup.join(MANIFEST);
    let text = std::fs::read(&manifest_path).map_err(|e| {
        anyhow!(
            "{} is not a backup ({}: {e}): give the directory `maillage backup` wrote",
            backup.display(),
            manifest_path.display()
        )
    })?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a backup's manifest", manifest_path.display()))?;
    if manifest.format != FORMAT {
        bail!(
            "{} is a backup of format {} (maillage {}); this maillage restores format {FORMAT}: \
             use a matching version",
            backup.display(),
            manifest.format,
            manifest.maillage_version
        );
    }
    let expected = PublicKey::parse_hex(&manifest.public_key)
        .map_err(|e| anyhow!("{}: public_key: {e}", manifest_path.display()))?;
    let Some(target) = into.map(Path::to_path_buf) else {
        bail!("give the new node directory: --into DIR");
    };
    if target.exists()
        && std::fs::read_dir(&target)
            .with_context(|| format!("cannot read {}", target.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty: restore into a new directory (--into), or move what is there away first",
            target.display()
        );
    }
    // The key: given, in the backup, or the node directory's (a restore
    // beside the node it copies).
    let key_path = match key {
        Some(k) => k.to_path_buf(),
        None if backup.join(KEY_FILE).exists() => backup.join(KEY_FILE),
        None => match node.and_then(|n| connect::node_config(n).ok()) {
            Some((path, table)) => {
                connect::node_path(&path, &table, "organisation", "key_file", KEY_FILE)?
            }
            None => bail!(
                "{} holds no key (it was taken without --with-key): give the organisation's key \
                 with --key FILE, from where you keep it safe",
                backup.display()
            ),
        },
    };
    let signing = keyfile::read(&key_path)?;
    let found = PublicKey(signing.verifying_key().to_bytes());
    if found != expected {
        bail!(
            "the key in {} is {found}, but the backup is of the node whose key is {expected} \
             ({}, SIREN {}): give that node's key",
            key_path.display(),
            manifest.name,
            manifest.siren
        );
    }
    let config = restored_config(backup, &manifest)?;

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&target)
        .with_context(|| format!("cannot create {}", target.display()))?;
    let store = backup.join("store");
    copy_tree(&store, &target.join("data"))
        .with_context(|| format!("cannot copy the store from {}", store.display()))?;
    let envelope = backup.join(ORGANISATION_ENVELOPE);
    if envelope.exists() {
        write_private(
            &target.join(ORGANISATION_ENVELOPE),
            &std::fs::read(&envelope)
                .with_context(|| format!("cannot read {}", envelope.display()))?,
        )?;
    }
    write_private(
        &target.join(KEY_FILE),
        &std::fs::read(&key_path).with_context(|| format!("cannot read {}", key_path.display()))?,
    )?;
    write_private(
        &target.join(RESTORED),
        json!({
            "backup": std::path::absolute(backup).unwrap_or_else(|_| backup.to_path_buf()).display().to_string(),
            "backup_created_ms": manifest.created_ms,
            "restored_ms": maillage_record::now_ms(),
        })
        .to_string()
        .as_bytes(),
    )?;
    // Last: a directory with a config is a complete node directory.
    write_private(&target.join(CONFIG_FILE), config.as_bytes())?;

    let config_path = target.join(CONFIG_FILE);
    if json_out {
        println!(
            "{}",
            json!({
                "dir": target.display().to_string(),
                "config": config_path.display().to_string(),
                "public_key": expected.to_hex(),
                "siren": manifest.siren,
                "envelopes": manifest.envelopes,
                "last_seq": manifest.last_seq,
                "backup_created_ms": manifest.created_ms,
                "waits_for_peers": manifest.peers,
            })
        );
    } else {
        println!(
            "restored the node of {} (SIREN {}) into {}: {} envelopes, up to change {}",
            manifest.name,
            manifest.siren,
            target.display(),
            manifest.envelopes,
            manifest.last_seq
        );
        println!(
            "start it with: maillage-node --config {}",
            config_path.display()
        );
        if !manifest.peers.is_empty() {
            println!(
                "it signs nothing until it has synced with each of its peers ({}): what it \
                 published after the backup comes back from them first",
                manifest.peers.join(", ")
            );
        }
        println!(
            "the config's comments are not kept: the original is {}",
            backup.join(CONFIG_FILE).display()
        );
    }
    Ok(())
}

/// The backup's config for its new directory: the node's own paths
/// relative to it, other relative paths (secrets, the snapshots' folder)
/// made absolute against the directory the backup was taken from.
fn restored_config(backup: &Path, manifest: &Manifest) -> anyhow::Result<String> {
    let path = backup.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    let old_dir = Path::new(&manifest.node_dir);
    let set = |table: &mut toml::Table, section: &str, key: &str, value: String| {
        if let Some(toml::Value::Table(t)) = table.get_mut(section) {
            t.insert(key.into(), toml::Value::String(value));
        }
    };
    if let Some(toml::Value::Table(node)) = table.get_mut("node") {
        node.remove("dir");
    }
    set(&mut table, "node", "data_dir", "data".into());
    set(&mut table, "node", "search_dir", "search".into());
    set(&mut table, "node", "admin_socket", "admin.sock".into());
    set(&mut table, "organisation", "key_file", KEY_FILE.into());
    for (section, key) in [
        ("signin", "client_secret_file"),
        ("metrics", "token_file"),
        ("backup", "dir"),
    ] {
        let relative = table
            .get(section)
            .and_then(|s| s.get(key))
            .and_then(|v| v.as_str())
            .filter(|v| !Path::new(v).is_absolute())
            .map(str::to_string);
        if let Some(r) = relative {
            set(
                &mut table,
                section,
                key,
                old_dir.join(r).display().to_string(),
            );
        }
    }
    let taken = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(manifest.created_ms.max(0) as u64),
    );
    Ok(format!(
        "# maillage node configuration, restored by `maillage restore` from\n# {} (taken {taken}).\n\n{}",
        backup.display(),
        toml::to_string(&table).context("the config does not serialize")?
    ))
}

/// Copies a directory's files (a RocksDB checkpoint: flat, but copied
/// whole), each readable by its owner only and synced.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(to)
        .with_context(|| format!("cannot create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        let kind = entry.file_type()?;
        // A backup holds plain files: a link could point anywhere.
        if kind.is_symlink() {
            bail!(
                "{} is a symbolic link: a backup holds none; is this a backup `maillage backup` wrote?",
                entry.path().display()
            );
        }
        if kind.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else {
            let mut source = std::fs::File::open(entry.path())
                .with_context(|| format!("cannot read {}", entry.path().display()))?;
            let mut file = new_private(&dest)?;
            std::io::copy(&mut source, &mut file)
                .with_context(|| format!("cannot write {}", dest.display()))?;
            file.sync_all()?;
        }
    }
    Ok(())
}

fn new_private(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}
