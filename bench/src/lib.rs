//! Benchmark servers and drivers for roundtrip. See `bench/README.md`.

/// The value after `name` on the command line (`--port 8000`), if given.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}
