//! What an operator runs: backups of a running node and their restore,
//! metrics scraped by a real Prometheus, health probes, the daemon's exit
//! status, a config kept apart from the node directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

fn versions(dir: &Path, record_id: &str) -> Vec<u64> {
    cli_json(dir, &["history", "--json", record_id])
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["record"]["version"].as_u64().unwrap())
        .collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A node backed up while it runs, then lost (SIGKILL) after publishing
/// more, is restored into a new directory from the backup and its key:
/// it starts, refuses to sign until it has synced with its peer, gets back
/// what it published after the backup, and its next version follows them:
/// no version number is used twice.
#[test]
fn a_restored_node_resyncs_before_it_signs_again() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("metropole"), t.path().join("colomiers"));
    init(&a, "243100518", "Toulouse Métropole");
    init(&b, "213101496", "Colomiers");
    let mut node_a = start(&a);
    let mut node_b = start(&b);
    peer(&a, "colomiers", &b);
    peer(&b, "metropole", &a);
    trust(&b, &a);
    let dataset = example("dataset.json");
    let v1 = publish(&a, Path::new(&dataset));
    eventually(Duration::from_secs(30), "colomiers holds v1", || {
        has(&b, &v1)
    });

    // The backup, while the node runs.
    let backup = t.path().join("sauvegardes/2026-12-07");
    let written = cli_json(&a, &["backup", "--json", backup.to_str().unwrap()]);
    assert_eq!(written["with_key"], false);
    assert!(written["envelopes"].as_u64().unwrap() >= 2, "{written}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["siren"], "243100518");
    assert_eq!(manifest["peers"], serde_json::json!(["colomiers"]));
    assert!(backup.join("store").is_dir() && backup.join("maillage.toml").is_file());
    assert!(
        !backup.join("organisation.key").exists(),
        "the key is in a backup only with --with-key"
    );
    // A backup never overwrites one: the same directory is refused.
    let again = cli(&a, &["backup", backup.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("exists already"),
        "{}",
        stderr(&again)
    );

    // After the backup: two more versions, which only the peer keeps.
    let v2 = publish(&a, Path::new(&dataset));
    let v3 = publish(&a, Path::new(&dataset));
    eventually(Duration::from_secs(30), "colomiers holds v3", || {
        has(&b, &v3)
    });
    assert_eq!(versions(&a, "budget-primitif-2026"), vec![1, 2, 3]);
    node_a.kill(); // the server is lost

    // Restoring: refused with a key of another node, or into a directory
    // that holds something; done with the node's key.
    let restored = t.path().join("metropole-restauree");
    let wrong = cli(
        &a,
        &[
            "restore",
            backup.to_str().unwrap(),
            "--into",
            restored.to_str().unwrap(),
            "--key",
            b.join("organisation.key").to_str().unwrap(),
        ],
    );
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("give that node's key"),
        "{}",
        stderr(&wrong)
    );
    assert!(!restored.exists(), "a refused restore wrote nothing");
    let occupied = cli(
        &a,
        &[
            "restore",
            backup.to_str().unwrap(),
            "--into",
            b.to_str().unwrap(),
        ],
    );
    assert!(!occupied.status.success());
    assert!(
        stderr(&occupied).contains("is not empty"),
        "{}",
        stderr(&occupied)
    );
    // Without --key: the key of the node directory given (MAILLAGE_DIR).
    let done = cli_json(
        &a,
        &[
            "restore",
            "--json",
            backup.to_str().unwrap(),
            "--into",
            restored.to_str().unwrap(),
        ],
    );
    assert_eq!(done["waits_for_peers"], serde_json::json!(["colomiers"]));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(restored.join("organisation.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The peer is away when the restored node starts: it holds.
    node_b.kill();
    let _node_a2 = start(&restored);
    assert_eq!(versions(&restored, "budget-primitif-2026"), vec![1]);
    let held = cli(&restored, &["publish", &dataset]);
    assert!(
        !held.status.success(),
        "a restored node signed before syncing"
    );
    assert!(
        stderr(&held).contains("restored from a backup") && stderr(&held).contains("colomiers"),
        "{}",
        stderr(&held)
    );
    let status = cli_json(&restored, &["status", "--json"]);
    assert_eq!(status["restore_waiting"], serde_json::json!(["colomiers"]));
    let watched = cli(&restored, &["check", "--health"]);
    assert_eq!(
        watched.status.code(),
        Some(2),
        "its only peer is down: CRITICAL"
    );
    assert!(
        String::from_utf8_lossy(&watched.stdout)
            .contains("signs nothing until synced with colomiers"),
        "{}",
        String::from_utf8_lossy(&watched.stdout)
    );

    // Its peer, back, gives back what it published after the backup.
    let _node_b = start(&b);
    let synced = cli(&restored, &["sync", "colomiers"]);
    assert!(synced.status.success(), "{}", stderr(&synced));
    assert!(has(&restored, &v2) && has(&restored, &v3));
    assert_eq!(versions(&restored, "budget-primitif-2026"), vec![1, 2, 3]);
    let status = cli_json(&restored, &["status", "--json"]);
    assert_eq!(status["restore_waiting"], serde_json::json!([]));
    assert!(!restored.join("restored.json").exists());

    // Now it signs, after what it had signed: version 4, not a second 2.
    let v4 = publish(&restored, Path::new(&dataset));
    assert_eq!(
        versions(&restored, "budget-primitif-2026"),
        vec![1, 2, 3, 4]
    );
    eventually(Duration::from_secs(30), "colomiers holds v4", || {
        has(&b, &v4)
    });
    for dir in [&restored, &b] {
        let conflicts = cli_json(dir, &["status", "--json"])["conflicts"].clone();
        assert_eq!(conflicts, serde_json::json!([]), "{}", dir.display());
    }
}

/// A backup taken with the key restores with no key given; a restored
/// node with no peer signs at once.
#[test]
fn a_backup_with_its_key_restores_alone() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("n");
    init(&a, "243100518", "Toulouse Métropole");
    let mut node = start(&a);
    let id = publish(&a, Path::new(&example("dataset.json")));
    let backup = t.path().join("bk");
    cli_json(
        &a,
        &["backup", "--json", "--with-key", backup.to_str().unwrap()],
    );
    assert!(backup.join("organisation.key").is_file());
    node.kill();
    let restored = t.path().join("r");
    let out = Command::new(bin("maillage"))
        .args(["restore", backup.to_str().unwrap(), "--into"])
        .arg(&restored)
        .env_remove("MAILLAGE_DIR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let _node = start(&restored);
    assert!(has(&restored, &id));
    publish(&restored, Path::new(&example("dataset.json")));
    assert_eq!(versions(&restored, "budget-primitif-2026"), vec![1, 2]);
}

/// The config in one place (/etc/maillage), the node directory in another
/// (/var/lib/maillage), as the package lays them out: `init --config`
/// writes `node.dir`, the node starts from the config, the CLI finds the
/// node from MAILLAGE_CONFIG, and the portal is on from `--http-listen`.
#[test]
fn a_config_apart_from_the_node_directory() {
    let t = tempfile::tempdir().unwrap();
    let (etc, var) = (t.path().join("etc"), t.path().join("var/lib/maillage"));
    std::fs::create_dir_all(&etc).unwrap();
    let config = etc.join("maillage.toml");
    let http = format!("127.0.0.1:{}", free_port());
    let out = Command::new(bin("maillage"))
        .args([
            "init",
            "--siren",
            "243100518",
            "--name",
            "Toulouse Métropole",
        ])
        .arg("--dir")
        .arg(&var)
        .arg("--config")
        .arg(&config)
        .args(["--http-listen", &http])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(var.join("organisation.key").is_file() && !var.join("maillage.toml").exists());
    let log = std::fs::File::create(t.path().join("node.log")).unwrap();
    let mut child = Command::new(bin("maillage-node"))
        .arg("--config")
        .arg(&config)
        .stderr(log)
        .spawn()
        .unwrap();
    let status = |args: &[&str]| {
        Command::new(bin("maillage"))
            .env_remove("MAILLAGE_DIR")
            .env("MAILLAGE_CONFIG", &config)
            .args(args)
            .output()
            .unwrap()
    };
    let mut up = false;
    for _ in 0..100 {
        if status(&["status"]).status.success() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The portal is on, from --http-listen: its probe answers.
    let probe = up.then(|| http_get(&http, "/healthz"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "the node did not answer through MAILLAGE_CONFIG");
    assert!(
        var.join("data").is_dir(),
        "the store is in the node directory"
    );
    let (code, body) = probe.unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("store: ok"), "{body}");
}

/// A configuration the operator must fix ends the daemon with status 78
/// (the unit does not restart it), saying what to fix; a port in use is
/// status 1 (it may free itself: the unit tries again).
#[test]
fn configuration_errors_exit_78() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("n");
    init(&dir, "243100518", "Toulouse Métropole");
    let config = dir.join("maillage.toml");
    let run = || {
        Command::new(bin("maillage-node"))
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    };
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("format = \"text\"", "format = \"xml\""),
    )
    .unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(stderr(&out).contains("log.format"), "{}", stderr(&out));

    std::fs::write(&config, &text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let key = dir.join("organisation.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    // The node is not running: the CLI says so, as JSON under --json, and
    // a monitoring check says CRITICAL.
    let down = cli(&dir, &["status", "--json"]);
    assert_eq!(down.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&down.stderr)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stderr(&down)));
    assert!(
        error["error"].as_str().unwrap().contains("not running"),
        "{error}"
    );
    let check = cli(&dir, &["check", "--health"]);
    assert_eq!(check.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&check.stdout).starts_with("MAILLAGE CRITICAL"));

    let busy = std::net::TcpListener::bind(grpc_listen_of(&config)).unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot listen for gRPC"),
        "{}",
        stderr(&out)
    );
    drop(busy);
}

