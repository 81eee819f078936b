//! Issue 23 (chef de file and territories), as far as it is built:
//! départements placed by their SIREN, coverage in territory searches, a
//! chef de file's scope, and the members view (`maillage members`).

use crate::support::*;

const HAUTE_GARONNE: (&str, &str) = ("223100017", "Département de la Haute-Garonne");
const COLOMIERS: (&str, &str) = ("213101496", "Colomiers");

fn ids(found: &serde_json::Value) -> Vec<String> {
    let mut ids: Vec<String> = found["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["record_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// A département's node: its project serves the whole département (found
/// from Toulouse, not from Lyon); a project covering one commune is found
/// there and not in the next one; the members view lists the département's
/// collectivities, and says which run a node this node trusts.
#[test]
fn a_departement_s_projects_serve_its_communes_and_its_members_are_listed() {
    let fed = federation(&[HAUTE_GARONNE, COLOMIERS]);
    let (dep, colomiers) = (&fed.dirs[0], &fed.dirs[1]);
    let mut project: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(example("project.json")).unwrap()).unwrap();
    project["record_id"] = "ia-routes-31".into();
    project["name"] = "Détection des nids-de-poule sur les routes départementales".into();
    project["organisation_name"] = HAUTE_GARONNE.1.into();
    publish_doc(dep, "routes", project.clone());
    project["record_id"] = "ia-colleges-blagnac".into();
    project["name"] = "Orientation des collégiens de Blagnac".into();
    project["coverage"] = serde_json::json!(["31069"]);
    publish_doc(dep, "colleges", project.clone());
    // A coverage that names no territory is refused, saying what to write.
    project["coverage"] = serde_json::json!(["31999"]);
    let refused = cli(
        dep,
        &["publish", write_doc(dep, "bad", project).to_str().unwrap()],
    );
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("coverage") && said.contains("31999"),
        "{said}"
    );

    let search = |territory: &str| {
        cli_json(
            dep,
            &[
                "search",
                "--json",
                "--territory",
                territory,
                "--kind",
                "project",
            ],
        )
    };
    eventually(
        std::time::Duration::from_secs(10),
        "the projects are indexed",
        || search("31")["total"] == 2,
    );
    assert_eq!(ids(&search("31555")), ["ia-routes-31"], "Toulouse");
    assert_eq!(
        ids(&search("31069")),
        ["ia-colleges-blagnac", "ia-routes-31"],
        "Blagnac"
    );
    assert_eq!(
        ids(&search("223100017")).len(),
        2,
        "by the département's SIREN"
    );
    assert_eq!(ids(&search("reg:76")).len(), 2, "Occitanie");
    assert!(ids(&search("69123")).is_empty(), "Lyon");

    // The département endorses Colomiers' node: a member that runs a node.
    let membership = serde_json::json!({
        "kind": "membership", "record_id": "membre-colomiers", "member_key": key(colomiers),
        "siren": COLOMIERS.0, "role": "member",
    });
    publish_doc(dep, "membre", membership);
    // A member has no scope; a chef de file's names territories or SIRENs.
    let wrong = serde_json::json!({
        "kind": "membership", "record_id": "membre-scope", "member_key": key(colomiers),
        "siren": COLOMIERS.0, "role": "member", "scope": ["31"],
    });
    let refused = cli(
        dep,
        &["publish", write_doc(dep, "wrong", wrong).to_str().unwrap()],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("scope"));

    let members = cli_json(dep, &["members", "--json"]);
    assert_eq!(
        members["scope_from"], "own_territory",
        "{}",
        members["scope"]
    );
    let list = members["members"].as_array().unwrap();
    assert!(list.len() > 500, "{}", list.len());
    assert!(
        !list.iter().any(|m| m["siren"] == HAUTE_GARONNE.0),
        "the node lists itself"
    );
    let colomiers_row = list.iter().find(|m| m["siren"] == COLOMIERS.0).unwrap();
    assert_eq!(colomiers_row["runs_node"], true, "{colomiers_row}");
    assert_eq!(colomiers_row["kind"], "commune");
    let metropole = list.iter().find(|m| m["siren"] == "243100518").unwrap();
    assert_eq!(metropole["runs_node"], false);
    assert!(members["summary"]["without_catalogue"].as_u64().unwrap() > 500);
    // Another territory: Toulouse Métropole's communes.
    let tm = cli_json(dep, &["members", "--json", "--territory", "243100518"]);
    assert_eq!(tm["scope_from"], "asked");
    let names: Vec<&str> = tm["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Colomiers") && !names.contains(&"Muret"),
        "{names:?}"
    );
    let bad = cli(dep, &["members", "--territory", "nulle-part"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nulle-part"));
}
