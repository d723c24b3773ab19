//! `deliveries`: list, show, retry, replay and cancel the messages of the outbox, against
//! the SQLite file or PostgreSQL, while the app runs too.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Subcommand;
use roundtrip_delivery::message::{Attempt, MessageKind, MessageMeta, MessageStatus};
use roundtrip_delivery::outbox::{MessageFilter, MessageId, Outbox};
use serde_json::{Value, json};

use crate::app::App;
use crate::deliveries::Ops;

#[derive(Debug, clap::Args)]
pub(super) struct DeliveriesArgs {
    #[command(subcommand)]
    command: DeliveriesCommand,
    /// The outbox database: `sqlite://file.db` or `postgres://...` (the app's own by
    /// default).
    #[arg(long, global = true, env = crate::DATABASE_URL_ENV)]
    database_url: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct FilterArgs {
    /// Only messages in these states (pending, leased, succeeded, failed, cancelled).
    #[arg(long, value_delimiter = ',')]
    status: Vec<MessageStatus>,
    /// Only callbacks or only webhooks.
    #[arg(long)]
    kind: Option<MessageKind>,
    /// Only this callback or webhook name.
    #[arg(long)]
    name: Option<String>,
    /// Only messages for this webhook endpoint.
    #[arg(long)]
    endpoint: Option<String>,
    /// Only messages sent to this host (any port).
    #[arg(long, value_parser = parse_host)]
    host: Option<String>,
    /// Only messages created since: RFC 3339 (`2026-11-25T10:00:00Z`) or an age (`30m`,
    /// `6h`, `7d`).
    #[arg(long, value_parser = parse_time)]
    since: Option<SystemTime>,
    /// Only messages created before: RFC 3339 or an age.
    #[arg(long, value_parser = parse_time)]
    until: Option<SystemTime>,
}

impl FilterArgs {
    fn is_empty(&self) -> bool {
        self.status.is_empty()
            && self.kind.is_none()
            && self.name.is_none()
            && self.endpoint.is_none()
            && self.host.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    fn filter(&self) -> MessageFilter {
        let mut filter = MessageFilter::new();
        for status in &self.status {
            filter = filter.status(*status);
        }
        if let Some(kind) = self.kind {
            filter = filter.kind(kind);
        }
        if let Some(name) = &self.name {
            filter = filter.name(name.clone());
        }
        if let Some(endpoint) = &self.endpoint {
            filter = filter.endpoint_id(endpoint.clone());
        }
        if let Some(host) = &self.host {
            filter = filter.host(host.clone());
        }
        if let Some(since) = self.since {
            filter = filter.created_after(since);
        }
        if let Some(until) = self.until {
            filter = filter.created_before(until);
        }
        filter
    }
}

#[derive(Debug, Subcommand)]
enum DeliveriesCommand {
    /// List messages, newest first.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// At most this many (1 or more).
        #[arg(long, default_value_t = 50, value_parser = parse_limit)]
        limit: usize,
    },
    /// Show one message with its attempts, response codes, timings and contract
    /// violations.
    Show {
        /// The message id (`msg_...`).
        id: MessageId,
    },
    /// Deliver one message now: a finished one goes back in the queue, one waiting out its
    /// backoff is made due.
    Retry {
        /// The message id.
        id: MessageId,
    },
    /// Send one finished message again, or every finished message that matches the
    /// filters (failed ones by default).
    Replay {
        /// The message id (`msg_...`); leave out to replay by filters.
        id: Option<MessageId>,
        #[command(flatten)]
        filter: FilterArgs,
        /// Only count what would be replayed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Cancel a message that is still owed a delivery.
    Cancel {
        /// The message id.
        id: MessageId,
    },
}

pub(super) async fn run<S: Clone + Send + Sync + 'static>(
    app: App<S>,
    args: DeliveriesArgs,
) -> ExitCode {
    let app = match &args.database_url {
        Some(url) => app.database_url(url.clone()),
        None => app,
    };
    let built = match app.build() {
        Ok(built) => built,
        Err(err) => return fail(&err.to_string()),
    };
    if let Some(path) = built.sqlite_path()
        && path.as_os_str().is_empty()
    {
        return fail("the database URL names no file: use sqlite://path/to/outbox.db");
    }
    if let Some(path) = built.sqlite_path()
        && !path.exists()
    {
        return fail(&format!(
            "no outbox at {}: the file does not exist (pass --database-url, or run from the app's directory)",
            path.display()
        ));
    }
    let outbox = match built.delivery.existing_outbox().await {
        Ok(outbox) => outbox,
        Err(err) => return fail(&err.to_string()),
    };
    // The same operations as the deliveries API.
    let ops = Ops {
        outbox: outbox.clone(),
        subscriptions: built.subscriptions.clone(),
        catalogue: Default::default(),
        health_window: crate::deliveries::DEFAULT_HEALTH_WINDOW,
    };
    let out = Output {
        json: args.json,
        colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let result = match args.command {
        DeliveriesCommand::List { filter, limit } => {
            list(&*outbox, filter.filter(), limit, &out).await
        }
        DeliveriesCommand::Show { id } => show(&*outbox, &id, &out).await,
        DeliveriesCommand::Retry { id } => retry(&ops, &id, &out).await,
        DeliveriesCommand::Replay {
            id: Some(id),
            filter,
            dry_run,
        } => {
            if !filter.is_empty() || dry_run {
                Err("give a message id or filters, not both".to_owned())
            } else {
                replay_one(&ops, &id, &out).await
            }
        }
        DeliveriesCommand::Replay {
            id: None,
            filter,
            dry_run,
        } => replay(outbox.clone(), filter.filter(), dry_run, &out).await,
        DeliveriesCommand::Cancel { id } => cancel(&ops, &id, &out).await,
    };
    match result {
        Ok(code) => code,
        Err(err) => fail(&err),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

struct Output {
    json: bool,
    colour: bool,
}

impl Output {
    fn status(&self, status: MessageStatus) -> String {
        if !self.colour {
            return status.to_string();
        }
        let code = match status {
            MessageStatus::Succeeded => "32",
            MessageStatus::Failed => "31",
            MessageStatus::Pending | MessageStatus::Leased => "33",
            MessageStatus::Cancelled => "90",
        };
        format!("\u{1b}[{code}m{status}\u{1b}[0m")
    }

    fn print_json(&self, value: &Value) {
        let text = serde_json::to_string_pretty(value).unwrap_or_default();
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    }
}

async fn list(
    outbox: &dyn Outbox,
    filter: MessageFilter,
    limit: usize,
    out: &Output,
) -> Result<ExitCode, String> {
    let mut messages = Vec::new();
    let mut filter = filter;
    let mut more = false;
    while messages.len() < limit {
        let page = outbox
            .list(&filter.clone().limit(limit - messages.len()))
            .await
            .map_err(|e| e.to_string())?;
        messages.extend(page.messages);
        more = page.next.is_some();
        match page.next {
            Some(next) => filter = filter.before(next),
            None => break,
        }
    }
    if out.json {
        out.print_json(&Value::Array(messages.iter().map(meta_json).collect()));
        return Ok(ExitCode::SUCCESS);
    }
    if messages.is_empty() {
        println!("no messages match");
        return Ok(ExitCode::SUCCESS);
    }
    if more {
        // On stderr, so a pipe gets the table alone.
        eprintln!(
            "the newest {limit} are shown and more match: raise --limit or narrow the filters"
        );
    }
    let rows: Vec<Vec<String>> = messages
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.status.to_string(),
                m.kind.to_string(),
                m.name.clone(),
                m.attempts.to_string(),
                format_time(m.created_at),
                roundtrip_delivery::message::redact_url(&m.url),
            ]
        })
        .collect();
    print_table(
        &["ID", "STATUS", "KIND", "NAME", "ATTEMPTS", "CREATED", "URL"],
        &rows,
        |col, cell| {
            if col == 1 {
                cell.parse()
                    .map(|s| out.status(s))
                    .unwrap_or_else(|_| cell.to_owned())
            } else {
                cell.to_owned()
            }
        },
    );
    Ok(ExitCode::SUCCESS)
}

async fn show(outbox: &dyn Outbox, id: &MessageId, out: &Output) -> Result<ExitCode, String> {
    let message = outbox
        .get(id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no message {id}"))?;
    let attempts = outbox.attempts(id).await.map_err(|e| e.to_string())?;
    if out.json {
        let mut value = meta_json(&message.meta);
        value["body"] = serde_json::from_slice(&message.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&message.body).into_owned()));
        value["attempt_log"] = Value::Array(attempts.iter().map(attempt_json).collect());
        out.print_json(&value);
        return Ok(ExitCode::SUCCESS);
    }
    let m = &message.meta;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}  {}", m.id, out.status(m.status));
    let _ = writeln!(
        stdout,
        "  {} `{}`  {} {}",
        m.kind,
        m.name,
        m.method,
        roundtrip_delivery::message::redact_url(&m.url)
    );
    let _ = writeln!(stdout, "  created {}", format_time(m.created_at));
    if let Some(next) = m.next_attempt_at {
        let _ = writeln!(stdout, "  next attempt {}", format_time(next));
    }
    if let Some(error) = &m.last_error {
        let _ = writeln!(stdout, "  last error: {error}");
    }
    let _ = writeln!(stdout, "  body: {}", String::from_utf8_lossy(&message.body));
    drop(stdout);
    if attempts.is_empty() {
        println!("  no attempts yet");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = attempts
        .iter()
        .map(|a| {
            vec![
                a.number.to_string(),
                format_time(a.started_at),
                format!("{} ms", a.duration.as_millis()),
                a.response_status.map_or("-".to_owned(), |s| s.to_string()),
                a.decision.clone(),
                a.error
                    .as_ref()
                    .map(|e| format!("{}: {}", e.kind, e.message))
                    .or_else(|| {
                        a.contract_violation
                            .as_ref()
                            .map(|v| format!("contract: {v}"))
                    })
                    .unwrap_or_default(),
            ]
        })
        .collect();
    print_table(
        &["#", "STARTED", "TOOK", "STATUS", "OUTCOME", "NOTE"],
        &rows,
        |_, cell| cell.to_owned(),
    );
    Ok(ExitCode::SUCCESS)
}

