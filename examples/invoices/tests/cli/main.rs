//! The app's command line, driven as a user drives it: the `example-invoices` binary, run
//! as a child process, against a real SQLite file and a fresh PostgreSQL schema, with
//! messages that succeeded, were retried, failed, broke their contract, and still wait.
//!
//! Every filter of `deliveries list` is checked (tables and `--json`), then `show`,
//! `retry`, `replay` and `cancel`, then bad input: filters that match nothing, ids that do
//! not exist or are not ids, and databases the command line cannot open. `openapi` and
//! `openapi lint` are checked with their exit codes, and the command line is used on the
//! SQLite file while the app serves from it.

mod commands;
mod deliveries;
mod support;
