//! The invoices API with invoices stored in the same database as the outbox, and each
//! callback enqueued **inside the transaction that stores the invoice**: the invoice row
//! and its callback commit together, or neither does.
//!
//! Creating an invoice whose id already exists fails on the table's primary key; the
//! transaction rolls back, and no callback is sent for the refused request. This works on
//! the embedded SQLite outbox and on PostgreSQL alike.
//!
//! The app keeps its own table on its own sqlx pool, and the outbox writes the callback
//! into the app's transaction with `enqueue_in`: the app never touches the outbox's tables.

use std::sync::Arc;

use axum::extract::State;
use roundtrip::delivery::message::NewMessage;
use roundtrip::delivery::outbox::Outbox;
use roundtrip::delivery::postgres::{PgOptions, PgOutbox};
use roundtrip::delivery::sqlite::{SqliteOptions, SqliteOutbox};
use roundtrip::{App, HttpError, Json, Notify, Query, SendOptions, post};
use serde_json::{Value, json};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

use crate::{CallbackUrl, Invoice, InvoiceEvent, invoice_notification};

/// Where invoices and the outbox live: one database, two stores to choose from.
#[derive(Clone)]
pub enum Store {
    /// An embedded SQLite file: the outbox, and a pool of the app's own on the same file.
    Sqlite {
        /// The outbox.
        outbox: SqliteOutbox,
        /// The app's connections to the same file.
        pool: SqlitePool,
    },
    /// PostgreSQL: the outbox, and a pool of the app's own on the same database.
    Postgres {
        /// The outbox.
        outbox: PgOutbox,
        /// The app's connections to the same database.
        pool: PgPool,
    },
}

impl Store {
    /// Opens the SQLite file at `path` (created if missing) with the invoices table.
    pub async fn sqlite(path: &std::path::Path) -> Result<Self, String> {
        let outbox = SqliteOutbox::open(SqliteOptions::new(path))
            .await
            .map_err(|e| e.to_string())?;
        let pool = SqlitePool::connect_with(
            SqliteConnectOptions::new()
                .filename(path)
                .busy_timeout(std::time::Duration::from_secs(5)),
        )
        .await
        .map_err(|e| e.to_string())?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS invoices (id TEXT PRIMARY KEY, customer TEXT NOT NULL, total REAL NOT NULL)",
        )
        .execute(&pool)
        .await
        .map_err(|e| e.to_string())?;
        Ok(Store::Sqlite { outbox, pool })
    }

    /// Opens the outbox of the PostgreSQL database at `url` in `schema`, and a pool of the
    /// app's own whose invoices table lives in that schema too (the app's `search_path`), so
    /// that each test keeps to its own schema.
    pub async fn postgres(url: &str, schema: &str) -> Result<Self, String> {
        let outbox = PgOutbox::connect_with(PgOptions::new(url).schema(schema))
            .await
            .map_err(|e| e.to_string())?;
        let connect: PgConnectOptions = url.parse().map_err(|e: sqlx::Error| e.to_string())?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(connect.options([("search_path", schema)]))
            .await
            .map_err(|e| e.to_string())?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS invoices (id TEXT PRIMARY KEY, customer TEXT NOT NULL, total DOUBLE PRECISION NOT NULL)",
        )
        .execute(&pool)
        .await
        .map_err(|e| e.to_string())?;
        Ok(Store::Postgres { outbox, pool })
    }

    /// The outbox, for the app's delivery workers.
    pub fn outbox(&self) -> Arc<dyn Outbox> {
        match self {
            Store::Sqlite { outbox, .. } => Arc::new(outbox.clone()),
            Store::Postgres { outbox, .. } => Arc::new(outbox.clone()),
        }
    }

    /// How many invoices are stored.
    pub async fn invoice_count(&self) -> Result<i64, String> {
        match self {
            Store::Sqlite { pool, .. } => sqlx::query_scalar("SELECT count(*) FROM invoices")
                .fetch_one(pool)
                .await
                .map_err(|e| e.to_string()),
            Store::Postgres { pool, .. } => sqlx::query_scalar("SELECT count(*) FROM invoices")
                .fetch_one(pool)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Stores the invoice and enqueues its callback in one transaction.
    async fn create(
        &self,
        invoice: &Invoice,
        callback: Option<NewMessage>,
    ) -> Result<(), StoreError> {
        let messages: Vec<NewMessage> = callback.into_iter().collect();
        match self {
            Store::Sqlite { outbox, pool } => {
                let mut conn = pool.acquire().await.map_err(StoreError::other)?;
                let mut tx = conn
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(StoreError::other)?;
                sqlx::query("INSERT INTO invoices (id, customer, total) VALUES (?1, ?2, ?3)")
                    .bind(&invoice.id)
                    .bind(&invoice.customer)
                    .bind(invoice.total)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from_insert)?;
                outbox
                    .enqueue_in(&mut tx, messages)
                    .await
                    .map_err(StoreError::other)?;
                tx.commit().await.map_err(StoreError::other)?;
                // The workers would find it at their next poll; wake them now.
                outbox.notify();
            }
            Store::Postgres { outbox, pool } => {
                let mut tx = pool.begin().await.map_err(StoreError::other)?;
                sqlx::query("INSERT INTO invoices (id, customer, total) VALUES ($1, $2, $3)")
                    .bind(&invoice.id)
                    .bind(&invoice.customer)
                    .bind(invoice.total)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from_insert)?;
                outbox
                    .enqueue_in(&mut tx, messages)
                    .await
                    .map_err(StoreError::other)?;
                // NOTIFY is delivered on commit: the workers wake with it.
                tx.commit().await.map_err(StoreError::other)?;
            }
        }
        Ok(())
    }
}

enum StoreError {
    Exists,
    Other(String),
}

impl StoreError {
    fn other(err: impl std::fmt::Display) -> Self {
        StoreError::Other(err.to_string())
    }

    fn from_insert(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Exists,
            _ => StoreError::other(err),
        }
    }
}

/// Creates an invoice: the row and its callback in one transaction.
async fn create_invoice(
    State(store): State<Store>,
    Query(query): Query<CallbackUrl>,
    notify: Notify<InvoiceEvent>,
    Json(invoice): Json<Invoice>,
) -> Result<Json<Value>, HttpError> {
    let callback = match query.callback_url {
        Some(_) => {
            let event = InvoiceEvent {
                description: format!("Invoice {} for {} paid", invoice.id, invoice.customer),
                paid: true,
            };
            // `?` turns a SendError into the HttpError it answers as (a 422 for a refused URL).
            Some(notify.message(event, SendOptions::new()).await?)
        }
        None => None,
    };
    match store.create(&invoice, callback).await {
        Ok(()) => Ok(Json(json!({"msg": "Invoice received"}))),
        Err(StoreError::Exists) => Err(HttpError::conflict(format!(
            "invoice {} already exists",
            invoice.id
        ))),
        Err(StoreError::Other(reason)) => {
            tracing::error!("the invoice store failed: {reason}");
            Err(HttpError::internal("Internal Server Error"))
        }
    }
}

/// The app on `store`: the outbox it delivers from is the store's.
pub fn app(store: Store) -> App<Store> {
    App::with_state(store.clone())
        .title("Invoices API (transactional)")
        .outbox(store.outbox())
        .route(
            "/invoices/",
            post(create_invoice)
                .response_status(409, "The invoice already exists")
                .callback(invoice_notification()),
        )
}
