//! The conformance suite: the same behaviours, proved against every store — the outboxes
//! here, the webhook endpoint stores in `conformance/endpoints.rs`.
//!
//! Each case in `conformance/cases.rs` is a function over a
//! [`StoreFactory`](harness::StoreFactory). This file runs every case once against the
//! embedded SQLite store (a temporary file) and once against PostgreSQL (a fresh schema on
//! the server named by `ROUNDTRIP_TEST_DATABASE_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/test`). A PostgreSQL that cannot be reached fails the
//! PostgreSQL half with directions; it is never skipped. A third store joins by adding a
//! factory and one more `mod` below.

#[macro_use]
#[path = "conformance/cases.rs"]
mod cases;
#[path = "conformance/endpoints.rs"]
mod endpoints;
#[path = "conformance/harness.rs"]
mod harness;
#[path = "conformance/pg.rs"]
mod pg;
#[path = "conformance/stores.rs"]
mod stores;

/// One test per case, each running the case against the store factory given first.
macro_rules! case_tests {
    (($factory:expr) $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                crate::cases::$case(&$factory).await
            }
        )*
    };
}

mod sqlite {
    for_each_case!(case_tests!(crate::stores::Sqlite));
}

mod postgres {
    for_each_case!(case_tests!(crate::stores::Postgres));
}
