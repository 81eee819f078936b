//! Records as JSON documents: what `maillage publish` reads and `maillage get
//! --json` prints. One flat object: the record's common fields (`kind`,
//! `record_id`, `version`, `issued_at`, `visibility`, `audience`, `author`) beside
//! the body's fields. Errors name the field at fault, with its path.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::PublicKey;
use crate::model::{Body, Kind, Record, ValidationError, Visibility};
use crate::siren::Siren;

/// A record as written by a person, before the node signs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// Version 0 and issued_at 0 mean "let the node fill them in".
    pub record: Record,
    /// The author the writer expects to sign, if the document names one.
    pub author: Option<PublicKey>,
}

/// Why a JSON document is not a record.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("not valid JSON at line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("a record must be a JSON object, found {found}")]
    NotAnObject { found: &'static str },
    #[error("field `{path}`: {message}")]
    Field { path: String, message: String },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

const COMMON: [&str; 8] = [
    "kind",
    "record_id",
    "version",
    "issued_at",
    "visibility",
    "audience",
    "author",
    "provenance",
];

/// Parses and validates a JSON record document.
pub fn parse_document(text: &str) -> Result<Draft, DocumentError> {
    let value: Value = serde_json::from_str(text).map_err(|e| DocumentError::Syntax {
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })?;
    let Value::Object(mut obj) = value else {
        return Err(DocumentError::NotAnObject {
            found: json_type(&value),
        });
    };
    let common: Map<String, Value> = COMMON
        .iter()
        .filter_map(|k| obj.remove(*k).map(|v| (k.to_string(), v)))
        .collect();

    let kind_text = match common.get("kind") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(field(
                "kind",
                format!("must be a string, found {}", json_type(other)),
            ));
        }
        None => {
            return Err(field(
                "kind",
                format!(
                    "is missing; say what the record is: one of {}",
                    Kind::ALL.map(Kind::as_str).join(", ")
                ),
            ));
        }
    };
    let kind = Kind::parse(&kind_text)?;
    let record_id = match common.get("record_id") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(field(
                "record_id",
                format!("must be a string, found {}", json_type(other)),
            ));
        }
        None => String::new(), // validate_record_id explains what to do
    };
    let version = match common.get("version") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| field("version", format!("must be a positive integer, found {v}")))?,
    };
    let issued_at_ms = match common.get("issued_at") {
        None | Some(Value::Null) => 0,
        Some(Value::String(s)) => parse_time(s).ok_or_else(|| {
            field(
                "issued_at",
                format!("'{s}' is not an RFC 3339 UTC time such as 2026-11-25T10:00:00Z"),
            )
        })?,
        Some(other) => {
            return Err(field(
                "issued_at",
                format!("must be a string, found {}", json_type(other)),
            ));
        }
    };
    // A project's details exist to stay out of public view: without a word
    // from the writer they stay within the federation; anything else is public.
    let default_scope = if kind == Kind::ProjectDetails {
        "federation"
    } else {
        "public"
    };
    let visibility = parse_visibility(
        common.get("visibility"),
        common.get("audience"),
        default_scope,
    )?;
    let author = match common.get("author") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            Some(PublicKey::parse_hex(s).map_err(|e| field("author", e.to_string()))?)
        }
        Some(other) => {
            return Err(field(
                "author",
                format!("must be a string, found {}", json_type(other)),
            ));
        }
    };

    if kind == Kind::Organisation {
        compact_organisation_ids(&mut obj);
    }
    let rest = Value::Object(obj);
    let body = match kind {
        Kind::Organisation => Body::Organisation(body_from(rest)?),
        Kind::Dataset => Body::Dataset(body_from(rest)?),
        Kind::Project => Body::Project(body_from(rest)?),
        Kind::Tombstone => Body::Tombstone(body_from(rest)?),
        Kind::Membership => Body::Membership(body_from(rest)?),
        Kind::ProjectDetails => Body::ProjectDetails(body_from(rest)?),
        Kind::Resource => Body::Resource(body_from(rest)?),
        Kind::Collection => Body::Collection(body_from(rest)?),
        Kind::Succession => Body::Succession(body_from(rest)?),
        Kind::Revocation => Body::Revocation(body_from(rest)?),
        Kind::Aggregate => Body::Aggregate(body_from(rest)?),
        Kind::Reuse => Body::Reuse(body_from(rest)?),
    };
    let provenance = match common.get("provenance") {
        None | Some(Value::Null) => None,
        Some(v) => Some(body_from(v.clone()).map_err(|e| match e {
            DocumentError::Field { path, message } if path == "(record)" => {
                field("provenance", message)
            }
            DocumentError::Field { path, message } => field(&format!("provenance.{path}"), message),
            other => other,
        })?),
    };
    let mut record = Record {
        record_id,
        version,
        issued_at_ms,
        visibility,
        provenance,
        body,
    };
    if let Body::Organisation(o) = &mut record.body {
        crate::territory::complete(o)?;
    }
    record.validate_draft()?;
    Ok(Draft { record, author })
}

