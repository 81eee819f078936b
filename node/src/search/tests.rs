//! The index on its own: real tantivy in a temporary directory, documents
//! built from real records as the indexer builds them.

use maillage_record::model::{Agent, Dataset, Project, ProjectDetails, Spatial};
use maillage_record::vocab::{BudgetBand, ProjectStatus, ProjectTheme, RiskCategory};
use maillage_record::{Body, PublicKey, Record, RecordId, Siren, Visibility};

use super::document::{self, Context, Org};
use super::*;
use crate::node::tests::start_node;
use tantivy::TantivyDocument;
use tantivy::query::EnableScoring;
use tantivy::schema::Term;

const LYON_METRO: &str = "200046977";
const BLAGNAC: &str = "213100696"; // Haute-Garonne (31), Occitanie (76)

fn key(n: u8) -> PublicKey {
    PublicKey([n; 32])
}

fn record(id: &str, visibility: Visibility, body: Body) -> Record {
    Record {
        record_id: id.into(),
        version: 1,
        issued_at_ms: 1_764_000_000_000,
        visibility,
        provenance: None,
        body,
    }
}

fn dataset(id: &str, title: &str, description: &str, publisher: &str) -> Record {
    let mut d = Dataset::new(title, description);
    d.publisher = Some(Agent {
        name: String::new(),
        siren: Some(publisher.into()),
        url: None,
    });
    record(id, Visibility::Public, Body::Dataset(d))
}

struct Fixture {
    _dir: tempfile::TempDir,
    search: Search,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let search = Search::open(&dir.path().join("search"), 0).unwrap();
        Fixture { _dir: dir, search }
    }

    /// Indexes records by `author` as the indexer does, and commits.
    fn add(&self, author: PublicKey, org: &Org, recs: &[Record]) {
        let mut writer: tantivy::IndexWriter<TantivyDocument> = self
            .search
            .index
            .writer_with_num_threads(1, 32 << 20)
            .unwrap();
        for (i, r) in recs.iter().enumerate() {
            let cx = Context {
                id: RecordId([i as u8; 32]),
                author,
                author_org: org,
                relayed_by: Some("lyon"),
                received_at_ms: 1,
            };
            writer
                .add_document(document::build(self.search.fields(), r, &cx))
                .unwrap();
        }
        writer.commit().unwrap();
        self.search.reader.reload().unwrap();
    }

    fn find(&self, text: &str, filters: Filters, viewer: &Viewer) -> Results {
        find_in(&self.search, text, filters, viewer)
    }

    fn stats(&self, filters: Filters, by: GroupBy, viewer: &Viewer) -> Stats {
        self.search.stats(&filters, by, viewer, 0).unwrap()
    }

    fn titles(&self, text: &str) -> Vec<String> {
        self.find(text, Filters::default(), &Viewer::Operator)
            .hits
            .into_iter()
            .map(|h| h.title)
            .collect()
    }
}

/// The first page of `text`'s results in `search`.
fn find_in(search: &Search, text: &str, filters: Filters, viewer: &Viewer) -> Results {
    page_in(search, text, filters, viewer, 1)
}

/// Page `page` (20 results each) of `text`'s results in `search`.
fn page_in(search: &Search, text: &str, filters: Filters, viewer: &Viewer, page: usize) -> Results {
    search
        .search(
            &SearchRequest {
                text: text.into(),
                filters,
                page,
                page_size: 20,
            },
            viewer,
            0,
        )
        .unwrap()
}

fn lyon_org() -> Org {
    Org {
        siren: Some(LYON_METRO.into()),
        name: Some("Métropole de Lyon".into()),
    }
}

#[test]
fn accents_case_and_inflections_do_not_matter_and_titles_weigh_more() {
    let f = Fixture::new();
    f.add(
        key(1),
        &lyon_org(),
        &[
            dataset(
                "a",
                "Consommation d'énergie des bâtiments",
                "Relevés annuels",
                LYON_METRO,
            ),
            dataset(
                "b",
                "Pistes cyclables",
                "Aménagements pour les vélos et la mobilité douce",
                LYON_METRO,
            ),
            dataset(
                "c",
                "Arbres d'alignement",
                "Patrimoine arboré; suivi énergétique absent",
                LYON_METRO,
            ),
        ],
    );
    // No accent typed, accent stored; and the other way round.
    assert_eq!(
        f.titles("energie")[0],
        "Consommation d'énergie des bâtiments"
    );
    assert_eq!(
        f.titles("ÉNERGIE")[0],
        "Consommation d'énergie des bâtiments"
    );
    assert_eq!(
        f.titles("batiment"),
        ["Consommation d'énergie des bâtiments"]
    );
    // Plural and singular, and a title word outranks a description word.
    assert_eq!(f.titles("vélo"), ["Pistes cyclables"]);
    assert_eq!(f.titles("mobilites"), ["Pistes cyclables"]);
    assert_eq!(f.titles("piste cyclable"), ["Pistes cyclables"]);
    let arbres = f.titles("arbre");
    assert_eq!(arbres, ["Arbres d'alignement"]);
    // Words are all required; stop words and elisions are not.
    assert!(f.titles("énergie vélo").is_empty());
    assert_eq!(f.titles("l'énergie des bâtiments").len(), 1);
    // A query that is not valid syntax is still searched as words.
    assert_eq!(f.titles("\"pistes (cyclables").len(), 1);
}

