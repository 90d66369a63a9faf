//! Ports: what the use cases need from the outside world.

use bus::UnitOfWork;
use kernel::address::PostalAddress;
use kernel::id::UserId;
use kernel::{EmailAddress, Timestamp};
use platform::pagination::{Page, PageRequest};

use crate::domain::address_book::AddressBook;
use crate::domain::{OrderHistoryEntry, OrderStatus, Password, Roles, User, UserName};

#[derive(Debug, thiserror::Error)]
pub(crate) enum SaveUserError {
    #[error("email already registered")]
    EmailTaken,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[async_trait::async_trait]
pub(crate) trait UserRepository: Send + Sync {
    /// Stores a new user and the events it causes, in one transaction.
    async fn create(&self, work: &mut UnitOfWork, user: &User) -> Result<(), SaveUserError>;
    async fn by_email(&self, email: &EmailAddress) -> anyhow::Result<Option<User>>;
    async fn by_id(&self, id: UserId) -> anyhow::Result<Option<User>>;
    /// Changes what is given, in the unit; false when there is no such account.
    async fn update_profile(
        &self,
        work: &mut UnitOfWork,
        id: UserId,
        name: Option<&UserName>,
        address: Option<Option<&PostalAddress>>,
        now: Timestamp,
    ) -> anyhow::Result<bool>;
    /// Refuses to take the admin role from the last admin.
    async fn set_roles(
        &self,
        id: UserId,
        roles: &Roles,
        now: Timestamp,
    ) -> anyhow::Result<RoleChange>;
    async fn list(&self, page: &PageRequest) -> anyhow::Result<Page<User>>;
    /// Makes `email` the account's address, proved at `now`, in the unit; false when there is
    /// no such account.
    async fn set_verified_email(
        &self,
        work: &mut UnitOfWork,
        id: UserId,
        email: &EmailAddress,
        now: Timestamp,
    ) -> Result<bool, SaveUserError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoleChange {
    Done,
    NotFound,
    /// The change would leave no admin at all.
    LastAdmin,
}

/// A stored refresh token, found by the hash of its secret.
#[derive(Debug, Clone)]
pub(crate) struct StoredRefreshToken {
    pub(crate) family_id: String,
    pub(crate) user_id: UserId,
    pub(crate) expires_at: Timestamp,
    pub(crate) spent: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rotation {
    /// The old token was spent and the new one stored.
    Rotated,
    /// The old token had been spent already (or concurrently): the family is revoked.
    Reused,
    Unknown,
}

#[async_trait::async_trait]
pub(crate) trait SessionRepository: Send + Sync {
    async fn start(
        &self,
        token_hash: &str,
        family_id: &str,
        user_id: UserId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> anyhow::Result<()>;
    async fn find(&self, token_hash: &str) -> anyhow::Result<Option<StoredRefreshToken>>;
    /// Spends `old_hash` and stores `new_hash` in the same family, atomically; a token spent
    /// already revokes the whole family.
    async fn rotate(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> anyhow::Result<Rotation>;
    async fn revoke_family(&self, family_id: &str, now: Timestamp) -> anyhow::Result<()>;
    /// Revokes every refresh token of the user in the unit; how many were live.
    async fn revoke_all_in(
        &self,
        work: &mut UnitOfWork,
        user: UserId,
        now: Timestamp,
    ) -> anyhow::Result<u64>;
}

/// Password reset tokens (their hashes) and what spending one changes.
#[async_trait::async_trait]
pub(crate) trait PasswordResetRepository: Send + Sync {
    /// Stores a new token for `user`, removing the user's earlier ones (a newer request
    /// supersedes them), in the unit that publishes the request.
    async fn issue(
        &self,
        work: &mut UnitOfWork,
        token_hash: &str,
        user: UserId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> anyhow::Result<()>;
    /// The user a token not yet expired at `now` belongs to, and when it expires.
    async fn owner(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> anyhow::Result<Option<(UserId, Timestamp)>>;
    /// Spends the token; `false` when it was spent (or superseded, or expired) meanwhile.
    async fn spend(&self, token_hash: &str, user: UserId, now: Timestamp) -> anyhow::Result<bool>;
    /// Puts back a token spent by a confirmation that then could not finish.
    async fn restore(
        &self,
        token_hash: &str,
        user: UserId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> anyhow::Result<()>;
    /// Sets the password and revokes every refresh token of the user, in one transaction.
    async fn set_password(
        &self,
        user: UserId,
        password_hash: &str,
        now: Timestamp,
    ) -> anyhow::Result<()>;
}

/// Email verification tokens (their hashes), each for one address of one account.
#[async_trait::async_trait]
pub(crate) trait EmailVerificationRepository: Send + Sync {
    /// Stores a new token for `user` to prove `email`, removing the user's earlier ones, in
    /// the unit that publishes the request.
    async fn issue(
        &self,
        work: &mut UnitOfWork,
        token_hash: &str,
        user: UserId,
        email: &EmailAddress,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> anyhow::Result<()>;
    /// The user a token not yet expired at `now` belongs to, and the address it proves.
    async fn owner(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> anyhow::Result<Option<(UserId, EmailAddress)>>;
    /// The address the user's newest token not yet expired proves, if any.
    async fn pending(&self, user: UserId, now: Timestamp) -> anyhow::Result<Option<EmailAddress>>;
    /// Spends the token in the unit; `false` when it was spent (or superseded, or expired).
    async fn spend(
        &self,
        work: &mut UnitOfWork,
        token_hash: &str,
        user: UserId,
        now: Timestamp,
    ) -> anyhow::Result<bool>;
}

/// Address books, read and replaced whole within a unit of work.
#[async_trait::async_trait]
pub(crate) trait AddressBookRepository: Send + Sync {
    /// Counts a change of the user's book and locks it for the unit: the new revision, or
    /// `None` when there is no such account.
    async fn next_revision_in(
        &self,
        work: &mut UnitOfWork,
        user: UserId,
    ) -> anyhow::Result<Option<u64>>;
    /// The user's book as the unit reads it.
    async fn book_in(&self, work: &mut UnitOfWork, user: UserId) -> anyhow::Result<AddressBook>;
    /// Replaces the user's stored book with `book`, in the unit.
    async fn save_in(
        &self,
        work: &mut UnitOfWork,
        user: UserId,
        book: &AddressBook,
    ) -> anyhow::Result<()>;
    /// The user's book (outside any unit).
    async fn book(&self, user: UserId) -> anyhow::Result<AddressBook>;
}

/// Every password hashing worker is busy and the queue is full: try again shortly.
#[derive(Debug, thiserror::Error)]
#[error("password hashing is at capacity")]
pub(crate) struct HashingBusy;

#[async_trait::async_trait]
pub(crate) trait PasswordHasher: Send + Sync {
    async fn hash(&self, password: &Password) -> anyhow::Result<String>;
    /// Verifies; with `None` it burns the same time against a dummy hash (no user enumeration).
    async fn verify(&self, password: &str, hash: Option<&str>) -> anyhow::Result<bool>;
}

pub(crate) struct IssuedAccessToken {
    pub(crate) token: String,
    pub(crate) expires_in: u64,
}

pub(crate) trait AccessTokenIssuer: Send + Sync {
    fn issue(&self, user: UserId, roles: &Roles) -> anyhow::Result<IssuedAccessToken>;
}

/// Signs client-credentials tokens: `sub` the service, `aud` the context it may call.
pub(crate) trait ServiceTokenIssuer: Send + Sync {
    fn issue_service(&self, service: &str, audience: &str) -> anyhow::Result<IssuedAccessToken>;
}

/// A change to one order's history, from an ordering or shipping event.
#[derive(Debug, Clone)]
pub(crate) struct OrderHistoryChange {
    pub(crate) entry: OrderHistoryEntry,
    pub(crate) progress: OrderStatus,
}

#[async_trait::async_trait]
pub(crate) trait OrderHistoryRepository: Send + Sync {
    /// Applies a change in the unit of work, moving the status forward only.
    async fn apply(&self, work: &mut UnitOfWork, change: OrderHistoryUpdate) -> anyhow::Result<()>;
    /// Gives the account `user` the guest orders placed with `email` (just proved by it).
    async fn claim_in(
        &self,
        work: &mut UnitOfWork,
        user: UserId,
        email: &EmailAddress,
    ) -> anyhow::Result<u64>;
    async fn for_customer(
        &self,
        customer: UserId,
        page: &PageRequest,
    ) -> anyhow::Result<Page<OrderHistoryEntry>>;
}

/// What an event says about an order; fields it does not know are `None`.
#[derive(Debug, Clone)]
pub(crate) enum OrderHistoryUpdate {
    /// Full knowledge of the order at a status (ordering events).
    Status(OrderHistoryChange),
    /// Cancelled, with the reason (the amount and dates come from other events).
    Cancelled {
        order_id: kernel::id::OrderId,
        customer_id: UserId,
        reason: String,
        at: Timestamp,
    },
    /// Money was given back: every confirmed refund so far (a running total, so the
    /// largest one heard is the current one).
    Refunded {
        order_id: kernel::id::OrderId,
        customer_id: UserId,
        total_refunded: kernel::Money,
        at: Timestamp,
    },
    /// Only a tracking number (shipment created).
    Tracking {
        order_id: kernel::id::OrderId,
        customer_id: UserId,
        tracking_number: String,
        at: Timestamp,
    },
    /// A guest placed the order with this email address: it belongs to the account that has
    /// proved the address, now or once one does.
    Guest {
        order_id: kernel::id::OrderId,
        guest_id: UserId,
        email: String,
    },
    /// A shipment moved the order forward (dispatched, delivered).
    Shipment {
        order_id: kernel::id::OrderId,
        customer_id: UserId,
        progress: OrderStatus,
        tracking_number: String,
        at: Timestamp,
    },
}

/// Counts failed logins per key (account, IP) in a sliding window.
/// Counts attempts that may fail (log-ins, sign-ups) per key over a window.
#[async_trait::async_trait]
pub(crate) trait LoginThrottle: Send + Sync {
    /// Takes one attempt on every key at once, or none when any key is at its limit.
    /// Checking and counting are one step, so concurrent attempts cannot overrun a limit.
    async fn attempt(&self, keys: &[ThrottleKey]) -> Result<(), ThrottleRefusal>;
    /// Returns one attempt to each key (it succeeded, or it could not be judged).
    async fn give_back(&self, keys: &[ThrottleKey]);
    /// Starts the key afresh (a successful log-in clears its account's failures).
    async fn clear(&self, key: &ThrottleKey);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ThrottleRefusal {
    /// A key is at its limit: the seconds until its window ends.
    Wait(u64),
    /// The counts cannot be read (shared state unreachable): nothing is let through unchecked.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ThrottleKey {
    /// One account from one client address: an attacker elsewhere cannot lock its owner out.
    AccountFrom {
        email: String,
        client: String,
    },
    /// One client address, whatever account it tries.
    Client(String),
    /// Sign-ups from one client address.
    SignUpFrom(String),
    /// Password reset requests for one address, and from one client address.
    ResetFor(String),
    ResetFrom(String),
    /// Verification links asked for one account (re-sends and email changes).
    VerifyFor(String),
}
