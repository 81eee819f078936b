//! The public portal (issue 21), as a visitor's browser gets it from a real
//! node: French pages, public records only, every value escaped, a
//! signature checked as the page is built, and the signed envelope to check
//! it again with `maillage verify`.

use std::path::Path;

use crate::support::*;

const HTML: &str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8";

/// A page as a browser asks for it: (status, headers, HTML).
fn browse(addr: &str, path: &str) -> (u16, String, String) {
    let (status, head, body) = http_get_as(addr, path, HTML);
    (status, head, String::from_utf8(body).unwrap())
}

/// Waits until the public search finds `total` records for `query`.
fn searchable(addr: &str, query: &str, total: u64) {
    for _ in 0..100 {
        let (_, body) = http_get(addr, &format!("/search?{query}"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if v["total"] == total {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("/search?{query} never found {total} records");
}

/// A node as the portal's visitors find it: Toulouse Métropole's, serving
/// HTTP, holding a public dataset with a hostile title, a federation and a
/// restricted one (`SECRET-…`, never shown), its register's project and a
/// member commune's project with coordinates. Returns its directory, its
/// HTTP address, the running node and its key.
fn visited_node(tmp: &Path) -> (std::path::PathBuf, String, NodeProc, String) {
    let dir = tmp.join("metropole");
    init(&dir, "243100518", "Toulouse Métropole");
    let addr = enable_http(&dir);
    let node = start(&dir);
    cli_json(&dir, &["publish", "--json", &example("project.json")]);
    publish_doc(
        &dir,
        "hostile",
        serde_json::json!({"kind": "dataset", "record_id": "pistes-cyclables",
            "title": "Pistes cyclables <script>alert(1)</script>",
            "description": "Le réseau cyclable de la métropole.", "keywords": ["vélo"],
            "landing_page": "https://data.toulouse-metropole.fr/pistes"}),
    );
    publish_doc(
        &dir,
        "federation",
        serde_json::json!({"kind": "dataset", "record_id": "interne", "visibility": "federation",
            "title": "Pistes SECRET-FEDERATION", "description": "d"}),
    );
    publish_doc(
        &dir,
        "restricted",
        serde_json::json!({"kind": "dataset", "record_id": "reserve", "visibility": "restricted",
            "audience": ["213100696"], "title": "Pistes SECRET-RESTREINT", "description": "d"}),
    );
    // A project of a member commune, with a SIRET: it round-trips.
    publish_doc(
        &dir,
        "colomiers",
        serde_json::json!({"kind": "project", "record_id": "fuites",
            "name": "Détection des fuites d'eau", "description": "Repère les fuites sur le réseau.",
            "status": "En déploiement", "siret": "21310149600015", "organisation_name": "Colomiers",
            "organisation_kind": "Commune", "theme": "Transition écologique et énergétique",
            "audiences": ["Agents", "Grand public"], "partners": ["Régie des eaux"],
            "start_date": "06/2023", "latitude": 43.6111, "longitude": 1.3347}),
    );
    // What completes them: the project's public details, a resource
    // related to the dataset, a collection holding both.
    publish_doc(
        &dir,
        "details",
        serde_json::json!({"kind": "project_details", "record_id": "fuites.details",
            "visibility": "public", "project": "fuites",
            "algorithm_name": "Détecteur d'anomalies de débit", "budget": "< 50 k€"}),
    );
    publish_doc(
        &dir,
        "guide",
        serde_json::json!({"kind": "resource", "record_id": "guide-pistes", "visibility": "public",
            "resource_kind": "Guide", "title": "Guide des aménagements cyclables",
            "url": "https://data.toulouse-metropole.fr/guide-velo.pdf",
            "related": [{"record_id": "pistes-cyclables"}]}),
    );
    publish_doc(
        &dir,
        "collection",
        serde_json::json!({"kind": "collection", "record_id": "mobilites", "visibility": "public",
            "title": "Mobilités douces", "items": [{"record_id": "pistes-cyclables"},
            {"record_id": "fuites"}]}),
    );
    searchable(&addr, "q=pistes", 1);
    let key = key(&dir);
    (dir, addr, node, key)
}

/// Imports `/projets.csv` as downloaded into a second node: the same
/// projects come back (a project without a SIRET goes out with its
/// organisation's SIREN, and comes back as that organisation's).
fn imports_back(tmp: &Path, dir: &Path, csv_file: &Path) {
    let other = tmp.join("colomiers");
    init(&other, "213101496", "Colomiers");
    let _other_node = start(&other);
    let out = cli(
        &other,
        &[
            "import",
            "--json",
            "bibliotheque-ia",
            csv_file.to_str().unwrap(),
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(report["created"], 2, "{report}");
    assert_eq!(report["refused_rows"], 0, "{report}");
    assert_eq!(report["rows_with_warnings"], 0, "{report}");
    let project = |d: &Path, name: &str| {
        let list = cli_json(d, &["list", "--json", "--kind", "project"]);
        let mut p = list
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["record"].clone())
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no project '{name}' in {list}"));
        for k in [
            "record_id",
            "version",
            "issued_at",
            "provenance",
            "visibility",
        ] {
            p.as_object_mut().unwrap().remove(k);
        }
        p
    };
    assert_eq!(
        project(dir, "Détection des fuites d'eau"),
        project(&other, "Détection des fuites d'eau")
    );
}

#[test]
fn a_visitor_searches_opens_a_record_and_checks_its_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, addr, _node, key) = visited_node(tmp.path());

    // Home: French, with what the node holds, and its security headers.
    let (status, head, home) = browse(&addr, "/");
    assert_eq!(status, 200, "{home}");
    assert!(
        head.contains("content-type: text/html; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(home.contains("<html lang=\"fr\">"), "{home}");
    assert!(
        home.contains("Jeu de données") && home.contains("Projet IA"),
        "{home}"
    );
    assert!(
        !home.contains("<script"),
        "no script on the home page: {home}"
    );
    // The latest public datasets and projects, newest first, nothing hidden.
    let latest = home
        .split("Derniers enregistrements reçus")
        .nth(1)
        .unwrap_or_else(|| panic!("no latest records: {home}"));
    let (fuites, pistes) = (
        latest.find("Détection des fuites d").unwrap(),
        latest.find("Pistes cyclables &lt;script&gt;").unwrap(),
    );
    assert!(fuites < pistes, "not newest first: {latest}");
    assert!(!home.contains("SECRET"), "{home}");

    // Search: the public dataset, escaped; facets as links; nothing hidden.
    let (status, _, found) = browse(&addr, "/recherche?q=pistes");
    assert_eq!(status, 200, "{found}");
    assert!(found.contains("1 résultat"), "{found}");
    assert!(
        found.contains("Pistes cyclables &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{found}"
    );
    assert!(!found.contains("<script>alert"), "{found}");
    for hidden in ["SECRET-FEDERATION", "SECRET-RESTREINT"] {
        assert!(!found.contains(hidden), "{hidden} shown: {found}");
    }
    assert!(
        found.contains("href=\"/recherche?q=pistes&amp;kind=dataset\""),
        "{found}"
    );
    let record_path = format!("/records/{key}/pistes-cyclables");
    assert!(
        found.contains(&format!("href=\"{record_path}\"")),
        "{found}"
    );

    // The record: fields in French, the signature verified now.
    let (status, head, page) = browse(&addr, &record_path);
    assert_eq!(status, 200, "{page}");
    assert!(head.contains("vary: accept"), "{head}");
    assert!(page.contains("signature vérifiée"), "{page}");
    assert!(page.contains("SIREN 243100518"), "{page}");
    assert!(page.contains("Page de présentation"), "{page}");
    assert!(
        page.contains("&lt;script&gt;") && !page.contains("<script>alert"),
        "{page}"
    );

    // What completes it: its resource and the collection it is in, linked.
    assert!(
        page.contains("Guide des aménagements cyclables") && page.contains("/records/"),
        "{page}"
    );
    assert!(
        page.contains("Dans les collections") && page.contains("Mobilités douces"),
        "{page}"
    );
    let (_, _, fuites) = browse(&addr, &format!("/records/{key}/fuites"));
    assert!(
        fuites.contains("Détails du projet")
            && (fuites.contains("Détecteur d&#39;anomalies")
                || fuites.contains("Détecteur d'anomalies")),
        "{fuites}"
    );
    let (_, _, collection) = browse(&addr, &format!("/records/{key}/mobilites"));
    assert!(
        collection.contains(&format!("href=\"/records/{key}/fuites\"")),
        "{collection}"
    );

    // Its envelope, downloaded, verifies with the CLI, under the same id.
    let (status, head, envelope) =
        http_get_as(&addr, &format!("{record_path}?format=envelope"), "*/*");
    assert_eq!(status, 200);
    assert!(head.contains("content-disposition: attachment"), "{head}");
    let file = tmp.path().join("pistes.maillage");
    std::fs::write(&file, &envelope).unwrap();
    let verified = cli_json(&dir, &["verify", "--json", file.to_str().unwrap()]);
    assert_eq!(verified["valid"], true, "{verified}");
    assert_eq!(verified["author"], key.as_str());

    // The same address as JSON and as DCAT-AP JSON-LD.
    let (status, _, json) = http_get_as(&addr, &record_path, "application/json");
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["signature_verified"], true, "{json}");
    assert_eq!(json["id"], verified["id"], "{json}");
    let (status, head, ld) = http_get_as(&addr, &record_path, "application/ld+json");
    assert_eq!(status, 200);
    assert!(head.contains("application/ld+json"), "{head}");
    let ld = String::from_utf8(ld).unwrap();
    assert!(
        ld.contains("dcat:Dataset") && ld.contains(&record_path),
        "{ld}"
    );

    // A record the public may not see answers as one that does not exist.
    let (status, _, hidden) = browse(&addr, &format!("/records/{key}/interne"));
    let (status_none, _, none) = browse(&addr, &format!("/records/{key}/nothing-here"));
    assert_eq!((status, status_none), (404, 404));
    assert_eq!(hidden, none);
    assert!(!hidden.contains("SECRET"), "{hidden}");

    // The organisation: its register of AI projects, transparency fields in French.
    let (status, _, org) = browse(&addr, "/organisations/243100518");
    assert_eq!(status, 200, "{org}");
    assert!(org.contains("Registre des algorithmes"), "{org}");
    assert!(
        org.contains("Tri automatique des courriers entrants"),
        "{org}"
    );
    assert!(
        org.contains("Contrôle humain") && org.contains("validée par un agent"),
        "{org}"
    );
    assert!(
        org.contains("Comment s&#39;y opposer") || org.contains("Comment s'y opposer"),
        "{org}"
    );
    let (status, _, bad) = browse(&addr, "/organisations/123456789");
    assert_eq!(status, 404);
    assert!(bad.contains("SIREN valide"), "{bad}");

    // The territory: the records of every collectivity inside it.
    let (status, _, dep) = browse(&addr, "/territoires/31");
    assert_eq!(status, 200, "{dep}");
    assert!(dep.contains("Haute-Garonne (31)"), "{dep}");
    assert!(dep.contains("Pistes cyclables &lt;script&gt;"), "{dep}");
    assert!(
        dep.contains("Tri automatique des courriers entrants"),
        "{dep}"
    );
    assert!(!dep.contains("SECRET"), "{dep}");
    let (status, _, epci) = browse(&addr, "/territoires/243100518");
    assert_eq!(status, 200, "{epci}");
    assert!(epci.contains("Toulouse Métropole"), "{epci}");
    let (status, _, nowhere) = browse(&addr, "/territoires/99999");
    assert_eq!(status, 404);
    assert!(nowhere.contains("Territoire introuvable"), "{nowhere}");

    // Exports of one organisation's records, or of this node's own.
    let (status, body) = http_get(&addr, "/catalog.jsonld?org=12345");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not a SIREN"), "{body}");
    let (status, own) = http_get(&addr, "/catalog.ttl?own=1");
    assert_eq!(status, 200, "{own}");
    assert!(own.contains("Pistes cyclables"), "{own}");
    let (status, org) = http_get(&addr, "/projects.json?org=243100518");
    assert_eq!(status, 200, "{org}");
    assert!(org.contains("Tri automatique"), "{org}");
    // A project comes with its public details; a dataset with its
    // resources, as DCAT relations.
    let (_, projects) = http_get(&addr, "/projects.json");
    let projects: serde_json::Value = serde_json::from_str(&projects).unwrap();
    let fuites = projects
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["record_id"] == "fuites")
        .expect("the project in /projects.json");
    assert_eq!(
        fuites["details"]["algorithm_name"], "Détecteur d'anomalies de débit",
        "{fuites}"
    );
    let (_, ttl) = http_get(&addr, "/catalog.ttl");
    assert!(
        ttl.contains("dct:relation") && ttl.contains("Guide des aménagements cyclables"),
        "{ttl}"
    );
    let (status, body) = http_get(&addr, "/catalog.ttl?exclude_source=pas%20un%20h%C3%B4te");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is not a host"), "{body}");
    let (status, _) = http_get(&addr, "/catalog.ttl?exclude_source=www.data.gouv.fr");
    assert_eq!(status, 200);

    // The map: the projects listed (no script needed), the tiles' host
    // allowed to serve images to that page only.
    let (status, head, map) = browse(&addr, "/carte");
    assert_eq!(status, 200, "{map}");
    assert!(
        map.contains("Tri automatique des courriers entrants"),
        "{map}"
    );
    assert!(map.contains("data-lat=\"43.6045\""), "{map}");
    assert!(
        head.contains("img-src 'self' data: https://data.geopf.fr"),
        "{head}"
    );
    assert!(map.contains("src=\"/static/carte.js\""), "{map}");
    let (_, _, none) = browse(&addr, "/carte?status=abandonne");
    assert!(none.contains("Aucun projet situé"), "{none}");
    for asset in [
        "/static/carte.js",
        "/static/leaflet/leaflet.js",
        "/static/leaflet/leaflet.css",
    ] {
        let (status, _, _) = http_get_as(&addr, asset, "*/*");
        assert_eq!(status, 200, "{asset}");
    }
    let (status, head, geojson) = http_get_as(&addr, "/projets.geojson", "*/*");
    assert_eq!(status, 200);
    assert!(head.contains("application/geo+json"), "{head}");
    let geojson: serde_json::Value = serde_json::from_slice(&geojson).unwrap();
    let features = geojson["features"].as_array().unwrap();
    assert_eq!(features.len(), 2, "{geojson}");
    let feature = features
        .iter()
        .find(|f| f["properties"]["name"] == "Tri automatique des courriers entrants")
        .expect("the project with coordinates");
    assert_eq!(
        feature["geometry"]["coordinates"],
        serde_json::json!([1.444, 43.6045])
    );

    // Elsewhere: a French page for a browser, a line for a script.
    let (status, _, missing) = browse(&addr, "/nulle-part");
    assert_eq!(status, 404);
    assert!(missing.contains("Page introuvable"), "{missing}");
    let (status, text) = http_get(&addr, "/nulle-part");
    assert_eq!(status, 404);
    assert!(text.starts_with("not found"), "{text}");

    // /projets.csv, in the bibliothèque's own layout, imports back as the
    // same projects.
    let (status, _, csv) = http_get_as(&addr, "/projets.csv", "text/csv");
    assert_eq!(status, 200);
    let csv_file = tmp.path().join("projets.csv");
    std::fs::write(&csv_file, &csv).unwrap();
    imports_back(tmp.path(), &dir, &csv_file);

    // The stylesheet is served by the node itself.
    let (status, head, _) = http_get_as(&addr, "/static/maillage.css", "text/css");
    assert_eq!(status, 200);
    assert!(head.contains("text/css"), "{head}");
}

/// The same visit in Debian's chromium, driven by playwright-core
/// (`tests/browser/portal.mjs`): search with the keyboard, filter by a
/// facet, open a record, see its verified signature, download its envelope,
/// follow the organisation and then its département, see the map draw its
/// projects, download `/projets.csv`; every page type checked with axe-core
/// (no serious or critical violation) and saved as a screenshot in
/// `$CARGO_TARGET_TMPDIR/portal-browser/`.
#[test]
fn a_visitor_in_a_real_browser() {
    browser_dir();
    let tmp = tempfile::tempdir().unwrap();
    let (dir, addr, _node, key) = visited_node(tmp.path());
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("portal-browser");
    let _ = std::fs::remove_dir_all(&out);
    println!("{}", browser_script("portal.mjs", &addr, &out));
    for page in [
        "accueil",
        "recherche",
        "enregistrement",
        "organisation",
        "territoire",
        "carte",
        "introuvable",
    ] {
        assert!(
            out.join(format!("{page}.png")).exists(),
            "no screenshot of {page}"
        );
    }

    // The envelope the browser downloaded verifies with the CLI.
    let envelope = out.join("pistes.maillage");
    let verified = cli_json(&dir, &["verify", "--json", envelope.to_str().unwrap()]);
    assert_eq!(verified["valid"], true, "{verified}");
    assert_eq!(verified["author"], key.as_str());

    // The CSV the browser downloaded imports back as the same projects.
    imports_back(tmp.path(), &dir, &out.join("projets.csv"));
}