/// A hit as `/search` gives it in JSON (serde's, which the HTTP export
/// writes): the id and the author in hex, the kind by its name, read from
/// the index as the indexer wrote them.
#[test]
fn a_hit_s_json_is_as_the_http_export_gives_it() {
    let f = Fixture::new();
    let details = ProjectDetails::new("velo");
    f.add(
        key(3),
        &lyon_org(),
        &[
            dataset("d", "Comptages vélo", "Par jour", LYON_METRO),
            record(
                "velo-details",
                Visibility::Federation,
                Body::ProjectDetails(details),
            ),
        ],
    );
    let only_details = Filters {
        kind: Some(Kind::ProjectDetails),
        ..Filters::default()
    };
    let mut found = f.find("", only_details, &Viewer::Operator);
    assert_eq!(found.hits.len(), 1, "{:?}", found.hits);
    let mut hit = found.hits.remove(0);
    // Tantivy's to give: not what is pinned here.
    hit.score = 1.5;
    let hex = |b: &str| b.repeat(32);
    let want = format!(
        r#"{{
  "id": "{}",
  "record_id": "velo-details",
  "version": 1,
  "kind": "project_details",
  "title": "Détails du projet velo",
  "author": "{}",
  "organisation_siren": "200046977",
  "organisation_name": "Métropole de Lyon",
  "signature_verified": true,
  "author_trust": "",
  "siren_source": "",
  "relayed_by": "lyon",
  "received_at_ms": 1,
  "score": 1.5
}}"#,
        hex("01"),
        hex("03")
    );
    assert_eq!(serde_json::to_string_pretty(&hit).unwrap(), want);
}

#[test]
fn filters_facets_and_territory_hierarchy() {
    let f = Fixture::new();
    let mut spatial = dataset("commune", "Voirie de Lyon 3e", "Voirie", LYON_METRO);
    if let Body::Dataset(d) = &mut spatial.body {
        d.spatial = Some(Spatial {
            insee_codes: vec!["69123".into()],
            granularity: None,
            label: None,
        });
        d.themes = vec!["Mobilités".into()];
    }
    let mut p = Project::new(
        "Chatbot voirie",
        "Un assistant pour la voirie",
        ProjectStatus::Deploiement,
    );
    p.theme = Some(ProjectTheme::Mobility);
    p.risk_category = Some(RiskCategory::Limited);
    p.siret = Some(format!("{BLAGNAC}00011"));
    f.add(
        key(1),
        &lyon_org(),
        &[spatial, record("p", Visibility::Public, Body::Project(p))],
    );

    let all = f.find("voirie", Filters::default(), &Viewer::Operator);
    assert_eq!(all.total, 2);
    let facet = |r: &Results, name: &str| -> Vec<(String, u64)> {
        r.facets[name]
            .iter()
            .map(|b| (b.value.clone(), b.count))
            .collect()
    };
    assert_eq!(
        facet(&all, "kind"),
        [("dataset".to_string(), 1), ("project".to_string(), 1)]
    );
    // Both themes are the same theme, whichever way they were written.
    assert_eq!(facet(&all, "theme"), [("mobilites".to_string(), 2)]);
    assert_eq!(all.facets["theme"][0].label, "Mobilités");
    assert_eq!(
        facet(&all, "territory"),
        [("31".to_string(), 1), ("69".to_string(), 1)]
    );
    assert_eq!(all.facets["territory"][1].label, "Rhône (69)");
    // Equal counts: by name (Blagnac, Métropole de Lyon), not by SIREN.
    assert_eq!(
        facet(&all, "organisation"),
        [(BLAGNAC.to_string(), 1), (LYON_METRO.to_string(), 1)]
    );

    let only = |filters: Filters| -> Vec<String> {
        f.find("", filters, &Viewer::Operator)
            .hits
            .into_iter()
            .map(|h| h.record_id)
            .collect()
    };
    let t = |s: &str| Filters {
        territory: Some(s.into()),
        ..Default::default()
    };
    // The commune's dataset is found from its commune, EPCI, département and
    // région; the project by its organisation's commune (Blagnac).
    for place in ["69123", "epci:200046977", "69", "reg:84"] {
        assert_eq!(only(t(place)), ["commune"], "{place}");
    }
    for place in ["31069", "31", "reg:76"] {
        assert_eq!(only(t(place)), ["p"], "{place}");
    }
    assert!(only(t("75")).is_empty());
    let status = Filters {
        status: Some("En déploiement".into()),
        ..Default::default()
    };
    assert_eq!(only(status), ["p"]);
    let risk = Filters {
        risk: Some("limité".into()),
        kind: Some(maillage_record::Kind::Project),
        ..Default::default()
    };
    assert_eq!(only(risk), ["p"]);
    let org = Filters {
        organisation: Some(format!("{BLAGNAC}00011")),
        ..Default::default()
    };
    assert_eq!(only(org), ["p"]);
    // Bad filters say what is wrong.
    let bad = f.search.search(
        &SearchRequest {
            filters: t("canton:3"),
            ..Default::default()
        },
        &Viewer::Operator,
        0,
    );
    assert!(matches!(bad, Err(SearchError::BadRequest(m)) if m.contains("canton")));
}

