//! Subscriptions over a WebSocket on `/graphql`: the graphql-transport-ws
//! protocol (the npm `graphql-ws` package's, which GraphiQL and Apollo
//! speak), run by async-graphql-axum's `GraphQLWebSocket`.
//!
//! A guard sits between the socket and that engine, because the protocol's
//! rules on who may do what, and this server's bounds, are not the
//! engine's: the token in `connection_init`'s payload
//! (`{"Authorization": "Bearer …"}`) is checked before anything else is
//! read; then a subscription is only let through within the per-connection
//! and per-token limits, and the connection is pinged, and its token
//! checked again, every keep-alive interval. Refusals close the socket with
//! the protocol's codes (listed in docs/SECURITY.md), or answer one
//! subscription with an `error` message.
//!
//! Queries and mutations may come over the socket too; each runs as a task
//! of its own, like an HTTP request's work (see [`super::detached`]).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::parser::types::OperationType;
use async_graphql::{Data, Executor};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream::BoxStream;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{bearer, operation_type, refuse, AppState};
use crate::graphql::errors::INTERNAL_SERVER_ERROR;
use crate::graphql::loaders::request_loader;
use crate::graphql::AppSchema;
use crate::repo::{Repo, Scope};

/// The WebSocket subprotocol spoken here.
const PROTOCOL: &str = "graphql-transport-ws";

/// Messages buffered between the guard and the engine, each way. A client
/// that reads slowly so holds its subscriptions back, and those that fall
/// behind the feed are resynchronised (see `graphql/subscription.rs`).
const BUFFERED: usize = 16;

/// The close codes of the protocol, and the standard ones used beside them.
mod close {
    pub const INVALID_MESSAGE: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const SUBSCRIBER_EXISTS: u16 = 4409;
    pub const TOO_MANY_INIT: u16 = 4429;
    /// RFC 6455's "try again later": the token could not be checked.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// IANA's "timeout": the client stopped answering pings.
    pub const TIMEOUT: u16 = 3008;
    /// RFC 6455's "going away": the server is stopping.
    pub const GOING_AWAY: u16 = 1001;
}

/// Subscriptions held by each token on this process.
#[derive(Default)]
pub struct TokenSubscriptions(Mutex<HashMap<String, usize>>);

impl TokenSubscriptions {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // A panic while holding the lock leaves counts that are still valid.
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Takes one of `token`'s `limit` places, if one is free.
    fn take(&self, token: &str, limit: usize) -> bool {
        let mut counts = self.counts();
        let count = counts.entry(token.to_owned()).or_insert(0);
        if *count >= limit {
            return false;
        }
        *count += 1;
        true
    }

    fn release(&self, token: &str, places: usize) {
        let mut counts = self.counts();
        if let Some(count) = counts.get_mut(token) {
            *count = count.saturating_sub(places);
            if *count == 0 {
                counts.remove(token);
            }
        }
    }
}

/// Whether the request asks to become a GraphQL WebSocket.
pub(super) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
}

/// Whether the client offers graphql-transport-ws among its subprotocols.
fn offers_protocol(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim() == PROTOCOL)
}

/// async-graphql-axum's name for graphql-transport-ws. The engine learns
/// the protocol from a request header only, and the client's may list the
/// older protocol first, which this server does not speak.
async fn engine_protocol() -> Option<GraphQLProtocol> {
    let request = axum::http::Request::builder()
        .header(header::SEC_WEBSOCKET_PROTOCOL, PROTOCOL)
        .body(())
        .ok()?;
    let (mut parts, ()) = request.into_parts();
    GraphQLProtocol::from_request_parts(&mut parts, &())
        .await
        .ok()
}

