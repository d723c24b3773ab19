//! Serves the webhooks example: `example-webhooks serve --port 8000` (see `--help`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    example_webhooks::app().run().await
}
