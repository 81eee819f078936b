//! The node's TOML configuration: parsed raw, then validated into `Config`, so
//! every mistake is reported with the file, the key and what to write instead.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use maillage_record::{PublicKey, Siren};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config {path}: `{key}` = '{value}' {problem}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        value: String,
        problem: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    organisation: RawOrganisation,
    node: RawNode,
    #[serde(default)]
    publish: RawPublish,
    #[serde(default)]
    replication: RawReplication,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    harvest: Vec<RawHarvest>,
    #[serde(default)]
    portal: RawPortal,
    signin: Option<RawSignin>,
    metrics: Option<RawMetrics>,
    backup: Option<RawBackup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: String,
    token_file: Option<String>,
}

/// Prometheus metrics and health probes (`[metrics]`), on a listener of
/// their own: a scraper needs neither the portal nor the gRPC port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    pub listen: SocketAddr,
    /// A file holding a bearer token `/metrics` asks for (owner-only), for a
    /// listener beyond loopback; the health probes never ask for it.
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackup {
    dir: String,
    interval: Option<String>,
    keep: Option<u32>,
}

/// Automatic snapshots (`[backup]`): what `maillage backup` writes, taken
/// by the node itself on an interval, the oldest beyond `keep` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub dir: PathBuf,
    pub interval: Duration,
    pub keep: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignin {
    issuer: String,
    client_id: String,
    client_secret_file: String,
    siret_claim: Option<String>,
    scopes: Option<String>,
    session: Option<String>,
    #[serde(default)]
    moderators: Vec<String>,
}

/// Members sign in on the portal with OpenID Connect (`[signin]`): the
/// provider (ProConnect for French public agents, or any compliant one),
/// this node's client at it, and the claim that names the agent's
/// organisation by its SIRET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signin {
    /// The provider's issuer: its discovery document is under it.
    pub issuer: String,
    pub client_id: String,
    /// A file holding the client secret alone, readable by its owner only
    /// (read when the node starts).
    pub client_secret_file: PathBuf,
    /// The claim (ID token or userinfo) that carries the agent's SIRET.
    pub siret_claim: String,
    pub scopes: String,
    /// How long a session lasts.
    pub session: Duration,
    /// The agents (by the e-mail address their provider states, lowercase)
    /// who may accept or refuse proposals in the portal.
    pub moderators: Vec<String>,
}

/// ProConnect's scopes: who the agent is, and its organisation's SIRET.
const PROCONNECT_SCOPES: &str = "openid email given_name usual_name siret";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPortal {
    map_tiles: Option<String>,
    map_attribution: Option<String>,
}

/// The map tiles of the IGN Géoplateforme's plan: no key needed.
pub const IGN_PLAN_TILES: &str = "https://data.geopf.fr/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=GEOGRAPHICALGRIDSYSTEMS.PLANIGNV2&STYLE=normal&TILEMATRIXSET=PM&FORMAT=image/png&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}";
const IGN_ATTRIBUTION: &str = "© IGN Géoplateforme";

/// What the portal's map shows under the projects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Portal {
    /// A tile URL template with {z}, {x} and {y} (https); `None`: no tiles
    /// (the map page lists the projects, and draws them on a blank map).
    pub map_tiles: Option<String>,
    pub map_attribution: String,
}

