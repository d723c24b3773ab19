//! Apps run as child processes, as their users run them: a free port to give them, a
//! guard that kills them however the test ends, and a wait until they listen.

use std::process::Child;
use std::time::Duration;

/// A port on 127.0.0.1 that nothing listens on right now, for a child process's
/// `--port`. Another process may take it before the child does; tests that can pass
/// `--port 0` and read the address back should.
///
/// # Panics
///
/// If the system has no free port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process, killed and reaped when dropped, so that a failing test leaves no
/// server behind.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Polls until something accepts connections on `127.0.0.1:port`, for at most
    /// `within`. Fails early, with the exit status, if the child exits first.
    pub async fn wait_listening(&mut self, port: u16, within: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if let Ok(Some(status)) = self.0.try_wait() {
                return Err(format!("the process exited before it listened: {status}"));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("nothing listened on port {port} within {within:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl std::ops::Deref for ChildGuard {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
