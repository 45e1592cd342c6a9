//! The floor for the webhook intake benchmark (`bench/intake/`): an axum server that
//! reads the body and answers 202, with no authentication, parsing or storage. What
//! `courier serve` measures above this is the cost of doing the job properly.
//!
//! Usage: `bare_intake [ADDR]` (default `127.0.0.1:0`); prints `listening on ADDR`.

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let app = Router::new().route(
        "/webhooks/supernova",
        post(|body: Bytes| async move {
            // Touch the body so that reading it is not optimised into a skip.
            std::hint::black_box(body.len());
            StatusCode::ACCEPTED
        }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
