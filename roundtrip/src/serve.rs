//! Serving an app: bind, serve until SIGINT or SIGTERM, then stop gracefully — in-flight
//! requests finish, and the delivery workers stop claiming and finish their attempts.
//! Connections are served within [`ServerLimits`](crate::ServerLimits) (header and idle timeouts, a cap).

mod connection;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::app::{App, BuildError, BuiltApp};
use crate::delivery::error::DeliverySetupError;
use crate::lifespan::StartupError;

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The app could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// Delivery could not start (the outbox database could not be opened, say).
    #[error("deliveries cannot start: {0}")]
    Delivery(#[source] DeliverySetupError),
    /// The configuration is wrong (a malformed signing secret, say).
    #[error(transparent)]
    Config(DeliverySetupError),
    /// The app's lifespan failed to start.
    #[error(transparent)]
    Startup(StartupError),
    /// The server failed while running.
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// How long in-flight delivery attempts may run on after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

impl<S: Clone + Send + Sync + 'static> App<S> {
    /// Builds the app, starts its delivery workers, and serves on `addr` until SIGINT or
    /// SIGTERM.
    pub async fn serve(self, addr: &str) -> Result<(), ServeError> {
        let built = self.build()?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind {
                addr: addr.to_owned(),
                source,
            })?;
        built.serve_on(listener, shutdown_signal()).await
    }
}

impl BuiltApp {
    /// Serves on an already bound listener until `shutdown` completes, with the delivery
    /// workers running beside the server. The app's lifespan starts before the first
    /// connection is accepted and stops once the server has drained.
    pub async fn serve_on(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let local: Option<SocketAddr> = listener.local_addr().ok();
        self.delivery
            .check_configuration()
            .map_err(ServeError::Config)?;
        let started = self.startup().await.map_err(ServeError::Startup)?;
        let workers = match self.start_delivery().await {
            Ok(workers) => workers,
            Err(err) => {
                started.shutdown().await;
                return Err(ServeError::Delivery(err));
            }
        };
        if let Some(local) = local {
            tracing::info!(
                "{} listening on http://{local} (docs at /docs)",
                self.openapi.info.title
            );
        }
        connection::serve(listener, self.router, self.server_limits, shutdown).await;
        if let Some(workers) = workers {
            workers.shutdown(SHUTDOWN_GRACE).await;
        }
        started.shutdown().await;
        Ok(())
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests and in-flight deliveries");
}
