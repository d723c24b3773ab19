//! Delivery of the callbacks and webhooks that a roundtrip app documents: a durable
//! outbox, workers that claim and send, retries, Standard Webhooks signing and an SSRF
//! guard.
