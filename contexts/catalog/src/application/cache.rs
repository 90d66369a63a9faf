//! Read cache for product pages and list pages: serialised responses with their ETag,
//! invalidated on every change (locally at once, in other instances by a broadcast event).
//!
//! A reader that loaded a row before a write committed must not put it back after the
//! write's invalidation: every read notes the cache generation first, and a value is kept only
//! if no invalidation happened since.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kernel::id::ProductId;

#[derive(Debug, Clone)]
pub(crate) struct Cached {
    pub(crate) body: actix_web::web::Bytes,
    pub(crate) etag: Arc<str>,
    /// A list page's `next_cursor`, for its `Link` field.
    pub(crate) next_cursor: Option<Arc<str>>,
}

pub(crate) struct ReadCache {
    generation: AtomicU64,
    products: moka::future::Cache<ProductId, Cached>,
    lists: moka::future::Cache<String, Cached>,
}

impl ReadCache {
    pub(crate) fn new() -> Self {
        Self {
            generation: AtomicU64::new(0),
            products: moka::future::Cache::builder()
                .max_capacity(50_000)
                .time_to_live(Duration::from_secs(300))
                .build(),
            lists: moka::future::Cache::builder()
                .max_capacity(5_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
        }
    }

    /// Call before reading the database for a value to cache.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub(crate) async fn product(&self, id: ProductId) -> Option<Cached> {
        self.products.get(&id).await
    }

    pub(crate) async fn put_product(&self, read_at: u64, id: ProductId, value: Cached) {
        if self.generation() != read_at {
            return;
        }
        self.products.insert(id, value).await;
        if self.generation() != read_at {
            self.products.invalidate(&id).await;
        }
    }

    pub(crate) async fn list(&self, key: &str) -> Option<Cached> {
        self.lists.get(key).await
    }

    pub(crate) async fn put_list(&self, read_at: u64, key: String, value: Cached) {
        if self.generation() != read_at {
            return;
        }
        self.lists.insert(key.clone(), value).await;
        if self.generation() != read_at {
            self.lists.invalidate(&key).await;
        }
    }

    /// Forgets a product and every list page (any list may contain it).
    pub(crate) async fn invalidate(&self, id: ProductId) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.products.invalidate(&id).await;
        self.lists.invalidate_all();
    }
}
