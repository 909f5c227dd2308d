//! `kafka-edge-http`: an HTTP service that produces every `POST /topics/{topic}` body to
//! Kafka and answers with its offset (see [`kafka_edge_examples::http`]), on tokio with axum.
//!
//! ```text
//! kafka-edge-http -b 127.0.0.1:9092 --listen 127.0.0.1:8080 -X linger.ms=5
//! curl -d 'hello' 'http://127.0.0.1:8080/topics/events?key=user-1'
//! {"topic":"events","partition":2,"offset":41,"timestamp":1764460800000}
//! curl -d 'hello' 'http://127.0.0.1:8080/topics/events?mode=try'   # 503 when the buffer is full
//! ```

use std::time::Duration;

use clap::Parser;
use kafka_edge_examples::{http, parse_property};
use kafka_edge_std::Producer;

/// Produces HTTP POST bodies to Kafka.
#[derive(Parser, Debug)]
#[command(name = "kafka-edge-http", version)]
struct Args {
    /// Bootstrap servers (`host:port,...`).
    #[arg(short = 'b', long = "brokers")]
    brokers: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// A producer property (`-X linger.ms=5`), repeatable.
    #[arg(short = 'X', value_parser = parse_property)]
    properties: Vec<(String, String)>,
    /// How long to deliver what is pending at shutdown (seconds).
    #[arg(long, default_value_t = 30)]
    close_timeout_s: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut builder = Producer::builder()
        .set("bootstrap.servers", &args.brokers)
        .set("client.id", "kafka-edge-http");
    for (k, v) in &args.properties {
        builder = builder.set(k, v);
    }
    let producer = builder.build()?;
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    eprintln!("kafka-edge-http listening on {}", listener.local_addr()?);
    axum::serve(listener, http::router(producer.clone()))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    // `close` (and the last clone's drop) waits for the pending records: off the executor.
    let timeout = Duration::from_secs(args.close_timeout_s);
    tokio::task::spawn_blocking(move || producer.close(timeout)).await?;
    Ok(())
}
