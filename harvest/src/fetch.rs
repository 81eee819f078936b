//! One GET over HTTP/1.1, plain or TLS (the Mozilla roots), bounded in
//! time and size, following redirects and retrying what may pass; and the
//! one POST of a form an OpenID sign-in needs (neither retried nor
//! redirected: a code is used once).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Why a source could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("'{url}' is not an http:// or https:// address")]
    Url { url: String },
    #[error("{url}: cannot connect: {why}")]
    Connect { url: String, why: String },
    #[error("{url}: no answer within {seconds} s")]
    Timeout { url: String, seconds: u64 },
    #[error("{url}: answered {status}{hint}")]
    Status {
        url: String,
        status: StatusCode,
        hint: &'static str,
    },
    #[error(
        "{url}: the answer is larger than {limit_mib} MiB: too large to import (a page of a paged catalogue is not)"
    )]
    TooLarge { url: String, limit_mib: u64 },
    #[error("{url}: more than {max} redirections")]
    Redirects { url: String, max: usize },
    #[error("{url}: {why}")]
    Http { url: String, why: String },
}

impl FetchError {
    /// Whether trying again later may succeed: the network, a timeout, the
    /// server busy or failing (429, 5xx).
    fn transient(&self) -> bool {
        match self {
            FetchError::Connect { .. } | FetchError::Timeout { .. } | FetchError::Http { .. } => {
                true
            }
            FetchError::Status { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
            _ => false,
        }
    }
}

/// How a source is fetched: the bounds of one GET.
#[derive(Clone)]
pub struct Fetcher {
    /// For one attempt, connection to last byte.
    pub timeout: Duration,
    /// The largest answer read.
    pub max_bytes: u64,
    /// Attempts after the first, for transient failures, waiting
    /// `backoff`, then twice as long, and so on (or what Retry-After says,
    /// up to a minute).
    pub retries: u32,
    pub backoff: Duration,
    tls: TlsConnector,
}

impl Default for Fetcher {
    fn default() -> Fetcher {
        Fetcher::new()
    }
}

/// Redirections followed at most.
const MAX_REDIRECTS: usize = 5;

/// What a request sends besides its address: GET without a form, POST of
/// an urlencoded form with one; an Authorization header if given.
#[derive(Debug, Clone, Copy, Default)]
pub struct Call<'a> {
    pub form: Option<&'a [(&'a str, &'a str)]>,
    pub authorization: Option<&'a str>,
}

