//! The customer's address book: save, change, remove; each change publishes the whole book
//! (`identity.address_book_changed`, with a revision) in its unit, for ordering's copy.

use std::sync::Arc;

use bus::{Causation, UnitOfWork};
use identity_contracts::{AddressBookChanged, SavedAddress};
use kernel::address::PostalAddress;
use kernel::id::UserId;
use kernel::Clock;

use super::ports::AddressBookRepository;
use super::IdentityError;
use crate::domain::address_book::{AddressBook, AddressEntry, BookRefusal, EntryChange};

pub(crate) struct AddressBooks {
    pub(crate) books: Arc<dyn AddressBookRepository>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: bus::Store,
}

impl From<BookRefusal> for IdentityError {
    fn from(refusal: BookRefusal) -> Self {
        match refusal {
            BookRefusal::Full => IdentityError::AddressBookFull,
            BookRefusal::NotFound => IdentityError::AddressNotFound,
        }
    }
}

impl AddressBooks {
    pub(crate) async fn list(&self, user: UserId) -> Result<Vec<AddressEntry>, IdentityError> {
        Ok(self.books.book(user).await?.into_entries())
    }

    pub(crate) async fn add(
        &self,
        user: UserId,
        address: PostalAddress,
        make_default: bool,
        cause: &Causation,
    ) -> Result<AddressEntry, IdentityError> {
        let now = self.clock.now();
        self.changing(user, cause, |book| book.add(address, make_default, now))
            .await
    }

    pub(crate) async fn change(
        &self,
        user: UserId,
        id: uuid::Uuid,
        change: EntryChange,
        cause: &Causation,
    ) -> Result<AddressEntry, IdentityError> {
        self.changing(user, cause, |book| book.change(id, change))
            .await
    }

    pub(crate) async fn remove(
        &self,
        user: UserId,
        id: uuid::Uuid,
        cause: &Causation,
    ) -> Result<(), IdentityError> {
        self.changing(user, cause, |book| book.remove(id)).await
    }

    /// Reads the book in a unit (locked against concurrent changes), applies `change`, and
    /// stores and announces the result; a refused change leaves everything as it was.
    async fn changing<T>(
        &self,
        user: UserId,
        cause: &Causation,
        change: impl FnOnce(&mut AddressBook) -> Result<T, BookRefusal>,
    ) -> Result<T, IdentityError> {
        let mut work = self.store.begin(cause.clone()).await?;
        let revision = self
            .books
            .next_revision_in(&mut work, user)
            .await?
            .ok_or(IdentityError::UserNotFound)?;
        let mut book = self.books.book_in(&mut work, user).await?;
        let done = change(&mut book)?;
        self.books.save_in(&mut work, user, &book).await?;
        announce(&mut work, user, &book, revision, self.clock.as_ref())?;
        work.commit().await?;
        Ok(done)
    }
}

fn announce(
    work: &mut UnitOfWork,
    user: UserId,
    book: &AddressBook,
    revision: u64,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let now = clock.now();
    let addresses = book
        .entries()
        .iter()
        .map(|e| SavedAddress {
            address_id: e.id.to_string(),
            address: e.address.clone(),
            is_default: e.is_default,
        })
        .collect();
    work.publish(
        &AddressBookChanged {
            user_id: user,
            addresses,
            revision,
            changed_at: now,
        },
        now,
    )?;
    Ok(())
}
