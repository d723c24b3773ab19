//! Workers: claim messages, send them, record attempts.
//!
//! # Policy
//!
//! A [`Dispatcher`] runs the workers of one process against an [`Outbox`](crate::outbox::Outbox):
//!
//! * **Claims with leases.** It claims due messages in batches, as many as it has free
//!   slots, under its owner name and a lease. It claims again as soon as the store signals
//!   new work ([`Outbox::subscribe`](crate::outbox::Outbox::subscribe)), a scheduled retry falls due, or the poll interval
//!   (250 ms) runs out, which covers messages enqueued inside an application's transaction
//!   and by other processes.
//! * **Bounded.** At most `max_in_flight` requests run at once, and at most
//!   `per_destination` go to one `host:port`. A dispatcher holds at most twice
//!   `max_in_flight` messages (from claim until the attempt is recorded): the extra ones are
//!   claimed ahead, so a freed request slot starts the next message without waiting for a
//!   claim, and attempt records are written while the next requests run. A crash can
//!   therefore repeat at most `2 × max_in_flight` deliveries. Messages for a busy
//!   destination wait for it while holding their place.
//! * **Leases outlive requests.** The lease must be longer than the total request timeout
//!   (checked at start), and it is renewed every third of its length while the message is
//!   held, so a slow receiver never lets another worker take a message that is still being
//!   sent. At start, the dispatcher takes back what its owner name held in a previous run
//!   (it crashed), and a sweeper hands back every expired lease of dead workers and purges
//!   history past its retention.
//! * **The attempt.** Each attempt checks the URL against the SSRF policy, asks the
//!   [`SecretSource`] for the secrets, and POSTs the body with the Standard Webhooks headers
//!   (`webhook-id` is the message id on every attempt, `webhook-timestamp` is the attempt's
//!   time), `content-type: application/json` and a `user-agent` naming roundtrip. The
//!   connection goes only to addresses the SSRF guard checked; proxies are off and redirects
//!   are not followed (a 3xx is a failed attempt that is retried). Connect and total
//!   timeouts default to 5 s and 15 s. At most `response_body_cap` bytes (4 KiB) of the
//!   response are read and stored; the rest is never downloaded.
//! * **The decision.** What happened on the attempt is an
//!   [`AttemptOutcome`](crate::retry::AttemptOutcome). Only 2xx is success; the
//!   [`RetrySchedule`](crate::retry::RetrySchedule) decides the rest: when to try again
//!   (honouring `Retry-After` within bounds), and when to give up (retries exhausted, or
//!   410 Gone at once). The decision, placed in time, is the message's next state
//!   ([`Decision`](crate::message::Decision)). A [`ResponseCheck`] may flag a 2xx response
//!   that breaks the declared contract; that is recorded, never retried.
//! * **Completions are batched.** Attempt records go to the store through one task, which
//!   writes whatever has accumulated in one call.
//! * **Graceful shutdown.** [`Dispatcher::shutdown`] stops claiming, lets attempts in
//!   flight finish until the deadline, records them, then releases every lease still held
//!   so another run can send those messages at once. An attempt cut at the deadline may
//!   have reached its receiver: it is sent again, and the receiver deduplicates on
//!   `webhook-id`.
//! * **Observability.** Each attempt runs in a `delivery.attempt` tracing span with the
//!   message id, the attempt number, the status and the duration. URLs are logged without
//!   credentials, query or fragment; secrets and bodies are never logged.

//!
//! # Where each part lives
//!
//! One file per concern: [`DispatcherConfig`] and its checks in `config.rs`; the handle and
//! the state its tasks share in `dispatcher.rs`; the claim loop in `claim.rs`; the
//! per-destination limits in `limits.rs`; one message's delivery (limits, attempt, decision,
//! report) in `deliver.rs`, its HTTP attempt (SSRF check, signing, capped read) in
//! `attempt.rs`; recording attempts in `complete.rs`; lease renewal in `renew.rs`; the
//! sweeper in `sweep.rs`; graceful shutdown in `shutdown.rs`; counters in `stats.rs`; the
//! extension points in `hooks.rs`.

mod attempt;
mod claim;
mod complete;
mod config;
mod deliver;
mod dispatcher;
mod hooks;
mod limits;
mod renew;
mod shutdown;
mod stats;
mod sweep;

pub use config::{DispatcherConfig, StartError};
pub use dispatcher::Dispatcher;
pub use hooks::{
    AttemptObserver, AttemptReport, ResponseCheck, SecretSource, SecretSourceError, StaticSecrets,
};
pub use shutdown::ShutdownReport;
pub use stats::DispatcherStats;
