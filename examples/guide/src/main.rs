//! Serves the guide: `example-guide serve --port 8000` (see `--help`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    example_guide::app().run().await
}