/// An organisation's SIREN and SIRET as people write them, made the spelling
/// records store before the typed SIREN reads it: spaces dropped, and a SIRET
/// given as the SIREN split into both (when no SIRET is given). Values that
/// are not strings are left for their fields' errors.
fn compact_organisation_ids(obj: &mut Map<String, Value>) {
    let no_siret = matches!(obj.get("siret"), None | Some(Value::Null));
    if let Some(Value::String(siret)) = obj.get_mut("siret") {
        siret.retain(|c| !c.is_whitespace());
    }
    let Some(Value::String(siren)) = obj.get_mut("siren") else {
        return;
    };
    siren.retain(|c| !c.is_whitespace());
    // Any 14 characters are split: the SIREN and SIRET checks then say what
    // is wrong with each.
    if no_siret && siren.len() == 14 && siren.is_char_boundary(9) {
        let siret = std::mem::take(siren);
        *siren = siret[..9].to_string();
        obj.insert("siret".into(), Value::String(siret));
    }
}

/// Renders a record as the flat JSON object `parse_document` reads.
pub fn record_to_json(record: &Record) -> Value {
    let mut obj = Map::new();
    obj.insert("kind".into(), record.kind().as_str().into());
    obj.insert("record_id".into(), record.record_id.clone().into());
    obj.insert("version".into(), record.version.into());
    obj.insert("issued_at".into(), format_time(record.issued_at_ms).into());
    let (scope, audience) = match &record.visibility {
        Visibility::Public => ("public", None),
        Visibility::Federation => ("federation", None),
        Visibility::Restricted { audience } => ("restricted", Some(audience)),
    };
    obj.insert("visibility".into(), scope.into());
    if let Some(audience) = audience {
        obj.insert(
            "audience".into(),
            audience.iter().map(|s| Value::from(s.as_str())).collect(),
        );
    }
    let body = match &record.body {
        Body::Organisation(b) => serde_json::to_value(b),
        Body::Dataset(b) => serde_json::to_value(b),
        Body::Project(b) => serde_json::to_value(b),
        Body::Tombstone(b) => serde_json::to_value(b),
        Body::Membership(b) => serde_json::to_value(b),
        Body::ProjectDetails(b) => serde_json::to_value(b),
        Body::Resource(b) => serde_json::to_value(b),
        Body::Collection(b) => serde_json::to_value(b),
        Body::Succession(b) => serde_json::to_value(b),
        Body::Revocation(b) => serde_json::to_value(b),
        Body::Aggregate(b) => serde_json::to_value(b),
        Body::Reuse(b) => serde_json::to_value(b),
    };
    if let Some(p) = &record.provenance
        && let Ok(v) = serde_json::to_value(p)
    {
        obj.insert("provenance".into(), v);
    }
    if let Ok(Value::Object(fields)) = body {
        obj.extend(fields);
    }
    Value::Object(obj)
}

