//! Log lines written during a test, to check what an app logs (and what it must not).
//!
//! ```
//! let logs = roundtrip_test::CapturedLogs::default();
//! let subscriber = tracing_subscriber::fmt()
//!     .with_writer(logs.clone())
//!     .with_ansi(false)
//!     .finish();
//! let _guard = tracing::subscriber::set_default(subscriber);
//! tracing::warn!("disk almost full");
//! assert!(logs.text().contains("disk almost full"));
//! ```

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

/// Everything a `tracing_subscriber::fmt` subscriber writes, kept in memory and shared
/// with the test: pass a clone as its writer.
#[derive(Clone, Default, Debug)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// What has been written so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