/// A search longer than a person types is refused before it is parsed,
/// with what was too long and the bound: a 4 MiB text of 500,000 words
/// would otherwise be a conjunction of as many posting lists.
/// Coverage (issue 23): a record serves its organisation's whole
/// territory unless it says what it covers, and a search in a territory
/// finds what serves it: a commune finds its EPCI's and its département's
/// projects, not a neighbour's.
#[test]
fn records_are_found_where_they_serve() {
    let f = Fixture::new();
    let org = |siren: &str| Org {
        siren: Some(siren.into()),
        name: None,
    };
    let project = |id: &str, coverage: &[&str]| {
        let mut p = Project::new(format!("Projet {id}"), "d", ProjectStatus::Deploiement);
        p.coverage = coverage.iter().map(|c| c.to_string()).collect();
        record(id, Visibility::Public, Body::Project(p))
    };
    f.add(key(1), &org("223100017"), &[project("departement", &[])]);
    f.add(key(2), &org("243100518"), &[project("metropole", &[])]);
    f.add(key(3), &org(BLAGNAC), &[project("blagnac", &[])]);
    f.add(
        key(4),
        &org(BLAGNAC),
        &[project("pour-toulouse", &["31555"])],
    );
    f.add(
        key(5),
        &org("243100518"),
        &[project("colomiers", &["213101496"])],
    );
    // A commune of Haute-Garonne outside Toulouse Métropole.
    let outside = maillage_record::territory::all()
        .iter()
        .find(|c| {
            c.departement.as_deref() == Some("31")
                && c.insee.is_some()
                && c.epci_siren.as_deref() != Some("243100518")
        })
        .and_then(|c| c.insee.clone())
        .unwrap();
    let found = |place: &str| -> Vec<String> {
        let mut ids: Vec<String> = f
            .find(
                "",
                Filters {
                    territory: Some(place.into()),
                    ..Default::default()
                },
                &Viewer::Operator,
            )
            .hits
            .into_iter()
            .map(|h| h.record_id)
            .collect();
        ids.sort();
        ids
    };
    // Toulouse: its EPCI's, its département's, and what covers it.
    assert_eq!(
        found("31555"),
        ["departement", "metropole", "pour-toulouse"]
    );
    // Blagnac: its own, its EPCI's, its département's (not Toulouse's).
    assert_eq!(
        found("31069"),
        ["blagnac", "departement", "metropole", "pour-toulouse"]
    );
    // Colomiers: what its EPCI runs for it.
    assert_eq!(found("31149"), ["colomiers", "departement", "metropole"]);
    // Outside the métropole: the département's only.
    assert_eq!(found(&outside), ["departement"], "{outside}");
    // The département, by its code or its SIREN, holds them all.
    assert_eq!(found("31").len(), 5);
    assert_eq!(found("223100017").len(), 5);
    // Elsewhere: none.
    assert!(found("69123").is_empty());
}

#[test]
fn a_search_longer_than_a_person_types_is_refused() {
    let f = Fixture::new();
    f.add(
        key(1),
        &lyon_org(),
        &[dataset("a", "Budget", "d", LYON_METRO)],
    );
    let refused = |text: &str, filters: Filters| match f.search.search(
        &SearchRequest {
            text: text.into(),
            filters,
            page: 1,
            page_size: 20,
        },
        &Viewer::Anonymous,
        0,
    ) {
        Err(SearchError::BadRequest(why)) => why,
        other => panic!("{text:.40}: {other:?}"),
    };
    // At the bounds: answered.
    let words = vec!["budget"; query::MAX_WORDS].join(" ");
    assert_eq!(
        f.find(&words, Filters::default(), &Viewer::Anonymous).total,
        1
    );
    let long = "é".repeat(query::MAX_TEXT_CHARS);
    assert_eq!(
        f.find(&long, Filters::default(), &Viewer::Anonymous).total,
        0
    );
    // Past them: refused, saying why.
    let why = refused(&"budget ".repeat(500_000), Filters::default());
    assert!(why.contains("at most 500"), "{why}");
    let why = refused(&format!("{long}e"), Filters::default());
    assert!(why.contains("501 characters"), "{why}");
    let why = refused(&format!("{words} budget"), Filters::default());
    assert!(why.contains("33 words"), "{why}");
    let why = refused(
        "budget",
        Filters {
            theme: Some("x".repeat(201)),
            ..Filters::default()
        },
    );
    assert!(why.contains("theme filter is 201 characters"), "{why}");
    // Statistics too.
    let stats = f.search.stats(
        &Filters {
            territory: Some("3".repeat(10_000)),
            ..Filters::default()
        },
        GroupBy::Theme,
        &Viewer::Anonymous,
        0,
    );
    assert!(
        matches!(stats, Err(SearchError::BadRequest(_))),
        "{stats:?}"
    );
}

#[test]
fn a_caller_sees_only_what_it_may() {
    let f = Fixture::new();
    let blagnac = Siren::parse(BLAGNAC).unwrap();
    let restricted = Visibility::Restricted {
        audience: vec![blagnac.clone()],
    };
    f.add(
        key(1),
        &lyon_org(),
        &[
            record(
                "pub",
                Visibility::Public,
                Body::Dataset(Dataset::new("Budget public", "d")),
            ),
            record(
                "fed",
                Visibility::Federation,
                Body::Dataset(Dataset::new("Budget fédéré", "d")),
            ),
            record(
                "res",
                restricted,
                Body::Dataset(Dataset::new("Budget restreint", "d")),
            ),
        ],
    );
    let seen = |viewer: Viewer| -> (Vec<String>, u64) {
        let r = f.find("budget", Filters::default(), &viewer);
        let mut ids: Vec<String> = r.hits.into_iter().map(|h| h.record_id).collect();
        ids.sort();
        // Facets count only what the caller sees.
        let kinds: u64 = r.facets["kind"].iter().map(|b| b.count).sum();
        (ids, kinds)
    };
    assert_eq!(seen(Viewer::Anonymous), (vec!["pub".to_string()], 1));
    let stranger = Viewer::Peer {
        key: key(9),
        siren: Some(Siren::parse(LYON_METRO).unwrap()),
        member: true,
    };
    assert_eq!(seen(stranger), (vec!["fed".into(), "pub".into()], 2));
    // Pinned but no member (a withdrawn membership): no federation records.
    let former = Viewer::Peer {
        key: key(9),
        siren: Some(blagnac.clone()),
        member: false,
    };
    assert_eq!(seen(former), (vec!["pub".into(), "res".into()], 2));
    let audience = Viewer::Peer {
        key: key(9),
        siren: Some(blagnac),
        member: true,
    };
    assert_eq!(
        seen(audience),
        (vec!["fed".into(), "pub".into(), "res".into()], 3)
    );
    let author = Viewer::Peer {
        key: key(1),
        siren: None,
        member: true,
    };
    assert_eq!(seen(author).1, 3);
    assert_eq!(seen(Viewer::Operator).1, 3);
}