/// RFC 3339 with milliseconds, UTC.
pub fn format_time(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

fn parse_time(s: &str) -> Option<i64> {
    let t: SystemTime = humantime::parse_rfc3339_weak(s).ok()?;
    i64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

fn parse_visibility(
    scope: Option<&Value>,
    audience: Option<&Value>,
    default_scope: &str,
) -> Result<Visibility, DocumentError> {
    let scope = match scope {
        None | Some(Value::Null) => default_scope.to_string(),
        Some(Value::String(s)) => s.trim().to_lowercase(),
        Some(other) => {
            return Err(field(
                "visibility",
                format!("must be a string, found {}", json_type(other)),
            ));
        }
    };
    let sirens = match audience {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let path = format!("audience[{i}]");
                let s = v.as_str().ok_or_else(|| {
                    field(
                        &path,
                        format!("must be a SIREN string, found {}", json_type(v)),
                    )
                })?;
                Siren::parse(s).map_err(|e| field(&path, e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(field(
                "audience",
                format!("must be a list of SIRENs, found {}", json_type(other)),
            ));
        }
    };
    match scope.as_str() {
        "public" | "federation" if !sirens.is_empty() => Err(field(
            "audience",
            format!(
                "only a restricted record has an audience; set \"visibility\": \"restricted\" or remove it (visibility is '{scope}')"
            ),
        )),
        "public" => Ok(Visibility::Public),
        "federation" => Ok(Visibility::Federation),
        "restricted" => Ok(Visibility::Restricted { audience: sirens }),
        other => Err(field(
            "visibility",
            format!(
                "unknown visibility '{other}'; expected one of: public, federation, restricted"
            ),
        )),
    }
}

fn body_from<T: DeserializeOwned>(value: Value) -> Result<T, DocumentError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let path = if path == "." { String::new() } else { path };
        // Missing and unknown fields are reported at the record level by serde.
        DocumentError::Field {
            path: if path.is_empty() {
                "(record)".into()
            } else {
                path
            },
            message,
        }
    })
}

