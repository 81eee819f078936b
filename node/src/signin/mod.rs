//! Members sign in on the portal (issue 22) with OpenID Connect: the
//! authorization code flow with PKCE (S256), `state` and `nonce`, at the
//! provider `[signin]` names (ProConnect, or any compliant one). The
//! agent's organisation is the SIRET its provider states (`siret_claim`, in
//! the ID token or in the userinfo answer, signed or not); its SIREN is the
//! viewer the rest of the node already knows (`Sirens::agent`).
//!
//! A sign-in under way keeps nothing here: its `state`, nonce and PKCE
//! verifier travel in a cookie signed with HMAC, bound to the browser that
//! started it (so a flood of sign-ins fills no memory). Sessions are held
//! here, in memory, bounded (a random id; the cookie carries it with an
//! HMAC, so a forged or altered cookie is refused before any lookup). A
//! restart signs every agent out. Behind https, both cookies are named
//! `__Host-…`: a sibling subdomain cannot set them. `routes` turns this into pages; this module does the
//! protocol's IO (discovery, keys, token and userinfo endpoints).

pub mod jwt;
pub(crate) mod routes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use maillage_harvest::{Call, Fetcher};
use maillage_record::Siren;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value};
use sha2::Digest;

use crate::config::Signin;

/// How long an agent has at the provider.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// Sessions held at most.
const MAX_SESSIONS: usize = 100_000;
/// Sessions of one agent (one subject) at once: its oldest ends when it
/// opens one more. (Its requests share one rate limit however many.)
const MAX_SESSIONS_PER_AGENT: usize = 10;
/// How long the provider's keys and endpoints are kept before they are
/// read again.
const PROVIDER_TTL: Duration = Duration::from_secs(3600);
/// The provider's keys are read again for an unknown key at most this often.
const REFRESH_SPACING: Duration = Duration::from_secs(30);

/// The cookie that carries a session.
pub const SESSION_COOKIE: &str = "maillage_session";
/// The cookie that binds a sign-in under way to its browser.
pub const LOGIN_COOKIE: &str = "maillage_connexion";

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("cannot read the client secret {path}: {why}")]
    Secret { path: String, why: String },
    #[error("the identity provider {issuer} cannot be used: {why}")]
    Provider { issuer: String, why: String },
    #[error("this sign-in is unknown, expired or already used")]
    UnknownState,
    #[error("the identity provider refused: {0}")]
    Refused(String),
    #[error("the identity provider's answer is not valid: {0}")]
    Token(String),
    #[error("the identity provider names no organisation (no '{0}' claim)")]
    NoSiret(String),
    #[error("the organisation's SIRET '{0}' is not valid (14 digits and a Luhn key)")]
    BadSiret(String),
    #[error("too many sign-ins under way")]
    Busy,
}

/// What the provider publishes: endpoints and keys.
struct Provider {
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
    jwks: jwt::Jwks,
    fetched: Instant,
}

/// A sign-in under way, as its cookie carries it (signed).
#[derive(serde::Serialize, serde::Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    /// Milliseconds since the epoch.
    expires_at_ms: i64,
    /// Where the agent goes once signed in (a path of this portal).
    return_to: String,
}

/// A signed-in agent.
#[derive(Debug, Clone)]
pub struct Session {
    /// The provider's subject for the agent.
    pub subject: String,
    /// The agent's name, as the provider gives it (for the page header).
    pub name: String,
    /// The e-mail address the provider states (lowercase; may be empty).
    pub email: String,
    /// Whether the agent may accept or refuse proposals (`[signin]
    /// moderators` names its address).
    pub moderator: bool,
    pub siret: String,
    pub siren: Siren,
    /// The token every form of the session carries (CSRF).
    pub csrf: String,
    expires: Instant,
}

#[cfg(test)]
impl Session {
    /// A session of an agent of `siret`'s organisation, for unit tests.
    pub fn for_tests(siren: &str, siret: &str) -> Session {
        Session {
            subject: "agent".into(),
            name: "Agent".into(),
            email: "agent@collectivite.example".into(),
            moderator: false,
            siret: siret.into(),
            siren: Siren::parse(siren).expect("a SIREN"),
            csrf: "csrf".into(),
            expires: Instant::now() + std::time::Duration::from_secs(60),
        }
    }
}

