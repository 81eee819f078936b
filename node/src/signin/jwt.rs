//! Signed tokens of an OpenID provider (JWS compact serialisation): ID
//! tokens, and userinfo answers signed as ProConnect signs them. Checked
//! against the provider's published keys (its JWKS), RS256 or ES256 only:
//! `none`, HMAC (which a provider's public document cannot verify) and
//! every other algorithm are refused. No IO.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("not a signed token (three base64url parts)")]
    Malformed,
    #[error("signed with '{0}': only RS256 and ES256 are accepted")]
    Algorithm(String),
    #[error("signed with key '{0}', which the provider does not publish")]
    UnknownKey(String),
    #[error("the signature does not verify")]
    Signature,
    #[error("{0}")]
    Claims(String),
}

/// One public key of the provider.
#[derive(Debug, Clone)]
struct Jwk {
    kid: Option<String>,
    key: Key,
}

#[derive(Debug, Clone)]
enum Key {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed point (0x04 ‖ x ‖ y).
    P256(Vec<u8>),
}

impl Key {
    fn alg(&self) -> &'static str {
        match self {
            Key::Rsa { .. } => "RS256",
            Key::P256(_) => "ES256",
        }
    }
}

/// The provider's signing keys, as its `jwks_uri` publishes them; keys of
/// other types or uses are left out.
#[derive(Debug, Clone, Default)]
pub struct Jwks(Vec<Jwk>);

impl Jwks {
    pub fn parse(bytes: &[u8]) -> Result<Jwks, String> {
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("the key set is not JSON: {e}"))?;
        let keys = doc["keys"]
            .as_array()
            .ok_or("the key set has no 'keys' list")?;
        let b64 = |v: &Value| {
            v.as_str()
                .and_then(|s| B64.decode(s.trim_end_matches('=')).ok())
        };
        let mut out = Vec::new();
        for k in keys {
            if k["use"].as_str().is_some_and(|u| u != "sig") {
                continue;
            }
            let key = match (k["kty"].as_str(), k["crv"].as_str()) {
                (Some("RSA"), _) => match (b64(&k["n"]), b64(&k["e"])) {
                    (Some(n), Some(e)) => Key::Rsa { n, e },
                    _ => continue,
                },
                (Some("EC"), Some("P-256")) => match (b64(&k["x"]), b64(&k["y"])) {
                    (Some(x), Some(y)) if x.len() == 32 && y.len() == 32 => {
                        let mut point = vec![4];
                        point.extend_from_slice(&x);
                        point.extend_from_slice(&y);
                        Key::P256(point)
                    }
                    _ => continue,
                },
                _ => continue,
            };
            if k["alg"].as_str().is_some_and(|a| a != key.alg()) {
                continue;
            }
            out.push(Jwk {
                kid: k["kid"].as_str().map(str::to_string),
                key,
            });
        }
        Ok(Jwks(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A token's claims, once its signature is verified with one of `keys`.
pub fn verify(token: &str, keys: &Jwks) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.trim().split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let decode = |part: &str| B64.decode(part).map_err(|_| JwtError::Malformed);
    let header: Value = serde_json::from_slice(&decode(h)?).map_err(|_| JwtError::Malformed)?;
    let alg = header["alg"].as_str().unwrap_or("");
    if alg != "RS256" && alg != "ES256" {
        return Err(JwtError::Algorithm(alg.to_string()));
    }
    let kid = header["kid"].as_str();
    let signature = decode(s)?;
    let signed = &token.trim().as_bytes()[..h.len() + 1 + p.len()];
    let candidates: Vec<&Jwk> = keys
        .0
        .iter()
        .filter(|k| k.key.alg() == alg && (kid.is_none() || k.kid.as_deref() == kid))
        .collect();
    if candidates.is_empty() {
        return Err(JwtError::UnknownKey(
            kid.unwrap_or("(none named)").to_string(),
        ));
    }
    let verified = candidates.iter().any(|k| match &k.key {
        Key::Rsa { n, e } => RsaPublicKeyComponents { n, e }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, signed, &signature)
            .is_ok(),
        Key::P256(point) => UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
            .verify(signed, &signature)
            .is_ok(),
    });
    if !verified {
        return Err(JwtError::Signature);
    }
    match serde_json::from_slice(&decode(p)?) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => Err(JwtError::Malformed),
    }
}

/// What an ID token must say (OpenID Connect Core, 3.1.3.7).
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// `None` for a userinfo answer, which carries none.
    pub nonce: Option<&'a str>,
    /// Seconds since the epoch.
    pub now: i64,
}

/// Clocks differ this much between the provider and the node.
const LEEWAY_S: i64 = 120;