fn field(path: &str, message: String) -> DocumentError {
    DocumentError::Field {
        path: path.to_string(),
        message,
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// serde_json appends " at line L column C", which we report separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATASET: &str = r#"{
        "kind": "dataset",
        "record_id": "budget-2026",
        "title": "Budget primitif 2026",
        "description": "Le budget voté.",
        "keywords": ["budget", "finances"],
        "distributions": [{"access_url": "https://example.org/b.csv", "format": "CSV"}]
    }"#;

    #[test]
    fn dataset_round_trips() {
        let draft = parse_document(DATASET).unwrap();
        assert_eq!(draft.record.kind(), Kind::Dataset);
        assert_eq!(draft.record.visibility, Visibility::Public);
        let mut rec = draft.record;
        rec.version = 3;
        rec.issued_at_ms = 1_764_000_000_123;
        let json = record_to_json(&rec).to_string();
        let back = parse_document(&json).unwrap().record;
        assert_eq!(back, rec);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                r#"{"kind":"dataset","record_id":"x","title":"t","description":3}"#,
                "description",
            ),
            (
                r#"{"kind":"dataset","record_id":"x","title":"t"}"#,
                "description",
            ),
            (
                r#"{"kind":"dataset","record_id":"x","title":"t","description":"d","distributions":[{"format":"CSV"}]}"#,
                "access_url",
            ),
            (
                r#"{"kind":"dataset","record_id":"x","titel":"t","description":"d"}"#,
                "titel",
            ),
            (r#"{"kind":"recipe","record_id":"x"}"#, "recipe"),
            (r#"{"record_id":"x"}"#, "kind"),
            (
                r#"{"kind":"dataset","title":"t","description":"d"}"#,
                "record_id",
            ),
            (
                r#"{"kind":"dataset","record_id":"a b","title":"t","description":"d"}"#,
                "record_id",
            ),
            (
                r#"{"kind":"dataset","record_id":"x","title":"","description":"d"}"#,
                "title",
            ),
            (
                r#"{"kind":"organisation","record_id":"x","siren":"243100519","name":"n"}"#,
                "243100519",
            ),
            (
                r#"{"kind":"dataset","record_id":"x","title":"t","description":"d","visibility":"secret"}"#,
                "secret",
            ),
            (
                r#"{"kind":"dataset","record_id":"x","title":"t","description":"d","visibility":"restricted"}"#,
                "audience",
            ),
            (
                r#"{"kind":"project","record_id":"x","name":"n","description":"d","status":"done"}"#,
                "status",
            ),
            (
                r#"{"kind":"project","record_id":"x","name":"n","description":"d","status":"termine","start_date":"2024-01"}"#,
                "start_date",
            ),
        ];
        for (doc, needle) in cases {
            let err = parse_document(doc).unwrap_err().to_string();
            assert!(err.contains(needle), "{doc}\n => {err}");
        }
        let err = parse_document("{\n\"kind\": \"dataset\",\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
    }

    /// Every example in deploy/examples parses, and survives JSON → record →
    /// protobuf → record → JSON unchanged: no field is lost on the way.
    #[test]
    fn every_example_round_trips_through_json_and_protobuf() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
        let mut kinds = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let mut rec = parse_document(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .record;
            rec.version = 2;
            rec.issued_at_ms = 1_764_000_000_123;
            rec.validate().unwrap();
            let bytes = crate::wire::encode_payload(&rec);
            let back = crate::wire::decode_payload(&bytes).unwrap();
            assert_eq!(back, rec, "{}", path.display());
            let json = record_to_json(&back);
            assert_eq!(parse_document(&json.to_string()).unwrap().record, rec);
            kinds.insert(rec.kind());
        }
        for k in [
            Kind::Dataset,
            Kind::Project,
            Kind::ProjectDetails,
            Kind::Resource,
            Kind::Collection,
            Kind::Membership,
        ] {
            assert!(kinds.contains(&k), "no example of {k}");
        }
    }

    #[test]
    fn labels_are_stored_as_canonical_values() {
        let doc = r#"{"kind":"project","record_id":"p","name":"n","description":"d",
            "status":"Terminée","theme":"Mobilités","audiences":["Élus","grand public"],
            "organisation_kind":"Métropole"}"#;
        let json = record_to_json(&parse_document(doc).unwrap().record);
        assert_eq!(json["status"], "termine");
        assert_eq!(json["theme"], "mobilites");
        assert_eq!(
            json["audiences"],
            serde_json::json!(["elu", "grand_public"])
        );
        assert_eq!(json["organisation_kind"], "epci");
        let doc = r#"{"kind":"dataset","record_id":"d","title":"t","description":"d",
            "licence":"ODbL","frequency":"Trimestrielle"}"#;
        let json = record_to_json(&parse_document(doc).unwrap().record);
        assert_eq!(json["licence"], "odbl");
        assert_eq!(json["frequency"], "quarterly");
        // A licence outside the list is kept by its URI.
        let doc = r#"{"kind":"dataset","record_id":"d","title":"t","description":"d",
            "licence":"https://example.org/licence-maison/"}"#;
        let json = record_to_json(&parse_document(doc).unwrap().record);
        assert_eq!(json["licence"], "https://example.org/licence-maison/");
    }

    #[test]
    fn new_fields_are_checked_with_their_path() {
        let cases = [
            (
                r#"{"kind":"project","record_id":"x","name":"n","description":"d","status":"en pause"}"#,
                &["status", "'en pause'", "experimentation"][..],
            ),
            (
                r#"{"kind":"project","record_id":"x","name":"n","description":"d","status":"termine","audiences":["touristes"]}"#,
                &["audiences[0]", "'touristes'", "grand_public"],
            ),
            (
                r#"{"kind":"project","record_id":"x","name":"n","description":"d","status":"termine","sub_themes":["a","b","c"]}"#,
                &["sub_themes", "two"],
            ),
            (
                r#"{"kind":"project","record_id":"x","name":"n","description":"d","status":"termine","latitude":43.6}"#,
                &["latitude", "both"],
            ),
            (
                r#"{"kind":"project","record_id":"x","name":"n","description":"d","status":"termine","abandon_reason":"budget"}"#,
                &["abandon_reason"],
            ),
            (
                r#"{"kind":"dataset","record_id":"x","title":"t","description":"d","distributions":[{"access_url":"https://a.fr"},{"access_url":"ftp://b"}]}"#,
                &["distributions[1].access_url", "ftp://b"],
            ),
            (
                r#"{"kind":"dataset","record_id":"x","title":"t","description":"d","licence":"tous droits réservés"}"#,
                &["licence", "'tous droits réservés'", "etalab-2.0"],
            ),
            (
                r#"{"kind":"dataset","record_id":"x","title":"t","description":"d","issued":"15/01/2026"}"#,
                &["issued", "ISO 8601"],
            ),
            (
                r#"{"kind":"dataset","record_id":"x","title":"t","description":"d","contact_point":{"email":"pas-un-courriel"}}"#,
                &["contact_point.email"],
            ),
            (
                r#"{"kind":"dataset","record_id":"x","title":"t","description":"d","spatial":{"insee_codes":["31555","3X"]}}"#,
                &["spatial.insee_codes[1]", "3X"],
            ),
            (
                r#"{"kind":"organisation","record_id":"x","siren":"243100518","name":"n","kind_":"epci"}"#,
                &["kind_"],
            ),
            (
                r#"{"kind":"organisation","record_id":"x","siren":"243100518","name":"n","insee":"315"}"#,
                &["insee", "'315'"],
            ),
            (
                r#"{"kind":"project_details","record_id":"x","project":"p","energy_kwh_per_year":-3}"#,
                &["energy_kwh_per_year"],
            ),
            (
                r#"{"kind":"resource","record_id":"x","resource_kind":"guide","title":"t"}"#,
                &["url", "content"],
            ),
            (
                r#"{"kind":"collection","record_id":"x","title":"t","items":[{"record_id":"a b"}]}"#,
                &["record_id", "'a b'"],
            ),
            (
                r#"{"kind":"dataset","record_id":"x","title":"t","description":"d","provenance":{"source":"f.csv"}}"#,
                &["provenance", "source_format"],
            ),
        ];
        for (doc, needles) in cases {
            let err = parse_document(doc).unwrap_err().to_string();
            for needle in needles {
                assert!(err.contains(needle), "{doc}\n => {err}\n (wanted {needle})");
            }
        }
    }

    const KEY: &str = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";

    /// Typed keys and SIRENs keep the JSON shape: the same strings out, read
    /// back to the same values.
    #[test]
    fn membership_and_organisation_keep_their_json_shape() {
        use crate::model::{Membership, MembershipRole, Organisation};
        let m = Membership {
            member_key: PublicKey::parse_hex(KEY).unwrap(),
            siren: Siren::parse("213101496").unwrap(),
            role: MembershipRole::Member,
            valid_from_ms: 0,
            valid_until_ms: 1_800_000_000_000,
            scope: vec![],
        };
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "member_key": KEY,
                "siren": "213101496",
                "role": "member",
                "valid_until_ms": 1_800_000_000_000i64,
            })
        );
        assert_eq!(serde_json::from_value::<Membership>(json).unwrap(), m);

        let o = Organisation::new(Siren::parse("243100518").unwrap(), "Toulouse Métropole");
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"siren": "243100518", "name": "Toulouse Métropole"})
        );
        assert_eq!(serde_json::from_value::<Organisation>(json).unwrap(), o);
    }

    #[test]
    fn keys_and_sirens_are_read_as_people_write_them() {
        // A key in capitals, with spaces around it, as it may be pasted.
        let doc = format!(
            r#"{{"kind":"membership","record_id":"m","member_key":" {} ","siren":"213101496","role":"member"}}"#,
            KEY.to_uppercase()
        );
        let rec = parse_document(&doc).unwrap().record;
        let Body::Membership(m) = &rec.body else {
            panic!("{rec:?}")
        };
        assert_eq!(m.member_key.to_hex(), KEY);
        assert_eq!(record_to_json(&rec)["member_key"], KEY);
        // An organisation's SIREN with spaces, or a SIRET in its place.
        let doc = r#"{"kind":"organisation","record_id":"o","siren":"213 100 696 00011","name":"Blagnac"}"#;
        let rec = parse_document(doc).unwrap().record;
        let Body::Organisation(o) = &rec.body else {
            panic!("{rec:?}")
        };
        assert_eq!(o.siren.as_str(), "213100696");
        assert_eq!(o.siret.as_deref(), Some("21310069600011"));
        assert_eq!(o.insee.as_deref(), Some("31069"));
        let doc = r#"{"kind":"organisation","record_id":"o","siren":"213 100 696","siret":"213 100 696 00011","name":"Blagnac"}"#;
        let rec = parse_document(doc).unwrap().record;
        let json = record_to_json(&rec);
        assert_eq!(
            (&json["siren"], &json["siret"]),
            (&"213100696".into(), &"21310069600011".into())
        );
    }

    #[test]
    fn bad_keys_and_sirens_are_refused_by_field() {
        let membership = |key: &str, siren: &str| {
            format!(
                r#"{{"kind":"membership","record_id":"m","member_key":"{key}","siren":"{siren}","role":"member"}}"#
            )
        };
        let cases = [
            (
                membership("abc", "213101496"),
                "field `member_key`: public key 'abc' is not 64 hexadecimal characters",
            ),
            (
                membership(&KEY[..62], "213101496"),
                "field `member_key`: public key '3b6a",
            ),
            (
                membership(KEY, "213101497"),
                "field `siren`: SIREN '213101497' fails its Luhn checksum",
            ),
            // A membership's SIREN is not compacted: it is written as stored.
            (
                membership(KEY, "213 101 496"),
                "field `siren`: write '213 101 496' as its 9 digits, without spaces: \"213101496\"",
            ),
            (
                r#"{"kind":"membership","record_id":"m","member_key":7,"siren":"213101496","role":"member"}"#.into(),
                "field `member_key`: invalid type: integer `7`, expected a string",
            ),
            (
                r#"{"kind":"organisation","record_id":"o","siren":"243 100 519","name":"n"}"#.into(),
                "field `siren`: SIREN '243100519' fails its Luhn checksum",
            ),
            (
                r#"{"kind":"organisation","record_id":"o","siren":"24310051A","name":"n"}"#.into(),
                "field `siren`: SIREN '24310051A' must contain digits only",
            ),
            (
                r#"{"kind":"organisation","record_id":"o","siren":"2431005","name":"n"}"#.into(),
                "field `siren`: SIREN '2431005' must have 9 digits, found 7 characters",
            ),
        ];
        for (doc, wanted) in cases {
            let err = parse_document(&doc).unwrap_err().to_string();
            assert!(
                err.starts_with(wanted),
                "{doc}\n => {err}\n (wanted {wanted})"
            );
        }
    }

    #[test]
    fn project_details_default_to_the_federation() {
        let doc =
            r#"{"kind":"project_details","record_id":"p.details","project":"p","funding":"f"}"#;
        assert_eq!(
            parse_document(doc).unwrap().record.visibility,
            Visibility::Federation
        );
        let doc =
            r#"{"kind":"project","record_id":"p","name":"n","description":"d","status":"termine"}"#;
        assert_eq!(
            parse_document(doc).unwrap().record.visibility,
            Visibility::Public
        );
    }

    #[test]
    fn restricted_audience() {
        let doc = r#"{"kind":"dataset","record_id":"x","title":"t","description":"d",
            "visibility":"restricted","audience":["213 105 554"]}"#;
        let rec = parse_document(doc).unwrap().record;
        assert_eq!(
            rec.visibility,
            Visibility::Restricted {
                audience: vec![Siren::parse("213105554").unwrap()]
            }
        );
    }
}
