//! X-Ray subsegments for the DynamoDB and Stripe calls of an invocation, without an X-Ray SDK
//! (Rust has no official one): a `tracing` layer that sends each span marked for it to the
//! X-Ray daemon Lambda runs beside the function when the function's tracing is `Active`.
//!
//! Lambda records the invocation's own segment and gives its trace header in
//! `_X_AMZN_TRACE_ID` (`Root=1-...;Parent=...;Sampled=1`; the runtime sets it before each
//! invocation). A marked span becomes one subsegment of that segment (or of the marked span
//! around it), sent when the span closes as one UDP datagram to `AWS_XRAY_DAEMON_ADDRESS`.
//!
//! What marks a span (the store and the Stripe client follow it; they can't depend on this
//! crate): target [`TARGET`], at `INFO`, named for the subsegment (`DynamoDB`, `Stripe`), with
//! these fields, declared when it is made and recorded by the time it closes:
//!
//! - `aws.operation`, `aws.table_name`: an AWS call (namespace `aws`);
//! - `http.method`, `http.url` (scheme and host only), `http.path` (a template: ids as
//!   `{id}`): a call to another service (namespace `remote`);
//! - `http.status`: the answer's status;
//! - `error` (a 4xx), `throttle` (a 429 or a throttling error), `fault` (a 5xx, or no answer).
//!
//! Without `AWS_XRAY_DAEMON_ADDRESS` (tests, the local runner, tracing off) there is no layer,
//! and the marked spans are disabled: nothing is built or sent. Without a trace header, or in an
//! invocation X-Ray does not sample (`Sampled=0`), a marked span sends nothing.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The target of the spans sent to X-Ray.
pub const TARGET: &str = "xray";
/// Where the daemon listens (`169.254.79.129:2000`, or `udp:host:port tcp:host:port`), set by
/// Lambda when the function's tracing is `Active`.
pub const DAEMON_ADDRESS_VAR: &str = "AWS_XRAY_DAEMON_ADDRESS";
/// The invocation's trace header, set by the Lambda runtime before each invocation.
pub const TRACE_HEADER_VAR: &str = "_X_AMZN_TRACE_ID";

/// What the daemon reads before each document.
const DATAGRAM_HEADER: &str = "{\"format\": \"json\", \"version\": 1}\n";

/// Where a trace header is read when a marked span opens.
type HeaderSource = Box<dyn Fn() -> Option<String> + Send + Sync>;

/// Sends the marked spans to the X-Ray daemon (see the module doc).
pub struct XrayLayer {
    socket: UdpSocket,
    daemon: SocketAddr,
    trace_header: HeaderSource,
}

impl std::fmt::Debug for XrayLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XrayLayer").field("daemon", &self.daemon).finish_non_exhaustive()
    }
}

impl XrayLayer {
    /// The layer of a function whose tracing is on: `None` when [`DAEMON_ADDRESS_VAR`] is unset,
    /// an error when it is set but unusable.
    pub fn from_env() -> Result<Option<Self>, String> {
        let Some(address) = std::env::var(DAEMON_ADDRESS_VAR).ok().filter(|v| !v.trim().is_empty()) else {
            return Ok(None);
        };
        let daemon = daemon_address(&address)?;
        let header = || std::env::var(TRACE_HEADER_VAR).ok();
        Self::new(daemon, Box::new(header)).map(Some)
    }

    /// A layer sending to `daemon`, reading each invocation's trace header from `trace_header`.
    pub fn new(daemon: SocketAddr, trace_header: HeaderSource) -> Result<Self, String> {
        let local: SocketAddr = if daemon.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let socket = UdpSocket::bind(local).map_err(|e| format!("no UDP socket for X-Ray: {e}"))?;
        // A send must never hold up the request: a datagram the kernel can't take now is dropped.
        socket.set_nonblocking(true).map_err(|e| format!("no UDP socket for X-Ray: {e}"))?;
        Ok(Self { socket, daemon, trace_header })
    }

