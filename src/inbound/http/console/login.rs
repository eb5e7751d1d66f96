//! Signing in with a local account (`CONSOLE=local`) and signing out. The login form is
//! protected from forged posts as every other form is: its token is a random value the
//! form's own page set in a cookie (there is no session yet to hold one), and its origin
//! must be this service's. Wrong names and wrong passwords get the same answer; too many of
//! either wait (`console::throttle`).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::{
    SESSION_COOKIE, Stop, bare, checked_post, cookie, form, not_found, on_loopback, refusal,
    set_cookie, the_console, unavailable, visitor,
};
use crate::console::{LoginError, SESSION_HOURS};
use crate::escape::html;
use crate::inbound::http::AppState;

/// The cookie holding the login form's token.
const LOGIN_COOKIE: &str = "cw_login";

/// The login form, with a fresh token in its cookie.
fn login_page(status: StatusCode, secure: bool, said: Option<&str>) -> Response {
    let Some(token) = crate::domain::signing::fresh_secret() else {
        return unavailable(&std::io::Error::other("no randomness for the login form"))
            .into_response();
    };
    let said = said
        .map(|s| format!("<p class=\"state-open\">{}</p>", html(s)))
        .unwrap_or_default();
    let body = format!(
        "<main><h1>Sign in</h1>{said}<form method=\"post\" action=\"/console/login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
         <label>User name <input name=\"username\" autocomplete=\"username\" required maxlength=\"64\" autofocus></label>\
         <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required maxlength=\"1024\"></label>\
         <button type=\"submit\">Sign in</button></form></main>"
    );
    let mut answer = bare(status, "Sign in", &body);
    if let Ok(v) = set_cookie(LOGIN_COOKIE, &token, 3600, secure).parse() {
        answer.headers_mut().append(header::SET_COOKIE, v);
    }
    answer
}

pub(super) async fn show_form(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    match state.console.as_deref() {
        Some(c) if c.is_local() => login_page(StatusCode::OK, !on_loopback(&headers, peer), None),
        _ => not_found().into_response(),
    }
}

pub(super) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let console = match the_console(&state) {
        Ok(c) if c.is_local() => c,
        _ => return Err(not_found()),
    };
    let secure = !on_loopback(&headers, peer);
    let fields = form(&body)?;
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    checked_post(&headers, &fields, expected)?;
    let (Some(name), Some(password)) = (fields.get("username"), fields.get("password")) else {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            "The form needs a username and a password.",
        ));
    };
    let address = crate::console::throttle::client_address(&headers, peer.ip());
    let answer = match console
        .login(name.trim(), password, address, Utc::now())
        .await
    {
        Ok(token) => {
            let mut answer =
                (StatusCode::SEE_OTHER, [(header::LOCATION, "/console/")]).into_response();
            for c in [
                set_cookie(SESSION_COOKIE, &token, SESSION_HOURS * 3600, secure),
                set_cookie(LOGIN_COOKIE, "", 0, secure),
            ] {
                if let Ok(v) = c.parse() {
                    answer.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            answer
        }
        Err(LoginError::Wrong) => {
            tracing::info!(address = %address, "a console sign-in failed");
            login_page(
                StatusCode::UNAUTHORIZED,
                secure,
                Some("Wrong user name or password."),
            )
        }
        Err(LoginError::Throttled(wait)) => {
            tracing::warn!(address = %address, "console sign-ins throttled");
            let mut answer = login_page(
                StatusCode::TOO_MANY_REQUESTS,
                secure,
                Some(&format!(
                    "Too many failed sign-ins: try again in {} minute(s).",
                    wait.as_secs().div_ceil(60).max(1)
                )),
            );
            if let Ok(v) = wait.as_secs().max(1).to_string().parse() {
                answer.headers_mut().insert(header::RETRY_AFTER, v);
            }
            answer
        }
        Err(LoginError::NotLocal) => return Err(not_found()),
        Err(LoginError::Unavailable(e)) => return Err(unavailable(&e)),
    };
    Ok(answer)
}

pub(super) async fn logout(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let (console, visitor) = visitor(&state, &headers).await?;
    let fields = form(&body)?;
    checked_post(&headers, &fields, &visitor.csrf)?;
    console
        .logout(&visitor, Utc::now())
        .await
        .map_err(|e| unavailable(&e))?;
    let secure = !on_loopback(&headers, peer);
    let mut answer = match console.is_local() {
        true => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, "/console/login")],
        )
            .into_response(),
        false => bare(
            StatusCode::OK,
            "Signed out",
            "<main><p>Signed out of the console. The load balancer keeps its own sign-in: \
             sign out at your identity provider too.</p></main>",
        ),
    };
    if let Ok(v) = set_cookie(SESSION_COOKIE, "", 0, secure).parse() {
        answer.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(answer)
}
