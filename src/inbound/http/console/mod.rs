//! The console's pages under `/console/` (issue 28): server-rendered HTML, no script, one
//! stylesheet of its own, every text from an alarm escaped. This file is the console's
//! edge: who the visitor is (`console::Console`), the answer to everyone not let in (the
//! login for local accounts, the same `401` behind the load balancer), and what every form
//! post must show before it changes anything: the session's CSRF token, and an origin that
//! is this service's own. `login` signs in and out, `dashboard` and `views` show, `actions`
//! change (each change audited with the person).

mod actions;
mod cases;
mod dashboard;
mod kpi;
mod login;
mod schedules;
mod settings;
mod users;
mod views;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;

use super::AppState;
use super::page_link::html_answer;
use crate::console::roles::Role;
use crate::console::{Console, ConsoleError, Credentials, Visitor};
use crate::escape::html;

/// The session cookie of a local sign-in.
const SESSION_COOKIE: &str = "cw_session";
/// The largest form accepted: a console form is a few short fields.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// Scripts from nowhere; styles and images only from the service itself.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

pub(super) fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/console/", get(dashboard::dashboard))
        .route("/console/style.css", get(stylesheet))
        .route("/console/login", get(login::show_form).post(login::login))
        .route("/console/logout", post(login::logout))
        .route("/console/audit", get(views::audit))
        .route("/console/report", get(kpi::kpis))
        .route("/console/schedules", get(schedules::schedules))
        .route("/console/schedules/override", post(schedules::add_override))
        .route("/console/cases/{id}", get(cases::case))
        .route("/console/cases/{id}/graph", get(cases::graph))
        .route("/console/users", get(users::users).post(users::add))
        .route("/console/users/{name}/delete", post(users::delete))
        .route("/console/schedules/file", post(schedules::replace_file))
        .route(
            "/console/settings",
            get(settings::settings).post(settings::change),
        )
        .route("/console/pages/{id}", get(views::page_view))
        .route("/console/pages/{id}/{action}", post(actions::page_action))
        .route("/console/fixing", post(actions::start_fixing))
        .route("/console/fixing/{id}/stop", post(actions::stop_fixing))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        include_str!("style.css"),
    )
        .into_response()
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the browser is on this machine: the only case where a cookie may go without
/// `Secure` (there is no TLS on loopback, and nothing on the way to read it).
fn on_loopback(headers: &HeaderMap, peer: SocketAddr) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    peer.ip().is_loopback() && matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

/// A `Set-Cookie` value for the console: never readable by script, never sent by another
/// site's request, and only over TLS unless on loopback.
fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/console/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Why a console request ends without doing what it asked, as its answer says it.
#[derive(Debug)]
pub(super) enum Stop {
    NotFound,
    /// Not signed in, with local accounts: to the login.
    ToLogin,
    /// Not let in behind the load balancer: the same 401 for all.
    Unauthorized,
    /// The store failed (its cause is logged where this is made).
    Unavailable,
    /// Refused, with the status and what the person is told.
    Refused(StatusCode, String),
}

impl IntoResponse for Stop {
    fn into_response(self) -> Response {
        match self {
            Stop::NotFound => (StatusCode::NOT_FOUND, "not found").into_response(),
            Stop::ToLogin => (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, "/console/login")],
            )
                .into_response(),
            Stop::Unauthorized => bare(
                StatusCode::UNAUTHORIZED,
                "Sign in",
                "<main><p>Sign in through the load balancer to see the console.</p></main>",
            ),
            Stop::Unavailable => bare(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "<main><p>The console cannot answer just now. Try again in a moment.</p></main>",
            ),
            Stop::Refused(status, text) => bare(
                status,
                "Refused",
                &format!(
                    "<main><p>{}</p><p><a href=\"/console/\">Back to the console</a></p></main>",
                    html(&text)
                ),
            ),
        }
    }
}

fn not_found() -> Stop {
    Stop::NotFound
}

fn the_console(state: &AppState) -> Result<Arc<Console>, Stop> {
    state.console.clone().ok_or(Stop::NotFound)
}

/// The visitor, or the answer for someone not let in: with local accounts a redirect to the
/// login, behind the load balancer the same `401` for all. Why is said only in the log.
async fn visitor(state: &AppState, headers: &HeaderMap) -> Result<(Arc<Console>, Visitor), Stop> {
    let console = the_console(state)?;
    let creds = Credentials {
        alb_token: headers
            .get("x-amzn-oidc-data")
            .and_then(|v| v.to_str().ok()),
        session: cookie(headers, SESSION_COOKIE),
    };
    match console.visitor(creds, Utc::now()).await {
        Ok(v) => Ok((console, v)),
        Err(ConsoleError::Refused(why)) => {
            tracing::info!(reason = %why, "the console refused a visitor");
            Err(match console.is_local() {
                true => Stop::ToLogin,
                false => Stop::Unauthorized,
            })
        }
        Err(e) => Err(unavailable(&e)),
    }
}

