//! `users`: the console's local accounts. A password comes from standard input only (a
//! command line is seen by every process on the host and kept in shell history).

use std::io::{BufRead, Write};

use super::{Usage, pretty, write_out};
use crate::cli::{Config, UsersCommand};
use crate::console::accounts::{AccountError, Accounts};
use crate::console::roles::Role;
use crate::domain::settings::Document;

fn usage(e: AccountError) -> Usage {
    Usage(e.to_string())
}

pub(super) async fn users(
    config: &Config,
    cmd: UsersCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let backend = crate::cli::startup::build(config).await?.backend;
    let store = &*backend.config;
    let mut accounts =
        Accounts::read(store.document(Document::Users).await?.as_deref()).map_err(usage)?;
    match cmd {
        UsersCommand::Add { name, role } => {
            let role: Role = role
                .trim()
                .parse()
                .map_err(|_| Usage(format!("{role:?} is not a role (viewer, responder, admin)")))?;
            let mut password = String::new();
            std::io::stdin().lock().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            accounts.put(&name, role, password).map_err(usage)?;
            store
                .save_document(Document::Users, &accounts.text())
                .await?;
            write_out(out, &format!("{name} can sign in as {}", role.as_str()))
        }
        UsersCommand::List { json } => {
            let rows: Vec<serde_json::Value> = accounts
                .users
                .iter()
                .map(|a| serde_json::json!({"name": a.name, "role": a.role}))
                .collect();
            match json {
                true => write_out(out, &pretty(&rows)?),
                false => {
                    let lines: Vec<String> = accounts
                        .users
                        .iter()
                        .map(|a| format!("{:<24} {}", a.name, a.role))
                        .collect();
                    write_out(out, &lines.join("\n"))
                }
            }
        }
        UsersCommand::Delete { name } => {
            if !accounts.delete(&name) {
                return Err(Usage(format!("no user {name:?}")).into());
            }
            store
                .save_document(Document::Users, &accounts.text())
                .await?;
            write_out(out, &format!("{name} removed"))
        }
    }
}
