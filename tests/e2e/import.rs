//! `maillage import` against a real node: a messy bibliothèque IA export,
//! re-imported, corrected, then with a row gone.

use std::path::Path;

use crate::support::*;

const HEADER: &str = BIBLIOTHEQUE_HEADER;

/// The four rows; `colomiers_status` and `colomiers_siret` make rows 3 and 4
/// valid or not, `metropole_text` changes row 1.
fn export_csv(
    metropole_text: &str,
    colomiers_status: &str,
    colomiers_siret: &str,
    with_blagnac: bool,
) -> String {
    let mut rows = vec![HEADER.to_string()];
    // Row 1, line 2: the node's own organisation.
    rows.push(format!(
        "Toulouse Métropole,Tri des courriers,24310051800014,\"43,6045\",\"1,444\",Métropole,03/2025,\
En expérimentation,\"Université Toulouse Capitole, IRIT\",{metropole_text},Administration et organisation interne,\
Gestion du courrier,Agents,https://www.toulouse-metropole.fr/ia,,2025-06-01"
    ));
    if with_blagnac {
        // Row 2, lines 3-4: a name with an embedded newline, a SIRET with
        // spaces, comma-joined audiences.
        rows.push(
            "\"Commune de\nBlagnac\",Chatbot des démarches,213 100 696 00011,,,Commune,01/09/2024,Terminée,,\
Un assistant répond aux questions des habitants.,\"Citoyenneté, santé et solidarité\",,\"Grand public, Élus\",,,"
                .to_string(),
        );
    }
    // Row 3 (line 5 with Blagnac): the status.
    rows.push(format!(
        "Colomiers,Prévision des inscriptions scolaires,21310149600015,,,Commune,09/2024,{colomiers_status},,\
Prévoit les effectifs des écoles.,Administration et organisation interne,,Agents,,,"
    ));
    // Row 4: the SIRET.
    rows.push(format!(
        "Colomiers,Détection des fuites d'eau,{colomiers_siret},,,Commune,06/2023,En déploiement,,\
Repère les fuites sur le réseau.,Transition écologique et énergétique,,Agents,,,"
    ));
    rows.join("\n") + "\n"
}

