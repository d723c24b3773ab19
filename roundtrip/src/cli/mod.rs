//! The command line every roundtrip app binary gets with one line,
//! `app.run().await`: `serve`, `openapi` (print, write, lint) and `deliveries` (list,
//! show, retry, replay).
//!
//! Output is for people in a terminal (tables; colour only on a TTY), with `--json` for
//! scripts. Errors go to stderr with a non-zero exit code.

mod deliveries;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use roundtrip_openapi::lint::{Severity, lint};

use crate::app::App;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "A roundtrip app: serve it, print its OpenAPI document, inspect its deliveries"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API and deliver its callbacks and webhooks (the default).
    Serve(ServeArgs),
    /// Print the OpenAPI document, write it to a file, or lint it.
    Openapi {
        #[command(subcommand)]
        action: Option<OpenapiAction>,
        /// Write the document to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Inspect and replay the messages in the outbox.
    Deliveries(deliveries::DeliveriesArgs),
}

#[derive(Debug, Default, clap::Args)]
struct ServeArgs {
    /// The address to listen on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    host: String,
    /// The port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8000)]
    port: u16,
    /// The outbox database: `sqlite://file.db` or `postgres://...`.
    #[arg(long, env = crate::DATABASE_URL_ENV)]
    database_url: Option<String>,
    /// Let callbacks and webhooks reach loopback addresses (127.0.0.1, ::1). For local
    /// development and tests only: it lets a client make the server call itself.
    #[arg(long, env = "ROUNDTRIP_ALLOW_LOOPBACK")]
    allow_loopback: bool,
    /// How long a worker's claim on a message lasts before other workers may take it
    /// over, in seconds (60 by default; must exceed the delivery timeout).
    #[arg(long, env = "ROUNDTRIP_DELIVERY_LEASE")]
    delivery_lease: Option<f64>,
    /// How long one delivery attempt may take in all, in seconds (15 by default).
    #[arg(long, env = "ROUNDTRIP_DELIVERY_TIMEOUT")]
    delivery_timeout: Option<f64>,
    /// The waits before each retry of a delivery, e.g. `1s,5s,30s` (for a staging box or
    /// tests), or `none` for a single attempt. The default is 5 s, 5 min, 30 min, 2 h,
    /// 5 h, 10 h, 10 h.
    #[arg(long, env = "ROUNDTRIP_RETRY_SCHEDULE", value_name = "WAITS")]
    retry_schedule: Option<roundtrip_delivery::retry::RetrySchedule>,
    /// Send spans and metrics to this OTLP/HTTP collector, e.g. `http://127.0.0.1:4318`:
    /// a span per request and per delivery attempt, and the delivery metrics.
    #[cfg(feature = "opentelemetry")]
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// With `--otlp-endpoint`: send each attempt's `traceparent` to the receiver.
    #[cfg(feature = "opentelemetry")]
    #[arg(long, env = "ROUNDTRIP_SEND_TRACEPARENT")]
    send_traceparent: bool,
    /// The path prefix a proxy in front of the app strips (FastAPI's `root_path`): the
    /// document and the docs pages use it.
    #[arg(long, env = "ROOT_PATH")]
    root_path: Option<String>,
    /// How long a client may take to send a request head, in seconds (10 by default);
    /// slower connections are closed.
    #[arg(long, env = "ROUNDTRIP_HEADER_TIMEOUT")]
    header_timeout: Option<f64>,
    /// How long a kept-alive connection may sit idle, in seconds (5 by default).
    #[arg(long, env = "ROUNDTRIP_IDLE_TIMEOUT")]
    idle_timeout: Option<f64>,
    /// How many connections may be open at once (by default three quarters of the
    /// open-file limit, at most 10000); more wait in the listen backlog.
    #[arg(long, env = "ROUNDTRIP_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
}

#[derive(Debug, Subcommand)]
enum OpenapiAction {
    /// Report FastAPI-only expressions, dangling `$ref`s, duplicate operation ids and
    /// missing descriptions; exits non-zero on errors.
    Lint {
        /// Exit non-zero on warnings too.
        #[arg(long)]
        strict: bool,
    },
}

impl<S: Clone + Send + Sync + 'static> App<S> {
    /// Runs the app's command line with the process's arguments.
    pub async fn run(self) -> ExitCode {
        self.run_with(std::env::args_os()).await
    }

    /// Runs the app's command line with the given arguments (the first is the program
    /// name).
    pub async fn run_with<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let cli = match Cli::try_parse_from(args) {
            Ok(cli) => cli,
            Err(err) => {
                let _ = err.print();
                return if err.use_stderr() {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
        };
        let command = cli
            .command
            .unwrap_or(Command::Serve(ServeArgs::parse_defaults()));
        // A server reports what it does; a one-off command prints its answer and only
        // warns (the database driver's notices are noise to someone reading a table).
        init_tracing(match command {
            Command::Serve(_) => "info,sqlx=warn",
            _ => "warn",
        });
        match command {
            Command::Serve(args) => serve(self, args).await,
            Command::Openapi { action, output } => openapi(self, action, output),
            Command::Deliveries(args) => deliveries::run(self, args).await,
        }
    }
}

