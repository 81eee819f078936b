//! The proposal forms (issue 22): what each kind of record asks, how a
//! form becomes a record document, and how a document fills a form again
//! (to edit a record, or amend a proposal).
//!
//! An edit starts from the record as it is: the fields the form does not
//! show are kept, so a project imported with its risk category keeps it.

use std::collections::HashMap;

use maillage_record::Kind;
use maillage_record::vocab::{
    AlgorithmType, BudgetBand, DataSource, Hosting, ProjectStatus, ProjectTheme,
};
use maud::{Markup, html};
use serde_json::{Map, Value};

use crate::proposals::Change;
use crate::signin::Session;

/// How a field is written.
#[derive(Clone, Copy)]
enum Input {
    Text,
    Textarea,
    Url,
    Email,
    /// A decimal number, with a point or a comma.
    Number,
    /// Words separated by commas, kept as a list.
    List,
    /// One value of a vocabulary.
    Choice(fn() -> Vec<(&'static str, &'static str)>),
    /// Any values of a vocabulary (check boxes).
    Several(fn() -> Vec<(&'static str, &'static str)>),
    /// Who may see the record.
    Visibility,
}

struct Field {
    /// Where it is in the record's JSON document.
    path: &'static [&'static str],
    label: &'static str,
    input: Input,
    required: bool,
}

impl Field {
    fn name(&self) -> String {
        self.path.join("-")
    }
}

macro_rules! choices {
    ($vocab:ty) => {
        || {
            <$vocab>::ALL
                .iter()
                .map(|v| (v.as_str(), v.label()))
                .collect()
        }
    };
}

const fn field(
    path: &'static [&'static str],
    label: &'static str,
    input: Input,
    required: bool,
) -> Field {
    Field {
        path,
        label,
        input,
        required,
    }
}

const PROJECT: &[Field] = &[
    field(&["name"], "Nom du projet", Input::Text, true),
    field(
        &["description"],
        "Description du service rendu",
        Input::Textarea,
        true,
    ),
    field(
        &["status"],
        "Statut",
        Input::Choice(choices!(ProjectStatus)),
        true,
    ),
    field(
        &["theme"],
        "Thème",
        Input::Choice(choices!(ProjectTheme)),
        false,
    ),
    field(
        &["start_date"],
        "Date de démarrage (MM/AAAA)",
        Input::Text,
        false,
    ),
    field(
        &["website"],
        "Adresse du service (https://…)",
        Input::Url,
        false,
    ),
    field(&["latitude"], "Latitude", Input::Number, false),
    field(&["longitude"], "Longitude", Input::Number, false),
    field(&["visibility"], "Visible par", Input::Visibility, true),
];

const DETAILS: &[Field] = &[
    field(
        &["contact", "name"],
        "Contact : nom ou service",
        Input::Text,
        false,
    ),
    field(
        &["contact", "email"],
        "Contact : adresse électronique",
        Input::Email,
        false,
    ),
    field(&["funding"], "Financement", Input::Textarea, false),
    field(
        &["budget"],
        "Budget",
        Input::Choice(choices!(BudgetBand)),
        false,
    ),
    field(
        &["hosting"],
        "Hébergement",
        Input::Choice(choices!(Hosting)),
        false,
    ),
    field(
        &["hosting_location"],
        "Lieu d'hébergement",
        Input::Text,
        false,
    ),
    field(
        &["algorithm_name"],
        "Nom de l'algorithme ou du modèle",
        Input::Text,
        false,
    ),
    field(
        &["algorithm_description"],
        "Description de l'algorithme",
        Input::Textarea,
        false,
    ),
    field(
        &["algorithm_types"],
        "Types d'algorithme",
        Input::Several(choices!(AlgorithmType)),
        false,
    ),
    field(
        &["data_sources"],
        "Sources des données",
        Input::Several(choices!(DataSource)),
        false,
    ),
    field(
        &["environmental_impact"],
        "Impact environnemental",
        Input::Textarea,
        false,
    ),
    field(&["visibility"], "Visibles par", Input::Visibility, true),
];

const DATASET: &[Field] = &[
    field(&["title"], "Titre du jeu de données", Input::Text, true),
    field(&["description"], "Description", Input::Textarea, true),
    field(
        &["keywords"],
        "Mots-clés (séparés par des virgules)",
        Input::List,
        false,
    ),
    field(
        &["landing_page"],
        "Page de présentation (https://…)",
        Input::Url,
        false,
    ),
    field(
        &["licence"],
        "Licence (par exemple Licence Ouverte 2.0)",
        Input::Text,
        false,
    ),
    field(&["visibility"], "Visible par", Input::Visibility, true),
];

