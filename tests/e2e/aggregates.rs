//! Signed aggregates (issue 23), on a federation of real nodes: Toulouse
//! Métropole (a chef de file) counts its communes' projects; the
//! Haute-Garonne (a committee) verifies that, counts Le Muretain Agglo's,
//! and rolls both up; a national node rolls the département up and
//! verifies all of it. Every figure is checked against values counted by
//! hand; a tampered aggregate, one counting a record the verifier lacks and
//! one that double counts are each reported.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

const METROPOLE: (&str, &str) = ("243100518", "Toulouse Métropole");
const HAUTE_GARONNE: (&str, &str) = ("223100017", "Département de la Haute-Garonne");
const NATIONAL: (&str, &str) = ("200053791", "Région Occitanie");
const COLOMIERS: (&str, &str) = ("213101496", "Colomiers");

/// A bibliothèque IA export: one project per (commune, SIREN, theme, status).
fn bibliotheque(rows: &[(&str, &str, &str, &str)]) -> String {
    let mut out = vec![BIBLIOTHEQUE_HEADER.to_string()];
    for (i, (name, siren, theme, status)) in rows.iter().enumerate() {
        out.push(format!(
            "{name},Projet {i} de {name},{siren},,,Commune,09/2024,{status},,Un projet d'IA de {name},{theme},,Agents,,,"
        ));
    }
    out.join("\n") + "\n"
}

fn import(dir: &std::path::Path, name: &str, csv: String) {
    let file = dir.with_extension(format!("{name}.csv"));
    std::fs::write(&file, csv).unwrap();
    cli_json(
        dir,
        &[
            "import",
            "--json",
            "bibliotheque-ia",
            file.to_str().unwrap(),
        ],
    );
}

fn publish_aggregate(dir: &std::path::Path, args: &[&str]) -> (String, Value) {
    let mut all = vec!["aggregate", "publish", "--json"];
    all.extend_from_slice(args);
    let out = cli_json(dir, &all);
    (
        out["id"].as_str().unwrap().to_string(),
        out["record"].clone(),
    )
}