/// Scores say nothing about records the caller may not see: an anonymous
/// caller's (and a peer's) scores are the same before and after hidden
/// records holding its words arrive, or leave, whether they share a segment
/// with public records or not.
#[test]
fn scores_count_only_what_the_caller_may_see() {
    let f = Fixture::new();
    let blagnac = Siren::parse(BLAGNAC).unwrap();
    let hidden = |id: &str, visibility: Visibility| {
        record(
            id,
            visibility,
            Body::Dataset(Dataset::new(
                "Budget du plan social",
                "Budget, budget annexe et licenciements: un long texte que le public ne voit pas, ni ses mots",
            )),
        )
    };
    let restricted = || Visibility::Restricted {
        audience: vec![blagnac.clone()],
    };
    f.add(
        key(1),
        &lyon_org(),
        &[
            dataset("p1", "Budget primitif", "Le budget voté", LYON_METRO),
            dataset("p2", "Budget participatif", "Projets retenus", LYON_METRO),
            dataset(
                "p3",
                "Voirie",
                "Le budget des routes, et rien d'autre ici",
                LYON_METRO,
            ),
            hidden("h1", Visibility::Federation),
        ],
    );
    let lyon = Viewer::Peer {
        key: key(9),
        siren: Some(Siren::parse(LYON_METRO).unwrap()),
        member: true,
    };
    let scores = |viewer: &Viewer| -> Vec<(String, f32)> {
        let mut hits: Vec<(String, f32)> = f
            .find("budget", Filters::default(), viewer)
            .hits
            .into_iter()
            .map(|h| (h.record_id, h.score))
            .collect();
        hits.sort_by(|a, b| a.0.cmp(&b.0));
        hits
    };
    let (anonymous, peer, operator) = (
        scores(&Viewer::Anonymous),
        scores(&lyon),
        scores(&Viewer::Operator),
    );
    assert_eq!(anonymous.len(), 3);
    assert_eq!(peer.len(), 4, "the federation record too");
    // Hidden records arrive: in a segment of their own, and beside a
    // federation record in another (which the peer sees, and was counted).
    f.add(
        key(2),
        &lyon_org(),
        &(0..20)
            .map(|i| hidden(&format!("r{i}"), restricted()))
            .chain([hidden("h2", Visibility::Federation)])
            .collect::<Vec<_>>(),
    );
    delete(&f, key(2), "h2");
    assert_eq!(scores(&Viewer::Anonymous), anonymous);
    assert_eq!(scores(&lyon), peer);
    // They do weigh in the scores of whoever sees them: the test can fail.
    assert_ne!(
        scores(&Viewer::Operator)[..4],
        operator[..],
        "the operator's scores count every record"
    );
    // A hidden record that leaves (deleted) leaves the scores as they were
    // without it.
    let without = scores(&Viewer::Anonymous);
    delete(&f, key(1), "h1");
    assert_eq!(scores(&Viewer::Anonymous), without);
}

#[test]
fn stats_sum_what_projects_measured() {
    let f = Fixture::new();
    let mut recs = Vec::new();
    // (status, risk, budget, kWh, kgCO2e)
    let rows = [
        (
            ProjectStatus::Deploiement,
            Some(RiskCategory::Limited),
            Some(BudgetBand::Under50k),
            Some(1200.5),
            Some(30.0),
        ),
        (
            ProjectStatus::Deploiement,
            Some(RiskCategory::High),
            Some(BudgetBand::Over100k),
            Some(800.0),
            None,
        ),
        (
            ProjectStatus::Experimentation,
            Some(RiskCategory::Limited),
            Some(BudgetBand::Under50k),
            None,
            Some(12.5),
        ),
        (ProjectStatus::Termine, None, None, None, None),
    ];
    for (i, (status, risk, budget, kwh, co2)) in rows.into_iter().enumerate() {
        let mut p = Project::new(format!("Projet {i}"), "IA", status);
        p.risk_category = risk;
        recs.push(record(
            &format!("p{i}"),
            Visibility::Public,
            Body::Project(p),
        ));
        if budget.is_some() || kwh.is_some() || co2.is_some() {
            let mut d = ProjectDetails::new(format!("p{i}"));
            d.budget = budget;
            d.energy_kwh_per_year = kwh;
            d.emissions_kgco2e_per_year = co2;
            recs.push(record(
                &format!("p{i}/details"),
                Visibility::Federation,
                Body::ProjectDetails(d),
            ));
        }
    }
    recs.push(dataset("d", "Un jeu", "d", LYON_METRO));
    f.add(key(1), &lyon_org(), &recs);

    let s = f.stats(
        Filters {
            territory: Some("reg:84".into()),
            ..Default::default()
        },
        GroupBy::Kind,
        &Viewer::Operator,
    );
    assert_eq!(s.total, 8);
    let counts = |b: &[Bucket]| -> Vec<(String, u64)> {
        b.iter().map(|b| (b.value.clone(), b.count)).collect()
    };
    assert_eq!(
        counts(&s.groups),
        [
            ("project".to_string(), 4),
            ("project_details".to_string(), 3),
            ("dataset".to_string(), 1)
        ]
    );
    let p = &s.projects;
    assert_eq!(p.projects, 4);
    assert_eq!(
        counts(&p.by_status),
        [
            ("deploiement".to_string(), 2),
            ("experimentation".to_string(), 1),
            ("termine".to_string(), 1)
        ]
    );
    assert_eq!(
        counts(&p.by_risk),
        [("limited".to_string(), 2), ("high".to_string(), 1)]
    );
    assert_eq!(p.with_details, 3);
    assert_eq!(
        counts(&p.by_budget),
        [("under_50k".to_string(), 2), ("over_100k".to_string(), 1)]
    );
    assert_eq!((p.energy_kwh_per_year, p.energy_reported), (2000.5, 2));
    assert_eq!(
        (p.emissions_kgco2e_per_year, p.emissions_reported),
        (42.5, 2)
    );

    // Details count with their project: filtered by status, two remain.
    let deployed = f.stats(
        Filters {
            status: Some("deploiement".into()),
            ..Default::default()
        },
        GroupBy::Kind,
        &Viewer::Operator,
    );
    assert_eq!(deployed.projects.projects, 2);
    assert_eq!(deployed.projects.with_details, 2);
    assert_eq!(
        (
            deployed.projects.energy_kwh_per_year,
            deployed.projects.energy_reported
        ),
        (2000.5, 2)
    );
    assert_eq!(
        (
            deployed.projects.emissions_kgco2e_per_year,
            deployed.projects.emissions_reported
        ),
        (30.0, 1)
    );

    // The public does not see the details (federation): no sums for it.
    let public = f.stats(Filters::default(), GroupBy::Status, &Viewer::Anonymous);
    assert_eq!(public.total, 5);
    assert_eq!(public.projects.with_details, 0);
    assert_eq!(public.projects.energy_reported, 0);
    // Elsewhere, nothing.
    let none = f.stats(
        Filters {
            territory: Some("75".into()),
            ..Default::default()
        },
        GroupBy::Kind,
        &Viewer::Operator,
    );
    assert_eq!((none.total, none.projects.projects), (0, 0));
}

