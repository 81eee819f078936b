//! Signed aggregates on the portal: their figures as tables, on a
//! territory's page and on the aggregate's own record page. No IO.

use maillage_record::aggregate::UNSPECIFIED;
use maillage_record::model::{Aggregate, Figure};
use maud::{Markup, html};

use super::{labels, view};
use crate::aggregate::Shown;

/// A group's French title; the unit its figures count.
fn group(name: &str) -> (&'static str, &'static str) {
    match name {
        "organisations" => ("Organisations comptées", "organisations"),
        "datasets" => ("Jeux de données", "jeux de données"),
        "projects" => ("Projets d'IA", "projets"),
        "theme" => ("Projets par thème", "projets"),
        "status" => ("Projets par statut", "projets"),
        "risk" => ("Projets par catégorie de risque", "projets"),
        "implementation_mode" => ("Projets par mode de mise en œuvre", "projets"),
        "organisation_kind" => ("Projets par type d'organisation", "projets"),
        "population_band" => ("Projets par taille de commune", "projets"),
        "project_details" => ("Projets décrits en détail", "projets"),
        "budget" => ("Projets par budget", "projets"),
        "hosting" => ("Projets par hébergement", "projets"),
        "algorithm_type" => ("Projets par type d'algorithme", "projets"),
        "energy_kwh_per_year" => ("Énergie consommée déclarée (kWh par an)", "projets"),
        "emissions_kgco2e_per_year" => ("Émissions déclarées (kg CO₂e par an)", "projets"),
        "reuse" => ("Réutilisations déclarées", "réutilisations"),
        "reused_projects" => ("Projets réutilisés", "projets"),
        _ => ("Autres chiffres", ""),
    }
}

/// A value's French label.
fn value(group: &str, v: &str) -> String {
    if v == UNSPECIFIED {
        return "Non renseigné".into();
    }
    let field = match group {
        "risk" => "risk_category",
        "algorithm_type" => "algorithm_types",
        other => other,
    };
    if let Some(l) = labels::value(field, v) {
        return l.to_string();
    }
    match v {
        "moins_de_2000" => "Moins de 2 000 habitants".into(),
        "2000_a_9999" => "De 2 000 à 9 999 habitants".into(),
        "10000_a_49999" => "De 10 000 à 49 999 habitants".into(),
        "50000_a_199999" => "De 50 000 à 199 999 habitants".into(),
        "200000_et_plus" => "200 000 habitants et plus".into(),
        other => other.to_string(),
    }
}

fn count(f: &Figure) -> Markup {
    match f.records {
        None => html! { span class="secret" { "secret" } },
        Some(n) => html! {
            @if f.lower_bound { "au moins " }
            (n)
            @if let Some(sum) = f.sum { " (total " (format_sum(sum)) ")" }
        },
    }
}

fn format_sum(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}").replace('.', ",")
    }
}

/// An aggregate's figures: the totals as a list, each group as a table.
pub(super) fn figures(a: &Aggregate) -> Markup {
    let mut groups: Vec<(&str, Vec<&Figure>)> = Vec::new();
    for f in &a.figures {
        match groups.last_mut() {
            Some((g, fs)) if *g == f.group => fs.push(f),
            _ => groups.push((&f.group, vec![f])),
        }
    }
    let totals: Vec<&Figure> = a.figures.iter().filter(|f| f.value.is_empty()).collect();
    html! {
        ul class="grille" {
            @for f in &totals {
                li class="carte-chiffre" { strong { (count(f)) } (group(&f.group).0) }
            }
        }
        @for (g, fs) in &groups {
            @if fs.iter().any(|f| !f.value.is_empty()) {
                @let (title, unit) = group(g);
                table {
                    caption { (title) }
                    thead { tr { th scope="col" { "Valeur" } th scope="col" { "Nombre de " (unit) } th scope="col" { "Organisations" } } }
                    tbody {
                        @for f in fs {
                            tr {
                                td { (value(g, &f.value)) }
                                td { (count(f)) }
                                td { @match f.organisations { Some(n) => (n), None => "—" } }
                            }
                        }
                    }
                }
            }
        }
        p class="note" {
            "Un chiffre issu de moins de 3 organisations est secret, ainsi que, dans un tableau "
            "dont il ferait deviner la valeur, le plus petit des autres. "
            "« Au moins » : la somme des parties connues d'un regroupement."
        }
    }
}

/// The aggregates of a territory, for its page.
pub(super) fn section(shown: &[Shown]) -> Markup {
    html! {
        section aria-labelledby="agregats" {
            h2 id="agregats" { "Statistiques signées" }
            p {
                "Calculées par un chef de file ou un comité à partir des enregistrements de ses "
                "membres, détails réservés à la fédération compris, et signées : chaque nœud qui "
                "détient les mêmes enregistrements les recalcule ("
                code { "maillage aggregate verify" } ")."
            }
            @for s in shown {
                @let a = &s.aggregate;
                article class="agregat" {
                    h3 {
                        a href=(view::record_href(&s.author.to_hex(), &s.record_id)) {
                            (heading(a))
                        }
                    }
                    p class="meta" {
                        "Signé par " (s.organisation.as_deref().unwrap_or("une clé sans organisation connue"))
                        ", état au " (maillage_record::json::format_time(a.as_of_ms).get(..10).unwrap_or(""))
                        @if a.combines.is_empty() {
                            ", calculé à partir des enregistrements de " (a.organisations.len()) " organisations"
                        } @else {
                            ", somme de " (a.combines.len()) " agrégats"
                        }
                        "."
                    }
                    (figures(a))
                }
            }
        }
    }
}

/// « Toulouse Métropole, 2026-T3 ».
pub(super) fn heading(a: &Aggregate) -> String {
    let place = maillage_record::territory::Place::parse(&a.territory)
        .map_or_else(|_| "France".to_string(), |p| p.label());
    match &a.period {
        Some(p) => format!("{place}, {p}"),
        None => place,
    }
}
