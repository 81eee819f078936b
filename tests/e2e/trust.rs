//! Trust that holds (docs/security.md): who speaks for a SIREN, who sees
//! federation records, versions that converge, records that keep their
//! kind. Each test plays the attack on real nodes.

use std::path::Path;
use std::time::Duration;

use maillage_record::model::{Dataset, Membership, MembershipRole};
use maillage_record::{Body, PublicKey, Record, Siren, Visibility, envelope, keyfile};
use serde_json::{Value, json};

use crate::support::{
    cli, cli_json, eventually, federation, has, key, peer, publish, start, trust, write_doc,
};

// Real organisations from data/collectivites.csv.
const TOULOUSE_METROPOLE: (&str, &str) = ("243100518", "Toulouse Métropole");
const TOULOUSE: (&str, &str) = ("213105554", "Toulouse");
const COLOMIERS: (&str, &str) = ("213101496", "Colomiers");
const BLAGNAC: (&str, &str) = ("213100696", "Blagnac");

const WAIT: Duration = Duration::from_secs(15);

/// Signs `record` with the organisation key of the node in `dir` and
/// publishes the envelope there as already signed (`publish --signed`):
/// what a node running other software could send. Returns its id.
fn publish_signed(dir: &Path, record: &Record) -> String {
    let key = keyfile::read(&dir.join("organisation.key")).unwrap();
    let signed = envelope::sign(&key, record).unwrap();
    let file = dir.with_extension(format!("{}-v{}.envelope", record.record_id, record.version));
    std::fs::write(&file, signed.envelope_bytes()).unwrap();
    let out = cli(
        dir,
        &["publish", "--signed", "--json", file.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "publish --signed of '{}' failed: {}",
        record.record_id,
        String::from_utf8_lossy(&out.stderr)
    );
    signed.id().to_hex()
}

fn record(record_id: &str, version: u64, visibility: Visibility, body: Body) -> Record {
    Record {
        record_id: record_id.into(),
        version,
        issued_at_ms: maillage_record::now_ms(),
        visibility,
        provenance: None,
        body,
    }
}

fn dataset(record_id: &str, title: &str, visibility: Value) -> Value {
    let mut doc = json!({
        "kind": "dataset",
        "record_id": record_id,
        "title": title,
        "description": "Jeu de données de test de la confiance.",
    });
    if let Value::Object(v) = visibility {
        doc.as_object_mut().unwrap().extend(v);
    }
    doc
}

fn publish_doc(dir: &Path, doc: Value) -> String {
    let name = format!("{}.json", doc["record_id"].as_str().unwrap());
    publish(dir, &write_doc(dir, &name, doc))
}

/// `by` endorses the key of the node in `member` for `siren`.
fn endorse(by: &Path, record_id: &str, member: &Path, siren: &str) -> String {
    publish_doc(
        by,
        json!({
            "kind": "membership",
            "record_id": record_id,
            "member_key": key(member),
            "siren": siren,
            "role": "member",
        }),
    )
}

fn sync(dir: &Path, peer: &str) {
    let out = cli_json(dir, &["sync", "--json", peer]);
    assert_eq!(out[0]["ok"], true, "{out}");
}

/// A chef de file that endorses a member; each pins the other, and the
/// member trusts the chef de file: `(fed, chef, member)`.
fn chef_and_member() -> (crate::support::Fed, std::path::PathBuf, std::path::PathBuf) {
    let fed = federation(&[TOULOUSE_METROPOLE, COLOMIERS]);
    let (chef, member) = (fed.dirs[0].clone(), fed.dirs[1].clone());
    endorse(&chef, "membre-colomiers", &member, COLOMIERS.0);
    peer(&chef, "member", &member);
    peer(&member, "chef", &chef);
    trust(&member, &chef);
    (fed, chef, member)
}

fn peer_entry(on: &Path, name: &str) -> Value {
    let peers = cli_json(on, &["peer", "list", "--json"]);
    peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no peer {name}: {peers}"))
}

/// Item 1: only a trust root, or a committee a root endorsed, says which
/// SIREN a key speaks for. A plain member that endorses itself (or an
/// accomplice's key) for another organisation's SIREN gets nothing of it:
/// not its restricted records, not its name in search.
#[test]
fn a_member_cannot_claim_another_organisations_siren() {
    let fed = federation(&[TOULOUSE_METROPOLE, BLAGNAC, COLOMIERS, TOULOUSE]);
    let [chef, victim, attacker, accomplice] =
        [&fed.dirs[0], &fed.dirs[1], &fed.dirs[2], &fed.dirs[3]];
    // The chef de file endorses its two members; its own key is its root.
    endorse(chef, "membre-blagnac", victim, BLAGNAC.0);
    endorse(chef, "membre-colomiers", attacker, COLOMIERS.0);
    for (name, dir) in [
        ("victim", victim),
        ("attacker", attacker),
        ("accomplice", accomplice),
    ] {
        peer(chef, name, dir);
        peer(dir, "chef", chef);
        trust(dir, chef);
    }

    // The attacker endorses itself for Blagnac, several times over (a
    // choice made in hash order would pick one of them), and endorses its
    // accomplice's key for Blagnac too.
    let claim = |record_id: &str, for_key: &Path| {
        let body = Body::Membership(Membership {
            member_key: PublicKey::parse_hex(&key(for_key)).unwrap(),
            siren: Siren::parse(BLAGNAC.0).unwrap(),
            role: MembershipRole::Member,
            valid_from_ms: 0,
            valid_until_ms: 0,
            scope: vec![],
        });
        publish_signed(attacker, &record(record_id, 1, Visibility::Public, body))
    };
    let mut claims: Vec<String> = (0..8)
        .map(|i| claim(&format!("usurpation-{i}"), attacker))
        .collect();
    claims.push(claim("complice", accomplice));
    let own_dataset = publish_doc(
        attacker,
        dataset(
            "releves-piezometriques",
            "Relevés piézométriques",
            json!({}),
        ),
    );
    eventually(
        WAIT,
        "the attacker's records reach the chef de file",
        || claims.iter().all(|id| has(chef, id)) && has(chef, &own_dataset),
    );

    // A record restricted to Blagnac reaches Blagnac...
    let secret = publish_doc(
        chef,
        dataset(
            "conventions-blagnac",
            "Conventions avec Blagnac",
            json!({"visibility": "restricted", "audience": [BLAGNAC.0]}),
        ),
    );
    eventually(WAIT, "the restricted record reaches Blagnac", || {
        has(victim, &secret)
    });
    // ...and neither the attacker nor its accomplice, however they ask.
    sync(attacker, "chef");
    sync(accomplice, "chef");
    assert!(
        !has(attacker, &secret),
        "a member received another organisation's restricted record on its own word"
    );
    assert!(
        !has(accomplice, &secret),
        "a key a plain member endorsed received a restricted record"
    );
    // The chef de file says who vouches for each: its own membership.
    let on_chef = peer_entry(chef, "attacker");
    assert_eq!(on_chef["siren"], COLOMIERS.0, "{on_chef}");
    assert_eq!(on_chef["siren_source"], "membership", "{on_chef}");
    assert!(peer_entry(chef, "accomplice")["siren"].is_null());

    // Search names the attacker's records after its own organisation.
    eventually(WAIT, "the attacker's dataset is searchable", || {
        cli_json(chef, &["search", "--json", "piézométriques"])["hits"]
            .as_array()
            .is_some_and(|h| !h.is_empty())
    });
    let hits = cli_json(chef, &["search", "--json", "piézométriques"]);
    let hit = &hits["hits"][0];
    assert_eq!(hit["organisation"]["siren"], COLOMIERS.0, "{hit}");
    // Item 9: a hit says what was checked, not a constant.
    assert_eq!(hit["author_trust"], "member", "{hit}");
    assert_eq!(hit["siren_source"], "membership", "{hit}");

    // The operator's word on a pinned peer outranks any membership.
    let url = peer_entry(chef, "attacker")["url"]
        .as_str()
        .unwrap()
        .to_string();
    let out = cli(
        chef,
        &[
            "peer",
            "add",
            "attacker",
            &url,
            "--key",
            &key(attacker),
            "--siren",
            TOULOUSE.0,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let on_chef = peer_entry(chef, "attacker");
    assert_eq!(on_chef["siren"], TOULOUSE.0, "{on_chef}");
    assert_eq!(on_chef["siren_source"], "operator", "{on_chef}");
}

/// Item 8: a pinned peer sees federation records while trust accepts it (a
/// root, or a current membership), not for as long as it stays pinned.
#[test]
fn a_withdrawn_member_no_longer_sees_federation_records() {
    let (_fed, chef, member) = chef_and_member();
    let (chef, member) = (&chef, &member);

    let before = publish_doc(
        chef,
        dataset(
            "budget-federation",
            "Budget partagé",
            json!({"visibility": "federation"}),
        ),
    );
    eventually(WAIT, "a member receives federation records", || {
        has(member, &before)
    });

    // The chef de file withdraws the membership; the peer stays pinned.
    let withdrawal = write_doc(
        chef,
        "withdrawal.json",
        json!({"kind": "tombstone", "record_id": "membre-colomiers",
            "reason": "a quitté le groupement"}),
    );
    publish(chef, &withdrawal);
    let after = publish_doc(
        chef,
        dataset(
            "budget-federation-2027",
            "Budget partagé 2027",
            json!({"visibility": "federation"}),
        ),
    );
    let public = publish_doc(chef, dataset("budget-public", "Budget ouvert", json!({})));
    sync(member, "chef");
    eventually(WAIT, "public records still reach the former member", || {
        has(member, &public)
    });
    assert!(
        !has(member, &after),
        "a former member still receives federation records"
    );
}

/// Item 5: a record keeps its kind. A membership overwritten by a dataset
/// would keep endorsing its member until the node restarts.
#[test]
fn a_new_version_of_another_kind_is_refused() {
    let fed = federation(&[TOULOUSE_METROPOLE, COLOMIERS]);
    let [chef, member] = [&fed.dirs[0], &fed.dirs[1]];
    let endorsement = endorse(chef, "adhesion", member, COLOMIERS.0);
    let draft = write_doc(
        chef,
        "adhesion-dataset.json",
        dataset("adhesion", "Un jeu de données à la place", json!({})),
    );
    let out = cli(chef, &["publish", "--json", draft.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a membership was overwritten by a dataset"
    );
    assert!(
        said.contains("'adhesion'") && said.contains("membership") && said.contains("dataset"),
        "{said}"
    );
    // Nothing changed: the membership is still current.
    let current = cli_json(chef, &["list", "--json", "--kind", "membership"]);
    assert!(
        current
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == endorsement),
        "{current}"
    );
    // Signed elsewhere, the same change is refused as well.
    let key_file = keyfile::read(&chef.join("organisation.key")).unwrap();
    let forged = envelope::sign(
        &key_file,
        &record(
            "adhesion",
            7,
            Visibility::Public,
            Body::Dataset(Dataset::new("Remplacement", "Un autre genre")),
        ),
    )
    .unwrap();
    let file = chef.with_extension("kind.envelope");
    std::fs::write(&file, forged.envelope_bytes()).unwrap();
    let out = cli(chef, &["publish", "--signed", file.to_str().unwrap()]);
    assert!(!out.status.success(), "a signed change of kind was stored");
    assert!(!has(chef, &forged.id().to_hex()));
}

/// Item 2: two different envelopes with the same (author, record_id,
/// version), published through two nodes, end with the same current version
/// on both, both kept, and the author flagged.
#[test]
fn equal_versions_converge_to_the_same_choice_everywhere() {
    let fed = federation(&[TOULOUSE_METROPOLE]);
    let a = &fed.dirs[0];
    // b lets a's key publish there too (`[publish] authors`).
    let b = &a.with_file_name("b");
    crate::support::init(b, COLOMIERS.0, COLOMIERS.1);
    let config = b.join("maillage.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("authors = []", &format!("authors = [\"{}\"]", key(a))),
    )
    .unwrap();
    let mut node_b = start(b);
    trust(a, b);
    trust(b, a);

    let version = |title: &str| {
        record(
            "budget-primitif",
            3,
            Visibility::Public,
            Body::Dataset(Dataset::new(title, "Le budget voté")),
        )
    };
    let on_a = publish_signed(a, &version("Budget primitif (publié sur a)"));
    let key_a = keyfile::read(&a.join("organisation.key")).unwrap();
    let other = envelope::sign(&key_a, &version("Budget primitif (publié sur b)")).unwrap();
    let file = b.with_extension("other.envelope");
    std::fs::write(&file, other.envelope_bytes()).unwrap();
    let out = cli(b, &["publish", "--signed", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let on_b = other.id().to_hex();

    peer(a, "b", b);
    peer(b, "a", a);
    eventually(WAIT, "both envelopes reach both nodes", || {
        [a, b].iter().all(|d| has(d, &on_a) && has(d, &on_b))
    });
    let current = |d: &Path| -> String {
        let list = cli_json(d, &["list", "--json", "--kind", "dataset"]);
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["record"]["record_id"] == "budget-primitif")
            .map(|r| r["id"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(current(a), current(b), "the two nodes disagree for good");
    // Both kept as evidence; the author flagged on both.
    for d in [a, b] {
        let status = cli_json(d, &["status", "--json"]);
        let flagged = status["conflicting_authors"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            flagged.iter().any(|k| k == &Value::String(key(a))),
            "{status}"
        );
    }
    // The same choice after a restart.
    let chosen = current(b);
    node_b.kill();
    let _node_b = start(b);
    assert_eq!(current(b), chosen);
}

/// Item 7: a collection names its items to all its readers. The node
/// refuses to sign one listing a record some of its readers may not see,
/// and hides one whose item narrowed since from those who may not see it.
#[test]
fn a_collection_is_read_only_by_who_may_see_what_it_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &tmp.path().join("n");
    crate::support::init(dir, TOULOUSE_METROPOLE.0, TOULOUSE_METROPOLE.1);
    let http = crate::support::enable_http(dir);
    let _node = start(dir);
    let plan = |visibility: Value| {
        publish_doc(
            dir,
            dataset("plan-velo", "Plan vélo métropolitain", visibility),
        )
    };
    plan(json!({}));
    publish_doc(
        dir,
        json!({"kind": "collection", "record_id": "selection-mobilite",
            "title": "Sélection mobilité douce", "items": [{"record_id": "plan-velo"}]}),
    );
    let public_hits = || -> Vec<String> {
        let (status, body) = crate::support::http_get(&http, "/search?q=mobilit%C3%A9%20douce");
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["record_id"].as_str().unwrap().to_string())
            .collect()
    };
    eventually(WAIT, "the public finds the collection", || {
        public_hits().contains(&"selection-mobilite".to_string())
    });

    // The plan is now restricted to Blagnac: the public collection names it.
    plan(json!({"visibility": "restricted", "audience": [BLAGNAC.0]}));
    assert!(
        !public_hits().contains(&"selection-mobilite".to_string()),
        "a public collection names a restricted record to the public"
    );
    // And a new public collection listing it is refused, saying why.
    let draft = write_doc(
        dir,
        "selection-2.json",
        json!({"kind": "collection", "record_id": "selection-2",
            "title": "Autre sélection", "items": [{"record_id": "plan-velo"}]}),
    );
    let out = cli(dir, &["publish", draft.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a public collection lists a restricted record"
    );
    assert!(
        said.contains("'plan-velo'") && said.contains("restricted"),
        "{said}"
    );
}

/// Item 4: a version that narrows who may see a record retracts the
/// earlier one from those who no longer may, without showing them what
/// replaced it.
#[test]
fn narrowing_visibility_retracts_the_earlier_version() {
    let fed = federation(&[TOULOUSE_METROPOLE, BLAGNAC]);
    let [a, b] = [&fed.dirs[0], &fed.dirs[1]];
    trust(a, b);
    trust(b, a);
    peer(a, "b", b);
    peer(b, "a", a);
    let v1 = publish_doc(a, dataset("budget-annexe", "Budget annexe", json!({})));
    eventually(WAIT, "the public version reaches b", || has(b, &v1));

    let narrowed = cli_json(
        a,
        &[
            "publish",
            "--json",
            write_doc(
                a,
                "budget-annexe-2.json",
                dataset(
                    "budget-annexe",
                    "Budget annexe (détail réservé)",
                    json!({"visibility": "restricted", "audience": [COLOMIERS.0]}),
                ),
            )
            .to_str()
            .unwrap(),
        ],
    );
    let restricted = narrowed["id"].as_str().unwrap().to_string();
    sync(b, "a");
    let datasets_on_b = || -> Vec<Value> {
        cli_json(b, &["list", "--json", "--kind", "dataset"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["record"]["record_id"] == "budget-annexe")
            .cloned()
            .collect()
    };
    eventually(WAIT, "b learns that its version is superseded", || {
        datasets_on_b().is_empty()
    });
    // It holds a withdrawal for its own audience, and nothing of what
    // replaced it.
    let withdrawn = cli_json(b, &["list", "--json", "--all", "--kind", "tombstone"]);
    let notice = withdrawn
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["record"]["record_id"] == "budget-annexe")
        .unwrap_or_else(|| panic!("no withdrawal on b: {withdrawn}"));
    assert_eq!(notice["record"]["visibility"], "public", "{notice}");
    assert!(!has(b, &restricted));
    // On a, the restricted version is current, after the notice.
    let on_a = cli_json(a, &["list", "--json", "--kind", "dataset"]);
    let current = on_a
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["record"]["record_id"] == "budget-annexe")
        .unwrap_or_else(|| panic!("{on_a}"));
    assert_eq!(current["id"], restricted.as_str());
    assert_eq!(current["record"]["version"], 3);
}

/// Item 3: a record is judged by the date its author claims, so a member
/// whose membership expired could date new records inside it. A record
/// first seen more than `replication.late_grace` after the membership
/// covering it expired is refused; when the federation first saw a record
/// travels with it, so a node that joins later still takes the records
/// published in time.
#[test]
fn an_expired_member_cannot_back_date_records() {
    let mut fed = federation(&[TOULOUSE_METROPOLE, COLOMIERS, TOULOUSE]);
    let [chef, member, late] = [
        fed.dirs[0].clone(),
        fed.dirs[1].clone(),
        fed.dirs[2].clone(),
    ];
    // A short grace on the chef de file and on the node that joins late.
    for i in [0, 2] {
        let config = fed.dirs[i].join("maillage.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        assert!(text.contains("late_grace = \"7days\""), "{text}");
        std::fs::write(
            &config,
            text.replace("late_grace = \"7days\"", "late_grace = \"1s\""),
        )
        .unwrap();
        fed.nodes[i].kill();
        fed.nodes[i] = start(&fed.dirs[i]);
    }
    let until = maillage_record::now_ms() + 6_000;
    publish_doc(
        &chef,
        json!({"kind": "membership", "record_id": "membre-colomiers",
            "member_key": key(&member), "siren": COLOMIERS.0, "role": "member",
            "valid_until_ms": until}),
    );
    peer(&chef, "member", &member);
    peer(&member, "chef", &chef);
    trust(&member, &chef);
    let in_time = publish_doc(
        &member,
        dataset("releves-2026", "Relevés publiés à temps", json!({})),
    );
    eventually(
        WAIT,
        "a record published in time reaches the chef de file",
        || has(&chef, &in_time),
    );

    // The membership expires; the grace passes.
    while maillage_record::now_ms() < until + 2_500 {
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut back_dated = record(
        "releves-antidates",
        1,
        Visibility::Public,
        Body::Dataset(Dataset::new(
            "Relevés antidatés",
            "Publiés après la fin de l'adhésion",
        )),
    );
    back_dated.issued_at_ms = until - 3_000;
    let back_dated = publish_signed(&member, &back_dated);
    sync(&chef, "member");
    assert!(
        !has(&chef, &back_dated),
        "an expired member's back-dated record was accepted"
    );

    // A node that joins now takes the record published in time: the chef
    // de file says when it first saw it.
    trust(&late, &chef);
    peer(&late, "chef", &chef);
    peer(&chef, "late", &late);
    sync(&late, "chef");
    eventually(
        WAIT,
        "the record published in time reaches the late node",
        || has(&late, &in_time),
    );
}

/// The quarantine stays bounded: a pinned peer gets no more than its share;
/// what a full quarantine turned away is not fetched at every sync, but
/// again once room is made; the operator lists, drops and purges.
#[test]
fn the_quarantine_stays_bounded_and_the_operator_empties_it() {
    let mut fed = federation(&[TOULOUSE_METROPOLE, BLAGNAC]);
    let [a, b] = [fed.dirs[0].clone(), fed.dirs[1].clone()];
    let config = a.join("maillage.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("quarantine_per_peer = 20000", "quarantine_per_peer = 5"),
    )
    .unwrap();
    fed.nodes[0].kill();
    fed.nodes[0] = start(&a);
    // a pins b but does not trust it: b's records wait.
    peer(&a, "b", &b);
    peer(&b, "a", &a);
    for i in 0..10 {
        publish_doc(
            &b,
            dataset(&format!("jeu-{i}"), &format!("Jeu {i}"), json!({})),
        );
    }
    let first = cli_json(&a, &["sync", "--json", "b"]);
    assert_eq!(first[0]["quarantined"], 5, "{first}");
    assert_eq!(first[0]["rejected"], 6, "{first}");
    // Turned away, they are not fetched again at the next sync.
    let again = cli_json(&a, &["sync", "--json", "b"]);
    assert_eq!(again[0]["quarantined"], 0, "{again}");
    assert_eq!(again[0]["rejected"], 0, "{again}");

    // The list says how large and how old, and the limits.
    let listed = cli_json(&a, &["quarantine", "list", "--json"]);
    assert_eq!(listed["total"], 5, "{listed}");
    assert_eq!(listed["limits"]["per_peer"], 5, "{listed}");
    let records = listed["records"].as_array().unwrap();
    assert!(
        records.iter().all(|r| r["bytes"].as_u64().unwrap() > 100),
        "{listed}"
    );
    assert!(listed["bytes"].as_u64().unwrap() > 500, "{listed}");
    // Dropping one makes room: what was turned away comes at the next sync.
    let one = records[0]["id"].as_str().unwrap();
    let dropped = cli_json(&a, &["quarantine", "drop", "--json", one]);
    assert_eq!(dropped["dropped"], 1);
    let refill = cli_json(&a, &["sync", "--json", "b"]);
    assert_eq!(refill[0]["quarantined"], 1, "{refill}");
    // Purged, and still so after a restart.
    let purged = cli_json(&a, &["quarantine", "purge", "--json"]);
    assert_eq!(purged["dropped"], 5);
    // (b unpinned meanwhile: a restarted node syncs at once, and b's
    // records, still untrusted, would come back to the quarantine.)
    assert!(cli(&a, &["peer", "remove", "b"]).status.success());
    fed.nodes[0].kill();
    fed.nodes[0] = start(&a);
    assert_eq!(cli_json(&a, &["quarantine", "list", "--json"])["total"], 0);
    peer(&a, "b", &b);
    // Nothing to drop is said so.
    let out = cli(&a, &["quarantine", "drop", "pas-un-id"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("'pas-un-id'"));
    // Trusting b now: released by a sync, not before.
    trust(&a, &b);
    sync(&a, "b");
    eventually(WAIT, "b's records are accepted once trusted", || {
        cli_json(&a, &["list", "--json", "--author", &key(&b)])
            .as_array()
            .is_some_and(|l| l.len() == 11)
    });
}

/// Key lifecycle, rotation: a member hands its key over. Its peers follow
/// the succession by themselves (pins, membership, SIREN); its catalogue
/// continues under the new key; a record the former key signs afterwards
/// is refused.
#[test]
fn a_rotated_key_is_followed_by_the_federation() {
    let mut fed = federation(&[TOULOUSE_METROPOLE, COLOMIERS, BLAGNAC]);
    let [chef, member, third] = [
        fed.dirs[0].clone(),
        fed.dirs[1].clone(),
        fed.dirs[2].clone(),
    ];
    let former = key(&member);
    // The third node lets the member's former key publish there: what a
    // thief holding that key could do through a node of its own.
    let config = third.join("maillage.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("authors = []", &format!("authors = [\"{former}\"]")),
    )
    .unwrap();
    fed.nodes[2].kill();
    fed.nodes[2] = start(&third);

    endorse(&chef, "membre-colomiers", &member, COLOMIERS.0);
    for (name, dir) in [("member", &member), ("third", &third)] {
        peer(&chef, name, dir);
        peer(dir, "chef", &chef);
        trust(dir, &chef);
    }
    let before = publish_doc(
        &member,
        dataset("releves-2026", "Relevés de nappe", json!({})),
    );
    eventually(WAIT, "the member's record reaches the others", || {
        has(&chef, &before) && has(&third, &before)
    });

    // The member rotates its key; peers get the succession live, then it
    // restarts with the new key.
    let rotated = cli_json(&member, &["key", "rotate", "--json"]);
    let successor = rotated["public_key"].as_str().unwrap().to_string();
    let succession = rotated["succession"].as_str().unwrap().to_string();
    assert_ne!(successor, former);
    assert!(rotated["records"].as_u64().unwrap() >= 2, "{rotated}");
    eventually(
        WAIT,
        "the succession reaches the chef de file and the third node",
        || has(&chef, &succession) && has(&third, &succession),
    );
    // Until it restarts, the node signs nothing more, and says why.
    let draft = write_doc(&member, "late.json", dataset("tardif", "Tardif", json!({})));
    let out = cli(&member, &["publish", draft.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("restart the node"));
    fed.nodes[1].kill();
    fed.nodes[1] = start(&member);
    assert_eq!(key(&member), successor);

    // The chef de file pinned the new key by itself, and syncs with it.
    eventually(WAIT, "the chef de file pins the new key", || {
        peer_entry(&chef, "member")["key"] == successor.as_str()
    });
    sync(&chef, "member");
    sync(&member, "chef");
    let on_chef = peer_entry(&chef, "member");
    assert_eq!(on_chef["siren"], COLOMIERS.0, "{on_chef}");
    assert_eq!(on_chef["siren_source"], "membership", "{on_chef}");
    // The new key's records are accepted everywhere (the membership of the
    // former key carries over), and the catalogue continues under it.
    let after = publish_doc(&member, dataset("releves-2027", "Relevés 2027", json!({})));
    eventually(WAIT, "the new key's record reaches both", || {
        has(&chef, &after) && has(&third, &after)
    });
    let own = cli_json(
        &chef,
        &[
            "list", "--json", "--author", &successor, "--kind", "dataset",
        ],
    );
    let ids: Vec<&str> = own
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"]["record_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"releves-2026") && ids.contains(&"releves-2027"),
        "{own}"
    );
    let left = cli_json(
        &chef,
        &["list", "--json", "--author", &former, "--kind", "dataset"],
    );
    assert_eq!(
        left.as_array().unwrap().len(),
        0,
        "the former key's records are withdrawn: {left}"
    );
    // Records restricted to the member's SIREN reach its new key.
    let secret = publish_doc(
        &chef,
        dataset(
            "conventions",
            "Conventions",
            json!({"visibility": "restricted", "audience": [COLOMIERS.0]}),
        ),
    );
    eventually(WAIT, "a restricted record reaches the new key", || {
        has(&member, &secret)
    });

    // A record the former key signs after the succession is refused.
    let mut stolen = record(
        "faux-releves",
        1,
        Visibility::Public,
        Body::Dataset(Dataset::new("Faux relevés", "Signés avec l'ancienne clé")),
    );
    stolen.issued_at_ms = maillage_record::now_ms();
    let retired = std::fs::read_dir(&member)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("organisation.key.retired-"))
        .expect("the former key is kept beside the new one");
    let old_key = keyfile::read(&retired).unwrap();
    let forged = envelope::sign(&old_key, &stolen).unwrap();
    let file = third.with_extension("stolen.envelope");
    std::fs::write(&file, forged.envelope_bytes()).unwrap();
    let out = cli(&third, &["publish", "--signed", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sync(&chef, "third");
    assert!(
        !has(&chef, &forged.id().to_hex()),
        "a record signed by a key after its succession was accepted"
    );
}

/// Key lifecycle, revocation: the committee says a member's key is
/// compromised since a time. Later records are refused everywhere; earlier
/// ones are kept and flagged; the key is no longer pinned.
#[test]
fn a_revoked_key_is_refused_from_its_compromise_on() {
    let (_fed, chef, member) = chef_and_member();
    let (chef, member) = (&chef, &member);
    let before = publish_doc(
        member,
        dataset("releves-2026", "Relevés de nappe", json!({})),
    );
    eventually(WAIT, "the member's record reaches the chef de file", || {
        has(chef, &before)
    });

    let since = maillage_record::now_ms();
    publish_doc(
        chef,
        json!({"kind": "revocation", "record_id": "revocation-colomiers",
            "key": key(member), "compromised_since_ms": since,
            "reason": "clé copiée lors d'un incident"}),
    );
    eventually(WAIT, "the chef de file unpins the revoked key", || {
        peer_entry(chef, "member")["state"] == "revoked"
    });
    assert!(
        !cli(member, &["sync", "chef"]).status.success(),
        "a revoked key still connects"
    );
    let after = publish_doc(member, dataset("releves-2027", "Relevés 2027", json!({})));
    let _ = cli(chef, &["sync", "member"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!has(chef, &after), "a record of a revoked key was accepted");
    assert!(
        has(chef, &before),
        "a record from before the compromise was dropped"
    );
    // The earlier record is flagged in search.
    eventually(WAIT, "the earlier record is searchable", || {
        cli_json(chef, &["search", "--json", "nappe"])["hits"]
            .as_array()
            .is_some_and(|h| !h.is_empty())
    });
    let hit = cli_json(chef, &["search", "--json", "nappe"])["hits"][0].clone();
    assert_eq!(hit["author_trust"], "revoked", "{hit}");
}

/// Key lifecycle, the operator's tools: a committee keeps its root key off
/// the server (`maillage sign` elsewhere, then `publish --signed`), and a
/// record is withdrawn without writing a tombstone by hand.
#[test]
fn an_offline_root_endorses_and_withdraw_needs_no_json() {
    let mut fed = federation(&[TOULOUSE_METROPOLE, COLOMIERS]);
    let [chef, member] = [&fed.dirs[0].clone(), &fed.dirs[1].clone()];
    // The committee's root key lives in a file off the server.
    let root_file = chef.with_extension("root.key");
    let root = keyfile::generate().unwrap();
    keyfile::write_new(&root_file, &root).unwrap();
    let root_key = PublicKey(root.verifying_key().to_bytes()).to_hex();
    // Offline, a version must be given: no node says which comes next.
    let draft = write_doc(
        chef,
        "offline.json",
        json!({"kind": "membership", "record_id": "membre-colomiers",
            "member_key": key(member), "siren": COLOMIERS.0, "role": "member"}),
    );
    let offline = |args: &[&str]| {
        std::process::Command::new(crate::support::bin("maillage"))
            .args(args)
            .env_remove("MAILLAGE_DIR")
            .output()
            .unwrap()
    };
    let out = offline(&[
        "sign",
        draft.to_str().unwrap(),
        "--key",
        root_file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"version\""));
    let draft = write_doc(
        chef,
        "offline.json",
        json!({"kind": "membership", "record_id": "membre-colomiers", "version": 1,
            "member_key": key(member), "siren": COLOMIERS.0, "role": "member"}),
    );
    let envelope_file = chef.with_extension("offline.envelope");
    let out = offline(&[
        "sign",
        draft.to_str().unwrap(),
        "--key",
        root_file.to_str().unwrap(),
        "--out",
        envelope_file.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(signed["author"], root_key.as_str());
    // The node publishes it once its operator allows the root key, and
    // trusts the root: the member's records are then accepted.
    let config = chef.join("maillage.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("authors = []", &format!("authors = [\"{root_key}\"]")),
    )
    .unwrap();
    fed.nodes[0].kill();
    fed.nodes[0] = start(chef);
    let out = cli(
        chef,
        &["publish", "--signed", envelope_file.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        cli(chef, &["trust", "add-root", &root_key])
            .status
            .success()
    );
    peer(chef, "member", member);
    peer(member, "chef", chef);
    let from_member = publish_doc(member, dataset("releves", "Relevés", json!({})));
    eventually(
        WAIT,
        "the offline root's membership trusts the member",
        || has(chef, &from_member),
    );

    // Withdrawing: by record_id, with a reason; twice is refused, and so is
    // a record that does not exist.
    let out = cli_json(
        member,
        &[
            "withdraw",
            "releves",
            "--reason",
            "erreur de saisie",
            "--json",
        ],
    );
    assert_eq!(out["version"], 2, "{out}");
    let again = cli(member, &["withdraw", "releves"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already withdrawn"));
    let typo = cli(member, &["withdraw", "relevez"]);
    assert!(!typo.status.success());
    assert!(String::from_utf8_lossy(&typo.stderr).contains("no record 'relevez'"));
    eventually(WAIT, "the withdrawal reaches the chef de file", || {
        cli_json(
            chef,
            &[
                "list",
                "--json",
                "--kind",
                "dataset",
                "--author",
                &key(member),
            ],
        )
        .as_array()
        .is_some_and(|l| l.is_empty())
    });
}

/// Every transition on a five-node federation, with records and the
/// memberships, successions and revocations that decide them arriving in
/// whatever order the chain brings them, and the same after every node
/// restarts: the committee rotates its key, renews a membership, revokes a
/// member's key; all nodes end with the same records.
#[test]
fn five_nodes_agree_through_rotation_renewal_and_revocation() {
    const DEPARTEMENT: (&str, &str) = (
        "223100017",
        "Comité territorial de la donnée de Haute-Garonne",
    );
    let mut fed = federation(&[
        DEPARTEMENT,
        TOULOUSE_METROPOLE,
        COLOMIERS,
        BLAGNAC,
        TOULOUSE,
    ]);
    let dirs = fed.dirs.clone();
    let [committee, chef, a, b, d] = [&dirs[0], &dirs[1], &dirs[2], &dirs[3], &dirs[4]];
    for n in [chef, a, b, d] {
        trust(n, committee);
    }
    // A chain: committee - chef - {a, b, d}.
    peer(committee, "chef", chef);
    peer(chef, "committee", committee);
    for (name, n) in [("a", a), ("b", b), ("d", d)] {
        peer(chef, name, n);
        peer(n, "chef", chef);
    }
    let soon = maillage_record::now_ms() + 3_600_000;
    for (id, n, siren, until) in [
        ("membre-chef", chef, TOULOUSE_METROPOLE.0, 0),
        ("membre-a", a, COLOMIERS.0, 0),
        ("membre-b", b, BLAGNAC.0, soon),
        ("membre-d", d, TOULOUSE.0, 0),
    ] {
        publish_doc(
            committee,
            json!({"kind": "membership", "record_id": id, "member_key": key(n),
                "siren": siren, "role": "member", "valid_until_ms": until}),
        );
    }
    let first = publish_doc(a, dataset("a-2026", "Données de Colomiers 2026", json!({})));
    eventually(WAIT, "a's record reaches every node", || {
        dirs.iter().all(|n| has(n, &first))
    });

    // The committee rotates its key, then restarts with it.
    let rotated = cli_json(committee, &["key", "rotate", "--json"]);
    let succession = rotated["succession"].as_str().unwrap().to_string();
    eventually(WAIT, "the succession reaches every node", || {
        dirs.iter().all(|n| has(n, &succession))
    });
    fed.nodes[0].kill();
    fed.nodes[0] = start(committee);
    // It renews b's membership under its new key.
    publish_doc(
        committee,
        json!({"kind": "membership", "record_id": "membre-b", "member_key": key(b),
            "siren": BLAGNAC.0, "role": "member", "valid_until_ms": soon + 3_600_000}),
    );
    let second = publish_doc(a, dataset("a-2027", "Données de Colomiers 2027", json!({})));
    let from_b = publish_doc(b, dataset("b-2027", "Données de Blagnac 2027", json!({})));
    eventually(
        WAIT,
        "records after the committee's rotation reach every node",
        || dirs.iter().all(|n| has(n, &second) && has(n, &from_b)),
    );

    // The committee revokes b's key.
    publish_doc(
        committee,
        json!({"kind": "revocation", "record_id": "revocation-b", "key": key(b),
            "compromised_since_ms": maillage_record::now_ms(), "reason": "poste compromis"}),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let after_revocation = publish_doc(b, dataset("b-faux", "Après la révocation", json!({})));
    let third = publish_doc(a, dataset("a-2028", "Données de Colomiers 2028", json!({})));
    eventually(WAIT, "a's next record reaches every node", || {
        dirs.iter().all(|n| has(n, &third))
    });
    for n in [committee, chef, a, d] {
        let _ = cli(n, &["sync"]);
        assert!(
            !has(n, &after_revocation),
            "{} took a revoked key's record",
            n.display()
        );
    }

    // Every node restarts; they still agree.
    for (node, dir) in fed.nodes.iter_mut().zip(&dirs) {
        node.kill();
        *node = start(dir);
    }
    let datasets = |n: &Path| -> Vec<String> {
        let mut ids: Vec<String> = cli_json(n, &["list", "--json", "--kind", "dataset"])
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let on_chef = datasets(chef);
    assert!(
        on_chef.contains(&third) && on_chef.contains(&from_b),
        "{on_chef:?}"
    );
    assert!(!on_chef.contains(&after_revocation));
    for n in [committee, a, d] {
        assert_eq!(datasets(n), on_chef, "{} disagrees", n.display());
    }
    let fourth = publish_doc(a, dataset("a-2029", "Données de Colomiers 2029", json!({})));
    eventually(
        WAIT,
        "after the restarts, a's records still reach every node",
        || [committee, chef, d].iter().all(|n| has(n, &fourth)),
    );
}

/// Key lifecycle, recovery: a member lost its key. It makes a new node,
/// whose key consents to succeed the lost one; the chef de file (its
/// committee here) publishes the succession. The new key inherits the
/// membership and the pin, with no operator action on the peers.
#[test]
fn a_committee_recovers_a_lost_key() {
    let (fed, chef, member) = chef_and_member();
    let lost = key(&member);
    let before = publish_doc(
        &member,
        dataset("releves-2026", "Relevés de nappe", json!({})),
    );
    eventually(WAIT, "the member's record reaches the chef de file", || {
        has(&chef, &before)
    });
    // The member's server is gone with its key; a new one is made.
    drop(fed);
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("nouveau");
    crate::support::init(&fresh, COLOMIERS.0, COLOMIERS.1);
    let consent = cli(
        &fresh,
        &[
            "key",
            "consent",
            &lost,
            "--key",
            fresh.join("organisation.key").to_str().unwrap(),
            "--json",
        ],
    );
    assert!(
        consent.status.success(),
        "{}",
        String::from_utf8_lossy(&consent.stderr)
    );
    let record: Value = serde_json::from_slice(&consent.stdout).unwrap();
    // Another chef de file, since the first federation is gone: it endorsed
    // the lost key, then recovers it.
    let fed2 = federation(&[TOULOUSE_METROPOLE]);
    let chef2 = &fed2.dirs[0];
    endorse_key(chef2, "membre-colomiers", &lost, COLOMIERS.0);
    let _node = start(&fresh);
    let new_key = key(&fresh);
    assert_eq!(record["successor"], new_key.as_str());
    // Pinned under the lost key, as before the loss.
    let url = format!("https://{}", crate::support::grpc(&fresh));
    let out = cli(chef2, &["peer", "add", "member", &url, "--key", &lost]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    peer(&fresh, "chef", chef2);
    trust(&fresh, chef2);
    publish_doc(chef2, record);
    eventually(
        WAIT,
        "the chef de file re-pins the member's new key",
        || peer_entry(chef2, "member")["key"] == new_key.as_str(),
    );
    let after = publish_doc(&fresh, dataset("releves-2027", "Relevés 2027", json!({})));
    sync(chef2, "member");
    eventually(
        WAIT,
        "the new key's records are accepted as the member's",
        || has(chef2, &after),
    );
    assert_eq!(peer_entry(chef2, "member")["siren"], COLOMIERS.0);
    // Without the new key's consent, a succession is refused.
    let forged = json!({"kind": "succession", "record_id": "succession-forgee",
        "predecessor": lost, "successor": key(chef2), "successor_signature": "00".repeat(64)});
    let file = write_doc(chef2, "forged-succession.json", forged);
    let out = cli(chef2, &["publish", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("successor_signature"));
}

/// `by` endorses `member_key` (a key, not a running node) for `siren`.
fn endorse_key(by: &Path, record_id: &str, member_key: &str, siren: &str) -> String {
    publish_doc(
        by,
        json!({
            "kind": "membership",
            "record_id": record_id,
            "member_key": member_key,
            "siren": siren,
            "role": "member",
        }),
    )
}