/// Statistics asked again are answered from the cache until the next
/// commit, and only to the caller they were computed for.
#[test]
fn statistics_are_kept_until_the_next_commit_and_per_caller() {
    let f = Fixture::new();
    let open = dataset("a", "Budget primitif", "Budget voté", LYON_METRO);
    let mut members = dataset("b", "Budget annexe", "Budget voté", LYON_METRO);
    members.visibility = Visibility::Federation;
    f.add(key(1), &lyon_org(), &[open, members]);
    let by_org = |viewer: &Viewer| f.stats(Filters::default(), GroupBy::Organisation, viewer);
    let groups = |s: &Stats| -> Vec<(String, u64)> {
        s.groups
            .iter()
            .map(|b| (b.label.clone(), b.count))
            .collect()
    };
    let start = f.search.cache_stats();
    let asked = || {
        let s = f.search.cache_stats() - start;
        (s.stats_hits, s.stats_misses)
    };

    let first = by_org(&Viewer::Operator);
    assert_eq!((first.total, first.by.as_str()), (2, "org"));
    assert_eq!(asked(), (0, 1));
    let again = by_org(&Viewer::Operator);
    assert_eq!(asked(), (1, 1), "asked again: from the cache");
    assert_eq!((again.total, groups(&again)), (2, groups(&first)));

    // The public gets figures computed for it, not the operator's.
    let public = by_org(&Viewer::Anonymous);
    assert_eq!(asked(), (1, 2));
    assert_eq!(groups(&public), [("Métropole de Lyon".to_string(), 1)]);
    // Grouped otherwise: computed too.
    f.stats(Filters::default(), GroupBy::Kind, &Viewer::Operator);
    assert_eq!(asked(), (1, 3));

    // A commit: a new searcher, whose figures are computed again.
    f.add(
        key(2),
        &lyon_org(),
        &[dataset("c", "Budget", "Budget voté", BLAGNAC)],
    );
    let after = by_org(&Viewer::Operator);
    assert_eq!(asked(), (1, 4));
    assert_eq!(
        groups(&after),
        [
            ("Métropole de Lyon".to_string(), 2),
            ("Blagnac".to_string(), 1)
        ]
    );
    // A bad filter is refused, whatever is kept.
    let bad = f.search.stats(
        &Filters {
            territory: Some("nowhere".into()),
            ..Default::default()
        },
        GroupBy::Organisation,
        &Viewer::Operator,
        0,
    );
    assert!(bad.is_err());
    let by_dep = f.stats(Filters::default(), GroupBy::Territory, &Viewer::Operator);
    assert_eq!(by_dep.by, "territory", "named as --by takes it");
}

#[test]
fn an_index_of_another_version_is_started_anew() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("search");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("meta.json"), b"not an index").unwrap();
    // A directory maillage did not make is never deleted.
    let e = Search::open(&path, 0).err().unwrap().to_string();
    assert!(e.contains("search_dir"), "{e}");
    assert!(path.join("meta.json").exists());
    std::fs::write(path.join(MARKER), MARKER_TEXT).unwrap();
    let s = Search::open(&path, 0).unwrap();
    assert_eq!(s.indexed_seq(), 0);
    assert_ne!(
        std::fs::read(path.join("meta.json")).unwrap(),
        b"not an index"
    );
    drop(s);
    // An index that has seen more than the store holds is started anew.
    let s = Search::open(&path, 0).unwrap();
    let mut w: tantivy::IndexWriter<TantivyDocument> =
        s.index.writer_with_num_threads(1, 16 << 20).unwrap();
    let mut c = w.prepare_commit().unwrap();
    c.set_payload(&format!("{{\"schema\":{SCHEMA_VERSION},\"seq\":9}}"));
    c.commit().unwrap();
    drop(w);
    drop(s);
    assert_eq!(Search::open(&path, 9).unwrap().indexed_seq(), 9);
    assert_eq!(Search::open(&path, 5).unwrap().indexed_seq(), 0);
}

