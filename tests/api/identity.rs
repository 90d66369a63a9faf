//! Identity through HTTP: sign-up, log-in, tokens (and forgeries), refresh rotation, roles,
//! and the order-history projection.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::both_backends;
use crate::helpers::TestApp;

both_backends!(sign_up_validates_every_field_and_normalises_email, |app| {
    let res = app.sign_up("not-an-email", "short", "").await;
    res.assert_problem(422, "validation_failed");
    let fields = res.error_fields();
    assert_eq!(fields, vec!["email", "name", "password"]);
    app.sign_up("ada@example.com", "Password1234", "Ada")
        .await
        .assert_problem(422, "validation_failed");
    app.sign_up("ada@example.com", &"x".repeat(129), "Ada")
        .await
        .assert_problem(422, "validation_failed");
    app.post(
        "/api/v1/identity/users",
        None,
        &json!({"email": 5, "password": "x", "name": "A"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.post_raw(
        "/api/v1/identity/users",
        None,
        "application/json",
        b"{not json".to_vec(),
    )
    .await
    .assert_problem(400, "malformed_json");
    app.post_raw(
        "/api/v1/identity/users",
        None,
        "text/plain",
        b"hello".to_vec(),
    )
    .await
    .assert_problem(415, "unsupported_media_type");

    let created = app
        .sign_up("  Ada@Example.COM ", "plum-anchor-violet-42", " Ada ")
        .await;
    created.assert_status(201);
    assert_eq!(created.body["email"], "ada@example.com");
    assert_eq!(created.body["name"], "Ada");
    assert_eq!(created.body["roles"], json!(["customer"]));
    assert!(created.body.get("password_hash").is_none());
    app.sign_up("ADA@example.com", "another-strong-pass-7", "Ada 2")
        .await
        .assert_problem(409, "identity.email_taken");
    app.stop().await;
});

both_backends!(log_in_gives_tokens_and_wrong_credentials_do_not, |app| {
    let c = app.customer().await;
    let res = app.log_in(&c.email.to_uppercase(), &c.password).await;
    res.assert_status(200);
    assert_eq!(res.body["token_type"], "Bearer");
    assert_eq!(res.body["expires_in"], 900);
    assert_eq!(res.header("cache-control").as_deref(), Some("no-store"));
    app.log_in(&c.email, "wrong-password-123")
        .await
        .assert_problem(401, "identity.invalid_credentials");
    // Unknown accounts are indistinguishable from wrong passwords.
    app.log_in("nobody@example.com", "wrong-password-123")
        .await
        .assert_problem(401, "identity.invalid_credentials");
    let me = app.get("/api/v1/identity/me", Some(&c.access_token)).await;
    me.assert_status(200);
    assert_eq!(me.body["id"], c.id.as_str());
    app.stop().await;
});

both_backends!(repeated_failures_are_rate_limited_per_account, |app| {
    let c = app.customer().await;
    for _ in 0..5 {
        app.log_in(&c.email, "wrong-password-123")
            .await
            .assert_problem(401, "identity.invalid_credentials");
    }
    let blocked = app.log_in(&c.email, &c.password).await;
    blocked.assert_problem(429, "identity.too_many_attempts");
    let retry: u64 = blocked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry));
    // Another account from the same address is not blocked by this one's failures.
    let other = app.customer().await;
    app.log_in(&other.email, &other.password)
        .await
        .assert_status(200);
    app.stop().await;
});

fn sign(key_pem: &str, header: Header, claims: &serde_json::Value) -> String {
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(key_pem).unwrap();
    let der = key.to_pkcs8_der().unwrap();
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
}

async fn kid(app: &TestApp) -> String {
    let jwks = app.get("/.well-known/jwks.json", None).await;
    jwks.assert_status(200);
    assert_eq!(jwks.body["keys"][0]["kty"], "OKP");
    assert_eq!(jwks.body["keys"][0]["alg"], "EdDSA");
    jwks.body["keys"][0]["kid"].as_str().unwrap().to_owned()
}

fn claims(sub: &str, exp_offset: i64, aud: &str) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": "emporium", "aud": aud, "sub": sub, "roles": ["customer", "admin"], "iat": now, "exp": now + exp_offset, "jti": "t"})
}