impl ServeArgs {
    /// The defaults, with the environment applied, for a bare `app` with no command.
    fn parse_defaults() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            args: ServeArgs,
        }
        Only::try_parse_from(["serve"])
            .map(|o| o.args)
            .unwrap_or(ServeArgs {
                host: "127.0.0.1".to_owned(),
                port: 8000,
                database_url: None,
                allow_loopback: false,
                delivery_lease: None,
                delivery_timeout: None,
                retry_schedule: None,
                #[cfg(feature = "opentelemetry")]
                otlp_endpoint: None,
                #[cfg(feature = "opentelemetry")]
                send_traceparent: false,
                root_path: None,
                header_timeout: None,
                idle_timeout: None,
                max_connections: None,
            })
    }
}

/// Logs to stderr, filtered by `RUST_LOG`, or `default` without it.
fn init_tracing(default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

async fn serve<S: Clone + Send + Sync + 'static>(app: App<S>, args: ServeArgs) -> ExitCode {
    let app = match args.database_url {
        Some(url) => app.database_url(url),
        None => app,
    };
    let app = match args.root_path {
        Some(prefix) => app.root_path(prefix),
        None => app,
    };
    let seconds = |value: Option<f64>, flag: &str| -> Result<Option<std::time::Duration>, String> {
        value
            .map(|v| {
                std::time::Duration::try_from_secs_f64(v)
                    .map_err(|_| format!("{flag} must be a positive number of seconds"))
            })
            .transpose()
    };
    let (lease, timeout, header_timeout, idle_timeout) = match (
        seconds(args.delivery_lease, "--delivery-lease"),
        seconds(args.delivery_timeout, "--delivery-timeout"),
        seconds(args.header_timeout, "--header-timeout"),
        seconds(args.idle_timeout, "--idle-timeout"),
    ) {
        (Ok(lease), Ok(timeout), Ok(header), Ok(idle)) => (lease, timeout, header, idle),
        (Err(err), ..) | (_, Err(err), ..) | (.., Err(err), _) | (.., Err(err)) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    if args.max_connections == Some(0) {
        eprintln!("error: --max-connections must be at least 1");
        return ExitCode::from(2);
    }
    let mut limits = app.get_server_limits();
    if let Some(header) = header_timeout {
        limits = limits.header_timeout(header);
    }
    if let Some(idle) = idle_timeout {
        limits = limits.idle_timeout(idle);
    }
    if let Some(max) = args.max_connections {
        limits = limits.max_connections(max);
    }
    let app = app.server_limits(limits);
    let schedule = args.retry_schedule;
    let app = if lease.is_some() || timeout.is_some() || schedule.is_some() {
        app.configure_dispatcher(move |mut config| {
            if let Some(schedule) = &schedule {
                config = config.retry_schedule(schedule.clone());
            }
            if let Some(lease) = lease {
                config = config.lease(lease);
            }
            if let Some(timeout) = timeout {
                // The connect timeout is part of the total: never longer than it.
                config = config
                    .request_timeout(timeout)
                    .connect_timeout(timeout.min(std::time::Duration::from_secs(5)));
            }
            config
        })
    } else {
        app
    };
    let app = if args.allow_loopback {
        tracing::warn!("callbacks and webhooks may reach loopback addresses (--allow-loopback)");
        app.allow_loopback_deliveries()
    } else {
        app
    };
    #[cfg(feature = "opentelemetry")]
    let (app, exporters) = match &args.otlp_endpoint {
        Some(endpoint) => {
            let title = app.info.title.clone();
            match crate::telemetry::install_otlp(endpoint, &title) {
                Ok(exporters) => (
                    app.opentelemetry(
                        crate::telemetry::Telemetry::new().send_traceparent(args.send_traceparent),
                    ),
                    Some(exporters),
                ),
                Err(err) => {
                    eprintln!("error: {err}");
                    return ExitCode::from(2);
                }
            }
        }
        None => (app, None),
    };
    let addr = format!("{}:{}", args.host, args.port);
    let served = app.serve(&addr).await;
    #[cfg(feature = "opentelemetry")]
    if let Some(exporters) = exporters {
        // The SDK's export threads block: stop them off the async workers.
        let _ = tokio::task::spawn_blocking(move || exporters.shutdown()).await;
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn openapi<S: Clone + Send + Sync + 'static>(
    app: App<S>,
    action: Option<OpenapiAction>,
    output: Option<PathBuf>,
) -> ExitCode {
    let doc = match app.openapi() {
        Ok(doc) => doc,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    match action {
        Some(OpenapiAction::Lint { strict }) => {
            let findings = lint(&doc);
            let mut stdout = std::io::stdout().lock();
            for finding in &findings {
                let _ = writeln!(stdout, "{finding}");
            }
            let errors = findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count();
            let warnings = findings.len() - errors;
            let _ = writeln!(stdout, "{errors} error(s), {warnings} warning(s)");
            if errors > 0 || (strict && warnings > 0) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        None => {
            let mut text = match serde_json::to_string_pretty(&doc) {
                Ok(text) => text,
                Err(err) => {
                    eprintln!("error: the document cannot be written: {err}");
                    return ExitCode::FAILURE;
                }
            };
            text.push('\n');
            match output {
                Some(path) => match std::fs::write(&path, text) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(err) => {
                        eprintln!("error: cannot write {}: {err}", path.display());
                        ExitCode::FAILURE
                    }
                },
                None => {
                    let _ = std::io::stdout().lock().write_all(text.as_bytes());
                    ExitCode::SUCCESS
                }
            }
        }
    }
}
