//! Benchmark servers and drivers for roundtrip. See `bench/README.md`.