/// `GET /graphql` with `Upgrade: websocket`.
pub(super) async fn upgrade(
    state: AppState,
    headers: &HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return refuse(rejection.status(), "BAD_REQUEST", rejection.body_text()),
    };
    if !offers_protocol(headers) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            format!("the WebSocket subprotocol must be {PROTOCOL}"),
        );
    }
    let Some(protocol) = engine_protocol().await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let max_message = state.options.limits.max_body_bytes;
    upgrade
        .protocols([PROTOCOL])
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| serve(state, socket, protocol))
}

/// A message from the client, as far as the guard reads it.
#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    payload: Option<Value>,
}

/// Why the guard closes a connection.
struct Closing(u16, String);

impl Closing {
    fn new(code: u16, reason: impl Into<String>) -> Self {
        Closing(code, reason.into())
    }

    fn frame(self) -> Message {
        // A control frame holds at most 125 bytes: the code and 123 of reason.
        let mut reason = self.1;
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        Message::Close(Some(CloseFrame {
            code: self.0,
            reason: reason.into(),
        }))
    }
}

/// What the guard does with a client's message.
enum Verdict {
    /// Pass it to the engine.
    Forward,
    /// Answer it here.
    Answer(Value),
    Close(Closing),
}

/// One connection's guard.
struct Guard {
    state: AppState,
    /// The token, once `connection_init` carried a valid one.
    token: Option<String>,
    /// Where the engine picks up the scope the token grants.
    granted: Arc<Mutex<Option<Scope>>>,
    /// Ids of the subscriptions running (let through, not yet completed).
    running: HashSet<String>,
    /// Ids the client completed whose end the engine has not confirmed:
    /// the client may reuse them at once.
    stopping: HashSet<String>,
}

async fn serve(state: AppState, socket: WebSocket, protocol: GraphQLProtocol) {
    let live = state.options.live.clone();
    let (to_engine, engine_input) = mpsc::channel::<Message>(BUFFERED);
    let (engine_output, mut from_engine) = mpsc::channel::<Message>(BUFFERED);
    let granted = Arc::new(Mutex::new(None));
    tokio::spawn(engine(
        &state,
        engine_input,
        engine_output,
        granted.clone(),
        protocol,
    ));

    let (mut socket_out, mut socket_in) = socket.split();
    let mut guard = Guard {
        state,
        token: None,
        granted,
        running: HashSet::new(),
        stopping: HashSet::new(),
    };
    let keepalive = Duration::from_millis(live.ws_keepalive_ms.max(1));
    let init_deadline = Instant::now() + Duration::from_millis(live.ws_init_timeout_ms);
    let mut ticks = tokio::time::interval_at(Instant::now() + keepalive, keepalive);
    let mut last_heard = Instant::now();
    let shutdown = guard.state.options.shutdown.clone();
    // Held until the close frame is written (the end of this function).
    let _open = shutdown.socket_opened();
    let stopping = shutdown.begun();
    tokio::pin!(stopping);
    let closing = loop {
        tokio::select! {
            incoming = socket_in.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        break Some(Closing::new(close::INVALID_MESSAGE, "Invalid message received"));
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        last_heard = Instant::now();
                        continue;
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break None,
                };
                last_heard = Instant::now();
                match guard.judge(&text).await {
                    Verdict::Forward => {
                        // The engine may be waiting for its output to be
                        // taken before it reads more: keep relaying it.
                        let forward = to_engine.send(Message::Text(text));
                        tokio::pin!(forward);
                        let forwarded = loop {
                            tokio::select! {
                                sent = &mut forward => break sent.is_ok(),
                                outgoing = from_engine.recv() => {
                                    if !relay(&mut guard, &mut socket_out, outgoing, keepalive).await {
                                        break false;
                                    }
                                }
                            }
                        };
                        if !forwarded {
                            break None;
                        }
                    }
                    Verdict::Answer(message) => {
                        let message = Message::Text(message.to_string().into());
                        if !write(&mut socket_out, message, keepalive).await {
                            break None;
                        }
                    }
                    Verdict::Close(closing) => break Some(closing),
                }
            }
            outgoing = from_engine.recv() => {
                if !relay(&mut guard, &mut socket_out, outgoing, keepalive).await {
                    break None;
                }
            }
            () = &mut stopping => {
                break Some(Closing::new(close::GOING_AWAY, "the server is stopping"));
            }
            () = tokio::time::sleep_until(init_deadline), if guard.token.is_none() => {
                break Some(Closing::new(close::INIT_TIMEOUT, "Connection initialisation timeout"));
            }
            _ = ticks.tick() => {
                if last_heard.elapsed() >= 2 * keepalive {
                    break Some(Closing::new(close::TIMEOUT, "Keep-alive timeout"));
                }
                if let Some(closing) = guard.recheck_token().await {
                    break Some(closing);
                }
                let ping = json!({ "type": "ping" }).to_string();
                if !write(&mut socket_out, Message::Text(ping.into()), keepalive).await {
                    break None;
                }
            }
        }
    };
    if let Some(closing) = closing {
        write(&mut socket_out, closing.frame(), keepalive).await;
    }
    // Dropping `to_engine` ends the engine and its subscriptions.
    guard.release_all();
}

