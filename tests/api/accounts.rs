//! Accounts a customer can get back into and keep their own: a password reset asked by email,
//! mailed as a link that works once, until it expires or a newer one is asked for, and that
//! ends every session; an email address proved by a mailed link, at sign-up and when it
//! changes; a shop that takes orders only from verified addresses.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use platform::testing::TestBackend;
use serde_json::json;

use crate::helpers::{spawn_app_with, TestApp};

/// Every token mailed to `to` so far in a mail with `subject`, from the link `…{marker}<token>`
/// (the mail drop's `.eml` files, oldest first). The mail drop is in the data directory of
/// whichever process runs notifications.
fn tokens_in_mail(app: &TestApp, to: &str, subject: &str, marker: &str) -> Vec<String> {
    let dirs = [
        app.config.data_dir.join("mail"),
        app.config.data_dir.join("notifications").join("mail"),
    ];
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = dirs
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
                .collect::<Vec<_>>()
        })
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|(_, f)| std::fs::read_to_string(f).ok())
        .filter(|t| {
            t.lines()
                .any(|l| l.to_ascii_lowercase().starts_with("to:") && l.contains(to))
                && t.contains(subject)
        })
        .filter_map(|t| {
            // Quoted-printable: soft line breaks joined, `=3D` is `=`.
            let text = t
                .replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=");
            let start = text.find(marker)? + marker.len();
            let token: String = text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            (!token.is_empty()).then_some(token)
        })
        .collect()
}

/// Waits for `count` mails to `to` with `subject`; their tokens, oldest first.
pub(crate) async fn mailed(
    app: &TestApp,
    to: &str,
    subject: &str,
    marker: &str,
    count: usize,
) -> Vec<String> {
    app.eventually(
        &format!("{count} mail(s) `{subject}` to {to}"),
        30,
        || async {
            let tokens = tokens_in_mail(app, to, subject, marker);
            (tokens.len() >= count).then_some(tokens)
        },
    )
    .await
}

async fn mailed_tokens(app: &TestApp, email: &str, count: usize) -> Vec<String> {
    mailed(
        app,
        email,
        "Reset your password",
        "reset-password?token=",
        count,
    )
    .await
}

