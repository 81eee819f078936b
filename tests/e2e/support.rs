//! Driving real processes: the CLI, and nodes that die with their test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

pub fn bin(name: &str) -> PathBuf {
    // target/<profile>/deps/e2e-xxxx -> target/<profile>/<name>
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join(name)
}

pub fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin("maillage"))
        .env("MAILLAGE_DIR", dir)
        .args(args)
        .output()
        .unwrap()
}

/// Runs the CLI, asserts success, parses its JSON output.
pub fn cli_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = cli(dir, args);
    assert!(
        out.status.success(),
        "maillage {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "maillage {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A running node process, killed (SIGKILL) when dropped so a failing test
/// leaves nothing behind.
pub struct NodeProc {
    pub child: Child,
}

impl NodeProc {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn start(dir: &Path) -> NodeProc {
    let log = std::fs::File::create(dir.with_extension("log")).unwrap();
    let child = Command::new(bin("maillage-node"))
        .arg("--config")
        .arg(dir.join("maillage.toml"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let node = NodeProc { child };
    for _ in 0..100 {
        if cli(dir, &["status"]).status.success() {
            return node;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("node in {} did not answer status", dir.display());
}

pub fn init(dir: &Path, siren: &str, name: &str) {
    let out = cli(
        dir,
        &[
            "init",
            "--siren",
            siren,
            "--name",
            name,
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

/// Waits until `check` holds, up to `limit`; says what did not happen.
pub fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("within {limit:?}: {what}");
}

pub fn example(name: &str) -> String {
    format!("{}/../deploy/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}