/// The socket's sending half.
type SocketOut = futures_util::stream::SplitSink<WebSocket, Message>;

/// Sends a message, unless the client has not taken what was sent before
/// within `patience` (it stopped reading: a slow or hostile client must
/// not hold the connection, its subscriptions and its limits' places
/// forever). Whether the connection is still usable.
async fn write(socket: &mut SocketOut, message: Message, patience: Duration) -> bool {
    matches!(
        tokio::time::timeout(patience, socket.send(message)).await,
        Ok(Ok(()))
    )
}

/// Passes one message of the engine to the client; whether to go on.
async fn relay(
    guard: &mut Guard,
    socket: &mut SocketOut,
    outgoing: Option<Message>,
    patience: Duration,
) -> bool {
    let Some(message) = outgoing else {
        return false;
    };
    if let Message::Text(text) = &message {
        guard.on_engine_message(text);
    }
    let is_close = matches!(message, Message::Close(_));
    write(socket, message, patience).await && !is_close
}

/// async-graphql's protocol engine over the guard's channels.
fn engine(
    state: &AppState,
    input: mpsc::Receiver<Message>,
    output: mpsc::Sender<Message>,
    granted: Arc<Mutex<Option<Scope>>>,
    protocol: GraphQLProtocol,
) -> impl Future<Output = ()> + Send + 'static {
    let executor = LiveExecutor {
        schema: state.schema.schema().clone(),
        repo: state.repo.clone(),
        max_query_bytes: state.options.limits.max_query_bytes,
    };
    let input = futures_util::stream::unfold(input, |mut input| async move {
        let message = input.recv().await?;
        Some((Ok::<_, axum::Error>(message), input))
    });
    let output = futures_util::sink::unfold(output, |output, message: Message| async move {
        output.send(message).await.map(|()| output)
    });
    GraphQLWebSocket::new_with_pair(output, input, executor, protocol)
        .on_connection_init(move |_payload| async move {
            // The guard forwards `connection_init` only once it has checked
            // the token and left its scope here.
            let scope = granted
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .take()
                .ok_or_else(|| async_graphql::Error::new("Forbidden"))?;
            let mut data = Data::default();
            data.insert(scope);
            Ok(data)
        })
        .serve()
}

