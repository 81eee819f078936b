//! Reaching a node from its directory: `--dir` or `MAILLAGE_DIR` holds
//! `maillage.toml`, which names the admin socket. The CLI reads only that key:
//! the node validates the rest.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use hyper_util::rt::TokioIo;
use maillage_proto::v1::admin_client::AdminClient;
use maillage_proto::v1::catalogue_client::CatalogueClient;
use maillage_proto::v1::publish_client::PublishClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

pub const CONFIG_FILE: &str = "maillage.toml";

/// A connection to the node's admin socket.
pub struct NodeConn {
    channel: Channel,
}

impl NodeConn {
    pub async fn open(dir: &Path) -> anyhow::Result<NodeConn> {
        let socket = admin_socket(dir)?;
        match std::fs::metadata(&socket) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "the node in {} is not running (no admin socket at {}): start it with `maillage-node --config {}`",
                dir.display(),
                socket.display(),
                config_path(dir).display()
            ),
            _ => {}
        }
        let path = socket.clone();
        // The URI is required by the API but unused: the connector dials the socket.
        let channel = Endpoint::try_from("http://admin.sock")?
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move { UnixStream::connect(path).await.map(TokioIo::new) }
            }))
            .await
            .map_err(|e| explain_connect(&socket, dir, e))?;
        Ok(NodeConn { channel })
    }

    pub fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(self.channel.clone())
    }
    pub fn catalogue(&self) -> CatalogueClient<Channel> {
        CatalogueClient::new(self.channel.clone())
    }
    pub fn publish(&self) -> PublishClient<Channel> {
        PublishClient::new(self.channel.clone())
    }

    /// The node's own key: the author of what it publishes.
    pub async fn own_key(&self) -> anyhow::Result<maillage_record::PublicKey> {
        let s = self
            .admin()
            .status(maillage_proto::v1::StatusRequest {})
            .await
            .map_err(explain)?
            .into_inner();
        maillage_record::PublicKey::from_slice(&s.public_key)
            .context("the node answered with a malformed key")
    }
}

fn explain_connect(socket: &Path, dir: &Path, e: tonic::transport::Error) -> anyhow::Error {
    let io = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .map(|io| io.kind());
    match io {
        Some(std::io::ErrorKind::PermissionDenied) => anyhow!(
            "cannot open the admin socket {}: permission denied; run the CLI as the user that runs the node",
            socket.display()
        ),
        _ => anyhow!(
            "the node in {} does not answer on {} ({e}): is it running? start it with `maillage-node --config {}`",
            dir.display(),
            socket.display(),
            config_path(dir).display()
        ),
    }
}

/// Where a packaged node's config is (`scripts/package`): the CLI finds it
/// there when told nothing else.
pub const PACKAGED_CONFIG: &str = "/etc/maillage/maillage.toml";

/// The node the CLI talks to, from what it was told: `--config` (or
/// MAILLAGE_CONFIG), else `--dir` (or MAILLAGE_DIR), else the current
/// directory if it holds a node, else a packaged node's config. The path
/// returned is a config file or a node directory holding one.
pub fn locate(config: Option<PathBuf>, dir: Option<PathBuf>) -> PathBuf {
    if let Some(config) = config {
        return config;
    }
    if let Some(dir) = dir {
        return dir;
    }
    let packaged = Path::new(PACKAGED_CONFIG);
    if !Path::new(CONFIG_FILE).exists() && packaged.exists() {
        return packaged.to_path_buf();
    }
    PathBuf::from(".")
}

/// The config file `at` names: itself if it is a file, else the
/// `maillage.toml` of the directory.
pub fn config_path(at: &Path) -> PathBuf {
    if at.is_file() {
        at.to_path_buf()
    } else {
        at.join(CONFIG_FILE)
    }
}

/// The node's config, as a raw table, with its path. The CLI reads only the
/// keys it needs: the node validates the rest.
pub fn node_config(at: &Path) -> anyhow::Result<(PathBuf, toml::Table)> {
    let path = config_path(at);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no {CONFIG_FILE} in {}: run `maillage init --dir {}`, or point --dir (MAILLAGE_DIR) at a node directory or --config (MAILLAGE_CONFIG) at its config",
            at.display(),
            at.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => bail!(
            "cannot read {}: permission denied; run the CLI as the user that runs the node (sudo -u maillage maillage …)",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    Ok((path, table))
}

/// The node directory a config names: `node.dir` (relative to the
/// config's directory), else the config's directory.
pub fn node_dir(path: &Path, table: &toml::Table) -> anyhow::Result<PathBuf> {
    let config_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = table
        .get("node")
        .and_then(|n| n.get("dir"))
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("{}: `node.dir` must be a string", path.display()))
        })
        .transpose()?;
    Ok(match dir {
        Some(d) => config_dir.join(d),
        None => config_dir,
    })
}

/// A path the config names under `section.key`, resolved against the node
/// directory, or `default` there.
pub fn node_path(
    path: &Path,
    table: &toml::Table,
    section: &str,
    key: &str,
    default: &str,
) -> anyhow::Result<PathBuf> {
    let value = table
        .get(section)
        .and_then(|n| n.get(key))
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("{}: `{section}.{key}` must be a string", path.display()))
        })
        .transpose()?
        .unwrap_or_else(|| default.into());
    Ok(node_dir(path, table)?.join(value))
}

/// The admin socket path named by the node's config.
fn admin_socket(at: &Path) -> anyhow::Result<PathBuf> {
    let (path, table) = node_config(at)?;
    node_path(&path, &table, "node", "admin_socket", "admin.sock")
}

/// A refusal of a request that is not a record (a search, a peer, a
/// root): the node's message already quotes the bad input and says what to
/// do, so it is given as it is.
pub fn refused(status: tonic::Status) -> anyhow::Error {
    match status.code() {
        tonic::Code::InvalidArgument | tonic::Code::AlreadyExists => {
            anyhow!("{}", status.message())
        }
        _ => explain(status),
    }
}

/// Turns a refusal from the node into an error that says what to do.
pub fn explain(status: tonic::Status) -> anyhow::Error {
    use tonic::Code;
    let msg = status.message();
    match status.code() {
        Code::InvalidArgument => anyhow!("the node refused the record: {msg}"),
        Code::PermissionDenied => anyhow!("not allowed: {msg}"),
        Code::AlreadyExists => anyhow!("nothing to do: {msg}"),
        Code::FailedPrecondition => anyhow!("the node refused the version: {msg}"),
        Code::NotFound => anyhow!("{msg}"),
        Code::Unavailable => anyhow!("the node is unavailable: {msg}"),
        code => anyhow!("the node failed ({code:?}): {msg}"),
    }
}
