//! The unit of work: one transaction of a context, the events it publishes written to the
//! outbox in that same transaction, and the relay woken once it has committed. Consumers
//! that change state get theirs from the bus with the envelope already recorded in the
//! inbox ([`crate::HandlesOnce`]), so no context writes inbox or outbox SQL or wakes the
//! relay by hand.

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use kernel::{IntegrationEvent, Timestamp};
use platform::db::Database;
use sqlx::{Any, AnyConnection, Transaction};

use crate::envelope::{Causation, Envelope};
use crate::outbox::Outbox;

/// A context's transactional store: its database and its outbox.
#[derive(Debug, Clone)]
pub struct Store {
    db: Database,
    outbox: Outbox,
}

impl Store {
    pub fn new(db: Database, outbox: Outbox) -> Self {
        Self { db, outbox }
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Begins a unit of work whose events carry `cause`.
    pub async fn begin(&self, cause: Causation) -> anyhow::Result<UnitOfWork> {
        Ok(UnitOfWork {
            tx: Some(self.db.begin().await?),
            open: true,
            detached: None,
            events: Vec::new(),
            committed: Vec::new(),
            outbox: self.outbox.clone(),
            cause,
        })
    }
}

/// Where a use case opens its units of work: a context's [`Store`], or [`DetachedUnits`] in
/// tests of the use cases on in-memory fakes of their ports.
#[async_trait::async_trait]
pub trait Units: Send + Sync {
    async fn begin(&self, cause: Causation) -> anyhow::Result<UnitOfWork>;
}

#[async_trait::async_trait]
impl Units for Store {
    async fn begin(&self, cause: Causation) -> anyhow::Result<UnitOfWork> {
        Store::begin(self, cause).await
    }
}

/// Units of work without a database, for fakes that keep their state in memory: a unit has
/// no connection, and what it publishes is collected here when it commits (and dropped with
/// it otherwise), so a test sees exactly the events a committed use case announced.
#[derive(Debug, Default, Clone)]
pub struct DetachedUnits {
    published: Arc<Mutex<Vec<Envelope>>>,
}

impl DetachedUnits {
    pub fn new() -> Self {
        Self::default()
    }

    /// The envelopes committed units published, in order; taken, so the next call sees
    /// only newer ones.
    pub fn take_published(&self) -> Vec<Envelope> {
        match self.published.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

#[async_trait::async_trait]
impl Units for DetachedUnits {
    async fn begin(&self, cause: Causation) -> anyhow::Result<UnitOfWork> {
        Ok(UnitOfWork {
            tx: None,
            open: true,
            detached: Some(self.published.clone()),
            events: Vec::new(),
            committed: Vec::new(),
            outbox: Outbox::new(),
            cause,
        })
    }
}

/// An open transaction and the events to publish when it commits. Dropped without
/// [`UnitOfWork::commit`], it rolls back and publishes nothing.
pub struct UnitOfWork {
    tx: Option<Transaction<'static, Any>>,
    /// Until committed.
    open: bool,
    /// A unit of [`DetachedUnits`]: where its events go when it commits.
    detached: Option<Arc<Mutex<Vec<Envelope>>>>,
    events: Vec<Envelope>,
    /// Run once the transaction has committed, in order (dropped on rollback).
    committed: Vec<Box<dyn FnOnce() + Send>>,
    outbox: Outbox,
    cause: Causation,
}

impl std::fmt::Debug for UnitOfWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitOfWork")
            .field("open", &self.open)
            .field("detached", &self.detached.is_some())
            .field("events", &self.events.len())
            .finish()
    }
}

impl UnitOfWork {
    /// The transaction's connection; an error once the unit has committed.
    pub fn conn(&mut self) -> anyhow::Result<&mut AnyConnection> {
        match self.tx.as_mut() {
            Some(tx) => Ok(&mut *tx),
            None if self.open => anyhow::bail!("a detached unit of work has no connection"),
            None => anyhow::bail!("the unit of work has already committed"),
        }
    }

    /// What the events of this unit are caused by.
    pub fn cause(&self) -> &Causation {
        &self.cause
    }

    /// Sets what the events published from now on are caused by (a unit that handles
    /// several envelopes, one after the other).
    pub(crate) fn caused_by(&mut self, cause: Causation) {
        self.cause = cause;
    }

    /// Publishes `event` when (and only if) the unit commits.
    pub fn publish<E: IntegrationEvent>(
        &mut self,
        event: &E,
        occurred_at: Timestamp,
    ) -> anyhow::Result<()> {
        let envelope = Envelope::wrap(event, occurred_at, &self.cause)?;
        self.events.push(envelope);
        Ok(())
    }