/// Facets are counted a block of documents at a time when a segment has no
/// deletions, one document at a time when it has some, and merged across
/// segments: all three must agree.
#[test]
fn facets_agree_across_segments_blocks_and_deletions() {
    let f = Fixture::new();
    let publishers = [LYON_METRO, BLAGNAC, "213105554"];
    let recs: Vec<Record> = (0..300)
        .map(|i| {
            let mut r = dataset(
                &format!("d{i}"),
                "Budget primitif",
                "Budget voté",
                publishers[i % 3],
            );
            if let Body::Dataset(d) = &mut r.body {
                d.themes = vec![["Économie", "Mobilités"][i % 2].into()];
            }
            r
        })
        .collect();
    // Two commits: two segments, each of several blocks.
    f.add(key(1), &lyon_org(), &recs[..150]);
    f.add(key(1), &lyon_org(), &recs[150..]);
    let counts = |r: &Results| -> Vec<(String, Vec<(String, u64)>)> {
        r.facets
            .iter()
            .map(|(name, b)| {
                (
                    name.clone(),
                    b.iter().map(|b| (b.value.clone(), b.count)).collect(),
                )
            })
            .collect()
    };
    let before = f.find("budget", Filters::default(), &Viewer::Operator);
    assert_eq!(before.total, 300);
    // Datasets have no status: the empty value every document gets is not
    // a facet value.
    assert!(before.facets["status"].is_empty(), "{:?}", before.facets);
    assert_eq!(
        before.facets["theme"]
            .iter()
            .map(|b| b.count)
            .collect::<Vec<_>>(),
        [150, 150]
    );
    // Organisations are counted per segment by ordinal and added up; equal
    // counts are listed by name, not by SIREN.
    let orgs: Vec<(&str, &str, u64)> = before.facets["organisation"]
        .iter()
        .map(|b| (b.label.as_str(), b.value.as_str(), b.count))
        .collect();
    assert_eq!(
        orgs,
        [
            ("Blagnac", BLAGNAC, 100),
            ("Métropole de Lyon", LYON_METRO, 100),
            ("Toulouse", "213105554", 100)
        ]
    );

    // Delete and add back the first record: its segment now has a deletion.
    delete(&f, key(1), "d0");
    let fewer = f.find("budget", Filters::default(), &Viewer::Operator);
    assert_eq!(fewer.total, 299);
    assert_eq!(fewer.facets["kind"][0].count, 299);
    f.add(key(1), &lyon_org(), &recs[..1]);
    let after = f.find("budget", Filters::default(), &Viewer::Operator);
    assert_eq!(after.total, 300);
    assert_eq!(counts(&after), counts(&before));
}

/// Deletes the record `id` of `author` from the index, and commits.
fn delete(f: &Fixture, author: PublicKey, id: &str) {
    let mut writer: tantivy::IndexWriter<TantivyDocument> =
        f.search.index.writer_with_num_threads(1, 32 << 20).unwrap();
    writer.delete_term(Term::from_field_text(
        f.search.fields().key,
        &document::key(&author, id),
    ));
    writer.commit().unwrap();
    drop(writer);
    f.search.reader.reload().unwrap();
}

/// What the warmer does at a commit is bounded: deep pages, which anyone
/// may ask for twice, are not made again for the new index.
#[test]
fn the_warmer_leaves_deep_pages() {
    let f = Fixture::new();
    let budget = |i: usize| {
        dataset(
            &format!("d{i}"),
            "Budget primitif",
            "Budget voté",
            LYON_METRO,
        )
    };
    let records: Vec<_> = (0..10).map(budget).collect();
    f.add(key(1), &lyon_org(), &records);
    let ask = |page| {
        page_in(
            &f.search,
            "budget",
            Filters::default(),
            &Viewer::Anonymous,
            page,
        )
    };
    for page in [1, 1, 40, 40] {
        ask(page);
    }
    f.add(key(2), &lyon_org(), &[budget(10)]);
    let warmed = f.search.cache_stats();
    ask(1);
    let s1 = f.search.cache_stats();
    assert_eq!(
        s1.page_hits,
        warmed.page_hits + 1,
        "the first page was warmed"
    );
    ask(40);
    let s2 = f.search.cache_stats();
    assert_eq!(s2.page_misses, s1.page_misses + 1, "page 40 was not warmed");
}

/// Ranking and counting in one pass (`page::rank_and_count`) gives what
/// ranking, then counting, each in a pass of its own, give: the same hits in
/// the same order with the same scores, from any offset, and the same
/// counts, across segments, a deletion and fields of several values; and
/// again when the counts come from the cache.
#[test]
fn one_pass_ranks_and_counts_as_two_passes_do() {
    use tantivy::collector::TopDocs;
    let f = Fixture::new();
    let publishers = [LYON_METRO, BLAGNAC, "213105554"];
    let words = ["vélo", "voirie", "école", "cantine"];
    let recs: Vec<Record> = (0..120)
        .map(|i| {
            let title = format!(
                "{} {}",
                words[i % 4],
                if i % 3 == 0 { "budget" } else { "données" }
            );
            let description = format!("budget {} {}", words[(i / 4) % 4], "relevé ".repeat(i % 7));
            let mut r = dataset(&format!("d{i}"), &title, &description, publishers[i % 3]);
            if let Body::Dataset(d) = &mut r.body {
                d.themes = match i % 3 {
                    0 => vec!["Économie".into()],
                    1 => vec!["Économie".into(), "Mobilités".into()],
                    _ => vec![],
                };
            }
            r
        })
        .collect();
    f.add(key(1), &lyon_org(), &recs[..60]);
    f.add(key(1), &lyon_org(), &recs[60..]);
    delete(&f, key(1), "d0");
    let engine = &f.search.engine;
    let searcher = f.search.reader.searcher();
    assert_eq!(searcher.segment_readers().len(), 2);
    for text in ["budget", "budget vélo", "données école", ""] {
        let query = || {
            engine
                .queries
                .query(text, &Filters::default(), &Viewer::Operator)
                .unwrap()
        };
        let ranked = engine.queries.ranked(text, query());
        let counts = searcher
            .search(&query(), &Tally::facets(&engine.numbering))
            .unwrap();
        assert!(counts.matched > 10, "{text:?}: {}", counts.matched);
        let cached = Arc::new(cache::Key {
            text: text.into(),
            filters: Filters::default(),
            viewer: Viewer::Operator,
        });
        for offset in [0, 7] {
            let top = TopDocs::with_limit(10).and_offset(offset).order_by_score();
            let best = searcher.search(&ranked, &top).unwrap();
            assert!(!best.is_empty());
            // Counted, then (the second time) taken from the cache.
            for _ in 0..2 {
                let tally = Tally::facets(&engine.numbering).cached(&engine.caches, cached.clone());
                let (one_best, one_counts) = page::rank_and_count(
                    &searcher,
                    ranked.as_ref(),
                    EnableScoring::enabled_from_searcher(&searcher),
                    &top,
                    &tally,
                )
                .unwrap();
                assert_eq!(one_best, best, "{text:?} from {offset}");
                assert_eq!(one_counts.matched, counts.matched, "{text:?}");
                for facet in Facet::SEARCHED {
                    assert_eq!(
                        one_counts.buckets(facet, 100),
                        counts.buckets(facet, 100),
                        "{text:?}: {facet:?}"
                    );
                }
            }
        }
    }
    assert!(f.search.cache_stats().facet_hits > 0);
}

