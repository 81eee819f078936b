//! Realistic records for the benchmarks: datasets and AI projects of real
//! collectivities (data/collectivites.csv), with titles and descriptions
//! drawn from the vocabulary French open-data portals and the bibliothèque
//! des projets IA use.

use maillage_record::model::{Agent, Dataset, Distribution, Licence, LicenceRef, Project, Spatial};
use maillage_record::territory::{self, Collectivity};
use maillage_record::vocab::{OrganisationKind, ProjectStatus, ProjectTheme, RiskCategory};
use maillage_record::{Body, Record, SigningKey, VerifiedRecord, Visibility, envelope};

/// (subject, theme, words its description uses)
const SUBJECTS: &[(&str, &str, &str)] = &[
    (
        "Budget primitif",
        "Économie",
        "dépenses recettes fonctionnement investissement",
    ),
    (
        "Comptes administratifs",
        "Économie",
        "exécution budgétaire dépenses recettes",
    ),
    (
        "Subventions aux associations",
        "Économie",
        "associations montants bénéficiaires",
    ),
    (
        "Marchés publics attribués",
        "Économie",
        "titulaires montants procédures",
    ),
    (
        "Arrêtés de circulation",
        "Transports",
        "voirie travaux restrictions",
    ),
    (
        "Stationnement vélos",
        "Transports",
        "arceaux vélos stationnement mobilité douce",
    ),
    (
        "Comptages vélos",
        "Transports",
        "compteurs vélos fréquentation pistes cyclables",
    ),
    (
        "Lignes de bus",
        "Transports",
        "arrêts horaires réseau transport en commun",
    ),
    (
        "Transport scolaire",
        "Transports",
        "circuits élèves arrêts scolaires",
    ),
    (
        "Bornes de recharge",
        "Énergie",
        "véhicules électriques bornes puissance",
    ),
    (
        "Consommation énergétique des bâtiments",
        "Énergie",
        "électricité gaz chauffage bâtiments publics",
    ),
    (
        "Production photovoltaïque",
        "Énergie",
        "panneaux solaires production électricité",
    ),
    (
        "Éclairage public",
        "Énergie",
        "luminaires candélabres consommation nuit",
    ),
    (
        "Collecte des déchets",
        "Environnement",
        "tournées bacs ordures ménagères tri",
    ),
    (
        "Points d'apport volontaire",
        "Environnement",
        "verre emballages conteneurs tri",
    ),
    (
        "Qualité de l'air",
        "Environnement",
        "pollution particules ozone capteurs",
    ),
    (
        "Arbres d'alignement",
        "Environnement",
        "patrimoine arboré essences plantations",
    ),
    (
        "Espaces verts",
        "Environnement",
        "parcs jardins entretien surfaces",
    ),
    (
        "Qualité de l'eau potable",
        "Santé",
        "analyses prélèvements conformité réseau",
    ),
    (
        "Assainissement",
        "Environnement",
        "stations d'épuration réseaux eaux usées",
    ),
    (
        "Délibérations du conseil",
        "Gouvernement",
        "séances votes actes conseil municipal",
    ),
    (
        "Élus et commissions",
        "Gouvernement",
        "mandats délégations commissions",
    ),
    (
        "État civil",
        "Population",
        "naissances mariages décès actes",
    ),
    (
        "Équipements sportifs",
        "Éducation",
        "gymnases piscines stades horaires",
    ),
    (
        "Horaires des piscines",
        "Éducation",
        "bassins créneaux ouverture public",
    ),
    (
        "Menus des cantines",
        "Éducation",
        "restauration scolaire repas produits bio",
    ),
    (
        "Effectifs scolaires",
        "Éducation",
        "écoles classes élèves rentrée",
    ),
    (
        "Bibliothèques",
        "Éducation",
        "prêts collections lecteurs médiathèques",
    ),
    (
        "Permis de construire",
        "Régions",
        "urbanisme autorisations parcelles",
    ),
    (
        "Plan local d'urbanisme",
        "Régions",
        "zonage règlement parcelles urbanisme",
    ),
    ("Adresses", "Régions", "base adresse locale voies numéros"),
    ("Cadastre", "Régions", "parcelles sections propriétés"),
    (
        "Logements sociaux",
        "Population",
        "bailleurs logements attributions",
    ),
    ("Défibrillateurs", "Santé", "DAE emplacements accès"),
    (
        "Festivals et événements",
        "Culture",
        "agenda manifestations culture",
    ),
    (
        "Musées et monuments",
        "Culture",
        "patrimoine visites fréquentation",
    ),
    (
        "Tourisme et hébergements",
        "Culture",
        "hôtels campings capacités touristes",
    ),
    (
        "Marchés alimentaires",
        "Agriculture",
        "producteurs locaux jours emplacements",
    ),
    (
        "Accidents de la route",
        "Transports",
        "sécurité routière corporels voirie",
    ),
    (
        "Vidéoprotection",
        "Justice",
        "caméras emplacements sécurité",
    ),
];