/// The sign-in of one node.
pub struct SignIn {
    config: Signin,
    secret: String,
    redirect_uri: String,
    /// Cookies marked Secure: the portal is served over https.
    secure: bool,
    fetcher: Fetcher,
    provider: tokio::sync::Mutex<Option<Arc<Provider>>>,
    /// When the provider's keys were last read again for a key they did
    /// not hold: at most every `REFRESH_SPACING`.
    refreshed: Mutex<Option<Instant>>,
    sessions: Mutex<HashMap<String, Session>>,
    /// Signs cookies; made at start (sessions do not outlive the process).
    key: hmac::Key,
    rng: SystemRandom,
}

impl SignIn {
    /// Reads the client secret (a file only its owner may read) and makes
    /// the sign-in of a portal served at `public_url`.
    pub fn new(config: Signin, public_url: &str) -> Result<SignIn, SignInError> {
        let secret =
            crate::secret::read(&config.client_secret_file).map_err(|why| SignInError::Secret {
                path: config.client_secret_file.display().to_string(),
                why,
            })?;
        let rng = SystemRandom::new();
        let key =
            hmac::Key::generate(hmac::HMAC_SHA256, &rng).map_err(|_| SignInError::Secret {
                path: "(random)".into(),
                why: "no randomness for the cookie key".into(),
            })?;
        let mut fetcher = Fetcher::new();
        fetcher.timeout = Duration::from_secs(10);
        fetcher.max_bytes = 1 << 20;
        fetcher.retries = 1;
        fetcher.backoff = Duration::from_millis(200);
        Ok(SignIn {
            redirect_uri: format!("{}/connexion/retour", public_url.trim_end_matches('/')),
            secure: public_url.starts_with("https://"),
            config,
            secret,
            fetcher,
            provider: tokio::sync::Mutex::new(None),
            refreshed: Mutex::new(None),
            sessions: Mutex::new(HashMap::new()),
            key,
            rng,
        })
    }

    fn random(&self) -> String {
        let mut bytes = [0u8; 32];
        // The system's randomness does not fail on the systems we run on;
        // if it did, the zeroes would make every sign-in fail its checks.
        let _ = self.rng.fill(&mut bytes);
        B64.encode(bytes)
    }

    /// `value.signature`: what a cookie carries.
    fn signed(&self, value: &str) -> String {
        let tag = hmac::sign(&self.key, value.as_bytes());
        format!("{value}.{}", B64.encode(tag.as_ref()))
    }

