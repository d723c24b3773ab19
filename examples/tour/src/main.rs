//! Serves the tour: `example-tour serve --port 8000` (see `--help`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    example_tour::app().run().await
}