async fn retry(ops: &Ops, id: &MessageId, out: &Output) -> Result<ExitCode, String> {
    let summary = ops.retry(id.as_str()).await.map_err(|e| e.to_string())?;
    Ok(report(&summary, out, " again, due now"))
}

async fn replay_one(ops: &Ops, id: &MessageId, out: &Output) -> Result<ExitCode, String> {
    let summary = ops.replay(id.as_str()).await.map_err(|e| e.to_string())?;
    Ok(report(&summary, out, " again, due now"))
}

async fn cancel(ops: &Ops, id: &MessageId, out: &Output) -> Result<ExitCode, String> {
    let summary = ops.cancel(id.as_str()).await.map_err(|e| e.to_string())?;
    Ok(report(&summary, out, ""))
}

/// What a retry, a replay or a cancel left the message as: its summary in JSON, or
/// "`id` is `status``after`".
fn report(summary: &crate::deliveries::MessageSummary, out: &Output, after: &str) -> ExitCode {
    if out.json {
        out.print_json(&serde_json::to_value(summary).unwrap_or_default());
    } else {
        println!(
            "{} is {}{after}",
            summary.id,
            out.status(summary.status.into())
        );
    }
    ExitCode::SUCCESS
}

/// Replays page by page, so progress can be shown and a large replay never holds one long
/// transaction.
async fn replay(
    outbox: Arc<dyn Outbox>,
    filter: MessageFilter,
    dry_run: bool,
    out: &Output,
) -> Result<ExitCode, String> {
    let mut filter = filter;
    if filter.statuses.is_empty() {
        filter = filter.status(MessageStatus::Failed);
    }
    if filter.statuses.iter().any(|s| s.is_live()) {
        return Err(
            "only finished messages can be replayed: use --status failed, cancelled or succeeded"
                .to_owned(),
        );
    }
    let mut ids = Vec::new();
    let mut page_filter = filter.clone().limit(MessageFilter::MAX_LIMIT);
    loop {
        let page = outbox.list(&page_filter).await.map_err(|e| e.to_string())?;
        ids.extend(page.messages.into_iter().map(|m| m.id));
        match page.next {
            Some(next) => page_filter = page_filter.before(next),
            None => break,
        }
    }
    if ids.is_empty() && !out.json {
        println!("no messages match: nothing to replay");
        return Ok(ExitCode::SUCCESS);
    }
    if dry_run {
        if out.json {
            out.print_json(&json!({"would_replay": ids.len()}));
        } else {
            println!("{} message(s) would be replayed", ids.len());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let show_progress = !out.json && std::io::stderr().is_terminal();
    let mut replayed = 0usize;
    let mut skipped = 0usize;
    for (i, id) in ids.iter().enumerate() {
        match outbox.retry(id).await {
            Ok(_) => replayed += 1,
            // Retried or cancelled by someone else meanwhile: not an error for a bulk replay.
            Err(e) if e.is_conflict() || e.is_not_found() => skipped += 1,
            Err(e) => return Err(format!("after {replayed} replayed: {e}")),
        }
        if show_progress && (i % 50 == 0 || i + 1 == ids.len()) {
            eprint!("\rreplayed {}/{}", i + 1, ids.len());
        }
    }
    if show_progress {
        eprintln!();
    }
    if out.json {
        out.print_json(&json!({"replayed": replayed, "skipped": skipped}));
    } else {
        println!("{replayed} message(s) replayed, {skipped} skipped");
    }
    Ok(ExitCode::SUCCESS)
}

fn meta_json(m: &MessageMeta) -> Value {
    json!({
        "id": m.id.to_string(),
        "status": m.status.as_str(),
        "kind": m.kind.as_str(),
        "name": m.name,
        "url": roundtrip_delivery::message::redact_url(&m.url),
        "method": m.method.as_str(),
        "created_at": format_time(m.created_at),
        "attempts": m.attempts,
        "next_attempt_at": m.next_attempt_at.map(format_time),
        "finished_at": m.finished_at.map(format_time),
        "last_error": m.last_error,
        "idempotency_key": m.idempotency_key,
        "endpoint_id": m.endpoint_id,
        "lost_leases": m.lost_leases,
    })
}

fn attempt_json(a: &Attempt) -> Value {
    json!({
        "number": a.number,
        "worker": a.worker,
        "started_at": format_time(a.started_at),
        "duration_ms": a.duration.as_secs_f64() * 1000.0,
        "response_status": a.response_status,
        "response_body": String::from_utf8_lossy(&a.response_body),
        "response_truncated": a.response_truncated,
        "error": a.error.as_ref().map(|e| json!({"kind": e.kind.as_str(), "message": e.message})),
        "contract_violation": a.contract_violation,
        "outcome": a.decision,
        "next_attempt_at": a.next_attempt_at.map(format_time),
    })
}

fn format_time(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    chrono::DateTime::<chrono::Utc>::from_timestamp(since.as_secs() as i64, since.subsec_nanos())
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| format!("{}s", since.as_secs()))
}

/// A host as a URL writes it.
fn parse_host(text: &str) -> Result<String, String> {
    crate::deliveries::host_problem(text)
        .map_or_else(|| Ok(text.to_ascii_lowercase()), |why| Err(why.to_owned()))
}

/// A positive number of messages.
fn parse_limit(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("the limit must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a number of messages")),
    }
}

