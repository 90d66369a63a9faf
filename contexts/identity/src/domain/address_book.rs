//! A customer's address book: at most [`MAX_ADDRESSES`] addresses, at most one the default.
//! The first address saved is the default; making another the default takes it from the old
//! one; removing the default leaves none.

use kernel::address::PostalAddress;
use kernel::Timestamp;

pub(crate) const MAX_ADDRESSES: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AddressEntry {
    pub(crate) id: uuid::Uuid,
    pub(crate) address: PostalAddress,
    pub(crate) is_default: bool,
    pub(crate) created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BookRefusal {
    /// The book holds [`MAX_ADDRESSES`] already.
    Full,
    /// No address of this book has the id (another customer's is not in it either).
    NotFound,
}

/// What a change does to one address: each field given replaces the old one.
pub(crate) struct EntryChange {
    pub(crate) address: Option<PostalAddress>,
    pub(crate) is_default: Option<bool>,
}

/// The book, oldest address first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AddressBook {
    entries: Vec<AddressEntry>,
}

impl AddressBook {
    pub(crate) fn new(mut entries: Vec<AddressEntry>) -> Self {
        entries.sort_by_key(|e| (e.created_at, e.id));
        Self { entries }
    }

    pub(crate) fn entries(&self) -> &[AddressEntry] {
        &self.entries
    }

    pub(crate) fn into_entries(self) -> Vec<AddressEntry> {
        self.entries
    }

    fn make_default(&mut self, id: uuid::Uuid) {
        for e in &mut self.entries {
            e.is_default = e.id == id;
        }
    }

    /// Saves a new address; the first of the book, or one asked to be, is the default.
    pub(crate) fn add(
        &mut self,
        address: PostalAddress,
        make_default: bool,
        now: Timestamp,
    ) -> Result<AddressEntry, BookRefusal> {
        if self.entries.len() >= MAX_ADDRESSES {
            return Err(BookRefusal::Full);
        }
        let entry = AddressEntry {
            id: uuid::Uuid::now_v7(),
            address,
            is_default: false,
            created_at: now,
        };
        let id = entry.id;
        let first = self.entries.is_empty();
        self.entries.push(entry);
        if first || make_default {
            self.make_default(id);
        }
        self.get(id).cloned().ok_or(BookRefusal::NotFound)
    }

    pub(crate) fn get(&self, id: uuid::Uuid) -> Option<&AddressEntry> {
        self.entries.iter().find(|e| e.id == id)
    }

    pub(crate) fn change(
        &mut self,
        id: uuid::Uuid,
        change: EntryChange,
    ) -> Result<AddressEntry, BookRefusal> {
        let entry = self
            .entries
            .iter_mut()
            .find(|e| e.id == id)
            .ok_or(BookRefusal::NotFound)?;
        if let Some(address) = change.address {
            entry.address = address;
        }
        match change.is_default {
            Some(true) => self.make_default(id),
            Some(false) => entry.is_default = false,
            None => {}
        }
        self.get(id).cloned().ok_or(BookRefusal::NotFound)
    }

    pub(crate) fn remove(&mut self, id: uuid::Uuid) -> Result<(), BookRefusal> {
        let before = self.entries.len();
        self.entries.retain(|e| e.id != id);
        if self.entries.len() == before {
            return Err(BookRefusal::NotFound);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(line1: &str) -> PostalAddress {
        PostalAddress::parse("Ada", line1, None, "Berlin", "10115", "DE")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn defaults(book: &AddressBook) -> Vec<String> {
        book.entries()
            .iter()
            .filter(|e| e.is_default)
            .map(|e| e.address.line1.clone())
            .collect()
    }

    #[test]
    fn the_first_address_is_the_default_and_one_default_at_most() {
        let now = Timestamp::now();
        let mut book = AddressBook::default();
        let first = book
            .add(address("1 Road"), false, now)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(first.is_default);
        let second = book
            .add(address("2 Road"), false, now)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!second.is_default);
        assert_eq!(defaults(&book), ["1 Road"]);
        book.add(address("3 Road"), true, now)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(defaults(&book), ["3 Road"]);
        book.change(
            second.id,
            EntryChange {
                address: Some(address("2 Lane")),
                is_default: Some(true),
            },
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(defaults(&book), ["2 Lane"]);
        book.change(
            second.id,
            EntryChange {
                address: None,
                is_default: Some(false),
            },
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(defaults(&book).is_empty());
    }

    #[test]
    fn a_book_holds_twenty_and_knows_only_its_own_ids() {
        let now = Timestamp::now();
        let mut book = AddressBook::default();
        for i in 0..MAX_ADDRESSES {
            book.add(address(&format!("{i} Road")), false, now)
                .unwrap_or_else(|e| panic!("{e:?}"));
        }
        assert_eq!(
            book.add(address("21 Road"), false, now),
            Err(BookRefusal::Full)
        );
        let stranger = uuid::Uuid::now_v7();
        assert_eq!(book.remove(stranger), Err(BookRefusal::NotFound));
        let first = book.entries()[0].id;
        assert_eq!(book.remove(first), Ok(()));
        assert_eq!(book.entries().len(), MAX_ADDRESSES - 1);
        assert!(defaults(&book).is_empty());
        assert!(book.add(address("again"), false, now).is_ok());
    }
}
