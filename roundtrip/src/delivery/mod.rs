//! Delivery: the outbox, the stores, signing, the SSRF guard and retries.
//!
//! These are the parts of `roundtrip-delivery` that an app configures or inspects, chosen
//! one by one so that the facade's surface stays small and stable: options for the two
//! stores, the outbox's read and admin side, secrets and verification, the SSRF policy, the
//! retry schedule and the dispatcher's settings. A store's internals (its pools, its SQL,
//! its listener) are not here. Whoever writes a store or a worker of their own depends on
//! `roundtrip-delivery` directly.
//!
//! The facade's own delivery lives here too, in private files whose chosen items are
//! re-exported: the settings gathered while the app is declared (`config.rs`), the
//! runtime that opens the outbox and starts the workers (`runtime.rs`), the response
//! contracts (`contracts.rs`), the signing secrets (`secrets.rs`), what stops the outbox
//! or the workers (`error.rs`, [`DeliverySetupError`](crate::DeliverySetupError)),
//! sending callbacks (`notify.rs`, [`Notify`](crate::Notify)) and webhooks (`publish.rs`,
//! [`Publisher`](crate::Publisher)), what a failed send answers (`send_error.rs`) and the
//! callbacks that wait for the response (`deferred.rs`).

pub(crate) mod config;
mod contracts;
mod deferred;
pub(crate) mod error;
pub(crate) mod notify;
pub(crate) mod publish;
pub(crate) mod runtime;
mod secrets;
pub(crate) mod send_error;

pub(crate) use config::{CountEnqueued, DeliverySetup, EndpointDirectory, Store};
pub(crate) use contracts::Contracts;
pub(crate) use deferred::PendingSends;
pub(crate) use notify::{BoundCallback, OperationCallbacks};
pub(crate) use runtime::{OutboxHandle, PreparedDelivery, Resolved};

#[doc(inline)]
pub use roundtrip_delivery::{Database, Stores, connect};

/// The outbox: messages, attempts, and the queries and admin actions on them.
pub mod outbox {
    #[doc(inline)]
    pub use roundtrip_delivery::outbox::{
        Attempt, AttemptCursor, AttemptFilter, AttemptPage, CommitStats, Completion, Decision,
        Enqueued, Error, LeaseCheck, Message, MessageFilter, MessageId, MessageKind, MessageMeta,
        MessagePage, MessageStatus, NewAttempt, NewMessage, Outbox, Purged, Reclaimed, Wakeup,
        Wakeups,
    };
}

/// What a message is made of, and what happened to each attempt.
pub mod message {
    #[doc(inline)]
    pub use roundtrip_delivery::message::{
        Attempt, AttemptError, AttemptErrorKind, Decision, InvalidMessageId, Lease, Message,
        MessageId, MessageKind, MessageMeta, MessageStatus, NewMessage, UnknownName,
    };
}

/// The embedded SQLite store (the default).
pub mod sqlite {
    #[doc(inline)]
    pub use roundtrip_delivery::sqlite::{
        DEFAULT_PATH, PATH_ENV, SqliteOptions, SqliteOutbox, Synchronous,
    };
}

/// The PostgreSQL store, for many processes.
pub mod postgres {
    #[doc(inline)]
    pub use roundtrip_delivery::postgres::{DEFAULT_SCHEMA, PgOptions, PgOutbox};
}

/// Webhook endpoints: the subscriptions of the API's users, with their secrets and health.
pub mod endpoints {
    #[doc(inline)]
    pub use roundtrip_delivery::endpoints::{
        CreatedEndpoint, DisableKind, Disabled, Endpoint, EndpointFilter, EndpointPage,
        EndpointSettings, EndpointStore, EndpointUpdate, Error, NewEndpoint, PgEndpointOptions,
        PgEndpointStore, RotatedSecret, Rotation, SqliteEndpointOptions, SqliteEndpointStore,
    };
}

/// Standard Webhooks signing and verification.
pub mod signing {
    #[doc(inline)]
    pub use roundtrip_delivery::signing::{
        Secret, SecretError, Signer, VerifiedHeaders, Verifier, VerifyError, VerifyErrorKind,
        WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP,
    };
}

/// The SSRF guard: which addresses a message may go to, and how names are resolved.
pub mod ssrf {
    #[doc(inline)]
    pub use roundtrip_delivery::ssrf::{
        Blocked, BlockedRange, InvalidNetwork, IpNetwork, Resolve, SsrfError, SsrfPolicy,
        StaticResolver, SystemResolver, check_ip, check_url,
    };
}

/// When a failed attempt is tried again.
pub mod retry {
    #[doc(inline)]
    pub use roundtrip_delivery::retry::{AttemptOutcome, RetrySchedule, parse_retry_after};
}

/// The dispatcher's settings and the hooks an app plugs into it.
pub mod worker {
    #[doc(inline)]
    pub use roundtrip_delivery::worker::{
        AttemptObserver, AttemptReport, DispatcherConfig, DispatcherStats, ResponseCheck,
        SecretSource, SecretSourceError, ShutdownReport, StartError, StaticSecrets,
    };
}