    /// Publishes ready-made envelopes when the unit commits.
    pub fn publish_all(&mut self, envelopes: impl IntoIterator<Item = Envelope>) {
        self.events.extend(envelopes);
    }

    /// Runs `then` once the unit has committed, and never if it does not: for what may only
    /// know of committed state, such as a cache of what was read.
    pub fn after_commit(&mut self, then: impl FnOnce() + Send + 'static) {
        self.committed.push(Box::new(then));
    }

    /// Writes the events to the outbox, commits, and wakes the relay if there were any.
    /// Committing twice is a no-op; work after the first commit needs a new unit.
    pub async fn commit(&mut self) -> anyhow::Result<()> {
        if !self.open {
            return Ok(());
        }
        let events = std::mem::take(&mut self.events);
        match self.tx.take() {
            Some(mut tx) => {
                if !events.is_empty() {
                    self.outbox.enqueue(&mut tx, &events).await?;
                }
                tx.commit().await.context("cannot commit")?;
                if !events.is_empty() {
                    self.outbox.wake();
                }
            }
            None => {
                if let Some(sink) = &self.detached {
                    match sink.lock() {
                        Ok(mut p) => p.extend(events),
                        Err(poisoned) => poisoned.into_inner().extend(events),
                    }
                }
            }
        }
        self.open = false;
        for then in std::mem::take(&mut self.committed) {
            then();
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
pub(crate) mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct Noted {
        n: u32,
    }
    impl IntegrationEvent for Noted {
        const NAME: &'static str = "test.noted";
        const VERSION: u32 = 1;
        const SOURCE: &'static str = "test";
    }

    /// A SQLite store with the messaging tables, the conformance effect table and `note`.
    pub(crate) async fn store(dir: &std::path::Path) -> Store {
        let db = Database::connect(&platform::db::DatabaseTarget::Sqlite {
            path: dir.join("uow.db"),
        })
        .await
        .unwrap();
        crate::conformance::prepare(&db).await.unwrap();
        sqlx::raw_sql("create table note (n integer not null)")
            .execute(db.pool())
            .await
            .unwrap();
        Store::new(db, Outbox::new())
    }

    pub(crate) async fn count(store: &Store, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(store.db().pool())
            .await
            .unwrap()
    }

    /// A unit with a note written and an event published, not committed.
    async fn noted(store: &Store) -> UnitOfWork {
        let mut work = store.begin(Causation::system()).await.unwrap();
        sqlx::query("insert into note (n) values (1)")
            .execute(work.conn().unwrap())
            .await
            .unwrap();
        work.publish(&Noted { n: 1 }, Timestamp::now()).unwrap();
        work
    }

    #[tokio::test]
    async fn the_change_and_its_events_commit_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let mut work = noted(&store).await;
        work.commit().await.unwrap();
        assert!(work.conn().is_err(), "no work after the commit");
        work.commit().await.unwrap();
        assert_eq!(count(&store, "select count(*) from note").await, 1);
        assert_eq!(count(&store, "select count(*) from outbox").await, 1);
    }

    #[tokio::test]
    async fn after_commit_runs_only_once_the_unit_has_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let hook = |ran: &std::sync::Arc<std::sync::atomic::AtomicUsize>| {
            let ran = ran.clone();
            move || {
                ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        };
        let mut dropped = noted(&store).await;
        dropped.after_commit(hook(&ran));
        drop(dropped);
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 0);
        let mut work = noted(&store).await;
        work.after_commit(hook(&ran));
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 0);
        work.commit().await.unwrap();
        work.commit().await.unwrap();
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_detached_unit_publishes_only_what_it_commits() {
        let units = DetachedUnits::new();
        let mut dropped = Units::begin(&units, Causation::system()).await.unwrap();
        dropped.publish(&Noted { n: 1 }, Timestamp::now()).unwrap();
        drop(dropped);
        let mut work = Units::begin(&units, Causation::system()).await.unwrap();
        assert!(work.conn().is_err(), "no connection");
        work.publish(&Noted { n: 2 }, Timestamp::now()).unwrap();
        assert!(units.take_published().is_empty(), "not before the commit");
        work.commit().await.unwrap();
        work.commit().await.unwrap();
        let published = units.take_published();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].payload["n"], 2);
        assert!(work.conn().is_err());
    }

    #[tokio::test]
    async fn a_unit_dropped_before_commit_writes_and_publishes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        drop(noted(&store).await);
        assert_eq!(count(&store, "select count(*) from note").await, 0);
        assert_eq!(count(&store, "select count(*) from outbox").await, 0);
    }
}
