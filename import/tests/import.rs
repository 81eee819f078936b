//! Imports of realistic files: every mapped field lands where it should, every
//! messy case of real exports is read or refused with the line, the field, the
//! value and what is accepted.

use maillage_import::{
    Format, ImportError, Parsed, Row, RowError, next_page, parse, record_id_for,
};
use maillage_record::model::{
    Agent, Audience, Body, Checksum, Contact, Dataset, Distribution, Frequency, Licence,
    LicenceRef, OrganisationKind, Project, ProjectStatus, ProjectTheme, Spatial,
    SpatialGranularity, Temporal, validate_record_id,
};
use maillage_record::{Record, Visibility};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn import(format: Format, name: &str) -> Parsed {
    let parsed = parse(format, name, &fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    for row in &parsed.rows {
        assert_eq!(row.records.len(), 1, "line {}", row.line);
        let r = &row.records[0];
        assert_eq!((r.version, r.issued_at_ms), (0, 0), "line {}", row.line);
        assert_eq!(r.visibility, Visibility::Public);
        r.validate_draft().unwrap();
        assert_eq!(r.record_id, record_id_for(format, &row.source_identifier));
        let p = r.provenance.as_ref().expect("provenance");
        assert_eq!(p.source_format, format.as_str());
        assert_eq!(p.source.as_deref(), Some(name));
        assert_eq!(
            p.source_identifier.as_deref(),
            Some(row.source_identifier.as_str())
        );
        assert_eq!(p.on_behalf_of, row.organisation);
    }
    parsed
}

fn lines(parsed: &Parsed) -> Vec<usize> {
    parsed.rows.iter().map(|r| r.line).collect()
}

fn row(parsed: &Parsed, line: usize) -> &Row {
    parsed
        .rows
        .iter()
        .find(|r| r.line == line)
        .unwrap_or_else(|| panic!("no row at line {line}; errors: {:#?}", parsed.errors))
}

fn dataset(row: &Row) -> &Dataset {
    match &row.records[0].body {
        Body::Dataset(d) => d,
        other => panic!("line {}: not a dataset: {other:?}", row.line),
    }
}

fn project(row: &Row) -> &Project {
    match &row.records[0].body {
        Body::Project(p) => p,
        other => panic!("line {}: not a project: {other:?}", row.line),
    }
}

fn errors_at(parsed: &Parsed, line: usize) -> Vec<&RowError> {
    parsed.errors.iter().filter(|e| e.line == line).collect()
}

fn agent(name: &str, siren: Option<&str>) -> Option<Agent> {
    Some(Agent {
        name: name.into(),
        siren: siren.map(Into::into),
        url: None,
    })
}

fn s(text: &str) -> Option<String> {
    Some(text.to_string())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|i| i.to_string()).collect()
}

// ---------------------------------------------------------------- bibliothèque IA

#[test]
fn bibliotheque_rows_import_around_the_bad_ones_with_right_lines() {
    let parsed = import(Format::BibliothequeIa, "bibliotheque-ia.csv");
    // Line 3 holds a name spanning lines 3-4; lines 9-11 a description on
    // three lines: the rows after them still report where they start.
    // Line 7's unknown audience is a warning: the row is imported.
    assert_eq!(
        lines(&parsed),
        [2, 3, 7, 9, 12],
        "errors: {:#?}",
        parsed.errors
    );
    let error_lines: Vec<usize> = parsed.errors.iter().map(|e| e.line).collect();
    assert_eq!(error_lines, [5, 6, 8], "{:#?}", parsed.errors);
}

#[test]
fn bibliotheque_maps_every_field() {
    let parsed = import(Format::BibliothequeIa, "bibliotheque-ia.csv");
    let r = row(&parsed, 2);
    assert_eq!(
        r.source_identifier,
        "24310051800014:tri-automatique-des-courriers-entrants"
    );
    assert_eq!(
        r.records[0].record_id,
        "bibliotheque-ia:24310051800014:tri-automatique-des-courriers-entrants"
    );
    assert_eq!(
        r.organisation,
        agent("Toulouse Métropole", Some("243100518"))
    );
    let p = project(r);
    assert_eq!(p.name, "Tri automatique des courriers entrants");
    assert!(
        p.description.starts_with("Un modèle de classification"),
        "{}",
        p.description
    );
    assert_eq!(p.status, ProjectStatus::Experimentation);
    assert_eq!(p.start_date.as_deref(), Some("03/2024"));
    assert_eq!(p.organisation_name.as_deref(), Some("Toulouse Métropole"));
    // "243 100 518 00014": spaces stripped.
    assert_eq!(p.siret.as_deref(), Some("24310051800014"));
    assert_eq!(p.organisation_kind, Some(OrganisationKind::Epci));
    assert_eq!(
        p.partners,
        strings(&["Université Toulouse Capitole", "IRIT"])
    );
    assert_eq!(p.theme, Some(ProjectTheme::Administration));
    assert_eq!(
        p.sub_themes,
        strings(&["Gestion du courrier", "Relation usagers"])
    );
    assert_eq!(p.audiences, [Audience::Agent, Audience::Elected]);
    assert_eq!(
        p.website.as_deref(),
        Some("https://www.toulouse-metropole.fr/projets/ia-courriers")
    );
    assert_eq!(
        p.logo_url.as_deref(),
        Some("https://www.toulouse-metropole.fr/logo.png")
    );
    // "43,6045": a decimal comma.
    assert_eq!((p.latitude, p.longitude), (Some(43.6045), Some(1.444)));
    assert_eq!(p.last_updated.as_deref(), Some("2025-05-12"));
}

/// Projects written back in the bibliothèque's own layout (what a node
/// serves at /projets.csv) read back as the same projects and records: the
/// rows of the real-looking fixture, messy values and all, once cleaned.
#[test]
fn bibliotheque_projects_written_back_read_as_the_same() {
    let first = import(Format::BibliothequeIa, "bibliotheque-ia.csv");
    let projects: Vec<&maillage_record::model::Project> = first
        .rows
        .iter()
        .map(|r| match &r.records[0].body {
            maillage_record::Body::Project(p) => p,
            other => panic!("not a project: {other:?}"),
        })
        .collect();
    assert!(projects.len() >= 3, "{}", projects.len());
    let rows: Vec<_> = projects.iter().map(|p| (*p, None)).collect();
    let written = maillage_import::bibliotheque_csv(&rows);
    let again = parse(Format::BibliothequeIa, "projets.csv", &written).unwrap();
    assert!(again.errors.is_empty(), "{:#?}", again.errors);
    assert_eq!(again.rows.len(), first.rows.len());
    for (a, b) in first.rows.iter().zip(&again.rows) {
        assert!(b.warnings.is_empty(), "{:#?}", b.warnings);
        assert_eq!(a.records[0].record_id, b.records[0].record_id);
        assert_eq!(a.records[0].body, b.records[0].body);
        let on_behalf = |r: &maillage_import::Row| {
            r.records[0]
                .provenance
                .as_ref()
                .unwrap()
                .on_behalf_of
                .clone()
        };
        assert_eq!(on_behalf(a), on_behalf(b));
    }
    // A project without a SIRET goes out with its organisation's SIREN,
    // and comes back as that organisation's.
    let mut lone = projects[0].clone();
    lone.siret = None;
    let written = maillage_import::bibliotheque_csv(&[(&lone, Some("213101496"))]);
    let back = parse(Format::BibliothequeIa, "projets.csv", &written).unwrap();
    assert!(back.errors.is_empty(), "{:#?}", back.errors);
    let row = &back.rows[0];
    assert!(row.warnings.is_empty(), "{:#?}", row.warnings);
    let behalf = row.records[0]
        .provenance
        .as_ref()
        .unwrap()
        .on_behalf_of
        .as_ref();
    assert_eq!(behalf.unwrap().siren.as_deref(), Some("213101496"));
    match &row.records[0].body {
        maillage_record::Body::Project(p) => assert_eq!(p.siret, None),
        other => panic!("not a project: {other:?}"),
    }
}