    /// The filter to put the layer under: it sees the marked spans only.
    pub fn filter() -> Targets {
        Targets::new().with_target(TARGET, Level::INFO)
    }

    fn send(&self, document: &str) {
        let datagram = format!("{DATAGRAM_HEADER}{document}");
        // Lost traces are better than a request slowed or failed by them: errors are dropped.
        let _ = self.socket.send_to(datagram.as_bytes(), self.daemon);
    }
}

/// The daemon's UDP address from [`DAEMON_ADDRESS_VAR`]'s value.
pub fn daemon_address(value: &str) -> Result<SocketAddr, String> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let udp = match parts.as_slice() {
        [one] if !one.starts_with("tcp:") => one.strip_prefix("udp:").unwrap_or(one),
        _ => parts
            .iter()
            .find_map(|p| p.strip_prefix("udp:"))
            .ok_or_else(|| format!("{value:?} names no UDP address"))?,
    };
    udp.to_socket_addrs()
        .map_err(|e| format!("{DAEMON_ADDRESS_VAR}={value:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{DAEMON_ADDRESS_VAR}={value:?} resolves to no address"))
}

/// What a trace header says of the invocation: its trace, the segment to hang subsegments
/// under, and whether X-Ray keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader {
    pub root: String,
    pub parent: String,
    pub sampled: bool,
}

impl TraceHeader {
    /// `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`; `None`
    /// without a root or a parent.
    pub fn parse(header: &str) -> Option<Self> {
        let (mut root, mut parent, mut sampled) = (None, None, false);
        for part in header.split(';') {
            match part.trim().split_once('=') {
                Some(("Root", v)) => root = Some(v.to_owned()),
                Some(("Parent", v)) => parent = Some(v.to_owned()),
                Some(("Sampled", v)) => sampled = v == "1",
                _ => {}
            }
        }
        Some(TraceHeader { root: root?, parent: parent?, sampled })
    }
}

/// A marked span being timed, kept in its extensions.
struct Open {
    trace_id: String,
    parent_id: String,
    id: String,
    start: SystemTime,
    fields: Fields,
}

