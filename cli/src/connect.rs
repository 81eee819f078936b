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
                dir.join(CONFIG_FILE).display()
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
            dir.join(CONFIG_FILE).display()
        ),
    }
}

/// The node's config, as a raw table, with its path. The CLI reads only the
/// keys it needs: the node validates the rest.
pub fn node_config(dir: &Path) -> anyhow::Result<(PathBuf, toml::Table)> {
    let path = dir.join(CONFIG_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no {CONFIG_FILE} in {}: run `maillage init --dir {}`, or point --dir or MAILLAGE_DIR at a node directory",
            dir.display(),
            dir.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    Ok((path, table))
}

/// The admin socket path named by the node's config.
fn admin_socket(dir: &Path) -> anyhow::Result<PathBuf> {
    let (path, table) = node_config(dir)?;
    let socket = table
        .get("node")
        .and_then(|n| n.get("admin_socket"))
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("{}: `node.admin_socket` must be a string", path.display()))
        })
        .transpose()?
        .unwrap_or_else(|| "admin.sock".into());
    Ok(dir.join(socket))
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