pub(crate) async fn verification_links(app: &TestApp, email: &str, count: usize) -> Vec<String> {
    mailed(
        app,
        email,
        "Verify your email address",
        "verify-email?token=",
        count,
    )
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

crate::every_topology!(
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

async fn confirm_address(app: &TestApp, token: &str) -> crate::helpers::Response {
    app.post(
        "/api/v1/identity/email-verifications/confirm",
        None,
        &json!({ "token": token }),
    )
    .await
}

async fn me(app: &TestApp, token: &str) -> serde_json::Value {
    let me = app.get("/api/v1/identity/me", Some(token)).await;
    me.assert_status(200);
    me.body
}

crate::every_topology!(sign_up_mails_a_link_that_verifies_the_address_once, |app| {
    let customer = app.customer().await;
    assert_eq!(
        me(&app, &customer.access_token).await["email_verified"],
        false
    );
    let token = verification_links(&app, &customer.email, 1).await.remove(0);
    assert!(token.len() >= 40, "{token}");
    confirm_address(&app, &token).await.assert_status(204);
    app.eventually("the profile shows the address verified", 10, || async {
        (me(&app, &customer.access_token).await["email_verified"] == true).then_some(())
    })
    .await;
    confirm_address(&app, &token)
        .await
        .assert_problem(400, "identity.verification_token_invalid");
    confirm_address(&app, "never-issued-token")
        .await
        .assert_problem(400, "identity.verification_token_invalid");
    // Nothing is left to verify.
    app.post(
        "/api/v1/identity/email-verifications",
        Some(&customer.access_token),
        &json!({}),
    )
    .await
    .assert_problem(409, "identity.email_already_verified");
    // The customer's messages say a verification mail went out, not what it carried.
    let message = app
        .eventually("the verification mail marked sent", 10, || async {
            let list = app
                .get("/api/v1/notifications/me", Some(&customer.access_token))
                .await;
            list.body["items"].as_array().and_then(|items| {
                items
                    .iter()
                    .find(|m| m["kind"] == "verify_email" && m["status"] == "sent")
                    .cloned()
            })
        })
        .await;
    assert!(!message.to_string().contains(&token), "{message}");
    app.stop().await;
});

crate::both_backends!(
    an_email_change_takes_effect_once_the_new_address_is_verified,
    |app| {
        let customer = app.customer().await;
        let other = app.customer().await;
        let change = |email: String, password: String| {
            let (app, token) = (&app, customer.access_token.clone());
            async move {
                app.post(
                    "/api/v1/identity/me/email",
                    Some(&token),
                    &json!({ "email": email, "password": password }),
                )
                .await
            }
        };
        let new_email = format!("moved-{}@example.com", uuid::Uuid::new_v4().simple());
        change(new_email.clone(), "not-the-password-at-all".into())
            .await
            .assert_problem(403, "identity.wrong_password");
        change(customer.email.clone(), customer.password.clone())
            .await
            .assert_problem(422, "validation_failed");
        change(other.email.clone(), customer.password.clone())
            .await
            .assert_problem(409, "identity.email_taken");
        change(new_email.clone(), customer.password.clone())
            .await
            .assert_status(202);
        // Until the new address is proved, the account keeps the old one.
        assert_eq!(
            me(&app, &customer.access_token).await["email"],
            customer.email.as_str()
        );
        app.log_in(&customer.email, &customer.password)
            .await
            .assert_status(200);
        let first = verification_links(&app, &new_email, 1).await.remove(0);
        // A re-send goes to the new address too, and supersedes the first link.
        app.post(
            "/api/v1/identity/email-verifications",
            Some(&customer.access_token),
            &json!({}),
        )
        .await
        .assert_status(202);
        let links = verification_links(&app, &new_email, 2).await;
        confirm_address(&app, &first)
            .await
            .assert_problem(400, "identity.verification_token_invalid");
        confirm_address(&app, &links[1]).await.assert_status(204);
        // The new address is the account's, verified; the old one no longer logs in.
        app.log_in(&new_email, &customer.password)
            .await
            .assert_status(200);
        app.log_in(&customer.email, &customer.password)
            .await
            .assert_problem(401, "identity.invalid_credentials");
        let profile = me(&app, &customer.access_token).await;
        assert_eq!(profile["email"], new_email.as_str());
        assert_eq!(profile["email_verified"], true);
        // The move ended the sessions held before it, and the old address is told of it.
        app.post(
            "/api/v1/identity/tokens/refresh",
            None,
            &json!({ "refresh_token": customer.refresh_token }),
        )
        .await
        .assert_status(401);
        let told = mailed(
            &app,
            &customer.email,
            "Your account now uses another email address",
            "changed from ",
            1,
        )
        .await;
        assert_eq!(told.len(), 1);
        app.stop().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_to_an_address_taken_meanwhile_changes_nothing_and_still_works_later() {
    let Some(app) = spawn_app_with(TestBackend::Sqlite, |_| {}).await else {
        return;
    };
    let customer = app.customer().await;
    let wanted = format!("wanted-{}@example.com", uuid::Uuid::new_v4().simple());
    app.post(
        "/api/v1/identity/me/email",
        Some(&customer.access_token),
        &json!({ "email": wanted, "password": customer.password }),
    )
    .await
    .assert_status(202);
    let token = verification_links(&app, &wanted, 1).await.remove(0);
    // Someone signs up with the address before the link is opened.
    app.sign_up(&wanted, "someone-else-violet-9", "Someone")
        .await
        .assert_status(201);
    confirm_address(&app, &token)
        .await
        .assert_problem(409, "identity.email_taken");
    assert_eq!(
        me(&app, &customer.access_token).await["email"],
        customer.email.as_str()
    );
    app.stop().await;
}

/// A shop that requires verified addresses: ordering refuses the checkout until identity's
/// event tells it the address is verified (split topology: a process each, over RabbitMQ).
async fn verified_addresses_gate_the_checkout(app: crate::helpers::TestApp) {
    let admin = app.admin().await;
    let product = app
        .sellable(&admin.access_token, "VERIFY-1", 1500, 10)
        .await;
    let customer = app.customer().await;
    app.add_to_cart(&customer.access_token, &product, 1)
        .await
        .assert_status(200);
    app.checkout(&customer.access_token, "tok_visa", None)
        .await
        .assert_problem(403, "ordering.email_unverified");
    let token = verification_links(&app, &customer.email, 1).await.remove(0);
    confirm_address(&app, &token).await.assert_status(204);
    let placed = app
        .eventually("ordering hears the address is verified", 30, || async {
            let placed = app.checkout(&customer.access_token, "tok_visa", None).await;
            (placed.status == 202).then_some(placed)
        })
        .await;
    let order = placed.body["id"].as_str().unwrap_or_default().to_owned();
    app.order_reaches(&customer.access_token, &order, "confirmed")
        .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_requiring_verified_addresses_takes_orders_once_verified() {
    let Some(app) = spawn_app_with(TestBackend::Sqlite, |c| c.require_verified_email = true).await
    else {
        return;
    };
    verified_addresses_gate_the_checkout(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_requiring_verified_addresses_takes_orders_once_verified_on_split() {
    let Some(app) = crate::split::spawn_split_with(
        crate::split::Broker::Rabbitmq,
        &[("EMPORIUM_REQUIRE_VERIFIED_EMAIL", "true")],
    )
    .await
    else {
        return;
    };
    verified_addresses_gate_the_checkout(app).await;
}
