//! The public HTTP export: what a harvester (data.gouv.fr, CKAN) gets from a
//! running node, validated against the official DCAT-AP 3.0.1 SHACL shapes
//! with pySHACL; and what it must never get.

use std::path::Path;
use std::process::Command;

use crate::support::*;

/// Runs pySHACL on `data` with every shapes file; panics with the report of
/// the first that does not conform.
fn shacl_conforms(data: &Path, format: &str) {
    let shapes = Path::new(env!("CARGO_MANIFEST_DIR")).join("dcat-ap");
    for s in ["shapes.ttl", "range.ttl", "dcat-ap-SHACL.ttl"] {
        // scripts/test points MAILLAGE_PYTHON at its virtual environment.
        let python = std::env::var("MAILLAGE_PYTHON").unwrap_or_else(|_| "python3".into());
        let out = Command::new(python)
            .args(["-m", "pyshacl", "-s"])
            .arg(shapes.join(s))
            .args(["-df", format])
            .arg(data)
            .output()
            .expect("python runs (scripts/test installs pyshacl in a virtual environment)");
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && report.contains("Conforms: True"),
            "{} does not conform to {s}:\n{report}{}",
            data.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn catalogue_conforms_to_dcat_ap_and_holds_public_records_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("metropole");
    init(&dir, "243100518", "Toulouse Métropole");
    let addr = enable_http(&dir);
    let _node = start(&dir);

    for name in [
        "dataset.json",
        "project.json",
        "project_details.json",
        "resource.json",
        "collection.json",
    ] {
        cli_json(&dir, &["publish", "--json", &example(name)]);
    }
    // A minimal dataset (only what DCAT-AP requires), and two that must not
    // leave the federation.
    publish_doc(
        &dir,
        "minimal",
        serde_json::json!({"kind": "dataset", "record_id": "minimal",
            "title": "Liste des marchés", "description": "Les marchés de plein vent."}),
    );
    publish_doc(
        &dir,
        "federation",
        serde_json::json!({"kind": "dataset", "record_id": "interne", "visibility": "federation",
            "title": "Annuaire interne SECRET-FEDERATION", "description": "d"}),
    );
    publish_doc(
        &dir,
        "restricted",
        serde_json::json!({"kind": "dataset", "record_id": "reserve", "visibility": "restricted",
            "audience": ["213100696"], "title": "Données SECRET-RESTREINT", "description": "d"}),
    );

    let (status, jsonld) = http_get(&addr, "/catalog.jsonld");
    assert_eq!(status, 200, "{jsonld}");
    let (status, turtle) = http_get(&addr, "/catalog.ttl");
    assert_eq!(status, 200, "{turtle}");
    for doc in [&jsonld, &turtle] {
        assert!(doc.contains("Budget primitif 2026 de Toulouse Métropole"));
        assert!(doc.contains("Liste des marchés"));
        assert!(doc.contains("etalab.gouv.fr/licence-ouverte"));
        assert!(doc.contains("frequency/ANNUAL"));
        for secret in ["SECRET-FEDERATION", "SECRET-RESTREINT"] {
            assert!(!doc.contains(secret), "{secret} leaked:\n{doc}");
        }
    }
    let graph: serde_json::Value = serde_json::from_str(&jsonld).unwrap();
    let datasets = graph["@graph"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["@type"] == "dcat:Dataset")
        .count();
    assert_eq!(datasets, 2, "{jsonld}");
    let files = tmp.path();
    std::fs::write(files.join("catalog.jsonld"), &jsonld).unwrap();
    std::fs::write(files.join("catalog.ttl"), &turtle).unwrap();
    shacl_conforms(&files.join("catalog.jsonld"), "json-ld");
    shacl_conforms(&files.join("catalog.ttl"), "turtle");

    // Hydra paging: one dataset per page, two pages, linked both ways.
    let (_, page1) = http_get(&addr, "/catalog.jsonld?page=1&page_size=1");
    let page1: serde_json::Value = serde_json::from_str(&page1).unwrap();
    let view = page1["@graph"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["@type"] == "hydra:PartialCollectionView")
        .expect("a Hydra view")
        .clone();
    assert_eq!(view["hydra:totalItems"]["@value"], "2");
    let next = view["hydra:next"]["@id"].as_str().unwrap();
    assert!(next.ends_with("page=2&page_size=1"), "{next}");
    let (_, page2) = http_get(&addr, "/catalog.jsonld?page=2&page_size=1");
    assert!(page2.contains("hydra:previous") && !page2.contains("hydra:next"));
    let (status, _) = http_get(&addr, "/catalog.jsonld?page=zero");
    assert_eq!(status, 400);

    // Projects: the public part only; the details record (federation) never.
    let (status, projects) = http_get(&addr, "/projects.json");
    assert_eq!(status, 200);
    let projects: serde_json::Value = serde_json::from_str(&projects).unwrap();
    assert_eq!(projects.as_array().unwrap().len(), 1, "{projects}");
    assert_eq!(
        projects[0]["name"],
        "Tri automatique des courriers entrants"
    );
    let all = projects.to_string();
    for restricted in ["France 2030", "numerique@example.fr", "Classifieur"] {
        assert!(!all.contains(restricted), "{restricted} leaked: {all}");
    }
    let (status, _) = http_get(&addr, "/nothing-here");
    assert_eq!(status, 404);

    // `maillage export` writes the same catalogue to a file, also conforming.
    let out = files.join("export.ttl");
    let run = cli(
        &dir,
        &["export", "--format", "turtle", "-o", out.to_str().unwrap()],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.contains("Budget primitif 2026 de Toulouse Métropole"));
    assert!(!written.contains("SECRET-"), "{written}");
    assert_eq!(
        written.trim_end(),
        turtle.trim_end(),
        "the file and the HTTP export differ"
    );
    shacl_conforms(&out, "turtle");
}
