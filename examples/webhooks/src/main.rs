//! Serves the webhooks example.

#[tokio::main]
async fn main() {
    let router = match example_webhooks::app().into_router() {
        Ok(router) => router,
        Err(err) => {
            eprintln!("{err}");
            std::process::exit(2);
        }
    };
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8000".to_owned());
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("cannot listen on {addr}: {err}");
            std::process::exit(1);
        }
    };
    println!("Webhooks example on http://{addr} (docs: http://{addr}/docs)");
    if let Err(err) = axum::serve(listener, router).await {
        eprintln!("server error: {err}");
    }
}