/// The kinds of record a form proposes, as the portal's addresses name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FormKind {
    Project,
    Details,
    Dataset,
}

impl FormKind {
    /// From `?type=`.
    pub(super) fn parse(s: &str) -> Option<FormKind> {
        match s {
            "projet" => Some(FormKind::Project),
            "details" => Some(FormKind::Details),
            "jeu" => Some(FormKind::Dataset),
            _ => None,
        }
    }

    pub(super) fn of(kind: &str) -> Option<FormKind> {
        match kind {
            "project" => Some(FormKind::Project),
            "project_details" => Some(FormKind::Details),
            "dataset" => Some(FormKind::Dataset),
            _ => None,
        }
    }

    pub(super) fn slug(self) -> &'static str {
        match self {
            FormKind::Project => "projet",
            FormKind::Details => "details",
            FormKind::Dataset => "jeu",
        }
    }

    fn kind(self) -> Kind {
        match self {
            FormKind::Project => Kind::Project,
            FormKind::Details => Kind::ProjectDetails,
            FormKind::Dataset => Kind::Dataset,
        }
    }

    fn fields(self) -> &'static [Field] {
        match self {
            FormKind::Project => PROJECT,
            FormKind::Details => DETAILS,
            FormKind::Dataset => DATASET,
        }
    }

    pub(super) fn title(self, change: Change) -> &'static str {
        match (self, change) {
            (FormKind::Project, Change::New) => "Proposer un projet d'IA",
            (FormKind::Details, Change::New) => "Proposer les détails d'un projet",
            (FormKind::Dataset, Change::New) => "Proposer un jeu de données",
            (FormKind::Project, _) => "Proposer une modification du projet",
            (FormKind::Details, _) => "Proposer une modification des détails du projet",
            (FormKind::Dataset, _) => "Proposer une modification du jeu de données",
        }
    }
}

/// What a form proposes: carried in its hidden fields.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub kind: FormKind,
    pub change: Change,
    /// The record edited; for new details, the project they complete.
    pub record_id: Option<String>,
    /// The version of the record the form was filled from (an edit, a
    /// withdrawal): the proposal is refused if the record has another.
    pub version: Option<u64>,
    /// The pending proposal amended.
    pub amend: Option<String>,
}

/// A form's values, by name, every value of each (check boxes send
/// several).
#[derive(Debug, Clone, Default)]
pub(super) struct Values(HashMap<String, Vec<String>>);

impl Values {
    pub(super) fn from_pairs(pairs: Vec<(String, String)>) -> Values {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in pairs {
            map.entry(k).or_default().push(v);
        }
        Values(map)
    }

    /// The first value of `name`, trimmed; "" if none.
    pub(super) fn one(&self, name: &str) -> &str {
        self.0
            .get(name)
            .and_then(|v| v.first())
            .map_or("", |v| v.trim())
    }

    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .get(name)
            .into_iter()
            .flatten()
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn has(&self, name: &str, value: &str) -> bool {
        self.all(name).any(|v| v == value)
    }

    fn set(&mut self, name: String, values: Vec<String>) {
        self.0.insert(name, values);
    }

    /// The values a record document gives its form's fields.
    pub(super) fn of_document(kind: FormKind, doc: &Value) -> Values {
        let mut values = Values::default();
        for f in kind.fields() {
            let Some(v) = f.path.iter().try_fold(doc, |v, k| v.get(k)) else {
                continue;
            };
            let texts: Vec<String> = match v {
                Value::String(s) => vec![s.clone()],
                Value::Number(n) => vec![n.to_string()],
                Value::Array(items) => {
                    let words = items.iter().filter_map(Value::as_str).map(str::to_string);
                    match f.input {
                        Input::List => vec![words.collect::<Vec<_>>().join(", ")],
                        _ => words.collect(),
                    }
                }
                _ => continue,
            };
            values.set(f.name(), texts);
        }
        values
    }
}

/// The keys of a record's JSON form that are the node's to write, not a
/// proposal's.
const NOT_PROPOSED: [&str; 5] = ["version", "issued_at", "provenance", "author", "id"];