impl Guard {
    /// What to do with a client's message (the protocol's rules and this
    /// server's bounds).
    async fn judge(&mut self, text: &str) -> Verdict {
        let Ok(message) = serde_json::from_str::<Incoming>(text) else {
            return Verdict::Close(Closing::new(
                close::INVALID_MESSAGE,
                "Invalid message received",
            ));
        };
        match message.kind.as_str() {
            "connection_init" if self.token.is_some() => Verdict::Close(Closing::new(
                close::TOO_MANY_INIT,
                "Too many initialisation requests",
            )),
            "connection_init" => self.initialise(message.payload).await,
            "subscribe" => self.subscribe(message),
            "complete" => match message.id {
                Some(id) => {
                    self.stop(id);
                    Verdict::Forward
                }
                None => Verdict::Close(Closing::new(
                    close::INVALID_MESSAGE,
                    "Invalid message received",
                )),
            },
            "ping" | "pong" => Verdict::Forward,
            _ => Verdict::Close(Closing::new(
                close::INVALID_MESSAGE,
                "Invalid message received",
            )),
        }
    }

    /// Checks the token `connection_init` carries.
    async fn initialise(&mut self, payload: Option<Value>) -> Verdict {
        let token = payload.as_ref().and_then(|payload| {
            let object = payload.as_object()?;
            let (_, value) = object
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))?;
            bearer(value.as_str()?).map(str::to_owned)
        });
        let Some(token) = token else {
            return Verdict::Close(Closing::new(
                close::FORBIDDEN,
                "Forbidden: send {\"Authorization\": \"Bearer <token>\"} as the payload of connection_init",
            ));
        };
        match self.scope_of(&token).await {
            Ok(Some(scope)) => {
                *self
                    .granted
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner()) = Some(scope);
                self.token = Some(token);
                Verdict::Forward
            }
            Ok(None) => Verdict::Close(Closing::new(
                close::FORBIDDEN,
                "Forbidden: the API token is invalid or revoked",
            )),
            Err(closing) => Verdict::Close(closing),
        }
    }

    /// The scope of `token`, looked up as a task of its own (a connection
    /// going away must not cancel a database call halfway).
    async fn scope_of(&self, token: &str) -> Result<Option<Scope>, Closing> {
        let (repo, token) = (self.state.repo.clone(), token.to_owned());
        let lookup = tokio::spawn(async move { repo.scope_for_token(&token).await });
        match lookup.await {
            Ok(Ok(scope)) => Ok(scope),
            Ok(Err(error)) => {
                tracing::warn!(%error, "token lookup failed");
                Err(Closing::new(
                    close::TRY_AGAIN_LATER,
                    "the API token cannot be checked now; retry shortly",
                ))
            }
            Err(error) => {
                tracing::error!(%error, "token lookup task failed");
                Err(Closing::new(
                    close::TRY_AGAIN_LATER,
                    "the API token cannot be checked now; retry shortly",
                ))
            }
        }
    }

    /// Lets a subscription through if the connection is initialised, its
    /// id is free, and the limits allow one more.
    fn subscribe(&mut self, message: Incoming) -> Verdict {
        let (Some(id), Some(payload)) = (message.id, message.payload) else {
            return Verdict::Close(Closing::new(
                close::INVALID_MESSAGE,
                "Invalid message received",
            ));
        };
        // What the engine could not read, it would close with its own code.
        if serde_json::from_value::<async_graphql::Request>(payload).is_err() {
            return Verdict::Close(Closing::new(
                close::INVALID_MESSAGE,
                "Invalid message received",
            ));
        }
        let Some(token) = &self.token else {
            return Verdict::Close(Closing::new(close::UNAUTHORIZED, "Unauthorized"));
        };
        if self.running.contains(&id) {
            return Verdict::Close(Closing::new(
                close::SUBSCRIBER_EXISTS,
                format!("Subscriber for {id} already exists"),
            ));
        }
        let live = &self.state.options.live;
        let limit = if self.running.len() >= live.max_subscriptions_per_connection {
            Some(format!(
                "this connection holds {} subscriptions, the most allowed",
                live.max_subscriptions_per_connection
            ))
        } else if !self
            .state
            .token_subscriptions
            .take(token, live.max_subscriptions_per_token)
        {
            Some(format!(
                "this API token holds {} subscriptions, the most allowed",
                live.max_subscriptions_per_token
            ))
        } else {
            None
        };
        if let Some(message) = limit {
            return Verdict::Answer(json!({
                "id": id,
                "type": "error",
                "payload": [{ "message": message, "extensions": { "code": "TOO_MANY_SUBSCRIPTIONS" } }],
            }));
        }
        self.running.insert(id);
        Verdict::Forward
    }

    /// Notes the subscriptions the engine completes.
    fn on_engine_message(&mut self, text: &str) {
        // Only `complete` matters, and `next` messages can be large.
        if !text.starts_with(r#"{"type":"complete""#) {
            return;
        }
        let Ok(Incoming { id: Some(id), .. }) = serde_json::from_str(text) else {
            return;
        };
        // The end of a subscription the client completed, or of one that
        // ended by itself.
        if !self.stopping.remove(&id) && self.running.remove(&id) {
            self.release(1);
        }
    }

    /// The client completed subscription `id`: its places are free now.
    fn stop(&mut self, id: String) {
        if self.running.remove(&id) {
            self.release(1);
            self.stopping.insert(id);
        }
    }

    fn release(&self, places: usize) {
        if let Some(token) = &self.token {
            self.state.token_subscriptions.release(token, places);
        }
    }

    /// Closes the connection if its token was revoked since.
    async fn recheck_token(&self) -> Option<Closing> {
        let token = self.token.as_ref()?;
        match self.scope_of(token).await {
            Ok(Some(_)) => None,
            Ok(None) => Some(Closing::new(
                close::FORBIDDEN,
                "Forbidden: the API token was revoked",
            )),
            // The database is away: keep serving what the feed brings.
            Err(_) => None,
        }
    }

    fn release_all(&mut self) {
        self.release(self.running.len());
        self.running.clear();
    }
}