/// Checks a verified token's issuer, audience, expiry, issue time and
/// nonce.
pub fn check(claims: &Map<String, Value>, want: &Expected<'_>) -> Result<(), JwtError> {
    let bad = |why: String| Err(JwtError::Claims(why));
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    if iss.trim_end_matches('/') != want.issuer.trim_end_matches('/') {
        return bad(format!("issued by '{iss}', not by '{}'", want.issuer));
    }
    let aud: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !aud.contains(&want.client_id) {
        return bad(format!("meant for {aud:?}, not for '{}'", want.client_id));
    }
    let azp = claims.get("azp").and_then(Value::as_str);
    if (aud.len() > 1 || azp.is_some()) && azp != Some(want.client_id) {
        return bad("authorised for another client".into());
    }
    let number = |k: &str| claims.get(k).and_then(Value::as_i64);
    if let Some(nonce) = want.nonce {
        match number("exp") {
            Some(exp) if exp + LEEWAY_S >= want.now => {}
            Some(_) => return bad("expired".into()),
            None => return bad("says no expiry".into()),
        }
        if number("iat").is_some_and(|iat| iat > want.now + LEEWAY_S) {
            return bad("issued in the future".into());
        }
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return bad("its nonce is not the one this sign-in sent (a replayed token?)".into());
        }
    } else if number("exp").is_some_and(|exp| exp + LEEWAY_S < want.now) {
        return bad("expired".into());
    }
    if claims
        .get("sub")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return bad("names no subject".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    /// A provider key (P-256) and its JWKS.
    fn provider(kid: &str) -> (EcdsaKeyPair, Jwks) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid,
            "use": "sig", "alg": "ES256", "x": B64.encode(&point[1..33]),
            "y": B64.encode(&point[33..])}]});
        (pair, Jwks::parse(jwks.to_string().as_bytes()).unwrap())
    }

    fn sign(pair: &EcdsaKeyPair, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }

    fn claims(now: i64) -> Value {
        serde_json::json!({"iss": "https://idp.example", "aud": "maillage", "sub": "agent-1",
            "exp": now + 300, "iat": now, "nonce": "n-1", "siret": "21310555400017"})
    }

    fn expected(now: i64) -> Expected<'static> {
        Expected {
            issuer: "https://idp.example",
            client_id: "maillage",
            nonce: Some("n-1"),
            now,
        }
    }

    #[test]
    fn a_token_signed_by_the_provider_is_read() {
        let (pair, jwks) = provider("k1");
        let now = 1_800_000_000;
        let token = sign(
            &pair,
            serde_json::json!({"alg": "ES256", "kid": "k1"}),
            claims(now),
        );
        let c = verify(&token, &jwks).unwrap();
        assert_eq!(check(&c, &expected(now)), Ok(()));
        assert_eq!(c["siret"], "21310555400017");
    }

    #[test]
    fn forged_or_misdirected_tokens_are_refused() {
        let (pair, jwks) = provider("k1");
        let (other, _) = provider("k1");
        let now = 1_800_000_000;
        let header = serde_json::json!({"alg": "ES256", "kid": "k1"});
        // Signed by another key under the same name.
        let forged = sign(&other, header.clone(), claims(now));
        assert_eq!(verify(&forged, &jwks), Err(JwtError::Signature));
        // A claim changed after signing.
        let token = sign(&pair, header.clone(), claims(now));
        let parts: Vec<&str> = token.split('.').collect();
        let mut changed = claims(now);
        changed["siret"] = "21690123100011".into();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(changed.to_string()),
            parts[2]
        );
        assert_eq!(verify(&tampered, &jwks), Err(JwtError::Signature));
        // No signature at all, or a shared-secret one.
        for alg in ["none", "HS256"] {
            let t = format!(
                "{}.{}.",
                B64.encode(serde_json::json!({"alg": alg}).to_string()),
                parts[1]
            );
            assert_eq!(verify(&t, &jwks), Err(JwtError::Algorithm(alg.into())));
        }
        assert!(matches!(
            verify(
                &sign(
                    &pair,
                    serde_json::json!({"alg": "ES256", "kid": "k9"}),
                    claims(now)
                ),
                &jwks
            ),
            Err(JwtError::UnknownKey(_))
        ));
        // Well signed, but for another client, expired, or another sign-in.
        let c = verify(&token, &jwks).unwrap();
        let other_client = Expected {
            client_id: "autre",
            ..expected(now)
        };
        assert!(check(&c, &other_client).is_err());
        assert!(check(&c, &expected(now + 3600)).is_err());
        let replay = Expected {
            nonce: Some("n-2"),
            ..expected(now)
        };
        assert!(check(&c, &replay).is_err());
        let other_issuer = Expected {
            issuer: "https://evil.example",
            ..expected(now)
        };
        assert!(check(&c, &other_issuer).is_err());
    }
}
