//! End-to-end: real `maillage` and `maillage-node` processes, real RocksDB, real sockets.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

fn bin(name: &str) -> PathBuf {
    // target/<profile>/deps/e2e-xxxx -> target/<profile>/<name>
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join(name)
}

fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin("maillage"))
        .env("MAILLAGE_DIR", dir)
        .args(args)
        .output()
        .unwrap()
}

fn start(dir: &Path) -> Child {
    let child = Command::new(bin("maillage-node"))
        .arg("--config")
        .arg(dir.join("maillage.toml"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if cli(dir, &["status"]).status.success() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("node did not answer status");
}

fn init(dir: &Path) {
    let out = cli(
        dir,
        &[
            "init",
            "--siren",
            "243100518",
            "--name",
            "Toulouse Métropole",
            "--dir",
            dir.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn invalid_siren_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("bad");
    let out = cli(
        &dir,
        &[
            "init",
            "--siren",
            "243100519",
            "--name",
            "X",
            "--dir",
            dir.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Luhn"));
    assert!(!dir.join("maillage.toml").exists());
}

#[test]
fn key_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("n");
    init(&dir);
    std::fs::set_permissions(
        dir.join("organisation.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = Command::new(bin("maillage-node"))
        .arg("--config")
        .arg(dir.join("maillage.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chmod 600"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn publish_survives_kill_9_and_tampering_is_caught() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("n");
    init(&dir);
    let mut node = start(&dir);
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/dataset.json"
    );
    let mut ids = Vec::new();
    for _ in 0..20 {
        let out = cli(&dir, &["publish", "--json", example]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    // An older version is refused and changes nothing.
    let raw = cli(&dir, &["get", "--raw", &ids[0]]);
    assert!(raw.status.success());
    let file = t.path().join("v1.envelope");
    std::fs::write(&file, &raw.stdout).unwrap();
    let replay = cli(&dir, &["publish", "--signed", file.to_str().unwrap()]);
    assert!(!replay.status.success());
    assert!(
        cli(&dir, &["verify", file.to_str().unwrap()])
            .status
            .success()
    );
    let mut bad = raw.stdout.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    std::fs::write(&file, &bad).unwrap();
    assert!(
        !cli(&dir, &["verify", file.to_str().unwrap()])
            .status
            .success()
    );

    node.kill().unwrap(); // SIGKILL
    node.wait().unwrap();
    let mut node = start(&dir);
    for id in &ids {
        let out = cli(&dir, &["get", "--json", id]);
        assert!(out.status.success(), "record {id} lost after kill -9");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Budget primitif 2026"));
    }
    let hist = cli(&dir, &["history", "--json", "budget-primitif-2026"]);
    let v: serde_json::Value = serde_json::from_slice(&hist.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 20);
    node.kill().unwrap();
    node.wait().unwrap();
}
