//! The incident page: `GET /` lists open and recent incidents (and the scheduled responders'
//! next slots), `GET /incidents/{id}` shows one
//! incident's timeline. Server-rendered HTML (minijinja with HTML auto-escaping: alert labels
//! and annotations are text anyone who can fire an alert controls), no script, no external
//! assets; the page reloads itself every [`REFRESH_SECONDS`] seconds.
//!
//! Access follows the same rule as `/api/*`: without a webhook token the page is open (and the
//! service refuses to listen beyond loopback, see [`crate::config::Settings`]); with one, it
//! requires `Authorization: Bearer <token>`, which a browser does not send by itself: give
//! people logins in the web configuration file (`basic_auth_users`, see
//! [`crate::http::web_config`]) and the page asks the browser for one, or put the page behind
//! an authenticating reverse proxy (SSO) that adds the header. The token is never accepted in the query string: URLs end up in
//! access logs, browser history and `Referer` headers. "Loopback only" was not chosen because
//! a proxy on the same host makes every remote visitor look like loopback.
//!
//! Responses carry a strict Content-Security-Policy (no script at all, inline style only) and
//! `Cache-Control: no-store`, so that even an escaping mistake could not run script.

mod timeline;
mod watches;

use std::sync::LazyLock;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::{AutoEscape, Environment};
use serde::Serialize;

use super::{ApiError, ApiState};
use crate::responders::schedule::{overview, ScheduleView};
use crate::store::{ApprovalState, IncidentRow, IncidentStatus};

/// How often the page reloads itself.
pub const REFRESH_SECONDS: u32 = 10;

/// Resolved incidents shown under the open ones.
const RECENT: u32 = 50;
/// Open incidents shown at most.
const OPEN: u32 = 500;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // Every template is HTML: escape every value, whatever the template's name.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_filter("when", |at: String| timeline::display_time(&at));
    env.add_filter("tone", |state: String| timeline::tone(&state).to_owned());
    for (name, source) in [
        ("base.html", include_str!("../templates/base.html")),
        ("list.html", include_str!("../templates/list.html")),
        ("incident.html", include_str!("../templates/incident.html")),
        ("error.html", include_str!("../templates/error.html")),
    ] {
        // Compiled-in templates: a syntax error is a bug the unit tests catch.
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name}: {e:#}"));
    }
    env
});

pub(super) fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/", get(list))
        .route("/incidents/{id}", get(detail))
        .with_state(state)
}

/// Why a page could not be shown, as an HTML page with the matching status.
#[derive(Debug)]
enum PageError {
    Api(ApiError),
    Render(minijinja::Error),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError::Api(e)
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        PageError::Api(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, message, headers) = match self {
            PageError::Api(e) => {
                let message = e.to_string();
                // The API's response decides the status and headers (WWW-Authenticate, logging).
                let response = e.into_response();
                (response.status(), message, response.headers().clone())
            }
            PageError::Render(e) => {
                tracing::error!(error.message = %format!("{e:#}"), "Rendering a page failed.");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be rendered".to_owned(),
                    HeaderMap::new(),
                )
            }
        };
        let body = render(
            "error.html",
            &serde_json::json!({ "status": status.as_u16(), "reason": status.canonical_reason(), "message": message }),
        )
        .unwrap_or_else(|_| message.clone());
        let mut response = page_response(status, body);
        if let Some(v) = headers.get(header::WWW_AUTHENTICATE) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, v.clone());
        }
        response
    }
}

fn render<S: Serialize>(name: &str, ctx: &S) -> Result<String, minijinja::Error> {
    TEMPLATES.get_template(name)?.render(ctx)
}

fn page_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, Html(body)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[derive(Debug, Serialize)]
struct ListPage {
    refresh: u32,
    now: String,
    open: Vec<IncidentRow>,
    recent: Vec<IncidentRow>,
    /// Scheduled responders and their next slots (none listed when none is scheduled).
    schedules: Vec<ScheduleView>,
}

async fn list(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, PageError> {
    state.access.check(&headers).await?;
    let open = state.store.list_incidents(true, OPEN).await?;
    let recent = state
        .store
        .list_incidents(false, RECENT + open.len() as u32)
        .await?
        .into_iter()
        .filter(|i| i.status != IncidentStatus::Open)
        .take(RECENT as usize)
        .collect();
    let now = time::OffsetDateTime::now_utc();
    let responders = state.responders.iter().map(|r| &**r);
    let page = ListPage {
        refresh: REFRESH_SECONDS,
        now: crate::store::format_time(now),
        open,
        recent,
        schedules: overview(responders, now, 3),
    };
    let body = render("list.html", &page).map_err(PageError::Render)?;
    Ok(page_response(StatusCode::OK, body))
}

#[derive(Debug, Serialize)]
struct DetailPage {
    refresh: u32,
    now: String,
    incident: IncidentRow,
    labels: Vec<(String, String)>,
    pending: Vec<crate::store::ApprovalRow>,
    runs: usize,
    events: Vec<timeline::Event>,
    chart: Option<Chart>,
    watches: Vec<watches::WatchLine>,
}

/// The incident's latest chart, inline: the page's policy allows `data:` images and nothing
/// fetched, so the page stays one self-contained document.
#[derive(Debug, Serialize)]
struct Chart {
    title: String,
    src: String,
}

impl Chart {
    fn new((title, png): (String, Vec<u8>)) -> Self {
        use base64::Engine;
        let data = base64::engine::general_purpose::STANDARD.encode(png);
        Self {
            title,
            src: format!("data:image/png;base64,{data}"),
        }
    }
}

/// The detail page's HTML for a recorded incident.
fn detail_html(
    detail: &crate::store::IncidentDetail,
    chart: Option<(String, Vec<u8>)>,
    watched: &[crate::store::Watch],
) -> Result<String, minijinja::Error> {
    let labels = detail
        .labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let page = DetailPage {
        refresh: REFRESH_SECONDS,
        now: crate::store::format_time(time::OffsetDateTime::now_utc()),
        incident: detail.incident.clone(),
        labels,
        pending: detail
            .approvals
            .iter()
            .filter(|a| a.state == ApprovalState::Pending)
            .cloned()
            .collect(),
        runs: detail.runs.len(),
        events: timeline::build(detail),
        chart: chart.map(Chart::new),
        watches: watches::lines(detail.incident.id, watched),
    };
    render("incident.html", &page)
}

async fn detail(
    State(state): State<ApiState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Response, PageError> {
    state.access.check(&headers).await?;
    let id = super::api::incident_id(id)?;
    let detail = state
        .store
        .incident_detail(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no incident {id}")))?;
    let chart = state.store.latest_chart(id).await?;
    let watched = state.store.incident_watches(id).await?;
    let body = detail_html(&detail, chart, &watched).map_err(PageError::Render)?;
    Ok(page_response(StatusCode::OK, body))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
