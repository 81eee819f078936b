//! Members sign in (issue 22): a real OpenID provider (oidc-provider, run
//! by Node.js on 127.0.0.1, configured as ProConnect answers: the SIRET in
//! a signed userinfo), a real node, and the browser of the portal's tests.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::*;

/// Colomiers (213101496), a commune of Toulouse Métropole.
const SIRET_COLOMIERS: &str = "21310149600015";
/// Fails its Luhn key.
const SIRET_BROKEN: &str = "21310149600016";
/// Valid, of no organisation the federation knows.
const SIRET_UNKNOWN: &str = "12345678200010";
/// Toulouse Métropole (243100518): its agent `moderateur` moderates.
const SIRET_METROPOLE: &str = "24310051800014";

/// This node's client secret at the provider.
const SECRET: &str = "secret-de-test-du-client";

/// The provider's process, stopped when dropped.
struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts oidc-provider with one client (this node's) and its accounts.
fn provider(redirect_uri: &str, secret: &str) -> Provider {
    let clients = serde_json::json!([{"client_id": "maillage", "client_secret": secret,
        "redirect_uri": redirect_uri}]);
    let accounts = serde_json::json!({"agent-a": SIRET_COLOMIERS, "agent-x": SIRET_BROKEN,
        "agent-z": SIRET_UNKNOWN, "moderateur": SIRET_METROPOLE});
    let mut child = Command::new("node")
        .arg(browser_dir().join("oidc-provider.mjs"))
        .env("OIDC_CLIENTS", clients.to_string())
        .env("OIDC_ACCOUNTS", accounts.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs the OpenID provider");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let issuer = line
        .trim()
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("the provider did not start: '{line}'"))
        .to_string();
    Provider { child, issuer }
}

/// Adds `[signin]` to a node's config, its secret in a file only its owner
/// reads.
fn configure(dir: &Path, issuer: &str, secret: &str) {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join("oidc.secret");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.join("maillage.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[signin]\nissuer = \"{issuer}\"\nclient_id = \"maillage\"\nclient_secret_file = \"oidc.secret\"\n"
    ));
    std::fs::write(&config, text).unwrap();
}