/// The record document a form describes, starting from `base` (the record
/// edited or the proposal amended; empty for a new one). The error is
/// French, for the form.
pub(super) fn document(
    target: &Target,
    sent: &Values,
    base: &Value,
    session: &Session,
    organisation: &str,
) -> Result<Value, String> {
    let mut doc: Map<String, Value> = base.as_object().cloned().unwrap_or_default();
    for k in NOT_PROPOSED {
        doc.remove(k);
    }
    for f in target.kind.fields() {
        let name = f.name();
        let value = match f.input {
            Input::Text | Input::Textarea | Input::Url | Input::Email => Some(sent.one(&name))
                .filter(|v| !v.is_empty())
                .map(Value::from),
            Input::Number => match sent.one(&name) {
                "" => None,
                v => Some(
                    v.replace(',', ".")
                        .parse::<f64>()
                        .ok()
                        .filter(|n| n.is_finite())
                        .map(Value::from)
                        .ok_or_else(|| format!("« {v} » n'est pas un nombre ({}).", f.label))?,
                ),
            },
            Input::List => {
                let words: Vec<Value> = sent
                    .one(&name)
                    .split(',')
                    .map(str::trim)
                    .filter(|w| !w.is_empty())
                    .map(Value::from)
                    .collect();
                (!words.is_empty()).then_some(Value::Array(words))
            }
            Input::Choice(list) => match sent.one(&name) {
                "" => None,
                v if list().iter().any(|(code, _)| *code == v) => Some(v.into()),
                v => {
                    return Err(format!(
                        "« {v} » n'est pas une valeur de la liste ({}).",
                        f.label
                    ));
                }
            },
            Input::Several(list) => {
                let known = list();
                let mut chosen = Vec::new();
                for v in sent.all(&name) {
                    if !known.iter().any(|(code, _)| *code == v) {
                        return Err(format!(
                            "« {v} » n'est pas une valeur de la liste ({}).",
                            f.label
                        ));
                    }
                    chosen.push(Value::from(v));
                }
                (!chosen.is_empty()).then_some(Value::Array(chosen))
            }
            Input::Visibility => {
                visibility(target.kind, sent.one(&name), &mut doc, session)?;
                continue;
            }
        };
        if f.required && value.is_none() {
            return Err(format!("« {} » est obligatoire.", f.label));
        }
        put(&mut doc, f.path, value);
    }
    doc.insert("kind".into(), target.kind.kind().as_str().into());
    match target.kind {
        FormKind::Project => {
            if !doc.contains_key("siret") {
                doc.insert("siret".into(), session.siret.clone().into());
            }
            if !doc.contains_key("organisation_name") {
                doc.insert("organisation_name".into(), organisation.into());
            }
        }
        FormKind::Details if target.change == Change::New && target.amend.is_none() => {
            let project = target.record_id.clone().unwrap_or_default();
            doc.insert("record_id".into(), format!("{project}-details").into());
            doc.insert("project".into(), project.into());
        }
        _ => {}
    }
    if !doc.contains_key("record_id") {
        doc.insert("record_id".into(), new_record_id(session, &doc).into());
    }
    Ok(Value::Object(doc))
}

/// Writes (or, for `None`, removes) the value at `path`; an object left
/// empty goes too.
fn put(doc: &mut Map<String, Value>, path: &[&str], value: Option<Value>) {
    match path {
        [] => {}
        [key] => match value {
            Some(v) => {
                doc.insert((*key).into(), v);
            }
            None => {
                doc.remove(*key);
            }
        },
        [key, rest @ ..] => {
            let inner = doc.entry(*key).or_insert_with(|| Value::Object(Map::new()));
            if !inner.is_object() {
                *inner = Value::Object(Map::new());
            }
            if let Value::Object(m) = inner {
                put(m, rest, value);
                if m.is_empty() {
                    doc.remove(*key);
                }
            }
        }
    }
}

/// Who may see the record: the public, the federation's members, or the
/// agent's organisation only (as it says: an edit narrows a wider audience
/// to it). Details stay out of public view.
fn visibility(
    kind: FormKind,
    chosen: &str,
    doc: &mut Map<String, Value>,
    session: &Session,
) -> Result<(), String> {
    match chosen {
        "public" if kind != FormKind::Details => {
            doc.remove("audience");
        }
        "federation" => {
            doc.remove("audience");
        }
        "restricted" => {
            doc.insert(
                "audience".into(),
                vec![Value::from(session.siren.as_str())].into(),
            );
        }
        other => {
            return Err(format!(
                "« {other} » : choisissez qui peut voir l'enregistrement."
            ));
        }
    }
    doc.insert("visibility".into(), chosen.into());
    Ok(())
}

