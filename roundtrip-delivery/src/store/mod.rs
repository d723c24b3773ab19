//! What the SQLite and PostgreSQL stores share that is not SQL: errors, times, rows,
//! listings and options.
//!
//! Each backend keeps its SQL in its own folder, split by the lifecycle of a message with
//! the same file names on both sides (`enqueue`, `lease`, `complete`, `admin`, and `rows`
//! for what a row holds); everything here is written once for both, and for the webhook
//! endpoint stores beside them.

pub(crate) mod error;
pub(crate) mod listing;
pub(crate) mod local;
pub(crate) mod options;
pub(crate) mod rows;
pub(crate) mod time;
