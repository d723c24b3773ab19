//! The outbox: durable storage of messages and their attempts.
