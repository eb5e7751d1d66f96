//! `/console/users` (admins, local accounts only): the accounts with their roles, a form
//! that adds one (or gives an account a new role and password), and a button that deletes
//! one, which signs its sessions out at once. The password is taken as the command line
//! takes it (12 characters or more) and kept only as its Argon2id hash.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::actions::poster;
use super::{
    Stop, allowed, audited, button, csrf_field, not_found, page, refusal, unavailable, visitor,
};
use crate::console::accounts::Accounts;
use crate::console::roles::Role;
use crate::console::{Console, Visitor};
use crate::domain::documents::Document;
use crate::escape::html;
use crate::inbound::http::AppState;

async fn accounts(console: &Console) -> Result<Accounts, Stop> {
    let text = console
        .settings
        .document(Document::Users)
        .await
        .map_err(|e| unavailable(&e))?;
    Accounts::read(text.as_deref()).map_err(|e| unavailable(&e))
}

async fn save(console: &Console, accounts: &Accounts) -> Result<(), Stop> {
    console
        .settings
        .save_document(Document::Users, &accounts.text())
        .await
        .map_err(|e| unavailable(&e))
}

fn local_admin(console: &Console, visitor: &Visitor) -> Result<(), Stop> {
    if !console.is_local() {
        return Err(not_found());
    }
    allowed(visitor, Role::Admin)
}

pub(super) async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Stop> {
    let (console, visitor) = visitor(&state, &headers).await?;
    local_admin(&console, &visitor)?;
    let all = accounts(&console).await?;
    let mut body = String::from(
        "<h1>Users</h1><table id=\"users\"><tr><th>Name</th><th>Role</th><th></th></tr>",
    );
    for a in &all.users {
        let delete = match a.name == visitor.name {
            true => String::from("(you)"),
            false => button(
                &visitor,
                &format!("/console/users/{}/delete", a.name),
                "Delete",
            ),
        };
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{delete}</td></tr>",
            html(&a.name),
            html(&a.role)
        ));
    }
    body.push_str(&format!(
        "</table><h2>Add a user, or change one</h2>\
         <form method=\"post\" action=\"/console/users\" id=\"user-form\">{}\
         <label>Name <input name=\"name\" required maxlength=\"64\" autocomplete=\"off\"></label>\
         <label>Role <select name=\"role\"><option>viewer</option><option>responder</option>\
         <option>admin</option></select></label>\
         <label>Password (12 characters or more) <input name=\"password\" type=\"password\" \
         required minlength=\"12\" maxlength=\"1024\" autocomplete=\"new-password\"></label>\
         <button type=\"submit\">Save</button></form>",
        csrf_field(&visitor)
    ));
    Ok(page(StatusCode::OK, "Users", &visitor, &body))
}

pub(super) async fn add(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let (console, visitor, fields) = poster(&state, &headers, &body, Role::Admin).await?;
    local_admin(&console, &visitor)?;
    let field = |k: &str| fields.get(k).map(String::as_str).unwrap_or_default();
    let (name, password) = (field("name").trim(), field("password"));
    let role: Role = field("role")
        .parse()
        .map_err(|_| refusal(StatusCode::BAD_REQUEST, "role: viewer, responder or admin"))?;
    let mut all = accounts(&console).await?;
    // Argon2id takes tens of milliseconds of CPU: off the request threads.
    let (who, pw) = (name.to_owned(), password.to_owned());
    let all = tokio::task::spawn_blocking(move || all.put(&who, role, &pw).map(|()| all))
        .await
        .map_err(|e| unavailable(&e))?
        .map_err(|e| refusal(StatusCode::BAD_REQUEST, &e.to_string()))?;
    save(&console, &all).await?;
    Ok(audited(
        &console,
        &visitor,
        &format!("set the account {name} as {}", role.as_str()),
        "/console/users",
    )
    .await)
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let (console, visitor, _) = poster(&state, &headers, &body, Role::Admin).await?;
    local_admin(&console, &visitor)?;
    if name == visitor.name {
        return Err(refusal(
            StatusCode::CONFLICT,
            "You cannot delete your own account here (another admin can, or `users delete`).",
        ));
    }
    let mut all = accounts(&console).await?;
    if !all.delete(&name) {
        return Err(not_found());
    }
    save(&console, &all).await?;
    Ok(audited(
        &console,
        &visitor,
        &format!("deleted the account {name}"),
        "/console/users",
    )
    .await)
}
