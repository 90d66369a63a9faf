//! A minimal OTLP/HTTP JSON collector for trace tests (`--features otlp`): it accepts
//! `POST /v1/traces` and keeps every span it receives, with its service name.

use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};

pub struct Collector {
    pub endpoint: String,
    batches: Arc<Mutex<Vec<Value>>>,
    handle: actix_web::dev::ServerHandle,
}

impl Collector {
    pub fn start() -> Self {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let sink = web::Data::from(batches.clone());
        let server = HttpServer::new(move || {
            App::new().app_data(sink.clone()).route(
                "/v1/traces",
                web::post().to(
                    |body: web::Bytes, seen: web::Data<Mutex<Vec<Value>>>| async move {
                        if let (Ok(v), Ok(mut seen)) = (serde_json::from_slice(&body), seen.lock())
                        {
                            seen.push(v);
                        }
                        HttpResponse::Ok().json(json!({}))
                    },
                ),
            )
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("collector: {e}"));
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            batches,
            handle,
        }
    }

    /// Every span received so far, each with a `service` field added.
    pub fn spans(&self) -> Vec<Value> {
        let batches = self.batches.lock().map(|b| b.clone()).unwrap_or_default();
        let mut spans = Vec::new();
        for batch in &batches {
            for rs in batch["resourceSpans"].as_array().into_iter().flatten() {
                let service = rs["resource"]["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["key"] == "service.name")
                    .map(|a| a["value"]["stringValue"].clone())
                    .unwrap_or(Value::Null);
                for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                    for span in ss["spans"].as_array().into_iter().flatten() {
                        let mut span = span.clone();
                        span["service"] = service.clone();
                        spans.push(span);
                    }
                }
            }
        }
        spans
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}
