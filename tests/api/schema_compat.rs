//! Expand, then contract: the previous release keeps running against the new schema during a
//! rolling, blue-green or canary release. `migrations/previous_release.json` lists, per
//! context, the tables and columns the previous release's code reads and writes; after the
//! current migrations every one of them must still exist, and every column that must be
//! given (NOT NULL without a default) must be one the previous release writes.
//!
//! When a release ships, bless its schema as the next one's baseline:
//! `EMPORIUM_BLESS=1 cargo test --test api previous_release` rewrites the file.

use std::collections::BTreeMap;

use emporium::config::{Config, ContextName};
use platform::testing::{fresh_postgres_database, postgres_url, TestBackend};
use sqlx::Row;

type Schema = BTreeMap<String, BTreeMap<String, Vec<String>>>;

const BASELINE: &str = "migrations/previous_release.json";

/// (table, column, must be given) of every table of one migrated context database.
async fn columns(db: &platform::db::Database) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    if db.backend() == platform::db::Backend::Postgres {
        let rows = sqlx::query(
            "select table_name::text as t, column_name::text as c, \
             (is_nullable = 'NO' and column_default is null)::int as required \
             from information_schema.columns where table_schema = current_schema() \
             and table_name not like '\\_sqlx%' order by 1, ordinal_position",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        for r in rows {
            out.push((r.get("t"), r.get("c"), r.get::<i32, _>("required") == 1));
        }
    } else {
        let tables: Vec<String> = sqlx::query_scalar(
            "select name from sqlite_master where type = 'table' and name not like '\\_sqlx%' escape '\\' and name not like 'sqlite%' order by name",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        for t in tables {
            let rows = sqlx::query(&format!(
                "select name, \"notnull\" as nn, dflt_value, pk from pragma_table_info('{t}')"
            ))
            .fetch_all(db.pool())
            .await
            .unwrap();
            for r in rows {
                let not_null: i64 = r.get("nn");
                let default: Option<String> = r.get("dflt_value");
                let pk: i64 = r.get("pk");
                out.push((
                    t.clone(),
                    r.get("name"),
                    (not_null == 1 || pk > 0) && default.is_none(),
                ));
            }
        }
    }
    out
}

async fn migrated(backend: TestBackend, ctx: ContextName) -> Option<platform::db::Database> {
    let dir = tempfile::tempdir().ok()?;
    let mut config = Config::local(dir.path().to_path_buf());
    if backend == TestBackend::Postgres {
        config.database_url = Some(fresh_postgres_database(&postgres_url()?).await.unwrap());
    }
    let db = emporium::contexts::open_database(&config, ctx)
        .await
        .unwrap();
    std::mem::forget(dir);
    Some(db)
}

async fn check(backend: TestBackend) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(BASELINE);
    let baseline: Schema = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut now: Schema = BTreeMap::new();
    let mut problems = Vec::new();
    for ctx in ContextName::ALL {
        let Some(db) = migrated(backend, ctx).await else {
            return;
        };
        let live = columns(&db).await;
        for (t, c, _) in &live {
            now.entry(ctx.as_str().into())
                .or_default()
                .entry(t.clone())
                .or_default()
                .push(c.clone());
        }
        let Some(before) = baseline.get(ctx.as_str()) else {
            // A context the previous release did not have: nothing of it can break.
            continue;
        };
        for (table, cols) in before {
            // What the previous release selects still reads.
            let probe = format!("select {} from {table} where 1 = 0", cols.join(", "));
            if let Err(e) = sqlx::query(&probe).fetch_all(db.pool()).await {
                problems.push(format!("{}: {probe}: {e}", ctx.as_str()));
            }
        }
        for (table, column, required) in &live {
            let Some(old) = before.get(table) else {
                continue;
            };
            if *required && !old.contains(column) {
                problems.push(format!(
                    "{}: {table}.{column} is NOT NULL without a default, and the previous release does not write it",
                    ctx.as_str()
                ));
            }
        }
    }
    if std::env::var("EMPORIUM_BLESS").is_ok() && backend == TestBackend::Sqlite {
        std::fs::write(&path, serde_json::to_string_pretty(&now).unwrap() + "\n").unwrap();
        return;
    }
    assert!(
        problems.is_empty(),
        "the previous release would break:\n{}",
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_release_still_runs_on_sqlite_after_the_migrations() {
    check(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_release_still_runs_on_postgres_after_the_migrations() {
    check(TestBackend::Postgres).await;
}