const QUALIFIERS: &[&str] = &[
    "2021",
    "2022",
    "2023",
    "2024",
    "2025",
    "en temps réel",
    "par quartier",
    "historique",
    "annuel",
    "mensuel",
    "géolocalisé",
    "détaillé",
    "consolidé",
];

const PHRASES: &[&str] = &[
    "Données brutes publiées au format ouvert et mises à jour régulièrement",
    "Le jeu de données est produit par les services de la collectivité",
    "Chaque ligne décrit un élément avec sa localisation et sa date",
    "La documentation décrit les champs et leur mode de collecte",
    "Les données sont réutilisables sous Licence Ouverte",
    "Ce fichier alimente les tableaux de bord du territoire",
    "Les valeurs manquantes sont signalées par une cellule vide",
];

/// (AI project, its theme)
const PROJECTS: &[(&str, ProjectTheme)] = &[
    (
        "Agent conversationnel pour l'accueil des usagers",
        ProjectTheme::Citizenship,
    ),
    (
        "Tri automatique des courriers entrants",
        ProjectTheme::Administration,
    ),
    (
        "Détection des dépôts sauvages par vision",
        ProjectTheme::EcologicalTransition,
    ),
    (
        "Prévision de la fréquentation des cantines",
        ProjectTheme::Administration,
    ),
    (
        "Optimisation des tournées de collecte des déchets",
        ProjectTheme::EcologicalTransition,
    ),
    (
        "Analyse des consommations énergétiques des bâtiments",
        ProjectTheme::EcologicalTransition,
    ),
    (
        "Aide à l'instruction des permis de construire",
        ProjectTheme::Attractiveness,
    ),
    (
        "Résumé automatique des délibérations",
        ProjectTheme::Governance,
    ),
    (
        "Prédiction des fuites sur le réseau d'eau",
        ProjectTheme::EcologicalTransition,
    ),
    ("Comptage des vélos par caméra", ProjectTheme::Mobility),
    ("Régulation des feux de circulation", ProjectTheme::Mobility),
    (
        "Traduction des démarches en ligne",
        ProjectTheme::Citizenship,
    ),
];

