//! Order versions asked for at about the same moment, read in one statement. Customers
//! polling their orders (and the console listing them) each need the order's current
//! version before a kept copy may be shown: one round trip each would make polling cost the
//! database as much as the checkout itself.
//!
//! One reader takes every question waiting when it is free and answers them with one
//! `select ... where order_id in (...)`. A question that arrives while a statement runs
//! waits for the next one, so every answer is read after it was asked: the view is as
//! current as a lookup of its own.

use std::collections::HashMap;

use anyhow::Context as _;
use kernel::id::OrderId;
use platform::db::Database;
use tokio::sync::{mpsc, oneshot};

/// Questions one statement answers at most.
const BATCH: usize = 64;
/// Questions waiting for the reader at most; more wait to be queued.
const WAITING: usize = 1024;

type Answer = oneshot::Sender<Result<Option<i64>, ()>>;

pub(crate) struct Versions {
    db: Database,
    asks: mpsc::Sender<(OrderId, Answer)>,
}

impl Versions {
    /// Starts the reader on the current runtime; it stops once `Versions` is dropped.
    pub(crate) fn start(db: Database) -> Self {
        let (asks, questions) = mpsc::channel(WAITING);
        tokio::spawn(read(db.clone(), questions));
        Self { db, asks }
    }

    /// The order's current version, `None` for an unknown order.
    pub(crate) async fn of(&self, id: OrderId) -> anyhow::Result<Option<i64>> {
        let (answer, answered) = oneshot::channel();
        if self.asks.send((id, answer)).await.is_ok() {
            if let Ok(Ok(version)) = answered.await {
                return Ok(version);
            }
        }
        // The shared statement failed (or its reader is gone): asked alone, the error is
        // this lookup's own (a database outage stays a 503).
        alone(&self.db, id).await
    }
}

async fn alone(db: &Database, id: OrderId) -> anyhow::Result<Option<i64>> {
    let id = id.to_string();
    let found = versions(db, std::slice::from_ref(&id))
        .await
        .context("cannot read order")?;
    Ok(found.get(&id).copied())
}

async fn read(db: Database, mut questions: mpsc::Receiver<(OrderId, Answer)>) {
    let mut batch = Vec::with_capacity(BATCH);
    while questions.recv_many(&mut batch, BATCH).await > 0 {
        let mut ids: Vec<String> = batch.iter().map(|(id, _)| id.to_string()).collect();
        ids.sort_unstable();
        ids.dedup();
        match versions(&db, &ids).await {
            Ok(found) => {
                for (id, answer) in batch.drain(..) {
                    let _ = answer.send(Ok(found.get(&id.to_string()).copied()));
                }
            }
            Err(e) => {
                tracing::debug!(error = %format!("{e:#}"), "order versions: shared lookup failed");
                for (_, answer) in batch.drain(..) {
                    let _ = answer.send(Err(()));
                }
            }
        }
    }
}

async fn versions(db: &Database, ids: &[String]) -> anyhow::Result<HashMap<String, i64>> {
    // Padded to a power of two with the last id, so a handful of statement shapes serve
    // every batch size (each is prepared once per connection).
    let size = ids.len().next_power_of_two();
    let padding = ids.last().into_iter().cycle().take(size - ids.len());
    let ids: Vec<&String> = ids.iter().chain(padding).collect();
    let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "select order_id, version from customer_order where order_id in ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as::<_, (String, i64)>(&sql);
    for id in ids {
        query = query.bind(id);
    }
    Ok(query.fetch_all(db.pool()).await?.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db(dir: &std::path::Path) -> Database {
        let db = Database::connect(&platform::db::DatabaseTarget::Sqlite {
            path: dir.join("versions.db"),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        sqlx::raw_sql(
            "create table customer_order (order_id text primary key, version bigint not null)",
        )
        .execute(db.pool())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        db
    }

    async fn set(db: &Database, id: OrderId, version: i64) {
        sqlx::query("insert into customer_order (order_id, version) values ($1, $2) on conflict (order_id) do update set version = excluded.version")
            .bind(id.to_string())
            .bind(version)
            .execute(db.pool())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[tokio::test]
    async fn questions_asked_together_each_get_their_own_current_answer() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = db(dir.path()).await;
        let known: Vec<OrderId> = (0..70).map(|_| OrderId::new()).collect();
        for (n, id) in known.iter().enumerate() {
            set(&db, *id, n as i64).await;
        }
        let versions = Versions::start(db.clone());
        // More than one statement holds, the same order twice, and orders nobody placed.
        let mut asked: Vec<OrderId> = known.clone();
        asked.push(known[3]);
        asked.extend((0..5).map(|_| OrderId::new()));
        let answers = futures::future::try_join_all(asked.iter().map(|id| versions.of(*id)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for (n, answer) in answers.iter().enumerate() {
            let expected = match n {
                0..=69 => Some(n as i64),
                70 => Some(3),
                _ => None,
            };
            assert_eq!(*answer, expected, "question {n}");
        }
        // An answer is read after it is asked: a change is seen by the next question.
        set(&db, known[0], 41).await;
        assert_eq!(versions.of(known[0]).await.ok().flatten(), Some(41));
    }

    #[tokio::test]
    async fn a_failing_lookup_is_the_askers_own_error() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = db(dir.path()).await;
        let versions = Versions::start(db.clone());
        sqlx::raw_sql("drop table customer_order")
            .execute(db.pool())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let failed = versions.of(OrderId::new()).await;
        assert!(failed.is_err_and(|e| format!("{e:#}").contains("cannot read order")));
    }
}
