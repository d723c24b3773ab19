//! Listing and replaying by [`MessageFilter`], and paging, the same on both databases.
//!
//! A listing reads the live table and the history table (each only if the filter's
//! statuses can be there), newest first, one row more than the page to know whether another
//! follows. The conditions are the same SQL on both databases but for how a time is written,
//! which each backend gives as its [`Dialect`].

use std::time::SystemTime;

use sqlx::{Database, Encode, QueryBuilder, Type};

use super::error::Repr;
use super::rows::{self, Columns};
use crate::message::{MessageMeta, MessageStatus};
use crate::outbox::{AttemptCursor, AttemptFilter, AttemptPage, MessageFilter, MessagePage};

/// The page size of a filter (a struct with a field `limit: Option<usize>`): its default,
/// its largest, and the builder that sets it.
macro_rules! paging {
    ($default:literal) => {
        /// The default page size.
        pub const DEFAULT_LIMIT: usize = $default;
        /// The largest page.
        pub const MAX_LIMIT: usize = 1000;

        /// Sets the page size.
        pub fn limit(mut self, limit: usize) -> Self {
            self.limit = Some(limit);
            self
        }

        /// The page size to use: the one set or the default, from 1 to the largest.
        pub fn effective_limit(&self) -> usize {
            self.limit
                .unwrap_or(Self::DEFAULT_LIMIT)
                .clamp(1, Self::MAX_LIMIT)
        }
    };
}

pub(crate) use paging;

/// How one database writes what a listing binds.
pub(crate) trait Dialect: Database {
    /// Pushes `column` compared (`op`) with the time `t`, bound.
    fn push_time(q: &mut QueryBuilder<Self>, column: &str, op: &str, t: SystemTime);
    /// Pushes ` AND status IN (...)` for `statuses`, bound.
    fn push_statuses(q: &mut QueryBuilder<Self>, statuses: &[MessageStatus]);
}

/// Pushes the filter's conditions (except the statuses) on a query that already has a
/// `WHERE`.
pub(crate) fn push_conditions<DB>(q: &mut QueryBuilder<DB>, filter: &MessageFilter)
where
    DB: Dialect,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
{
    if let Some(kind) = filter.kind {
        q.push(" AND kind = ").push_bind(kind.as_str());
    }
    if let Some(name) = &filter.name {
        q.push(" AND name = ").push_bind(name.clone());
    }
    if let Some(endpoint) = &filter.endpoint_id {
        q.push(" AND endpoint_id = ").push_bind(endpoint.clone());
    }
    if let Some(host) = &filter.host {
        // The URL is stored as the `url` crate writes it: `scheme://[userinfo@]host[:port]/...`,
        // with any `/` in the userinfo percent-encoded, so the host is what follows `://` or
        // the first `@` before the first `/`.
        let host = like_escape(host);
        let mut sep = " AND (";
        for scheme in ["http", "https"] {
            for end in ["/%", ":%"] {
                q.push(sep)
                    .push("url LIKE ")
                    .push_bind(format!("{scheme}://{host}{end}"))
                    .push(" ESCAPE '\\' OR (url LIKE ")
                    .push_bind(format!("{scheme}://%@{host}{end}"))
                    .push(" ESCAPE '\\' AND url NOT LIKE ")
                    .push_bind(format!("{scheme}://%/%@{host}{end}"))
                    .push(" ESCAPE '\\')");
                sep = " OR ";
            }
        }
        q.push(")");
    }
    if !filter.ids.is_empty() {
        q.push(" AND id IN (");
        let mut ids = q.separated(", ");
        for id in &filter.ids {
            ids.push_bind(id.as_str().to_owned());
        }
        q.push(")");
    }
    if let Some(after) = filter.created_after {
        DB::push_time(q, "created_at", ">=", after);
    }
    if let Some(before) = filter.created_before {
        DB::push_time(q, "created_at", "<", before);
    }
}

/// `text` matched literally by `LIKE ... ESCAPE '\'`.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The statuses a replay puts back: the filter's finished ones, or failed ones if it names
/// none. Empty when the filter names only live statuses.
pub(crate) fn replay_statuses(filter: &MessageFilter) -> Vec<MessageStatus> {
    if filter.statuses.is_empty() {
        return vec![MessageStatus::Failed];
    }
    filter
        .statuses
        .iter()
        .copied()
        .filter(|s| !s.is_live())
        .collect()
}

