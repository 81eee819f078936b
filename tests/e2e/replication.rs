//! Replication between real node processes over mutual TLS on 127.0.0.1.

use std::path::Path;
use std::time::Duration;

use crate::support::{
    cli, cli_json, eventually, example, federation, grpc, has, key, peer, peer_with_siren, publish,
    start, trust, write_doc,
};

// Real organisations from data/collectivites.csv.
const TOULOUSE_METROPOLE: (&str, &str) = ("243100518", "Toulouse Métropole");
const TOULOUSE: (&str, &str) = ("213105554", "Toulouse");
const COLOMIERS: (&str, &str) = ("213101496", "Colomiers");
const BLAGNAC: (&str, &str) = ("213100696", "Blagnac");

#[test]
fn chain_of_three_converges_both_ways_and_keeps_restricted_records_in_their_audience() {
    let fed = federation(&[TOULOUSE_METROPOLE, TOULOUSE, COLOMIERS]);
    let [a, b, c] = [&fed.dirs[0], &fed.dirs[1], &fed.dirs[2]];
    for x in [a, b, c] {
        for y in [a, b, c] {
            if x != y {
                trust(x, y);
            }
        }
    }
    // a - b - c: a and c never talk directly; b relays.
    peer(a, "b", b);
    peer(b, "a", a);
    peer(b, "c", c);
    peer(c, "b", b);

    let from_c = publish(c, Path::new(&example("dataset.json")));
    eventually(
        Duration::from_secs(10),
        "c's record reaches a through b",
        || has(a, &from_c),
    );
    let from_a = publish(a, Path::new(&example("project.json")));
    eventually(
        Duration::from_secs(10),
        "a's record reaches c through b",
        || has(c, &from_a),
    );
    // The author is verified wherever the record lands.
    let got = cli_json(a, &["get", "--json", &from_c]);
    assert_eq!(got["author"].as_str().unwrap(), key(c), "{got}");

    // A record b restricts to Colomiers reaches c, and never a: not even its id.
    let restricted = write_doc(
        b,
        "restricted.json",
        serde_json::json!({
            "kind": "dataset",
            "record_id": "conventions-colomiers",
            "title": "Conventions de mutualisation avec Colomiers",
            "description": "Réservé à la commune de Colomiers.",
            "visibility": "restricted",
            "audience": [COLOMIERS.0],
        }),
    );
    // Every node's Organisation record, which claims its SIREN, reaches b.
    // Each node is a trust root for the others here, so its own claim is
    // vouched for (a root could sign a membership for itself).
    eventually(
        Duration::from_secs(10),
        "the organisation records reach b",
        || {
            cli_json(b, &["list", "--json", "--kind", "organisation"])
                .as_array()
                .unwrap()
                .len()
                == 3
        },
    );
    // b's operator also vouches for c's SIREN (pinning c again).
    // A mistyped SIREN is refused, and changes nothing.
    let url = format!("https://{}", grpc(c));
    let mistyped = cli(
        b,
        &[
            "peer",
            "add",
            "c",
            &url,
            "--key",
            &key(c),
            "--siren",
            "213101497",
        ],
    );
    assert!(!mistyped.status.success());
    let said = String::from_utf8_lossy(&mistyped.stderr);
    assert!(
        said.contains("'213101497'") && said.contains("Luhn"),
        "{said}"
    );
    let peers = cli_json(b, &["peer", "list", "--json"]);
    let c_on_b = peers.as_array().unwrap().iter().find(|p| p["name"] == "c");
    assert_eq!(c_on_b.unwrap()["siren_source"], "root", "{peers}");
    peer_with_siren(b, "c", c, COLOMIERS.0);
    let secret = publish(b, &restricted);
    let for_a = write_doc(
        b,
        "restricted-a.json",
        serde_json::json!({
            "kind": "dataset",
            "record_id": "conventions-metropole",
            "title": "Conventions avec la métropole",
            "description": "Réservé à Toulouse Métropole.",
            "visibility": "restricted",
            "audience": [TOULOUSE_METROPOLE.0],
        }),
    );
    let for_a = publish(b, &for_a);
    eventually(
        Duration::from_secs(10),
        "the restricted record reaches c",
        || has(c, &secret),
    );
    // The record restricted to a's SIREN reaches a, and only a.
    eventually(
        Duration::from_secs(10),
        "the record restricted to a reaches it",
        || has(a, &for_a),
    );
    assert!(
        !has(a, &secret),
        "a restricted record reached a peer outside its audience"
    );
    let listed = cli_json(a, &["list", "--json", "--all"]).to_string();
    assert!(!listed.contains("conventions-colomiers"));
    // b's operator sees which SIREN each peer is served for, and why.
    let peers = cli_json(b, &["peer", "list", "--json"]);
    let on_b = |name: &str| {
        peers
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(on_b("c")["siren"], COLOMIERS.0, "{peers}");
    assert_eq!(on_b("c")["siren_source"], "operator", "{peers}");
    assert_eq!(on_b("a")["siren"], TOULOUSE_METROPOLE.0, "{peers}");
    assert_eq!(on_b("a")["siren_source"], "root", "{peers}");

    // Converged: a and c each hold all but the other's restricted record.
    let count = |d: &Path| {
        cli_json(d, &["status", "--json"])["envelopes"]
            .as_u64()
            .unwrap()
    };
    eventually(Duration::from_secs(10), "a, b and c converge", || {
        count(a) + 1 == count(b) && count(c) + 1 == count(b)
    });
    assert!(!has(c, &for_a), "c got a record restricted to a");

    // b withdraws the record restricted to Colomiers with a tombstone that
    // names no visibility (which JSON reads as public): it takes the
    // record's, reaches c, and tells a nothing.
    let withdrawal = write_doc(
        b,
        "withdraw.json",
        serde_json::json!({
            "kind": "tombstone",
            "record_id": "conventions-colomiers",
            "reason": "Convention terminée",
        }),
    );
    let withdrawn = publish(b, &withdrawal);
    let got = cli_json(b, &["get", "--json", &withdrawn]);
    assert_eq!(got["record"]["visibility"], "restricted", "{got}");
    assert_eq!(got["record"]["audience"][0], COLOMIERS.0, "{got}");
    eventually(Duration::from_secs(10), "the withdrawal reaches c", || {
        has(c, &withdrawn)
    });
    // a reconciles with b until it lacks nothing it may see. The restricted
    // record and its withdrawal must not even be offered: an offered id
    // would be needed on every sync and never received.
    eventually(
        Duration::from_secs(10),
        "a's syncs with b offer only what a may see",
        || {
            let sync = cli_json(a, &["sync", "--json", "b"]);
            sync[0]["ok"] == true && sync[0]["need"] == 0
        },
    );
    assert!(
        !has(a, &withdrawn),
        "a withdrawal reached a peer outside the audience"
    );
    assert!(
        !has(a, &secret),
        "a restricted record reached a peer outside its audience"
    );
    let peers = cli_json(b, &["peer", "list", "--json"]);
    for p in peers.as_array().unwrap() {
        assert_eq!(p["state"], "ok", "{peers}");
        assert_eq!(p["subscribed"], true, "{peers}");
    }
}

#[test]
fn unpinned_key_is_refused_and_untrusted_authors_wait_in_quarantine() {
    let fed = federation(&[TOULOUSE_METROPOLE, TOULOUSE, BLAGNAC]);
    let [a, b, stranger] = [&fed.dirs[0], &fed.dirs[1], &fed.dirs[2]];

    // The stranger pins a, but a never pinned the stranger: a refuses it.
    peer(stranger, "a", a);
    let out = cli(stranger, &["sync", "a"]);
    assert!(!out.status.success());
    let err =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pinned"), "{err}");
    let a_own = cli_json(a, &["list", "--json"]);
    let a_org = a_own[0]["id"].as_str().unwrap().to_string();
    assert!(!has(stranger, &a_org));

    // a pins b but does not trust b yet: b's records wait in quarantine.
    peer(a, "b", b);
    peer(b, "a", a);
    let from_b = publish(b, Path::new(&example("dataset.json")));
    let sync = cli_json(a, &["sync", "--json", "b"]);
    assert_eq!(sync[0]["ok"], true, "{sync}");
    eventually(
        Duration::from_secs(10),
        "b's records quarantined on a",
        || cli_json(a, &["quarantine", "list", "--json"])["total"].as_u64() == Some(2),
    );
    assert!(!has(a, &from_b));
    let q = cli_json(a, &["quarantine", "list", "--json"]);
    let waiting = q["records"].as_array().unwrap();
    assert!(
        waiting
            .iter()
            .any(|r| r["record_id"] == "budget-primitif-2026" && r["from"] == "b"),
        "{q}"
    );

    // Trusting b releases them, verified again.
    let released = cli_json(a, &["trust", "add-root", "--json", &key(b)]);
    assert_eq!(released["released"], 2, "{released}");
    assert!(has(a, &from_b));
    assert_eq!(cli_json(a, &["quarantine", "list", "--json"])["total"], 0);
    // Released, it says which peer relayed it, as if it had not waited.
    eventually(
        Duration::from_secs(10),
        "the released record is searchable, relayed by b",
        || {
            let got = cli_json(a, &["search", "--json", "budget"]);
            got["hits"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["record_id"] == "budget-primitif-2026" && h["relayed_by"] == "b")
        },
    );
    // And from now on b's records arrive live.
    let next = publish(b, Path::new(&example("project.json")));
    eventually(
        Duration::from_secs(10),
        "b's next record reaches a live",
        || has(a, &next),
    );

    // Unpinned, b is refused from the next connection on.
    assert!(cli(a, &["peer", "remove", "b"]).status.success());
    let out = cli(b, &["sync", "a"]);
    assert!(!out.status.success(), "a removed peer could still sync");
    let unknown = cli(a, &["peer", "remove", "b"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no peer named 'b'"));
}

/// Publishes dataset number `i` on `dir`; returns its id.
fn publish_numbered(dir: &Path, i: usize) -> String {
    let doc = write_doc(
        dir,
        &format!("d{i}.json"),
        serde_json::json!({
            "kind": "dataset",
            "record_id": format!("jeu-{i}"),
            "title": format!("Jeu de données {i}"),
            "description": "Données de test de la réplication.",
        }),
    );
    publish(dir, &doc)
}

#[test]
fn restart_resumes_without_loss_or_duplicates() {
    let mut fed = federation(&[TOULOUSE_METROPOLE, TOULOUSE]);
    let (a, b) = (&fed.dirs[0].clone(), &fed.dirs[1].clone());
    trust(a, b);
    trust(b, a);
    peer(a, "b", b);
    peer(b, "a", a);
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(publish_numbered(b, i));
    }
    // kill -9 a while it may be mid-sync, then restart it: peers and trust
    // are kept, and the sync completes.
    fed.nodes[0].kill();
    for i in 30..40 {
        ids.push(publish_numbered(b, i));
    }
    fed.nodes[0] = start(a);
    eventually(
        Duration::from_secs(15),
        "every record of b reaches a after restart",
        || ids.iter().all(|id| has(a, id)),
    );
    let sa = cli_json(a, &["status", "--json"]);
    let sb = cli_json(b, &["status", "--json"]);
    assert_eq!(
        sa["envelopes"], sb["envelopes"],
        "no duplicates, nothing missing"
    );
    let sync = cli_json(a, &["sync", "--json"]);
    assert_eq!(sync[0]["need"], 0, "{sync}");
    assert_eq!(sync[0]["have"], 0, "{sync}");
    assert_eq!(
        sync[0]["round_trips"], 1,
        "identical sets reconcile in one round trip: {sync}"
    );
}

/// A first sync of thousands of records, several fetch batches long, is
/// cut by kill -9 halfway; the restarted node finishes it with nothing lost
/// and nothing twice.
#[test]
fn a_first_sync_killed_halfway_resumes_without_loss_or_duplicates() {
    let mut fed = federation(&[TOULOUSE, TOULOUSE_METROPOLE]);
    let (a, b) = (&fed.dirs[0].clone(), &fed.dirs[1].clone());
    trust(a, b);
    // The métropole's library of AI projects: thousands of rows, imported
    // (and signed) on b before a ever connects.
    let mut csv = String::from(
        "Nom_collectivite,Nom_du_projet,SIRET,Type_de_collectivite,Statut_du_projet,Description_service,Theme\n",
    );
    for i in 0..6000 {
        csv.push_str(&format!(
            "Toulouse Métropole,Projet numéro {i},24310051800014,Métropole,En expérimentation,\
             Un assistant pour le service {i}.,Administration et organisation interne\n"
        ));
    }
    let file = b.join("projets.csv");
    std::fs::write(&file, csv).unwrap();
    let out = cli(b, &["import", "bibliotheque-ia", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let envelopes = |d: &Path| {
        cli_json(d, &["status", "--json"])["envelopes"]
            .as_u64()
            .unwrap()
    };
    let total = envelopes(b);
    assert!(total > 6000, "{total}");

    // a's own records: its organisation record.
    let before = envelopes(a);
    peer(a, "b", b);
    peer(b, "a", a);
    eventually(
        Duration::from_secs(60),
        "a is halfway through its first sync",
        || envelopes(a) > before + 1000,
    );
    let cut = envelopes(a);
    fed.nodes[0].kill();
    eprintln!("killed a with {cut} of {} records", before + total);
    assert!(
        cut < before + total,
        "the sync ended before the kill ({cut} of {total}): nothing was cut"
    );
    fed.nodes[0] = start(a);
    eventually(
        Duration::from_secs(120),
        "the restarted node finishes the sync",
        || envelopes(a) == before + total,
    );
    // Nothing twice: the sets are equal, and a reconciliation says so; and
    // the change sequence, which numbers every write, counts each record
    // once (a record stored twice would take two numbers).
    let sync = cli_json(a, &["sync", "--json", "b"]);
    // `need` is 0 only if the sync set caught up with the store before its
    // counts showed the records (ledger: `syncable`).
    assert_eq!(sync[0]["need"], 0, "{sync}");
    let status = cli_json(a, &["status", "--json"]);
    assert_eq!(status["envelopes"], before + total, "{status}");
    assert_eq!(status["last_seq"], before + total, "{status}");
}

#[test]
fn twenty_nodes_in_a_chain_converge_and_a_partition_heals() {
    // 20 real communes of the Toulouse area, in a chain: the worst diameter.
    let csv = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/collectivites.csv"
    ))
    .unwrap();
    let orgs: Vec<(String, String)> = csv
        .lines()
        .filter(|l| l.ends_with(",243100518") && l.contains(",commune,"))
        .take(20)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[3].to_string())
        })
        .collect();
    assert_eq!(orgs.len(), 20);
    let refs: Vec<(&str, &str)> = orgs.iter().map(|(s, n)| (s.as_str(), n.as_str())).collect();
    let mut fed = federation(&refs);
    let dirs = fed.dirs.clone();
    let keys: Vec<String> = dirs.iter().map(|d| key(d)).collect();
    for d in &dirs {
        for k in &keys {
            assert!(cli(d, &["trust", "add-root", k]).status.success());
        }
    }
    for i in 0..19 {
        peer(&dirs[i], &format!("n{}", i + 1), &dirs[i + 1]);
        peer(&dirs[i + 1], &format!("n{i}"), &dirs[i]);
    }
    let envelopes = |d: &Path| {
        cli_json(d, &["status", "--json"])["envelopes"]
            .as_u64()
            .unwrap()
    };
    eventually(
        Duration::from_secs(30),
        "20 organisation records everywhere",
        || dirs.iter().all(|d| envelopes(d) == 20),
    );

    // Partition: the middle node goes down; each side publishes.
    fed.nodes[10].kill();
    let left = publish(&dirs[0], Path::new(&example("dataset.json")));
    let right = publish(&dirs[19], Path::new(&example("project.json")));
    eventually(
        Duration::from_secs(10),
        "each side sees its own record",
        || has(&dirs[9], &left) && has(&dirs[11], &right),
    );
    assert!(!has(&dirs[9], &right) && !has(&dirs[11], &left));

    // Heal: the middle node comes back; every node converges to the same 22.
    fed.nodes[10] = start(&dirs[10]);
    eventually(
        Duration::from_secs(30),
        "the healed chain converges",
        || dirs.iter().all(|d| envelopes(d) == 22),
    );
    assert!(has(&dirs[0], &right) && has(&dirs[19], &left));
}