/// When a numbering is full, the next search counts in a new one: the
/// same counts, and none of those kept in the old one (whose numbers mean
/// other values) is used.
#[test]
fn a_new_numbering_counts_the_same_and_leaves_the_old_counts() {
    let f = Fixture::new();
    let recs: Vec<Record> = [LYON_METRO, BLAGNAC, BLAGNAC]
        .iter()
        .enumerate()
        .map(|(i, org)| dataset(&format!("d{i}"), "Budget primitif", "Budget voté", org))
        .collect();
    f.add(key(1), &lyon_org(), &recs);
    let find = |page_size| {
        f.search
            .search(
                &SearchRequest {
                    text: "budget".into(),
                    page: 1,
                    page_size,
                    ..SearchRequest::default()
                },
                &Viewer::Operator,
                0,
            )
            .unwrap()
    };
    let first = find(20);
    // Every value of the counted fields, each counted once: kind, two
    // organisations, their départements.
    let values: usize = first.facets.values().map(Vec::len).sum();
    assert_eq!(f.search.engine.numbering.current().live_values(), values);

    f.search.engine.numbering.replace_soon();
    let before = f.search.cache_stats();
    // Another page size: not a page kept, so its facets are looked up.
    let renumbered = find(10);
    let after = f.search.cache_stats() - before;
    assert_eq!((after.facet_hits, after.facet_misses), (0, 1));
    assert_eq!(renumbered.facets, first.facets);
    assert_eq!(renumbered.total, 3);
    // Kept in the new numbering, for the next search.
    let before = f.search.cache_stats();
    find(5);
    let after = f.search.cache_stats() - before;
    assert_eq!((after.facet_hits, after.facet_misses), (1, 0));
}

/// A repeated search is answered from the caches; a commit adds a segment
/// that the warmer readies (counts, page) before searches see it; and a
/// cached answer is always the one the index gives.
#[test]
fn repeated_searches_are_cached_and_new_segments_warmed() {
    let f = Fixture::new();
    let budget =
        |i: usize, org: &str| dataset(&format!("d{i}"), "Budget primitif", "Budget voté", org);
    f.add(
        key(1),
        &lyon_org(),
        &[budget(0, LYON_METRO), budget(1, BLAGNAC)],
    );
    let find = || f.find("budget", Filters::default(), &Viewer::Operator);
    let first = find();
    assert_eq!(first.total, 2);
    let s0 = f.search.cache_stats();
    assert_eq!((s0.page_hits, s0.page_misses), (0, 1));
    let again = find();
    let s1 = f.search.cache_stats();
    assert_eq!((s1.page_hits, s1.facet_misses), (1, s0.facet_misses));
    assert_eq!(again.facets, first.facets);

    // A second segment: on reload, before searches see it, the warmer
    // counts "budget" in it and makes its page again.
    f.add(
        key(2),
        &lyon_org(),
        &[budget(2, BLAGNAC), budget(3, BLAGNAC)],
    );
    let warmed = f.search.cache_stats();
    assert_eq!(
        warmed.facet_misses,
        s1.facet_misses + 1,
        "the warmer counted the new segment"
    );
    let after = find();
    let s2 = f.search.cache_stats();
    assert_eq!(
        (s2.page_hits, s2.page_misses),
        (warmed.page_hits + 1, warmed.page_misses),
        "the warmer made the page for the new searcher"
    );
    assert_eq!(s2.facet_misses, warmed.facet_misses);
    assert_eq!(after.total, 4);
    let orgs = |r: &Results| -> Vec<(String, u64)> {
        r.facets["organisation"]
            .iter()
            .map(|b| (b.value.clone(), b.count))
            .collect()
    };
    assert_eq!(
        orgs(&after),
        [(BLAGNAC.to_string(), 3), (LYON_METRO.to_string(), 1)]
    );

    // Computed again from the index: the same answer.
    f.search.clear_caches();
    let fresh = find();
    assert_eq!(f.search.cache_stats().page_misses, s2.page_misses + 1);
    assert_eq!(fresh.total, after.total);
    assert_eq!(fresh.facets, after.facets);
    assert_eq!(
        fresh
            .hits
            .iter()
            .map(|h| (&h.id, h.score))
            .collect::<Vec<_>>(),
        after
            .hits
            .iter()
            .map(|h| (&h.id, h.score))
            .collect::<Vec<_>>()
    );
}