#[test]
fn bibliotheque_messy_values_are_cleaned() {
    let parsed = import(Format::BibliothequeIa, "bibliotheque-ia.csv");

    // A name with an embedded newline becomes one line.
    let blagnac = row(&parsed, 3);
    let p = project(blagnac);
    assert_eq!(p.name, "Assistant conversationnel « Allô Blagnac »");
    assert_eq!(
        blagnac.source_identifier,
        "21310069600011:assistant-conversationnel-allo-blagnac"
    );
    assert_eq!(blagnac.organisation, agent("Blagnac", Some("213100696")));
    assert_eq!(p.status, ProjectStatus::Deploiement);
    assert_eq!(p.organisation_kind, Some(OrganisationKind::Commune));
    assert_eq!(p.theme, Some(ProjectTheme::Citizenship));
    assert_eq!(p.audiences, [Audience::GeneralPublic]);
    assert_eq!(p.start_date.as_deref(), Some("15/09/2024"));
    assert_eq!(p.logo_url, None);

    // An ISO start date rewritten, "www." given its scheme, a date-time cut
    // to its day, a description keeping its lines.
    let p = project(row(&parsed, 9));
    assert_eq!(p.start_date.as_deref(), Some("01/09/2023"));
    assert_eq!(
        p.website.as_deref(),
        Some("https://www.mairie-tournefeuille.fr")
    );
    assert_eq!(p.last_updated.as_deref(), Some("2025-01-20"));
    assert_eq!(
        p.description,
        "Traduction automatique des documents municipaux.\nRelecture par un agent bilingue.\n\
         Publication sur le site de la ville."
    );
    assert_eq!(p.audiences, [Audience::GeneralPublic, Audience::Agent]);
    assert_eq!(p.partners, strings(&["Mairie de Plaisance-du-Touch"]));

    let colomiers = row(&parsed, 12);
    assert_eq!(
        colomiers.source_identifier,
        "21310149600015:detection-des-fuites-d-eau"
    );
    let p = project(colomiers);
    assert_eq!(p.status, ProjectStatus::Termine);
    assert_eq!(p.audiences, [Audience::Collectivities]);
    assert_eq!(p.last_updated.as_deref(), Some("2024-06-30"));
    assert_eq!((p.latitude, p.longitude), (None, None));
}

#[test]
fn bibliotheque_errors_name_line_field_value_and_accepted_values() {
    let parsed = import(Format::BibliothequeIa, "bibliotheque-ia.csv");

    let status = errors_at(&parsed, 5);
    assert_eq!(status.len(), 1, "{status:#?}");
    assert_eq!(status[0].field, "Statut_du_projet");
    assert_eq!(status[0].value, "En pause");
    for v in ProjectStatus::ALL {
        assert!(
            status[0].reason.contains(v.as_str()),
            "{}",
            status[0].reason
        );
    }
    let text = status[0].to_string();
    assert!(
        text.starts_with(
            "line 5: field `Statut_du_projet`: 'En pause' is not a known project status; accepted: "
        ),
        "{text}"
    );

    let siret = errors_at(&parsed, 6);
    assert_eq!(siret.len(), 1, "{siret:#?}");
    assert_eq!(
        (siret[0].field.as_str(), siret[0].value.as_str()),
        ("SIRET", "21310069600017")
    );
    assert!(siret[0].reason.contains("Luhn"), "{}", siret[0].reason);

    // One unknown item of a comma-joined list is named alone, as a
    // warning: the known one is kept, the other kept as written.
    let r = row(&parsed, 7);
    assert_eq!(r.warnings.len(), 1, "{:#?}", r.warnings);
    let w = &r.warnings[0];
    assert_eq!(
        (w.line, w.field.as_str(), w.value.as_str()),
        (7, "Audience", "Touristes")
    );
    assert!(w.reason.contains("kept as written"), "{}", w.reason);
    assert_eq!(project(r).audiences, [Audience::GeneralPublic]);
    let provenance = r.records[0].provenance.as_ref().unwrap();
    assert_eq!(provenance.as_written["Audience"], "Touristes");

    // A rule of the model (two sub-themes at most) is reported on the column.
    let sub = errors_at(&parsed, 8);
    assert_eq!(sub.len(), 1, "{sub:#?}");
    assert_eq!(sub[0].field, "Sous_Theme");
    assert_eq!(sub[0].value, "Propreté, Déchets, Vidéoprotection");
    assert!(sub[0].reason.contains("at most two"), "{}", sub[0].reason);
}

#[test]
fn every_problem_of_a_row_is_reported_at_once() {
    // Reading problems (SIRET, status), the record's own rules (a name too
    // long, three sub-themes) and the warnings of the row (a latitude, a
    // date that do not read) together, warnings marked.
    let long = "N".repeat(501);
    let csv = format!(
        "Nom_collectivite,Nom_du_projet,SIRET,Statut_du_projet,Description_service,Latitude,Longitude,Date_de_demarrage,Sous_Theme\n\
         Colomiers,{long},21310149600016,Suspendu,Un chatbot.,nord,\"1,35\",hier,\"a, b, c\"\n"
    );
    let parsed = parse(Format::BibliothequeIa, "x.csv", csv.as_bytes()).unwrap();
    assert!(parsed.rows.is_empty());
    let fields: Vec<&str> = parsed.errors.iter().map(|e| e.field.as_str()).collect();
    // In the order of the file's columns.
    assert_eq!(
        fields,
        [
            "Nom_du_projet",
            "SIRET",
            "Statut_du_projet",
            "Latitude",
            "Date_de_demarrage",
            "Sous_Theme"
        ]
    );
    assert!(parsed.errors.iter().all(|e| e.line == 2));
    let warnings: Vec<&str> = parsed
        .errors
        .iter()
        .filter(|e| e.warning)
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(warnings, ["Latitude", "Date_de_demarrage"]);
}

#[test]
fn model_rules_point_at_the_source_column() {
    let csv = "Nom_collectivite,Nom_du_projet,SIRET,Statut_du_projet,Description_service,URL_Service,Latitude\n\
               Colomiers,Chatbot,21310149600015,Terminé,Un chatbot.,accès interne uniquement,\n\
               Colomiers,Carte,21310149600015,Terminé,Une carte.,,\"43,61\"\n";
    let parsed = parse(Format::BibliothequeIa, "x.csv", csv.as_bytes()).unwrap();
    // A note where an address is expected is kept as a note, with a warning.
    assert_eq!(lines(&parsed), [2]);
    let r = row(&parsed, 2);
    assert_eq!(project(r).website, None);
    assert_eq!(
        r.warnings[0].to_string(),
        "line 2: field `URL_Service`: 'accès interne uniquement' is not a web address \
         (http:// or https://): kept as a note, the address left empty"
    );
    assert_eq!(
        r.records[0].provenance.as_ref().unwrap().as_written["URL_Service"],
        "accès interne uniquement"
    );
    // A rule of the record refuses the row, on the column.
    let lat = &parsed.errors[0];
    assert_eq!((lat.line, lat.field.as_str()), (3, "Latitude"));
    assert!(lat.reason.contains("give both"), "{}", lat.reason);
}

#[test]
fn headers_are_matched_forgiving_case_accents_and_spaces() {
    let csv = "nom collectivité;NOM DU PROJET;Siret;Statut du projet;Description service;Thème\n\
               Colomiers;Carte des chantiers;21310149600015;Terminé;Une carte.;Mobilités\n";
    let parsed = parse(Format::BibliothequeIa, "x.csv", csv.as_bytes()).unwrap();
    assert!(parsed.errors.is_empty(), "{:#?}", parsed.errors);
    assert_eq!(project(&parsed.rows[0]).theme, Some(ProjectTheme::Mobility));
}

// ---------------------------------------------------------------- SCDL

#[test]
fn scdl_with_semicolons_bom_and_crlf() {
    let parsed = import(Format::ScdlCatalogue, "scdl-catalogue.csv");
    assert_eq!(
        lines(&parsed),
        [2, 3, 6, 7, 10],
        "errors: {:#?}",
        parsed.errors
    );

    let r = row(&parsed, 2);
    assert_eq!(r.source_identifier, "24310051800014:budget-primitif-2024");
    assert_eq!(
        r.records[0].record_id,
        "scdl:24310051800014:budget-primitif-2024"
    );
    assert_eq!(
        r.organisation,
        agent("Toulouse Métropole", Some("243100518"))
    );
    let url = "https://data.toulouse-metropole.fr/explore/dataset/budget-primitif-2024/";
    let mut dist = Distribution::new(url);
    dist.format = s("CSV");
    let want = Dataset {
        title: "Budget primitif 2024".into(),
        description: "Budget primitif voté par le conseil de la métropole : dépenses et recettes par chapitre."
            .into(),
        keywords: strings(&["budget", "finances publiques", "M57"]),
        // A theme label holding commas stays whole.
        themes: strings(&["Administration, gouvernement, finances publiques, citoyenneté"]),
        identifier: s(url),
        landing_page: s(url),
        licence: Some(LicenceRef::Known(Licence::Etalab2)),
        distributions: vec![dist],
        // The producer, with the SIREN of its valid SIRET.
        publisher: agent("Mairie de Toulouse", Some("213105554")),
        contact_point: None,
        spatial: Some(Spatial {
            insee_codes: vec![],
            granularity: Some(SpatialGranularity::Epci),
            label: s("Toulouse Métropole"),
        }),
        temporal: Some(Temporal {
            start: s("2024-01-01"),
            end: s("2024-12-31"),
        }),
        frequency: Some(Frequency::Annual),
        issued: s("2024-01-15"),
        modified: s("2024-02-02"),
    };
    assert_eq!(dataset(r), &want);

    let d = dataset(row(&parsed, 3));
    assert_eq!(d.title, "Arbres d'alignement");
    assert_eq!(
        d.description,
        "Inventaire des arbres d'alignement.\nEssence, hauteur et date de plantation\nde chaque arbre."
    );
    assert_eq!(
        d.keywords,
        strings(&["arbres", "patrimoine arboré", "environnement"])
    );
    // No producer: the collectivity publishes.
    assert_eq!(d.publisher, agent("Toulouse Métropole", Some("243100518")));
    assert_eq!(
        d.spatial.as_ref().and_then(|s| s.granularity),
        Some(SpatialGranularity::Adresse)
    );
    assert_eq!(d.frequency, Some(Frequency::Irregular));
    assert_eq!(d.licence, Some(LicenceRef::Known(Licence::Odbl)));
    assert_eq!(d.temporal, None);
    // Three formats for one URL: which is which is unknown.
    assert_eq!(d.distributions.len(), 1);
    assert_eq!(d.distributions[0].format, None);

    // The producer is the collectivity, without a SIRET of its own.
    let d = dataset(row(&parsed, 10));
    assert_eq!(d.publisher, agent("Toulouse Métropole", Some("243100518")));
    assert_eq!(d.frequency, Some(Frequency::Continuous));
    assert_eq!(
        d.temporal,
        Some(Temporal {
            start: s("2007-11-01"),
            end: None
        })
    );
}