/// `application/x-www-form-urlencoded`.
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Fetcher {
    pub fn new() -> Fetcher {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Fetcher {
            timeout: Duration::from_secs(60),
            max_bytes: 256 << 20,
            retries: 3,
            backoff: Duration::from_secs(1),
            tls: TlsConnector::from(Arc::new(config)),
        }
    }

    /// The body at `url`, asking for `accept`; the address it was finally
    /// read from (after redirections) with it.
    pub async fn get(&self, url: &str, accept: &str) -> Result<(String, Vec<u8>), FetchError> {
        let mut attempt = 0;
        loop {
            match self.get_following(url, accept).await {
                Ok(got) => return Ok(got),
                Err((e, _)) if !e.transient() || attempt >= self.retries => return Err(e),
                Err((e, retry_after)) => {
                    let wait = retry_after
                        .unwrap_or(self.backoff * 2u32.saturating_pow(attempt))
                        .min(Duration::from_secs(60));
                    tracing::info!(%url, error = %e, ?wait, "fetch failed; trying again");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn get_following(
        &self,
        url: &str,
        accept: &str,
    ) -> Result<(String, Vec<u8>), (FetchError, Option<Duration>)> {
        let mut current = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            match self.get_once(&current, accept).await? {
                Answer::Body(bytes) => return Ok((current, bytes)),
                Answer::Redirect(to) => current = to,
            }
        }
        Err((
            FetchError::Redirects {
                url: url.to_string(),
                max: MAX_REDIRECTS,
            },
            None,
        ))
    }

    /// One request as `call` says, within the timeout, neither retried
    /// nor redirected: the body of a successful answer.
    pub async fn send(
        &self,
        url: &str,
        accept: &str,
        call: Call<'_>,
    ) -> Result<Vec<u8>, FetchError> {
        match self.once(url, accept, call).await.map_err(|(e, _)| e)? {
            Answer::Body(bytes) => Ok(bytes),
            Answer::Redirect(to) => Err(FetchError::Http {
                url: url.to_string(),
                why: format!("redirected to {to}, which is not followed here"),
            }),
        }
    }

    /// One GET, within the timeout.
    async fn get_once(
        &self,
        url: &str,
        accept: &str,
    ) -> Result<Answer, (FetchError, Option<Duration>)> {
        self.once(url, accept, Call::default()).await
    }

    async fn once(
        &self,
        url: &str,
        accept: &str,
        call: Call<'_>,
    ) -> Result<Answer, (FetchError, Option<Duration>)> {
        let seconds = self.timeout.as_secs();
        match tokio::time::timeout(self.timeout, self.request(url, accept, call)).await {
            Ok(r) => r,
            Err(_) => Err((
                FetchError::Timeout {
                    url: url.to_string(),
                    seconds,
                },
                None,
            )),
        }
    }

    async fn request(
        &self,
        url: &str,
        accept: &str,
        call: Call<'_>,
    ) -> Result<Answer, (FetchError, Option<Duration>)> {
        let fail = |e: FetchError| (e, None);
        let bad_url = || FetchError::Url {
            url: url.to_string(),
        };
        let uri: Uri = url.parse().map_err(|_| fail(bad_url()))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(fail(bad_url())),
        };
        let host = uri.host().ok_or_else(|| fail(bad_url()))?.to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let connect = |why: String| {
            fail(FetchError::Connect {
                url: url.to_string(),
                why,
            })
        };
        let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let target = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let mut request = match call.form {
            Some(_) => Request::post(target)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
            None => Request::get(target),
        }
        .header(header::HOST, uri.authority().map_or("", |a| a.as_str()))
        .header(
            header::USER_AGENT,
            concat!("maillage/", env!("CARGO_PKG_VERSION")),
        )
        .header(header::ACCEPT, accept)
        .header(header::ACCEPT_ENCODING, "identity");
        if let Some(auth) = call.authorization {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let body = call.form.map(form_encode).unwrap_or_default();
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| fail(bad_url()))?;
        if https {
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|_| fail(bad_url()))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| connect(format!("TLS: {e}")))?;
            self.exchange(url, &uri, tls, request).await
        } else {
            self.exchange(url, &uri, tcp, request).await
        }
    }

    async fn exchange<IO>(
        &self,
        url: &str,
        uri: &Uri,
        io: IO,
        request: Request<Full<Bytes>>,
    ) -> Result<Answer, (FetchError, Option<Duration>)>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let http = |why: String| {
            (
                FetchError::Http {
                    url: url.to_string(),
                    why,
                },
                None,
            )
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| http(e.to_string()))?;
        tokio::spawn(connection);
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| http(e.to_string()))?;
        let status = response.status();
        if status.is_redirection()
            && let Some(location) = response
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
        {
            return Ok(Answer::Redirect(resolve(uri, location)));
        }
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let hint = match status.as_u16() {
                401 | 403 => ": the source is not public",
                404 | 410 => ": check the address",
                429 => ": the source asks to slow down",
                _ => "",
            };
            return Err((
                FetchError::Status {
                    url: url.to_string(),
                    status,
                    hint,
                },
                retry_after,
            ));
        }
        let too_large = || {
            (
                FetchError::TooLarge {
                    url: url.to_string(),
                    limit_mib: self.max_bytes >> 20,
                },
                None,
            )
        };
        let declared = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_bytes) {
            return Err(too_large());
        }
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| http(e.to_string()))?;
            if let Some(data) = frame.data_ref() {
                if bytes.len() as u64 + data.len() as u64 > self.max_bytes {
                    return Err(too_large());
                }
                bytes.extend_from_slice(data);
            }
        }
        Ok(Answer::Body(bytes))
    }
}

enum Answer {
    Body(Vec<u8>),
    Redirect(String),
}

/// A Location header against the address that gave it.
fn resolve(base: &Uri, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map_or("", |a| a.as_str());
    if location.starts_with("//") {
        return format!("{scheme}:{location}");
    }
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = base.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    format!("{scheme}://{authority}{dir}{location}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirections_resolve_against_the_address() {
        let base: Uri = "https://data.ex.fr/api/1/datasets/?page=2".parse().unwrap();
        assert_eq!(resolve(&base, "https://other.fr/x"), "https://other.fr/x");
        assert_eq!(
            resolve(&base, "/catalog.ttl"),
            "https://data.ex.fr/catalog.ttl"
        );
        assert_eq!(resolve(&base, "//cdn.ex.fr/c"), "https://cdn.ex.fr/c");
        assert_eq!(
            resolve(&base, "page3"),
            "https://data.ex.fr/api/1/datasets/page3"
        );
    }
}