fn import(dir: &Path, file: &Path, extra: &[&str]) -> (bool, serde_json::Value, String) {
    let mut args = vec![
        "import",
        "--json",
        "bibliotheque-ia",
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = cli(dir, &args);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "import printed no JSON report ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        out.status.success(),
        report,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `maillage import --json FORMAT SOURCE EXTRA…`: its exit status, its
/// JSON report (null if none), its standard error.
fn import_status(
    dir: &Path,
    format: &str,
    source: &str,
    extra: &[&str],
) -> (Option<i32>, serde_json::Value, String) {
    let mut args = vec!["import", "--json", format, source];
    args.extend_from_slice(extra);
    let out = cli(dir, &args);
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code(),
        report,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn current_projects(dir: &Path) -> Vec<serde_json::Value> {
    cli_json(dir, &["list", "--json", "--kind", "project"])
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn import_reports_bad_rows_updates_on_reimport_and_withdraws_what_left() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("metropole");
    init(&dir, "243100518", "Toulouse Métropole");
    let _node = start(&dir);
    let file = tmp.path().join("projets.csv");

    // 1. Two good rows, two bad ones: the good ones are imported, the bad
    // ones reported with their line and field, and the exit status says so.
    std::fs::write(
        &file,
        export_csv("Oriente les courriers.", "En pause", "21310149600016", true),
    )
    .unwrap();
    let (ok, report, stderr) = import(&dir, &file, &[]);
    assert!(!ok, "rejected rows must fail the exit status: {report}");
    assert_eq!(report["created"], 2, "{report}");
    let rejected = report["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{report}");
    assert_eq!(rejected[0]["line"], 5, "{report}");
    let first = rejected[0]["error"].as_str().unwrap();
    assert!(
        first.contains("Statut_du_projet") && first.contains("En pause"),
        "{first}"
    );
    assert_eq!(rejected[1]["line"], 6, "{report}");
    assert!(
        rejected[1]["error"].as_str().unwrap().contains("SIRET"),
        "{report}"
    );
    assert!(stderr.contains("refused"), "{stderr}");
    assert_eq!(report["refused_rows"], 2, "{report}");

    let projects = current_projects(&dir);
    assert_eq!(projects.len(), 2);
    let by_name = |name: &str| {
        projects
            .iter()
            .find(|p| p["record"]["name"] == name)
            .unwrap_or_else(|| panic!("no project {name}: {projects:?}"))
            .clone()
    };
    let blagnac = by_name("Chatbot des démarches");
    let record = &blagnac["record"];
    assert_eq!(record["status"], "termine");
    assert_eq!(
        record["audiences"],
        serde_json::json!(["grand_public", "elu"])
    );
    assert_eq!(record["siret"], "21310069600011");
    // Signed by this node, on behalf of Blagnac, and saying so.
    let prov = &record["provenance"];
    assert_eq!(prov["source_format"], "bibliotheque-ia");
    assert_eq!(prov["on_behalf_of"]["siren"], "213100696", "{record}");
    // The embedded newline of the export is folded into a space.
    assert_eq!(prov["on_behalf_of"]["name"], "Commune de Blagnac");
    let own = by_name("Tri des courriers");
    assert!(
        own["record"]["provenance"].get("on_behalf_of").is_none(),
        "{own}"
    );
    assert_eq!(
        own["record"]["partners"],
        serde_json::json!(["Université Toulouse Capitole", "IRIT"])
    );
    assert_eq!(own["record"]["latitude"], 43.6045);

    // 2. The same file again: nothing new, no duplicate.
    let (_, report, _) = import(&dir, &file, &[]);
    assert_eq!(
        (report["created"].as_u64(), report["unchanged"].as_u64()),
        (Some(0), Some(2)),
        "{report}"
    );
    assert_eq!(current_projects(&dir).len(), 2);

    // 3. Corrected, and one description changed: a new version of that one
    // record, the two fixed rows created, and a clean exit.
    std::fs::write(
        &file,
        export_csv(
            "Oriente les courriers numérisés.",
            "Terminé",
            "21310149600015",
            true,
        ),
    )
    .unwrap();
    let (ok, report, stderr) = import(&dir, &file, &["--withdraw-missing"]);
    assert!(ok, "{report}\n{stderr}");
    assert_eq!(report["created"], 2, "{report}");
    assert_eq!(report["updated"], 1, "{report}");
    assert_eq!(report["unchanged"], 1, "{report}");
    assert_eq!(report["withdrawn"].as_array().unwrap().len(), 0, "{report}");
    let own = current_projects(&dir)
        .into_iter()
        .find(|p| p["record"]["name"] == "Tri des courriers")
        .unwrap();
    assert_eq!(own["record"]["version"], 2);
    assert_eq!(
        own["record"]["description"],
        "Oriente les courriers numérisés."
    );

    // 4. Blagnac's row left the source: withdrawn with --withdraw-missing.
    std::fs::write(
        &file,
        export_csv(
            "Oriente les courriers numérisés.",
            "Terminé",
            "21310149600015",
            false,
        ),
    )
    .unwrap();
    let (ok, report, stderr) = import(&dir, &file, &["--withdraw-missing"]);
    assert!(ok, "{report}\n{stderr}");
    assert_eq!(report["withdrawn"].as_array().unwrap().len(), 1, "{report}");
    let names: Vec<String> = current_projects(&dir)
        .iter()
        .map(|p| p["record"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(!names.contains(&"Chatbot des démarches".to_string()));

    // 5. A truncated file (its header only) withdraws nothing.
    let empty = tmp.path().join("vide.csv");
    std::fs::write(&empty, format!("{HEADER}\n")).unwrap();
    let out = cli(
        &dir,
        &[
            "import",
            "bibliotheque-ia",
            empty.to_str().unwrap(),
            "--source",
            "projets.csv",
            "--withdraw-missing",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no rows"));
    assert_eq!(current_projects(&dir).len(), 3);

    // 6. The same rows under another source name do not take the records
    // over (a withdrawal of one source must not remove the other's rows).
    let copy = tmp.path().join("copie.csv");
    std::fs::copy(&file, &copy).unwrap();
    let (ok, report, _) = import(&dir, &copy, &[]);
    assert!(!ok, "{report}");
    let rejected = report["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 3, "{report}");
    assert!(
        rejected[0]["error"]
            .as_str()
            .unwrap()
            .contains("projets.csv"),
        "{report}"
    );
}

/// Rich rows: 120 projects whose descriptions fill their 20,000 characters,
/// 4.8 MB in all, more than a gRPC message usually holds (4 MiB). The
/// import sends them in batches that fit, `list` and `export` page through
/// them, and a re-import with `--withdraw-missing` withdraws what left.
#[test]
fn rich_rows_import_list_and_export_in_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    init(&dir, "243100518", "Toulouse Métropole");
    let _node = start(&dir);
    let rows = |count: usize| colomiers_projects(count, "numéro", |_| "é".repeat(20_000));
    let file = tmp.path().join("riches.csv");
    std::fs::write(&file, rows(120)).unwrap();
    assert!(std::fs::metadata(&file).unwrap().len() > 4 << 20);
    let (ok, report, stderr) = import(&dir, &file, &[]);
    assert!(ok, "{stderr}\n{report}");
    assert_eq!(report["created"], 120, "{report}");
    assert_eq!(current_projects(&dir).len(), 120);
    let out = cli(
        &dir,
        &[
            "export",
            "--format",
            "jsonld",
            "--base-url",
            "https://data.example.fr",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Half the rows leave the source.
    std::fs::write(&file, rows(60)).unwrap();
    let (ok, report, stderr) = import(&dir, &file, &["--withdraw-missing"]);
    assert!(ok, "{stderr}\n{report}");
    assert_eq!(report["withdrawn_count"], 60, "{report}");
    assert_eq!(current_projects(&dir).len(), 60);
}

/// The exit status tells a clean import (0) from one with warnings (3,
/// nothing lost) from one with refused rows (2) from a failure (1); files
/// come as a French Excel writes them (Windows-1252 and semicolons, or a
/// spreadsheet), and what was written otherwise than read is kept.
#[test]
fn imports_take_what_spreadsheets_write_and_say_what_they_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("colomiers");
    init(&dir, "213101496", "Colomiers");
    let _node = start(&dir);
    let run = |format: &str, file: &Path, extra: &[&str]| {
        import_status(&dir, format, file.to_str().unwrap(), extra)
    };

    // Windows-1252, semicolons, the SCDL specification's values: clean.
    let csv = tmp.path().join("catalogue.csv");
    let mut bytes = b"COLL_NOM;COLL_SIRET;ID;TITRE;DESCRIPTION;FREQ_MAJ;LICENCE\r\n".to_vec();
    bytes.extend_from_slice(
        b"Colomiers;21310149600015;voirie;Voirie communale;Lin\xe9aire de voirie, 5 k\x80 par an.;\
          Mensuelle ou plusieurs fois par mois;LO - Licence Ouverte\r\n",
    );
    std::fs::write(&csv, &bytes).unwrap();
    let (code, report, stderr) = run("scdl", &csv, &[]);
    assert_eq!(code, Some(0), "{report} {stderr}");
    assert_eq!(report["created"], 1, "{report}");
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap()
            .contains("Windows-1252"),
        "{report}"
    );
    let listed = cli_json(&dir, &["list", "--json", "--kind", "dataset"]);
    assert_eq!(
        listed[0]["record"]["description"],
        "Linéaire de voirie, 5 k€ par an."
    );

    // A spreadsheet, with a note where an address is expected: imported
    // with a warning (exit 3), the note kept as written.
    let xlsx = format!(
        "{}/../import/tests/fixtures/bibliotheque-ia.xlsx",
        env!("CARGO_MANIFEST_DIR")
    );
    let (code, report, stderr) = run("bibliotheque-ia", Path::new(&xlsx), &[]);
    assert_eq!(code, Some(3), "{report} {stderr}");
    assert_eq!(report["created"], 2, "{report}");
    assert_eq!(report["rows_with_warnings"], 1, "{report}");
    assert_eq!(report["warnings"][0]["line"], 4, "{report}");
    let projects = cli_json(&dir, &["list", "--json", "--kind", "project"]);
    let blagnac = projects
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["record"]["organisation_name"] == "Blagnac")
        .unwrap_or_else(|| panic!("{projects}"));
    assert_eq!(
        blagnac["record"]["provenance"]["as_written"]["URL_Service"], "accès interne uniquement",
        "{blagnac}"
    );
    // Without --json, the report says it in words.
    let out = cli(&dir, &["import", "bibliotheque-ia", &xlsx]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("imported with warnings"), "{stderr}");
    assert!(stderr.contains("nothing was left out"), "{stderr}");

    // A refused row: exit 2. A separator that is none: a failure, exit 1.
    let bad = tmp.path().join("bad.csv");
    std::fs::write(
        &bad,
        "COLL_NOM,COLL_SIRET,ID,TITRE,DESCRIPTION\nColomiers,21310149600016,a,A,Une.\n",
    )
    .unwrap();
    let (code, report, _) = run("scdl", &bad, &[]);
    assert_eq!(code, Some(2), "{report}");
    assert_eq!(report["refused_rows"], 1, "{report}");
    let (code, _, stderr) = run("scdl", &bad, &["--delimiter", "ab"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--delimiter 'ab'"), "{stderr}");
}

/// A catalogue larger than a part (the CLI reads 5,000 rows at a time while
/// the node signs and stores the rows before): every row is imported once,
/// a row repeating the identifier of a row of an earlier part is refused
/// naming it; and a run whose second file cannot be read imports nothing,
/// not even the first file's rows.
#[test]
fn a_large_catalogue_imports_whole_and_a_bad_file_imports_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("metropole");
    init(&dir, "243100518", "Toulouse Métropole");
    let _node = start(&dir);
    let catalogue = |ids: std::ops::Range<usize>, repeat: Option<(usize, usize)>| {
        let mut csv = String::from("COLL_NOM;COLL_SIRET;ID;TITRE;DESCRIPTION;LICENCE\n");
        for i in ids {
            let id = match repeat {
                Some((at, of)) if at == i => of,
                _ => i,
            };
            csv.push_str(&format!(
                "Toulouse Métropole;24310051800014;jeu-{id};Jeu {i};Le jeu {i}.;LO - Licence Ouverte\n"
            ));
        }
        csv
    };
    // A run with a second file that is not an SCDL catalogue: nothing.
    let good = tmp.path().join("bon.csv");
    std::fs::write(&good, catalogue(0..100, None)).unwrap();
    let bad = tmp.path().join("mauvais.csv");
    std::fs::write(&bad, "nom;adresse\nMairie;1 place du Capitole\n").unwrap();
    let out = cli(
        &dir,
        &[
            "import",
            "scdl",
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mauvais.csv is not a scdl-catalogue file") && stderr.contains("COLL_NOM"),
        "{stderr}"
    );
    let listed = cli_json(&dir, &["list", "--json", "--kind", "dataset"]);
    assert_eq!(listed.as_array().unwrap().len(), 0, "{listed}");

    // 12,000 rows: three parts; line 11,002 (row 11,000) repeats the
    // identifier of line 2 (row 0), in the first part.
    let large = tmp.path().join("catalogue.csv");
    std::fs::write(&large, catalogue(0..12_000, Some((11_000, 0)))).unwrap();
    let (code, report, stderr) = import_status(&dir, "scdl", large.to_str().unwrap(), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(report["rows"], 12_000, "{report}");
    assert_eq!(report["created"], 11_999, "{report}");
    assert_eq!(report["refused_rows"], 1, "{report}");
    let refused = &report["rejected"][0];
    assert_eq!(refused["line"], 11_002, "{report}");
    assert!(
        refused["error"].as_str().unwrap().contains("as line 2"),
        "{refused}"
    );
    let listed = cli_json(&dir, &["list", "--json", "--kind", "dataset"]);
    assert_eq!(listed.as_array().unwrap().len(), 11_999);
}

/// Sources where they are: an address is fetched and followed page by
/// page (udata's next_page, CKAN's start, DCAT's Hydra links, whatever the
/// RDF syntax of each page); a source that fails once is tried again; one
/// that hangs, is too large or is not there ends the import with an error
/// that says which and why, and nothing imported.
#[test]
fn imports_follow_a_source_where_it_is() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("metropole");
    init(&dir, "243100518", "Toulouse Métropole");
    let _node = start(&dir);
    let base = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let udata = |id: &str, title: &str| {
        serde_json::json!({
            "id": id, "title": title, "description": "Un jeu de la métropole.",
            "license": "lo-2.0", "frequency": "monthly", "tags": ["voirie"],
            "organization": {"name": "Toulouse Métropole", "page": "https://www.data.gouv.fr/fr/organizations/toulouse-metropole/"},
            "resources": [{"url": format!("https://data.toulouse-metropole.fr/{id}.csv"), "title": "CSV", "format": "csv", "filetype": "file"}],
        })
    };
    let package = |id: &str| {
        serde_json::json!({
            "id": id, "name": id, "title": format!("Jeu {id}"), "notes": "Un jeu du portail.",
            "license_id": "odc-odbl", "organization": {"title": "Toulouse Métropole"},
            "resources": [{"url": format!("https://ckan.example.fr/{id}.csv"), "format": "CSV"}],
        })
    };
    let flaky = std::sync::Arc::new(AtomicUsize::new(0));
    let (b, f) = (base.clone(), flaky.clone());
    let addr = serve_http(move |target| {
        let base = b.get().unwrap();
        let json = |v: serde_json::Value| Some(Answer::ok("application/json", v.to_string()));
        match target {
            "/udata/1" => json(serde_json::json!({
                "data": [udata("a1", "Voirie"), udata("a2", "Éclairage public")],
                "next_page": format!("{base}/udata/2"), "page": 1, "page_size": 2, "total": 3})),
            "/udata/2" => json(serde_json::json!({
                "data": [udata("a3", "Parkings")], "next_page": null, "page": 2, "page_size": 2, "total": 3})),
            t if t.starts_with("/ckan/api/3/action/package_search") => {
                assert!(t.contains("rows=100"), "{t}");
                if t.contains("start=2") {
                    json(
                        serde_json::json!({"success": true, "result": {"count": 3, "results": [package("c3")]}}),
                    )
                } else {
                    json(
                        serde_json::json!({"success": true, "result": {"count": 3, "results": [package("c1"), package("c2")]}}),
                    )
                }
            }
            "/dcat/page1.ttl" => Some(Answer::ok(
                "text/turtle",
                format!(
                    "@prefix dcat: <http://www.w3.org/ns/dcat#> .\n@prefix dct: <http://purl.org/dc/terms/> .\n\
                 @prefix hydra: <http://www.w3.org/ns/hydra/core#> .\n\
                 <{base}/dcat/page1.ttl> a hydra:PagedCollection ; hydra:next <{base}/dcat/page2.rdf> .\n\
                 <https://ex.fr/d/1> a dcat:Dataset ; dct:title \"Bornes de recharge\"@fr ; dct:description \"Les bornes.\"@fr .\n"
                ),
            )),
            "/dcat/page2.rdf" => Some(Answer::ok(
                "application/rdf+xml",
                "<?xml version=\"1.0\"?>\n<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" \
                 xmlns:dcat=\"http://www.w3.org/ns/dcat#\" xmlns:dct=\"http://purl.org/dc/terms/\">\
                 <dcat:Dataset rdf:about=\"https://ex.fr/d/2\"><dct:title>Arbres</dct:title>\
                 <dct:description>Les arbres.</dct:description></dcat:Dataset></rdf:RDF>",
            )),
            "/flaky.csv" => {
                if f.fetch_add(1, Ordering::SeqCst) == 0 {
                    Some(Answer::status(503))
                } else {
                    Some(Answer::ok(
                        "text/csv",
                        "COLL_NOM,COLL_SIRET,ID,TITRE,DESCRIPTION\nToulouse Métropole,24310051800014,x,Budget,Le budget.\n",
                    ))
                }
            }
            "/hang.csv" => None,
            "/big.csv" => Some(Answer {
                claimed_length: Some(300 << 20),
                ..Answer::ok("text/csv", "")
            }),
            // Real exports, as their portals serve them (see
            // import/tests/fixtures/README.md).
            // The recorded CKAN search has 2 of its 858 results: past them,
            // an empty page (which ends a source).
            t if t.starts_with("/real/ckan") && t.contains("start=") => {
                json(serde_json::json!({"success": true, "result": {"count": 858, "results": []}}))
            }
            t if t.starts_with("/real/") => {
                let name = &t["/real/".len()..];
                let path = format!(
                    "{}/../import/tests/fixtures/{name}",
                    env!("CARGO_MANIFEST_DIR")
                );
                let kind = if name.ends_with(".rdf") {
                    "application/rdf+xml"
                } else {
                    "application/json"
                };
                Some(match std::fs::read(path) {
                    Ok(bytes) => Answer::ok(kind, bytes),
                    Err(_) => Answer::status(404),
                })
            }
            _ => Some(Answer::status(404)),
        }
    });
    base.set(addr.clone()).unwrap();
    let run = |format: &str, url: &str, extra: &[&str]| import_status(&dir, format, url, extra);

    let (code, report, stderr) = run("udata", &format!("{addr}/udata/1"), &[]);
    assert_eq!(code, Some(0), "{report} {stderr}");
    assert_eq!(
        (report["created"].as_u64(), report["rows"].as_u64()),
        (Some(3), Some(3)),
        "{report}"
    );
    assert_eq!(report["source"], format!("{addr}/udata/1"));

    let (code, report, stderr) = run(
        "ckan",
        &format!("{addr}/ckan/api/3/action/package_search?q=x"),
        &[],
    );
    assert_eq!(code, Some(0), "{report} {stderr}");
    assert_eq!(report["created"], 3, "{report}");

    let (code, report, stderr) = run("dcat", &format!("{addr}/dcat/page1.ttl"), &[]);
    assert_eq!(code, Some(0), "{report} {stderr}");
    assert_eq!(report["created"], 2, "{report}");
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("Turtle") && notes.contains("RDF/XML"),
        "{notes}"
    );

    // Real exports served over HTTP: Opendatasoft's RDF/XML, data.gouv.fr's
    // API, a CKAN search.
    for (format, name, created) in [
        ("dcat", "ods-rennes-catalog.rdf", 27),
        ("udata", "udata-angers-datasets.json", 18),
        ("ckan", "ckan-envidat-package-search.json", 2),
    ] {
        let (code, report, stderr) = run(format, &format!("{addr}/real/{name}"), &[]);
        assert_eq!(code, Some(0), "{name}: {report} {stderr}");
        assert_eq!(report["created"], created, "{name}: {report}");
    }

    // Failing once (503): tried again.
    let (code, report, stderr) = run("scdl", &format!("{addr}/flaky.csv"), &[]);
    assert_eq!(code, Some(0), "{report} {stderr}");
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(flaky.load(Ordering::SeqCst), 2);

    let datasets = cli_json(&dir, &["list", "--json", "--kind", "dataset"]);
    assert_eq!(
        datasets.as_array().unwrap().len(),
        9 + 27 + 18 + 2,
        "{datasets}"
    );

    // Hanging, too large, missing: an error naming the address and why.
    let (code, _, stderr) = run("scdl", &format!("{addr}/hang.csv"), &["--timeout", "1"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("/hang.csv: no answer within 1 s"),
        "{stderr}"
    );
    let (code, _, stderr) = run("scdl", &format!("{addr}/big.csv"), &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("larger than 256 MiB"), "{stderr}");
    let (code, _, stderr) = run("scdl", &format!("{addr}/nulle-part.csv"), &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("answered 404 Not Found: check the address"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert_eq!(
        cli_json(&dir, &["list", "--json", "--kind", "dataset"])
            .as_array()
            .unwrap()
            .len(),
        9 + 27 + 18 + 2
    );
}

/// A node harvests its sources by itself: declared in its config, run on
/// their schedule (or now, by the operator), imported as `import` does,
/// what left the source withdrawn when asked, and each run in `status`.
#[test]
fn a_node_harvests_its_sources_and_says_how_it_went() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("metropole");
    init(&dir, "243100518", "Toulouse Métropole");
    let dataset = |id: &str| {
        serde_json::json!({"id": id, "title": format!("Jeu {id}"), "description": "Un jeu.",
                           "license": "lo-2.0", "organization": {"name": "Toulouse Métropole"}})
    };
    let shrunk = std::sync::Arc::new(AtomicBool::new(false));
    let s = shrunk.clone();
    let addr = serve_http(move |target| match target {
        "/api/1/datasets/" => {
            let mut data = vec![dataset("a"), dataset("b")];
            if !s.load(Ordering::SeqCst) {
                data.push(dataset("c"));
            }
            Some(Answer::ok(
                "application/json",
                serde_json::json!({"data": data, "next_page": null}).to_string(),
            ))
        }
        _ => Some(Answer::status(404)),
    });
    let config = dir.join("maillage.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[[harvest]]\nname = \"data.gouv.fr\"\nurl = \"{addr}/api/1/datasets/\"\nformat = \"udata\"\n\
         interval = \"1day\"\nwithdraw_missing = true\n\n\
         [[harvest]]\nname = \"ancien portail\"\nurl = \"{addr}/ailleurs.csv\"\nformat = \"scdl\"\ntimeout = \"5s\"\n"
    ));
    std::fs::write(&config, text).unwrap();
    let _node = start(&dir);

    let status = cli_json(&dir, &["status", "--json"]);
    assert_eq!(status["harvests"][0]["name"], "data.gouv.fr", "{status}");
    assert_eq!(status["harvests"][0]["last_finished_ms"], 0, "{status}");

    let run = cli_json(&dir, &["harvest", "run", "--json", "data.gouv.fr"]);
    assert_eq!(
        (run["rows"].as_u64(), run["created"].as_u64()),
        (Some(3), Some(3)),
        "{run}"
    );
    let listed = cli_json(&dir, &["list", "--json", "--kind", "dataset"]);
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert_eq!(
        listed[0]["record"]["provenance"]["source"],
        format!("{addr}/api/1/datasets/")
    );

    // The source lost a dataset: the next run withdraws it.
    shrunk.store(true, Ordering::SeqCst);
    let run = cli_json(&dir, &["harvest", "run", "--json", "data.gouv.fr"]);
    assert_eq!(
        (run["unchanged"].as_u64(), run["withdrawn"].as_u64()),
        (Some(2), Some(1)),
        "{run}"
    );
    assert_eq!(
        cli_json(&dir, &["list", "--json", "--kind", "dataset"])
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A source that is not there: the run fails, says why, imports nothing.
    let out = cli(&dir, &["harvest", "run", "ancien portail"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("404"), "{stderr}");
    let out = cli(&dir, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ancien portail (scdl") && text.contains("last run failed, nothing imported"),
        "{text}"
    );
    assert!(
        text.contains("data.gouv.fr (udata") && text.contains("1 withdrawn"),
        "{text}"
    );
    let out = cli(&dir, &["harvest", "run", "inconnu"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no harvest is named 'inconnu'"));
}
