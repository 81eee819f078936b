//! The fields whose values are counted: a search's facets, what statistics
//! group by, and the projects' figures. Each is named once here: its column
//! in the index and its name in responses.

use maillage_record::Kind;
use maillage_record::territory::{self, Place};
use maillage_record::vocab::{
    BudgetBand, ProjectStatus, ProjectTheme, RiskCategory, eu_data_theme,
};

/// A counted field: a keyword column of the index (`document.rs` makes it,
/// `tally.rs` counts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Facet {
    Kind,
    Theme,
    /// The organisation a record speaks for, by SIREN.
    Organisation,
    /// Its départements.
    Territory,
    Status,
    Risk,
    Budget,
    /// The quarter a record dates from (a project's start, a dataset's
    /// issue, else its signature): "2025-T1".
    Quarter,
}

impl Facet {
    /// The facets a search shows, in the order they are counted.
    pub const SEARCHED: [Facet; 5] = [
        Facet::Kind,
        Facet::Theme,
        Facet::Organisation,
        Facet::Territory,
        Facet::Status,
    ];

    /// Its name among a search's facets.
    pub fn name(self) -> &'static str {
        match self {
            Facet::Kind => "kind",
            Facet::Theme => "theme",
            Facet::Organisation => "organisation",
            Facet::Territory => "territory",
            Facet::Status => "status",
            Facet::Risk => "risk",
            Facet::Budget => "budget",
            Facet::Quarter => "quarter",
        }
    }

    /// Its field in the index, whose fast-field column is counted.
    pub fn column(self) -> &'static str {
        match self {
            Facet::Kind => "kind",
            Facet::Theme => "theme",
            Facet::Organisation => "org",
            Facet::Territory => "dep",
            Facet::Status => "status",
            Facet::Risk => "risk",
            Facet::Budget => "budget",
            Facet::Quarter => "quarter",
        }
    }

    /// A readable label for one of its values (the value itself if it has
    /// none).
    pub fn label(self, value: &str) -> String {
        let found = match self {
            Facet::Kind => Kind::parse(value).ok().map(|k| k.label().to_string()),
            Facet::Theme => ProjectTheme::parse(value)
                .ok()
                .map(|t| t.label())
                .or_else(|| eu_data_theme(value).map(|(_, l)| l))
                .map(str::to_string),
            Facet::Status => ProjectStatus::parse(value)
                .ok()
                .map(|s| s.label().to_string()),
            Facet::Risk => RiskCategory::parse(value)
                .ok()
                .map(|s| s.label().to_string()),
            Facet::Budget => BudgetBand::parse(value).ok().map(|s| s.label().to_string()),
            Facet::Organisation => territory::by_siren(value).map(|c| c.name.clone()),
            Facet::Territory => Some(Place::Departement(value.to_string()).label()),
            Facet::Quarter => value.split_once("-T").map(|(year, q)| {
                let nth = if q == "1" {
                    "1er".to_string()
                } else {
                    format!("{q}e")
                };
                format!("{nth} trimestre {year}")
            }),
        };
        found.unwrap_or_else(|| value.to_string())
    }
}
