//! What only an admin does in the console: the users (local accounts) and the on-duty file.
//! Through the HTTP edge, cookies carried by hand (the helpers of `console_local`).

use crate::console_local::{PASSWORD, app, csrf, get, post, session, sign_in};
use cw_support_api::console::accounts::Accounts;
use cw_support_api::domain::documents::Document;
use cw_support_api::domain::settings::AlarmConfigStore;

#[tokio::test]
async fn an_admin_adds_and_deletes_users_and_a_deleted_user_is_signed_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, client) = app(dir.path()).await;
    let ada = session(&app, &client, "ada").await;
    let (status, page) = get(&app, &client, "/console/users", &ada).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<td>alice</td><td>responder</td>") && page.contains("(you)"),
        "{page}"
    );
    let token = csrf(&page);
    let form = [
        ("csrf", token.as_str()),
        ("name", "carol"),
        ("role", "responder"),
        ("password", "another long passphrase"),
    ];
    assert_eq!(
        post(&app, &client, "/console/users", &ada, &form, None)
            .await
            .status(),
        303
    );
    let r = sign_in(&app, &client, "carol", "another long passphrase").await;
    assert_eq!(r.status(), 303, "carol signs in");
    let stored = app
        .backend
        .config
        .document(Document::Users)
        .await
        .expect("read")
        .expect("doc");
    assert!(!stored.contains("another long passphrase") && stored.contains("$argon2id$"));
    // Bad input said, nothing saved.
    for (field, value, said) in [
        ("name", "Carol Smith", "is not a user name"),
        ("role", "boss", "viewer, responder or admin"),
        ("password", "short", "at least 12 characters"),
    ] {
        let mut bad = form.to_vec();
        for f in bad.iter_mut().filter(|f| f.0 == field) {
            f.1 = value;
        }
        let r = post(&app, &client, "/console/users", &ada, &bad, None).await;
        assert_eq!(r.status(), 400, "{field}");
        assert!(r.text().await.expect("body").contains(said), "{field}");
    }
    // Delete victor: his session ends with his account. Ada cannot delete herself here.
    let victor = session(&app, &client, "victor").await;
    assert_eq!(get(&app, &client, "/console/", &victor).await.0, 200);
    let del = [("csrf", token.as_str())];
    assert_eq!(
        post(
            &app,
            &client,
            "/console/users/victor/delete",
            &ada,
            &del,
            None
        )
        .await
        .status(),
        303
    );
    assert_eq!(get(&app, &client, "/console/", &victor).await.0, 303);
    assert_eq!(
        post(&app, &client, "/console/users/ada/delete", &ada, &del, None)
            .await
            .status(),
        409
    );
    assert_eq!(
        post(
            &app,
            &client,
            "/console/users/nobody/delete",
            &ada,
            &del,
            None
        )
        .await
        .status(),
        404
    );
    let left = Accounts::read(
        app.backend
            .config
            .document(Document::Users)
            .await
            .expect("read")
            .as_deref(),
    )
    .expect("accounts");
    let names: Vec<&str> = left.users.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["alice", "ada", "carol"]);
    let (_, audit) = get(&app, &client, "/console/audit", &ada).await;
    assert!(
        audit.contains("set the account carol as responder")
            && audit.contains("deleted the account victor"),
        "{audit}"
    );

    // A responder has neither the page nor the link, and cannot post.
    let alice = session(&app, &client, "alice").await;
    let (status, page) = get(&app, &client, "/console/users", &alice).await;
    assert_eq!(status, 403);
    assert!(page.contains("needs the admin role"), "{page}");
    let (_, dash) = get(&app, &client, "/console/", &alice).await;
    assert!(!dash.contains("/console/users"), "{dash}");
    let token = crate::console_local::csrf(&dash);
    let form = [
        ("csrf", token.as_str()),
        ("name", "mallory"),
        ("role", "admin"),
        ("password", PASSWORD),
    ];
    assert_eq!(
        post(&app, &client, "/console/users", &alice, &form, None)
            .await
            .status(),
        403
    );
    app.stop().await;
}

#[tokio::test]
async fn an_admin_replaces_the_on_duty_file_and_a_bad_one_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, client) = app(dir.path()).await;
    let ada = session(&app, &client, "ada").await;
    let (_, page) = get(&app, &client, "/console/schedules", &ada).await;
    assert!(
        page.contains("file-form") && page.contains("[[person]]"),
        "the current file to edit: {page}"
    );
    let token = csrf(&page);
    let before = app
        .backend
        .config
        .on_call()
        .await
        .expect("read")
        .expect("file");

    let broken = before.replace("people = [\"alice\"]", "people = [\"alice\", \"dave\"]");
    assert_ne!(broken, before, "the file names alice in a rotation");
    let r = post(
        &app,
        &client,
        "/console/schedules/file",
        &ada,
        &[("csrf", &token), ("file", &broken)],
        None,
    )
    .await;
    assert_eq!(r.status(), 400);
    let said = r.text().await.expect("body");
    assert!(
        said.contains("line ") && said.contains("dave is not a [[person]] of this file"),
        "{said}"
    );
    assert_eq!(
        app.backend
            .config
            .on_call()
            .await
            .expect("read")
            .expect("file"),
        before
    );

    let renamed = before.replace("people = [\"alice\"]", "people = [\"bob\"]");
    let r = post(
        &app,
        &client,
        "/console/schedules/file",
        &ada,
        &[("csrf", &token), ("file", &renamed)],
        None,
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, page) = get(&app, &client, "/console/schedules", &ada).await;
    assert!(
        page.contains("<td>bob</td>") && !page.contains("<td>alice</td>"),
        "{page}"
    );
    let huge = "#".repeat(300 * 1024);
    let r = post(
        &app,
        &client,
        "/console/schedules/file",
        &ada,
        &[("csrf", &token), ("file", &huge)],
        None,
    )
    .await;
    assert_eq!(r.status(), 413);

    // A responder may put someone on duty, not replace the file.
    let alice = session(&app, &client, "alice").await;
    let (_, page) = get(&app, &client, "/console/schedules", &alice).await;
    assert!(!page.contains("file-form"), "{page}");
    let token = csrf(&page);
    let r = post(
        &app,
        &client,
        "/console/schedules/file",
        &alice,
        &[("csrf", &token), ("file", &before)],
        None,
    )
    .await;
    assert_eq!(r.status(), 403);
    app.stop().await;
}
