//! Workers: claim messages, send them, record attempts.
