//! Database access for both backends through one code path (`sqlx::Any`).
//!
//! SQLite: one file per context under the data dir, WAL, busy timeout, foreign keys.
//! PostgreSQL: one schema per context (`search_path` is set on every connection), so each
//! context keeps its own tables and its own migration history, and can move to its own
//! database by changing only its URL.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, ConnectOptions, Connection, Executor, Transaction};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where one context keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    Sqlite { path: PathBuf },
    Postgres { url: String, schema: String },
}

impl DatabaseTarget {
    /// Resolves a context's target: its own URL if given, else the shared URL, else SQLite.
    pub fn resolve(context: &str, data_dir: &std::path::Path, url: Option<&str>) -> Self {
        match url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Self::Postgres {
                    url: url.to_owned(),
                    schema: context.to_owned(),
                }
            }
            Some(url) => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                Self::Sqlite {
                    path: PathBuf::from(path),
                }
            }
            None => Self::Sqlite {
                path: data_dir.join(format!("{context}.db")),
            },
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite { .. } => Backend::Sqlite,
            Self::Postgres { .. } => Backend::Postgres,
        }
    }

    /// A description without credentials, for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite { path } => format!("sqlite {}", path.display()),
            Self::Postgres { url, schema } => {
                let host = url.rsplit('@').next().unwrap_or("?");
                format!("postgres {host} schema {schema}")
            }
        }
    }
}

/// A context's connection pool, aware of its backend.
#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
}

fn valid_schema_name(schema: &str) -> bool {
    !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit())
}

impl Database {
    pub async fn connect(target: &DatabaseTarget) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        match target {
            DatabaseTarget::Sqlite { path } => Self::connect_sqlite(path).await,
            DatabaseTarget::Postgres { url, schema } => Self::connect_postgres(url, schema).await,
        }
    }

    async fn connect_sqlite(path: &std::path::Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create data directory {}", dir.display()))?;
        }
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let options = AnyConnectOptions::from_str(&url)
            .context("invalid SQLite path")?
            .disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open SQLite database {}", path.display()))?;
        Ok(Self {
            pool,
            backend: Backend::Sqlite,
        })
    }

    async fn connect_postgres(url: &str, schema: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(valid_schema_name(schema), "invalid schema name {schema:?}");
        let options = AnyConnectOptions::from_str(url)
            .context("invalid PostgreSQL URL")?
            .disable_statement_logging();
        {
            let mut conn = sqlx::AnyConnection::connect_with(&options)
                .await
                .context("cannot connect to PostgreSQL")?;
            // Two processes may create the schema at once; the loser's error is harmless.
            if let Err(e) = conn
                .execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str())
                .await
            {
                let exists: Option<i64> = sqlx::query_scalar(
                    "SELECT 1::bigint FROM information_schema.schemata WHERE schema_name = $1",
                )
                .bind(schema)
                .fetch_optional(&mut conn)
                .await?;
                if exists.is_none() {
                    return Err(e).context("cannot create schema");
                }
            }
            conn.close().await.ok();
        }
        let set_path = format!("SET search_path TO {schema}");
        let pool = AnyPoolOptions::new()
            .max_connections(10)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5))
            .test_before_acquire(false)
            .max_lifetime(Duration::from_secs(30 * 60))
            .after_connect(move |conn, _meta| {
                let set_path = set_path.clone();
                Box::pin(async move {
                    conn.execute(set_path.as_str()).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("cannot connect to PostgreSQL")?;
        Ok(Self {
            pool,
            backend: Backend::Postgres,
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the context's migrations (each context has its own history).
    pub async fn migrate(&self, migrator: &Migrator) -> anyhow::Result<()> {
        migrator.run(&self.pool).await.context("migration failed")?;
        Ok(())
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads before writing fails with
    /// SQLITE_BUSY when another writer commits in between, whatever the busy timeout.
    pub async fn begin(&self) -> anyhow::Result<Transaction<'static, Any>> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        };
        tx.context("cannot begin transaction")
    }

    /// Readiness probe: one round trip.
    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// True when `err` is a unique-constraint violation (on either backend).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            matches!(db.kind(), sqlx::error::ErrorKind::UniqueViolation)
                || db.code().as_deref() == Some("23505")
                || db.code().as_deref() == Some("2067")
                || db.code().as_deref() == Some("1555")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve_per_context() {
        let dir = std::path::Path::new("/data");
        assert_eq!(
            DatabaseTarget::resolve("catalog", dir, None),
            DatabaseTarget::Sqlite {
                path: "/data/catalog.db".into()
            }
        );
        assert_eq!(
            DatabaseTarget::resolve("catalog", dir, Some("postgres://u@h/db")),
            DatabaseTarget::Postgres {
                url: "postgres://u@h/db".into(),
                schema: "catalog".into()
            }
        );
    }

    #[test]
    fn schema_names_are_checked_before_use_in_sql() {
        assert!(valid_schema_name("ordering"));
        assert!(!valid_schema_name("x; drop table y"));
        assert!(!valid_schema_name(""));
    }
}