/// The fields of the span contract (module doc) a span recorded.
#[derive(Debug, Default)]
struct Fields {
    operation: Option<String>,
    table_name: Option<String>,
    method: Option<String>,
    url: Option<String>,
    path: Option<String>,
    status: Option<u64>,
    error: bool,
    throttle: bool,
    fault: bool,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let slot = match field.name() {
            "aws.operation" => &mut self.operation,
            "aws.table_name" => &mut self.table_name,
            "http.method" => &mut self.method,
            "http.url" => &mut self.url,
            "http.path" => &mut self.path,
            _ => return,
        };
        *slot = Some(value.to_owned());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "http.status" {
            self.status = Some(value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Ok(value) = u64::try_from(value) {
            self.record_u64(field, value);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        match field.name() {
            "error" => self.error = value,
            "throttle" => self.throttle = value,
            "fault" => self.fault = value,
            _ => {}
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// Seconds since the epoch to the microsecond, written as X-Ray reads them (a JSON number),
/// without going through a float.
fn epoch_seconds(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:06}", since.as_secs(), since.subsec_micros())
}

/// A subsegment's 64-bit id, as X-Ray writes ids: 16 lowercase hex digits.
fn new_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

impl Open {
    /// The subsegment document of the span `name`, closed at `end`.
    fn document(&self, name: &str, end: SystemTime) -> String {
        let f = &self.fields;
        let mut doc = json!({
            "type": "subsegment", "name": name, "id": self.id, "trace_id": self.trace_id, "parent_id": self.parent_id,
        });
        let mut http = serde_json::Map::new();
        if let Some(operation) = &f.operation {
            doc["namespace"] = json!("aws");
            doc["aws"] = json!({ "operation": operation });
            if let Some(table) = &f.table_name {
                doc["aws"]["table_name"] = json!(table);
            }
        } else if f.url.is_some() || f.method.is_some() {
            doc["namespace"] = json!("remote");
            http.insert("request".into(), json!({ "method": f.method, "url": f.url }));
        }
        if let Some(status) = f.status {
            http.insert("response".into(), json!({ "status": status }));
        }
        if !http.is_empty() {
            doc["http"] = Value::Object(http);
        }
        if let Some(path) = &f.path {
            doc["metadata"] = json!({ "http": { "path": path } });
        }
        for (flag, set) in [("error", f.error || f.throttle), ("throttle", f.throttle), ("fault", f.fault)] {
            if set {
                doc[flag] = json!(true);
            }
        }
        let rest = doc.to_string();
        // The times are written as text, then the rest of the object after its opening brace.
        format!(
            "{{\"start_time\":{},\"end_time\":{},{}",
            epoch_seconds(self.start),
            epoch_seconds(end.max(self.start)),
            &rest[1..]
        )
    }
}

impl<S> Layer<S> for XrayLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        // Under a marked span, its subsegment is the parent; else the invocation's segment.
        let outer =
            span.parent().and_then(|p| p.extensions().get::<Open>().map(|o| (o.trace_id.clone(), o.id.clone())));
        let (trace_id, parent_id) = match outer {
            Some(outer) => outer,
            None => match (self.trace_header)().as_deref().and_then(TraceHeader::parse) {
                Some(TraceHeader { root, parent, sampled: true }) => (root, parent),
                _ => return,
            },
        };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(Open { trace_id, parent_id, id: new_id(), start: SystemTime::now(), fields });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(open) = span.extensions_mut().get_mut::<Open>()
        {
            values.record(&mut open.fields);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(open) = span.extensions_mut().remove::<Open>() else { return };
        self.send(&open.document(span.name(), SystemTime::now()));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tracing::field::Empty;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    const HEADER: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    /// A daemon on loopback, and a subscriber whose layer sends to it under `header`.
    fn daemon_and_layer(header: &'static str) -> (UdpSocket, impl Subscriber + Send + Sync) {
        let daemon = UdpSocket::bind("127.0.0.1:0").unwrap();
        daemon.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let layer = XrayLayer::new(daemon.local_addr().unwrap(), Box::new(move || Some(header.to_owned()))).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer.with_filter(XrayLayer::filter()));
        (daemon, subscriber)
    }

    /// The next datagram's document, after checking its header line; `None` if none came.
    fn received(daemon: &UdpSocket) -> Option<Value> {
        let mut buf = [0u8; 65_536];
        let n = daemon.recv(&mut buf).ok()?;
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        let document = text.strip_prefix(DATAGRAM_HEADER).unwrap_or_else(|| panic!("no header line: {text}"));
        Some(serde_json::from_str(document).unwrap())
    }

    fn is_id(v: &Value) -> bool {
        v.as_str().is_some_and(|s| s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    }

    #[test]
    fn a_dynamodb_span_is_one_subsegment_of_the_invocation() {
        let (daemon, subscriber) = daemon_and_layer(HEADER);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(target: "xray", "DynamoDB", aws.operation = "TransactWriteItems",
                aws.table_name = "billing", http.status = Empty, error = Empty, throttle = Empty, fault = Empty);
            span.record("http.status", 400_u64);
            span.record("error", true);
            // A span of the log, not marked: never sent.
            let _log = tracing::info_span!("request").entered();
        });
        let doc = received(&daemon).expect("one datagram");
        assert_eq!(doc["type"], "subsegment");
        assert_eq!(doc["name"], "DynamoDB");
        assert_eq!(doc["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(doc["parent_id"], "53995c3f42cd8ad8");
        assert!(is_id(&doc["id"]), "{doc}");
        assert_eq!(doc["namespace"], "aws");
        assert_eq!(doc["aws"], json!({ "operation": "TransactWriteItems", "table_name": "billing" }));
        assert_eq!(doc["http"], json!({ "response": { "status": 400 } }));
        assert_eq!((&doc["error"], &doc["fault"], &doc["throttle"]), (&json!(true), &Value::Null, &Value::Null));
        let (start, end) = (doc["start_time"].as_number().unwrap(), doc["end_time"].as_number().unwrap());
        assert!(start.to_string() <= end.to_string(), "{doc}");
        assert!(received(&daemon).is_none(), "one span, one datagram");
    }

    #[test]
    fn a_stripe_span_is_a_remote_call_to_a_host_with_a_path_template() {
        let (daemon, subscriber) = daemon_and_layer(HEADER);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(target: "xray", "Stripe", http.method = "POST",
                http.url = "https://api.stripe.com", http.path = "/v1/payment_methods/{id}/detach",
                http.status = Empty, error = Empty, throttle = Empty, fault = Empty);
            span.record("http.status", 429_u64);
            span.record("throttle", true);
        });
        let doc = received(&daemon).expect("one datagram");
        assert_eq!(doc["namespace"], "remote");
        assert_eq!(
            doc["http"],
            json!({ "request": { "method": "POST", "url": "https://api.stripe.com" }, "response": { "status": 429 } })
        );
        assert_eq!(doc["metadata"], json!({ "http": { "path": "/v1/payment_methods/{id}/detach" } }));
        assert_eq!((&doc["throttle"], &doc["error"], &doc["fault"]), (&json!(true), &json!(true), &Value::Null));
        assert!(doc.get("aws").is_none());
    }

    #[test]
    fn a_marked_span_inside_another_hangs_under_it() {
        let (daemon, subscriber) = daemon_and_layer(HEADER);
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!(target: "xray", "Stripe", http.method = "GET").entered();
            let _between = tracing::info_span!("not marked").entered();
            drop(tracing::info_span!(target: "xray", "DynamoDB", aws.operation = "GetItem"));
            drop(outer);
        });
        let inner = received(&daemon).expect("the inner span closes first");
        let outer = received(&daemon).expect("then the outer one");
        assert_eq!(inner["parent_id"], outer["id"]);
        assert_eq!(outer["parent_id"], "53995c3f42cd8ad8");
        assert_eq!(inner["trace_id"], outer["trace_id"]);
    }