    /// The value of a cookie `signed` wrote, if its signature holds.
    fn unsigned<'a>(&self, cookie: &'a str) -> Option<&'a str> {
        let (value, tag) = cookie.rsplit_once('.')?;
        let tag = B64.decode(tag).ok()?;
        hmac::verify(&self.key, value.as_bytes(), &tag).ok()?;
        Some(value)
    }

    /// A `Set-Cookie` value: HttpOnly, SameSite=Lax (the provider's
    /// redirect back is a cross-site navigation), Secure behind https.
    fn cookie(&self, name: &str, value: &str, max_age: Duration) -> String {
        format!(
            "{}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
            self.name(name),
            max_age.as_secs(),
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// A cookie's name: `__Host-` first behind https (the browser then
    /// takes it only from this host, Secure, for every path).
    fn name(&self, base: &str) -> String {
        if self.secure {
            format!("__Host-{base}")
        } else {
            base.to_string()
        }
    }

    /// The sign-in cookie a `Cookie` header carries.
    pub fn login_cookie<'a>(&self, header: &'a str) -> Option<&'a str> {
        cookie_value(header, &self.name(LOGIN_COOKIE))
    }

    /// The provider's endpoints and keys, read again after `PROVIDER_TTL`
    /// (or `refresh`: a token signed with a key not yet known).
    async fn provider(&self, refresh: bool) -> Result<Arc<Provider>, SignInError> {
        let mut current = self.provider.lock().await;
        if let Some(p) = &*current
            && !refresh
            && p.fetched.elapsed() < PROVIDER_TTL
        {
            return Ok(p.clone());
        }
        let issuer = &self.config.issuer;
        let fail = |why: String| SignInError::Provider {
            issuer: issuer.clone(),
            why,
        };
        let url = format!("{issuer}/.well-known/openid-configuration");
        let (_, body) = self
            .fetcher
            .get(&url, "application/json")
            .await
            .map_err(|e| fail(e.to_string()))?;
        let doc: Value = serde_json::from_slice(&body)
            .map_err(|e| fail(format!("its discovery document is not JSON: {e}")))?;
        if doc["issuer"].as_str().map(|i| i.trim_end_matches('/')) != Some(issuer.as_str()) {
            return Err(fail(format!(
                "its discovery document names the issuer {}, not {issuer}",
                doc["issuer"]
            )));
        }
        // Endpoints over https, as the issuer is (plain http only for a
        // provider on this machine, as tests run one): the client secret
        // and the tokens never cross a network in clear.
        let plain_ok = !issuer.starts_with("https://");
        let endpoint = |name: &str| -> Result<String, SignInError> {
            doc[name]
                .as_str()
                .filter(|u| maillage_record::model::is_http_url(u))
                .filter(|u| plain_ok || u.starts_with("https://"))
                .map(str::to_string)
                .ok_or_else(|| fail(format!("its discovery document has no https {name}")))
        };
        let jwks_uri = endpoint("jwks_uri")?;
        let (_, keys) = self
            .fetcher
            .get(&jwks_uri, "application/json")
            .await
            .map_err(|e| fail(e.to_string()))?;
        let jwks = jwt::Jwks::parse(&keys).map_err(fail)?;
        if jwks.is_empty() {
            return Err(fail("it publishes no RS256 or ES256 signing key".into()));
        }
        let provider = Arc::new(Provider {
            authorization_endpoint: endpoint("authorization_endpoint")?,
            token_endpoint: endpoint("token_endpoint")?,
            userinfo_endpoint: endpoint("userinfo_endpoint").ok(),
            jwks,
            fetched: Instant::now(),
        });
        *current = Some(provider.clone());
        Ok(provider)
    }

    /// Starts a sign-in: the provider's address to send the agent to, and
    /// the cookie that binds the sign-in to this browser.
    pub async fn begin(&self, return_to: &str) -> Result<(String, String), SignInError> {
        let provider = self.provider(false).await?;
        let (state, nonce, verifier) = (self.random(), self.random(), self.random());
        let challenge = B64.encode(sha2::Sha256::digest(verifier.as_bytes()));
        let pending = Pending {
            state: state.clone(),
            nonce: nonce.clone(),
            verifier,
            expires_at_ms: maillage_record::now_ms() + PENDING_TTL.as_millis() as i64,
            return_to: safe_return(return_to).to_string(),
        };
        let carried = B64.encode(serde_json::to_vec(&pending).expect("a sign-in encodes"));
        let query = maillage_harvest::form_encode(&[
            ("response_type", "code"),
            ("client_id", &self.config.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.config.scopes),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]);
        let sep = if provider.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!("{}{sep}{query}", provider.authorization_endpoint);
        let cookie = self.cookie(LOGIN_COOKIE, &self.signed(&carried), PENDING_TTL);
        Ok((url, cookie))
    }

    /// Ends a sign-in the provider sent back: checks the state (once, and
    /// from the browser that started it), exchanges the code, verifies the
    /// ID token and reads the organisation. The agent's session, not open
    /// yet (`open`), and where to go.
    pub async fn finish(
        &self,
        code: &str,
        state: &str,
        login_cookie: Option<&str>,
    ) -> Result<(Session, String), SignInError> {
        // The cookie set when this sign-in started, in this browser, must
        // name this state, unaltered and in time: a state taken from another
        // browser's sign-in, or replayed after this one ended (its cookie is
        // cleared then), is refused.
        let pending: Pending = login_cookie
            .and_then(|c| self.unsigned(c))
            .and_then(|v| B64.decode(v).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|p: &Pending| p.state == state && p.expires_at_ms > maillage_record::now_ms())
            .ok_or(SignInError::UnknownState)?;
        let provider = self.provider(false).await?;
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                maillage_harvest::form_encode(&[("", &self.config.client_id)])
                    .trim_start_matches('='),
                maillage_harvest::form_encode(&[("", &self.secret)]).trim_start_matches('=')
            ))
        );
        let answer = self
            .fetcher
            .send(
                &provider.token_endpoint,
                "application/json",
                Call {
                    form: Some(&[
                        ("grant_type", "authorization_code"),
                        ("code", code),
                        ("redirect_uri", &self.redirect_uri),
                        ("code_verifier", &pending.verifier),
                    ]),
                    authorization: Some(&basic),
                },
            )
            .await
            .map_err(|e| SignInError::Refused(e.to_string()))?;
        let tokens: Value = serde_json::from_slice(&answer)
            .map_err(|e| SignInError::Token(format!("the token answer is not JSON: {e}")))?;
        let id_token = tokens["id_token"]
            .as_str()
            .ok_or_else(|| SignInError::Token("no ID token".into()))?;
        let now = maillage_record::now_ms() / 1000;
        let claims = self.verified(id_token).await?;
        jwt::check(
            &claims,
            &jwt::Expected {
                issuer: &self.config.issuer,
                client_id: &self.config.client_id,
                nonce: Some(&pending.nonce),
                now,
            },
        )
        .map_err(|e| SignInError::Token(format!("ID token: {e}")))?;
        let subject = claims["sub"].as_str().unwrap_or_default().to_string();
        // The organisation: in the ID token, or else in the userinfo answer
        // (ProConnect's place for it), which must be about the same agent.
        let claim = &self.config.siret_claim;
        let mut info = claims.clone();
        if claims.get(claim).is_none()
            && let (Some(endpoint), Some(access)) =
                (&provider.userinfo_endpoint, tokens["access_token"].as_str())
        {
            let userinfo = self.userinfo(endpoint, access, now).await?;
            if userinfo.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err(SignInError::Token(
                    "the userinfo answer is about another agent".into(),
                ));
            }
            info.extend(userinfo);
        }
        let siret_text = match info.get(claim) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(SignInError::NoSiret(claim.clone())),
        };
        let siret = maillage_record::siren::parse_siret(&siret_text)
            .map_err(|_| SignInError::BadSiret(siret_text.clone()))?;
        let siren = Siren::parse(&siret[..9]).map_err(|_| SignInError::BadSiret(siret_text))?;
        let text = |k: &str| info.get(k).and_then(Value::as_str).unwrap_or("").trim();
        let name = [text("given_name"), text("usual_name"), text("family_name")]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        let email = text("email").to_lowercase();
        let session = Session {
            subject,
            name: if name.is_empty() { email.clone() } else { name },
            // An address the provider says it has not verified names no
            // moderator.
            moderator: !email.is_empty()
                && info.get("email_verified") != Some(&Value::Bool(false))
                && self.config.moderators.contains(&email),
            email,
            siret,
            siren,
            csrf: self.random(),
            expires: Instant::now() + self.config.session,
        };
        Ok((session, pending.return_to))
    }

    /// Opens a session: the cookie that carries it.
    pub fn open(&self, session: Session) -> Result<String, SignInError> {
        let id = self.random();
        {
            let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            if sessions.len() >= MAX_SESSIONS {
                sessions.retain(|_, s| s.expires > Instant::now());
                if sessions.len() >= MAX_SESSIONS {
                    return Err(SignInError::Busy);
                }
            }
            let mut own: Vec<(Instant, String)> = sessions
                .iter()
                .filter(|(_, s)| s.subject == session.subject)
                .map(|(id, s)| (s.expires, id.clone()))
                .collect();
            if own.len() >= MAX_SESSIONS_PER_AGENT {
                own.sort();
                for (_, old) in &own[..=own.len() - MAX_SESSIONS_PER_AGENT] {
                    sessions.remove(old);
                }
            }
            sessions.insert(id.clone(), session);
        }
        Ok(self.cookie(SESSION_COOKIE, &self.signed(&id), self.config.session))
    }

    /// A token's claims, its signature verified with the provider's keys
    /// (read again once if it names a key not known yet).
    async fn verified(&self, token: &str) -> Result<Map<String, Value>, SignInError> {
        let provider = self.provider(false).await?;
        match jwt::verify(token, &provider.jwks) {
            Err(jwt::JwtError::UnknownKey(kid)) => {
                // The provider may have rotated its keys: read them again,
                // but not at every such token.
                let now = Instant::now();
                let due = {
                    let mut last = self.refreshed.lock().unwrap_or_else(|p| p.into_inner());
                    let due = last.is_none_or(|t| now.duration_since(t) >= REFRESH_SPACING);
                    if due {
                        *last = Some(now);
                    }
                    due
                };
                if !due {
                    return Err(SignInError::Token(
                        jwt::JwtError::UnknownKey(kid).to_string(),
                    ));
                }
                let provider = self.provider(true).await?;
                jwt::verify(token, &provider.jwks)
            }
            other => other,
        }
        .map_err(|e| SignInError::Token(e.to_string()))
    }

    /// The userinfo answer: JSON, or a JWT signed by the provider (and then
    /// checked as addressed to this node).
    async fn userinfo(
        &self,
        endpoint: &str,
        access_token: &str,
        now: i64,
    ) -> Result<Map<String, Value>, SignInError> {
        let bearer = format!("Bearer {access_token}");
        let body = self
            .fetcher
            .send(
                endpoint,
                "application/jwt, application/json",
                Call {
                    form: None,
                    authorization: Some(&bearer),
                },
            )
            .await
            .map_err(|e| SignInError::Refused(e.to_string()))?;
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&body) {
            return Ok(map);
        }
        let token = String::from_utf8_lossy(&body);
        let claims = self.verified(&token).await?;
        jwt::check(
            &claims,
            &jwt::Expected {
                issuer: &self.config.issuer,
                client_id: &self.config.client_id,
                nonce: None,
                now,
            },
        )
        .map_err(|e| SignInError::Token(format!("userinfo: {e}")))?;
        Ok(claims)
    }

    /// The session a `Cookie` header carries, if its cookie is genuine and
    /// the session is still on.
    pub fn session(&self, cookie_header: &str) -> Option<(String, Session)> {
        let value = cookie_value(cookie_header, &self.name(SESSION_COOKIE))?;
        let id = self.unsigned(value)?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match sessions.get(id) {
            Some(s) if s.expires > Instant::now() => Some((id.to_string(), s.clone())),
            Some(_) => {
                sessions.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends a session; the cookie that clears it.
    pub fn end(&self, id: &str) -> String {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.cookie(SESSION_COOKIE, "", Duration::ZERO)
    }

    /// The cookie that clears a sign-in's binding.
    pub fn login_done(&self) -> String {
        self.cookie(LOGIN_COOKIE, "", Duration::ZERO)
    }
}

/// A path of this portal to return to: anything else (another site, a
/// scheme-relative `//host`) goes home.
fn safe_return(path: &str) -> &str {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && path.len() <= 2000
        && !path.bytes().any(|b| b.is_ascii_control());
    if ok { path } else { "/" }
}

/// A cookie's value in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_portal_are_returned_to() {
        assert_eq!(
            safe_return("/recherche?q=v%C3%A9lo"),
            "/recherche?q=v%C3%A9lo"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "",
            "x",
        ] {
            assert_eq!(safe_return(bad), "/", "{bad}");
        }
    }

    /// An agent that signs in again and again keeps its last
    /// `MAX_SESSIONS_PER_AGENT` sessions, not one per sign-in; others' are
    /// untouched.
    #[test]
    fn an_agent_keeps_a_bounded_number_of_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s").unwrap();
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let signin = SignIn::new(
            Signin {
                issuer: "http://127.0.0.1:1".into(),
                client_id: "maillage".into(),
                client_secret_file: secret,
                siret_claim: "siret".into(),
                scopes: "openid".into(),
                session: Duration::from_secs(3600),
                moderators: vec![],
            },
            "http://127.0.0.1:8080",
        )
        .unwrap();
        let cookie = |set_cookie: String| set_cookie.split(';').next().unwrap().to_string();
        let other = cookie(
            signin
                .open(Session::for_tests("243100518", "24310051800014"))
                .unwrap(),
        );
        let mut cookies = Vec::new();
        for i in 0..MAX_SESSIONS_PER_AGENT + 5 {
            let mut s = Session::for_tests("213101496", "21310149600015");
            s.subject = "agent-a".into();
            // Each later than the one before.
            s.expires += Duration::from_millis(i as u64);
            cookies.push(cookie(signin.open(s).unwrap()));
        }
        let alive = cookies
            .iter()
            .filter(|c| signin.session(c).is_some())
            .count();
        assert_eq!(alive, MAX_SESSIONS_PER_AGENT);
        assert!(signin.session(cookies.last().unwrap()).is_some());
        assert!(signin.session(&cookies[0]).is_none());
        assert!(signin.session(&other).is_some());
    }

    #[test]
    fn cookies_are_read_by_name() {
        let h = "a=1; maillage_session=abc.def; b=2";
        assert_eq!(cookie_value(h, SESSION_COOKIE), Some("abc.def"));
        assert_eq!(cookie_value(h, "c"), None);
    }
}
