//! The portal: the federation this node sees, as a French web site for the
//! public (issue 21). Server-rendered HTML (maud), one embedded stylesheet,
//! JavaScript only for the map; anonymous visitors see public records only.
//!
//!   GET /                                   home: search box, counts, latest records
//!   GET /recherche?q=…&kind=…&theme=…&org=…&territory=…&status=…&page=N
//!                                           ranked results with facets as links
//!   GET /records/{author}/{record_id}       a record (the IRI the DCAT export mints):
//!                                           HTML, or JSON / JSON-LD by content
//!                                           negotiation; `?format=envelope` gives
//!                                           the signed envelope for `maillage verify`
//!   GET /organisations/{siren}              an organisation's records and its register
//!                                           of algorithms and AI projects
//!   GET /territoires/{code}                 a commune, EPCI, département or région:
//!                                           its collectivities' records and figures
//!   GET /carte?theme=…&status=…             the projects with coordinates: a list, and
//!                                           a map (the portal's only script, Leaflet)
//!   GET /projets.csv                        public projects in the bibliothèque des
//!                                           projets IA's own CSV layout
//!   GET /projets.geojson                    public projects with coordinates, GeoJSON
//!
//! Each page takes a turn (`http::Http`): a search's, or a page's for one
//! that reads a few records; none scans the store.

mod aggregate;
mod home;
mod labels;
mod map;
mod members;
mod organisation;
mod projects;
mod proposal_form;
mod proposals;
mod record;
mod search;
mod territory;
pub(crate) mod view;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::Markup;

use crate::http::Http;
use crate::signin::Session;
use crate::viewer::Viewer;

/// Who asks: an agent signed in on the portal (its session, by id), a
/// script with a read token, or an anonymous visitor (public records only);
/// and what it may see.
pub(crate) struct Visitor {
    pub session: Option<(String, Session)>,
    pub token: Option<crate::tokens::Token>,
    pub viewer: Viewer,
}

impl Visitor {
    /// Who this is, for the access log: `session:SUBJECT` or `token:ID`.
    pub fn who(&self) -> Option<(String, &maillage_record::Siren)> {
        match (&self.session, &self.token) {
            (Some((_, s)), _) => Some((format!("session:{}", s.subject), &s.siren)),
            (None, Some(t)) => Some((format!("token:{}", t.id), &t.siren)),
            (None, None) => None,
        }
    }
}

/// A request refused before it is answered: a token that is not (401), a
/// caller over its rate (429).
fn refused(status: StatusCode, why: &str) -> Response {
    let mut r = crate::http::text(status, why);
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    } else {
        r.headers_mut().insert(
            header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
    }
    r
}

impl axum::extract::FromRequestParts<Http> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        http: &Http,
    ) -> Result<Visitor, Self::Rejection> {
        let slow_down = || {
            http.node
                .refusals()
                .note(crate::refusals::Refusal::RateLimited);
            refused(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests from this session or token: slow down (20 a second)\n",
            )
        };
        // A bearer token (another scheme, such as a proxy's Basic, is not
        // this node's business and is left alone).
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|a| a.to_str().ok())
            .and_then(|a| a.strip_prefix("Bearer "));
        if let Some(bearer) = bearer {
            let Some(token) = http.node.tokens().check(bearer.trim()) else {
                return Err(refused(
                    StatusCode::UNAUTHORIZED,
                    "this token is unknown, revoked or expired: ask the node's operator for one \
                     (maillage token create)\n",
                ));
            };
            if !http.limit.allow(&format!("token:{}", token.id)) {
                return Err(slow_down());
            }
            return Ok(Visitor {
                session: None,
                viewer: http.node.agent_viewer(token.siren.clone()),
                token: Some(token),
            });
        }
        let session = http.signin.as_ref().and_then(|signin| {
            parts
                .headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|h| h.to_str().ok())
                .find_map(|h| signin.session(h))
        });
        // One rate per agent, however many sessions it opens.
        if let Some((_, s)) = &session
            && !http.limit.allow(&format!("agent:{}", s.subject))
        {
            return Err(slow_down());
        }
        let viewer = match &session {
            Some((_, s)) => http.node.agent_viewer(s.siren.clone()),
            None => Viewer::Anonymous,
        };
        Ok(Visitor {
            session,
            token: None,
            viewer,
        })
    }
}

