//! A full disk and a data directory left read-only, on a real filesystem: a small
//! tmpfs mounted for the test (as root; elsewhere the test says it cannot
//! run and passes). The node says why it cannot store, stores nothing
//! half-way, and goes on by itself once it can write again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// A tmpfs mounted at a folder, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {options}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Rows whose descriptions fill their 20,000 characters (40 KB each).
fn rich_rows(count: usize) -> String {
    colomiers_projects(count, "riche", |_| "é".repeat(20_000))
}

fn publish_one(dir: &Path, record_id: &str) -> std::process::Output {
    let doc = write_doc(
        dir,
        &format!("{record_id}.json"),
        serde_json::json!({
            "kind": "dataset",
            "record_id": record_id,
            "title": "Jeu publié sur un disque plein",
            "description": "Un essai.",
            "visibility": "public",
        }),
    );
    cli(dir, &["publish", "--json", doc.to_str().unwrap()])
}

#[test]
fn a_full_or_read_only_disk_is_said_and_recovered_from() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&tmp.path().join("disk"), "24m") else {
        eprintln!("cannot mount a tmpfs here (not root?): the disk-full test does not run");
        return;
    };
    let dir = tmp.path().join("node");
    init(&dir, "243100518", "Toulouse Métropole");
    let config = dir.join("maillage.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let on_disk = |name: &str| disk.0.join(name).display().to_string();
    let text = text
        .replace(
            "data_dir = \"data\"",
            &format!("data_dir = \"{}\"", on_disk("data")),
        )
        .replace(
            "search_dir = \"search\"",
            &format!("search_dir = \"{}\"", on_disk("search")),
        );
    assert!(text.contains(&on_disk("data")) && text.contains(&on_disk("search")));
    std::fs::write(&config, text).unwrap();
    let mut node = start(&dir);

    // 28 MB of rows on a 24 MB disk: refused past the space, and said so.
    let file = tmp.path().join("riches.csv");
    std::fs::write(&file, rich_rows(700)).unwrap();
    let out = cli(&dir, &["import", "bibliotheque-ia", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("disk is full"), "{said}");
    let out = publish_one(&dir, "pendant");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("disk is full"));
    // The node still answers its operator.
    assert!(cli(&dir, &["status"]).status.success());

    // Space is back: the node goes on by itself, without a restart.
    disk.remount("size=256m");
    eventually(Duration::from_secs(30), "publishing works again", || {
        publish_one(&dir, "apres").status.success()
    });
    let report = cli_json(
        &dir,
        &[
            "import",
            "--json",
            "bibliotheque-ia",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(report["rejected"].as_array().unwrap().len(), 0, "{report}");
    let sound = |dir: &Path| {
        eventually(Duration::from_secs(60), "the index catches up", || {
            let s = cli_json(dir, &["status", "--json"]);
            s["indexed_seq"] == s["last_seq"]
        });
        let out = cli(dir, &["check"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    };
    sound(&dir);

    // Everything acknowledged is there after a restart, and sound.
    node.kill();
    node = start(&dir);
    let listed = cli_json(&dir, &["list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1 + 700 + 1, "{listed}");
    sound(&dir);
    node.kill();

    // A data directory left read-only: the node does not start, and says
    // why and where; writable again, it starts with everything.
    disk.remount("ro");
    let out = Command::new(bin("maillage-node"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    disk.remount("rw");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("read-only") && said.contains(&on_disk("data")),
        "{said}"
    );
    let _node = start(&dir);
    let listed = cli_json(&dir, &["list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1 + 700 + 1);
}
