pub(crate) mod mail;
pub(crate) mod sql;
pub(crate) mod templates;
pub(crate) mod webhook_http;
pub(crate) mod webhook_sql;
