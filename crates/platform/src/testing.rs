//! Test support shared by every crate's tests: throwaway databases on both backends.
//!
//! Tests needing a service read its address from the environment (`EMPORIUM_TEST_POSTGRES_URL`,
//! `EMPORIUM_TEST_AMQP_URL`, `EMPORIUM_TEST_SQS_ENDPOINT`). When it is unset they are skipped
//! with a message, except under `CI=true`, where a missing service fails the run.

use std::str::FromStr;

use sqlx::any::AnyConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};

use crate::db::DatabaseTarget;

pub const POSTGRES_URL_VAR: &str = "EMPORIUM_TEST_POSTGRES_URL";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

pub const AMQP_URL_VAR: &str = "EMPORIUM_TEST_AMQP_URL";
pub const SQS_ENDPOINT_VAR: &str = "EMPORIUM_TEST_SQS_ENDPOINT";

/// A test service's address from `var`, or `None` (test skipped, with a message) outside CI.
///
/// # Panics
/// Under `CI=true` when the variable is unset: a missing service must fail CI.
#[allow(clippy::panic)]
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if in_ci() => panic!("{var} must be set when CI=true"),
        _ => {
            eprintln!("skipping test: {var} is not set");
            None
        }
    }
}

/// The admin URL of the test PostgreSQL server (see [`service_url`]).
pub fn postgres_url() -> Option<String> {
    service_url(POSTGRES_URL_VAR)
}

/// The test RabbitMQ broker (see [`service_url`]).
pub fn amqp_url() -> Option<String> {
    service_url(AMQP_URL_VAR)
}

/// The test SNS/SQS endpoint, an emulator (see [`service_url`]).
pub fn sqs_endpoint() -> Option<String> {
    service_url(SQS_ENDPOINT_VAR)
}

/// Creates an empty database on the test server and returns its URL.
pub async fn fresh_postgres_database(admin_url: &str) -> anyhow::Result<String> {
    sqlx::any::install_default_drivers();
    let name = format!("emporium_t_{}", uuid::Uuid::new_v4().simple());
    let options = AnyConnectOptions::from_str(admin_url)?.disable_statement_logging();
    let mut conn = sqlx::AnyConnection::connect_with(&options).await?;
    conn.execute(format!("create database {name}").as_str())
        .await?;
    conn.close().await?;
    let (main, query) = match admin_url.split_once('?') {
        Some((m, q)) => (m, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let host_start = main.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match main[host_start..].find('/') {
        Some(i) => &main[..host_start + i],
        None => main,
    };
    Ok(format!("{base}/{name}{query}"))
}

/// Which backends a test should run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// Where a test context keeps its data; `None` when the backend is not available (skip).
pub async fn test_target(
    backend: TestBackend,
    dir: &std::path::Path,
    context: &str,
) -> Option<DatabaseTarget> {
    match backend {
        TestBackend::Sqlite => Some(DatabaseTarget::Sqlite {
            path: dir.join(format!("{context}.db")),
        }),
        TestBackend::Postgres => {
            let admin = postgres_url()?;
            let url = match fresh_postgres_database(&admin).await {
                Ok(url) => url,
                Err(e) => {
                    if in_ci() {
                        #[allow(clippy::panic)]
                        {
                            panic!("cannot create a test database: {e:#}");
                        }
                    }
                    eprintln!("skipping PostgreSQL test: {e:#}");
                    return None;
                }
            };
            Some(DatabaseTarget::Postgres {
                url,
                schema: context.to_owned(),
            })
        }
    }
}
