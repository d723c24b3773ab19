//! The changes of an endpoint, each written once over the steps a backend takes on its
//! tables.
//!
//! A backend says how to begin and commit a transaction, read, lock and find a duplicate of
//! an endpoint, and write each change ([`Tables`]); creating, updating, deleting, rotating,
//! enabling and disabling are the same flows on SQLite and PostgreSQL. The trait impls that
//! make a backend an [`EndpointStore`], a [`SecretSource`] and an [`AttemptObserver`] are
//! written once too ([`endpoint_store!`]).
//!
//! [`EndpointStore`]: super::EndpointStore
//! [`SecretSource`]: crate::worker::SecretSource
//! [`AttemptObserver`]: crate::worker::AttemptObserver

use std::time::{Duration, SystemTime};

use super::rows::json_text;
use super::rules::{
    check_url, event_types_key, generate_id, log_disabled, normalize_event_types,
    secret_or_generate,
};
use super::{
    CreatedEndpoint, Endpoint, EndpointUpdate, Error, NewEndpoint, RotatedSecret, Rotation, health,
};
use crate::signing::Secret;

/// A new endpoint, checked and ready to be written.
pub(crate) struct Creation {
    pub(crate) id: String,
    pub(crate) url: String,
    pub(crate) description: String,
    /// The event types, normalized.
    pub(crate) types: Vec<String>,
    /// What, with the URL, makes the endpoint unique.
    pub(crate) key: String,
    pub(crate) types_json: String,
    pub(crate) metadata_json: String,
    pub(crate) secret: Secret,
    pub(crate) now: SystemTime,
}

impl Creation {
    fn new(new: NewEndpoint) -> Result<Self, Error> {
        check_url(&new.url)?;
        let types = normalize_event_types(&new.event_types)?;
        Ok(Creation {
            id: generate_id(),
            url: new.url.to_string(),
            description: new.description,
            key: event_types_key(&types),
            types_json: json_text(&types)?,
            metadata_json: json_text(&new.metadata)?,
            types,
            secret: secret_or_generate(new.secret)?,
            now: SystemTime::now(),
        })
    }
}

/// An endpoint's new URL, description, event types and metadata, all of them, as written.
pub(crate) struct Change {
    pub(crate) url: String,
    pub(crate) description: String,
    pub(crate) types: Vec<String>,
    pub(crate) key: String,
    pub(crate) types_json: String,
    pub(crate) metadata_json: String,
    /// Whether the event types changed (their rows are then written again).
    pub(crate) types_changed: bool,
}

/// What every endpoint store keeps beside its tables (implemented by [`endpoint_store!`]).
pub(crate) trait Settings {
    /// How long a rotated-out secret keeps signing by default.
    fn rotation_grace(&self) -> Duration;
    /// This process's view of the endpoints' health.
    fn tracker(&self) -> &health::Tracker;
}

/// What a backend does to the endpoint tables; the flows are its provided methods.
pub(crate) trait Tables: Settings + Send + Sync {
    /// A transaction on the endpoint tables.
    type Tx: Send;

    /// `t` as the backend stores it (rounded to its precision).
    fn stored(t: SystemTime) -> SystemTime;

    /// Begins a transaction that writes.
    async fn begin(&self) -> Result<Self::Tx, Error>;
    /// Commits it.
    async fn commit(tx: Self::Tx) -> Result<(), Error>;
    /// Reads endpoint `id` at `now` ([`Error::is_not_found`] if there is none).
    async fn read(&self, tx: &mut Self::Tx, id: &str, now: SystemTime) -> Result<Endpoint, Error>;
    /// Makes sure endpoint `id` exists and that no one else changes it until the commit.
    async fn lock(&self, tx: &mut Self::Tx, id: &str) -> Result<(), Error>;
    /// The endpoint other than `except` with this URL and event types key.
    async fn duplicate_of(
        &self,
        tx: &mut Self::Tx,
        url: &str,
        key: &str,
        except: &str,
    ) -> Result<Option<String>, Error>;
    /// The same, outside any transaction: after an insert lost a race to another process.
    async fn duplicate_outside(
        &self,
        url: &str,
        key: &str,
        except: &str,
    ) -> Result<Option<String>, Error>;
    /// Writes a new endpoint, its event types and its first secret.
    async fn insert(&self, tx: &mut Self::Tx, new: &Creation) -> Result<(), Error>;
    /// Writes an endpoint's changed fields (and event types, if they changed) at `now`.
    async fn write(
        &self,
        tx: &mut Self::Tx,
        id: &str,
        change: &Change,
        now: SystemTime,
    ) -> Result<(), Error>;
    /// Deletes an endpoint with its event types and secrets; whether there was one.
    async fn delete_rows(&self, id: &str) -> Result<bool, Error>;
    /// Makes `secret` current at `now`: the current one signs until `expires`, and those
    /// whose grace ended are forgotten.
    async fn add_secret(
        &self,
        tx: &mut Self::Tx,
        id: &str,
        secret: &Secret,
        now: SystemTime,
        expires: SystemTime,
    ) -> Result<(), Error>;
    /// Enables (`None`) or disables (`Some((kind, reason))`) an endpoint at `at`; whether
    /// that changed anything.
    async fn write_enabled(
        &self,
        tx: &mut Self::Tx,
        id: &str,
        disable: Option<(&str, &str)>,
        at: SystemTime,
    ) -> Result<bool, Error>;

