//! A graphql-transport-ws client (the protocol of the npm `graphql-ws`
//! package), just enough to test subscriptions: it answers the server's
//! pings unless told not to.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a message it expects.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// What the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Message(Value),
    /// The server closed the connection with this code and reason.
    Closed(u16, String),
}

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Answer the server's pings (graphql-ws clients do).
    pub answer_pings: bool,
}

impl WsClient {
    /// Opens `ws://ADDRESS/graphql` offering `protocol`.
    pub async fn connect_with(address: std::net::SocketAddr, protocol: &str) -> WsClient {
        let mut request = format!("ws://{address}/graphql")
            .into_client_request()
            .expect("request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(protocol).expect("header"),
        );
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket upgrade");
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "graphql-transport-ws"
        );
        WsClient {
            socket,
            answer_pings: true,
        }
    }

    pub async fn connect(address: std::net::SocketAddr) -> WsClient {
        WsClient::connect_with(address, "graphql-transport-ws").await
    }

    /// Connects and initialises with `token`, expecting the ack.
    pub async fn initialised(address: std::net::SocketAddr, token: &str) -> WsClient {
        let mut client = WsClient::connect(address).await;
        client
            .init(json!({ "Authorization": format!("Bearer {token}") }))
            .await;
        assert_eq!(
            client.recv().await,
            Received::Message(json!({ "type": "connection_ack" }))
        );
        client
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn init(&mut self, payload: Value) {
        self.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({
            "id": id,
            "type": "subscribe",
            "payload": { "query": query, "variables": variables },
        }))
        .await;
    }

    /// The next message other than a ping, or the close; panics after
    /// [`PATIENCE`].
    pub async fn recv(&mut self) -> Received {
        self.recv_within(PATIENCE)
            .await
            .expect("a message within the patience")
    }

    /// [`WsClient::recv`], or `None` after `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let message: Value = serde_json::from_str(&text).expect("JSON message");
                    if message["type"] == "ping" {
                        if self.answer_pings {
                            self.send(json!({ "type": "pong" })).await;
                        }
                        continue;
                    }
                    return Some(Received::Message(message));
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((u16::from(CloseCode::Status), String::new()));
                    return Some(Received::Closed(code, reason));
                }
                Some(Ok(_)) => continue,
                Some(Err(error)) => panic!("WebSocket failed: {error}"),
                None => return Some(Received::Closed(1006, "gone".into())),
            }
        }
    }

    /// The close code the server ends the connection with.
    pub async fn closed(&mut self) -> u16 {
        loop {
            match self.recv().await {
                Received::Closed(code, _) => return code,
                Received::Message(_) => continue,
            }
        }
    }

    /// The payload of the next `next` message of subscription `id`; panics on
    /// anything else.
    pub async fn next(&mut self, id: &str) -> Value {
        match self.recv().await {
            Received::Message(message) if message["type"] == "next" && message["id"] == id => {
                message["payload"].clone()
            }
            other => panic!("expected next for {id}, got {other:?}"),
        }
    }

    /// Expects `complete` for subscription `id`.
    pub async fn completed(&mut self, id: &str) {
        assert_eq!(
            self.recv().await,
            Received::Message(json!({ "type": "complete", "id": id }))
        );
    }
}
