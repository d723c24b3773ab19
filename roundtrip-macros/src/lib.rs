//! Proc-macros for roundtrip.