/// Runs the operations of a WebSocket: subscriptions as streams, queries
/// and mutations each as a task of its own, with a loader of its own.
#[derive(Clone)]
struct LiveExecutor {
    schema: AppSchema,
    repo: Repo,
    max_query_bytes: usize,
}

impl Executor for LiveExecutor {
    fn execute(
        &self,
        request: async_graphql::Request,
    ) -> impl Future<Output = async_graphql::Response> + Send {
        self.schema.execute(request)
    }

    fn execute_stream(
        &self,
        request: async_graphql::Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, async_graphql::Response> {
        if request.query.len() > self.max_query_bytes {
            let error = crate::graphql::limits::refusal(
                "QUERY_TOO_LARGE",
                format!(
                    "the query is {} bytes long; at most {} are allowed",
                    request.query.len(),
                    self.max_query_bytes
                ),
            );
            let response = async_graphql::Response::from_errors(vec![error]);
            return futures_util::stream::once(async move { response }).boxed();
        }
        let session_data = session_data.unwrap_or_default();
        let loader = request_loader(&self.repo);
        let schema = self.schema.clone();
        if operation_type(&request) == Some(OperationType::Subscription) {
            // A subscription lives long: what its loader read for one event
            // must not be served for the next.
            loader.enable_all_cache(false);
            return schema.execute_stream_with_session_data(request.data(loader), session_data);
        }
        let request = request.data(loader);
        futures_util::stream::once(async move {
            let run = tokio::spawn(async move {
                let mut responses = schema.execute_stream_with_session_data(request, session_data);
                responses.next().await
            });
            match run.await {
                Ok(Some(response)) => response,
                Ok(None) | Err(_) => {
                    tracing::error!("a WebSocket operation gave no response");
                    let error = async_graphql::ServerError::new("internal server error", None);
                    let mut extensions = async_graphql::ErrorExtensionValues::default();
                    extensions.set("code", INTERNAL_SERVER_ERROR);
                    async_graphql::Response::from_errors(vec![async_graphql::ServerError {
                        extensions: Some(extensions),
                        ..error
                    }])
                }
            }
        })
        .boxed()
    }
}