    /// Creates an endpoint: refused when another has the same URL and event types.
    async fn create_endpoint(&self, new: NewEndpoint) -> Result<CreatedEndpoint, Error> {
        let new = Creation::new(new)?;
        let mut tx = self.begin().await?;
        if let Some(existing) = self
            .duplicate_of(&mut tx, &new.url, &new.key, &new.id)
            .await?
        {
            return Err(Error::duplicate(&existing));
        }
        if let Err(err) = self.insert(&mut tx, &new).await {
            // Another process created the same endpoint between the check and the insert.
            if err.is_conflict() {
                drop(tx);
                if let Some(existing) = self.duplicate_outside(&new.url, &new.key, &new.id).await? {
                    return Err(Error::duplicate(&existing));
                }
            }
            return Err(err);
        }
        let endpoint = self.read(&mut tx, &new.id, new.now).await?;
        Self::commit(tx).await?;
        Ok(CreatedEndpoint {
            endpoint,
            secret: new.secret,
        })
    }

    /// Changes what `update` names.
    async fn update_endpoint(&self, id: &str, update: EndpointUpdate) -> Result<Endpoint, Error> {
        if let Some(url) = &update.url {
            check_url(url)?;
        }
        let types = update
            .event_types
            .as_deref()
            .map(normalize_event_types)
            .transpose()?;
        let now = SystemTime::now();
        let mut tx = self.begin().await?;
        self.lock(&mut tx, id).await?;
        let current = self.read(&mut tx, id, now).await?;
        if update.is_empty() {
            return Ok(current);
        }
        let url = update.url.unwrap_or_else(|| current.url.clone());
        let types = types.unwrap_or_else(|| current.event_types.clone());
        let key = event_types_key(&types);
        let types_changed = types != current.event_types;
        if (url != current.url || types_changed)
            && let Some(existing) = self.duplicate_of(&mut tx, url.as_str(), &key, id).await?
        {
            return Err(Error::duplicate(&existing));
        }
        let change = Change {
            url: url.to_string(),
            description: update.description.unwrap_or(current.description),
            types_json: json_text(&types)?,
            metadata_json: json_text(&update.metadata.unwrap_or(current.metadata))?,
            types,
            key,
            types_changed,
        };
        self.write(&mut tx, id, &change, now).await?;
        let endpoint = self.read(&mut tx, id, now).await?;
        Self::commit(tx).await?;
        Ok(endpoint)
    }

    /// Deletes an endpoint and its secrets.
    async fn delete_endpoint(&self, id: &str) -> Result<(), Error> {
        if !self.delete_rows(id).await? {
            return Err(Error::not_found(id));
        }
        self.tracker().forget(id);
        Ok(())
    }

    /// Makes a new secret current, the previous one signing for the grace.
    async fn rotate(&self, id: &str, rotation: Rotation) -> Result<RotatedSecret, Error> {
        let grace = rotation.grace.unwrap_or(self.rotation_grace());
        let secret = secret_or_generate(rotation.secret)?;
        let now = SystemTime::now();
        let expires = now.checked_add(grace).unwrap_or(now);
        let mut tx = self.begin().await?;
        self.lock(&mut tx, id).await?;
        self.add_secret(&mut tx, id, &secret, now, expires).await?;
        let endpoint = self.read(&mut tx, id, now).await?;
        Self::commit(tx).await?;
        Ok(RotatedSecret {
            endpoint,
            secret,
            // As stored, so that it equals the endpoint's `rotation_ends_at`.
            previous_expires_at: Self::stored(expires),
        })
    }

    /// Enables (`None`) or disables (`Some((kind, reason))`) an endpoint at `at`; answers the
    /// endpoint and whether anything changed.
    async fn set_enabled(
        &self,
        id: &str,
        disable: Option<(&str, &str)>,
        at: SystemTime,
    ) -> Result<(Endpoint, bool), Error> {
        let mut tx = self.begin().await?;
        let changed = self.write_enabled(&mut tx, id, disable, at).await?;
        let endpoint = self.read(&mut tx, id, at).await?;
        Self::commit(tx).await?;
        if changed {
            self.tracker().forget(id);
            log_disabled(&endpoint);
        }
        Ok((endpoint, changed))
    }
}

