//! The gateway's front door. Every connection's requests are read here first:
//! - a plain read for `/api/v1/<context>/...` (GET or HEAD, HTTP/1.1, no body, no `Origin`,
//!   no upgrade, a token that verifies, within the client's rate limit) is relayed here to an
//!   instance of the context, on a connection kept per worker, with the same headers the
//!   application's proxy sends and the same answers when the instance fails;
//! - anything else, and everything after it on that connection, is handed with the bytes
//!   already read to the actix-web application, which serves it as any connection (its own
//!   limits, timeouts, refusals and problem bodies).
//!
//! The relay copies the instance's answer as it comes (its own `Content-Length` or chunked
//! framing), so a read costs two parses of a head and a few copies, as in a plain reverse
//! proxy. With `EMPORIUM_OTLP_ENDPOINT` set everything goes to the application, whose spans
//! are exported.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::web;
use bytes::{Buf, Bytes, BytesMut};
use platform::auth::TokenVerifier;
use platform::client_ip::FORWARDED_FOR;
use platform::error::ApiError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::{is_plain_path, InFlight, Pool, Upstreams, HOP_BY_HOP};
use crate::limits::{RateLimit, INTERNAL_HEADER};

/// A request head longer than this is the application's to judge (it refuses it).
const MAX_HEAD: usize = 16 * 1024;
/// The longest head an instance may answer with.
const MAX_UPSTREAM_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;
/// Connections kept open to one instance, per worker.
const IDLE_PER_INSTANCE: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const ROUTE: &str = "/api/v1/{context}/{tail}";

/// What every worker's front door shares.
pub(super) struct Front {
    pub(super) up: Arc<Upstreams>,
    pub(super) verifier: Option<web::Data<TokenVerifier>>,
    pub(super) rate_limit: web::Data<RateLimit>,
    /// The first request's head must arrive within this; the application answers 408 later.
    pub(super) header_timeout: Duration,
    /// How long a connection may wait for its next request.
    pub(super) keep_alive: Duration,
    /// Off: every request goes to the application (trace export needs its spans).
    pub(super) enabled: bool,
    /// Fires when the server starts to stop: idle connections close then.
    pub(super) shutdown: actix_server::GracefulShutdownSignal,
}

/// One worker's state: its kept connections and metric handles (a worker is one thread).
pub(super) struct Worker {
    front: Arc<Front>,
    idle: RefCell<HashMap<String, Vec<TcpStream>>>,
    counters: RefCell<HashMap<(bool, u16), metrics::Counter>>,
    durations: [metrics::Histogram; 2],
    /// Requests answered here rather than by the application.
    relayed: metrics::Counter,
}

impl Worker {
    pub(super) fn new(front: Arc<Front>) -> Self {
        let duration = |method: &'static str| metrics::histogram!("emporium_http_request_duration_seconds", "method" => method, "route" => ROUTE);
        Self {
            front,
            idle: RefCell::new(HashMap::new()),
            counters: RefCell::new(HashMap::new()),
            durations: [duration("GET"), duration("HEAD")],
            relayed: metrics::counter!("emporium_gateway_relayed_total"),
        }
    }

    fn record(&self, head: bool, status: u16, elapsed: Duration) {
        let method = if head { "HEAD" } else { "GET" };
        self.counters
            .borrow_mut()
            .entry((head, status))
            .or_insert_with(|| {
                metrics::counter!("emporium_http_requests_total", "method" => method, "route" => ROUTE, "status" => status.to_string())
            })
            .increment(1);
        self.durations[usize::from(head)].record(elapsed.as_secs_f64());
        self.relayed.increment(1);
    }