both_backends!(forged_tokens_are_rejected, |app| {
    let c = app.customer().await;
    let kid = kid(&app).await;
    let pem = app.signing_key_pem();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.clone());

    // Control: the real key with good claims is accepted (so the rejections below mean something).
    let good = sign(&pem, header.clone(), &claims(&c.id, 300, "emporium-api"));
    app.get("/api/v1/identity/me", Some(&good))
        .await
        .assert_status(200);

    // Payload changed after signing: roles escalated.
    let parts: Vec<&str> = c.access_token.split('.').collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["roles"] = json!(["customer", "admin"]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    app.get("/api/v1/identity/users", Some(&tampered))
        .await
        .assert_problem(401, "unauthorized");

    // alg: none.
    let none_header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    let unsigned = format!(
        "{none_header}.{}.",
        URL_SAFE_NO_PAD.encode(claims(&c.id, 300, "emporium-api").to_string())
    );
    app.get("/api/v1/identity/me", Some(&unsigned))
        .await
        .assert_problem(401, "unauthorized");

    // HS256 signed with the public key (algorithm confusion).
    let jwks = app.get("/.well-known/jwks.json", None).await;
    let public_x = jwks.body["keys"][0]["x"].as_str().unwrap().to_owned();
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(kid.clone());
    for secret in [
        public_x.as_bytes().to_vec(),
        URL_SAFE_NO_PAD.decode(&public_x).unwrap(),
        jwks.body.to_string().into_bytes(),
    ] {
        let confused = jsonwebtoken::encode(
            &hs,
            &claims(&c.id, 300, "emporium-api"),
            &EncodingKey::from_secret(&secret),
        )
        .unwrap();
        app.get("/api/v1/identity/me", Some(&confused))
            .await
            .assert_problem(401, "unauthorized");
    }

    // Expired, and for another audience, with the real key.
    let expired = sign(&pem, header.clone(), &claims(&c.id, -120, "emporium-api"));
    app.get("/api/v1/identity/me", Some(&expired))
        .await
        .assert_problem(401, "unauthorized");
    let wrong_aud = sign(&pem, header.clone(), &claims(&c.id, 300, "someone-else"));
    app.get("/api/v1/identity/me", Some(&wrong_aud))
        .await
        .assert_problem(401, "unauthorized");

    // Signed by another Ed25519 key under the real kid.
    let other = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let other_pem = other
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .unwrap();
    let foreign = sign(&other_pem, header, &claims(&c.id, 300, "emporium-api"));
    app.get("/api/v1/identity/me", Some(&foreign))
        .await
        .assert_problem(401, "unauthorized");
    app.stop().await;
});

both_backends!(refresh_rotates_and_reuse_revokes_the_family, |app| {
    let c = app.customer().await;
    let first = app
        .post(
            "/api/v1/identity/tokens/refresh",
            None,
            &json!({"refresh_token": c.refresh_token}),
        )
        .await;
    first.assert_status(200);
    let second_token = first.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_token, c.refresh_token);
    let second = app
        .post(
            "/api/v1/identity/tokens/refresh",
            None,
            &json!({"refresh_token": second_token}),
        )
        .await;
    second.assert_status(200);
    let third_token = second.body["refresh_token"].as_str().unwrap().to_owned();

    // The first token is presented again: reuse. The whole family dies, including the newest.
    app.post(
        "/api/v1/identity/tokens/refresh",
        None,
        &json!({"refresh_token": c.refresh_token}),
    )
    .await
    .assert_problem(401, "identity.refresh_token_reused");
    app.post(
        "/api/v1/identity/tokens/refresh",
        None,
        &json!({"refresh_token": third_token}),
    )
    .await
    .assert_status(401);
    app.post(
        "/api/v1/identity/tokens/refresh",
        None,
        &json!({"refresh_token": "made-up"}),
    )
    .await
    .assert_problem(401, "identity.invalid_refresh_token");

    // Revoke (log out) ends a session; another log-in is unaffected.
    let fresh = app.log_in(&c.email, &c.password).await;
    let other = app.log_in(&c.email, &c.password).await;
    let fresh_refresh = fresh.body["refresh_token"].as_str().unwrap();
    app.post(
        "/api/v1/identity/tokens/revoke",
        None,
        &json!({"refresh_token": fresh_refresh}),
    )
    .await
    .assert_status(204);
    app.post(
        "/api/v1/identity/tokens/refresh",
        None,
        &json!({"refresh_token": fresh_refresh}),
    )
    .await
    .assert_status(401);
    app.post(
        "/api/v1/identity/tokens/refresh",
        None,
        &json!({"refresh_token": other.body["refresh_token"]}),
    )
    .await
    .assert_status(200);
    app.stop().await;
});

