//! Controlled vocabularies: every enumeration a record uses, with its canonical
//! value (what JSON and exports write), its French label (what people read),
//! and the labels people actually write in their spreadsheets.
//!
//! Parsing forgives what does not change the meaning: case, accents, spaces,
//! hyphens, underscores and apostrophes, a plural or feminine ending
//! ("Terminée", "élus"). What still does not match is an error that quotes the
//! value and lists the accepted ones. Each vocabulary also has a stable code:
//! the value of the enum of the same name in record.proto.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value outside a vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not a known {what}; accepted: {accepted}")]
pub struct UnknownTerm {
    pub value: String,
    pub what: &'static str,
    pub accepted: String,
}

/// The form two labels are compared in: lowercase ASCII words (digits and
/// letters apart: "50k" = "50 k"), accents removed, each word without a final
/// "s" or "x" and final "e"s past its third letter (plurals, and feminine
/// past participles: "Terminées" = "terminé").
pub fn normalize(input: &str) -> String {
    let mut flat = String::with_capacity(input.len());
    let mut last_digit = None;
    for c in input.trim().chars().flat_map(char::to_lowercase) {
        let digit = c.is_ascii_digit();
        if c.is_alphanumeric() && last_digit.is_some_and(|d| d != digit) {
            flat.push(' ');
        }
        last_digit = c.is_alphanumeric().then_some(digit);
        match c {
            'à' | 'â' | 'ä' | 'á' => flat.push('a'),
            'é' | 'è' | 'ê' | 'ë' => flat.push('e'),
            'î' | 'ï' | 'í' => flat.push('i'),
            'ô' | 'ö' | 'ó' => flat.push('o'),
            'ù' | 'û' | 'ü' | 'ú' => flat.push('u'),
            'ç' => flat.push('c'),
            'ÿ' => flat.push('y'),
            'œ' => flat.push_str("oe"),
            'æ' => flat.push_str("ae"),
            '€' => flat.push_str(" eur "),
            '<' => flat.push_str(" lt "),
            '>' => flat.push_str(" gt "),
            c if c.is_ascii_alphanumeric() => flat.push(c),
            _ => flat.push(' '),
        }
    }
    flat.split_whitespace()
        .map(|w| {
            if w.len() <= 3 || w.bytes().all(|b| b.is_ascii_digit()) {
                return w;
            }
            let w = w
                .strip_suffix('s')
                .or_else(|| w.strip_suffix('x'))
                .unwrap_or(w);
            let trimmed = w.trim_end_matches('e');
            if trimmed.len() >= 3 { trimmed } else { w }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What every vocabulary offers, for code that reads any of them.
pub trait Vocabulary: Sized + Copy + 'static {
    /// What a value is ("licence", "update frequency").
    const WHAT: &'static str;
    fn parse(input: &str) -> Result<Self, UnknownTerm>;
    fn names_normalized() -> &'static std::collections::HashMap<String, Self>;
    fn as_str(self) -> &'static str;

    /// The value a text that is none of the names most likely means: the one
    /// whose name, as whole words, is the longest found in it ("Annuelle ou
    /// plusieurs fois par an" is "Annuelle"; "Licence Ouverte v2.0 (Etalab)"
    /// is "Licence Ouverte v2.0"). None when no name is in it.
    fn nearest(input: &str) -> Option<Self> {
        let wanted = format!(" {} ", normalize(input));
        Self::names_normalized()
            .iter()
            .filter(|(name, _)| !name.is_empty() && wanted.contains(&format!(" {name} ")))
            // Longest name first, then the smaller name: the same answer
            // whatever the table's order.
            .max_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| b.cmp(a)))
            .map(|(_, v)| *v)
    }
}

macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $variant:ident = $code:literal, $canon:literal, $label:literal $(, [$($alias:literal),* $(,)?])? ; )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $( $variant ),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[ $( $name::$variant ),+ ];

            /// The canonical value, as JSON and exports write it.
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $canon ),+ }
            }

            /// The French label.
            pub fn label(self) -> &'static str {
                match self { $( $name::$variant => $label ),+ }
            }

            /// The value of the protobuf enum of the same name.
            pub fn code(self) -> i32 {
                match self { $( $name::$variant => $code ),+ }
            }

            pub fn from_code(code: i32) -> Option<$name> {
                match code { $( $code => Some($name::$variant), )+ _ => None }
            }

            fn aliases(self) -> &'static [&'static str] {
                match self { $( $name::$variant => &[ $( $($alias),* )? ] ),+ }
            }

            /// Every name this value is recognised by.
            pub fn names(self) -> impl Iterator<Item = &'static str> {
                [self.as_str(), self.label()].into_iter().chain(self.aliases().iter().copied())
            }

            /// Every name of every value, normalized: parsed once, then
            /// looked up (an import reads this for every cell).
            fn table() -> &'static std::collections::HashMap<String, $name> {
                static TABLE: std::sync::OnceLock<std::collections::HashMap<String, $name>> =
                    std::sync::OnceLock::new();
                TABLE.get_or_init(|| {
                    let mut table = std::collections::HashMap::new();
                    for v in Self::ALL {
                        for n in v.names() {
                            // The first value to claim a name keeps it.
                            table.entry(normalize(n)).or_insert(*v);
                        }
                    }
                    table
                })
            }

            /// Parses a value as people write it: the canonical value, the
            /// French label, or a known alias, forgiving case and accents.
            pub fn parse(input: &str) -> Result<$name, UnknownTerm> {
                let wanted = normalize(input);
                if let Some(v) = Self::table().get(&wanted) {
                    return Ok(*v);
                }
                Err(UnknownTerm {
                    value: input.to_string(),
                    what: $what,
                    accepted: Self::ALL
                        .iter()
                        .map(|v| format!("{} ({})", v.as_str(), v.label()))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }

        impl Vocabulary for $name {
            const WHAT: &'static str = $what;
            fn parse(input: &str) -> Result<Self, UnknownTerm> {
                $name::parse(input)
            }
            fn names_normalized() -> &'static std::collections::HashMap<String, Self> {
                $name::table()
            }
            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownTerm;
            fn from_str(s: &str) -> Result<Self, UnknownTerm> {
                $name::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                $name::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

vocabulary! {
    /// What kind of organisation signs records.
    OrganisationKind, "organisation kind" {
        Commune = 1, "commune", "Commune";
        Epci = 2, "epci", "Établissement public de coopération intercommunale (EPCI)",
            ["EPCI", "intercommunalité", "communauté de communes", "communauté d'agglomération",
             "communauté urbaine", "métropole", "interco"];
        Ept = 3, "ept", "Établissement public territorial (EPT)", ["établissement public territorial"];
        Departement = 4, "departement", "Département", ["conseil départemental", "CD"];
        Region = 5, "region", "Région", ["conseil régional", "collectivité territoriale unique"];
        SyndicatMixte = 6, "syndicat_mixte", "Syndicat mixte", ["syndicat", "SIVU", "SIVOM"];
        Committee = 7, "comite_territorial_donnee", "Comité territorial de la donnée",
            ["comité territorial de la donnée", "CTD", "comité", "committee"];
        Operateur = 8, "operateur", "Opérateur public", ["opérateur", "établissement public", "operator"];
        Other = 9, "autre", "Autre", ["other"];
    }
}

vocabulary! {
    /// The legal nature of an EPCI (BANATIC's NATURE_JURIDIQUE).
    EpciNature, "EPCI nature" {
        Cc = 1, "cc", "Communauté de communes", ["CC"];
        Ca = 2, "ca", "Communauté d'agglomération", ["CA", "agglo", "agglomération"];
        Cu = 3, "cu", "Communauté urbaine", ["CU"];
        Metropole = 4, "metropole", "Métropole", ["METRO", "MET"];
        MetropoleLyon = 5, "metropole_lyon", "Métropole de Lyon", ["MET69"];
    }
}

vocabulary! {
    /// How often a dataset is updated: the EU frequency vocabulary, with the
    /// names data.gouv.fr gives it.
    Frequency, "update frequency" {
        Unknown = 1, "unknown", "Inconnue", ["inconnu", "non renseigné"];
        Punctual = 2, "punctual", "Ponctuelle", ["ponctuel", "une fois", "never", "jamais"];
        Continuous = 3, "continuous", "En continu", ["continue", "continuelle", "temps réel", "real time", "cont", "update_cont"];
        Hourly = 4, "hourly", "Toutes les heures", ["horaire"];
        Semidaily = 5, "semidaily", "Deux fois par jour", ["daily_2", "biquotidienne"];
        Daily = 6, "daily", "Quotidienne", ["quotidien", "journalière", "journalier", "jour",
            "Quotidienne ou plusieurs fois par jour"];
        Semiweekly = 7, "semiweekly", "Deux fois par semaine", ["weekly_2"];
        ThreeTimesAWeek = 8, "three_times_a_week", "Trois fois par semaine", ["threeTimesAWeek", "weekly_3"];
        Weekly = 9, "weekly", "Hebdomadaire", ["semaine", "Hebdomadaire ou plusieurs fois par semaine"];
        Biweekly = 10, "biweekly", "Toutes les deux semaines", ["quinzaine", "tous les quinze jours"];
        ThreeTimesAMonth = 11, "three_times_a_month", "Trois fois par mois", ["threeTimesAMonth", "monthly_3"];
        // "Bimensuel" is twice a month in French, not every two months.
        Semimonthly = 12, "semimonthly", "Deux fois par mois", ["monthly_2", "bimensuelle"];
        Monthly = 13, "monthly", "Mensuelle", ["mensuel", "mois", "Mensuelle ou plusieurs fois par mois"];
        Bimonthly = 14, "bimonthly", "Bimestrielle", ["bimestriel", "tous les deux mois"];
        Quarterly = 15, "quarterly", "Trimestrielle", ["trimestriel", "trimestre"];
        ThreeTimesAYear = 16, "three_times_a_year", "Trois fois par an", ["threeTimesAYear", "annual_3", "quadrimestrielle"];
        Semiannual = 17, "semiannual", "Semestrielle", ["semestriel", "annual_2", "deux fois par an"];
        Annual = 18, "annual", "Annuelle", ["annuel", "an", "année", "yearly", "Annuelle ou plusieurs fois par an"];
        Biennial = 19, "biennial", "Tous les deux ans", ["biennale"];
        Triennial = 20, "triennial", "Tous les trois ans", ["triennale"];
        Quinquennial = 21, "quinquennial", "Tous les cinq ans", ["quinquennale"];
        Irregular = 22, "irregular", "Irrégulière", ["irrégulier", "irreg", "au fil de l'eau", "variable",
            "sans régularité"];
    }
}

impl Frequency {
    /// The concept of the EU frequency vocabulary that DCAT-AP exports use.
    pub fn eu_uri(self) -> String {
        let code = match self {
            Frequency::Unknown => "UNKNOWN",
            Frequency::Punctual => "NEVER",
            Frequency::Continuous => "UPDATE_CONT",
            Frequency::Hourly => "HOURLY",
            Frequency::Semidaily => "DAILY_2",
            Frequency::Daily => "DAILY",
            Frequency::Semiweekly => "WEEKLY_2",
            Frequency::ThreeTimesAWeek => "WEEKLY_3",
            Frequency::Weekly => "WEEKLY",
            Frequency::Biweekly => "BIWEEKLY",
            Frequency::ThreeTimesAMonth => "MONTHLY_3",
            Frequency::Semimonthly => "MONTHLY_2",
            Frequency::Monthly => "MONTHLY",
            Frequency::Bimonthly => "BIMONTHLY",
            Frequency::Quarterly => "QUARTERLY",
            Frequency::ThreeTimesAYear => "ANNUAL_3",
            Frequency::Semiannual => "ANNUAL_2",
            Frequency::Annual => "ANNUAL",
            Frequency::Biennial => "BIENNIAL",
            Frequency::Triennial => "TRIENNIAL",
            Frequency::Quinquennial => "QUINQUENNIAL",
            Frequency::Irregular => "IRREG",
        };
        format!("http://publications.europa.eu/resource/authority/frequency/{code}")
    }
}

vocabulary! {
    /// The licences open data in France is published under.
    Licence, "licence" {
        Etalab2 = 1, "etalab-2.0", "Licence Ouverte 2.0",
            ["Licence Ouverte / Open Licence version 2.0", "Licence Ouverte v2.0", "LO 2.0",
             "Licence Ouverte", "Open Licence 2.0", "etalab", "lov2", "LO-2.0",
             // The SCDL catalogue's values (its specification, then its schema).
             "LO - Licence Ouverte", "Licence Ouverte-LO", "LO",
             "https://www.etalab.gouv.fr/wp-content/uploads/2017/04/ETALAB-Licence-Ouverte-v2.0.pdf",
             "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"];
        Etalab1 = 2, "etalab-1.0", "Licence Ouverte 1.0",
            ["Licence Ouverte / Open Licence", "Licence Ouverte v1.0", "LO 1.0", "fr-lo"];
        Odbl = 3, "odbl", "Open Database License (ODbL)",
            ["ODbL", "ODbL 1.0", "ODbL-1.0", "odc-odbl", "Open Database License",
             "ODbL - Open Database License", "Open Database License-ODBL",
             "http://opendatacommons.org/licenses/odbl/summary/",
             "http://opendatacommons.org/licenses/odbl/",
             "http://opendatacommons.org/licenses/odbl/1.0/"];
        OdcBy = 4, "odc-by", "Open Data Commons Attribution (ODC-By)", ["ODC-BY 1.0"];
        Pddl = 5, "pddl", "Open Data Commons Public Domain (PDDL)", ["odc-pddl"];
        CcBy = 6, "cc-by-4.0", "Creative Commons Attribution 4.0 (CC-BY)",
            ["CC-BY", "CC BY 4.0", "cc-by", "http://creativecommons.org/licenses/by/4.0/"];
        CcBySa = 7, "cc-by-sa-4.0", "Creative Commons Attribution – Partage dans les mêmes conditions 4.0 (CC-BY-SA)",
            ["CC-BY-SA", "CC BY-SA 4.0", "cc-by-sa", "http://creativecommons.org/licenses/by-sa/4.0/"];
        Cc0 = 8, "cc0-1.0", "Creative Commons Zéro (CC0)",
            ["CC0", "cc-zero", "domaine public", "http://creativecommons.org/publicdomain/zero/1.0/"];
        Other = 9, "other", "Autre licence", ["autre", "other-at", "other-open", "notspecified",
            "Spécifique ou autre", "spécifique", "licence spécifique"];
        // "CC - Creative Commons" says no more than that (SCDL).
        CreativeCommons = 10, "cc", "Creative Commons (sans précision)",
            ["Creative Commons", "CC - Creative Commons", "Creative Commons-CC"];
    }
}

impl Licence {
    /// The licence's URI for DCAT-AP exports; none for "other".
    pub fn uri(self) -> Option<&'static str> {
        Some(match self {
            Licence::Etalab2 => "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
            Licence::Etalab1 => {
                "https://www.etalab.gouv.fr/wp-content/uploads/2014/05/Licence_Ouverte.pdf"
            }
            Licence::Odbl => "https://opendatacommons.org/licenses/odbl/1-0/",
            Licence::OdcBy => "https://opendatacommons.org/licenses/by/1-0/",
            Licence::Pddl => "https://opendatacommons.org/licenses/pddl/1-0/",
            Licence::CcBy => "https://creativecommons.org/licenses/by/4.0/",
            Licence::CcBySa => "https://creativecommons.org/licenses/by-sa/4.0/",
            Licence::Cc0 => "https://creativecommons.org/publicdomain/zero/1.0/",
            Licence::Other | Licence::CreativeCommons => return None,
        })
    }
}

vocabulary! {
    /// The finest territorial unit a dataset describes (SCDL's COUV_SPAT_MAILLE).
    SpatialGranularity, "spatial granularity" {
        Pays = 1, "pays", "Pays", ["national", "France", "nation"];
        Region = 2, "region", "Région", ["régional"];
        Departement = 3, "departement", "Département", ["départemental"];
        Epci = 4, "epci", "EPCI", ["intercommunalité", "intercommunal"];
        Commune = 5, "commune", "Commune", ["communal", "municipal"];
        Iris = 6, "iris", "IRIS", ["infracommunal"];
        Quartier = 7, "quartier", "Quartier";
        Parcelle = 8, "parcelle", "Parcelle", ["cadastre", "parcellaire"];
        Adresse = 9, "adresse", "Adresse", ["point", "bâtiment"];
        Autre = 10, "autre", "Autre", ["other"];
        Canton = 11, "canton", "Canton", ["cantonal"];
    }
}

vocabulary! {
    /// Where an AI project stands (bibliothèque des projets IA).
    ProjectStatus, "project status" {
        Experimentation = 1, "experimentation", "En expérimentation",
            ["expérimentation", "en test", "pilote", "POC", "prototype", "en cours d'expérimentation"];
        Deploiement = 2, "deploiement", "En déploiement",
            ["déploiement", "déployé", "en production", "en service", "en cours de déploiement"];
        Termine = 3, "termine", "Terminé", ["achevé", "fini", "clos", "clôturé"];
        Abandonne = 4, "abandonne", "Abandonné", ["arrêté", "stoppé"];
    }
}

vocabulary! {
    /// The budget band of an AI project.
    BudgetBand, "budget band" {
        Under50k = 1, "under_50k", "Moins de 50 k€", ["< 50 k€", "<50k€", "< 50k", "moins de 50k€", "inférieur à 50 k€"];
        From50kTo100k = 2, "50k_to_100k", "Entre 50 et 100 k€", ["50-100 k€", "50 - 100 k€", "50k-100k", "entre 50k€ et 100k€", "de 50 à 100 k€"];
        Over100k = 3, "over_100k", "Plus de 100 k€", ["> 100 k€", ">100k€", "> 100k", "plus de 100k€", "supérieur à 100 k€"];
    }
}

vocabulary! {
    /// How a project was built.
    ImplementationMode, "implementation mode" {
        Internal = 1, "internal", "En interne", ["interne", "en régie", "régie"];
        External = 2, "external", "En externe", ["externe", "partenariat"];
        ServiceProvider = 3, "service_provider", "Prestataire", ["prestation", "prestataire de service", "éditeur"];
        PublicProcurement = 4, "public_procurement", "Marché public", ["commande publique", "appel d'offres", "achat public"];
    }
}

vocabulary! {
    /// The six themes of the bibliothèque des projets IA.
    ProjectTheme, "project theme" {
        EcologicalTransition = 1, "transition_ecologique", "Transition écologique et énergétique",
            ["transition écologique", "environnement", "énergie", "transition énergétique"];
        Attractiveness = 2, "attractivite", "Attractivité et développement",
            ["attractivité", "développement économique", "développement"];
        Citizenship = 3, "citoyennete", "Citoyenneté, santé et solidarité",
            ["citoyenneté", "santé", "solidarité", "social", "citoyenneté santé solidarité"];
        Mobility = 4, "mobilites", "Mobilités", ["mobilité", "transport"];
        Governance = 5, "gouvernance", "Gouvernance et socles technologiques",
            ["gouvernance", "socles technologiques", "socle technologique"];
        Administration = 6, "administration", "Administration et organisation interne",
            ["organisation interne", "administration interne", "fonctionnement interne"];
    }
}

vocabulary! {
    /// Who a project's service is for.
    Audience, "audience" {
        GeneralPublic = 1, "grand_public", "Grand public", ["public", "usagers", "habitants", "citoyens"];
        Beneficiary = 2, "beneficiaire", "Bénéficiaire", ["bénéficiaires", "allocataires"];
        Agent = 3, "agent", "Agent", ["agents", "agents publics", "personnel", "agents de la collectivité"];
        Association = 4, "association", "Association";
        Elected = 5, "elu", "Élu", ["élus", "élue"];
        Businesses = 6, "entreprises", "Entreprises", ["entreprise", "acteurs économiques"];
        Collectivities = 7, "collectivites", "Collectivités", ["collectivité", "collectivités territoriales"];
        School = 8, "etablissement_scolaire", "Établissement scolaire", ["établissements scolaires", "écoles", "collèges", "lycées"];
        Health = 9, "etablissement_sante", "Établissement de santé", ["établissements de santé", "hôpitaux", "établissement de santé"];
        // In the bibliothèque's own export.
        Developers = 10, "amenageurs", "Aménageurs", ["aménageur", "aménageurs urbains", "promoteurs", "urbanistes"];
    }
}

vocabulary! {
    /// Where a project runs.
    Hosting, "hosting" {
        ThirdPartyCloud = 1, "third_party_cloud", "Cloud tiers", ["cloud", "cloud externe", "SaaS", "hébergement externe"];
        InHouse = 2, "in_house", "Hébergement interne", ["interne", "on premise", "on-premise", "sur site", "serveurs de la collectivité"];
        Unknown = 3, "unknown", "Inconnu", ["ne sait pas", "non renseigné", "NSP"];
    }
}

vocabulary! {
    /// The family of an AI algorithm.
    AlgorithmType, "algorithm type" {
        MachineLearning = 1, "machine_learning", "Apprentissage automatique", ["machine learning", "ML", "apprentissage machine"];
        Nlp = 2, "nlp", "Traitement automatique du langage", ["NLP", "TAL", "traitement du langage naturel", "natural language processing"];
        GenerativeAi = 3, "generative_ai", "IA générative", ["IA générative", "IAG", "GenAI", "LLM", "generative AI"];
        ComputerVision = 4, "computer_vision", "Vision par ordinateur", ["vision", "computer vision", "reconnaissance d'images"];
        NeuralNetworks = 5, "neural_networks", "Réseaux de neurones", ["réseau de neurones", "deep learning", "apprentissage profond"];
        Unknown = 6, "unknown", "Inconnu", ["ne sait pas", "non renseigné", "autre"];
    }
}

vocabulary! {
    /// Where a project's data comes from.
    DataSource, "data source" {
        Users = 1, "users", "Données des usagers", ["usagers", "utilisateurs", "données utilisateurs"];
        InternalDataset = 2, "internal_dataset", "Données internes", ["interne", "jeu de données interne", "données de la collectivité"];
        OpenData = 3, "open_data", "Données ouvertes", ["open data", "opendata", "données publiques"];
        ThirdParty = 4, "third_party", "Données de tiers", ["tiers", "données tierces", "partenaires"];
    }
}

vocabulary! {
    /// How a project reaches its data.
    DataAccessMode, "data access mode" {
        Api = 1, "api", "API", ["interface de programmation"];
        Automated = 2, "automated", "Automatisé", ["automatique", "flux automatisé", "batch"];
        Manual = 3, "manual", "Manuel", ["manuelle", "saisie manuelle", "à la main"];
    }
}

vocabulary! {
    /// The AI Act's risk categories.
    RiskCategory, "AI Act risk category" {
        Minimal = 1, "minimal", "Risque minimal", ["minimal", "faible", "aucun"];
        Limited = 2, "limited", "Risque limité", ["limité"];
        High = 3, "high", "Haut risque", ["élevé", "risque élevé", "haut"];
        Unacceptable = 4, "unacceptable", "Risque inacceptable", ["inacceptable", "interdit"];
    }
}

vocabulary! {
    /// A three-step scale: error level, explainability.
    Level, "level" {
        Low = 1, "low", "Faible", ["bas", "basse"];
        Medium = 2, "medium", "Moyen", ["moyenne", "modéré"];
        High = 3, "high", "Élevé", ["haut", "haute", "fort", "forte", "élevée"];
    }
}

vocabulary! {
    /// What a Resource record is.
    ResourceKind, "resource kind" {
        EthicsCharter = 1, "ethics_charter", "Charte éthique", ["charte", "charte d'éthique", "charte IA"];
        Strategy = 2, "strategy", "Stratégie IA ou données", ["stratégie", "stratégie IA", "stratégie données", "stratégie data"];
        Code = 3, "code", "Code source", ["logiciel", "dépôt de code"];
        Model = 4, "model", "Modèle", ["modèle d'IA", "modèle entraîné"];
        TrainingData = 5, "training_data", "Données d'entraînement", ["jeu d'entraînement", "corpus"];
        Prompt = 6, "prompt", "Entrée de bibliothèque de prompts", ["prompts", "bibliothèque de prompts"];
        Guide = 7, "guide", "Guide", ["guide pratique", "méthode", "tutoriel"];
    }
}

vocabulary! {
    /// What a membership lets its key do (see record.proto).
    MembershipRole, "membership role" {
        Member = 1, "member", "Membre", ["membre"];
        ChefDeFile = 2, "chef_de_file", "Chef de file", ["chef-de-file"];
        Committee = 3, "committee", "Comité territorial de la donnée", ["comité", "comite", "CTD"];
    }
}

/// The EU data themes (code, French label), recognised by code, French label
/// or IRI (the code is its last segment).
pub fn eu_data_theme(t: &str) -> Option<(&'static str, &'static str)> {
    const THEMES: [(&str, &str); 14] = [
        ("AGRI", "Agriculture, pêche, sylviculture et alimentation"),
        ("ECON", "Économie et finances"),
        ("EDUC", "Éducation, culture et sport"),
        ("ENER", "Énergie"),
        ("ENVI", "Environnement"),
        ("GOVE", "Gouvernement et secteur public"),
        ("HEAL", "Santé"),
        ("INTR", "Questions internationales"),
        ("JUST", "Justice, système juridique et sécurité publique"),
        ("REGI", "Régions et villes"),
        ("SOCI", "Population et société"),
        ("TECH", "Science et technologie"),
        ("TRAN", "Transports"),
        ("OP_DATPRO", "Données provisoires"),
    ];
    let norm = normalize(t);
    let code = t
        .trim()
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    THEMES
        .into_iter()
        .find(|(c, label)| *c == code || normalize(label) == norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_people_write_map_to_one_value() {
        for (input, want) in [
            ("Terminé", ProjectStatus::Termine),
            ("Terminée", ProjectStatus::Termine),
            ("TERMINE", ProjectStatus::Termine),
            ("en expérimentation", ProjectStatus::Experimentation),
            (" En Déploiement ", ProjectStatus::Deploiement),
            ("abandonnée", ProjectStatus::Abandonne),
        ] {
            assert_eq!(ProjectStatus::parse(input), Ok(want), "{input}");
        }
        assert_eq!(Audience::parse("Élus"), Ok(Audience::Elected));
        assert_eq!(Audience::parse("entreprise"), Ok(Audience::Businesses));
        assert_eq!(
            Audience::parse("Établissements scolaires"),
            Ok(Audience::School)
        );
        assert_eq!(EpciNature::parse("Métropole"), Ok(EpciNature::Metropole));
        assert_eq!(EpciNature::parse("METRO"), Ok(EpciNature::Metropole));
        assert_eq!(BudgetBand::parse("< 50 k€"), Ok(BudgetBand::Under50k));
        assert_eq!(BudgetBand::parse("> 100 k€"), Ok(BudgetBand::Over100k));
        assert_eq!(
            BudgetBand::parse("50-100 k€"),
            Ok(BudgetBand::From50kTo100k)
        );
        assert_eq!(
            Frequency::parse("threeTimesAWeek"),
            Ok(Frequency::ThreeTimesAWeek)
        );
        assert_eq!(Frequency::parse("Mensuelle"), Ok(Frequency::Monthly));
        assert_eq!(Licence::parse("Licence Ouverte 2.0"), Ok(Licence::Etalab2));
        assert_eq!(Licence::parse("ODbL"), Ok(Licence::Odbl));
        assert_eq!(
            ProjectTheme::parse("Citoyenneté, santé et solidarité"),
            Ok(ProjectTheme::Citizenship)
        );
    }

    #[test]
    fn an_unknown_value_is_quoted_with_the_accepted_ones() {
        let e = ProjectStatus::parse("En pause").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("'En pause'"), "{text}");
        assert!(text.contains("project status"), "{text}");
        for v in ProjectStatus::ALL {
            assert!(text.contains(v.as_str()), "{text}");
        }
        assert!(ProjectStatus::parse("").is_err());
    }

    #[test]
    fn every_vocabulary_is_unambiguous_and_round_trips() {
        fn check<T: Copy + PartialEq + std::fmt::Debug, I: Iterator<Item = &'static str>>(
            all: &[T],
            parse: fn(&str) -> Result<T, UnknownTerm>,
            canon: fn(T) -> &'static str,
            label: fn(T) -> &'static str,
            code: fn(T) -> i32,
            from_code: fn(i32) -> Option<T>,
            names: fn(T) -> I,
        ) {
            let mut codes = std::collections::HashSet::new();
            let mut seen = std::collections::HashMap::new();
            for v in all {
                for n in names(*v) {
                    let norm = normalize(n);
                    assert!(!norm.is_empty(), "{n}");
                    if let Some(other) = seen.insert(norm.clone(), *v) {
                        assert_eq!(other, *v, "'{n}' ({norm}) names two values");
                    }
                }
                assert_eq!(parse(canon(*v)), Ok(*v));
                assert_eq!(parse(label(*v)), Ok(*v), "{}", label(*v));
                assert_eq!(from_code(code(*v)), Some(*v));
                assert!(code(*v) > 0 && codes.insert(code(*v)));
            }
            assert_eq!(from_code(0), None);
        }
        macro_rules! all {
            ($($t:ident),*) => {$(
                check($t::ALL, $t::parse, $t::as_str, $t::label, $t::code, $t::from_code, $t::names);
            )*};
        }
        all!(
            OrganisationKind,
            EpciNature,
            Frequency,
            Licence,
            SpatialGranularity,
            ProjectStatus,
            BudgetBand,
            ImplementationMode,
            ProjectTheme,
            Audience,
            Hosting,
            AlgorithmType,
            DataSource,
            DataAccessMode,
            RiskCategory,
            Level,
            ResourceKind,
            MembershipRole
        );
    }
}

#[cfg(test)]
mod specification_tests {
    use super::*;

    /// Every value the SCDL catalogue lists (its 2018 specification and its
    /// schema 0.1.3) and Etalab's catalogue example writes is known as such:
    /// a file written to them imports without a warning.
    #[test]
    fn the_specifications_values_are_known() {
        use Frequency as F;
        for (written, want) in [
            ("Inconnue", F::Unknown),
            ("Ponctuelle", F::Punctual),
            ("Sans régularité", F::Irregular),
            ("Irrégulière", F::Irregular),
            ("Temps réel", F::Continuous),
            ("Continuelle", F::Continuous),
            ("Toutes les heures", F::Hourly),
            ("Quotidienne ou plusieurs fois par jour", F::Daily),
            ("Hebdomadaire ou plusieurs fois par semaine", F::Weekly),
            ("Mensuelle ou plusieurs fois par mois", F::Monthly),
            ("Bimestrielle", F::Bimonthly),
            ("Trimestrielle", F::Quarterly),
            ("Semestrielle", F::Semiannual),
            ("Annuelle", F::Annual),
            ("Annuelle ou plusieurs fois par an", F::Annual),
            ("Biennale", F::Biennial),
            ("Triennale", F::Triennial),
            ("Quinquennale", F::Quinquennial),
        ] {
            assert_eq!(F::parse(written), Ok(want), "{written}");
        }
        use Licence as L;
        for (written, want) in [
            ("LO - Licence Ouverte", L::Etalab2),
            ("Licence Ouverte-LO", L::Etalab2),
            ("Licence ouverte", L::Etalab2),
            ("ODbL - Open Database License", L::Odbl),
            ("Open Database License-ODBL", L::Odbl),
            ("CC - Creative Commons", L::CreativeCommons),
            ("Creative Commons-CC", L::CreativeCommons),
            ("Spécifique ou autre", L::Other),
        ] {
            assert_eq!(L::parse(written), Ok(want), "{written}");
        }
        use SpatialGranularity as G;
        for (written, want) in [
            ("Infracommunale", G::Iris),
            ("Communale", G::Commune),
            ("Intercommunale", G::Epci),
            ("Cantonale", G::Canton),
            ("Départementale", G::Departement),
            ("Régionale", G::Region),
            ("Autre", G::Autre),
        ] {
            assert_eq!(G::parse(written), Ok(want), "{written}");
        }
        assert_eq!(Audience::parse("Aménageurs"), Ok(Audience::Developers));
    }

    /// What people write around a known name reads as that name; the
    /// longest name found wins; nothing found is nothing.
    #[test]
    fn the_nearest_value_is_the_longest_name_found() {
        assert_eq!(
            Licence::nearest("Licence Ouverte v2.0 (Etalab)"),
            Some(Licence::Etalab2)
        );
        assert_eq!(
            Licence::nearest("Open Database License (ODbL) Paris"),
            Some(Licence::Odbl)
        );
        assert_eq!(
            Frequency::nearest("Mensuelle, parfois plus"),
            Some(Frequency::Monthly)
        );
        // "an" is a name of annual; "semestriel" is longer.
        assert_eq!(
            Frequency::nearest("semestrielle (deux fois par an)"),
            Some(Frequency::Semiannual)
        );
        assert_eq!(Frequency::nearest("Quand nécessaire"), None);
        assert_eq!(Licence::nearest(""), None);
        // Words, not letters: "odbl" is not found in "odblique".
        assert_eq!(Licence::nearest("odblique"), None);
    }
}