/// Toulouse Métropole's node, its portal at the returned address, with
/// `[signin]` at a provider started for it (and `extra` in that section).
fn signin_node(extra: &str) -> (tempfile::TempDir, std::path::PathBuf, String, Provider) {
    browser_dir();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("metropole");
    init(&dir, "243100518", "Toulouse Métropole");
    let addr = enable_http(&dir);
    let idp = provider(&format!("http://{addr}/connexion/retour"), SECRET);
    configure(&dir, &idp.issuer, SECRET);
    let config = dir.join("maillage.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(extra);
    std::fs::write(&config, text).unwrap();
    (tmp, dir, addr, idp)
}

#[test]
fn an_agent_signs_in_and_sees_what_its_organisation_may_see() {
    let (tmp, dir, addr, idp) = signin_node("");
    let _node = start(&dir);
    for (name, doc) in [
        (
            "public",
            serde_json::json!({"kind": "dataset", "record_id": "public", "title": "Jeu PUBLIC",
                "description": "d"}),
        ),
        (
            "colomiers",
            serde_json::json!({"kind": "dataset", "record_id": "colomiers", "title": "Réservé COLOMIERS",
                "description": "d", "visibility": "restricted", "audience": ["213101496"]}),
        ),
        (
            "toulouse",
            serde_json::json!({"kind": "dataset", "record_id": "toulouse", "title": "Réservé TOULOUSE",
                "description": "d", "visibility": "restricted", "audience": ["213105554"]}),
        ),
        (
            "federation",
            serde_json::json!({"kind": "dataset", "record_id": "federation", "title": "Réservé FEDERATION",
                "description": "d", "visibility": "federation"}),
        ),
    ] {
        publish_doc(&dir, name, doc);
    }
    // The search index catches up with what was published.
    for _ in 0..100 {
        let (_, body) = http_get(&addr, "/search?q=PUBLIC");
        if body.contains("\"total\": 1") || body.contains("\"total\":1") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("signin-browser");
    let _ = std::fs::remove_dir_all(&out);
    println!("{}", browser_script("signin.mjs", &addr, &out));

    // The operator sees who read the restricted record (its title in the
    // search, then its page), and nothing of the public one.
    let log = cli_json(&dir, &["access-log", "--json"]);
    let lines = log.as_array().unwrap();
    let via: Vec<&str> = lines.iter().map(|l| l["via"].as_str().unwrap()).collect();
    assert_eq!(via, ["search", "page"], "{log}");
    for line in lines {
        assert_eq!(line["who"], "session:agent-a", "{log}");
        assert_eq!(line["siren"], "213101496", "{log}");
        assert_eq!(line["record_id"], "colomiers", "{log}");
    }

    // A node whose client secret others may read does not start.
    std::fs::set_permissions(
        dir.join("oidc.secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let other = tmp.path().join("autre");
    init(&other, "213101496", "Colomiers");
    enable_http(&other);
    configure(&other, &idp.issuer, SECRET);
    std::fs::set_permissions(
        other.join("oidc.secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let run = Command::new(bin("maillage-node"))
        .arg("--config")
        .arg(other.join("maillage.toml"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "{said}");
    assert!(said.contains("chmod 600"), "{said}");
}

/// Read tokens (issue 22): a script sees what its organisation may see on
/// the JSON endpoints; a flood is refused with 429; a revoked, forged or
/// absent token sees the public only (401 for a token that is not one).
#[test]
fn a_read_token_sees_its_organisation_s_records_until_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("metropole");
    init(&dir, "243100518", "Toulouse Métropole");
    let addr = enable_http(&dir);
    let mut node = start(&dir);
    publish_doc(
        &dir,
        "colomiers",
        serde_json::json!({"kind": "dataset", "record_id": "colomiers", "title": "Réservé COLOMIERS",
            "description": "d", "visibility": "restricted", "audience": ["213101496"]}),
    );
    publish_doc(
        &dir,
        "public",
        serde_json::json!({"kind": "dataset", "record_id": "public", "title": "Jeu PUBLIC",
            "description": "d"}),
    );
    let total = |headers: &[(&str, &str)]| -> (u16, serde_json::Value) {
        let (status, _, body) = http_get_with(&addr, "/search?q=jeu+OR+COLOMIERS", headers);
        (status, serde_json::from_slice(&body).unwrap_or_default())
    };
    for _ in 0..100 {
        if total(&[]).1["total"] == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let made = cli_json(
        &dir,
        &[
            "token",
            "create",
            "--json",
            "--siren",
            "213101496",
            "--name",
            "SIG de Colomiers",
            "--expires",
            "30d",
        ],
    );
    let secret = made["token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {secret}");
    let with = [("Authorization", bearer.as_str())];
    let (status, found) = total(&with);
    assert_eq!(status, 200);
    assert_eq!(found["total"], 2, "{found}");
    assert_eq!(total(&[]).1["total"], 1);
    // The record itself, as JSON, for the token only.
    let key = key(&dir);
    let path = format!("/records/{key}/colomiers");
    let (status, _, _) = http_get_with(&addr, &path, &[("Accept", "application/json"), with[0]]);
    assert_eq!(status, 200);
    let (status, _, _) = http_get_as(&addr, &path, "application/json");
    assert_eq!(status, 404);
    // The DCAT export: the public catalogue, and the token's records after.
    let (status, head, body) = http_get_with(&addr, "/catalog.jsonld", &with);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("Réservé COLOMIERS"));
    assert!(head.contains("cache-control: private"), "{head}");
    let (_, head, body) = http_get_with(&addr, "/catalog.jsonld", &[]);
    assert!(!String::from_utf8_lossy(&body).contains("COLOMIERS"));
    assert!(head.contains("vary: authorization, cookie"), "{head}");
    // Each read beyond the public is logged: in a search, as JSON, in the
    // export; the public record never.
    let log = cli_json(&dir, &["access-log", "--json", "--siren", "213101496"]);
    let lines = log.as_array().unwrap();
    let mut via: Vec<&str> = lines.iter().map(|l| l["via"].as_str().unwrap()).collect();
    via.sort();
    assert_eq!(via, ["export", "page", "search"], "{log}");
    for line in lines {
        assert_eq!(
            line["who"],
            format!("token:{}", made["id"].as_str().unwrap()),
            "{log}"
        );
        assert_eq!(line["record_id"], "colomiers", "{log}");
    }
    // A token that is not one is told so.
    let (status, head, _) = http_get_with(
        &addr,
        "/search?q=x",
        &[("Authorization", "Bearer mt_forged")],
    );
    assert_eq!(status, 401);
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    // The list names it, never its secret.
    let list = cli(&dir, &["token", "list", "--json"]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains("SIG de Colomiers") && !listed.contains(&secret[3..]),
        "{listed}"
    );
    // Kept across a restart, even after SIGKILL.
    node.kill();
    node = start(&dir);
    assert_eq!(total(&with).1["total"], 2);
    // A flood from the token is refused, counted, and the public is served.
    // (Cheap requests, from 4 threads: 400 of them take far less than the
    // 17 s the bucket needs to let them all through.)
    let refused: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    (0..100)
                        .filter(|_| http_get_with(&addr, "/nulle-part", &with).0 == 429)
                        .count()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert!(refused > 0, "400 requests at once were all served");
    assert_eq!(total(&[]).0, 200);
    let status = cli_json(&dir, &["status", "--json"]);
    assert!(
        status["refusals"]["http_rate_limited"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{status}"
    );
    // Revoked: refused at once.
    let id = made["id"].as_str().unwrap();
    cli_json(&dir, &["token", "revoke", "--json", id]);
    assert_eq!(total(&with).0, 401);
    drop(node);
}

/// Proposals (issue 22): agent-a of Colomiers proposes a project and two
/// datasets in the portal and amends the project while it waits; the
/// moderator accepts the project and a dataset there. agent-a proposes the
/// project's details, an edit of the project and the dataset's withdrawal;
/// the moderator accepts them; the operator refuses the last dataset with
/// the CLI. The node signs on behalf of Colomiers, and a peer shows the
/// project as Colomiers' (and never gets the details, which only Colomiers
/// may see).
#[test]
fn an_agent_proposes_a_project_a_moderator_publishes_it_and_a_peer_shows_it() {
    let (tmp, dir, addr, _idp) =
        signin_node("moderators = [\"Moderateur@collectivite.example\"]\n");
    let _node = start(&dir);
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("proposals-browser");
    let _ = std::fs::remove_dir_all(&out);
    println!("{}", browser_script("proposals.mjs", &addr, &out));

    // The project is published, signed by the node, on behalf of Colomiers,
    // amended before the decision, then edited: version 2.
    let records = |kind: &str| {
        cli_json(&dir, &["list", "--json", "--kind", kind])
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["record"].clone())
            .collect::<Vec<_>>()
    };
    let projects = records("project");
    let project = projects
        .iter()
        .find(|r| r["name"] == "Détection des fuites MODIFIEE")
        .unwrap_or_else(|| panic!("the edited project is not published: {projects:?}"));
    assert_eq!(project["version"], 2, "{project}");
    assert_eq!(
        project["provenance"]["on_behalf_of"]["siren"], "213101496",
        "{project}"
    );
    assert_eq!(
        project["provenance"]["source_format"], "proposition",
        "{project}"
    );
    assert_eq!(
        project["description"], "Repère les fuites sur le réseau d'eau potable.",
        "the amendment was lost: {project}"
    );
    assert_eq!(project["siret"], SIRET_COLOMIERS, "{project}");
    assert_eq!(project["latitude"], 43.6111, "{project}");
    let project_id = project["record_id"].as_str().unwrap();

    // Its details: only Colomiers may see them.
    let details = records("project_details");
    assert_eq!(details.len(), 1, "{details:?}");
    assert_eq!(details[0]["project"], project_id, "{details:?}");
    assert_eq!(details[0]["visibility"], "restricted", "{details:?}");
    assert_eq!(details[0]["audience"], serde_json::json!(["213101496"]));
    assert_eq!(details[0]["contact"]["email"], "sig@colomiers.example");
    assert_eq!(
        details[0]["algorithm_types"],
        serde_json::json!(["machine_learning", "computer_vision"])
    );

    // The withdrawn dataset is a tombstone now.
    let history = cli_json(&dir, &["list", "--json", "--all", "--kind", "tombstone"]);
    let gone = history.as_array().unwrap();
    assert_eq!(gone.len(), 1, "{history}");
    assert_eq!(gone[0]["record"]["reason"], "jeu remplacé", "{history}");
    assert_eq!(gone[0]["record"]["version"], 2, "{history}");

    // The last dataset waits; the operator refuses it with the CLI.
    let waiting = cli_json(&dir, &["proposals", "list", "--json"]);
    let waiting = waiting.as_array().unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0]["title"], "Jeu REFUSE");
    assert_eq!(waiting[0]["siren"], "213101496");
    assert_eq!(waiting[0]["change"], "new");
    let id = waiting[0]["id"].as_str().unwrap();
    let refused = cli_json(
        &dir,
        &["proposals", "refuse", "--json", id, "--reason", "doublon"],
    );
    assert_eq!(refused["state"], "refused", "{refused}");
    let again = cli(&dir, &["proposals", "accept", id]);
    assert!(!again.status.success(), "a refused proposal was accepted");
    let all = cli_json(&dir, &["proposals", "list", "--json", "--all"]);
    let changes: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes.len(), 6, "{all}");
    assert_eq!(changes.iter().filter(|c| **c == "edit").count(), 1, "{all}");
    assert_eq!(
        changes.iter().filter(|c| **c == "withdrawal").count(),
        1,
        "{all}"
    );

    // A peer that trusts the node gets the project, as Colomiers'.
    let peer_dir = tmp.path().join("region");
    init(&peer_dir, "200053791", "Région Occitanie");
    let _peer = start(&peer_dir);
    peer(&peer_dir, "metropole", &dir);
    peer(&dir, "region", &peer_dir);
    trust(&peer_dir, &dir);
    cli_json(&peer_dir, &["sync", "--json", "metropole"]);
    eventually(
        std::time::Duration::from_secs(30),
        "the peer finds the project under Colomiers",
        || {
            let found = cli_json(
                &peer_dir,
                &["search", "--json", "--org", "213101496", "MODIFIEE"],
            );
            found["total"] == 1
        },
    );
    let held = cli_json(&peer_dir, &["list", "--json", "--kind", "project_details"]);
    assert_eq!(
        held,
        serde_json::json!([]),
        "the region got Colomiers' details"
    );
}

/// A session ends when `[signin] session` says, whether or not its agent
/// signs out.
#[test]
fn a_session_expires() {
    let (tmp, dir, addr, _idp) = signin_node("session = \"1min\"\n");
    let _ = &tmp;
    let _node = start(&dir);
    publish_doc(
        &dir,
        "colomiers",
        serde_json::json!({"kind": "dataset", "record_id": "colomiers", "title": "Réservé COLOMIERS",
            "description": "d", "visibility": "restricted", "audience": ["213101496"]}),
    );
    eventually(
        std::time::Duration::from_secs(10),
        "the record is indexed",
        || cli_json(&dir, &["search", "--json", "COLOMIERS"])["total"] == 1,
    );
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("expiry-browser");
    let _ = std::fs::remove_dir_all(&out);
    println!("{}", browser_script("expiry.mjs", &addr, &out));
}