#[test]
fn a_record_that_arrives_before_its_authors_membership_waits_then_is_accepted() {
    // A committee (trusted as root by the chef de file), the chef de file, and
    // a member commune that nobody trusts directly.
    let fed = federation(&[BLAGNAC, TOULOUSE_METROPOLE, COLOMIERS]);
    let [committee, chef, member] = [&fed.dirs[0], &fed.dirs[1], &fed.dirs[2]];
    trust(chef, committee);
    peer(chef, "committee", committee);
    peer(committee, "chef", chef);
    peer(chef, "member", member);
    peer(member, "chef", chef);

    // The member's record reaches the chef de file first: it waits.
    let from_member = publish(member, Path::new(&example("dataset.json")));
    eventually(
        Duration::from_secs(10),
        "the member's records are quarantined",
        || cli_json(chef, &["quarantine", "list", "--json"])["total"].as_u64() == Some(2),
    );
    assert!(!has(chef, &from_member));

    // Then the committee endorses the member's key: the waiting records are
    // verified again and accepted, and the member's SIREN is now vouched for.
    let membership = write_doc(
        committee,
        "membership.json",
        serde_json::json!({
            "kind": "membership",
            "record_id": "membre-colomiers",
            "member_key": key(member),
            "siren": COLOMIERS.0,
            "role": "member",
        }),
    );
    let endorsement = publish(committee, &membership);
    eventually(
        Duration::from_secs(10),
        "the membership releases the member's records",
        || has(chef, &endorsement) && has(chef, &from_member),
    );
    // The release stores the records, then empties the quarantine.
    eventually(
        Duration::from_secs(10),
        "the quarantine is empty once the records are released",
        || cli_json(chef, &["quarantine", "list", "--json"])["total"] == 0,
    );
    // And from now on its records are accepted live.
    let next = publish(member, Path::new(&example("project.json")));
    eventually(
        Duration::from_secs(10),
        "the member's next record is accepted live",
        || has(chef, &next),
    );

    // Records the chef de file restricts to the member's SIREN reach it
    // (once the member accepts the chef de file's records)...
    trust(member, chef);
    let restricted = |n: &str| {
        let doc = write_doc(
            chef,
            &format!("{n}.json"),
            serde_json::json!({
                "kind": "dataset",
                "record_id": n,
                "title": "Conventions avec Colomiers",
                "description": "Réservé à la commune de Colomiers.",
                "visibility": "restricted",
                "audience": [COLOMIERS.0],
            }),
        );
        publish(chef, &doc)
    };
    let before = restricted("conventions-2026");
    eventually(
        Duration::from_secs(10),
        "the member receives its restricted record",
        || has(member, &before),
    );
    // ...until the committee withdraws its membership. The member's own
    // Organisation record still claims the SIREN; that is not enough.
    let withdrawal = write_doc(
        committee,
        "withdrawal.json",
        serde_json::json!({"kind": "tombstone", "record_id": "membre-colomiers",
            "reason": "a quitté le groupement"}),
    );
    let withdrawal = publish(committee, &withdrawal);
    eventually(
        Duration::from_secs(10),
        "the withdrawal reaches the chef de file",
        || has(chef, &withdrawal),
    );
    let after = restricted("conventions-2027");
    let sync = cli_json(member, &["sync", "--json", "chef"]);
    assert_eq!(sync[0]["ok"], true, "{sync}");
    assert!(
        !has(member, &after),
        "a restricted record reached a former member on its own claim of a SIREN"
    );
    let peers = cli_json(chef, &["peer", "list", "--json"]);
    let on_chef = peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "member");
    assert!(on_chef.unwrap()["siren"].is_null(), "{peers}");
}