both_backends!(roles_gate_the_admin_endpoints, |app| {
    let c = app.customer().await;
    app.get("/api/v1/identity/users", Some(&c.access_token))
        .await
        .assert_problem(403, "forbidden");
    app.put(
        &format!("/api/v1/identity/users/{}/roles", c.id),
        Some(&c.access_token),
        &json!({"roles": ["admin"]}),
    )
    .await
    .assert_problem(403, "forbidden");
    let boss = app.bootstrap_admin_token().await;
    let users = app.get("/api/v1/identity/users?limit=1", Some(&boss)).await;
    users.assert_status(200);
    assert_eq!(users.body["items"].as_array().unwrap().len(), 1);
    let next = users.body["next_cursor"].as_str().unwrap();
    let page2 = app
        .get(
            &format!("/api/v1/identity/users?limit=1&cursor={next}"),
            Some(&boss),
        )
        .await;
    page2.assert_status(200);
    assert_ne!(page2.body["items"][0]["id"], users.body["items"][0]["id"]);
    app.get("/api/v1/identity/users?cursor=garbage", Some(&boss))
        .await
        .assert_problem(400, "invalid_cursor");
    app.get("/api/v1/identity/users?limit=0", Some(&boss))
        .await
        .assert_problem(422, "validation_failed");
    app.put(
        &format!("/api/v1/identity/users/{}/roles", c.id),
        Some(&boss),
        &json!({"roles": ["emperor"]}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.put(
        &format!("/api/v1/identity/users/{}/roles", uuid::Uuid::now_v7()),
        Some(&boss),
        &json!({"roles": ["admin"]}),
    )
    .await
    .assert_problem(404, "identity.user_not_found");
    app.put(
        "/api/v1/identity/users/not-a-uuid/roles",
        Some(&boss),
        &json!({"roles": ["admin"]}),
    )
    .await
    .assert_problem(400, "invalid_path");
    let promoted = app
        .put(
            &format!("/api/v1/identity/users/{}/roles", c.id),
            Some(&boss),
            &json!({"roles": ["admin"]}),
        )
        .await;
    promoted.assert_status(200);
    assert_eq!(promoted.body["roles"], json!(["admin", "customer"]));
    // The role reaches the next access token (after refresh), not the current one.
    app.get("/api/v1/identity/users", Some(&c.access_token))
        .await
        .assert_status(403);
    let refreshed = app
        .post(
            "/api/v1/identity/tokens/refresh",
            None,
            &json!({"refresh_token": c.refresh_token}),
        )
        .await;
    let token = refreshed.body["access_token"].as_str().unwrap();
    app.get("/api/v1/identity/users", Some(token))
        .await
        .assert_status(200);
    app.stop().await;
});

both_backends!(profile_updates_name_and_default_address, |app| {
    let c = app.customer().await;
    let address = json!({"name": "Ada", "line1": "12 Market St", "city": "Berlin", "postal_code": "10115", "country": "de"});
    let res = app
        .patch(
            "/api/v1/identity/me",
            Some(&c.access_token),
            &json!({"name": "Ada L.", "default_shipping_address": address}),
        )
        .await;
    res.assert_status(200);
    assert_eq!(res.body["name"], "Ada L.");
    assert_eq!(res.body["default_shipping_address"]["country"], "DE");
    let bad = app
        .patch("/api/v1/identity/me", Some(&c.access_token), &json!({"default_shipping_address": {"name": "A", "line1": "x", "city": "y", "postal_code": "1", "country": "ZZ"}}))
        .await;
    bad.assert_problem(422, "validation_failed");
    assert_eq!(
        bad.body["errors"][0]["field"],
        "default_shipping_address.country"
    );
    app.patch(
        "/api/v1/identity/me",
        Some(&c.access_token),
        &json!({"name": "   "}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.patch(
        "/api/v1/identity/me",
        Some(&c.access_token),
        &json!({"email": "x@y.z"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    let cleared = app
        .patch(
            "/api/v1/identity/me",
            Some(&c.access_token),
            &json!({"default_shipping_address": null}),
        )
        .await;
    cleared.assert_status(200);
    assert!(cleared.body["default_shipping_address"].is_null());
    assert_eq!(cleared.body["name"], "Ada L.");
    app.get("/api/v1/identity/me", None)
        .await
        .assert_problem(401, "unauthorized");
    app.stop().await;
});

fn envelope<E: kernel::IntegrationEvent>(event: &E) -> bus::Envelope {
    bus::Envelope::wrap(event, kernel::Timestamp::now(), &bus::Causation::system()).unwrap()
}

both_backends!(order_history_follows_events_in_any_order_and_once, |app| {
    use kernel::id::{OrderId, ShipmentId, UserId};
    use ordering_contracts::{OrderPlaced, OrderStatus, OrderStatusChanged};
    use shipping_contracts::{ShipmentCreated, ShipmentDelivered};

    let c = app.customer().await;
    let other = app.customer().await;
    let customer = UserId::parse(&c.id).unwrap();
    let order = OrderId::new();
    let total: kernel::Money =
        serde_json::from_value(json!({"amount": 4200, "currency": "EUR"})).unwrap();
    let placed_at = kernel::Timestamp::now();
    let address =
        kernel::address::PostalAddress::parse("Ada", "1 Main St", None, "Berlin", "10115", "DE")
            .unwrap();
    let status = |s: OrderStatus| OrderStatusChanged {
        order_id: order,
        customer_id: customer,
        status: s,
        total,
        placed_at,
        cancellation_reason: None,
        tracking_number: None,
        changed_at: kernel::Timestamp::now(),
    };

    // The shipment is created before ordering's own events arrive: nothing shows yet.
    let created = envelope(&ShipmentCreated {
        shipment_id: ShipmentId::new(),
        order_id: order,
        customer_id: customer,
        carrier: "EMP".into(),
        tracking_number: "EMP123".into(),
        created_at: kernel::Timestamp::now(),
    });
    app.bus.publish(&created).await.unwrap();
    let listed = app
        .get("/api/v1/identity/me/orders", Some(&c.access_token))
        .await;
    assert_eq!(listed.body["items"], json!([]));

    app.bus
        .publish(&envelope(&OrderPlaced {
            order_id: order,
            customer_id: customer,
            lines: vec![],
            total,
            totals: None,
            shipping_address: address,
            placed_at,
        }))
        .await
        .unwrap();
    let paid = envelope(&status(OrderStatus::Paid));
    app.bus.publish(&paid).await.unwrap();
    // A late "pending" does not move the order back; a duplicate changes nothing.
    app.bus
        .publish(&envelope(&status(OrderStatus::Pending)))
        .await
        .unwrap();
    app.bus.publish(&created).await.unwrap();
    let listed = app
        .get("/api/v1/identity/me/orders", Some(&c.access_token))
        .await;
    listed.assert_status(200);
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", listed.body);
    assert_eq!(items[0]["order_id"], order.to_string());
    assert_eq!(items[0]["status"], "confirmed");
    assert_eq!(items[0]["tracking_number"], "EMP123");
    assert_eq!(
        items[0]["total"],
        json!({"amount": 4200, "currency": "EUR"})
    );

    app.bus
        .publish(&envelope(&ShipmentDelivered {
            shipment_id: ShipmentId::new(),
            order_id: order,
            customer_id: customer,
            tracking_number: "EMP123".into(),
            delivered_at: kernel::Timestamp::now(),
        }))
        .await
        .unwrap();
    let listed = app
        .get("/api/v1/identity/me/orders", Some(&c.access_token))
        .await;
    assert_eq!(listed.body["items"][0]["status"], "delivered");

    // Someone else's history does not include it.
    let theirs = app
        .get("/api/v1/identity/me/orders", Some(&other.access_token))
        .await;
    assert_eq!(theirs.body["items"], json!([]));
    app.stop().await;
});

fn fresh_key() -> String {
    ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng)
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .unwrap()
        .to_string()
}

both_backends!(a_rotated_signing_key_keeps_earlier_tokens_valid, |app| {
    let c = app.customer().await;
    let old_kid = kid(&app).await;
    // The same deployment restarts with a new configured key.
    let rotated = app
        .second_instance_with(|cfg| cfg.jwt_private_key = Some(fresh_key()))
        .await;
    let jwks = rotated.get("/.well-known/jwks.json", None).await;
    let kids: Vec<&str> = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids.len(),
        2,
        "new and previous key are published: {kids:?}"
    );
    assert!(kids.contains(&old_kid.as_str()));
    // A token signed with the previous key still works; new tokens use the new key.
    rotated
        .get("/api/v1/identity/me", Some(&c.access_token))
        .await
        .assert_status(200);
    let fresh = rotated.log_in(&c.email, &c.password).await;
    let token = fresh.body["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_ne!(header.kid.as_deref(), Some(old_kid.as_str()));
    rotated
        .get("/api/v1/identity/me", Some(token))
        .await
        .assert_status(200);
    // A misconfigured key is refused at start-up with the variable's name.
    let bad = emporium::Application::build_with_bus(
        {
            let mut cfg = app.config.clone();
            cfg.jwt_private_key = Some("not a key".to_owned());
            cfg
        },
        app.bus.clone(),
    )
    .await;
    let message = bad.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(message.contains("EMPORIUM_JWT_PRIVATE_KEY"), "{message}");
    rotated.stop().await;
    app.stop().await;
});

/// Fails `n` log-ins for unknown accounts, each claiming `X-Forwarded-For: xff(i)`.
async fn fail_log_ins(app: &TestApp, n: usize, xff: impl Fn(usize) -> String) {
    for i in 0..n {
        let forwarded = xff(i);
        app.request(
            reqwest::Method::POST,
            "/api/v1/identity/tokens",
            None,
            Some(&json!({"email": format!("ghost-{i}@example.com"), "password": "wrong-password-123"})),
            &[("x-forwarded-for", forwarded.as_str())],
        )
        .await
        .assert_problem(401, "identity.invalid_credentials");
    }
}

async fn log_in_from(app: &TestApp, c: &crate::helpers::Customer, xff: &str) -> u16 {
    app.request(
        reqwest::Method::POST,
        "/api/v1/identity/tokens",
        None,
        Some(&json!({"email": c.email, "password": c.password})),
        &[("x-forwarded-for", xff)],
    )
    .await
    .status
}

both_backends!(
    a_client_cannot_dodge_the_address_limit_with_x_forwarded_for,
    |app| {
        let c = app.customer().await;
        // No trusted proxy: the header is ignored, so rotating it does not help.
        fail_log_ins(&app, 50, |i| format!("203.0.113.{i}")).await;
        assert_eq!(log_in_from(&app, &c, "198.51.100.1").await, 429);
        app.stop().await;
    }
);

both_backends!(
    behind_a_trusted_proxy_each_client_address_is_limited_alone,
    |app| {
        let proxied = app
            .second_instance_with(|c| {
                c.trusted_proxies =
                    platform::client_ip::TrustedProxies::parse("127.0.0.1").unwrap_or_default();
            })
            .await;
        let c = proxied.customer().await;
        // The proxy appends the real address; what the client wrote further left is not believed.
        fail_log_ins(&proxied, 50, |_| "1.1.1.1, 203.0.113.7".to_owned()).await;
        assert_eq!(log_in_from(&proxied, &c, "203.0.113.7").await, 429);
        assert_eq!(log_in_from(&proxied, &c, "9.9.9.9, 203.0.113.7").await, 429);
        // Another client behind the same proxy is not locked out by the first one's failures.
        assert_eq!(
            log_in_from(&proxied, &c, "1.1.1.1, 198.51.100.1").await,
            200
        );
        proxied.stop().await;
        app.stop().await;
    }
);
