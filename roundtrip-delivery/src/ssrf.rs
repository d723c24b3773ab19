//! The SSRF guard: which addresses deliveries may connect to.
