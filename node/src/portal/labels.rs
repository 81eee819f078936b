//! French words for what records hold: each field's label, and the label of
//! a vocabulary's value (`in_production` → « En production »). No IO.

use maillage_record::vocab::{
    AlgorithmType, Audience, BudgetBand, DataAccessMode, DataSource, Frequency, Hosting,
    ImplementationMode, Level, Licence, OrganisationKind, ProjectStatus, ProjectTheme,
    ResourceKind, RiskCategory, SpatialGranularity,
};

/// A field's French label; `None` for a field shown by other means (or
/// not at all) on a record's page.
pub fn field(name: &str) -> Option<&'static str> {
    Some(match name {
        // Datasets
        "title" => "Titre",
        "description" => "Description",
        "keywords" => "Mots-clés",
        "themes" => "Thèmes",
        "identifier" => "Identifiant",
        "landing_page" => "Page de présentation",
        "licence" => "Licence",
        "distributions" => "Distributions (fichiers, API)",
        "publisher" => "Producteur",
        "contact_point" => "Contact",
        "spatial" => "Couverture géographique",
        "temporal" => "Couverture temporelle",
        "frequency" => "Fréquence de mise à jour",
        "issued" => "Date de publication",
        "modified" => "Date de mise à jour",
        // Projects
        "name" => "Nom",
        "status" => "Statut",
        "abandon_reason" => "Raison de l'abandon",
        "start_date" => "Date de début",
        "website" => "Site web",
        "organisation_name" => "Organisation",
        "siret" => "SIRET",
        "organisation_kind" => "Type d'organisation",
        "partners" => "Partenaires",
        "implementation_mode" => "Mode de mise en œuvre",
        "theme" => "Thème",
        "sub_themes" => "Sous-thèmes",
        "audiences" => "Publics concernés",
        "risk_category" => "Catégorie de risque (règlement européen sur l'IA)",
        "proportionality" => "Proportionnalité",
        "human_oversight" => "Contrôle humain",
        "error_level" => "Niveau d'erreur",
        "explainability" => "Explicabilité",
        "reversibility" => "Réversibilité",
        "objection_procedure" => "Comment s'y opposer ou contester une décision",
        "links" => "Liens",
        "latitude" => "Latitude",
        "longitude" => "Longitude",
        "logo_url" => "Logo",
        "legal_basis" => "Base légale",
        "dpia_reference" => "Analyse d'impact (AIPD)",
        "monitoring" => "Suivi",
        "codebase_url" => "Code source",
        "datasets" => "Jeux de données utilisés",
        "last_updated" => "Dernière mise à jour",
        // Organisations
        "siren" => "SIREN",
        "kind" => "Type",
        "territory" => "Territoire",
        "email" => "Courriel",
        "phone" => "Téléphone",
        // Resources, collections, withdrawals
        "url" => "Adresse",
        "format" => "Format",
        "media_type" => "Type de média",
        "dataset" => "Jeu de données",
        "project" => "Projet",
        "items" => "Éléments",
        "reason" => "Motif",
        "record_id" => "Identifiant de l'enregistrement",
        // Projects' details
        "contact" => "Contact",
        "funding" => "Financement",
        "budget" => "Budget",
        "hosting" => "Hébergement",
        "hosting_location" => "Lieu d'hébergement",
        "algorithm_name" => "Algorithme ou modèle",
        "algorithm_description" => "Description de l'algorithme",
        "algorithm_operations" => "Fonctionnement de l'algorithme",
        "algorithm_types" => "Types d'algorithme",
        "data_sources" => "Sources des données",
        "data_access_modes" => "Accès aux données",
        "environmental_impact" => "Impact environnemental",
        "energy_kwh_per_year" => "Énergie consommée (kWh par an)",
        "emissions_kgco2e_per_year" => "Émissions (kg CO₂e par an)",
        "resources" => "Ressources",
        _ => return None,
    })
}

/// The French label of a vocabulary's value, for the fields that hold one.
pub fn value(field: &str, value: &str) -> Option<&'static str> {
    fn find<T: Copy>(
        all: &[T],
        as_str: fn(T) -> &'static str,
        label: fn(T) -> &'static str,
        v: &str,
    ) -> Option<&'static str> {
        all.iter().find(|x| as_str(**x) == v).map(|x| label(*x))
    }
    macro_rules! of {
        ($t:ty) => {
            find(<$t>::ALL, <$t>::as_str, <$t>::label, value)
        };
    }
    match field {
        "status" => of!(ProjectStatus),
        "theme" => of!(ProjectTheme),
        "audiences" => of!(Audience),
        "risk_category" => of!(RiskCategory),
        "error_level" | "explainability" => of!(Level),
        "implementation_mode" => of!(ImplementationMode),
        "organisation_kind" | "kind" => of!(OrganisationKind),
        "frequency" => of!(Frequency),
        "licence" => of!(Licence),
        "granularity" => of!(SpatialGranularity),
        "hosting" => of!(Hosting),
        "data_sources" => of!(DataSource),
        "access_mode" | "data_access_modes" => of!(DataAccessMode),
        "algorithm_types" => of!(AlgorithmType),
        "budget" => of!(BudgetBand),
        "resource_kind" => of!(ResourceKind),
        _ => None,
    }
}

/// What trust says of an author (`Hit::author_trust`), in French.
pub fn trust(t: &str) -> &'static str {
    match t {
        "own" => "ce nœud",
        "root" => "racine de confiance de ce nœud",
        "member" => "membre de la fédération",
        "revoked" => "clé révoquée",
        "succeeded" => "clé remplacée par une nouvelle",
        _ => "ancien membre",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_values_read_in_french() {
        assert_eq!(
            value("status", ProjectStatus::ALL[0].as_str()),
            Some(ProjectStatus::ALL[0].label())
        );
        assert_eq!(value("status", "no-such-status"), None);
        assert_eq!(
            field("objection_procedure"),
            Some("Comment s'y opposer ou contester une décision")
        );
    }
}