/// Makes a backend with [`Tables`] and the inherent methods `get_endpoint`,
/// `list_endpoints`, `matching_endpoints`, `secrets_of` and `record` an
/// [`EndpointStore`](super::EndpointStore), the [`SecretSource`](crate::worker::SecretSource)
/// of its endpoints' messages, and the [`AttemptObserver`](crate::worker::AttemptObserver)
/// of their health.
macro_rules! endpoint_store {
    ($store:ty) => {
        impl $store {
            /// The store with its [`SecretSource`]($crate::worker::SecretSource) and
            /// [`AttemptObserver`]($crate::worker::AttemptObserver) behind one handle, sharing
            /// what the store knows of its endpoints' health.
            pub fn hooks(&self) -> $crate::endpoints::EndpointHooks {
                $crate::endpoints::EndpointHooks::sharing(
                    std::sync::Arc::new(self.clone()),
                    self.shared.tracker.clone(),
                )
            }
        }

        impl $crate::endpoints::tables::Settings for $store {
            fn rotation_grace(&self) -> Duration {
                self.shared.options.rotation_grace
            }

            fn tracker(&self) -> &health::Tracker {
                &self.shared.tracker
            }
        }

        impl $crate::endpoints::EndpointStore for $store {
            fn create(
                &self,
                endpoint: NewEndpoint,
            ) -> BoxFuture<'_, Result<CreatedEndpoint, Error>> {
                Box::pin(Tables::create_endpoint(self, endpoint))
            }

            fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Endpoint, Error>> {
                Box::pin(self.get_endpoint(id))
            }

            fn list<'a>(
                &'a self,
                filter: &'a EndpointFilter,
            ) -> BoxFuture<'a, Result<EndpointPage, Error>> {
                Box::pin(self.list_endpoints(filter))
            }

            fn update<'a>(
                &'a self,
                id: &'a str,
                update: EndpointUpdate,
            ) -> BoxFuture<'a, Result<Endpoint, Error>> {
                Box::pin(Tables::update_endpoint(self, id, update))
            }

            fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), Error>> {
                Box::pin(Tables::delete_endpoint(self, id))
            }

            fn rotate_secret<'a>(
                &'a self,
                id: &'a str,
                rotation: Rotation,
            ) -> BoxFuture<'a, Result<RotatedSecret, Error>> {
                Box::pin(Tables::rotate(self, id, rotation))
            }

            fn enable<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Endpoint, Error>> {
                Box::pin(async move {
                    Ok(Tables::set_enabled(self, id, None, SystemTime::now())
                        .await?
                        .0)
                })
            }

            fn disable<'a>(
                &'a self,
                id: &'a str,
                reason: &'a str,
            ) -> BoxFuture<'a, Result<Endpoint, Error>> {
                Box::pin(async move {
                    let disable = Some(("manual", reason));
                    Ok(Tables::set_enabled(self, id, disable, SystemTime::now())
                        .await?
                        .0)
                })
            }

            fn matching<'a>(
                &'a self,
                event: &'a str,
            ) -> BoxFuture<'a, Result<Vec<Endpoint>, Error>> {
                Box::pin(self.matching_endpoints(event))
            }

            fn signing_secrets<'a>(
                &'a self,
                id: &'a str,
            ) -> BoxFuture<'a, Result<Vec<Secret>, Error>> {
                Box::pin(self.secrets_of(id))
            }

            fn record_health<'a>(
                &'a self,
                id: &'a str,
                signal: HealthSignal,
                at: SystemTime,
            ) -> BoxFuture<'a, Result<HealthUpdate, Error>> {
                Box::pin(self.record(id, signal, at))
            }

            fn failure_window(&self) -> Duration {
                self.shared.options.failure_window
            }
        }

        impl $crate::worker::SecretSource for $store {
            fn secrets<'a>(
                &'a self,
                message: &'a $crate::message::MessageMeta,
            ) -> BoxFuture<'a, Result<Vec<Secret>, $crate::worker::SecretSourceError>> {
                health::secrets(self, message)
            }
        }

        impl $crate::worker::AttemptObserver for $store {
            fn finished(&self, report: &$crate::worker::AttemptReport<'_>) {
                let store: std::sync::Arc<dyn $crate::endpoints::EndpointStore> =
                    std::sync::Arc::new(self.clone());
                health::observe(&store, &self.shared.tracker, report);
            }
        }
    };
}

pub(crate) use endpoint_store;