/// (records, organisations) of a figure; None if it is secret.
fn figure(record: &Value, group: &str, value: &str) -> Option<(u64, u64)> {
    let f = record["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["group"] == group && f["value"].as_str().unwrap_or("") == value)
        .unwrap_or_else(|| panic!("no figure {group}={value}: {record}"));
    Some((f["records"].as_u64()?, f["organisations"].as_u64()?))
}

fn lower_bound(record: &Value, group: &str, value: &str) -> bool {
    record["figures"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["group"] == group && f["value"] == value && f["lower_bound"] == true)
}

fn verify(dir: &std::path::Path, id: &str) -> (bool, String) {
    let out = cli(dir, &["aggregate", "verify", id]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn link(a: &std::path::Path, an: &str, b: &std::path::Path, bn: &str) {
    peer(a, bn, b);
    peer(b, an, a);
}

fn arrives(dir: &std::path::Path, id: &str) {
    eventually(Duration::from_secs(30), &format!("{id} replicates"), || {
        has(dir, id)
    });
}

#[test]
fn aggregates_are_computed_verified_and_rolled_up_across_three_levels() {
    let fed = federation(&[METROPOLE, HAUTE_GARONNE, NATIONAL, COLOMIERS]);
    let (tm, dep, nat, colomiers) = (&fed.dirs[0], &fed.dirs[1], &fed.dirs[2], &fed.dirs[3]);
    link(tm, "metropole", dep, "departement");
    link(dep, "departement", nat, "national");
    // Each trusts the others it links with (and the national node the
    // métropole too, whose records the département relays): members see
    // each other's federation records, the métropole's project details
    // among them.
    for (on, of) in [(dep, tm), (tm, dep), (nat, dep), (dep, nat), (nat, tm)] {
        trust(on, of);
    }

    // Toulouse Métropole publishes five of its communes' projects, and one
    // of its own with federation-only details.
    import(
        tm,
        "communes",
        bibliotheque(&[
            ("Blagnac", "213100696", "Mobilités", "En expérimentation"),
            ("Aucamville", "213100225", "Mobilités", "En déploiement"),
            ("Balma", "213100449", "Mobilités", "En déploiement"),
            (
                "Aussonne",
                "213100324",
                "Administration et organisation interne",
                "En déploiement",
            ),
            (
                "Beauzelle",
                "213100563",
                "Administration et organisation interne",
                "En déploiement",
            ),
        ]),
    );
    let project: Value =
        serde_json::from_str(&std::fs::read_to_string(example("project.json")).unwrap()).unwrap();
    publish_doc(tm, "projet", project);
    let details: Value =
        serde_json::from_str(&std::fs::read_to_string(example("project_details.json")).unwrap())
            .unwrap();
    publish_doc(tm, "details", details);

    // Counted by hand: six projects of six organisations; each theme has
    // three. Status: two in experimentation (secret), so the four in
    // deployment are made secret too (else the total would give it away).
    let (agg1, rec1) = publish_aggregate(tm, &["--territory", METROPOLE.0]);
    assert_eq!(rec1["kind"], "aggregate");
    assert_eq!(rec1["visibility"], "public");
    // How many records it counts is not said (it would give a secret
    // figure away); the hash commits to them.
    assert_eq!(rec1["inputs"], 0, "{rec1}");
    assert_eq!(figure(&rec1, "organisations", ""), Some((6, 6)));
    assert_eq!(figure(&rec1, "projects", ""), Some((6, 6)));
    assert_eq!(figure(&rec1, "theme", "mobilites"), Some((3, 3)));
    assert_eq!(figure(&rec1, "theme", "administration"), Some((3, 3)));
    assert_eq!(figure(&rec1, "status", "experimentation"), None);
    assert_eq!(figure(&rec1, "status", "deploiement"), None);
    // One EPCI (secret) among five communes: the communes' count would
    // give it away, so it is secret too, and with it the population bands
    // that add up to it.
    assert_eq!(figure(&rec1, "organisation_kind", "epci"), None);
    assert_eq!(figure(&rec1, "organisation_kind", "commune"), None);
    assert_eq!(figure(&rec1, "population_band", "2000_a_9999"), None);
    assert_eq!(figure(&rec1, "population_band", "10000_a_49999"), None);
    // The details are one organisation's: secret, energy included.
    assert_eq!(figure(&rec1, "project_details", ""), None);
    assert_eq!(figure(&rec1, "energy_kwh_per_year", ""), None);
    let (ok, said) = verify(tm, &agg1);
    assert!(ok && said.starts_with("match"), "{said}");

    // The committee holds the same records: it recomputes the same figures.
    arrives(dep, &agg1);
    let (ok, said) = verify(dep, &agg1);
    assert!(
        ok,
        "the département does not verify the métropole's aggregate: {said}"
    );

    // Le Muretain Agglo's communes, published by the département.
    import(
        dep,
        "muretain",
        bibliotheque(&[
            (
                "Bonrepos-sur-Aussonnelle",
                "213100753",
                "Mobilités",
                "En déploiement",
            ),
            ("Bragayrac", "213100878", "Mobilités", "En déploiement"),
            ("Eaunes", "213101652", "Mobilités", "En déploiement"),
        ]),
    );
    let (muretain, rec_m) = publish_aggregate(dep, &["--territory", "200068641"]);
    assert_eq!(figure(&rec_m, "projects", ""), Some((3, 3)));
    assert_eq!(figure(&rec_m, "status", "deploiement"), Some((3, 3)));

    // The roll-up: sums, never records. Deployment is secret in the
    // métropole's: the département knows at least the Muretain's three.
    let combine = format!("{agg1},{muretain}");
    let (rollup, rec_r) = publish_aggregate(dep, &["--territory", "31", "--combine", &combine]);
    let mut both = [agg1.clone(), muretain.clone()];
    both.sort();
    assert_eq!(rec_r["combines"], json!(both));
    assert_eq!(rec_r["inputs"], 2);
    assert!(rec_r.get("organisation_hashes").is_none(), "{rec_r}");
    assert_eq!(rec_r["organisations"].as_array().unwrap().len(), 9);
    assert_eq!(figure(&rec_r, "projects", ""), Some((9, 9)));
    assert_eq!(figure(&rec_r, "theme", "mobilites"), Some((6, 6)));
    assert!(!lower_bound(&rec_r, "theme", "mobilites"));
    assert_eq!(figure(&rec_r, "status", "deploiement"), Some((3, 3)));
    assert!(lower_bound(&rec_r, "status", "deploiement"), "{rec_r}");
    assert_eq!(figure(&rec_r, "status", "experimentation"), None);
    let (ok, said) = verify(dep, &rollup);
    assert!(ok, "{said}");

    // The national node combines the département's roll-up, and verifies
    // the whole chain from what was relayed to it.
    arrives(nat, &rollup);
    arrives(nat, &agg1);
    arrives(nat, &muretain);
    let (national, rec_n) =
        publish_aggregate(nat, &["--territory", "france", "--combine", &rollup]);
    assert_eq!(rec_n["territory"], "france");
    assert_eq!(figure(&rec_n, "projects", ""), Some((9, 9)));
    assert!(lower_bound(&rec_n, "status", "deploiement"));
    for id in [&national, &rollup, &agg1, &muretain] {
        let (ok, said) = verify(nat, id);
        assert!(ok, "national verification of {id}: {said}");
    }
    // A leaf of France means nothing: the national node combines.
    let refused = cli(nat, &["aggregate", "publish", "--territory", "france"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--combine"));

    // Double counting: the département's own aggregate of the whole
    // département counts the métropole's communes again.
    let (whole, _) = publish_aggregate(dep, &["--territory", "31"]);
    let refused = cli(
        dep,
        &[
            "aggregate",
            "publish",
            "--territory",
            "31",
            "--combine",
            &format!("{agg1},{whole}"),
        ],
    );
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("counted by two") && said.contains(&agg1),
        "{said}"
    );
    // Signed by hand, such a roll-up is stored; verify reports it.
    let mut pair = [agg1.clone(), whole.clone()];
    pair.sort();
    let forged = json!({
        "kind": "aggregate", "record_id": "aggregate-double", "visibility": "public",
        "territory": "31", "as_of_ms": 1, "inputs": 2, "inputs_hash": "00".repeat(32),
        "combines": pair, "figures": [],
    });
    let double = publish(dep, &write_doc(dep, "double.json", forged));
    let (ok, said) = verify(dep, &double);
    assert!(!ok && said.contains("double counting"), "{said}");

    // Tampered: the métropole signs figures its records do not give.
    let mut tampered = rec1.clone();
    let obj = tampered.as_object_mut().unwrap();
    obj.insert("record_id".into(), "aggregate-faux".into());
    obj.remove("version");
    obj.remove("issued_at");
    for f in obj["figures"].as_array_mut().unwrap() {
        if f["group"] == "projects" {
            f["records"] = 60.into();
        }
    }
    let faux = publish(tm, &write_doc(tm, "faux.json", tampered));
    arrives(dep, &faux);
    let (ok, said) = verify(dep, &faux);
    assert!(
        !ok && said.contains("mismatch") && said.contains("figure projects") && said.contains("60"),
        "{said}"
    );

    // Colomiers joins the métropole, which trusts it; the département does
    // not (yet): the métropole's next aggregate counts a record the
    // département lacks, and verify says whose.
    link(tm, "metropole", colomiers, "colomiers");
    trust(tm, colomiers);
    let mut own =
        serde_json::from_str::<Value>(&std::fs::read_to_string(example("project.json")).unwrap())
            .unwrap();
    own["record_id"] = "ia-colomiers".into();
    own["organisation_name"] = COLOMIERS.1.into();
    let colomiers_project = publish(colomiers, &write_doc(colomiers, "own.json", own));
    arrives(tm, &colomiers_project);
    let (agg2, rec2) = publish_aggregate(tm, &["--territory", METROPOLE.0]);
    assert_eq!(figure(&rec2, "projects", ""), Some((7, 7)));
    arrives(dep, &agg2);
    let (ok, said) = verify(dep, &agg2);
    assert!(
        !ok && said.contains(COLOMIERS.0) && said.contains("does not hold"),
        "{said}"
    );

    // Coverage: the métropole's own project serves its communes.
    let found = cli_json(
        dep,
        &[
            "search",
            "--json",
            "--territory",
            "31069",
            "--kind",
            "project",
            "courriers",
        ],
    );
    assert!(
        found["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["record_id"] == "ia-tri-courriers"),
        "{found}"
    );
}

/// The public sees aggregates: in `/stats` (as JSON), on the territory's
/// page and on the aggregate's own page; and a project's page says who
/// reuses it.
#[test]
fn the_public_sees_aggregates_and_reuse() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("metropole");
    init(&dir, METROPOLE.0, METROPOLE.1);
    let addr = enable_http(&dir);
    let _node = start(&dir);
    cli_json(&dir, &["publish", "--json", &example("project.json")]);
    import(
        &dir,
        "communes",
        bibliotheque(&[
            ("Blagnac", "213100696", "Mobilités", "En déploiement"),
            ("Aucamville", "213100225", "Mobilités", "En déploiement"),
            ("Balma", "213100449", "Mobilités", "En déploiement"),
            (
                "Aussonne",
                "213100324",
                "Administration et organisation interne",
                "En déploiement",
            ),
        ]),
    );
    publish_doc(
        &dir,
        "colomiers",
        json!({"kind": "project", "record_id": "fuites",
            "name": "Détection des fuites d'eau", "description": "Repère les fuites sur le réseau.",
            "status": "En déploiement", "siret": "21310149600015", "organisation_name": "Colomiers",
            "theme": "Administration et organisation interne"}),
    );
    // The métropole reuses Colomiers' project.
    publish_doc(
        &dir,
        "reuse",
        json!({"kind": "reuse", "record_id": "reutilisation-fuites",
            "project": {"record_id": "fuites"}, "since": "2025-09",
            "how": "Même détecteur, sur le réseau métropolitain"}),
    );
    let (id, rec) = publish_aggregate(&dir, &["--territory", METROPOLE.0]);
    assert_eq!(figure(&rec, "projects", ""), Some((6, 6)), "{rec}");
    assert_eq!(figure(&rec, "theme", "mobilites"), Some((3, 3)));
    assert_eq!(figure(&rec, "theme", "administration"), Some((3, 3)));
    assert_eq!(
        figure(&rec, "reuse", ""),
        None,
        "one organisation's reuse: secret"
    );

    let stats = || -> Value {
        let (status, stats) = http_get(&addr, "/stats?territory=243100518");
        assert_eq!(status, 200, "{stats}");
        serde_json::from_str(&stats).unwrap()
    };
    eventually(Duration::from_secs(10), "the aggregate is indexed", || {
        stats()["aggregates"][0].is_object()
    });
    let stats = stats();
    let shown = &stats["aggregates"][0];
    assert_eq!(shown["id"], id.as_str(), "{stats}");
    assert_eq!(figure(shown, "projects", ""), Some((6, 6)));
    assert!(shown.get("organisation_hashes").is_none());
    assert_eq!(shown["organisation_count"], 6, "{shown}");

    let (status, page) = http_get(&addr, "/territoires/243100518");
    assert_eq!(status, 200);
    assert!(page.contains("Statistiques signées"), "{page}");
    assert!(
        page.contains("Projets par thème") && page.contains("Mobilités"),
        "{page}"
    );
    assert!(page.contains("secret"), "{page}");

    let key = key(&dir);
    let path = format!("/records/{key}/{}", rec["record_id"].as_str().unwrap());
    let (status, page) = http_get(&addr, &path);
    assert_eq!(status, 200, "{path}: {page}");
    assert!(
        page.contains("Statistiques signées : Toulouse Métropole"),
        "{page}"
    );
    assert!(
        page.contains(&format!("maillage aggregate verify {id}")),
        "{page}"
    );

    // The members view: what each commune publishes through this node.
    let members = cli_json(&dir, &["members", "--json", "--territory", METROPOLE.0]);
    let row = |siren: &str| {
        members["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["siren"] == siren)
            .cloned()
            .unwrap()
    };
    let colomiers = row(COLOMIERS.0);
    assert_eq!(colomiers["projects"], 1, "{colomiers}");
    assert_eq!(colomiers["through_this_node"], 1, "{colomiers}");
    assert!(
        colomiers["last_record"]
            .as_str()
            .is_some_and(|t| t.starts_with("20")),
        "{colomiers}"
    );
    let toulouse = row("213105554");
    assert_eq!(toulouse["projects"], 0);
    assert!(toulouse["last_record"].is_null(), "{toulouse}");

    let (status, page) = http_get(&addr, &format!("/records/{key}/fuites"));
    assert_eq!(status, 200);
    assert!(page.contains("Réutilisé par 1 collectivité"), "{page}");
    assert!(page.contains("Toulouse Métropole"), "{page}");
}