/// RFC 3339, or an age such as `90s`, `30m`, `6h`, `7d` counted back from now.
fn parse_time(text: &str) -> Result<SystemTime, String> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        let secs = time.timestamp();
        return u64::try_from(secs)
            .map(|s| UNIX_EPOCH + Duration::from_secs(s))
            .map_err(|_| format!("{text} is before 1970"));
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let amount: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is neither RFC 3339 nor an age like 30m, 6h or 7d"))?;
    let seconds = match unit {
        "s" => amount,
        "m" => amount * 60,
        "h" => amount * 3600,
        "d" => amount * 86_400,
        _ => return Err(format!("`{text}`: the unit must be s, m, h or d")),
    };
    SystemTime::now()
        .checked_sub(Duration::from_secs(seconds))
        .ok_or_else(|| format!("`{text}` is too far back"))
}

fn print_table(headers: &[&str], rows: &[Vec<String>], style: impl Fn(usize, &str) -> String) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut stdout = std::io::stdout().lock();
    let header: Vec<String> = headers
        .iter()
        .zip(&widths)
        .map(|(h, w)| format!("{h:<w$}"))
        .collect();
    let _ = writeln!(stdout, "{}", header.join("  ").trim_end());
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let width = widths.get(i).copied().unwrap_or(0);
                let pad = width.saturating_sub(cell.chars().count());
                format!("{}{}", style(i, cell), " ".repeat(pad))
            })
            .collect();
        let _ = writeln!(stdout, "{}", cells.join("  ").trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_or_ages() {
        assert_eq!(
            parse_time("1970-01-01T00:01:00Z"),
            Ok(UNIX_EPOCH + Duration::from_secs(60))
        );
        let an_hour_ago = parse_time("1h").expect("age");
        let elapsed = SystemTime::now()
            .duration_since(an_hour_ago)
            .expect("in the past");
        assert!(elapsed >= Duration::from_secs(3600) && elapsed < Duration::from_secs(3700));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("5w").is_err());
    }
}