/// A change made: written to the audit log with the person, and the browser sent on to `to`
/// (a GET, so a reload does not post the form again).
async fn audited(console: &Console, visitor: &Visitor, what: &str, to: &str) -> Response {
    console.audit(&visitor.name, what, Utc::now()).await;
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

/// 503, the cause in the log only.
fn unavailable(e: &(dyn std::error::Error + 'static)) -> Stop {
    tracing::warn!(error = %crate::errors::Chain(e), "the console could not answer");
    Stop::Unavailable
}

/// A form's fields, or why the body is not one.
fn form(body: &Bytes) -> Result<HashMap<String, String>, Stop> {
    form_within(body, MAX_FORM_BYTES)
}

/// A form of at most `limit` bytes (the on-duty file's is larger than the others).
fn form_within(body: &Bytes, limit: usize) -> Result<HashMap<String, String>, Stop> {
    if body.len() > limit {
        return Err(refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form is too large.",
        ));
    }
    let mut fields = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if fields.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err(refusal(
                StatusCode::BAD_REQUEST,
                "A field of the form is given twice.",
            ));
        }
    }
    Ok(fields)
}

fn refusal(status: StatusCode, text: &str) -> Stop {
    Stop::Refused(status, text.to_owned())
}

/// Whether a form post comes from a page of this service: its `Origin` names this host
/// (or, from a browser that sends none, `Sec-Fetch-Site` says same-origin). A request with
/// neither is no browser's, and its CSRF token still has to match.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Some(origin) = origin.to_str().ok().and_then(|o| url::Url::parse(o).ok()) else {
            return false;
        };
        let authority = match (origin.host_str(), origin.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return false,
        };
        return host.is_some_and(|h| h == authority.to_ascii_lowercase());
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => site == "same-origin",
        None => true,
    }
}

/// What every form post shows before it changes anything: an origin of this service and
/// the session's CSRF token.
fn checked_post(
    headers: &HeaderMap,
    fields: &HashMap<String, String>,
    csrf: &str,
) -> Result<(), Stop> {
    if !same_origin(headers) {
        tracing::warn!("a console form was posted from another origin");
        return Err(refusal(
            StatusCode::FORBIDDEN,
            "This form was not sent from the console.",
        ));
    }
    let given = fields.get("csrf").map(String::as_str).unwrap_or_default();
    let ok: bool = subtle::ConstantTimeEq::ct_eq(given.as_bytes(), csrf.as_bytes()).into();
    if !ok || csrf.is_empty() {
        tracing::warn!("a console form was posted without its session's CSRF token");
        return Err(refusal(
            StatusCode::FORBIDDEN,
            "This form has expired: reload the page and try again.",
        ));
    }
    Ok(())
}

/// Whether the visitor's role allows `needed`; else the answer saying so.
fn allowed(visitor: &Visitor, needed: Role) -> Result<(), Stop> {
    match visitor.role >= needed {
        true => Ok(()),
        false => Err(refusal(
            StatusCode::FORBIDDEN,
            &format!(
                "This needs the {} role; you are a {}.",
                needed.as_str(),
                visitor.role.as_str()
            ),
        )),
    }
}

/// A hidden field with the session's CSRF token, for every form.
fn csrf_field(visitor: &Visitor) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        html(&visitor.csrf)
    )
}

/// A button that posts to `action`, as a form of its own.
fn button(visitor: &Visitor, action: &str, label: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\" class=\"inline\">{}<button type=\"submit\">{}</button></form>",
        html(action),
        csrf_field(visitor),
        html(label)
    )
}

/// A console page: the header with who is signed in, the navigation, and `body`.
fn page(status: StatusCode, title: &str, visitor: &Visitor, body: &str) -> Response {
    let header = format!(
        "<header><nav><a href=\"/console/\">Dashboard</a> <a href=\"/console/schedules\">Schedules</a> \
         <a href=\"/console/settings\">Settings</a> <a href=\"/console/report\">Report</a> \
         <a href=\"/console/audit\">Audit log</a>{}</nav>\
         <p class=\"who\">{} ({}) {}</p></header>",
        match visitor.role {
            Role::Admin => " <a href=\"/console/users\">Users</a>",
            _ => "",
        },
        html(&visitor.name),
        visitor.role.as_str(),
        button(visitor, "/console/logout", "Sign out"),
    );
    bare(status, title, &format!("{header}<main>{body}</main>"))
}

/// An HTML page of the console, without the signed-in header.
fn bare(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"stylesheet\" href=\"/console/style.css\">\
         <title>{} · cw-support-api</title></head><body>{body}</body></html>",
        html(title)
    );
    // `same-origin`, not `no-referrer`: under `no-referrer` a browser sends `Origin: null`
    // with every form post, and the console's own forms could not show where they came from.
    html_answer(status, CSP, "same-origin", page)
}