    /// A kept connection to `authority` that is still quiet. One with bytes waiting (an
    /// answer nobody asked for, which would be taken for the next request's: response-queue
    /// poisoning) or already closed by the instance is dropped, never reused.
    fn take_idle(&self, authority: &str) -> Option<TcpStream> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(authority)?;
        while let Some(conn) = list.pop() {
            let mut probe = [0u8; 1];
            match conn.try_read(&mut probe) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Some(conn),
                _ => {}
            }
        }
        None
    }

    fn keep_idle(&self, authority: &str, conn: TcpStream) {
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(authority.to_owned()).or_default();
        if list.len() < IDLE_PER_INSTANCE {
            list.push(conn);
        }
    }
}

/// The connection with the bytes read from it so far put back in front.
pub(super) struct Prefixed {
    prefix: Bytes,
    stream: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves one connection: relays its plain reads, then hands it to the application `h1`.
pub(super) async fn serve<S>(worker: Rc<Worker>, stream: TcpStream, h1: Rc<S>)
where
    S: actix_service::Service<(Prefixed, Option<SocketAddr>)>,
{
    let peer = stream.peer_addr().ok();
    let _ = stream.set_nodelay(true);
    let mut client = stream;
    let mut buf = BytesMut::with_capacity(4096);
    if worker.front.enabled && !relay_reads(&worker, &mut client, &mut buf, peer).await {
        return;
    }
    let io = Prefixed {
        prefix: buf.freeze(),
        stream: client,
    };
    let _ = h1.call((io, peer)).await;
}

/// Relays the connection's plain reads: `true` when a request in `buf` is left for the
/// application, `false` when the connection is done.
async fn relay_reads(
    worker: &Worker,
    client: &mut TcpStream,
    buf: &mut BytesMut,
    peer: Option<SocketAddr>,
) -> bool {
    let front = &worker.front;
    // The first request's head must be whole within the header timeout of the connection's
    // start; a later one's first bytes within the keep-alive, then its head within the header
    // timeout of them.
    let mut head_by = Some(tokio::time::Instant::now() + front.header_timeout);
    // The instances' answers pass through here, one at a time.
    let mut answer = BytesMut::new();
    loop {
        if buf.is_empty() {
            let wait = head_by.unwrap_or_else(|| tokio::time::Instant::now() + front.keep_alive);
            // Idle between requests: a stopping server closes the connection.
            buf.reserve(4096);
            let arrived = tokio::select! {
                read = tokio::time::timeout_at(wait, client.read_buf(buf)) => read,
                () = front.shutdown.notified() => return false,
            };
            if !matches!(arrived, Ok(Ok(n)) if n > 0) {
                return false;
            }
        }
        let by = head_by
            .take()
            .unwrap_or_else(|| tokio::time::Instant::now() + front.header_timeout);
        match tokio::time::timeout_at(by, read_head(client, buf)).await {
            Ok(Ok(true)) => {}
            // Not a head this door reads (too long, malformed): the application answers.
            Ok(Ok(false)) => return true,
            // Closed or failed: nothing to answer.
            Ok(Err(_)) => return false,
            // Begun but not finished in time: 408, as the application answers, and closed.
            Err(_) => {
                let _ = client.write_all(&head_timed_out()).await;
                return false;
            }
        }
        let Some(plan) = plan(front, buf, peer) else {
            return true;
        };
        if !admitted(front, &plan, peer).await {
            return true;
        }
        buf.advance(plan.head_len);
        if let Next::Close = relay(worker, &plan, client, &mut answer).await {
            return false;
        }
    }
}

/// The answer to a head that did not arrive in time.
fn head_timed_out() -> Vec<u8> {
    let problem = ApiError::new(
        actix_web::http::StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "the request head did not arrive in time",
    );
    problem_answer(&problem, None, true, true)
}

/// A whole HTTP/1.1 answer carrying `problem` (its body unless `with_body` is false).
fn problem_answer(
    problem: &ApiError,
    request_id: Option<&str>,
    close: bool,
    with_body: bool,
) -> Vec<u8> {
    let body = serde_json::to_vec(&problem.body()).unwrap_or_default();
    let status = actix_web::ResponseError::status_code(problem);
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    header_line(
        &mut out,
        "content-type",
        platform::error::PROBLEM_JSON.as_bytes(),
    );
    header_line(
        &mut out,
        "content-length",
        body.len().to_string().as_bytes(),
    );
    if let Some(id) = request_id {
        header_line(&mut out, "x-request-id", id.as_bytes());
    }
    if close {
        header_line(&mut out, "connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    if with_body {
        out.extend_from_slice(&body);
    }
    out
}

/// Appends `name: value` and its line end to a head being written.
fn header_line(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Reads until `buf` holds a whole request head: `Ok(false)` when it is not one this door
/// reads, an error when the connection closed first.
async fn read_head(client: &mut TcpStream, buf: &mut BytesMut) -> std::io::Result<bool> {
    loop {
        if !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match httparse::Request::new(&mut headers).parse(buf) {
                Ok(httparse::Status::Complete(_)) => return Ok(true),
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
                _ => return Ok(false),
            }
        }
        buf.reserve(4096);
        if client.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// A plain read, ready to send on.
struct Plan {
    head_len: usize,
    head: bool,
    context: String,
    /// The path and query, as received.
    target: String,
    /// The header lines sent on as they came.
    forwarded: Vec<u8>,
    request_id: String,
    traceparent: String,
    forwarded_for: Option<String>,
    bearer: Option<String>,
    /// The client's `X-Forwarded-For` lines, for the rate limit's key.
    client_chain: actix_web::http::header::HeaderMap,
    close: bool,
    started: Instant,
}

/// The plan for the head at the start of `buf`, if it is a plain read this door relays.
fn plan(front: &Front, buf: &[u8], peer: Option<SocketAddr>) -> Option<Plan> {
    let started = Instant::now();
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return None,
    };
    if req.version != Some(1) {
        return None;
    }
    let head = match req.method? {
        "GET" => false,
        "HEAD" => true,
        _ => return None,
    };
    let target = req.path?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let context = path.strip_prefix("/api/v1/")?.split_once('/')?.0;
    let pool = front.up.by_context.get(context)?;
    // A path that a URL parser would rewrite, a query with a NUL or a fragment, or an
    // instance not reached over plain HTTP: the application's proxy judges those.
    if !is_plain_path(path)
        || query
            .as_bytes()
            .windows(3)
            .any(|w| w.eq_ignore_ascii_case(b"%00"))
        || !query.bytes().all(|b| b.is_ascii_graphic() && b != b'#')
        || !pool.plain_http
    {
        return None;
    }
    let mut forwarded = Vec::with_capacity(512);
    let mut request_id = None;
    let mut traceparent = None;
    let mut bearer = None;
    let mut close = false;
    let mut client_chain = actix_web::http::header::HeaderMap::new();
    // Two Authorization fields, or not exactly one Host: the application refuses those.
    let count = |field: &str| {
        req.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(field))
            .count()
    };
    if count("authorization") > 1 || count("host") != 1 {
        return None;
    }
    for header in req.headers.iter() {
        let name = header.name;
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("content-length")
            || is("transfer-encoding")
            || is("expect")
            || is("upgrade")
            || is("origin")
            || is(INTERNAL_HEADER)
        {
            return None;
        }
        if is("connection") {
            for token in std::str::from_utf8(header.value).ok()?.split(',') {
                match token.trim() {
                    t if t.eq_ignore_ascii_case("close") => close = true,
                    t if t.eq_ignore_ascii_case("keep-alive") || t.is_empty() => {}
                    // Headers named hop-by-hop by the client: the application's proxy.
                    _ => return None,
                }
            }
            continue;
        }
        if is(FORWARDED_FOR) {
            let value = actix_web::http::header::HeaderValue::from_bytes(header.value).ok()?;
            client_chain.append(
                actix_web::http::header::HeaderName::from_static(FORWARDED_FOR),
                value,
            );
            continue;
        }
        // The first value of each is taken if acceptable (else a new one is made), the rest
        // are dropped, as the application does.
        let keep_first = |slot: &mut Option<Option<String>>, accept: fn(&str) -> Option<String>| {
            if slot.is_none() {
                *slot = Some(std::str::from_utf8(header.value).ok().and_then(accept));
            }
        };
        if is(platform::http::REQUEST_ID.as_str()) {
            keep_first(&mut request_id, platform::http::request_id_from);
            continue;
        }
        if is("traceparent") {
            keep_first(&mut traceparent, platform::http::traceparent_from);
            continue;
        }
        if is("authorization") {
            let value = std::str::from_utf8(header.value).ok()?;
            if let Some((scheme, token)) = value.split_once(' ') {
                if scheme.eq_ignore_ascii_case("bearer") {
                    bearer = Some(token.trim().to_owned());
                }
            }
        }
        if HOP_BY_HOP.iter().any(|h| is(h))
            || is("host")
            || is("forwarded")
            || is("x-forwarded-host")
            || is("x-forwarded-proto")
        {
            continue;
        }
        header_line(&mut forwarded, name, header.value);
    }
    let forwarded_for = front
        .up
        .trusted_proxies
        .forward_for(peer.map(|a| a.ip()), &client_chain);
    Some(Plan {
        head_len,
        head,
        context: context.to_owned(),
        target: target.to_owned(),
        forwarded,
        request_id: request_id
            .flatten()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        traceparent: traceparent.flatten().unwrap_or_else(new_traceparent),
        forwarded_for,
        bearer,
        client_chain,
        close,
        started,
    })
}

/// A new trace's `traceparent` (random trace and span ids, sampled).
fn new_traceparent() -> String {
    let trace = rand::random::<u128>().max(1);
    let span = rand::random::<u64>().max(1);
    format!("00-{trace:032x}-{span:016x}-01")
}

/// The edge's checks: a bearer token must verify and the client be within its limit.
/// A request that fails either goes to the application, which refuses it as it always does.
async fn admitted(front: &Front, plan: &Plan, peer: Option<SocketAddr>) -> bool {
    if let (Some(token), Some(verifier)) = (&plan.bearer, &front.verifier) {
        if verifier.verify(token).await.is_err() {
            return false;
        }
    }
    let key: Option<IpAddr> = front
        .rate_limit
        .applies_to(peer.map(|a| a.ip()), &plan.client_chain);
    match key {
        Some(ip) => front.rate_limit.admit(ip).await.is_ok(),
        None => true,
    }
}

enum Next {
    Continue,
    Close,
}

/// Why an instance gave no answer.
enum Failed {
    /// No connection: the instance is out of service for a while; try another.
    Unreached,
    /// Connected, but no whole answer head in time (`true`) or a broken one.
    NoAnswer { timed_out: bool },
}

/// Relays the planned read to an instance (another once, as the application's proxy does, if
/// the first gave no answer) and its answer to the client.
async fn relay(
    worker: &Worker,
    plan: &Plan,
    client: &mut TcpStream,
    answer: &mut BytesMut,
) -> Next {
    let pool = worker.front.up.by_context.get(&plan.context);
    let Some((pool, first)) = pool.and_then(|pool| Some((pool, pool.pick(None)?))) else {
        let none = ApiError::not_found("not_found", "no upstream");
        return answer_problem(worker, plan, client, &none).await;
    };
    let failure = match exchange(worker, pool, &first, plan, client, answer).await {
        Ok(next) => return next,
        Err(failure) => failure,
    };
    if let Failed::Unreached = failure {
        first.0.eject(&pool.context, "connect");
    }
    // Reads are safe to send twice.
    let (failure, base) = match pool.pick(Some(&first.0)) {
        Some(second) => {
            drop(first);
            metrics::counter!("emporium_gateway_retries_total", "context" => pool.context.clone())
                .increment(1);
            match exchange(worker, pool, &second, plan, client, answer).await {
                Ok(next) => return next,
                Err(failure) => {
                    if let Failed::Unreached = failure {
                        second.0.eject(&pool.context, "connect");
                    }
                    (failure, second.0.base.clone())
                }
            }
        }
        None => (failure, first.0.base.clone()),
    };
    // The same answers as the application's proxy gives.
    let (kind, why) = match failure {
        Failed::NoAnswer { timed_out: true } => (super::Failure::Timeout, "no answer in time"),
        Failed::NoAnswer { timed_out: false } => (super::Failure::Broken, "no whole answer"),
        Failed::Unreached => (super::Failure::Unreachable, "no connection"),
    };
    let problem = super::upstream_failed(kind, &why, &base);
    answer_problem(worker, plan, client, &problem).await
}

/// Answers the client with a problem of the gateway's own.
async fn answer_problem(
    worker: &Worker,
    plan: &Plan,
    client: &mut TcpStream,
    problem: &ApiError,
) -> Next {
    let status = actix_web::ResponseError::status_code(problem);
    let out = problem_answer(problem, Some(&plan.request_id), plan.close, !plan.head);
    worker.record(plan.head, status.as_u16(), plan.started.elapsed());
    finished(plan, status.as_u16());
    if client.write_all(&out).await.is_err() || plan.close {
        return Next::Close;
    }
    Next::Continue
}

fn finished(plan: &Plan, status: u16) {
    if tracing::enabled!(tracing::Level::INFO) {
        let elapsed_ms = plan.started.elapsed().as_secs_f64() * 1000.0;
        let method = if plan.head { "HEAD" } else { "GET" };
        let path = plan.target.split('?').next().unwrap_or("");
        tracing::info!(request_id = %plan.request_id, method, path, status, elapsed_ms, "request finished");
    }
}

/// How an answer's body ends.
#[derive(Clone, Copy, PartialEq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    /// At the end of the connection.
    Close,
}

/// One exchange with one instance: the request out, the answer relayed. `Err` only while
/// nothing has been written to the client (then another instance may be asked).
async fn exchange(
    worker: &Worker,
    pool: &Pool,
    instance: &InFlight,
    plan: &Plan,
    client: &mut TcpStream,
    answer: &mut BytesMut,
) -> Result<Next, Failed> {
    let base = instance.0.base.as_str();
    let rest = base.strip_prefix("http://").ok_or(Failed::Unreached)?;
    let (authority, prefix) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let mut out = Vec::with_capacity(256 + plan.forwarded.len());
    out.extend_from_slice(if plan.head { b"HEAD " } else { b"GET " });
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(plan.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&plan.forwarded);
    for (name, value) in [
        ("x-request-id", Some(plan.request_id.as_str())),
        ("traceparent", Some(plan.traceparent.as_str())),
        (FORWARDED_FOR, plan.forwarded_for.as_deref()),
    ] {
        if let Some(value) = value {
            header_line(&mut out, name, value.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    let deadline = tokio::time::Instant::now() + pool.timeout;
    answer.clear();
    // A kept connection the instance has since closed fails before any answer: once more on a
    // new one, which is no failure of the instance.
    let mut kept = worker.take_idle(authority);
    let (mut conn, head) = loop {
        let reused = kept.is_some();
        let mut conn = match kept.take() {
            Some(conn) => conn,
            None => connect(authority).await.ok_or(Failed::Unreached)?,
        };
        let sent = tokio::time::timeout_at(deadline, async {
            conn.write_all(&out).await?;
            read_answer_head(&mut conn, answer).await
        })
        .await;
        match sent {
            Err(_) => return Err(Failed::NoAnswer { timed_out: true }),
            Ok(Ok(Some(head))) => break (conn, head),
            Ok(Ok(None)) => return Err(Failed::NoAnswer { timed_out: false }),
            Ok(Err(_)) if reused && answer.is_empty() => continue,
            Ok(Err(_)) => return Err(Failed::NoAnswer { timed_out: false }),
        }
    };
    answer.advance(head.len);
    let framing = if plan.head || head.status == 204 || head.status == 304 {
        Framing::None
    } else {
        head.framing
    };
    let close = plan.close || framing == Framing::Close;
    let mut out = head.to_client;
    out.extend_from_slice(b"x-request-id: ");
    out.extend_from_slice(plan.request_id.as_bytes());
    out.extend_from_slice(if close {
        b"\r\nconnection: close\r\n\r\n"
    } else {
        b"\r\n\r\n"
    });
    worker.record(plan.head, head.status, plan.started.elapsed());
    finished(plan, head.status);
    let ended =
        tokio::time::timeout_at(deadline, body(framing, &mut conn, answer, client, out)).await;
    match ended {
        Ok(Ok(true)) if head.keep_alive && answer.is_empty() => worker.keep_idle(authority, conn),
        Ok(Ok(_)) => {}
        // Broken off or too slow once the answer began: the client's connection ends here.
        Ok(Err(_)) | Err(_) => return Ok(Next::Close),
    }
    Ok(if close { Next::Close } else { Next::Continue })
}

async fn connect(authority: &str) -> Option<TcpStream> {
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority))
        .await
        .ok()?
        .ok()?;
    let _ = conn.set_nodelay(true);
    Some(conn)
}

/// An instance's answer head, as the client is to get it.
struct AnswerHead {
    len: usize,
    status: u16,
    framing: Framing,
    keep_alive: bool,
    /// The status line and the headers sent on, without the final blank line.
    to_client: Vec<u8>,
}

/// Reads an answer head into `answer`: `None` when it is no valid HTTP/1.x answer.
async fn read_answer_head(
    conn: &mut TcpStream,
    answer: &mut BytesMut,
) -> std::io::Result<Option<AnswerHead>> {
    loop {
        if !answer.is_empty() {
            match parse_answer(answer) {
                Ok(Some(head)) => return Ok(Some(head)),
                Ok(None) if answer.len() < MAX_UPSTREAM_HEAD => {}
                _ => return Ok(None),
            }
        }
        answer.reserve(8192);
        if conn.read_buf(answer).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// `Ok(None)`: not whole yet. `Err`: not an answer to relay (malformed, informational).
fn parse_answer(bytes: &[u8]) -> Result<Option<AnswerHead>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    let len = match res.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(()),
    };
    let status = res.code.ok_or(())?;
    if status < 200 {
        return Err(());
    }
    let mut keep_alive = res.version == Some(1);
    let mut named: Vec<&str> = Vec::new();
    let mut length: Option<u64> = None;
    let mut chunked = None;
    for header in res.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("connection") {
            for token in std::str::from_utf8(header.value)
                .map_err(|_| ())?
                .split(',')
            {
                let token = token.trim();
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if !token.is_empty() {
                    named.push(token);
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            let n: u64 = std::str::from_utf8(header.value)
                .map_err(|_| ())?
                .trim()
                .parse()
                .map_err(|_| ())?;
            if length.is_some_and(|l| l != n) {
                return Err(());
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let value = std::str::from_utf8(header.value).map_err(|_| ())?;
            let last = value.rsplit(',').next().unwrap_or("").trim();
            chunked = Some(last.eq_ignore_ascii_case("chunked"));
        }
    }
    // Both framings in one answer (RFC 9112 §6.3): a sign of response splitting. Not relayed,
    // and the connection is not used again.
    if chunked.is_some() && length.is_some() {
        return Err(());
    }
    let framing = match (chunked, length) {
        (Some(true), _) => Framing::Chunked,
        (Some(false), _) => Framing::Close,
        (None, Some(n)) => Framing::Length(n),
        (None, None) => Framing::Close,
    };
    if framing == Framing::Close {
        keep_alive = false;
    }
    let mut to_client = Vec::with_capacity(len + 64);
    to_client.extend_from_slice(
        format!("HTTP/1.1 {status} {}\r\n", res.reason.unwrap_or("")).as_bytes(),
    );
    for header in res.headers.iter() {
        let name = header.name;
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        // The framing headers stay: the body is relayed with the framing it came with.
        let framing_header = is("content-length") || is("transfer-encoding");
        if (!framing_header && HOP_BY_HOP.iter().any(|h| is(h)))
            || named.iter().any(|n| is(n))
            || is(platform::http::REQUEST_ID.as_str())
        {
            continue;
        }
        header_line(&mut to_client, name, header.value);
    }
    Ok(Some(AnswerHead {
        len,
        status,
        framing,
        keep_alive,
        to_client,
    }))
}

/// Sends `head` and then the body as it arrives. `Ok(true)` when the body ended where its
/// framing says (the instance's connection can be used again), `Ok(false)` when it ended
/// with the connection.
async fn body(
    framing: Framing,
    conn: &mut TcpStream,
    answer: &mut BytesMut,
    client: &mut TcpStream,
    mut head: Vec<u8>,
) -> std::io::Result<bool> {
    let mut left = match framing {
        Framing::Length(n) => n,
        _ => u64::MAX,
    };
    let mut chunks = Chunks::default();
    let mut pending = head.len();
    loop {
        // What of `answer` belongs to this body.
        let take = match framing {
            Framing::None => 0,
            Framing::Length(_) => usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(answer.len()),
            Framing::Close => answer.len(),
            Framing::Chunked => match chunks.feed(answer) {
                Ok(Some(end)) => {
                    left = 0;
                    end
                }
                Ok(None) => answer.len(),
                Err(()) => return Err(std::io::ErrorKind::InvalidData.into()),
            },
        };
        if let Framing::Length(_) = framing {
            left -= take as u64;
        }
        if pending > 0 {
            // The head goes out with the first part of the body, in one write.
            head.extend_from_slice(&answer[..take]);
            client.write_all(&head).await?;
            pending = 0;
        } else if take > 0 {
            client.write_all(&answer[..take]).await?;
        }
        answer.advance(take);
        if framing == Framing::None || left == 0 {
            return Ok(true);
        }
        answer.reserve(16 * 1024);
        if conn.read_buf(answer).await? == 0 {
            return if framing == Framing::Close {
                Ok(false)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
    }
}

/// Where a chunked body is (RFC 9112 §7.1), to know where it ends.
#[derive(Default)]
struct Chunks {
    state: ChunkState,
    size: u64,
    digits: u8,
}

#[derive(Default, Clone, Copy, PartialEq, Debug)]
enum ChunkState {
    #[default]
    Size,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    Trailer,
    TrailerLf,
    EndLf,
}

impl Chunks {
    /// Reads on through `data`: `Some(n)` when the body ends after its first `n` bytes.
    fn feed(&mut self, data: &[u8]) -> Result<Option<usize>, ()> {
        use ChunkState::*;
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            i += 1;
            self.state = match self.state {
                Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let digit = u64::from((b as char).to_digit(16).ok_or(())?);
                        self.digits += 1;
                        if self.digits > 15 {
                            return Err(());
                        }
                        self.size = self.size * 16 + digit;
                        Size
                    }
                    b';' | b' ' | b'\t' if self.digits > 0 => Extension,
                    b'\r' if self.digits > 0 => SizeLf,
                    _ => return Err(()),
                },
                Extension => match b {
                    b'\r' => SizeLf,
                    b'\n' => return Err(()),
                    _ => Extension,
                },
                SizeLf if b == b'\n' => {
                    if self.size == 0 {
                        TrailerStart
                    } else {
                        Data
                    }
                }
                Data => {
                    // This byte and as many more as the chunk has.
                    let more = usize::try_from(self.size - 1)
                        .unwrap_or(usize::MAX)
                        .min(data.len() - i);
                    i += more;
                    self.size -= 1 + more as u64;
                    if self.size == 0 {
                        DataCr
                    } else {
                        Data
                    }
                }
                DataCr if b == b'\r' => DataLf,
                DataLf if b == b'\n' => {
                    self.digits = 0;
                    Size
                }
                TrailerStart => match b {
                    b'\r' => EndLf,
                    b'\n' => return Err(()),
                    _ => Trailer,
                },
                Trailer => match b {
                    b'\r' => TrailerLf,
                    b'\n' => return Err(()),
                    _ => Trailer,
                },
                TrailerLf if b == b'\n' => TrailerStart,
                EndLf if b == b'\n' => return Ok(Some(i)),
                _ => return Err(()),
            };
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(parts: &[&[u8]]) -> Result<Option<usize>, ()> {
        let mut chunks = Chunks::default();
        let mut seen = 0;
        for part in parts {
            if let Some(n) = chunks.feed(part)? {
                return Ok(Some(seen + n));
            }
            seen += part.len();
        }
        Ok(None)
    }

    #[test]
    fn a_chunked_body_ends_after_its_last_chunk_and_trailers_however_it_is_cut() {
        let body: &[u8] = b"5\r\nhello\r\na;ext=1\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\nGET";
        let end = body.len() - 3;
        assert_eq!(ends(&[body]), Ok(Some(end)));
        for cut in 1..body.len() {
            assert_eq!(
                ends(&[&body[..cut], &body[cut..]]),
                Ok(Some(end)),
                "cut at {cut}"
            );
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(ends(&bytes), Ok(Some(end)));
        assert_eq!(ends(&[b"0\r\n\r\n"]), Ok(Some(5)));
        assert_eq!(ends(&[b"3\r\nabc\r\n"]), Ok(None));
    }

    #[test]
    fn a_new_trace_is_one_the_contexts_continue() {
        for _ in 0..100 {
            let traceparent = new_traceparent();
            assert_eq!(
                platform::http::traceparent_from(&traceparent).as_deref(),
                Some(traceparent.as_str())
            );
        }
    }

    #[test]
    fn a_malformed_chunked_body_is_refused() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\nhello",
            b"3\r\nabcX\r\n",
            b"ffffffffffffffff\r\n",
            b"0\r\n\n",
        ] {
            assert_eq!(ends(&[bad]), Err(()), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn an_answer_keeps_its_framing_and_loses_its_hop_by_hop_headers() {
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: keep-alive, x-hop\r\nx-hop: 1\r\nkeep-alive: timeout=5\r\nx-request-id: theirs\r\netag: \"1\"\r\n\r\nhello";
        let parsed = parse_answer(head)
            .unwrap_or_else(|()| panic!("parses"))
            .unwrap_or_else(|| panic!("whole"));
        assert_eq!(parsed.status, 200);
        assert!(parsed.keep_alive);
        assert!(parsed.framing == Framing::Length(5));
        assert_eq!(
            String::from_utf8_lossy(&parsed.to_client),
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\netag: \"1\"\r\n"
        );
        let close =
            parse_answer(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
                .unwrap_or_else(|()| panic!("parses"))
                .unwrap_or_else(|| panic!("whole"));
        assert!(!close.keep_alive);
        let unframed = parse_answer(b"HTTP/1.1 200 OK\r\n\r\nab")
            .unwrap_or_else(|()| panic!("parses"))
            .unwrap_or_else(|| panic!("whole"));
        assert!(unframed.framing == Framing::Close && !unframed.keep_alive);
        assert!(
            parse_answer(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n")
                .is_err()
        );
        assert!(parse_answer(b"HTTP/1.1 100 Continue\r\n\r\n").is_err());
        // Content-Length beside Transfer-Encoding, in either order: refused.
        for both in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n",
        ] {
            assert!(
                parse_answer(both).is_err(),
                "{}",
                String::from_utf8_lossy(both)
            );
        }
        assert!(matches!(
            parse_answer(b"HTTP/1.1 200 OK\r\ncontent-"),
            Ok(None)
        ));
    }
}