#[test]
fn scdl_errors() {
    let parsed = import(Format::ScdlCatalogue, "scdl-catalogue.csv");
    // "Canton", in SCDL's list, is a granularity.
    let canton = dataset(row(&parsed, 6));
    assert_eq!(
        canton.spatial.as_ref().unwrap().granularity,
        Some(SpatialGranularity::Canton)
    );
    assert!(row(&parsed, 6).warnings.is_empty());

    // An optional date that is no date, a frequency outside the vocabulary:
    // the row is imported, both kept as written, with a warning each.
    let r = row(&parsed, 7);
    let warned: Vec<(&str, &str)> = r
        .warnings
        .iter()
        .map(|e| (e.field.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(
        warned,
        [("FREQ_MAJ", "Quand nécessaire"), ("DATE_MAJ", "31/02/2024")]
    );
    assert!(r.warnings[1].reason.contains("YYYY-MM-DD"));
    assert_eq!(dataset(r).modified, None);

    let id = errors_at(&parsed, 8);
    assert_eq!(
        (id.len(), id[0].field.as_str(), id[0].value.as_str()),
        (1, "ID", "")
    );

    // Line 9 is an empty spreadsheet row: skipped, no error.
    assert!(errors_at(&parsed, 9).is_empty());

    // An unquoted ';' in the description shifts the row by one column.
    let shifted = errors_at(&parsed, 11);
    assert_eq!(shifted.len(), 1, "{shifted:#?}");
    assert_eq!(shifted[0].field, "");
    assert_eq!(
        shifted[0].value,
        "https://data.toulouse-metropole.fr/explore/dataset/marches-plein-vent/"
    );
    assert!(
        shifted[0].reason.contains("header has 20 columns"),
        "{}",
        shifted[0].reason
    );
    assert!(
        shifted[0].to_string().starts_with("line 11: 'https://"),
        "{}",
        shifted[0]
    );
    assert_eq!(parsed.errors.len(), 2);
}

#[test]
fn scdl_with_commas_and_no_bom() {
    let csv = "coll_nom,coll_siret,id,titre,description,producteur_nom,producteur_siret,date_publ,url\n\
               Colomiers,21310149600015,BP-2025,Budget 2025,Budget primitif.,Syndicat mixte X,123,05/02/2025,www.ville-colomiers.fr/budget\n";
    let parsed = parse(Format::ScdlCatalogue, "colomiers.csv", csv.as_bytes()).unwrap();
    assert!(parsed.errors.is_empty(), "{:#?}", parsed.errors);
    let r = &parsed.rows[0];
    assert_eq!(r.records[0].record_id, "scdl:21310149600015:BP-2025");
    let d = dataset(r);
    // A producer whose SIRET is not valid keeps its name, without a SIREN.
    assert_eq!(d.publisher, agent("Syndicat mixte X", None));
    assert_eq!(d.issued.as_deref(), Some("2025-02-05"));
    assert_eq!(
        d.landing_page.as_deref(),
        Some("https://www.ville-colomiers.fr/budget")
    );
}

#[test]
fn a_separator_line_written_by_a_spreadsheet_is_obeyed() {
    let csv = "sep=,\r\nCOLL_NOM,COLL_SIRET,ID,TITRE,DESCRIPTION,MOTS_CLES\r\n\
               Colomiers,21310149600015,a,Voirie,Voirie communale.,voirie;routes\r\n\
               Colomiers,21310149600015,b,Écoles,,écoles\r\n";
    let parsed = parse(Format::ScdlCatalogue, "x.csv", csv.as_bytes()).unwrap();
    assert_eq!(lines(&parsed), [3]);
    assert_eq!(
        dataset(&parsed.rows[0]).keywords,
        strings(&["voirie", "routes"])
    );
    let e = &parsed.errors[0];
    assert_eq!((e.line, e.field.as_str()), (4, "DESCRIPTION"));
}

#[test]
fn scdl_collectivity_siret_is_checked() {
    let csv = "COLL_NOM;COLL_SIRET;ID;TITRE;DESCRIPTION\nColomiers;21310149600016;a;A;Une.\n";
    let parsed = parse(Format::ScdlCatalogue, "x.csv", csv.as_bytes()).unwrap();
    assert_eq!(parsed.errors.len(), 1);
    assert_eq!(parsed.errors[0].field, "COLL_SIRET");
    assert!(parsed.errors[0].reason.contains("Luhn"));
}

// ---------------------------------------------------------------- Etalab

#[test]
fn etalab_catalogue() {
    let parsed = import(Format::EtalabCatalogue, "etalab-catalogue.csv");
    assert_eq!(lines(&parsed), [2, 3, 4, 6], "errors: {:#?}", parsed.errors);

    let r = row(&parsed, 2);
    assert_eq!(
        r.source_identifier,
        "21310069600011:equipements-sportifs-de-blagnac"
    );
    assert_eq!(
        r.records[0].record_id,
        "etalab:21310069600011:equipements-sportifs-de-blagnac"
    );
    assert_eq!(
        r.organisation,
        agent("Commune de Blagnac", Some("213100696"))
    );
    let url = "https://data.mairie-blagnac.fr/equipements-sportifs";
    let mut dist = Distribution::new(url);
    dist.format = s("CSV");
    let want = Dataset {
        title: "Équipements sportifs de Blagnac".into(),
        description:
            "Liste des équipements sportifs municipaux avec leur adresse et leurs horaires.".into(),
        keywords: strings(&["sport", "équipements", "loisirs"]),
        themes: vec![],
        identifier: s(url),
        landing_page: s(url),
        licence: Some(LicenceRef::Known(Licence::Etalab2)),
        distributions: vec![dist],
        publisher: agent("Commune de Blagnac", Some("213100696")),
        contact_point: Some(Contact {
            name: s("Jeanne Martin"),
            email: s("sports@mairie-blagnac.fr"),
            ..Contact::default()
        }),
        spatial: Some(Spatial {
            label: s("Blagnac"),
            ..Spatial::default()
        }),
        temporal: None,
        frequency: Some(Frequency::Monthly),
        issued: s("2023-05-04"),
        modified: s("2025-03-12"),
    };
    assert_eq!(dataset(r), &want);

    let d = dataset(row(&parsed, 3));
    assert_eq!(
        d.contact_point,
        Some(Contact {
            name: s("Service restauration"),
            email: s("restauration@mairie-blagnac.fr"),
            ..Contact::default()
        })
    );
    assert_eq!(d.keywords, strings(&["cantine", "menus", "écoles"]));
    assert_eq!(
        (d.issued.as_deref(), d.modified.as_deref()),
        (Some("2022-09-01"), None)
    );
    assert_eq!(d.frequency, Some(Frequency::Weekly));
    assert_eq!(d.distributions[0].format, None);

    // An organisation without a SIRET is keyed by its alternative id.
    let ccas = row(&parsed, 4);
    assert_eq!(
        ccas.source_identifier,
        "ccas-blagnac:aides-sociales-facultatives"
    );
    assert_eq!(ccas.organisation, agent("CCAS de Blagnac", None));
    assert!(dataset(ccas).distributions.is_empty());
}

#[test]
fn etalab_errors() {
    let parsed = import(Format::EtalabCatalogue, "etalab-catalogue.csv");
    let dup = errors_at(&parsed, 5);
    assert_eq!(dup.len(), 1, "{dup:#?}");
    assert_eq!(dup[0].field, "titre");
    assert_eq!(
        dup[0].value,
        "21310069600011:equipements-sportifs-de-blagnac"
    );
    assert!(dup[0].reason.contains("as line 2"), "{}", dup[0].reason);

    // A frequency outside the vocabulary: read as unknown, kept as written.
    let r = row(&parsed, 6);
    let freq = &r.warnings[0];
    assert_eq!(
        (freq.field.as_str(), freq.value.as_str()),
        ("freq_maj", "Quand nécessaire")
    );
    assert!(freq.reason.contains("read as 'unknown'"), "{}", freq.reason);
    assert_eq!(dataset(r).frequency, Some(Frequency::Unknown));

    let siret = errors_at(&parsed, 7);
    assert_eq!(
        (siret[0].field.as_str(), siret[0].value.as_str()),
        ("siret_orga", "213100696")
    );
    assert!(siret[0].reason.contains("14 digits"), "{}", siret[0].reason);
    assert_eq!(parsed.errors.len(), 2);
}

// ---------------------------------------------------------------- DCAT JSON-LD

#[test]
fn datagouv_paged_catalogue_page_1() {
    let bytes = fixture("datagouv-catalog-page1.jsonld");
    assert_eq!(
        next_page(&bytes).as_deref(),
        Some("https://www.data.gouv.fr/catalog.jsonld?page=2&page_size=2")
    );
    // As a harvest reads it: from the document read for its datasets.
    let options = maillage_import::Options::default();
    let opened = maillage_import::open(Format::DcatJsonLd, "page1", &bytes, &options).unwrap();
    assert_eq!(
        opened.next_page(),
        Some("https://www.data.gouv.fr/catalog.jsonld?page=2&page_size=2")
    );
    let parsed = import(Format::DcatJsonLd, "datagouv-catalog-page1.jsonld");
    assert!(parsed.errors.is_empty(), "{:#?}", parsed.errors);
    assert_eq!(lines(&parsed), [1, 2]);

    let r = &parsed.rows[0];
    let id = "https://www.data.gouv.fr/fr/datasets/budget-primitif-2024-toulouse-metropole/";
    assert_eq!(r.source_identifier, id);
    assert_eq!(r.records[0].record_id, format!("dcat:{id}"));
    let publisher = Some(Agent {
        name: "Toulouse Métropole".into(),
        siren: None,
        url: s("https://www.data.gouv.fr/fr/organizations/toulouse-metropole/"),
    });
    assert_eq!(r.organisation, publisher);
    let mut dist = Distribution::new(
        "https://www.data.gouv.fr/fr/datasets/r/3c5e7a91-2b4d-4f6a-8e1c-9d0b2a4c6e8f",
    );
    dist.title = s("budget-primitif-2024.csv");
    dist.download_url = s(
        "https://static.data.gouv.fr/resources/budget-primitif-2024/20240115-091244/budget-primitif-2024.csv",
    );
    dist.format = s("csv");
    dist.media_type = s("text/csv");
    dist.byte_size = Some(48213);
    dist.licence = Some(LicenceRef::Known(Licence::Etalab2));
    dist.checksum = Some(Checksum {
        algorithm: "sha1".into(),
        value: "a9993e364706816aba3e25717850c26c9cd0d89d".into(),
    });
    let want = Dataset {
        // The French title, though the English one comes first.
        title: "Budget primitif 2024".into(),
        description: "Budget primitif voté par le conseil de la métropole.\n\nDépenses et recettes par chapitre."
            .into(),
        keywords: strings(&["budget", "finances publiques"]),
        themes: strings(&["ECON", "GOVE"]),
        identifier: s("https://www.data.gouv.fr/fr/datasets/65a4f1c2e8b7a3d9f0c1b2a3/"),
        landing_page: s("https://data.toulouse-metropole.fr/explore/dataset/budget-primitif-2024/"),
        licence: Some(LicenceRef::Known(Licence::Etalab2)),
        distributions: vec![dist],
        publisher,
        contact_point: Some(Contact {
            name: s("Direction des finances"),
            email: s("opendata@toulouse-metropole.fr"),
            ..Contact::default()
        }),
        spatial: None,
        temporal: Some(Temporal {
            start: s("2024-01-01"),
            end: s("2024-12-31"),
        }),
        frequency: Some(Frequency::Annual),
        issued: s("2024-01-15T09:12:44.123000+00:00"),
        modified: s("2024-02-02T16:03:10+00:00"),
    };
    assert_eq!(dataset(r), &want);

    let d = dataset(&parsed.rows[1]);
    assert_eq!(d.keywords, strings(&["arbres"]));
    // ODbL's summary page, as data.gouv.fr links it, is recognised as ODbL.
    assert_eq!(
        d.licence,
        Some(LicenceRef::Known(maillage_record::model::Licence::Odbl))
    );
    assert_eq!(d.frequency, Some(Frequency::Irregular));
    assert_eq!(d.issued.as_deref(), Some("2021-06-03T08:00:00"));
    assert_eq!(
        d.publisher,
        Some(Agent {
            name: "Commune de Blagnac".into(),
            siren: None,
            url: s("https://www.mairie-blagnac.fr"),
        })
    );
    assert_eq!(
        d.spatial,
        Some(Spatial {
            insee_codes: strings(&["31069"]),
            granularity: None,
            label: s("Blagnac"),
        })
    );
    let urls: Vec<(&str, Option<&str>, Option<&str>)> = d
        .distributions
        .iter()
        .map(|x| {
            (
                x.access_url.as_str(),
                x.download_url.as_deref(),
                x.format.as_deref(),
            )
        })
        .collect();
    let csv = "https://static.data.gouv.fr/resources/arbres-d-alignement-blagnac/arbres.csv";
    assert_eq!(
        urls,
        [
            (
                "https://www.data.gouv.fr/fr/datasets/r/7f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
                None,
                Some("geojson")
            ),
            // No accessURL: the downloadURL stands in.
            (csv, Some(csv), Some("csv")),
        ]
    );
}

#[test]
fn datagouv_paged_catalogue_last_page() {
    let bytes = fixture("datagouv-catalog-page2.jsonld");
    assert_eq!(next_page(&bytes), None);
    let parsed = import(Format::DcatJsonLd, "datagouv-catalog-page2.jsonld");
    // No description: refused. A licence named by no known name and no URI:
    // read as "other", kept as written, with a warning.
    assert_eq!(lines(&parsed), [2]);
    let got: Vec<(usize, &str, &str)> = parsed
        .errors
        .iter()
        .map(|e| (e.line, e.field.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(got, [(1, "description", "")]);
    assert!(
        parsed.errors[0].reason.contains("required"),
        "{}",
        parsed.errors[0].reason
    );
    let r = row(&parsed, 2);
    assert_eq!(dataset(r).licence, Some(LicenceRef::Known(Licence::Other)));
    let w = &r.warnings[0];
    assert_eq!(
        (w.field.as_str(), w.value.as_str()),
        ("license", "Licence maison de la mairie")
    );
    assert!(w.reason.contains("read as 'other'"), "{}", w.reason);
}

#[test]
fn ckan_catalogue_with_prefixes_and_full_iris() {
    let bytes = fixture("ckan-catalog.jsonld");
    assert_eq!(next_page(&bytes), None);
    let parsed = import(Format::DcatJsonLd, "ckan-catalog.jsonld");
    assert_eq!(lines(&parsed), [1, 2, 3], "{:#?}", parsed.errors);

    let r = &parsed.rows[0];
    assert_eq!(
        r.source_identifier,
        "https://data.montpellier3m.fr/dataset/parkings-temps-reel"
    );
    let montpellier = Some(Agent {
        name: "Montpellier Méditerranée Métropole".into(),
        siren: None,
        url: s("https://www.montpellier3m.fr"),
    });
    assert_eq!(r.organisation, montpellier);
    let d = dataset(r);
    assert_eq!(d.title, "Disponibilité des parkings en temps réel");
    assert!(
        d.description.starts_with("Nombre de places libres"),
        "{}",
        d.description
    );
    // French keywords only, when some are tagged French.
    assert_eq!(d.keywords, strings(&["stationnement", "mobilité"]));
    assert_eq!(d.themes, strings(&["TRAN"]));
    assert_eq!(
        d.identifier.as_deref(),
        Some("9c2b5d1e-7f3a-4e8b-a6c4-1d2e3f4a5b6c")
    );
    assert_eq!(
        d.landing_page.as_deref(),
        Some("https://data.montpellier3m.fr/dataset/parkings-temps-reel")
    );
    assert_eq!(d.frequency, Some(Frequency::Continuous));
    assert_eq!(d.issued.as_deref(), Some("2019-05-03T10:00:00"));
    assert_eq!(d.modified.as_deref(), Some("2025-01-07"));
    assert_eq!(d.publisher, montpellier);
    assert_eq!(
        d.contact_point,
        Some(Contact {
            name: s("Service open data"),
            email: s("opendata@montpellier3m.fr"),
            ..Contact::default()
        })
    );
    assert_eq!(
        d.spatial.as_ref().and_then(|s| s.label.as_deref()),
        Some("Montpellier Méditerranée Métropole")
    );
    assert_eq!(
        d.temporal,
        Some(Temporal {
            start: s("2019-01-01"),
            end: None
        })
    );
    let mut api = Distribution::new("https://portail-api-data.montpellier3m.fr/offstreetparking");
    api.title = s("Disponibilité (JSON)");
    api.format = s("JSON");
    api.media_type = s("application/json");
    api.byte_size = Some(1024);
    api.licence = Some(LicenceRef::Known(Licence::Odbl));
    let file = "https://data.montpellier3m.fr/sites/default/files/ressources/parkings.csv";
    let mut csv = Distribution::new(file);
    csv.download_url = s(file);
    csv.title = s("Liste des parkings (CSV)");
    csv.format = s("CSV");
    assert_eq!(d.distributions, [api, csv]);

    // Expanded form, a blank node: identified by its dct:identifier.
    let r = &parsed.rows[1];
    assert_eq!(r.source_identifier, "budget-primitif-2025");
    assert_eq!(r.records[0].record_id, "dcat:budget-primitif-2025");
    let d = dataset(r);
    assert_eq!(d.title, "Budget primitif 2025");
    assert_eq!(d.keywords, strings(&["budget", "finances"]));
    assert_eq!(d.licence, Some(LicenceRef::Known(Licence::Etalab2)));
    assert_eq!(d.frequency, Some(Frequency::Annual));
    assert_eq!(d.publisher, montpellier);
    assert_eq!(d.distributions.len(), 1);
    assert_eq!(
        d.distributions[0].access_url,
        "https://data.montpellier3m.fr/sites/default/files/budget-primitif-2025.csv"
    );

    // A distribution with no address is left out, with a warning; the
    // dataset is imported.
    let r = row(&parsed, 3);
    assert!(dataset(r).distributions.is_empty());
    let broken = &r.warnings;
    assert_eq!(broken.len(), 1, "{broken:#?}");
    assert_eq!(broken[0].field, "distribution[0]");
    assert_eq!(
        broken[0].value,
        "https://data.montpellier3m.fr/dataset/comptages-routiers/resource/1"
    );
    assert!(
        broken[0].reason.contains("accessURL"),
        "{}",
        broken[0].reason
    );
}

#[test]
fn json_that_is_not_a_dcat_catalogue() {
    let person = br#"{"@context": {"foaf": "http://xmlns.com/foaf/0.1/"},
        "@graph": [{"@id": "https://ex.fr/p/1", "@type": "foaf:Person", "foaf:name": "Jeanne"}]}"#;
    let e = parse(Format::DcatJsonLd, "x.jsonld", person).unwrap_err();
    assert!(matches!(e, ImportError::NotDcat { .. }), "{e:?}");
    assert!(e.to_string().contains("foaf:Person"), "{e}");

    let e = parse(Format::DcatJsonLd, "x.jsonld", b"42").unwrap_err();
    assert!(matches!(e, ImportError::NotDcat { .. }), "{e:?}");

    let e = parse(
        Format::DcatJsonLd,
        "x.jsonld",
        b"{\n  \"@graph\": [\n    {,}\n  ]\n}",
    )
    .unwrap_err();
    match &e {
        ImportError::Json { line, .. } => assert_eq!(*line, 3, "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(next_page(b"not json"), None);

    // An empty page of a catalogue is a catalogue with nothing in it.
    let empty = br#"{"@graph": [{"@id": "https://ex.fr/catalog", "@type": "dcat:Catalog"}]}"#;
    assert_eq!(
        parse(Format::DcatJsonLd, "x.jsonld", empty).unwrap(),
        Parsed::default()
    );
}

// ---------------------------------------------------------------- whole-file errors

#[test]
fn a_missing_required_column_is_named_with_the_columns_found() {
    let csv =
        "Nom_collectivite,Nom_du_projet,SIRET,Description_service\nBlagnac,X,21310069600011,Y\n";
    let e = parse(Format::BibliothequeIa, "x.csv", csv.as_bytes()).unwrap_err();
    assert_eq!(
        e,
        ImportError::MissingColumns {
            format: "bibliothèque IA",
            missing: "`Statut_du_projet`".into(),
            found: "Nom_collectivite, Nom_du_projet, SIRET, Description_service".into(),
        }
    );
    assert_eq!(
        e.to_string(),
        "missing required column `Statut_du_projet` for the bibliothèque IA format; the header has: \
         Nom_collectivite, Nom_du_projet, SIRET, Description_service"
    );

    let csv = "COLL_NOM;COLL_SIRET;DESCRIPTION\n";
    let e = parse(Format::ScdlCatalogue, "x.csv", csv.as_bytes()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("missing required columns `ID`, `TITRE` for the SCDL catalogue format"),
        "{e}"
    );

    // A JSON file given as CSV: its first line is no header.
    let e = parse(Format::EtalabCatalogue, "x.json", b"{\"titre\": 1}").unwrap_err();
    assert!(matches!(e, ImportError::MissingColumns { .. }), "{e:?}");

    let e = parse(Format::EtalabCatalogue, "x.csv", b"\n\n").unwrap_err();
    assert!(matches!(e, ImportError::Empty { .. }), "{e:?}");
    assert!(e.to_string().contains("titre"), "{e}");
}

/// What a French Excel writes by default ("CSV (séparateur: point-virgule)"):
/// Windows-1252, semicolons. Read as such, and said so.
#[test]
fn a_windows_1252_file_is_read_as_such_and_said_so() {
    // "Métropole", "€" and "œ" in Windows-1252 (0xE9, 0x80, 0x9C).
    let cp1252 = b"Nom_collectivite;Nom_du_projet;SIRET;Statut_du_projet;Description_service\r\n\
                   Toulouse M\xe9tropole;X;24310051800014;Termin\xe9;Budget de 50 k\x80, c\x9cur de m\xe9tier\r\n";
    let parsed = parse(Format::BibliothequeIa, "x.csv", cp1252).unwrap();
    assert!(parsed.errors.is_empty(), "{:#?}", parsed.errors);
    let p = project(&parsed.rows[0]);
    assert_eq!(p.organisation_name.as_deref(), Some("Toulouse Métropole"));
    assert_eq!(p.status, ProjectStatus::Termine);
    assert_eq!(p.description, "Budget de 50 k€, cœur de métier");
    assert_eq!(parsed.notes.len(), 1);
    assert!(
        parsed.notes[0]
            .starts_with("read as Windows-1252: the file is not UTF-8 (byte 0xE9 on line 2)"),
        "{}",
        parsed.notes[0]
    );
}

/// Excel's "Unicode text": UTF-16 with its byte-order mark, tabs.
#[test]
fn a_utf16_file_is_read() {
    let text = "Nom_collectivite\tNom_du_projet\tSIRET\tStatut_du_projet\tDescription_service\r\n\
                Colomiers\tCarte\t21310149600015\tTerminé\tUne carte des chantiers.\r\n";
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let parsed = parse(Format::BibliothequeIa, "x.txt", &bytes).unwrap();
    assert!(parsed.errors.is_empty(), "{:#?}", parsed.errors);
    assert_eq!(project(&parsed.rows[0]).name, "Carte");
    assert!(parsed.notes[0].contains("UTF-16"), "{:?}", parsed.notes);
}

/// A separator given by the user wins over the one the header suggests.
#[test]
fn a_delimiter_given_is_used() {
    // Commas inside unquoted names: the header has more commas than pipes.
    let csv = "COLL_NOM|COLL_SIRET|ID|TITRE|DESCRIPTION|MOTS_CLES\n\
               Colomiers|21310149600015|a|Voirie, routes et trottoirs|Voirie.|voirie,routes\n";
    let guessed = parse(Format::ScdlCatalogue, "x.csv", csv.as_bytes()).unwrap_err();
    assert!(
        matches!(guessed, ImportError::MissingColumns { .. }),
        "{guessed}"
    );
    let options = maillage_import::Options {
        delimiter: Some(b'|'),
        ..Default::default()
    };
    let parsed =
        maillage_import::parse_with(Format::ScdlCatalogue, "x.csv", csv.as_bytes(), &options)
            .unwrap();
    assert!(parsed.errors.is_empty(), "{:#?}", parsed.errors);
    assert_eq!(
        dataset(&parsed.rows[0]).title,
        "Voirie, routes et trottoirs"
    );
}

/// A spreadsheet is read from its first sheet: numbers typed as numbers
/// (a SIRET) and dates typed as dates read as a CSV export writes them;
/// row numbers are the spreadsheet's.
#[test]
fn a_spreadsheet_is_read_from_its_first_sheet() {
    let parsed = import(Format::BibliothequeIa, "bibliotheque-ia.xlsx");
    assert!(parsed.errors.is_empty(), "{:#?}", parsed.errors);
    assert_eq!(lines(&parsed), [2, 4]);
    assert_eq!(
        parsed.notes,
        ["read the sheet 'Projets IA' of the spreadsheet"]
    );
    let r = row(&parsed, 2);
    let p = project(r);
    assert_eq!(p.siret.as_deref(), Some("21310149600015"));
    assert_eq!((p.latitude, p.longitude), (Some(43.6112), Some(1.3355)));
    assert_eq!(p.last_updated.as_deref(), Some("2024-06-30"));
    assert_eq!(
        p.audiences,
        [Audience::Collectivities, Audience::Developers]
    );
    assert!(r.warnings.is_empty(), "{:#?}", r.warnings);
    let r = row(&parsed, 4);
    assert_eq!(project(r).last_updated.as_deref(), Some("2025-03-02"));
    assert_eq!(r.warnings.len(), 1, "{:#?}", r.warnings);
    assert_eq!(r.warnings[0].field, "URL_Service");

    // A real spreadsheet that is no catalogue: its columns are named.
    let e = parse(
        Format::ScdlCatalogue,
        "rei.xlsx",
        &fixture("rei-dgfip.xlsx"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("the header has: NOM, LABEL"), "{e}");
}

// ---------------------------------------------------------------- formats and record ids

#[test]
fn format_names() {
    for (name, want) in [
        ("scdl", Format::ScdlCatalogue),
        ("SCDL-catalogue", Format::ScdlCatalogue),
        ("etalab", Format::EtalabCatalogue),
        ("bibliotheque-ia", Format::BibliothequeIa),
        ("Bibliothèque IA", Format::BibliothequeIa),
        ("bibliotheque_ia", Format::BibliothequeIa),
        ("dcat", Format::DcatJsonLd),
        ("DCAT-AP", Format::DcatJsonLd),
        ("jsonld", Format::DcatJsonLd),
        ("Turtle", Format::DcatJsonLd),
        ("udata", Format::Udata),
        ("data.gouv.fr", Format::Udata),
        ("CKAN", Format::Ckan),
    ] {
        assert_eq!(Format::parse(name), Ok(want), "{name}");
    }
    let e = Format::parse("xml").unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown import format 'xml'; accepted: scdl, etalab, bibliotheque-ia, dcat, udata, ckan"
    );
    let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
    assert_eq!(
        names,
        [
            "scdl-catalogue",
            "etalab-catalogue",
            "bibliotheque-ia",
            "dcat-jsonld",
            "udata",
            "ckan"
        ]
    );
}

#[test]
fn record_ids_are_readable_valid_and_deterministic() {
    for (format, ident, want) in [
        (
            Format::ScdlCatalogue,
            "24310051800014:budget-primitif-2024",
            "scdl:24310051800014:budget-primitif-2024",
        ),
        (
            Format::BibliothequeIa,
            "21310069600011:Équipe données",
            "bibliotheque-ia:21310069600011:Equipe-donnees",
        ),
        (
            Format::DcatJsonLd,
            "https://www.data.gouv.fr/catalog.jsonld?page=2&page_size=20",
            "dcat:https://www.data.gouv.fr/catalog.jsonld-page-2-page_size-20",
        ),
        (
            Format::EtalabCatalogue,
            "ccas-blagnac:aides",
            "etalab:ccas-blagnac:aides",
        ),
    ] {
        let id = record_id_for(format, ident);
        assert_eq!(id, want);
        assert_eq!(record_id_for(format, ident), id, "same input, same id");
        validate_record_id(&id).unwrap();
    }
    // The same identifier in two formats: two records.
    assert_ne!(
        record_id_for(Format::ScdlCatalogue, "x:1"),
        record_id_for(Format::EtalabCatalogue, "x:1")
    );
}

#[test]
fn long_record_ids_end_with_a_stable_hash() {
    let long = format!("24310051800014:{}", "tres-long-identifiant-".repeat(20));
    let id = record_id_for(Format::ScdlCatalogue, &long);
    // Pinned: a change of hash would give every re-imported record a new id.
    assert_eq!(
        id,
        format!(
            "scdl:24310051800014:{}tres-long-daf8a6bce368bd88",
            "tres-long-identifiant-".repeat(7)
        )
    );
    assert_eq!(id.len(), 200);
    validate_record_id(&id).unwrap();
    assert_eq!(record_id_for(Format::ScdlCatalogue, &long), id);

    // Identifiers that share their first 200 characters still differ.
    let other = record_id_for(Format::ScdlCatalogue, &format!("{long}x"));
    assert_ne!(other, id);
    assert_eq!(other[..183], id[..183]);

    // Nothing readable: the hash alone.
    let id = record_id_for(Format::DcatJsonLd, "日本語");
    assert!(id.starts_with("dcat:") && id.len() == 5 + 16, "{id}");
    validate_record_id(&id).unwrap();
}

#[test]
fn reimporting_gives_the_same_records() {
    for (format, name) in [
        (Format::ScdlCatalogue, "scdl-catalogue.csv"),
        (Format::EtalabCatalogue, "etalab-catalogue.csv"),
        (Format::BibliothequeIa, "bibliotheque-ia.csv"),
        (Format::DcatJsonLd, "ckan-catalog.jsonld"),
    ] {
        let a = parse(format, name, &fixture(name)).unwrap();
        let b = parse(format, name, &fixture(name)).unwrap();
        assert_eq!(a, b, "{name}");
        let ids: Vec<&str> = a
            .rows
            .iter()
            .map(|r| r.records[0].record_id.as_str())
            .collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "{name}: {ids:?}");
    }
}

#[test]
fn drafts_are_public_and_carry_their_provenance() {
    let parsed = import(Format::BibliothequeIa, "bibliotheque-ia.csv");
    let r: &Record = &parsed.rows[0].records[0];
    let p = r.provenance.as_ref().unwrap();
    assert_eq!(p.source_format, "bibliotheque-ia");
    assert_eq!(p.source.as_deref(), Some("bibliotheque-ia.csv"));
    assert_eq!(
        p.source_identifier.as_deref(),
        Some("24310051800014:tri-automatique-des-courriers-entrants")
    );
    assert_eq!(
        p.on_behalf_of,
        agent("Toulouse Métropole", Some("243100518"))
    );
}

// ---------------------------------------------------------------- specifications

/// A catalogue written to the SCDL specification and schema, every value
/// of their lists in it, imports with no refusal and no warning.
#[test]
fn a_catalogue_written_to_the_scdl_specification_imports_as_written() {
    let parsed = import(Format::ScdlCatalogue, "scdl-specification.csv");
    assert!(parsed.errors.is_empty(), "{:#?}", parsed.errors);
    assert_eq!(parsed.rows.len(), 17);
    for r in &parsed.rows {
        assert!(r.warnings.is_empty(), "{:#?}", r.warnings);
        let provenance = r.records[0].provenance.as_ref().unwrap();
        assert!(provenance.as_written.is_empty());
    }
    let d = dataset(row(&parsed, 4));
    assert_eq!(d.licence, Some(LicenceRef::Known(Licence::CreativeCommons)));
    assert_eq!(d.frequency, Some(Frequency::Irregular));
    assert_eq!(
        d.spatial.as_ref().unwrap().granularity,
        Some(SpatialGranularity::Epci)
    );
    assert_eq!(d.keywords, strings(&["urbanisme", "plan local"]));
    let d = dataset(row(&parsed, 5));
    assert_eq!(d.licence, Some(LicenceRef::Known(Licence::Other)));
    assert_eq!(d.frequency, Some(Frequency::Continuous));
    assert_eq!(
        d.spatial.as_ref().unwrap().granularity,
        Some(SpatialGranularity::Canton)
    );
    let d = dataset(row(&parsed, 9));
    assert_eq!(d.frequency, Some(Frequency::Monthly));
    assert_eq!(d.licence, Some(LicenceRef::Known(Licence::Etalab2)));
}

/// Etalab's own example of its catalogue schema imports as written.
#[test]
fn etalab_s_example_imports_as_written() {
    let parsed = import(Format::EtalabCatalogue, "etalab-exemple-valide.csv");
    assert!(parsed.errors.is_empty(), "{:#?}", parsed.errors);
    let r = row(&parsed, 2);
    assert!(r.warnings.is_empty(), "{:#?}", r.warnings);
    let d = dataset(r);
    assert_eq!(d.frequency, Some(Frequency::Annual));
    assert_eq!(d.licence, Some(LicenceRef::Known(Licence::Etalab2)));
    assert_eq!(
        r.organisation,
        agent(
            "Institut national de l'information géographique et forestière",
            Some("180067019")
        )
    );
}

/// Values written otherwise than a vocabulary names them are read as the
/// nearest known value, or the field's fallback, and kept as written.
#[test]
fn values_outside_a_vocabulary_are_read_as_the_nearest_and_kept() {
    let csv = "COLL_NOM,COLL_SIRET,ID,TITRE,DESCRIPTION,LICENCE,FREQ_MAJ,COUV_SPAT_MAILLE,URL\n\
               Colomiers,21310149600015,a,A,Une.,Licence Ouverte v2.0 (Etalab),\"Mensuelle, parfois plus\",Hameau,intranet seulement\n";
    let parsed = parse(Format::ScdlCatalogue, "x.csv", csv.as_bytes()).unwrap();
    assert!(parsed.errors.is_empty(), "{:#?}", parsed.errors);
    let r = &parsed.rows[0];
    let d = dataset(r);
    assert_eq!(d.licence, Some(LicenceRef::Known(Licence::Etalab2)));
    assert_eq!(d.frequency, Some(Frequency::Monthly));
    assert_eq!(
        d.spatial.as_ref().unwrap().granularity,
        Some(SpatialGranularity::Autre)
    );
    assert!(d.distributions.is_empty() && d.landing_page.is_none());
    let warned: Vec<(&str, &str)> = r
        .warnings
        .iter()
        .map(|w| (w.field.as_str(), w.value.as_str()))
        .collect();
    // In the order of the columns.
    assert_eq!(
        warned,
        [
            ("LICENCE", "Licence Ouverte v2.0 (Etalab)"),
            ("FREQ_MAJ", "Mensuelle, parfois plus"),
            ("COUV_SPAT_MAILLE", "Hameau"),
            ("URL", "intranet seulement"),
        ]
    );
    assert!(r.warnings.iter().all(|w| w.warning));
    assert!(r.warnings[0].reason.contains("read as 'etalab-2.0'"));
    let kept = &r.records[0].provenance.as_ref().unwrap().as_written;
    assert_eq!(kept.len(), 4);
    assert_eq!(kept["COUV_SPAT_MAILLE"], "Hameau");
    // The record, as kept, is valid and signs like any other.
    r.records[0].validate_draft().unwrap();
}

// ---------------------------------------------------------------- real RDF exports

/// Opendatasoft's RDF/XML export, as a portal serves it: every dataset,
/// its themes (named by "?refine.theme=" IRIs), its licence (by a URI
/// variant), its description written in HTML read as text.
#[test]
fn an_opendatasoft_rdf_xml_export_imports() {
    let parsed = import(Format::DcatJsonLd, "ods-rennes-catalog.rdf");
    assert!(parsed.errors.is_empty(), "{:#?}", parsed.errors);
    assert_eq!(parsed.rows.len(), 27);
    assert_eq!(parsed.notes, ["read as RDF/XML"]);
    let r = row(&parsed, 12);
    assert_eq!(
        r.source_identifier,
        "https://data.rennesmetropole.fr/explore/dataset/mos_2006_2017_rennes_metropole/"
    );
    let d = dataset(r);
    assert_eq!(
        d.title,
        "Mode d'Occupation du Sol (MOS) de Rennes Métropole 2006-2017"
    );
    assert_eq!(d.themes, strings(&["Environnement"]));
    assert_eq!(d.licence, Some(LicenceRef::Known(Licence::Odbl)));
    assert!(!d.description.contains('<'), "{}", d.description);
    assert!(
        d.description
            .contains("\nIl s'agit d'une couche indiquant l'occupation du sol"),
        "{}",
        d.description
    );
    assert_eq!(
        d.publisher.as_ref().map(|p| p.name.as_str()),
        Some("Audiar - Rennes Métropole")
    );
    assert!(d.distributions.len() > 3, "{:#?}", d.distributions);
    assert_eq!(d.distributions[0].media_type.as_deref(), Some("text/csv"));
    assert_eq!(d.issued.as_deref(), Some("2021-04-23T07:43:09+00:00"));
    assert!(parsed.rows.iter().all(|r| r.warnings.is_empty()));
}

/// A DCAT-AP dataset in Turtle, as datos.gob.es publishes it.
#[test]
fn a_turtle_dataset_imports() {
    let parsed = import(Format::DcatJsonLd, "datos-madrid-dataset.ttl");
    assert!(parsed.errors.is_empty(), "{:#?}", parsed.errors);
    assert_eq!(parsed.notes, ["read as Turtle"]);
    let r = row(&parsed, 1);
    let d = dataset(r);
    assert!(
        d.title.starts_with("Estudio de Satisfacción"),
        "{}",
        d.title
    );
    assert_eq!(
        d.keywords,
        strings(&["deporte escolar", "escuelas", "promoción"])
    );
    assert_eq!(
        d.publisher.as_ref().map(|p| p.name.as_str()),
        Some("Ayuntamiento de Madrid")
    );
    assert_eq!(d.distributions[0].byte_size, Some(43008));
    // Its frequency is a node this reader does not know: kept, warned.
    assert_eq!(d.frequency, Some(Frequency::Unknown));
    assert_eq!(r.warnings.len(), 1, "{:#?}", r.warnings);
}

/// JSON-LD through a JSON-LD processor: SEMICeu's DCAT-AP example.
#[test]
fn the_dcat_ap_json_ld_example_imports() {
    let parsed = import(Format::DcatJsonLd, "dcat-ap-example.jsonld");
    assert!(parsed.errors.is_empty(), "{:#?}", parsed.errors);
    assert_eq!(parsed.rows.len(), 2);
    assert!(parsed.notes.is_empty(), "{:?}", parsed.notes);
    assert!(parsed.rows.iter().all(|r| !dataset(r).title.is_empty()));
}

/// Turtle and RDF/XML that are no RDF are refused whole, saying where.
#[test]
fn rdf_that_does_not_parse_says_where() {
    let e = parse(
        Format::DcatJsonLd,
        "x.ttl",
        b"@prefix dcat: <http://www.w3.org/ns/dcat#> .\n<https://ex.fr/d> a dcat:Dataset ;\n dct:title \"x\" .\n",
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            ImportError::Rdf {
                syntax: "Turtle",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("line 3"), "{e}");
    let e = parse(
        Format::DcatJsonLd,
        "x.rdf",
        b"<?xml version=\"1.0\"?><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description></rdf:RDF>",
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            ImportError::Rdf {
                syntax: "RDF/XML",
                ..
            }
        ),
        "{e:?}"
    );
}

// ---------------------------------------------------------------- portal APIs

/// data.gouv.fr's API answer for an organisation's datasets.
#[test]
fn a_udata_api_page_imports() {
    let parsed = import(Format::Udata, "udata-angers-datasets.json");
    assert!(parsed.errors.is_empty(), "{:#?}", parsed.errors);
    assert_eq!(parsed.rows.len(), 18);
    let r = row(&parsed, 1);
    assert_eq!(r.source_identifier, "57582fa188ee382bdf640391");
    assert_eq!(r.records[0].record_id, "udata:57582fa188ee382bdf640391");
    let d = dataset(r);
    assert_eq!(d.title, "Nomenclature des déchets");
    assert_eq!(d.licence, Some(LicenceRef::Known(Licence::Odbl)));
    assert_eq!(d.frequency, Some(Frequency::Annual));
    assert_eq!(
        d.keywords,
        strings(&["dechets", "environement", "tri-des-dechets", "tri-selectif"])
    );
    assert_eq!(
        d.landing_page.as_deref(),
        Some("https://next.data.gouv.fr/fr/datasets/nomenclature-des-dechets/")
    );
    assert_eq!(
        d.publisher.as_ref().map(|p| p.name.as_str()),
        Some("Angers Loire Métropole")
    );
    assert_eq!(
        d.spatial.as_ref().unwrap().granularity,
        Some(SpatialGranularity::Autre)
    );
    let dist = &d.distributions[0];
    assert_eq!(dist.byte_size, Some(70940));
    assert_eq!(dist.media_type.as_deref(), Some("text/csv"));
    assert_eq!(
        dist.checksum,
        Some(Checksum {
            algorithm: "sha1".into(),
            value: "04b7deb0cd9a38c0e4119bd018aae8dd4b7211c7".into()
        })
    );
    assert_eq!(d.issued.as_deref(), Some("2016-06-08T16:45:53.694000"));
    // The old API answered a bare list: no next page.
    assert_eq!(
        Format::Udata.next_page("https://x", &fixture("udata-angers-datasets.json")),
        None
    );
    let page = br#"{"data": [], "next_page": "https://www.data.gouv.fr/api/1/datasets/?page=3", "page": 2}"#;
    assert_eq!(
        Format::Udata.next_page("https://x", page).as_deref(),
        Some("https://www.data.gouv.fr/api/1/datasets/?page=3")
    );
}

/// A CKAN package_search answer, and its next page by `start`.
#[test]
fn a_ckan_package_search_imports_and_pages() {
    let bytes = fixture("ckan-envidat-package-search.json");
    let url = "https://www.envidat.ch/api/3/action/package_search?q=permafrost&rows=2";
    let options = maillage_import::Options {
        base: Some(url.into()),
        ..Default::default()
    };
    let parsed = maillage_import::parse_with(Format::Ckan, "envidat", &bytes, &options).unwrap();
    assert!(parsed.errors.is_empty(), "{:#?}", parsed.errors);
    assert_eq!(parsed.rows.len(), 2);
    let d = dataset(&parsed.rows[0]);
    assert_eq!(
        d.title,
        "The importance of hot summers and individual heatwaves for permafrost in the Swiss Alps"
    );
    assert_eq!(d.licence, Some(LicenceRef::Known(Licence::CcBy)));
    assert_eq!(
        d.landing_page.as_deref(),
        Some(
            "https://www.envidat.ch/dataset/the-importance-of-hot-summers-and-individual-heatwaves-for-permafrost-warming-an"
        )
    );
    assert_eq!(d.publisher.as_ref().map(|p| p.name.as_str()), Some("CRYOS"));
    assert!(d.keywords.contains(&"ATMOSPHERIC HEATWAVES".to_string()));
    assert_eq!(
        Format::Ckan.next_page(url, &bytes).as_deref(),
        Some("https://www.envidat.ch/api/3/action/package_search?q=permafrost&rows=2&start=2")
    );
    // A search without rows asks for 100 a page.
    assert_eq!(
        Format::Ckan.first_page("https://ex.fr/api/3/action/package_search?q=x"),
        "https://ex.fr/api/3/action/package_search?q=x&rows=100"
    );
}

/// DKAN's package_show, its dates as it writes them: kept as written,
/// with a warning each; the dataset is imported.
#[test]
fn a_dkan_package_show_imports_with_its_odd_dates_kept() {
    let parsed = import(Format::Ckan, "dkan-hautsdefrance-package-show.json");
    assert!(parsed.errors.is_empty(), "{:#?}", parsed.errors);
    let r = row(&parsed, 1);
    let fields: Vec<&str> = r.warnings.iter().map(|w| w.field.as_str()).collect();
    assert!(fields.contains(&"metadata_created"), "{fields:?}");
    let kept = &r.records[0].provenance.as_ref().unwrap().as_written;
    assert_eq!(kept["metadata_created"], "mar, 10/12/2019 - 09:23");
}

/// A large file is read on every core: the rows, their order, their lines,
/// duplicates and refusals are the same as read one by one.
#[test]
fn a_large_file_reads_as_a_small_one_does() {
    let mut csv = String::from("COLL_NOM;COLL_SIRET;ID;TITRE;DESCRIPTION;FREQ_MAJ\n");
    for i in 0..5_000 {
        let id = if i == 4_000 { 100 } else { i };
        let siret = if i == 3_000 {
            "21310149600016"
        } else {
            "21310149600015"
        };
        let freq = if i == 2_500 {
            "Quand nécessaire"
        } else {
            "Annuelle"
        };
        csv.push_str(&format!(
            "Colomiers;{siret};jeu-{id};Jeu {i};Le jeu {i}.;{freq}\n"
        ));
    }
    let parsed = parse(Format::ScdlCatalogue, "x.csv", csv.as_bytes()).unwrap();
    assert_eq!(parsed.rows.len(), 4_998);
    let lines = lines(&parsed);
    assert!(lines.windows(2).all(|w| w[0] < w[1]), "in the file's order");
    assert_eq!(dataset(row(&parsed, 2_502)).title, "Jeu 2500");
    assert_eq!(row(&parsed, 2_502).warnings.len(), 1);
    let refused: Vec<(usize, &str)> = parsed
        .errors
        .iter()
        .map(|e| (e.line, e.field.as_str()))
        .collect();
    // The SIRET of line 3,002; line 4,002 repeats the identifier of line 102.
    assert_eq!(refused, [(3_002, "COLL_SIRET"), (4_002, "ID")]);
    assert!(
        parsed.errors[1].reason.contains("as line 102"),
        "{}",
        parsed.errors[1].reason
    );
}

/// A file read a part at a time (as `maillage import` reads a file while it
/// sends the rows before) gives the same rows and refusals as read whole: a
/// row repeating the identifier of a row of an earlier part is refused; the
/// notes on how the file was read come once, with the first part.
#[test]
fn a_file_read_in_parts_reads_as_it_does_whole() {
    let mut csv = String::from("COLL_NOM;COLL_SIRET;ID;TITRE;DESCRIPTION\n");
    for i in 0..250 {
        // Line 202 (the row of i = 200) repeats the identifier of line 12.
        let id = if i == 200 { 10 } else { i };
        csv.push_str(&format!(
            "Colomiers;21310149600015;jeu-{id};Jeu {i};Le jeu {i}.\n"
        ));
    }
    // Windows-1252, as French Excel writes it: a note says so.
    let bytes: Vec<u8> = csv
        .replace("Le jeu", "Le jeu é")
        .chars()
        .map(|c| c as u8)
        .collect();
    let options = maillage_import::Options::default();
    let whole =
        maillage_import::parse_with(Format::ScdlCatalogue, "x.csv", &bytes, &options).unwrap();
    let opened = maillage_import::open(Format::ScdlCatalogue, "x.csv", &bytes, &options).unwrap();
    assert_eq!(opened.len(), 250);
    let mut parts = Vec::new();
    opened.parts(60, |p| parts.push(p));
    assert_eq!(parts.len(), 5, "250 rows, 60 at a time");
    assert_eq!(parts[0].notes, whole.notes);
    assert_eq!(whole.notes.len(), 1, "{:?}", whole.notes);
    assert!(parts[1..].iter().all(|p| p.notes.is_empty()));
    let rows: Vec<_> = parts.iter().flat_map(|p| p.rows.clone()).collect();
    let errors: Vec<_> = parts.iter().flat_map(|p| p.errors.clone()).collect();
    assert_eq!(rows, whole.rows);
    assert_eq!(errors, whole.errors);
    assert_eq!(rows.len(), 249);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, 202);
    assert!(
        errors[0].reason.contains("as line 12"),
        "{}",
        errors[0].reason
    );
}

/// A spreadsheet crafted so that its reader panics (found by fuzzing: a cell
/// reference of too many letters overflows calamine's arithmetic) is
/// refused as unreadable, not a crash.
#[test]
fn a_crafted_spreadsheet_is_refused_not_a_crash() {
    let e = parse(
        Format::BibliothequeIa,
        "x.xlsx",
        &fixture("crafted-overflow.xlsx"),
    )
    .unwrap_err();
    assert!(matches!(e, ImportError::Spreadsheet { .. }), "{e:?}");
    assert!(e.to_string().contains("cannot be read"), "{e}");
}

/// A chef de file's file may say which territories a project serves
/// (`Territoires_couverts`, not in the bibliothèque's own export): each
/// territory kept, anything else left out with a warning, as written.
#[test]
fn bibliotheque_coverage_is_read_where_the_file_says_it() {
    let csv = "Nom_collectivite,Nom_du_projet,SIRET,Statut_du_projet,Description_service,Territoires_couverts\n\
Toulouse Métropole,Collecte des déchets,24310051800014,En déploiement,Optimise les tournées,\"31555; 31069, dep:82\"\n\
Toulouse Métropole,Voirie,24310051800014,En déploiement,Repère les nids-de-poule,\"243100518; nulle-part\"\n";
    let parsed = parse(Format::BibliothequeIa, "couverture.csv", csv.as_bytes()).unwrap();
    assert_eq!(
        project(row(&parsed, 2)).coverage,
        strings(&["31555", "31069", "dep:82"])
    );
    let voirie = row(&parsed, 3);
    assert_eq!(project(voirie).coverage, strings(&["243100518"]));
    let warned: Vec<&RowError> = voirie.warnings.iter().collect();
    assert!(
        warned.len() == 1
            && warned[0].field == "Territoires_couverts"
            && warned[0].value == "nulle-part",
        "{warned:?}"
    );
    let kept = &voirie.records[0].provenance.as_ref().unwrap().as_written;
    assert_eq!(
        kept.get("Territoires_couverts").map(String::as_str),
        Some("nulle-part")
    );
}
