//! Accounts a customer can get back into: a password reset asked by email, mailed as a link
//! that works once, until it expires or a newer one is asked for, and that ends every session.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use platform::testing::TestBackend;
use serde_json::json;

use crate::helpers::{spawn_app_with, TestApp};

/// Every reset token mailed to `email` so far (the mail drop's `.eml` files), oldest first.
fn reset_tokens(app: &TestApp, email: &str) -> Vec<String> {
    let drop = app.config.data_dir.join("mail");
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&drop)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .filter_map(|(_, f)| std::fs::read_to_string(f).ok())
        .filter(|t| t.contains(email) && t.contains("Reset your password"))
        .filter_map(|t| {
            // Quoted-printable: soft line breaks joined, `=3D` is `=`.
            let text = t
                .replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=");
            let start = text.find("reset-password?token=")? + "reset-password?token=".len();
            let token: String = text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            (!token.is_empty()).then_some(token)
        })
        .collect()
}

async fn mailed_tokens(app: &TestApp, email: &str, count: usize) -> Vec<String> {
    app.eventually("the reset mail in the mail drop", 20, || async {
        let tokens = reset_tokens(app, email);
        (tokens.len() >= count).then_some(tokens)
    })
    .await
}

async fn ask(app: &TestApp, email: &str) -> crate::helpers::Response {
    app.post(
        "/api/v1/identity/password-resets",
        None,
        &json!({ "email": email }),
    )
    .await
}

async fn confirm(app: &TestApp, token: &str, password: &str) -> crate::helpers::Response {
    app.post(
        "/api/v1/identity/password-resets/confirm",
        None,
        &json!({ "token": token, "password": password }),
    )
    .await
}

crate::both_backends!(
    a_forgotten_password_is_reset_once_through_the_mailed_link,
    |app| {
        let customer = app.customer().await;
        let asked = ask(&app, &customer.email).await;
        asked.assert_status(202);
        // An address without an account gets the very same answer.
        let unknown = ask(&app, "nobody-here@example.com").await;
        unknown.assert_status(202);
        assert_eq!(unknown.body, asked.body);
        let token = mailed_tokens(&app, &customer.email, 1).await.remove(0);
        assert!(token.len() >= 40, "{token}");
        // The same rules as at sign-up; a refusal leaves the token working.
        confirm(&app, &token, "short")
            .await
            .assert_problem(422, "validation_failed");
        let new_password = "a-new-violet-harbour-77";
        confirm(&app, &token, new_password).await.assert_status(204);
        // Once only.
        confirm(&app, &token, "another-violet-harbour-78")
            .await
            .assert_problem(400, "identity.reset_token_invalid");
        confirm(&app, "not-a-token-we-issued", new_password)
            .await
            .assert_problem(400, "identity.reset_token_invalid");
        // Every session ended; the old password is gone, the new one works.
        let refreshed = app
            .post(
                "/api/v1/identity/tokens/refresh",
                None,
                &json!({ "refresh_token": customer.refresh_token }),
            )
            .await;
        refreshed.assert_status(401);
        app.log_in(&customer.email, &customer.password)
            .await
            .assert_problem(401, "identity.invalid_credentials");
        app.log_in(&customer.email, new_password)
            .await
            .assert_status(200);
        // The customer's messages say a reset mail went out, not what it carried.
        let logged_in = app.log_in(&customer.email, new_password).await;
        let access = logged_in.body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let messages = app
            .eventually("the reset mail marked sent", 10, || async {
                let list = app.get("/api/v1/notifications/me", Some(&access)).await;
                list.body["items"].as_array().and_then(|items| {
                    items
                        .iter()
                        .find(|m| m["kind"] == "password_reset" && m["status"] == "sent")
                        .cloned()
                })
            })
            .await;
        assert_eq!(messages["subject"], "Reset your password");
        assert!(!messages.to_string().contains(&token), "{messages}");
        app.stop().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_link_is_refused_once_superseded_or_expired() {
    let Some(app) = spawn_app_with(TestBackend::Sqlite, |c| {
        c.password_reset_ttl = Duration::from_secs(2);
    })
    .await
    else {
        return;
    };
    let customer = app.customer().await;
    ask(&app, &customer.email).await.assert_status(202);
    let first = mailed_tokens(&app, &customer.email, 1).await.remove(0);
    ask(&app, &customer.email).await.assert_status(202);
    let tokens = mailed_tokens(&app, &customer.email, 2).await;
    let second = tokens[1].clone();
    assert_ne!(first, second);
    // The newer link supersedes the older.
    confirm(&app, &first, "superseded-violet-harbour-1")
        .await
        .assert_problem(400, "identity.reset_token_invalid");
    // Past its time, the newer one is refused too, and the password is unchanged.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    confirm(&app, &second, "expired-violet-harbour-2")
        .await
        .assert_problem(400, "identity.reset_token_invalid");
    app.log_in(&customer.email, &customer.password)
        .await
        .assert_status(200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_confirmations_of_one_link_set_the_password_once() {
    let Some(app) = spawn_app_with(TestBackend::Sqlite, |_| {}).await else {
        return;
    };
    let customer = app.customer().await;
    ask(&app, &customer.email).await.assert_status(202);
    let token = mailed_tokens(&app, &customer.email, 1).await.remove(0);
    let answers = futures::future::join_all((0..50).map(|i| {
        let (app, token) = (&app, token.clone());
        async move {
            confirm(app, &token, &format!("racing-violet-harbour-{i:02}"))
                .await
                .status
        }
    }))
    .await;
    let ok = answers.iter().filter(|s| **s == 204).count();
    let refused = answers.iter().filter(|s| **s == 400).count();
    assert_eq!((ok, refused), (1, 49), "{answers:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_a_reset_tells_nothing_about_the_account() {
    let Some(app) = spawn_app_with(TestBackend::Sqlite, |_| {}).await else {
        return;
    };
    let customer = app.customer().await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    let mut bodies = std::collections::BTreeSet::new();
    for i in 0..20 {
        let started = Instant::now();
        let res = ask(&app, &customer.email).await;
        known.push(started.elapsed());
        res.assert_status(202);
        bodies.insert(res.body.to_string());
        let started = Instant::now();
        let res = ask(&app, &format!("no-account-{i}@example.com")).await;
        unknown.push(started.elapsed());
        res.assert_status(202);
        bodies.insert(res.body.to_string());
    }
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    known.sort();
    unknown.sort();
    let (a, b) = (known[10], unknown[10]);
    let gap = a.abs_diff(b);
    assert!(
        gap < Duration::from_millis(50),
        "median {a:?} against {b:?}"
    );
    app.stop().await;
}