/// `SIREN-words-of-the-title`, for a new record (the node makes it unique).
fn new_record_id(session: &Session, doc: &Map<String, Value>) -> String {
    let title = ["name", "title"]
        .iter()
        .find_map(|k| doc.get(*k).and_then(Value::as_str))
        .unwrap_or("");
    let slug: String = maillage_import::slug(title)
        .split('-')
        .take(8)
        .collect::<Vec<_>>()
        .join("-");
    format!(
        "{}-{}",
        session.siren,
        if slug.is_empty() {
            "proposition"
        } else {
            &slug
        }
    )
}

/// The form's fields, filled with `values`.
pub(super) fn inputs(kind: FormKind, values: &Values) -> Markup {
    html! {
        @for f in kind.fields() {
            @let name = f.name();
            @let value = values.one(&name);
            @match f.input {
                Input::Several(list) => {
                    fieldset {
                        legend { (f.label) }
                        @for (code, label) in list() {
                            @let id = format!("{name}-{code}");
                            label for=(id) {
                                input type="checkbox" id=(id) name=(name) value=(code) checked[values.has(&name, code)];
                                " " (label)
                            }
                            br;
                        }
                    }
                }
                Input::Visibility => {
                    fieldset {
                        legend { (f.label) " *" }
                        @let chosen = if value.is_empty() { if kind == FormKind::Details { "federation" } else { "public" } } else { value };
                        @for (code, label) in visibilities(kind) {
                            @let id = format!("{name}-{code}");
                            label for=(id) {
                                input type="radio" id=(id) name=(name) value=(code) checked[chosen == *code];
                                " " (label)
                            }
                            br;
                        }
                    }
                }
                input => {
                    p {
                        label for=(name) { (f.label) @if f.required { " *" } }
                        br;
                        @match input {
                            Input::Textarea => { textarea id=(name) name=(name) rows="5" cols="60" maxlength=(TEXT_MAX) required[f.required] { (value) } }
                            Input::Choice(list) => {
                                select id=(name) name=(name) required[f.required] {
                                    @if !f.required { option value="" { "(non précisé)" } }
                                    @for (code, label) in list() {
                                        option value=(code) selected[value == code] { (label) }
                                    }
                                }
                            }
                            Input::Number => { input type="text" inputmode="decimal" id=(name) name=(name) value=(value); }
                            Input::Url => { input type="url" id=(name) name=(name) value=(value) required[f.required] size="60"; }
                            Input::Email => { input type="email" id=(name) name=(name) value=(value) required[f.required] size="60"; }
                            _ => { input type="text" id=(name) name=(name) value=(value) required[f.required] size="60"; }
                        }
                    }
                }
            }
        }
    }
}

fn visibilities(kind: FormKind) -> &'static [(&'static str, &'static str)] {
    const ALL: &[(&str, &str)] = &[
        ("public", "Tout le monde (public)"),
        ("federation", "Les membres de la fédération"),
        ("restricted", "Votre organisation seulement"),
    ];
    match kind {
        FormKind::Details => &ALL[1..],
        _ => ALL,
    }
}

/// The longest text a form's field takes (the request as a whole is
/// bounded by the HTTP layer: `http::FORM_BODY_MAX`).
const TEXT_MAX: usize = 10_000;

/// The hidden fields that say what a form proposes.
pub(super) fn hidden(target: &Target, csrf: &str) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(csrf);
        input type="hidden" name="type" value=(target.kind.slug());
        input type="hidden" name="changement" value=(target.change.as_str());
        @if let Some(id) = &target.record_id { input type="hidden" name="enregistrement" value=(id); }
        @if let Some(v) = target.version { input type="hidden" name="version" value=(v); }
        @if let Some(id) = &target.amend { input type="hidden" name="proposition" value=(id); }
    }
}

/// The target a sent form names, if it names one.
pub(super) fn target_of(sent: &Values) -> Option<Target> {
    let change = match sent.one("changement") {
        "" | "new" => Change::New,
        "edit" => Change::Edit,
        "withdrawal" => Change::Withdrawal,
        _ => return None,
    };
    let some = |k: &str| Some(sent.one(k).to_string()).filter(|v| !v.is_empty());
    let version = match (change, sent.one("version")) {
        (Change::New, _) => None,
        (_, v) => Some(v.parse().ok()?),
    };
    Some(Target {
        kind: FormKind::parse(sent.one("type"))?,
        change,
        record_id: some("enregistrement"),
        version,
        amend: some("proposition"),
    })
}

