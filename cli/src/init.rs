//! `maillage init`: a new node directory with its config, key and the
//! organisation's own signed record.

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, bail};
use maillage_record::model::Organisation;
use maillage_record::{
    Body, ORGANISATION_ENVELOPE, PublicKey, Record, Siren, Visibility, envelope, keyfile,
};
use serde_json::json;

use crate::connect::CONFIG_FILE;

const TEMPLATE: &str = include_str!("../../deploy/maillage.toml.in");
pub const KEY_FILE: &str = "organisation.key";
/// The record_id of an organisation's own Organisation record.
pub const ORGANISATION_RECORD_ID: &str = "organisation";

/// What `maillage init` is asked for.
pub struct Init<'a> {
    pub dir: &'a Path,
    /// Where to write the config, if not in `dir` (a packaged node's
    /// /etc/maillage/maillage.toml): it then names `dir` as `node.dir`.
    pub config: Option<&'a Path>,
    pub siren: &'a str,
    pub name: &'a str,
    pub grpc_listen: Option<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
}

pub fn init(
    Init {
        dir,
        config: config_at,
        siren,
        name,
        grpc_listen,
        http_listen,
    }: Init,
    json_out: bool,
) -> anyhow::Result<()> {
    let siren = Siren::parse(siren).with_context(|| format!("invalid --siren '{siren}'"))?;
    let name = name.trim();
    if name.is_empty() {
        bail!("--name must not be empty: give the organisation's official name");
    }
    for existing in [CONFIG_FILE, KEY_FILE] {
        if dir.join(existing).exists() {
            bail!(
                "{} already holds a node ({existing} exists): choose another --dir, or remove it if you mean to start over",
                dir.display()
            );
        }
    }
    if let Some(c) = config_at
        && c.exists()
    {
        bail!(
            "{} exists already: a node's config is written once (remove it if you mean to start over)",
            c.display()
        );
    }
    let grpc_listen = match grpc_listen {
        Some(a) => a,
        None => free_loopback_port()
            .context("cannot find a free port for node.grpc_listen; pass --grpc-listen")?,
    };

    // Owner-only: the directory holds the key and the admin socket.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;

    let key = keyfile::generate()?;
    keyfile::write_new(&dir.join(KEY_FILE), &key)?;
    let public_key = PublicKey(key.verifying_key().to_bytes());

    let record = Record {
        record_id: ORGANISATION_RECORD_ID.into(),
        version: 1,
        issued_at_ms: maillage_record::now_ms(),
        visibility: Visibility::Public,
        provenance: None,
        body: Body::Organisation({
            // Kind and territory from the reference list of collectivities,
            // when the SIREN is a commune or an EPCI.
            let mut org = Organisation::new(siren.clone(), name.to_string());
            maillage_record::territory::fill(&mut org);
            org
        }),
    };
    let signed = envelope::sign(&key, &record)?;
    write_private(&dir.join(ORGANISATION_ENVELOPE), &signed.envelope_bytes())?;

    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut config = TEMPLATE
        .replace("@SIREN@", &quote(siren.as_str()))
        .replace("@NAME@", &quote(name))
        .replace("@GRPC_LISTEN@", &quote(&grpc_listen.to_string()));
    if let Some(http) = http_listen {
        config = config.replacen(
            "# http_listen = \"127.0.0.1:8080\"",
            &format!("http_listen = {}", quote(&http.to_string())),
            1,
        );
    }
    let config_path = match config_at {
        None => dir.join(CONFIG_FILE),
        Some(c) => {
            // The config lives apart from the node directory: it names it.
            let absolute = dir
                .canonicalize()
                .with_context(|| format!("cannot resolve {}", dir.display()))?;
            config = config.replacen(
                "[node]\n",
                &format!(
                    "[node]\n# The node directory: key, organisation record, store, index, admin socket.\n\
                     # Relative paths below are relative to it.\ndir = {}\n",
                    quote(&absolute.display().to_string())
                ),
                1,
            );
            c.to_path_buf()
        }
    };
    // Written last: a directory with a config is a complete node directory.
    write_private(&config_path, config.as_bytes())?;

    if json_out {
        println!(
            "{}",
            json!({
                "dir": dir.display().to_string(),
                "config": config_path.display().to_string(),
                "public_key": public_key.to_hex(),
                "siren": siren.as_str(),
                "name": name,
                "grpc_listen": grpc_listen.to_string(),
                "http_listen": http_listen.map(|h| h.to_string()),
                "organisation_record": signed.id().to_hex(),
            })
        );
    } else {
        println!(
            "initialised a node for {name} (SIREN {siren}) in {}",
            dir.display()
        );
        println!("  public key   {public_key}");
        println!("  gRPC         {grpc_listen}");
        if let Some(http) = http_listen {
            println!("  HTTP         {http} (the portal; put it behind your TLS reverse proxy)");
        }
        println!(
            "  key file     {} (mode 0600, keep it secret)",
            dir.join(KEY_FILE).display()
        );
        if config_path == Path::new(crate::connect::PACKAGED_CONFIG) {
            println!("start it with: sudo systemctl start maillage-node");
        } else {
            println!(
                "start it with: maillage-node --config {}",
                config_path.display()
            );
        }
    }
    Ok(())
}

/// A port on loopback that nothing listens on now. Unique enough for several
/// nodes initialised on one machine; an operator sets a fixed one in production.
fn free_loopback_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Writes a new file, readable by its owner only, synced.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}
