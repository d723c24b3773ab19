//! What a row of the PostgreSQL store holds, and how it is read.
//!
//! Times are `timestamptz`, which the statements hand over as microseconds since the Unix
//! epoch (`int8`, under the column's own name); counts are `integer`, booleans `boolean`.

use std::time::SystemTime;

use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder};

use crate::message::MessageStatus;
use crate::store::error::Repr;
use crate::store::listing::Dialect;
use crate::store::rows::{Columns, get};
use crate::store::time::{from_us, to_us};

impl Columns for PgRow {
    fn text(&self, column: &str) -> Result<String, Repr> {
        get(self, column)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, Repr> {
        get(self, column)
    }
    fn int(&self, column: &str) -> Result<Option<i64>, Repr> {
        Ok(get::<_, Option<i32>>(self, column)?.map(i64::from))
    }
    fn bigint(&self, column: &str) -> Result<i64, Repr> {
        get(self, column)
    }
    fn time(&self, column: &str) -> Result<Option<SystemTime>, Repr> {
        Ok(get::<_, Option<i64>>(self, column)?.map(from_us))
    }
    fn flag(&self, column: &str) -> Result<bool, Repr> {
        get(self, column)
    }
    fn bytes(&self, column: &str) -> Result<Option<Vec<u8>>, Repr> {
        get(self, column)
    }
}

impl Dialect for Postgres {
    fn push_time(q: &mut QueryBuilder<Self>, column: &str, op: &str, t: SystemTime) {
        q.push(format_args!(" AND {column} {op} (timestamptz 'epoch' + "))
            .push_bind(to_us(t))
            .push(" * interval '1 microsecond')");
    }

    fn push_statuses(q: &mut QueryBuilder<Self>, statuses: &[MessageStatus]) {
        let names: Vec<&'static str> = statuses.iter().map(|s| s.as_str()).collect();
        q.push(" AND status = ANY(")
            .push_bind(names)
            .push("::text[])");
    }
}
