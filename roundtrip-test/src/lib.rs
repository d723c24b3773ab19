//! Test tools for roundtrip apps.
