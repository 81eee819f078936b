//! The portal's page chrome and the pieces pages share, as maud templates:
//! every value is escaped as it is written (a title `<script>` is shown as
//! text), and nothing here reads the store.

use maud::{DOCTYPE, Markup, html};

use maillage_record::territory::Place;

use super::labels;

/// What every page says of the node that serves it, and of who is
/// signed in.
pub struct Site<'a> {
    /// The organisation running the node.
    pub name: &'a str,
    /// The agent signed in, if one is.
    pub account: Option<Account<'a>>,
    /// Whether agents may sign in on this node.
    pub signin: bool,
}

/// A signed-in agent, as the page header names it.
pub struct Account<'a> {
    pub name: &'a str,
    pub siren: &'a str,
}

/// A whole page: skip link, header with the search form, main content,
/// footer. `title` is the page's own title (the site's name follows it).
pub fn page(site: &Site<'_>, title: &str, query: &str, main: Markup) -> Markup {
    page_with(site, title, query, html! {}, main)
}

/// A page with more in its head (the map's stylesheet and scripts).
pub fn page_with(site: &Site<'_>, title: &str, query: &str, head: Markup, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — maillage, " (site.name) }
                link rel="stylesheet" href="/static/maillage.css";
                (head)
            }
            body {
                a class="evitement" href="#contenu" { "Aller au contenu" }
                header role="banner" {
                    p class="site" {
                        a href="/" { "maillage" }
                        span { " · catalogue fédéré des collectivités, servi par " (site.name) }
                    }
                    nav aria-label="Menu principal" {
                        ul {
                            li { a href="/" { "Accueil" } }
                            li { a href="/recherche" { "Rechercher" } }
                            li { a href="/carte" { "Carte des projets" } }
                            li { a href="/catalog.jsonld" { "Catalogue DCAT-AP" } }
                            @if let Some(a) = &site.account {
                                li { a href="/propositions" { "Propositions" } }
                                li class="compte" {
                                    a href="/compte" { "Mon compte (" (a.name) ", SIREN " (a.siren) ")" }
                                }
                            } @else if site.signin {
                                li class="compte" { a href="/connexion" { "Se connecter" } }
                            }
                        }
                    }
                    form role="search" action="/recherche" method="get" {
                        label for="q" { "Rechercher dans le catalogue" }
                        input type="search" id="q" name="q" value=(query) maxlength="500";
                        button type="submit" { "Rechercher" }
                    }
                }
                main id="contenu" tabindex="-1" {
                    (main)
                }
                footer role="contentinfo" {
                    p {
                        "Nœud maillage de " (site.name) ". Chaque enregistrement est signé par son auteur ; "
                        "ce nœud vérifie chaque signature avant de le conserver. "
                        @if site.account.is_some() { "Vous voyez aussi ce que la fédération réserve à votre organisation." }
                        @else { "Données publiques seulement." }
                    }
                    p {
                        "Pour les moissonneurs : "
                        a href="/catalog.jsonld" { "DCAT-AP (JSON-LD)" } ", "
                        a href="/catalog.ttl" { "DCAT-AP (Turtle)" } ", "
                        a href="/projects.json" { "projets (JSON)" } "."
                    }
                }
            }
        }
    }
}

/// A page that says what went wrong, with where to go next.
pub fn problem(site: &Site<'_>, title: &str, explanation: &str) -> Markup {
    page(
        site,
        title,
        "",
        html! {
            h1 { (title) }
            p { (explanation) }
            p { a href="/" { "Revenir à l'accueil" } " ou " a href="/recherche" { "rechercher dans le catalogue" } "." }
        },
    )
}

/// A record's address on this portal (the IRI the DCAT export mints,
/// relative).
pub fn record_href(author_hex: &str, record_id: &str) -> String {
    // Both encoded: a reference inside a record names its author as the
    // record wrote it.
    format!("/records/{}/{}", encode(author_hex), encode(record_id))
}

/// A territory's page: `/territoires/31555`, `/territoires/reg:76` (a
/// région needs its prefix: "76" alone is a département's code).
pub fn territory_href(place: &Place) -> String {
    match place {
        Place::Region(code) => format!("/territoires/reg:{}", encode(code)),
        other => format!("/territoires/{}", encode(other.code())),
    }
}

/// Percent-encodes a path segment or a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A definition list of a record's fields (its JSON form), each under its
/// French label, vocabulary values in French; nested values as text.
pub fn fields(doc: &serde_json::Value, skip: &[&str]) -> Markup {
    let Some(obj) = doc.as_object() else {
        return html! {};
    };
    html! {
        dl class="champs" {
            @for (name, value) in obj {
                @if !skip.contains(&name.as_str()) && !is_empty(value) {
                    @let label = labels::field(name).unwrap_or(name.as_str());
                    dt { (label) }
                    dd { (field_value(name, value)) }
                }
            }
        }
    }
}

fn is_empty(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::String(s) => s.trim().is_empty(),
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// One field's value: a vocabulary's value by its label, an address as a
/// link (http and https only), a list as a list.
fn field_value(name: &str, v: &serde_json::Value) -> Markup {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            if let Some(label) = labels::value(name, s) {
                html! { (label) }
            } else if maillage_record::model::is_http_url(s) {
                html! { a href=(s) rel="nofollow noopener" { (s) } }
            } else {
                html! { span class="texte" { (s) } }
            }
        }
        Value::Array(items) => html! {
            ul {
                @for item in items { li { (field_value(name, item)) } }
            }
        },
        Value::Object(o) => html! {
            dl class="imbrique" {
                @for (k, item) in o {
                    @if !is_empty(item) {
                        dt { (labels::field(k).unwrap_or(k.as_str())) }
                        dd { (field_value(k, item)) }
                    }
                }
            }
        },
        Value::Bool(b) => html! { (if *b { "oui" } else { "non" }) },
        Value::Number(n) => html! { (n.to_string()) },
        Value::Null => html! {},
    }
}

/// Milliseconds since the epoch as a date and time in UTC, the way the
/// portal writes them ("7 décembre 2026 à 11 h 25 UTC").
pub fn when(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{day} {} {year} à {} h {:02} UTC",
        MONTHS[(month - 1) as usize],
        rest / 3600,
        (rest % 3600) / 60
    )
}

/// The start of a long hex string, for people (the whole is in a title).
pub fn short(hex: &str) -> Markup {
    html! { abbr title=(hex) { code { (&hex[..hex.len().min(12)]) "…" } } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_french() {
        assert_eq!(when(0), "1 janvier 1970 à 0 h 00 UTC");
        // 2026-12-07T11:25:00Z
        assert_eq!(when(1_796_642_700_000), "7 décembre 2026 à 11 h 25 UTC");
    }

    #[test]
    fn values_are_escaped() {
        let doc = serde_json::json!({"title": "<script>alert(1)</script>"});
        let html = fields(&doc, &[]).into_string();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
    }

    #[test]
    fn only_web_addresses_become_links() {
        let doc = serde_json::json!({"website": "javascript:alert(1)", "landing_page": "https://example.fr/x"});
        let html = fields(&doc, &[]).into_string();
        assert!(!html.contains("href=\"javascript"), "{html}");
        assert!(html.contains("href=\"https://example.fr/x\""), "{html}");
    }
}
