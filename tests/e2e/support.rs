//! Driving real processes: the CLI, and nodes that die with their test.

use std::io::{Read, Write};
use std::net::TcpStream;
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

pub fn key(dir: &Path) -> String {
    cli_json(dir, &["status", "--json"])["public_key"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn grpc(dir: &Path) -> String {
    cli_json(dir, &["status", "--json"])["grpc_listen"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn peer(from: &Path, name: &str, to: &Path) {
    peer_add(from, name, to, &[]);
}

/// Pins `to`, vouching for its SIREN: it is served records restricted to it.
pub fn peer_with_siren(from: &Path, name: &str, to: &Path, siren: &str) {
    peer_add(from, name, to, &["--siren", siren]);
}

fn peer_add(from: &Path, name: &str, to: &Path, extra: &[&str]) {
    let url = format!("https://{}", grpc(to));
    let k = key(to);
    let mut args = vec!["peer", "add", name, &url, "--key", &k];
    args.extend_from_slice(extra);
    let out = cli(from, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn trust(on: &Path, of: &Path) {
    let k = key(of);
    let out = cli(on, &["trust", "add-root", &k]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn write_doc(dir: &Path, name: &str, doc: serde_json::Value) -> PathBuf {
    let p = dir.with_extension(name);
    std::fs::write(&p, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    p
}

/// A GET over plain HTTP/1.1: (status, body).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Turns on the node's HTTP interface on a free loopback port (before the
/// node starts); returns its address.
pub fn enable_http(dir: &Path) -> String {
    let addr = format!("127.0.0.1:{}", free_port());
    let config = dir.join("maillage.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "data_dir = \"data\"",
            &format!("data_dir = \"data\"\nhttp_listen = \"{addr}\""),
        ),
    )
    .unwrap();
    addr
}

/// Nodes started in a temporary directory, one per organisation; killed
/// (and their directory removed) with it.
pub struct Fed {
    _tmp: tempfile::TempDir,
    pub dirs: Vec<PathBuf>,
    pub nodes: Vec<NodeProc>,
}

pub fn federation(orgs: &[(&str, &str)]) -> Fed {
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    let mut nodes = Vec::new();
    for (i, (siren, name)) in orgs.iter().enumerate() {
        let dir = tmp.path().join(format!("n{i}"));
        init(&dir, siren, name);
        nodes.push(start(&dir));
        dirs.push(dir);
    }
    Fed {
        _tmp: tmp,
        dirs,
        nodes,
    }
}

/// Publishes a draft file; returns the record's id.
pub fn publish(dir: &Path, file: &Path) -> String {
    cli_json(dir, &["publish", "--json", file.to_str().unwrap()])["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Whether the node holds the envelope `id`.
pub fn has(dir: &Path, id: &str) -> bool {
    cli(dir, &["get", "--json", id]).status.success()
}

/// The header of the bibliothèque IA export.
pub const BIBLIOTHEQUE_HEADER: &str = "Nom_collectivite,Nom_du_projet,SIRET,Latitude,Longitude,\
Type_de_collectivite,Date_de_demarrage,Statut_du_projet,Partenaires,Description_service,Theme,\
Sous_Theme,Audience,URL_Service,URL_Logo,Date_de_derniere_mise_a_jour";

/// A bibliothèque IA export of `count` projects of Colomiers, named after
/// `tag`, each described by `description(i)`.
pub fn colomiers_projects(
    count: usize,
    tag: &str,
    description: impl Fn(usize) -> String,
) -> String {
    let mut rows = vec![BIBLIOTHEQUE_HEADER.to_string()];
    for i in 0..count {
        rows.push(format!(
            "Colomiers,Projet {tag} {i},21310149600015,,,Commune,09/2024,En expérimentation,,{},\
Administration et organisation interne,,Agents,,,",
            description(i)
        ));
    }
    rows.join("\n") + "\n"
}

/// An answer of `serve_http`: status, content type, body.
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// A Content-Length to claim instead of the body's (a server lying
    /// about a huge answer).
    pub claimed_length: Option<u64>,
}

impl Answer {
    pub fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status: 200,
            content_type,
            body: body.into(),
            claimed_length: None,
        }
    }
    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            content_type: "text/plain",
            body: b"no".to_vec(),
            claimed_length: None,
        }
    }
}

/// A plain HTTP/1.1 server on 127.0.0.1 for the tests' sources: each
/// request's path and query go to `route`; `None` never answers (a hung
/// source). Its address, as http://127.0.0.1:PORT.
pub fn serve_http(route: impl Fn(&str) -> Option<Answer> + Send + Sync + 'static) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let route = std::sync::Arc::new(route);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let route = route.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let target = head.split(' ').nth(1).unwrap_or("/").to_string();
                let Some(answer) = route(&target) else {
                    std::thread::sleep(Duration::from_secs(30));
                    return;
                };
                let length = answer.claimed_length.unwrap_or(answer.body.len() as u64);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n",
                    answer.status, answer.content_type
                );
                let _ = stream.write_all(&answer.body);
            });
        }
    });
    base
}

/// A GET over plain HTTP/1.1 with an `Accept` header: (status, the header
/// lines in lower case, body bytes). A chunked body is put back together.
pub fn http_get_as(addr: &str, path: &str, accept: &str) -> (u16, String, Vec<u8>) {
    http_get_with(addr, path, &[("Accept", accept)])
}

/// A GET with these headers: (status, headers lowercased, body).
pub fn http_get_with(addr: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete answer");
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let (mut out, mut rest) = (Vec::new(), body.as_slice());
        loop {
            let line = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line]).unwrap().trim(), 16)
                    .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[line + 2..line + 2 + size]);
            rest = &rest[line + 2 + size + 2..];
        }
        body = out;
    }
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, body)
}

/// Publishes a record written as JSON (`maillage publish`), through a file
/// named after `name` beside the node directory.
pub fn publish_doc(dir: &Path, name: &str, doc: serde_json::Value) {
    let path = dir.with_extension(format!("{name}.json"));
    std::fs::write(&path, doc.to_string()).unwrap();
    cli_json(dir, &["publish", "--json", path.to_str().unwrap()]);
}

/// The browser tests' folder (`tests/browser`), once its prerequisites are
/// checked: Debian's chromium and the npm packages.
pub fn browser_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let chromium = chromium();
    assert!(
        Path::new(&chromium).exists(),
        "the browser tests need chromium at {chromium}: run  sudo apt-get install -y chromium  \
         (scripts/test does), or set MAILLAGE_CHROMIUM"
    );
    for package in ["playwright-core", "axe-core", "oidc-provider"] {
        assert!(
            dir.join("node_modules").join(package).exists(),
            "the browser tests need their npm packages: run  npm ci --prefix {}  (scripts/test does)",
            dir.display()
        );
    }
    dir
}

fn chromium() -> String {
    std::env::var("MAILLAGE_CHROMIUM").unwrap_or("/usr/bin/chromium".into())
}

/// Runs `tests/browser/<script>` against the portal at `addr`, writing
/// into `out`; panics with all it said if it fails, else returns it.
pub fn browser_script(script: &str, addr: &str, out: &Path) -> String {
    let dir = browser_dir();
    let run = Command::new("node")
        .arg(dir.join(script))
        .arg(format!("http://{addr}"))
        .arg(out)
        .env("MAILLAGE_CHROMIUM", chromium())
        .output()
        .expect("node (Node.js) runs the browser tests");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.status.success(),
        "{script} in the browser (screenshots in {}):\n{said}",
        out.display()
    );
    said
}