/// Records may reach a node before their author's Organisation record
/// (order of arrival must not matter): when it arrives, the author's
/// documents are rebuilt with the organisation, its name and its territory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_gets_its_organisation_when_that_arrives_after_it() {
    use maillage_record::model::Organisation;
    use maillage_record::{SigningKey, envelope};

    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path()).await;
    let indexer = node.indexer().spawn();

    let author = SigningKey::from_bytes(&[9; 32]);
    // A trust root: its own Organisation record says which SIREN it speaks
    // for (no one vouches for another author's claim).
    node.ledger()
        .add_root(
            maillage_record::PublicKey(author.verifying_key().to_bytes()),
            "comité",
        )
        .unwrap();
    let store = |r: Record| {
        let signed = envelope::sign(&author, &r).unwrap();
        node.ledger()
            .load(&[signed], crate::store::Origin::Peer("lyon"))
            .unwrap();
    };
    let find = || {
        find_in(
            node.search(),
            "voirie",
            Filters::default(),
            &Viewer::Operator,
        )
    };

    store(record(
        "voirie",
        Visibility::Public,
        Body::Dataset(Dataset::new("Voirie communale", "Les rues")),
    ));
    indexed(&node).await;
    let before = find();
    assert_eq!(before.total, 1);
    assert_eq!(before.hits[0].organisation_siren, None);

    store(record(
        "organisation",
        Visibility::Public,
        Body::Organisation(Organisation::new(
            Siren::parse(BLAGNAC).unwrap(),
            "Commune de Blagnac",
        )),
    ));
    indexed(&node).await;
    let after = find();
    assert_eq!(after.total, 1, "{:?}", after.hits);
    assert_eq!(after.hits[0].organisation_siren.as_deref(), Some(BLAGNAC));
    assert_eq!(
        after.hits[0].organisation_name.as_deref(),
        Some("Commune de Blagnac")
    );
    assert_eq!(after.facets["territory"][0].value, "31");

    node.stop();
    indexer.join().unwrap();
}

/// Only a record's current version is found, however its versions arrive:
/// one by one, together, the newer before the older, or read back from the
/// store by a rebuild.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_current_version_is_found_however_versions_arrive() {
    use maillage_record::{SigningKey, envelope};

    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path()).await;
    let indexer = node.indexer().spawn();
    let author = SigningKey::from_bytes(&[9; 32]);
    let version = |id: &str, v: u64| {
        let title = format!("Comptages vélo v{v}");
        let mut r = record(
            id,
            Visibility::Public,
            Body::Dataset(Dataset::new(&title, "Boucles de comptage")),
        );
        r.version = v;
        envelope::sign(&author, &r).unwrap()
    };
    let store = |recs: &[maillage_record::VerifiedRecord]| {
        node.ledger()
            .load(recs, crate::store::Origin::Peer("lyon"))
            .unwrap();
    };
    let found = || {
        let mut v: Vec<_> = find_in(node.search(), "velo", Filters::default(), &Viewer::Operator)
            .hits
            .into_iter()
            .map(|h| (h.record_id, h.version))
            .collect();
        v.sort();
        v
    };
    let expect = |a: u64, b: u64| vec![("a".to_string(), a), ("b".to_string(), b)];

    store(&[version("a", 1)]);
    store(&[version("b", 2)]);
    indexed(&node).await;
    assert_eq!(found(), expect(1, 2));
    store(&[version("a", 2)]);
    store(&[version("b", 1)]);
    indexed(&node).await;
    assert_eq!(found(), expect(2, 2));
    store(&[version("a", 3), version("a", 4), version("b", 3)]);
    indexed(&node).await;
    assert_eq!(found(), expect(4, 3));
    node.search().request_reindex();
    indexed(&node).await;
    assert_eq!(found(), expect(4, 3));

    node.stop();
    indexer.join().unwrap();
}

/// Waits until `node` has indexed everything it stored (and any rebuild is
/// done).
pub(crate) async fn indexed(node: &crate::node::Node) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while node.search().indexed_seq() < node.store().last_seq() || node.search().rebuilding() {
        assert!(std::time::Instant::now() < deadline, "not indexed in 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Public searches take turns: a caller with limited patience is turned
/// away when every turn is taken, and served once one is free.
#[tokio::test]
async fn public_searches_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path()).await;
    let mut turns = Vec::new();
    for _ in 0..crate::node::search_turns() {
        turns.push(node.search_turn(None).await.expect("a free turn"));
    }
    let patience = Some(std::time::Duration::from_millis(50));
    assert!(node.search_turn(patience).await.is_none());
    turns.pop();
    assert!(node.search_turn(patience).await.is_some());
}

/// Statistics by quarter: a project counts from its start, a dataset from
/// its issue, anything else without a date from when it was signed.
#[test]
fn records_are_counted_by_the_quarter_they_began() {
    let f = Fixture::new();
    let mut started = Project::new(
        "Tri des courriers",
        "Un modèle trie",
        ProjectStatus::Deploiement,
    );
    started.start_date = Some("03/2025".into());
    let mut later = Project::new("Agent d'accueil", "Répond", ProjectStatus::Experimentation);
    later.start_date = Some("2025-11-04".into());
    let undated = Project::new("Fuites", "Détecte", ProjectStatus::Termine);
    let mut issued = Dataset::new("Budget", "Budget voté");
    issued.issued = Some("2025-02-28".into());
    f.add(
        key(1),
        &lyon_org(),
        &[
            record("a", Visibility::Public, Body::Project(started)),
            record("b", Visibility::Public, Body::Project(later)),
            // Signed on 2025-11-24 (`record`'s date).
            record("c", Visibility::Public, Body::Project(undated)),
            record("d", Visibility::Public, Body::Dataset(issued)),
        ],
    );
    let stats = f.stats(Filters::default(), GroupBy::Quarter, &Viewer::Anonymous);
    assert_eq!(stats.by, "quarter");
    let got: Vec<(String, String, u64)> = stats
        .groups
        .iter()
        .map(|b| (b.value.clone(), b.label.clone(), b.count))
        .collect();
    let mut got = got;
    got.sort();
    assert_eq!(
        got,
        [
            ("2025-T1".to_string(), "1er trimestre 2025".to_string(), 2),
            ("2025-T4".to_string(), "4e trimestre 2025".to_string(), 2),
        ]
    );
    assert_eq!(GroupBy::parse("trimestre"), Ok(GroupBy::Quarter));
}