impl Default for Portal {
    fn default() -> Self {
        Portal {
            map_tiles: Some(IGN_PLAN_TILES.to_string()),
            map_attribution: IGN_ATTRIBUTION.to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHarvest {
    name: String,
    url: String,
    format: String,
    interval: Option<String>,
    #[serde(default)]
    withdraw_missing: bool,
    delimiter: Option<String>,
    timeout: Option<String>,
}

/// A source the node harvests by itself (`[[harvest]]`).
#[derive(Debug, Clone)]
pub struct Harvest {
    /// Its name in `status` and `maillage harvest run`; unique.
    pub name: String,
    pub url: String,
    pub format: maillage_import::Format,
    /// How often it runs (1 minute to 366 days; default 1 day).
    pub interval: Duration,
    /// Whether records of this source it no longer lists are withdrawn
    /// (only after a run that refused no row).
    pub withdraw_missing: bool,
    pub delimiter: Option<u8>,
    /// One request's time limit (1 s to 10 min; default 60 s).
    pub timeout: Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplication {
    sync_interval: Option<String>,
    quarantine_limit: Option<u64>,
    quarantine_max_bytes: Option<u64>,
    quarantine_per_peer: Option<u64>,
    quarantine_expiry: Option<String>,
    late_grace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrganisation {
    siren: String,
    name: String,
    key_file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    grpc_listen: String,
    /// The public HTTP export (DCAT-AP catalogue); absent: none.
    http_listen: Option<String>,
    /// The URL harvesters reach the export at, if not http://<http_listen>.
    public_url: Option<String>,
    #[serde(default = "default_admin_socket")]
    admin_socket: String,
    #[serde(default = "default_data_dir")]
    data_dir: String,
    #[serde(default = "default_search_dir")]
    search_dir: String,
    /// The node directory, when the config lives elsewhere (/etc/maillage).
    dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublish {
    #[serde(default)]
    authors: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<String>,
    level: Option<String>,
}

fn default_admin_socket() -> String {
    "admin.sock".into()
}
fn default_data_dir() -> String {
    "data".into()
}
fn default_search_dir() -> String {
    "search".into()
}

/// How replication runs (`[replication]`).
#[derive(Debug, Clone)]
pub struct Replication {
    /// How often each peer is reconciled in full, on top of live announcements.
    pub sync_interval: std::time::Duration,
    /// What records of untrusted authors may wait: how many, how many
    /// bytes, how many from one peer, how long.
    pub quarantine: crate::replication::quarantine::Limits,
    /// How long after a membership expires a record it covered may still be
    /// first seen (docs/security.md, "Back-dating").
    pub late_grace: std::time::Duration,
}

impl Default for Replication {
    fn default() -> Self {
        Replication {
            sync_interval: std::time::Duration::from_secs(60),
            quarantine: Default::default(),
            late_grace: std::time::Duration::from_secs(7 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A validated configuration; paths are absolute or relative to the process's
/// working directory (resolved against the config file's directory).
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// The node directory: `node.dir`, else the directory holding the
    /// config. Relative paths in the config are relative to it.
    pub dir: PathBuf,
    pub siren: Siren,
    pub name: String,
    pub key_file: PathBuf,
    pub grpc_listen: SocketAddr,
    /// Where the public HTTP export listens, if it is enabled.
    pub http_listen: Option<SocketAddr>,
    /// The base of the export's URLs (and of record IRIs in the catalogue).
    pub public_url: Option<String>,
    pub admin_socket: PathBuf,
    pub data_dir: PathBuf,
    /// The search index, derived from the store.
    pub search_dir: PathBuf,
    pub publish_authors: Vec<PublicKey>,
    pub replication: Replication,
    pub log_format: LogFormat,
    pub log_level: String,
    /// Sources harvested on a schedule.
    pub harvests: Vec<Harvest>,
    pub portal: Portal,
    pub signin: Option<Signin>,
    pub metrics: Option<Metrics>,
    pub backup: Option<Backup>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let invalid = |key: &'static str, value: &str, problem: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            value: value.to_string(),
            problem,
        };
        let config_dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = match raw.node.dir.as_deref().map(str::trim) {
            None => config_dir,
            Some("") => {
                return Err(invalid(
                    "node.dir",
                    "",
                    "must name the node directory, e.g. \"/var/lib/maillage\" (or be left out: the config's directory)".into(),
                ));
            }
            Some(d) => config_dir.join(d),
        };
        let siren = Siren::parse(&raw.organisation.siren).map_err(|e| {
            invalid(
                "organisation.siren",
                &raw.organisation.siren,
                format!("is not a SIREN: {e}"),
            )
        })?;
        if raw.organisation.name.trim().is_empty() {
            return Err(invalid("organisation.name", "", "must not be empty".into()));
        }
        let grpc_listen: SocketAddr = raw.node.grpc_listen.parse().map_err(|_| {
            invalid(
                "node.grpc_listen",
                &raw.node.grpc_listen,
                "is not an IP address and port, e.g. \"127.0.0.1:7441\" or \"0.0.0.0:7441\"".into(),
            )
        })?;
        let http_listen = raw
            .node
            .http_listen
            .as_deref()
            .map(|text| {
                text.parse::<SocketAddr>().map_err(|_| {
                    invalid(
                        "node.http_listen",
                        text,
                        "is not an IP address and port, e.g. \"127.0.0.1:8080\"".into(),
                    )
                })
            })
            .transpose()?;
        if let Some(url) = &raw.node.public_url
            && !maillage_record::model::is_http_url(url)
        {
            return Err(invalid(
                "node.public_url",
                url,
                "is not an http(s) URL, e.g. \"https://data.example.fr\"".into(),
            ));
        }
        let portal = match raw.portal.map_tiles.as_deref().map(str::trim) {
            None => Portal::default(),
            Some("") => Portal {
                map_tiles: None,
                map_attribution: String::new(),
            },
            Some(url) => {
                let https = url.starts_with("https://") && maillage_record::model::is_http_url(url);
                if !https || !["{z}", "{x}", "{y}"].iter().all(|p| url.contains(p)) {
                    return Err(invalid(
                        "portal.map_tiles",
                        url,
                        "is not an https tile address with {z}, {x} and {y} (or \"\" for no tiles)"
                            .into(),
                    ));
                }
                Portal {
                    map_tiles: Some(url.to_string()),
                    map_attribution: raw.portal.map_attribution.clone().unwrap_or_default(),
                }
            }
        };
        let publish_authors = raw
            .publish
            .authors
            .iter()
            .map(|k| {
                PublicKey::parse_hex(k)
                    .map_err(|e| invalid("publish.authors", k, format!("is not a key: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut replication = Replication::default();
        // Durations are bounded: one too long would overflow a clock's
        // arithmetic (an `Instant` a century ahead) rather than mean anything.
        let duration =
            |key: &'static str, text: &str, min: Duration, max: Duration, example: &str| {
                humantime::parse_duration(text)
                    .ok()
                    .filter(|d| (min..=max).contains(d))
                    .ok_or_else(|| {
                        invalid(
                            key,
                            text,
                            format!(
                                "is not a duration between {} and {}, e.g. {example}",
                                humantime::format_duration(min),
                                humantime::format_duration(max)
                            ),
                        )
                    })
            };
        const DAY: Duration = Duration::from_secs(24 * 3600);
        if let Some(text) = &raw.replication.sync_interval {
            replication.sync_interval = duration(
                "replication.sync_interval",
                text,
                Duration::from_millis(100),
                DAY,
                "\"60s\" or \"5min\"",
            )?;
        }
        if let Some(text) = &raw.replication.late_grace {
            replication.late_grace = duration(
                "replication.late_grace",
                text,
                Duration::ZERO,
                366 * DAY,
                "\"7days\" or \"48h\"",
            )?;
        }
        let q = &mut replication.quarantine;
        if let Some(limit) = raw.replication.quarantine_limit {
            q.records = limit;
        }
        if let Some(bytes) = raw.replication.quarantine_max_bytes {
            q.bytes = bytes;
        }
        if let Some(per_peer) = raw.replication.quarantine_per_peer {
            q.per_peer = per_peer;
        }
        if let Some(text) = &raw.replication.quarantine_expiry {
            q.expiry = duration(
                "replication.quarantine_expiry",
                text,
                Duration::from_secs(60),
                366 * DAY,
                "\"30days\"",
            )?;
        }
        let mut harvests: Vec<Harvest> = Vec::new();
        for h in &raw.harvest {
            if h.name.trim().is_empty() || h.name.len() > 100 {
                return Err(invalid(
                    "harvest.name",
                    &h.name,
                    "must be 1 to 100 characters: each harvest has a name of its own".into(),
                ));
            }
            if harvests.iter().any(|o| o.name == h.name) {
                return Err(invalid(
                    "harvest.name",
                    &h.name,
                    "is the name of another harvest: give each its own".into(),
                ));
            }
            if !maillage_record::model::is_http_url(&h.url) {
                return Err(invalid(
                    "harvest.url",
                    &h.url,
                    "is not an http(s) address, e.g. \"https://www.data.gouv.fr/api/1/organizations/…/datasets/\"".into(),
                ));
            }
            let format = maillage_import::Format::parse(&h.format).map_err(|e| {
                invalid("harvest.format", &h.format, format!("is not a format: {e}"))
            })?;
            let interval = match &h.interval {
                None => DAY,
                Some(text) => duration(
                    "harvest.interval",
                    text,
                    Duration::from_secs(60),
                    366 * DAY,
                    "\"1day\" or \"6h\"",
                )?,
            };
            let timeout = match &h.timeout {
                None => Duration::from_secs(60),
                Some(text) => duration(
                    "harvest.timeout",
                    text,
                    Duration::from_secs(1),
                    Duration::from_secs(600),
                    "\"60s\"",
                )?,
            };
            let delimiter = match h.delimiter.as_deref() {
                None => None,
                Some("tab") => Some(b'\t'),
                Some(d) if d.len() == 1 && d != "\"" => Some(d.as_bytes()[0]),
                Some(d) => {
                    return Err(invalid(
                        "harvest.delimiter",
                        d,
                        "is not one character (such as \";\"), nor \"tab\"".into(),
                    ));
                }
            };
            harvests.push(Harvest {
                name: h.name.clone(),
                url: h.url.clone(),
                format,
                interval,
                withdraw_missing: h.withdraw_missing,
                delimiter,
                timeout,
            });
        }
        let signin = match &raw.signin {
            None => None,
            Some(si) => {
                if http_listen.is_none() {
                    return Err(invalid(
                        "signin.issuer",
                        &si.issuer,
                        "needs the portal: set node.http_listen (and node.public_url, the \
                         address the provider sends agents back to)"
                            .into(),
                    ));
                }
                let issuer = si.issuer.trim().trim_end_matches('/').to_string();
                // Plain HTTP only to this machine (a provider started by
                // tests): elsewhere tokens would cross the network in clear.
                let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                    .iter()
                    .any(|p| {
                        issuer
                            .strip_prefix(p)
                            .is_some_and(|r| r.is_empty() || r.starts_with([':', '/']))
                    });
                if !maillage_record::model::is_http_url(&issuer)
                    || !(issuer.starts_with("https://") || loopback)
                {
                    return Err(invalid(
                        "signin.issuer",
                        &si.issuer,
                        "is not an https address, e.g. \"https://auth.agentconnect.gouv.fr/api/v2\""
                            .into(),
                    ));
                }
                if si.client_id.trim().is_empty() {
                    return Err(invalid(
                        "signin.client_id",
                        "",
                        "must not be empty: the client id the provider gave this node".into(),
                    ));
                }
                if si.client_secret_file.trim().is_empty() {
                    return Err(invalid(
                        "signin.client_secret_file",
                        "",
                        "must name the file holding the client secret (mode 0600)".into(),
                    ));
                }
                let session = match &si.session {
                    None => Duration::from_secs(8 * 3600),
                    Some(text) => duration(
                        "signin.session",
                        text,
                        Duration::from_secs(60),
                        DAY,
                        "\"8h\"",
                    )?,
                };
                let claim = si.siret_claim.clone().unwrap_or_else(|| "siret".into());
                if claim.trim().is_empty() {
                    return Err(invalid(
                        "signin.siret_claim",
                        "",
                        "must name a claim, e.g. \"siret\"".into(),
                    ));
                }
                Some(Signin {
                    issuer,
                    client_id: si.client_id.trim().to_string(),
                    client_secret_file: dir.join(si.client_secret_file.trim()),
                    siret_claim: claim,
                    scopes: si
                        .scopes
                        .clone()
                        .unwrap_or_else(|| PROCONNECT_SCOPES.into()),
                    session,
                    moderators: si
                        .moderators
                        .iter()
                        .map(|m| m.trim().to_lowercase())
                        .filter(|m| !m.is_empty())
                        .collect(),
                })
            }
        };
        let metrics = match &raw.metrics {
            None => None,
            Some(m) => Some(Metrics {
                listen: m.listen.parse().map_err(|_| {
                    invalid(
                        "metrics.listen",
                        &m.listen,
                        "is not an IP address and port, e.g. \"127.0.0.1:9441\"".into(),
                    )
                })?,
                token_file: match m.token_file.as_deref().map(str::trim) {
                    None => None,
                    Some("") => {
                        return Err(invalid(
                            "metrics.token_file",
                            "",
                            "must name a file holding the token (mode 0600), or be left out".into(),
                        ));
                    }
                    Some(f) => Some(dir.join(f)),
                },
            }),
        };
        let backup = match &raw.backup {
            None => None,
            Some(b) => {
                if b.dir.trim().is_empty() {
                    return Err(invalid(
                        "backup.dir",
                        "",
                        "must name the directory snapshots go to, e.g. \"/var/backups/maillage\""
                            .into(),
                    ));
                }
                let interval = match &b.interval {
                    None => DAY,
                    Some(text) => duration(
                        "backup.interval",
                        text,
                        Duration::from_secs(60),
                        366 * DAY,
                        "\"1day\" or \"6h\"",
                    )?,
                };
                let keep = b.keep.unwrap_or(7);
                if !(1..=1000).contains(&keep) {
                    return Err(invalid(
                        "backup.keep",
                        &keep.to_string(),
                        "must be between 1 and 1000 snapshots".into(),
                    ));
                }
                Some(Backup {
                    dir: dir.join(b.dir.trim()),
                    interval,
                    keep,
                })
            }
        };
        let log_format = match raw.log.format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(
                    "log.format",
                    other,
                    "must be \"text\" or \"json\"".into(),
                ));
            }
        };
        Ok(Config {
            path: path.to_path_buf(),
            key_file: dir.join(&raw.organisation.key_file),
            admin_socket: dir.join(&raw.node.admin_socket),
            data_dir: dir.join(&raw.node.data_dir),
            search_dir: dir.join(&raw.node.search_dir),
            dir,
            siren,
            name: raw.organisation.name,
            grpc_listen,
            http_listen,
            public_url: raw
                .node
                .public_url
                .map(|u| u.trim_end_matches('/').to_string()),
            publish_authors,
            replication,
            log_format,
            log_level: raw.log.level.unwrap_or_else(|| "info".into()),
            harvests,
            portal,
            signin,
            metrics,
            backup,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(siren: &str, listen: &str) -> String {
        include_str!("../../deploy/maillage.toml.in")
            .replace("@SIREN@", &format!("\"{siren}\""))
            .replace("@NAME@", "\"Toulouse Métropole\"")
            .replace("@GRPC_LISTEN@", &format!("\"{listen}\""))
    }

    /// The map's tiles: the IGN plan unless said; "" for none; anything but
    /// an https template with {z}, {x} and {y} refused, naming the key.
    #[test]
    fn map_tiles() {
        let with = |portal: &str| {
            Config::parse(
                Path::new("/srv/n1/maillage.toml"),
                &format!(
                    "{}\n[portal]\n{portal}\n",
                    template("243100518", "127.0.0.1:7441")
                ),
            )
        };
        let default = with("").unwrap().portal;
        assert_eq!(default.map_tiles.as_deref(), Some(IGN_PLAN_TILES));
        assert_eq!(with("map_tiles = \"\"").unwrap().portal.map_tiles, None);
        let own = with(
            "map_tiles = \"https://t.example.fr/{z}/{x}/{y}.png\"\nmap_attribution = \"© nous\"",
        )
        .unwrap()
        .portal;
        assert_eq!(own.map_attribution, "© nous");
        for bad in [
            "http://t.example.fr/{z}/{x}/{y}.png",
            "https://t.example.fr/tiles.png",
            "javascript:{z}{x}{y}",
        ] {
            let e = with(&format!("map_tiles = \"{bad}\""))
                .unwrap_err()
                .to_string();
            assert!(e.contains("portal.map_tiles") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn the_shipped_template_parses() {
        let c = Config::parse(
            Path::new("/srv/n1/maillage.toml"),
            &template("243100518", "127.0.0.1:7441"),
        )
        .unwrap();
        assert_eq!(c.siren.as_str(), "243100518");
        assert_eq!(c.key_file, Path::new("/srv/n1/organisation.key"));
        assert_eq!(c.admin_socket, Path::new("/srv/n1/admin.sock"));
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn mistakes_name_the_key() {
        let p = Path::new("n/maillage.toml");
        let e = Config::parse(p, &template("243100519", "127.0.0.1:7441"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("organisation.siren") && e.contains("243100519"),
            "{e}"
        );
        let e = Config::parse(p, &template("243100518", "localhost"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("node.grpc_listen") && e.contains("localhost"),
            "{e}"
        );
        let e = Config::parse(
            p,
            &(template("243100518", "127.0.0.1:1") + "\n[extra]\nx = 1\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("extra"), "{e}");
    }

    /// A config apart from its node directory (/etc/maillage): `node.dir`
    /// is where the key, store and socket are; `[metrics]` and `[backup]`
    /// are read, their mistakes named.
    #[test]
    fn node_dir_metrics_and_backup() {
        let p = Path::new("/etc/maillage/maillage.toml");
        let base = template("243100518", "127.0.0.1:7441")
            .replace("[node]\n", "[node]\ndir = \"/var/lib/maillage\"\n");
        let c = Config::parse(
            p,
            &format!(
                "{base}\n[metrics]\nlisten = \"127.0.0.1:9441\"\ntoken_file = \"metrics.token\"\n\
                 [backup]\ndir = \"/var/backups/maillage\"\ninterval = \"6h\"\n"
            ),
        )
        .unwrap();
        assert_eq!(c.dir, Path::new("/var/lib/maillage"));
        assert_eq!(c.key_file, Path::new("/var/lib/maillage/organisation.key"));
        assert_eq!(c.data_dir, Path::new("/var/lib/maillage/data"));
        assert_eq!(c.admin_socket, Path::new("/var/lib/maillage/admin.sock"));
        let m = c.metrics.unwrap();
        assert_eq!(m.listen.to_string(), "127.0.0.1:9441");
        assert_eq!(
            m.token_file.unwrap(),
            Path::new("/var/lib/maillage/metrics.token")
        );
        let b = c.backup.unwrap();
        assert_eq!(b.dir, Path::new("/var/backups/maillage"));
        assert_eq!(b.interval, Duration::from_secs(6 * 3600));
        assert_eq!(b.keep, 7, "seven snapshots unless said");
        // Without node.dir, the config's directory is the node directory.
        let plain = Config::parse(p, &template("243100518", "127.0.0.1:7441")).unwrap();
        assert_eq!(plain.dir, Path::new("/etc/maillage"));
        assert!(plain.metrics.is_none() && plain.backup.is_none());
        for (extra, key) in [
            ("[metrics]\nlisten = \"localhost\"\n", "metrics.listen"),
            (
                "[backup]\ndir = \"b\"\ninterval = \"10s\"\n",
                "backup.interval",
            ),
            ("[backup]\ndir = \"b\"\nkeep = 0\n", "backup.keep"),
            ("[backup]\ndir = \" \"\n", "backup.dir"),
        ] {
            let e = Config::parse(p, &format!("{base}\n{extra}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{extra}: {e}");
        }
        let e = Config::parse(
            p,
            &template("243100518", "127.0.0.1:7441").replace("[node]\n", "[node]\ndir = \"\"\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("node.dir"), "{e}");
    }

    /// A duration that would overflow the clock (a century of
    /// sync_interval, say) is refused with its key, not accepted to panic
    /// later.
    #[test]
    fn durations_are_bounded() {
        let p = Path::new("n/maillage.toml");
        let base = template("243100518", "127.0.0.1:1");
        let with = |key: &str, value: &str| {
            let text: String = base
                .lines()
                .filter(|l| !l.starts_with(&format!("{key} =")))
                .map(|l| format!("{l}\n"))
                .collect();
            let text = text.replace(
                "[replication]",
                &format!("[replication]\n{key} = \"{value}\""),
            );
            Config::parse(p, &text).map_err(|e| e.to_string())
        };
        for (key, value) in [
            ("sync_interval", "100years"),
            ("sync_interval", "10ms"),
            ("late_grace", "1000000days"),
            ("quarantine_expiry", "500000000years"),
        ] {
            let e = with(key, value).unwrap_err();
            assert!(e.contains(key) && e.contains(value), "{e}");
        }
        let c = with("sync_interval", "1day").unwrap();
        assert_eq!(c.replication.sync_interval, Duration::from_secs(86_400));
    }

    /// Harvests: each mistake names its key and value; a good one reads.
    #[test]
    fn harvests_are_checked() {
        let p = Path::new("n/maillage.toml");
        let base = template("243100518", "127.0.0.1:1");
        let with = |harvest: &str| Config::parse(p, &format!("{base}\n{harvest}"));
        let good = "[[harvest]]\nname = \"dgf\"\nurl = \"https://www.data.gouv.fr/api/1/datasets/\"\nformat = \"udata\"\n";
        let c = with(good).unwrap();
        assert_eq!(c.harvests.len(), 1);
        assert_eq!(c.harvests[0].interval, Duration::from_secs(86_400));
        assert_eq!(c.harvests[0].format, maillage_import::Format::Udata);
        for (harvest, key, value) in [
            (good.replace("udata", "xml"), "harvest.format", "xml"),
            (
                good.replace("https://www.data.gouv.fr/api/1/datasets/", "ftp://x"),
                "harvest.url",
                "ftp://x",
            ),
            (
                format!("{good}interval = \"10s\"\n"),
                "harvest.interval",
                "10s",
            ),
            (
                format!("{good}delimiter = \";;\"\n"),
                "harvest.delimiter",
                ";;",
            ),
            (format!("{good}\n{good}"), "harvest.name", "dgf"),
        ] {
            let e = with(&harvest).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(value), "{e}");
        }
    }
}
