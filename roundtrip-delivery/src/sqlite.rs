//! The embedded SQLite outbox store.
