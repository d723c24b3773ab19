//! Fresh PostgreSQL schemas and databases for tests: the harness every crate shares,
//! `roundtrip_test::postgres` (see there for the server the tests use and how to point
//! them at another one).

#[allow(unused_imports)]
pub(crate) use roundtrip_test::postgres::*;
