//! Search, statistics and collections on real nodes: through the CLI (the
//! operator) and the HTTP interface (the public), across kill -9, a lost
//! index and a rebuild.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

const TOULOUSE_METROPOLE: (&str, &str) = ("243100518", "Toulouse Métropole");
const BLAGNAC: (&str, &str) = ("213100696", "Blagnac");

fn publish_json(dir: &Path, name: &str, doc: Value) -> String {
    let path = write_doc(dir, name, doc);
    cli_json(dir, &["publish", "--json", path.to_str().unwrap()])["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Waits until every stored change is searchable.
fn indexed(dir: &Path) {
    eventually(Duration::from_secs(20), "the index catches up", || {
        let s = cli_json(dir, &["status", "--json"]);
        s["indexed_seq"] == s["last_seq"] && s["search_rebuilding"] == false
    });
}

fn search(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["search", "--json"];
    all.extend_from_slice(args);
    cli_json(dir, &all)
}

fn titles(v: &Value) -> Vec<String> {
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["title"].as_str().unwrap().to_string())
        .collect()
}

fn http_json(addr: &str, path: &str) -> Value {
    let (status, body) = http_get(addr, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn search_and_stats_show_each_caller_its_records_and_survive_kill_9_and_reindex() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("metropole");
    init(&dir, TOULOUSE_METROPOLE.0, TOULOUSE_METROPOLE.1);
    let addr = enable_http(&dir);
    let mut node = start(&dir);

    publish_json(
        &dir,
        "velo.json",
        json!({"kind": "dataset", "record_id": "comptages-velo",
               "title": "Comptages vélo", "description": "Fréquentation des pistes cyclables de Blagnac",
               "themes": ["Mobilités"], "spatial": {"insee_codes": ["31069"]}}),
    );
    publish_json(
        &dir,
        "ecoles.json",
        json!({"kind": "dataset", "record_id": "energie-ecoles", "visibility": "federation",
               "title": "Consommations énergétiques des écoles", "description": "Relevés mensuels"}),
    );
    publish_json(
        &dir,
        "urbanisme.json",
        json!({"kind": "project", "record_id": "ia-urbanisme", "name": "Assistant IA pour l'urbanisme",
               "description": "Aide à l'instruction des permis de construire", "status": "En déploiement",
               "risk_category": "Risque limité", "theme": "Attractivité"}),
    );
    publish_json(
        &dir,
        "urbanisme-details.json",
        json!({"kind": "project_details", "record_id": "ia-urbanisme-details", "project": "ia-urbanisme",
               "budget": "Moins de 50 k€", "energy_kwh_per_year": 1500.0, "emissions_kgco2e_per_year": 40.0}),
    );
    let courrier = Path::new(&example("project.json")).to_path_buf();
    cli_json(&dir, &["publish", "--json", courrier.to_str().unwrap()]);
    publish_json(
        &dir,
        "courrier-details.json",
        json!({"kind": "project_details", "record_id": "ia-tri-courriers-details",
               "project": "ia-tri-courriers", "energy_kwh_per_year": 500.5}),
    );
    indexed(&dir);

    // The operator sees everything; accents, case and plurals do not matter.
    let velo = search(&dir, &["VELOS"]);
    assert_eq!(titles(&velo), ["Comptages vélo"], "{velo}");
    // Asked again with no change to the index: the page the caches kept.
    let before = cli_json(&dir, &["status", "--json"]);
    assert_eq!(search(&dir, &["VELOS"]), velo);
    let after = cli_json(&dir, &["status", "--json"]);
    let n = |s: &Value, f: &str| s[f].as_u64().unwrap();
    assert_eq!(
        n(&after, "searches_cached"),
        n(&before, "searches_cached") + 1,
        "{after}"
    );
    assert_eq!(
        n(&after, "searches_computed"),
        n(&before, "searches_computed")
    );
    let hit = &velo["hits"][0];
    assert_eq!(hit["signature"], "verified", "{hit}");
    assert_eq!(hit["relayed_by"], Value::Null);
    assert_eq!(hit["organisation"]["siren"], TOULOUSE_METROPOLE.0);
    assert_eq!(
        titles(&search(&dir, &["energetique"])),
        ["Consommations énergétiques des écoles"]
    );
    // A commune finds the dataset about it, and what its métropole runs
    // for its whole territory (coverage, issue 23); its département finds
    // everything of the métropole.
    assert_eq!(
        titles(&search(&dir, &["--territory", "31069"])),
        [
            "Comptages vélo",
            "Consommations énergétiques des écoles",
            "Assistant IA pour l'urbanisme",
            "Tri automatique des courriers entrants"
        ]
    );
    // Another commune of the métropole does not find Blagnac's dataset.
    assert!(
        !titles(&search(&dir, &["--territory", "31555"])).contains(&"Comptages vélo".to_string())
    );
    let dep = search(&dir, &["--territory", "31", "--kind", "project"]);
    assert_eq!(dep["total"], 2, "{dep}");
    let everything = search(&dir, &[]);
    let kinds: Vec<(String, u64)> = everything["facets"]["kind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["label"].as_str().unwrap().to_string(),
                b["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("Jeu de données".to_string(), 2)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("Détails de projet".to_string(), 2)),
        "{kinds:?}"
    );
    // Bad filters are refused, quoting what was wrong, with nothing about
    // records (a search sends none).
    for (flag, value) in [("--territory", "canton:9"), ("--kind", "membership")] {
        let bad = cli(&dir, &["search", "x", flag, value]);
        assert!(!bad.status.success());
        let said = String::from_utf8_lossy(&bad.stderr);
        assert!(said.contains(&format!("'{value}'")), "{said}");
        assert!(!said.contains("record:"), "{said}");
    }

    // The public sees public records only, over HTTP.
    let public = http_json(&addr, "/search?q=%C3%A9nergie");
    assert_eq!(public["total"], 0, "{public}");
    let public = http_json(&addr, "/search?q=pistes+cyclables");
    assert_eq!(public["hits"][0]["record_id"], "comptages-velo", "{public}");
    let (status, body) = http_get(&addr, "/search?status=bof");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("bof"), "{body}");

    // Statistics, checked by hand: 1,500 + 500.5 kWh; 40 kgCO2e reported once.
    let stats = cli_json(&dir, &["stats", "--json", "--territory", "31"]);
    let p = &stats["projects"];
    assert_eq!(p["count"], 2, "{stats}");
    assert_eq!(p["with_details"], 2, "{stats}");
    assert_eq!(p["energy_kwh_per_year"], 2000.5, "{stats}");
    assert_eq!(p["energy_reported"], 2, "{stats}");
    assert_eq!(p["emissions_kgco2e_per_year"], 40.0, "{stats}");
    assert_eq!(p["emissions_reported"], 1, "{stats}");
    assert_eq!(p["by_budget"][0]["value"], "under_50k", "{stats}");
    let risks: Vec<&str> = p["by_risk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["value"].as_str().unwrap())
        .collect();
    assert_eq!(risks, ["limited", "minimal"], "{stats}");
    // Asked again with no change: the same figures, from the cache.
    let before = cli_json(&dir, &["status", "--json"]);
    assert_eq!(
        cli_json(&dir, &["stats", "--json", "--territory", "31"]),
        stats
    );
    let after = cli_json(&dir, &["status", "--json"]);
    assert_eq!(
        (n(&after, "stats_cached"), n(&after, "stats_computed")),
        (n(&before, "stats_cached") + 1, n(&before, "stats_computed")),
        "{after}"
    );
    // Details are federation records: the public gets no figures.
    let public = http_json(&addr, "/stats?territory=31&by=status");
    assert_eq!(public["projects"]["projects"], 2, "{public}");
    assert_eq!(public["projects"]["with_details"], 0, "{public}");

    // A withdrawn record vanishes.
    publish_json(
        &dir,
        "withdraw.json",
        json!({"kind": "tombstone", "record_id": "ia-tri-courriers", "reason": "projet arrêté"}),
    );
    indexed(&dir);
    // (Its details are another record, and stay.)
    assert_eq!(
        search(&dir, &["courriers", "--kind", "project"])["total"],
        0
    );

    // kill -9 right after a burst of publishes: every acknowledged record is
    // searchable once the node is back.
    for i in 0..25 {
        publish_json(
            &dir,
            &format!("lot{i}.json"),
            json!({"kind": "dataset", "record_id": format!("lot-{i}"),
                   "title": format!("Lot de données {i}"), "description": "Séries"}),
        );
    }
    node.kill();
    node = start(&dir);
    indexed(&dir);
    assert_eq!(search(&dir, &["lot"])["total"], 25);

    // A lost index is rebuilt at start, and a rebuild gives the same results.
    let before: Vec<Value> = ["lot", "vélo", "urbanisme", ""]
        .iter()
        .map(|q| search(&dir, &[q]))
        .collect();
    node.kill();
    std::fs::remove_dir_all(dir.join("search")).unwrap();
    node = start(&dir);
    indexed(&dir);
    cli_json(&dir, &["reindex", "--json"]);
    indexed(&dir);
    for (q, was) in ["lot", "vélo", "urbanisme", ""].iter().zip(&before) {
        let now = search(&dir, &[q]);
        assert_eq!(now["total"], was["total"], "{q}");
        assert_eq!(now["facets"], was["facets"], "{q}");
        if now["total"].as_u64().unwrap() > 20 {
            // Equal scores: which 20 come first depends on document order.
            continue;
        }
        let ids = |v: &Value| -> Vec<String> {
            let mut ids: Vec<String> = v["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["id"].to_string())
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(&now), ids(was), "{q}");
    }
    drop(node);
}

#[test]
fn collections_are_curated_signed_and_replicated() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("metropole");
    let b = tmp.path().join("blagnac");
    init(&a, TOULOUSE_METROPOLE.0, TOULOUSE_METROPOLE.1);
    init(&b, BLAGNAC.0, BLAGNAC.1);
    let _na = start(&a);
    let _nb = start(&b);

    let velo = publish_json(
        &a,
        "velo.json",
        json!({"kind": "dataset", "record_id": "comptages-velo", "title": "Comptages vélo", "description": "d"}),
    );
    publish_json(
        &a,
        "bus.json",
        json!({"kind": "dataset", "record_id": "lignes-bus", "title": "Lignes de bus", "description": "d"}),
    );
    cli_json(
        &a,
        &[
            "collection",
            "create",
            "mobilite",
            "--title",
            "Données mobilité de la métropole",
            "--json",
        ],
    );
    // By id (as search shows it) and by record_id.
    let added = cli_json(
        &a,
        &[
            "collection",
            "add",
            "mobilite",
            &velo,
            "lignes-bus",
            "--json",
        ],
    );
    assert_eq!(added["items"], 2, "{added}");
    let again = cli(&a, &["collection", "create", "mobilite", "--title", "x"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let missing = cli(&a, &["collection", "add", "mobilite", "pas-de-tel-jeu"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("pas-de-tel-jeu"));
    // A public collection cannot name a record the public may not see.
    publish_json(
        &a,
        "interne.json",
        json!({"kind": "dataset", "record_id": "interne", "visibility": "federation",
               "title": "Trafic interne", "description": "d"}),
    );
    let narrower = cli(&a, &["collection", "add", "mobilite", "interne"]);
    assert!(!narrower.status.success());
    assert!(String::from_utf8_lossy(&narrower.stderr).contains("federation"));
    cli_json(
        &a,
        &["collection", "remove", "mobilite", "lignes-bus", "--json"],
    );
    let shown = cli_json(&a, &["collection", "show", "mobilite", "--json"]);
    assert_eq!(shown["version"], 3, "{shown}");
    let items = shown["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{shown}");
    assert_eq!(items[0]["title"], "Comptages vélo");

    // Replicated like any record: b shows a's collection, and search on b
    // says which peer relayed it.
    trust(&b, &a);
    trust(&a, &b);
    peer(&a, "blagnac", &b);
    peer(&b, "metropole", &a);
    let sync = cli_json(&b, &["sync", "--json", "metropole"]);
    assert_eq!(sync[0]["ok"], true, "{sync}");
    let ka = key(&a);
    let on_b = cli_json(
        &b,
        &["collection", "show", "mobilite", "--author", &ka, "--json"],
    );
    assert_eq!(on_b["items"][0]["title"], "Comptages vélo", "{on_b}");
    assert_eq!(on_b["items"][0]["on_this_node"], true, "{on_b}");
    eventually(Duration::from_secs(20), "b indexes a's collection", || {
        search(&b, &["mobilité", "--kind", "collection"])["total"] == 1
    });
    let found = search(&b, &["mobilité", "--kind", "collection"]);
    assert_eq!(found["hits"][0]["relayed_by"], "metropole", "{found}");
    assert_eq!(found["hits"][0]["signature"], "verified", "{found}");
    assert_eq!(
        found["hits"][0]["organisation"]["name"], TOULOUSE_METROPOLE.1,
        "{found}"
    );
}

/// A pinned peer searches over the gRPC catalogue service on the mutual-TLS
/// port: it finds public and federation records, and a restricted record only
/// once its SIREN is vouched for; stats count the same records. A key the
/// node never pinned cannot even connect.
#[test]
fn a_pinned_peer_searches_over_mutual_tls_and_sees_only_its_records() {
    use maillage_node::testkit::tls;
    use maillage_proto::v1::catalogue_client::CatalogueClient;
    use maillage_proto::v1::{SearchRequest, StatsRequest};
    use maillage_record::{PublicKey, SigningKey};
    use std::sync::Arc;

    const COLOMIERS: &str = "213101496";
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("metropole");
    init(&dir, TOULOUSE_METROPOLE.0, TOULOUSE_METROPOLE.1);
    let _node = start(&dir);
    for (id, name, visibility) in [
        (
            "pistes-public",
            "Pistes cyclables publiques",
            json!({"visibility": "public"}),
        ),
        (
            "pistes-reseau",
            "Pistes cyclables du réseau",
            json!({"visibility": "federation"}),
        ),
        (
            "pistes-colomiers",
            "Pistes cyclables de Colomiers",
            json!({"visibility": "restricted", "audience": [COLOMIERS]}),
        ),
    ] {
        let mut doc = json!({
            "kind": "dataset",
            "record_id": id,
            "title": name,
            "description": "Tracés des aménagements cyclables.",
        });
        doc.as_object_mut()
            .unwrap()
            .extend(visibility.as_object().unwrap().clone());
        publish_json(&dir, "doc.json", doc);
    }
    indexed(&dir);

    let status = cli_json(&dir, &["status", "--json"]);
    let node_key = PublicKey::parse_hex(status["public_key"].as_str().unwrap()).unwrap();
    let url = format!("https://{}", status["grpc_listen"].as_str().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let search_as = |key: &SigningKey| -> Result<(u64, u64), tonic::Status> {
        rt.block_on(async {
            let identity = tls::Identity::new(key).unwrap();
            let channel = tls::channel(&url, &identity, node_key, Arc::default()).unwrap();
            let mut client = CatalogueClient::new(channel);
            let found = client
                .search(SearchRequest {
                    query: "piste cyclable".into(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            let counted = client.stats(StatsRequest::default()).await?.into_inner();
            Ok((found.total, counted.total))
        })
    };
    let colomiers = SigningKey::from_bytes(&[7; 32]);
    let colomiers_hex = PublicKey(colomiers.verifying_key().to_bytes()).to_hex();

    // Not pinned: refused at the handshake.
    assert!(search_as(&colomiers).is_err(), "an unpinned key searched");
    // Pinned, but no member of the federation: public records only (and
    // the node's own Organisation record among the statistics).
    let pin = |extra: &[&str]| {
        let mut args = vec!["peer", "add", "colomiers", "https://127.0.0.1:9", "--key"];
        args.push(&colomiers_hex);
        args.extend_from_slice(extra);
        let out = cli(&dir, &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    pin(&[]);
    let (found, counted) = search_as(&colomiers).unwrap();
    assert_eq!(found, 1);
    // Its SIREN vouched for by the operator: the record restricted to it too.
    pin(&["--siren", COLOMIERS]);
    let (found_now, counted_now) = search_as(&colomiers).unwrap();
    assert_eq!(found_now, 2);
    assert_eq!(counted_now, counted + 1);
    // A member (this node endorses it): federation records as well.
    publish_json(
        &dir,
        "membership.json",
        json!({"kind": "membership", "record_id": "membre-colomiers",
            "member_key": colomiers_hex, "siren": COLOMIERS, "role": "member"}),
    );
    indexed(&dir);
    let (found_now, counted_now) = search_as(&colomiers).unwrap();
    assert_eq!(found_now, 3);
    assert_eq!(counted_now, counted + 2);
}

/// A burst of public searches, more than are answered at once, is answered
/// in full: each waits its turn for a moment rather than being refused at
/// once (before, every search past the fourth got 503).
#[test]
fn a_burst_of_http_searches_waits_its_turn() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("node");
    init(&dir, "243100518", "Toulouse Métropole");
    let addr = enable_http(&dir);
    let _n = start(&dir);
    let words = [
        "budget", "voirie", "eau", "arbres", "velo", "ecole", "bus", "parc",
    ];
    for (i, w) in words.iter().enumerate() {
        publish_json(
            &dir,
            &format!("d{i}.json"),
            json!({
                "kind": "dataset",
                "record_id": format!("jeu-{i}"),
                "title": format!("Jeu {w}"),
                "description": "Un jeu de données publié pour l'essai.",
                "visibility": "public",
            }),
        );
    }
    indexed(&dir);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let searches: Vec<_> = (0..24)
            .map(|i| {
                let addr = &addr;
                let w = words[i % words.len()];
                // Never the same request twice: no answer comes from a cache.
                s.spawn(move || http_get(addr, &format!("/search?q={w}&page_size={}", i + 1)).0)
            })
            .collect();
        searches.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}
