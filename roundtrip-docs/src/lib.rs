//! Swagger UI and ReDoc, embedded in the binary and served with no network access.
