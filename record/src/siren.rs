//! SIREN and SIRET numbers: the identifiers INSEE gives French organisations.
//!
//! A SIREN has 9 digits, a SIRET 14 (the SIREN then a 5-digit establishment
//! number). Both end with a Luhn check digit, with one documented exception: La
//! Poste's establishments (SIREN 356000000), whose SIRETs are checked by digit sum.

use std::fmt;

/// A valid SIREN: 9 ASCII digits with a correct Luhn checksum.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Siren(String);

/// Why a SIREN or SIRET was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SirenError {
    #[error("{what} '{value}' must have {expected} digits, found {found} characters")]
    Length {
        what: &'static str,
        value: String,
        expected: usize,
        found: usize,
    },
    #[error("{what} '{value}' must contain digits only")]
    NotDigits { what: &'static str, value: String },
    #[error("{what} '{value}' fails its Luhn checksum: check for a mistyped digit")]
    Checksum { what: &'static str, value: String },
}

/// Why a SIREN was refused where records store it (`Siren::parse_stored`).
/// Apart from `SirenError`, which SIRET parsing shares and never gives this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoredSirenError {
    #[error(transparent)]
    Invalid(#[from] SirenError),
    /// A valid SIREN, but not in the one spelling records store.
    #[error("write '{value}' as its 9 digits, without spaces: \"{digits}\"")]
    NotCompact { value: String, digits: String },
}

impl Siren {
    /// Parses a SIREN, ignoring spaces (people write "243 100 518").
    pub fn parse(input: &str) -> Result<Siren, SirenError> {
        let digits = check_digits("SIREN", input, 9)?;
        if !luhn_valid(&digits) {
            return Err(SirenError::Checksum {
                what: "SIREN",
                value: input.to_string(),
            });
        }
        Ok(Siren(digits))
    }

    /// Parses a SIREN as records store it: its 9 digits and nothing else.
    /// A signed record has one spelling of each SIREN, so nodes that compare
    /// the text (older ones do) agree with those that compare `Siren`s.
    pub fn parse_stored(input: &str) -> Result<Siren, StoredSirenError> {
        let siren = Siren::parse(input)?;
        if siren.0 != input {
            return Err(StoredSirenError::NotCompact {
                value: input.to_string(),
                digits: siren.0,
            });
        }
        Ok(siren)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The 9 digits, as a JSON string.
impl serde::Serialize for Siren {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Reads the stored spelling only (`parse_stored`): what a record document
/// says is what gets signed. Documents where people may write spaces or a
/// SIRET compact them first (json.rs).
impl<'de> serde::Deserialize<'de> for Siren {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        Siren::parse_stored(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Siren {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validates a SIRET (ignoring spaces) and returns its 14 digits.
pub fn parse_siret(input: &str) -> Result<String, SirenError> {
    let digits = check_digits("SIRET", input, 14)?;
    let valid = if digits.starts_with("356000000") {
        // La Poste: the digit sum of the SIRET is a multiple of 5.
        digits.bytes().map(|b| u32::from(b - b'0')).sum::<u32>() % 5 == 0
    } else {
        luhn_valid(&digits) && luhn_valid(&digits[..9])
    };
    if !valid {
        return Err(SirenError::Checksum {
            what: "SIRET",
            value: input.to_string(),
        });
    }
    Ok(digits)
}

fn check_digits(what: &'static str, input: &str, expected: usize) -> Result<String, SirenError> {
    let compact: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    if !compact.chars().all(|c| c.is_ascii_digit()) {
        return Err(SirenError::NotDigits {
            what,
            value: input.to_string(),
        });
    }
    if compact.len() != expected {
        return Err(SirenError::Length {
            what,
            value: input.to_string(),
            expected,
            found: compact.chars().count(),
        });
    }
    Ok(compact)
}

/// Luhn over ASCII digits: double every second digit from the right.
fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let dd = d * 2;
                if dd > 9 { dd - 9 } else { dd }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_sirens_pass() {
        // Toulouse Métropole, Toulouse, Colomiers.
        for s in ["243100518", "213105554", "213101496", "243 100 518"] {
            assert!(Siren::parse(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn bad_sirens_say_why() {
        let e = Siren::parse("243100519").unwrap_err();
        assert!(matches!(e, SirenError::Checksum { .. }));
        assert!(e.to_string().contains("243100519"), "{e}");
        assert!(matches!(
            Siren::parse("24310051"),
            Err(SirenError::Length { found: 8, .. })
        ));
        assert!(matches!(
            Siren::parse("24310051A"),
            Err(SirenError::NotDigits { .. })
        ));
        assert!(matches!(
            Siren::parse(""),
            Err(SirenError::Length { found: 0, .. })
        ));
    }

    #[test]
    fn stored_sirens_are_their_9_digits() {
        assert_eq!(
            Siren::parse_stored("243100518").unwrap().as_str(),
            "243100518"
        );
        let e = Siren::parse_stored("243 100 518").unwrap_err();
        assert_eq!(
            e.to_string(),
            "write '243 100 518' as its 9 digits, without spaces: \"243100518\""
        );
        // A bad SIREN is refused for what is wrong with it, spaces or not.
        assert!(matches!(
            Siren::parse_stored("243 100 519"),
            Err(StoredSirenError::Invalid(SirenError::Checksum { .. }))
        ));
    }

    #[test]
    fn sirets() {
        // Mairie de Toulouse.
        assert_eq!(parse_siret("213 105 554 00017").unwrap(), "21310555400017");
        assert!(parse_siret("21310555400018").is_err());
        // La Poste's exception (digit sum multiple of 5).
        assert!(parse_siret("35600000000006").is_ok());
    }

    #[test]
    fn every_reference_siren_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/collectivites.csv");
        let text = std::fs::read_to_string(path).unwrap();
        let mut n = 0;
        for line in text.lines().skip(1) {
            let siren = line.split(',').next().unwrap();
            assert!(Siren::parse(siren).is_ok(), "{siren}");
            n += 1;
        }
        assert!(n > 36_000, "only {n} rows");
    }
}