/// The two sides of a listing, as a backend writes them.
pub(crate) struct ListSql<'a> {
    /// `SELECT <columns> FROM <live table> WHERE true`.
    pub(crate) live: &'a str,
    /// `SELECT <columns> FROM <history table> WHERE true`.
    pub(crate) history: &'a str,
    /// Whether each side is parenthesized and limited to a page on its own (PostgreSQL
    /// then stops each scan early; SQLite cannot limit the members of a compound select).
    pub(crate) limit_each_side: bool,
}

/// The query of one page of `filter`, or `None` when no status it names can be stored.
pub(crate) fn list_query<DB>(sql: &ListSql<'_>, filter: &MessageFilter) -> Option<QueryBuilder<DB>>
where
    DB: Dialect,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    let fetch = i64::try_from(filter.effective_limit()).unwrap_or(1000) + 1;
    let (live, done): (Vec<MessageStatus>, Vec<MessageStatus>) =
        filter.statuses.iter().partition(|s| s.is_live());
    let any = filter.statuses.is_empty();
    let mut q = QueryBuilder::<DB>::new("SELECT * FROM (");
    let mut parts = 0;
    for (select, statuses) in [(sql.live, &live), (sql.history, &done)] {
        if !any && statuses.is_empty() {
            continue;
        }
        if parts > 0 {
            q.push(" UNION ALL ");
        }
        parts += 1;
        if sql.limit_each_side {
            q.push("(");
        }
        q.push(select);
        if !any {
            DB::push_statuses(&mut q, statuses);
        }
        push_conditions(&mut q, filter);
        if let Some(before) = &filter.before {
            q.push(" AND id < ").push_bind(before.as_str().to_owned());
        }
        if sql.limit_each_side {
            // Each side needs at most a page: let the primary key stop the scan early.
            q.push(" ORDER BY id DESC LIMIT ").push_bind(fetch);
            q.push(")");
        }
    }
    if parts == 0 {
        return None;
    }
    q.push(") AS page ORDER BY id DESC LIMIT ").push_bind(fetch);
    Some(q)
}

/// One page from the rows of a [`list_query`]: at most the filter's limit, newest first,
/// with the cursor of the next page when there are more.
pub(crate) fn page<R: Columns>(rows: &[R], filter: &MessageFilter) -> Result<MessagePage, Repr> {
    let limit = filter.effective_limit();
    let messages = rows
        .iter()
        .take(limit)
        .map(rows::meta)
        .collect::<Result<Vec<MessageMeta>, _>>()?;
    let next = if rows.len() > limit {
        messages.last().map(|m| m.id.clone())
    } else {
        None
    };
    Ok(MessagePage { messages, next })
}

/// The query of one page of the attempt log: `select` (the attempt columns and `seq`, from
/// the attempts table, `WHERE` already written) with `filter`'s conditions, in the order
/// the attempts were recorded.
pub(crate) fn attempt_log_query<DB>(select: &str, filter: &AttemptFilter) -> QueryBuilder<DB>
where
    DB: Dialect,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    let mut q = QueryBuilder::<DB>::new(select);
    if let Some(id) = &filter.message_id {
        q.push(" AND message_id = ")
            .push_bind(id.as_str().to_owned());
    }
    if let Some(worker) = &filter.worker {
        q.push(" AND worker = ").push_bind(worker.clone());
    }
    if let Some(after) = filter.after {
        q.push(" AND seq > ").push_bind(after.0);
    }
    let fetch = i64::try_from(filter.effective_limit()).unwrap_or(1000) + 1;
    q.push(" ORDER BY seq LIMIT ").push_bind(fetch);
    q
}

/// One page of the attempt log from the rows of an [`attempt_log_query`].
pub(crate) fn attempt_page<R: Columns>(
    rows: &[R],
    filter: &AttemptFilter,
) -> Result<AttemptPage, Repr> {
    let limit = filter.effective_limit();
    let page = &rows[..rows.len().min(limit)];
    let attempts = page
        .iter()
        .map(rows::attempt)
        .collect::<Result<Vec<_>, _>>()?;
    let next = match page.last() {
        Some(last) if rows.len() > limit => Some(AttemptCursor(last.bigint("seq")?)),
        _ => None,
    };
    Ok(AttemptPage { attempts, next })
}
