//! A real HTTP receiver for webhook tests: checks each call's signature,
//! answers with the statuses it is told to, records everything.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Clone, Debug)]
pub struct Call {
    pub idempotency_key: String,
    pub signature_ok: bool,
    pub body: serde_json::Value,
    /// The status this call was answered with.
    pub status: u16,
}

#[derive(Clone)]
struct Shared {
    secret: Vec<u8>,
    calls: Arc<Mutex<Vec<Call>>>,
    statuses: Arc<Mutex<VecDeque<u16>>>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub secret: String,
    shared: Shared,
}

impl Receiver {
    pub async fn start(secret: &str) -> Receiver {
        let shared = Shared {
            secret: secret.as_bytes().to_vec(),
            calls: Arc::default(),
            statuses: Arc::default(),
        };
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            addr,
            secret: secret.to_string(),
            shared,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The next calls are answered with these statuses, then 200.
    pub fn answer_with(&self, statuses: &[u16]) {
        self.shared.statuses.lock().unwrap().extend(statuses);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// Calls answered 2xx.
    pub fn accepted(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.status < 300)
            .collect()
    }
}

async fn hook(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let text = String::from_utf8_lossy(&body).into_owned();
    let sig = headers
        .get("vigie-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let signature_ok = verify(&s.secret, sig, &text);
    let status = s.statuses.lock().unwrap().pop_front().unwrap_or(200);
    s.calls.lock().unwrap().push(Call {
        idempotency_key: headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        signature_ok,
        body: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        status,
    });
    StatusCode::from_u16(status).unwrap()
}

/// Checks `t=<unix>,v1=<hex>` against HMAC-SHA256(secret, "<t>.<body>")
/// and a 5-minute window, as a receiver should.
fn verify(secret: &[u8], header: &str, body: &str) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1 = hex::decode(x).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (chrono::Utc::now().timestamp() - t).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    mac.verify_slice(&v1).is_ok()
}
