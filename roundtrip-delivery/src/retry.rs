//! When to retry a delivery, and how long to wait.
