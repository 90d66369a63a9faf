//! What a bounded context hands to the composition root: its routes and its background work.
//! The root mounts the routes, spawns the tasks with a shutdown signal, and knows nothing else
//! about the context's insides.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::web::ServiceConfig;
use tokio::sync::watch;

pub type TaskFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Background work (an outbox relay, an expiry sweep) that stops when the signal turns true.
pub type BackgroundTask = Box<dyn FnOnce(watch::Receiver<bool>) -> TaskFuture + Send>;

pub struct ContextModule {
    pub name: &'static str,
    /// Registers the context's routes (all under `/api/v1/<name>`, plus any root routes the
    /// context owns, such as identity's JWKS).
    pub configure: Arc<dyn Fn(&mut ServiceConfig) + Send + Sync>,
    pub tasks: Vec<BackgroundTask>,
}

impl ContextModule {
    pub fn new(
        name: &'static str,
        configure: impl Fn(&mut ServiceConfig) + Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            configure: Arc::new(configure),
            tasks: Vec::new(),
        }
    }

    pub fn with_task(mut self, task: BackgroundTask) -> Self {
        self.tasks.push(task);
        self
    }
}