fn grpc_listen_of(config: &Path) -> String {
    let table: toml::Table = toml::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    table["node"]["grpc_listen"].as_str().unwrap().to_string()
}

/// Adds `[metrics]` to a node's config (before it starts), with a token
/// file if `token` is set; returns the metrics address.
fn enable_metrics(dir: &Path, token: Option<&str>) -> String {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut section = format!("\n[metrics]\nlisten = \"{addr}\"\n");
    if let Some(token) = token {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join("metrics.token"))
            .unwrap();
        writeln!(f, "{token}").unwrap();
        section.push_str("token_file = \"metrics.token\"\n");
    }
    let config = dir.join("maillage.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&section);
    std::fs::write(&config, text).unwrap();
    addr
}

/// The value of an unlabelled or labelled sample in a scrape.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `/metrics` says what the node holds, its peers and its requests, behind
/// its token; a real Prometheus scrapes it with the token and answers a
/// query on one of the metrics; `/healthz` and `/readyz` answer without.
#[test]
fn metrics_are_scraped_by_prometheus() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("metropole"), t.path().join("colomiers"));
    init(&a, "243100518", "Toulouse Métropole");
    init(&b, "213101496", "Colomiers");
    let token = "jeton-de-supervision-0123456789";
    let metrics = enable_metrics(&a, Some(token));
    let portal = enable_http(&a);
    let _na = start(&a);
    let _nb = start(&b);
    peer(&a, "colomiers", &b);
    peer(&b, "metropole", &a);
    publish(&a, Path::new(&example("dataset.json")));
    let synced = cli(&a, &["sync"]);
    assert!(synced.status.success(), "{}", stderr(&synced));
    // A page of the portal, to be timed.
    assert_eq!(http_get(&portal, "/recherche?q=budget").0, 200);

    assert_eq!(
        http_get(&metrics, "/metrics").0,
        401,
        "no token, no metrics"
    );
    let auth = format!("Bearer {token}");
    let (code, _, body) = http_get_with(&metrics, "/metrics", &[("Authorization", &auth)]);
    assert_eq!(code, 200);
    let scrape = String::from_utf8(body).unwrap();
    assert_eq!(
        sample(&scrape, "maillage_records{kind=\"dataset\"}"),
        Some(1.0),
        "{scrape}"
    );
    assert_eq!(
        sample(&scrape, "maillage_records{kind=\"organisation\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&scrape, "maillage_peer_up{peer=\"colomiers\"}"),
        Some(1.0)
    );
    assert!(
        sample(
            &scrape,
            "maillage_peer_last_sync_timestamp_seconds{peer=\"colomiers\"}"
        )
        .unwrap()
            > 1.7e9
    );
    assert_eq!(sample(&scrape, "maillage_ready"), Some(1.0));
    assert!(sample(&scrape, "maillage_rocksdb_estimated_keys").unwrap() > 0.0);
    assert!(scrape.contains("maillage_refusals_total{reason=\"tls_handshake\"}"));
    assert!(
        scrape.contains("maillage_http_request_duration_seconds_count{route=\"/recherche\"} 1"),
        "{scrape}"
    );
    assert!(scrape.contains(
        "maillage_grpc_request_duration_seconds_count{method=\"/maillage.v1.Replication/Reconcile\"}"
    ), "{scrape}");
    assert!(scrape.contains("maillage_build_info{version=\""));
    for probe in ["/healthz", "/readyz"] {
        let (code, body) = http_get(&metrics, probe);
        assert_eq!(code, 200, "{probe}: {body}");
        assert!(
            body.contains("store: ok") && body.contains("peers: 1 of 1"),
            "{body}"
        );
        assert_eq!(http_get(&portal, probe).0, 200);
    }

    // A real Prometheus (Debian's), scraping every second with the token.
    let prometheus = which("prometheus").expect(
        "prometheus is not installed: scripts/test installs it (apt-get install prometheus)",
    );
    let web = format!("127.0.0.1:{}", free_port());
    let etc = t.path().join("prometheus");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("token"), token).unwrap();
    std::fs::write(
        etc.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: maillage\n    \
             authorization:\n      credentials_file: {}\n    static_configs:\n      \
             - targets: ['{metrics}']\n",
            etc.join("token").display()
        ),
    )
    .unwrap();
    let mut server = NodeLikeProcess(
        Command::new(prometheus)
            .arg(format!(
                "--config.file={}",
                etc.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                etc.join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(etc.join("log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let query = "/api/v1/query?query=maillage_records%7Bkind%3D%22dataset%22%7D";
    let mut answer = String::new();
    eventually(
        Duration::from_secs(60),
        "prometheus answers the dataset count",
        || {
            if std::net::TcpStream::connect(&web).is_err() {
                return false;
            }
            answer = http_get(&web, query).1;
            answer.contains("\"value\":[") && answer.contains(",\"1\"]")
        },
    );
    let (_, up) = http_get(&web, "/api/v1/query?query=up%7Bjob%3D%22maillage%22%7D");
    assert!(
        up.contains(",\"1\"]"),
        "prometheus's target is not up: {up}"
    );
    server.0.kill().ok();
}

/// Kills a helper process when the test ends, however it ends.
struct NodeLikeProcess(std::process::Child);

impl Drop for NodeLikeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// `[backup]`: the node takes its first snapshot at once (none is there
/// yet), and `status` says when and where; the snapshot restores.
#[test]
fn automatic_snapshots() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("n");
    init(&dir, "243100518", "Toulouse Métropole");
    let config = dir.join("maillage.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[backup]\ndir = \"../instantanes\"\ninterval = \"1day\"\nkeep = 2\n");
    std::fs::write(&config, text).unwrap();
    let _node = start(&dir);
    let mut status = serde_json::Value::Null;
    eventually(Duration::from_secs(30), "a first snapshot", || {
        status = cli_json(&dir, &["status", "--json"]);
        status["last_backup_ms"].as_i64().unwrap_or(0) > 0
    });
    assert_eq!(status["backup_interval_s"], 86_400);
    let check = cli(&dir, &["check", "--health"]);
    assert!(
        check.status.success(),
        "a snapshot just taken: OK\n{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let snapshot = PathBuf::from(status["last_backup_dir"].as_str().unwrap());
    assert!(
        snapshot.starts_with(t.path().join("n/../instantanes")),
        "{}",
        snapshot.display()
    );
    let name = snapshot.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("maillage-") && name.ends_with('Z'),
        "{name}"
    );
    assert!(snapshot.join("manifest.json").is_file());
    let restored = t.path().join("r");
    let out = cli(
        &dir,
        &[
            "restore",
            snapshot.to_str().unwrap(),
            "--into",
            restored.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(restored.join("data").is_dir());
}

/// Copies a directory tree (a fixture, into a test's own directory).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// A backup written by the first version, in the store's first format
/// (tests/fixtures/backup-schema-1), restores and opens with this node:
/// its records, their history and their signatures are all there, and it
/// signs again after them.
#[test]
fn a_backup_of_the_first_format_opens() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let fixture = t.path().join("fixture");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/backup-schema-1"),
        &fixture,
    );
    // Git keeps no 0600: the key is made private again, as an operator would.
    std::fs::set_permissions(
        fixture.join("organisation.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let dir = t.path().join("n");
    let out = Command::new(bin("maillage"))
        .env_remove("MAILLAGE_DIR")
        .arg("restore")
        .arg(&fixture)
        .arg("--into")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // The fixture's port may be taken here.
    let config = dir.join("maillage.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let port = format!("127.0.0.1:{}", free_port());
    std::fs::write(&config, text.replace(&grpc_listen_of(&config), &port)).unwrap();
    let _node = start(&dir);
    let listed = cli_json(&dir, &["list", "--json"]);
    let mut ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"]["record_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["budget-primitif-2026", "ia-tri-courriers", "organisation"],
        "{listed}"
    );
    assert_eq!(versions(&dir, "budget-primitif-2026"), vec![1, 2]);
    // The index, rebuilt from it while the operator waits.
    let rebuilt = cli_json(&dir, &["reindex", "--wait", "--json"]);
    assert!(rebuilt["indexed_seq"].as_u64().unwrap() >= 4, "{rebuilt}");
    let check = cli(&dir, &["check"]);
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        stderr(&check)
    );
    assert!(String::from_utf8_lossy(&check.stdout).starts_with("MAILLAGE OK"));
    publish(&dir, Path::new(&example("dataset.json")));
    assert_eq!(versions(&dir, "budget-primitif-2026"), vec![1, 2, 3]);
}

/// The gRPC health service follows the node: the node and its catalogue
/// serve while it is ready; replication serves while a peer answers, and
/// stops when its only peer is gone. A peer's version shows in `peer list`.
#[test]
fn grpc_health_follows_the_peers() {
    use maillage_node::testkit::tls;
    use maillage_record::PublicKey;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("metropole"), t.path().join("colomiers"));
    init(&a, "243100518", "Toulouse Métropole");
    init(&b, "213101496", "Colomiers");
    let _na = start(&a);
    let mut nb = start(&b);
    peer(&a, "colomiers", &b);
    peer(&b, "metropole", &a);
    let status = cli_json(&a, &["status", "--json"]);
    let key = PublicKey::parse_hex(status["public_key"].as_str().unwrap()).unwrap();
    let url = format!("https://{}", status["grpc_listen"].as_str().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let health = |service: &str| -> ServingStatus {
        rt.block_on(async {
            let channel = tls::anonymous_channel(&url, key).unwrap();
            let answer = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner();
            ServingStatus::try_from(answer.status).unwrap()
        })
    };
    assert!(cli(&a, &["sync"]).status.success());
    eventually(Duration::from_secs(20), "replication serving", || {
        health("maillage.v1.Replication") == ServingStatus::Serving
    });
    assert_eq!(health(""), ServingStatus::Serving);
    assert_eq!(health("maillage.v1.Catalogue"), ServingStatus::Serving);
    let peers = cli_json(&a, &["peer", "list", "--json"]);
    assert_eq!(peers[0]["version"], env!("CARGO_PKG_VERSION"), "{peers}");
    let check = cli(&a, &["check", "--health"]);
    assert!(
        check.status.success() && String::from_utf8_lossy(&check.stdout).starts_with("MAILLAGE OK"),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    nb.kill();
    assert!(
        !cli(&a, &["sync"]).status.success(),
        "a sync with a dead peer succeeded"
    );
    eventually(Duration::from_secs(20), "replication not serving", || {
        health("maillage.v1.Replication") == ServingStatus::NotServing
    });
    assert_eq!(
        health(""),
        ServingStatus::Serving,
        "the node itself still serves"
    );
    let check = cli(&a, &["check", "--health"]);
    assert_eq!(check.status.code(), Some(2), "no peer answers: CRITICAL");
    assert!(
        String::from_utf8_lossy(&check.stdout).starts_with("MAILLAGE CRITICAL - no peer of 1"),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}
