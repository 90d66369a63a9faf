//! The address book: at most 20 addresses per customer, one default, each customer's own; a
//! checkout ships to a saved address by id and keeps its own copy of it.

use serde_json::{json, Value};

use crate::helpers::TestApp;

fn street(n: usize) -> Value {
    json!({"name": "Ada Lovelace", "line1": format!("{n} Market Street"), "city": "Berlin", "postal_code": "10115", "country": "DE"})
}

async fn save(app: &TestApp, token: &str, body: &Value) -> crate::helpers::Response {
    app.post("/api/v1/identity/me/addresses", Some(token), body)
        .await
}

async fn book(app: &TestApp, token: &str) -> Vec<Value> {
    let list = app.get("/api/v1/identity/me/addresses", Some(token)).await;
    list.assert_status(200);
    list.body["items"].as_array().cloned().unwrap_or_default()
}

fn defaults(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter(|a| a["is_default"] == true)
        .map(|a| {
            a["address"]["line1"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

crate::both_backends!(
    an_address_book_holds_twenty_with_one_default_and_is_its_owners_alone,
    |app| {
        let ada = app.customer().await;
        let eve = app.customer().await;
        let t = ada.access_token.as_str();
        let first = save(&app, t, &json!({"address": street(1)})).await;
        first.assert_status(201);
        assert_eq!(first.body["is_default"], true, "the first is the default");
        let first_id = first.body["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(
            first.header("location").as_deref(),
            Some(format!("/api/v1/identity/me/addresses/{first_id}").as_str())
        );
        let second = save(&app, t, &json!({"address": street(2), "is_default": true})).await;
        second.assert_status(201);
        let second_id = second.body["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(defaults(&book(&app, t).await), ["2 Market Street"]);
        // A change replaces what it names; the default moves back.
        let changed = app
            .patch(
                &format!("/api/v1/identity/me/addresses/{first_id}"),
                Some(t),
                &json!({"address": street(11), "is_default": true}),
            )
            .await;
        changed.assert_status(200);
        assert_eq!(changed.body["address"]["line1"], "11 Market Street");
        assert_eq!(defaults(&book(&app, t).await), ["11 Market Street"]);
        // Bad input is a field error, and changes nothing.
        let mut bad = street(3);
        bad["country"] = json!("XX");
        save(&app, t, &json!({"address": bad}))
            .await
            .assert_status(422);
        // Another customer's address does not exist for Eve, to read, change or remove.
        assert!(book(&app, &eve.access_token).await.is_empty());
        app.patch(
            &format!("/api/v1/identity/me/addresses/{first_id}"),
            Some(&eve.access_token),
            &json!({"is_default": false}),
        )
        .await
        .assert_problem(404, "identity.address_not_found");
        app.delete(
            &format!("/api/v1/identity/me/addresses/{second_id}"),
            Some(&eve.access_token),
        )
        .await
        .assert_problem(404, "identity.address_not_found");
        assert_eq!(book(&app, t).await.len(), 2);
        // Twenty at most.
        for n in 3..=20 {
            save(&app, t, &json!({"address": street(n)}))
                .await
                .assert_status(201);
        }
        save(&app, t, &json!({"address": street(21)}))
            .await
            .assert_problem(409, "identity.address_book_full");
        // Removing the default leaves none; a removed address is gone.
        app.delete(
            &format!("/api/v1/identity/me/addresses/{first_id}"),
            Some(t),
        )
        .await
        .assert_status(204);
        app.delete(
            &format!("/api/v1/identity/me/addresses/{first_id}"),
            Some(t),
        )
        .await
        .assert_problem(404, "identity.address_not_found");
        let items = book(&app, t).await;
        assert_eq!(items.len(), 19);
        assert!(defaults(&items).is_empty());
        save(&app, t, &json!({"address": street(21)}))
            .await
            .assert_status(201);
        app.get("/api/v1/identity/me/addresses", None)
            .await
            .assert_status(401);
        app.stop().await;
    }
);

crate::every_topology!(
    a_checkout_ships_to_a_saved_address_and_keeps_its_own_copy,
    |app| {
        let admin = app.admin().await;
        let product = app.sellable(&admin.access_token, "BOOK-1", 1200, 10).await;
        let ada = app.customer().await;
        let eve = app.customer().await;
        let saved = save(&app, &ada.access_token, &json!({"address": street(7)})).await;
        saved.assert_status(201);
        let id = saved.body["id"].as_str().unwrap_or_default().to_owned();
        let eves = save(&app, &eve.access_token, &json!({"address": street(9)})).await;
        let eves_id = eves.body["id"].as_str().unwrap_or_default().to_owned();
        app.add_to_cart(&ada.access_token, &product, 1)
            .await
            .assert_status(200);
        let checkout = |body: Value| {
            let (app, token) = (&app, ada.access_token.clone());
            async move {
                app.post("/api/v1/ordering/orders", Some(&token), &body)
                    .await
            }
        };
        // Exactly one of the address and its id.
        let both = checkout(json!({"shipping_address": street(1), "shipping_address_id": id, "payment_token": "tok_visa"})).await;
        both.assert_problem(422, "validation_failed");
        assert_eq!(both.error_fields(), ["shipping_address_id"]);
        let neither = checkout(json!({"payment_token": "tok_visa"})).await;
        neither.assert_problem(422, "validation_failed");
        assert_eq!(neither.error_fields(), ["shipping_address"]);
        // Another customer's saved address is not in Ada's book, however long one waits. Eve's
        // book reaching ordering is seen from her own checkout.
        app.add_to_cart(&eve.access_token, &product, 1)
            .await
            .assert_status(200);
        app.eventually("ordering knows Eve's address", 30, || async {
            let placed = app
                .post(
                    "/api/v1/ordering/orders",
                    Some(&eve.access_token),
                    &json!({"shipping_address_id": eves_id, "payment_token": "tok_visa"}),
                )
                .await;
            (placed.status == 202).then_some(())
        })
        .await;
        let not_mine =
            checkout(json!({"shipping_address_id": eves_id, "payment_token": "tok_visa"})).await;
        not_mine.assert_problem(422, "validation_failed");
        assert_eq!(not_mine.error_fields(), ["shipping_address_id"]);
        let placed = app
            .eventually("ordering knows Ada's address", 30, || async {
                let placed =
                    checkout(json!({"shipping_address_id": id, "payment_token": "tok_visa"})).await;
                (placed.status == 202).then_some(placed)
            })
            .await;
        assert_eq!(placed.body["shipping_address"]["line1"], "7 Market Street");
        assert_eq!(placed.body["shipping_address"]["country"], "DE");
        let order = placed.body["id"].as_str().unwrap_or_default().to_owned();
        // Changing the saved address later does not move the order.
        app.patch(
            &format!("/api/v1/identity/me/addresses/{id}"),
            Some(&ada.access_token),
            &json!({"address": street(8)}),
        )
        .await
        .assert_status(200);
        let confirmed = app
            .order_reaches(&ada.access_token, &order, "confirmed")
            .await;
        assert_eq!(confirmed["shipping_address"]["line1"], "7 Market Street");
        app.stop().await;
    }
);
