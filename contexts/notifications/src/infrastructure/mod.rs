pub(crate) mod mail;
pub(crate) mod sql;
pub(crate) mod templates;
