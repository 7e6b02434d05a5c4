//! The receiver benchmark's baseline (`scripts/bench_receiver.sh`, server a): an axum handler
//! on 127.0.0.1 that answers every `POST /` with 200 and does nothing else — no body limit,
//! no signature, no validation, no store. Prints `listening on ADDR` once ready.
#![allow(missing_docs)]

async fn bare_handler() -> &'static str {
    "{\"outcome\":\"applied\"}"
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = axum::Router::new().route("/", axum::routing::post(bare_handler));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