    #[test]
    fn nothing_is_sent_for_an_invocation_not_sampled_or_without_a_header() {
        for header in ["Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0", ""] {
            let (daemon, subscriber) = daemon_and_layer(header);
            tracing::subscriber::with_default(subscriber, || {
                drop(tracing::info_span!(target: "xray", "DynamoDB", aws.operation = "GetItem"));
            });
            assert!(received(&daemon).is_none(), "{header:?}");
        }
    }

    #[test]
    fn trace_headers_are_read() {
        assert_eq!(
            TraceHeader::parse(HEADER),
            Some(TraceHeader {
                root: "1-5759e988-bd862e3fe1be46a994272793".into(),
                parent: "53995c3f42cd8ad8".into(),
                sampled: true
            })
        );
        assert_eq!(TraceHeader::parse("Root=1-a-b;Sampled=1"), None, "no parent");
        assert_eq!(TraceHeader::parse("Root=1-a-b;Parent=c;Lineage=x:1").map(|h| h.sampled), Some(false));
    }

    #[test]
    fn the_daemon_address_is_read_in_both_forms() {
        let expected: SocketAddr = "169.254.79.129:2000".parse().unwrap();
        assert_eq!(daemon_address("169.254.79.129:2000"), Ok(expected));
        assert_eq!(daemon_address("tcp:127.0.0.1:2000 udp:169.254.79.129:2000"), Ok(expected));
        assert!(daemon_address("tcp:127.0.0.1:2000").is_err());
        assert!(daemon_address("nowhere").is_err());
    }

    #[test]
    fn times_are_seconds_to_the_microsecond() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(epoch_seconds(t), "1700000000.123456");
        assert_eq!(epoch_seconds(UNIX_EPOCH + Duration::from_micros(5)), "0.000005");
    }
}