/// The portal's routes.
pub(crate) fn routes() -> Router<Http> {
    Router::new()
        .route("/", get(home::home))
        .route("/recherche", get(search::search))
        .route("/records/{author}/{record_id}", get(record::record))
        .route("/organisations/{siren}", get(organisation::organisation))
        .route("/territoires/{code}", get(territory::territory))
        .route("/carte", get(map::map))
        .route("/static/carte.js", get(map::script))
        .route("/static/leaflet/leaflet.js", get(map::leaflet_js))
        .route("/static/leaflet/leaflet.css", get(map::leaflet_css))
        .route("/projets.csv", get(projects::csv))
        .route("/projets.geojson", get(projects::geojson))
        .route("/static/maillage.css", get(stylesheet))
        .route("/connexion", get(crate::signin::routes::begin))
        .route("/connexion/retour", get(crate::signin::routes::back))
        .route("/compte", get(crate::signin::routes::account))
        .route(
            "/propositions",
            get(proposals::list)
                .post(proposals::send)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::http::FORM_BODY_MAX,
                )),
        )
        .route("/membres", get(members::members))
        .route("/propositions/nouvelle", get(proposals::new))
        .route("/propositions/modifier", get(proposals::edit))
        .route("/propositions/retrait", get(proposals::withdraw))
        .route("/propositions/{id}/modifier", get(proposals::amend))
        .route(
            "/propositions/{id}/annulation",
            axum::routing::post(proposals::cancel),
        )
        .route(
            "/propositions/{id}/decision",
            axum::routing::post(proposals::decide),
        )
        .route(
            "/deconnexion",
            axum::routing::post(crate::signin::routes::sign_out),
        )
}

/// The stylesheet, embedded in the binary.
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("maillage.css"),
    )
        .into_response()
}

/// Anything else: a French page for a browser, a line of text for a
/// script (as before the portal).
pub(crate) async fn not_found(
    State(http): State<Http>,
    visitor: Visitor,
    headers: HeaderMap,
) -> Response {
    if wants_html(&headers) {
        return page(
            StatusCode::NOT_FOUND,
            view::problem(
                &site_for(&http, &visitor),
                "Page introuvable",
                "Cette adresse ne correspond à aucune page de ce nœud.",
            ),
        );
    }
    crate::http::text(
        StatusCode::NOT_FOUND,
        "not found: try /catalog.jsonld, /catalog.ttl, /projects.json, /search?q=... or /stats\n",
    )
}

/// Whether the client asks for HTML first (a browser).
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// The site as an anonymous visitor sees it (error pages).
fn site(http: &Http) -> view::Site<'_> {
    view::Site {
        name: http.node.name(),
        account: None,
        signin: http.signin.is_some(),
    }
}

/// The site as `visitor` sees it: signed in or not.
pub(crate) fn site_for<'a>(http: &'a Http, visitor: &'a Visitor) -> view::Site<'a> {
    view::Site {
        account: visitor.session.as_ref().map(|(_, s)| view::Account {
            name: &s.name,
            siren: s.siren.as_str(),
        }),
        ..site(http)
    }
}

/// An HTML answer. Never stored by a shared cache: a signed-in agent's
/// pages hold what only its organisation may see.
pub(crate) fn page(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "private, no-cache"),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// Runs `f` (which reads the store or the index) on a blocking thread; a
/// failure is logged and answered with a page that says so.
async fn blocking<T: Send + 'static>(
    http: &Http,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, Response> {
    let failed = |e: String| {
        tracing::error!(error = %e, "portal page failed");
        page(
            StatusCode::INTERNAL_SERVER_ERROR,
            view::problem(
                &site(http),
                "Erreur du nœud",
                "Ce nœud n'a pas pu construire la page ; son opérateur trouvera la cause dans son journal.",
            ),
        )
    };
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(failed(e)),
        Err(e) => Err(failed(e.to_string())),
    }
}
