//! Standard Webhooks v1 signing and verification.
