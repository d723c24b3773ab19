//! Test tools for roundtrip apps: an in-process [`TestClient`] and a [`MockReceiver`]
//! that records, verifies and misbehaves on request.

pub mod client;
pub mod logs;
pub mod meaning;
pub mod oas;
pub mod postgres;
pub mod process;
pub mod receiver;
pub mod refs;
pub mod snapshot;
pub mod temp;
pub mod websocket;

pub use client::*;
pub use logs::CapturedLogs;
pub use process::{ChildGuard, free_port};
pub use receiver::*;
pub use temp::TempDir;
pub use websocket::TestWebSocket;