/// The i-th record of the corpus (deterministic), unsigned.
pub fn record(i: usize) -> Record {
    let all = territory::all();
    // A multiplicative hash spreads consecutive records over the territory.
    let c: &Collectivity = &all[(i.wrapping_mul(2_654_435_761)) % all.len()];
    let publisher = Agent {
        name: c.name.clone(),
        siren: Some(c.siren.clone()),
        url: None,
    };
    let body = if i % 8 == 7 {
        let (name, theme) = PROJECTS[(i / 8) % PROJECTS.len()];
        let status = [
            ProjectStatus::Experimentation,
            ProjectStatus::Deploiement,
            ProjectStatus::Termine,
            ProjectStatus::Abandonne,
        ][(i / 3) % 4];
        let mut p = Project::new(
            format!("{name} – {}", c.name),
            format!(
                "{name} : projet mené par {} avec ses agents. {}. Les résultats sont suivis \
                 par un comité et évalués chaque année.",
                c.name,
                PHRASES[i % PHRASES.len()]
            ),
            status,
        );
        p.theme = Some(theme);
        p.risk_category = Some(
            [
                RiskCategory::Minimal,
                RiskCategory::Limited,
                RiskCategory::High,
            ][i % 3],
        );
        p.organisation_name = Some(c.name.clone());
        p.organisation_kind = Some(c.kind);
        Body::Project(p)
    } else {
        let (subject, theme, words) = SUBJECTS[(i / 3) % SUBJECTS.len()];
        let qualifier = QUALIFIERS[i % QUALIFIERS.len()];
        let mut d = Dataset::new(
            format!("{subject} {qualifier} – {}", c.name),
            format!(
                "{subject} de {} ({qualifier}) : {words}. {}. {}.",
                c.name,
                PHRASES[i % PHRASES.len()],
                PHRASES[(i / 7) % PHRASES.len()]
            ),
        );
        d.keywords = words.split(' ').take(3).map(str::to_string).collect();
        d.themes = vec![theme.to_string()];
        d.licence = Some(LicenceRef::Known(Licence::Etalab2));
        d.publisher = Some(publisher);
        if c.kind == OrganisationKind::Commune {
            d.spatial = Some(Spatial {
                insee_codes: c.insee.clone().into_iter().collect(),
                granularity: None,
                label: None,
            });
        }
        d.distributions = vec![Distribution {
            format: Some("CSV".into()),
            media_type: Some("text/csv".into()),
            ..Distribution::new(format!(
                "https://data.example.fr/explore/dataset/jeu-{i}/download?format=csv"
            ))
        }];
        Body::Dataset(d)
    };
    Record {
        record_id: format!("jeu-{i}"),
        version: 1,
        issued_at_ms: 1_700_000_000_000 + i as i64 * 1000,
        visibility: Visibility::Public,
        provenance: None,
        body,
    }
}

/// The `i`th of thousands of different searches, each as broad as the
/// benchmark's usual ones: a word of a subject's description and a word of
/// the phrases every description draws from ("dépenses tableaux", "voirie
/// documentation"). Unique for `i` below the product of the two lists'
/// lengths (over 5,000).
pub fn distinct_query(i: usize) -> String {
    static WORDS: std::sync::OnceLock<(Vec<&str>, Vec<&str>)> = std::sync::OnceLock::new();
    let (subjects, phrases) = WORDS.get_or_init(|| {
        let unique = |words: &mut Vec<&'static str>| {
            words.sort_unstable();
            words.dedup();
        };
        let mut s: Vec<&str> = SUBJECTS
            .iter()
            .flat_map(|(_, _, words)| words.split(' '))
            .collect();
        unique(&mut s);
        // Long words only: short ones are mostly articles, which are not
        // indexed.
        let mut p: Vec<&str> = PHRASES
            .iter()
            .flat_map(|p| p.split([' ', '\'']))
            .filter(|w| w.chars().count() >= 6)
            .collect();
        unique(&mut p);
        (s, p)
    });
    let s = subjects[i % subjects.len()];
    let p = phrases[(i / subjects.len()) % phrases.len()];
    format!("{s} {p}")
}

/// Signed records `range`, generated on every core.
pub fn generate(range: std::ops::Range<usize>, authors: &[SigningKey]) -> Vec<VerifiedRecord> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let chunk = range.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let start = range.start + t * chunk;
                let end = (start + chunk).min(range.end);
                s.spawn(move || {
                    (start..end)
                        .map(|i| {
                            envelope::sign(&authors[i % authors.len()], &record(i))
                                .expect("generated records are valid")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("generator thread"))
            .collect()
    })
}

/// The benchmark's 1,000 authors: fixed keys, so that every run signs the
/// same records.
pub fn authors() -> Vec<SigningKey> {
    (0..1000u32)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            SigningKey::from_bytes(&seed)
        })
        .collect()
}
