//! The foundation: init, key permissions, publish, verify, kill -9.

use std::process::Command;

use std::time::Duration;

use crate::support::{bin, cli, cli_json, eventually, example, init, start};

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
    init(&dir, "243100518", "Toulouse Métropole");
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
    init(&dir, "243100518", "Toulouse Métropole");
    let mut node = start(&dir);
    let example = example("dataset.json");

    // Publish in a loop and kill -9 the node in the middle of it: every
    // publish the CLI saw acknowledged must survive.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let publisher = {
        let (dir, acked, example) = (dir.clone(), acked.clone(), example.clone());
        std::thread::spawn(move || {
            for _ in 0..200 {
                let out = cli(&dir, &["publish", "--json", &example]);
                if !out.status.success() {
                    break; // the node is gone
                }
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                acked
                    .lock()
                    .unwrap()
                    .push(v["id"].as_str().unwrap().to_string());
            }
        })
    };
    eventually(Duration::from_secs(30), "20 publishes acknowledged", || {
        acked.lock().unwrap().len() >= 20
    });
    node.kill(); // SIGKILL, mid-loop
    publisher.join().unwrap();
    let ids = acked.lock().unwrap().clone();
    assert!(
        ids.len() >= 20 && ids.len() < 200,
        "{} publishes",
        ids.len()
    );

    let _node = start(&dir);
    for id in &ids {
        let out = cli(&dir, &["get", "--json", id]);
        assert!(
            out.status.success(),
            "acknowledged record {id} lost after kill -9"
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("Budget primitif 2026"));
    }
    let hist = cli_json(&dir, &["history", "--json", "budget-primitif-2026"]);
    assert!(hist.as_array().unwrap().len() >= ids.len());

    // An older version is refused and changes nothing.
    let raw = cli(&dir, &["get", "--raw", &ids[0]]);
    assert!(raw.status.success());
    let file = t.path().join("v1.envelope");
    std::fs::write(&file, &raw.stdout).unwrap();
    let replay = cli(&dir, &["publish", "--signed", file.to_str().unwrap()]);
    assert!(!replay.status.success());
    let after = cli_json(&dir, &["history", "--json", "budget-primitif-2026"]);
    assert_eq!(after, hist, "a refused replay changed the history");

    // Offline verification: the genuine envelope passes, a flipped bit fails.
    assert!(
        cli(&dir, &["verify", file.to_str().unwrap()])
            .status
            .success()
    );
    let mut bad = raw.stdout.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    std::fs::write(&file, &bad).unwrap();
    let out = cli(&dir, &["verify", file.to_str().unwrap()]);
    assert!(!out.status.success());
}

#[test]
fn forged_and_foreign_envelopes_are_refused_by_publish() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    init(&a, "243100518", "Toulouse Métropole");
    init(&b, "213105554", "Toulouse");
    let _na = start(&a);
    let _nb = start(&b);
    // A record signed by b, offered to a: b's key is not allowed to publish there.
    let id = cli_json(&b, &["publish", "--json", &example("project.json")])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let raw = cli(&b, &["get", "--raw", &id]).stdout;
    let file = t.path().join("b.envelope");
    std::fs::write(&file, &raw).unwrap();
    let out = cli(&a, &["publish", "--signed", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("may not publish"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A forged signature is refused on b itself, and nothing is stored.
    let before = cli_json(&b, &["status", "--json"])["envelopes"].clone();
    let mut forged = raw.clone();
    let n = forged.len();
    forged[n - 5] ^= 0x40; // inside the signature
    std::fs::write(&file, &forged).unwrap();
    let out = cli(&b, &["publish", "--signed", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("signature"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(cli_json(&b, &["status", "--json"])["envelopes"], before);
}