/// The fields whose value `proposed` changes in `current` (both JSON
/// documents), for a moderator.
pub(super) fn changed_fields(current: &Value, proposed: &Value) -> Vec<String> {
    let empty = Map::new();
    let (a, b) = (
        current.as_object().unwrap_or(&empty),
        proposed.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !NOT_PROPOSED.contains(&k.as_str()) && a.get(*k) != b.get(*k))
        .map(|k| {
            super::labels::field(k)
                .map(str::to_string)
                .unwrap_or_else(|| k.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::for_tests("213101496", "21310149600017")
    }

    /// An edit changes what the form shows and keeps the rest of the
    /// record (a field the form does not have); "your organisation only"
    /// means it, even where the record named others too.
    #[test]
    fn an_edit_keeps_what_the_form_does_not_show() {
        let record = serde_json::json!({
            "kind": "project", "record_id": "213101496-fuites", "version": 3,
            "issued_at": "2026-01-01T00:00:00Z", "name": "Fuites", "description": "d",
            "status": "deploiement", "risk_category": "minimal", "latitude": 43.6,
            "visibility": "restricted", "audience": ["213101496", "243100518"],
            "provenance": {"source_format": "proposition"},
        });
        let target = Target {
            kind: FormKind::Project,
            change: Change::Edit,
            record_id: Some("213101496-fuites".into()),
            version: Some(3),
            amend: None,
        };
        let mut sent = Values::of_document(FormKind::Project, &record);
        assert_eq!(sent.one("latitude"), "43.6");
        assert_eq!(sent.one("visibility"), "restricted");
        sent.set("name".into(), vec!["Fuites d'eau".into()]);
        sent.set("latitude".into(), vec!["".into()]);
        let doc = document(&target, &sent, &record, &session(), "Colomiers").unwrap();
        assert_eq!(doc["name"], "Fuites d'eau");
        assert_eq!(doc["risk_category"], "minimal", "{doc}");
        assert!(doc.get("latitude").is_none(), "{doc}");
        assert!(
            doc.get("version").is_none() && doc.get("provenance").is_none(),
            "{doc}"
        );
        assert_eq!(doc["audience"], serde_json::json!(["213101496"]));
        assert_eq!(doc["record_id"], "213101496-fuites");
    }

    /// Details: nested contact, check boxes, never public; a value not in
    /// the list is refused with the field's label.
    #[test]
    fn details_are_written_from_their_form() {
        let target = Target {
            kind: FormKind::Details,
            change: Change::New,
            record_id: Some("213101496-fuites".into()),
            version: None,
            amend: None,
        };
        let mut sent = Values::from_pairs(vec![
            ("contact-email".into(), "sig@colomiers.example".into()),
            ("algorithm_types".into(), "machine_learning".into()),
            ("algorithm_types".into(), "computer_vision".into()),
            ("budget".into(), "under_50k".into()),
            ("visibility".into(), "restricted".into()),
        ]);
        let doc = document(&target, &sent, &Value::Null, &session(), "Colomiers").unwrap();
        assert_eq!(doc["contact"]["email"], "sig@colomiers.example");
        assert_eq!(
            doc["algorithm_types"],
            serde_json::json!(["machine_learning", "computer_vision"])
        );
        assert_eq!(doc["project"], "213101496-fuites");
        assert_eq!(doc["record_id"], "213101496-fuites-details");
        assert_eq!(doc["audience"], serde_json::json!(["213101496"]));
        let back = Values::of_document(FormKind::Details, &doc);
        assert!(back.has("algorithm_types", "computer_vision"));
        assert_eq!(back.one("contact-email"), "sig@colomiers.example");

        sent.set("visibility".into(), vec!["public".into()]);
        assert!(document(&target, &sent, &Value::Null, &session(), "C").is_err());
        sent.set("visibility".into(), vec!["federation".into()]);
        sent.set("budget".into(), vec!["beaucoup".into()]);
        let e = document(&target, &sent, &Value::Null, &session(), "C").unwrap_err();
        assert!(e.contains("beaucoup") && e.contains("Budget"), "{e}");
    }
}
