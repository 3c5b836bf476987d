//! Routing as API Gateway does it, from template.yaml: a request is matched to a route key
//! (`"DELETE /partner/workspaces/{id}/addons/{addon_id}"`), its JWT is checked if the route
//! has the authorizer, and the function behind the route gets the API Gateway v2 event that
//! the deployed function would get: route key, path parameters, query string, claims.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use api::ApiError;
use base64::Engine as _;
use billing::Billing;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription, ApiGatewayV2httpRequest,
    ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
};
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::http::{self, HeaderMap, HeaderValue, Method, header};
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, Request, Response};
use store::Table;

use crate::clock;
use crate::jwt::{self, Verifier};
use crate::policy::{self, ActivePolicy};
use crate::registry::{self, Handler};
use crate::template::{FunctionSpec, RouteSpec, SpecError, Template};

/// A request as it reaches the runner: method, URI, headers, the whole body.
pub type HttpRequest = http::Request<Vec<u8>>;
/// Claims as API Gateway's JWT authorizer hands them over: every value a string.
pub type Claims = HashMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("template.yaml and the function crates disagree:\n  - {}", .0.join("\n  - "))]
    Mismatch(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    /// `{name+}`: the rest of the path (API Gateway's greedy parameter).
    Greedy(String),
}

impl Segment {
    /// API Gateway prefers the most specific route: a literal segment over a parameter, a
    /// parameter over a greedy one.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Param(_) => 1,
            Segment::Greedy(_) => 2,
        }
    }
}

fn segments(path: &str) -> Vec<Segment> {
    path.split('/')
        .skip(1)
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => match name.strip_suffix('+') {
                Some(greedy) => Segment::Greedy(greedy.to_owned()),
                None => Segment::Param(name.to_owned()),
            },
            None => Segment::Literal(s.to_owned()),
        })
        .collect()
}

/// One route of template.yaml and the handler of the function it belongs to.
pub struct Route<T> {
    pub spec: RouteSpec,
    /// The function's logical id in the template.
    pub function: String,
    pub code_uri: String,
    segments: Vec<Segment>,
    handler: Handler<T>,
    /// The function's DynamoDB permissions, enforced while its handler runs.
    pub policy: Option<Arc<ActivePolicy>>,
}

impl<T> Route<T> {
    pub fn key(&self) -> String {
        self.spec.key()
    }

    /// The path parameters if `path` (split into raw segments) matches this route.
    fn matches(&self, raw: &[&str]) -> Option<HashMap<String, String>> {
        let mut params = HashMap::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Greedy(name) => {
                    let rest = raw.get(i..).filter(|r| !r.is_empty())?;
                    params.insert(name.clone(), percent_decode(&rest.join("/")));
                    return Some(params);
                }
                Segment::Literal(l) => (raw.get(i)? == l).then_some(())?,
                Segment::Param(name) => {
                    let value = raw.get(i).filter(|v| !v.is_empty())?;
                    params.insert(name.clone(), percent_decode(value));
                }
            }
        }
        (raw.len() == self.segments.len()).then_some(params)
    }
}

/// A route and the path parameters it matched with.
pub struct Matched<'r, T> {
    pub route: &'r Route<T>,
    pub path_parameters: HashMap<String, String>,
}

/// Every route of template.yaml, each bound to its function's handler, and the permissions of
/// the functions without routes (renewal, fold, charging, sweep), which the runner's own passes
/// run with.
pub struct Router<T> {
    routes: Vec<Route<T>>,
    renewal: Option<Arc<ActivePolicy>>,
    fold: Option<Arc<ActivePolicy>>,
    charging: Option<Arc<ActivePolicy>>,
    sweep: Option<Arc<ActivePolicy>>,
}

impl<T: Table> Router<T> {
    /// Reads template.yaml and binds its routes to the function crates. Fails, naming every
    /// problem, when a templated function has no crate here, a route in the template is not
    /// one its crate answers, a crate answers a route the template does not give it, a crate
    /// of the registry is in no function of the template, or a route is under `/_local` (the
    /// runner's own controls, answered before routing).
    pub fn from_template(path: &Path) -> Result<Router<T>, RouterError> {
        Self::from_spec(&Template::load(path)?)
    }

    pub fn from_spec(template: &Template) -> Result<Router<T>, RouterError> {
        let mut problems = Vec::new();
        let mut routes: Vec<Route<T>> = Vec::new();
        let mut served = BTreeSet::new();
        for f in template.functions.iter().filter(|f| !f.routes.is_empty()) {
            let (Some(entry), Some(handler)) = (registry::entry(&f.code_uri), registry::handler::<T>(&f.code_uri))
            else {
                problems.push(format!(
                    "function {} (CodeUri {}) has HttpApi routes but the runner has no handler for it \
                     (add it to local/src/registry.rs)",
                    f.logical_id, f.code_uri
                ));
                continue;
            };
            served.insert(entry.code_uri);
            let policy = active_policy(f);
            problems.extend(binary_mismatch(f, entry));
            for spec in &f.routes {
                let key = spec.key();
                if spec.path.split('/').nth(1) == Some(clock::LOCAL_SEGMENT) {
                    problems.push(format!(
                        "route {key} (function {}) is under /{}, which the runner keeps for its own controls",
                        f.logical_id,
                        clock::LOCAL_SEGMENT
                    ));
                }
                if !entry.routes.contains(&key.as_str()) {
                    problems.push(format!(
                        "route {key} (function {}) is not in {}'s ROUTES: its handler would answer 404",
                        f.logical_id, entry.package
                    ));
                }
                if let Some(other) = routes.iter().find(|r| r.key() == key) {
                    problems.push(format!("route {key} is declared twice ({} and {})", other.function, f.logical_id));
                    continue;
                }
                routes.push(Route {
                    spec: spec.clone(),
                    function: f.logical_id.clone(),
                    code_uri: entry.code_uri.to_owned(),
                    segments: segments(&spec.path),
                    handler,
                    policy: policy.clone(),
                });
            }
            for key in entry.routes {
                if !f.routes.iter().any(|r| r.key() == *key) {
                    problems.push(format!(
                        "{}'s ROUTES has {key}, which template.yaml does not route to it",
                        entry.package
                    ));
                }
            }
        }
        // Functions without routes: the runner runs renew-addons', fold-usage's,
        // charge-refills' and reconcile-payments' work itself (`crate::clock`).
        let (mut renewal, mut fold, mut charging, mut sweep) = (None, None, None, None);
        for f in template.functions.iter().filter(|f| f.routes.is_empty()) {
            let Some(entry) = registry::entry(&f.code_uri) else { continue };
            served.insert(entry.code_uri);
            problems.extend(binary_mismatch(f, entry));
            if entry.code_uri == registry::RENEW_ADDONS {
                renewal = active_policy(f);
            } else if entry.code_uri == registry::FOLD_USAGE {
                fold = active_policy(f);
            } else if entry.code_uri == registry::CHARGE_REFILLS {
                charging = active_policy(f);
            } else if entry.code_uri == registry::RECONCILE_PAYMENTS {
                sweep = active_policy(f);
            }
        }
        for entry in registry::FUNCTIONS.iter().filter(|e| !served.contains(e.code_uri)) {
            let what = if entry.routes.is_empty() { "runs on a schedule" } else { "has routes" };
            problems.push(format!(
                "{} {what} but no function in template.yaml has CodeUri {}",
                entry.package, entry.code_uri
            ));
        }
        if problems.is_empty() {
            Ok(Router { routes, renewal, fold, charging, sweep })
        } else {
            Err(RouterError::Mismatch(problems))
        }
    }
}

/// The permissions template.yaml gives `f`, to enforce while it runs; `None` (with a warning)
/// when they are not inline statements the runner can read.
fn active_policy(f: &FunctionSpec) -> Option<Arc<ActivePolicy>> {
    let policy = f.dynamodb.clone().map(|policy| Arc::new(ActivePolicy { function: f.logical_id.clone(), policy }));
    if policy.is_none() {
        tracing::warn!(function = %f.logical_id, "its Policies are not inline statements: not enforced locally");
    }
    policy
}

/// cargo-lambda builds `BuildProperties.Binary`: it must be the crate at `CodeUri`.
fn binary_mismatch(f: &FunctionSpec, entry: &registry::FunctionEntry) -> Option<String> {
    f.binary.as_ref().filter(|binary| *binary != entry.package).map(|binary| {
        format!(
            "function {}: BuildProperties.Binary is {binary} but {} is package {}",
            f.logical_id, entry.code_uri, entry.package
        )
    })
}

impl<T> Router<T> {
    /// The scheduled renewal function's permissions, for the runner's renewal passes.
    pub fn renewal_policy(&self) -> Option<Arc<ActivePolicy>> {
        self.renewal.clone()
    }

    /// The scheduled fold function's permissions, for the runner's fold passes.
    pub fn fold_policy(&self) -> Option<Arc<ActivePolicy>> {
        self.fold.clone()
    }

    /// The charging function's permissions, for the runner's charging passes.
    pub fn charging_policy(&self) -> Option<Arc<ActivePolicy>> {
        self.charging.clone()
    }

    /// The sweep function's permissions, for the runner's sweeps.
    pub fn sweep_policy(&self) -> Option<Arc<ActivePolicy>> {
        self.sweep.clone()
    }

    /// Every route key the runner serves.
    pub fn routes(&self) -> BTreeSet<String> {
        self.routes.iter().map(Route::key).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route<T>> {
        self.routes.iter()
    }

    /// The route API Gateway would pick for `method` and the raw (percent-encoded) `path`:
    /// the most specific match, an exact method before `ANY`.
    pub fn resolve(&self, method: &Method, path: &str) -> Option<Matched<'_, T>> {
        if !path.starts_with('/') {
            return None;
        }
        let raw: Vec<&str> = if path == "/" { vec![] } else { path[1..].split('/').collect() };
        self.routes
            .iter()
            .filter(|r| r.spec.method == method.as_str() || r.spec.method == "ANY")
            .filter_map(|r| r.matches(&raw).map(|params| (r, params)))
            .min_by_key(|(r, _)| (r.segments.iter().map(Segment::rank).collect::<Vec<_>>(), r.spec.method == "ANY"))
            .map(|(route, path_parameters)| Matched { route, path_parameters })
    }
}

impl<T: Table> Router<T> {
    /// The whole of API Gateway's part: route, authorize with `verifier` (against the real
    /// clock, as API Gateway does), invoke. Unknown routes are 404 and a missing, invalid or expired token on a JWT route
    /// is 401, both in the API's error shape.
    pub async fn handle(&self, billing: &Billing<T>, verifier: &Verifier, req: HttpRequest) -> Response<Body> {
        let Some(matched) = self.resolve(req.method(), req.uri().path()) else {
            return ApiError::route_not_found().into_response();
        };
        let claims = if matched.route.spec.jwt {
            let token = req.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).and_then(jwt::bearer);
            match token.map(|t| verifier.verify(t)) {
                Some(Ok(claims)) => Some(claims),
                Some(Err(e)) => {
                    tracing::info!(route = %matched.route.key(), error = %e, "token refused");
                    return unauthorized();
                }
                None => return unauthorized(),
            }
        } else {
            None
        };
        self.invoke(billing, matched, req, claims).await
    }

    /// Routes `req` and invokes its function with `claims` as the authorizer's (no token is
    /// checked: for tests that bring their own claims). A JWT route without claims is 401.
    pub async fn dispatch(&self, billing: &Billing<T>, req: HttpRequest, claims: Option<Claims>) -> Response<Body> {
        let Some(matched) = self.resolve(req.method(), req.uri().path()) else {
            return ApiError::route_not_found().into_response();
        };
        if matched.route.spec.jwt && claims.is_none() {
            return unauthorized();
        }
        self.invoke(billing, matched, req, claims).await
    }

    async fn invoke(
        &self,
        billing: &Billing<T>,
        matched: Matched<'_, T>,
        req: HttpRequest,
        claims: Option<Claims>,
    ) -> Response<Body> {
        let handler = matched.route.handler;
        let policy = matched.route.policy.clone();
        let event = gateway_event(&matched, req, claims);
        match policy {
            Some(p) => policy::scope(p, handler(billing, event)).await,
            None => handler(billing, event).await,
        }
    }
}

fn unauthorized() -> Response<Body> {
    let mut response = ApiError::unauthorized().into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The API Gateway HTTP API (payload 2.0) event for `req` on the matched route, turned into a
/// `lambda_http::Request` by lambda_http's own conversion, the one a deployed function runs.
pub fn gateway_event<T>(matched: &Matched<'_, T>, req: HttpRequest, claims: Option<Claims>) -> Request {
    let (parts, body) = req.into_parts();
    let now = time::OffsetDateTime::now_utc();
    let request_id = format!("local-{:016x}", fastrand::u64(..));

    let mut http_ctx = ApiGatewayV2httpRequestContextHttpDescription::default();
    http_ctx.method = parts.method.clone();
    http_ctx.path = Some(parts.uri.path().to_owned());
    http_ctx.protocol = Some(format!("{:?}", parts.version));
    http_ctx.source_ip = parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()).map(str::to_owned);
    http_ctx.user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);

    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.route_key = Some(matched.route.key());
    ctx.account_id = Some("000000000000".into());
    ctx.stage = Some("$default".into());
    ctx.request_id = Some(request_id);
    ctx.apiid = Some("local".into());
    ctx.domain_name = parts.headers.get(header::HOST).and_then(|v| v.to_str().ok()).map(str::to_owned);
    ctx.domain_prefix = ctx.domain_name.as_deref().map(|d| d.split(['.', ':']).next().unwrap_or(d).to_owned());
    ctx.time = now
        .format(time::macros::format_description!("[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"))
        .ok();
    ctx.time_epoch = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    ctx.http = http_ctx;
    if let Some(claims) = claims {
        let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt.claims = claims;
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(jwt);
        ctx.authorizer = Some(authorizer);
    }

    let (headers, cookies) = gateway_headers(&parts.headers);
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".into());
    event.route_key = ctx.route_key.clone();
    event.raw_path = Some(parts.uri.path().to_owned());
    event.query_string_parameters = raw_query.parse::<QueryMap>().unwrap_or_default();
    event.raw_query_string = Some(raw_query);
    event.cookies = cookies;
    event.headers = headers;
    event.path_parameters = matched.path_parameters.clone();
    event.request_context = ctx;
    if !body.is_empty() {
        // API Gateway passes text as it is and anything else base64-encoded.
        match String::from_utf8(body) {
            Ok(text) => event.body = Some(text),
            Err(e) => {
                event.body = Some(base64::engine::general_purpose::STANDARD.encode(e.into_bytes()));
                event.is_base64_encoded = true;
            }
        }
    }
    // lambda_http's conversion of a deserialized event: what `lambda_http::run` does with the
    // JSON API Gateway sends.
    LambdaRequest::ApiGatewayV2(event).into()
}

/// Headers as API Gateway forwards them: repeated headers joined with commas, cookies apart.
fn gateway_headers(headers: &HeaderMap) -> (HeaderMap, Option<Vec<String>>) {
    let mut out = HeaderMap::new();
    let mut cookies = Vec::new();
    for name in headers.keys() {
        let values: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
        if name == header::COOKIE {
            cookies.extend(
                values.iter().flat_map(|v| v.split(';')).map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()),
            );
            continue;
        }
        if let Ok(v) = HeaderValue::from_str(&values.join(",")) {
            out.insert(name.clone(), v);
        }
    }
    out.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    (out, (!cookies.is_empty()).then_some(cookies))
}

/// Decodes `%XX` escapes (path parameters arrive decoded). Invalid escapes stay as they are.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).expect("two hex digits fit a byte"));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::DynamoPolicy;
    use store::memory::MemoryTable;

    fn spec(routes: &[(&str, &str)]) -> Template {
        // The real crates, each with exactly its ROUTES, plus what the test adds.
        let mut functions: Vec<FunctionSpec> = registry::FUNCTIONS
            .iter()
            .map(|e| FunctionSpec {
                logical_id: e.package.replace('-', ""),
                code_uri: e.code_uri.to_owned(),
                binary: Some(e.package.to_owned()),
                dynamodb: None,
                routes: e
                    .routes
                    .iter()
                    .map(|k| {
                        let (method, path) = k.split_once(' ').unwrap();
                        RouteSpec { event: k.to_string(), method: method.into(), path: path.into(), jwt: true }
                    })
                    .collect(),
            })
            .collect();
        for (code_uri, key) in routes {
            let (method, path) = key.split_once(' ').unwrap();
            let route = RouteSpec { event: "extra".into(), method: method.into(), path: path.into(), jwt: true };
            match functions.iter_mut().find(|f| f.code_uri == *code_uri) {
                Some(f) => f.routes.push(route),
                None => functions.push(FunctionSpec {
                    logical_id: "Extra".into(),
                    code_uri: code_uri.to_string(),
                    binary: None,
                    dynamodb: None,
                    routes: vec![route],
                }),
            }
        }
        Template { path: "template.yaml".into(), functions, tables: vec![] }
    }

    #[test]
    fn the_registry_matches_itself() {
        let router = Router::<MemoryTable>::from_spec(&spec(&[])).unwrap();
        let all: BTreeSet<String> =
            registry::FUNCTIONS.iter().flat_map(|f| f.routes.iter().map(|r| r.to_string())).collect();
        assert_eq!(router.routes(), all);
    }

    #[test]
    fn mismatches_fail_loudly() {
        let err = |extra: &[(&str, &str)]| match Router::<MemoryTable>::from_spec(&spec(extra)) {
            Err(RouterError::Mismatch(problems)) => problems.join("\n"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted {extra:?}"),
        };
        assert!(err(&[("functions/workspace-api", "GET /workspace/secret")]).contains("not in workspace-api's ROUTES"));
        assert!(err(&[("functions/renew-addons", "POST /renew")]).contains("no handler"));
        assert!(err(&[("functions/partner-api", "GET /workspace")]).contains("declared twice"));
        assert!(err(&[("functions/workspace-api", "GET /_local/clock")]).contains("keeps for its own controls"));
        let mut without_renewal = spec(&[]);
        without_renewal.functions.retain(|f| f.code_uri != registry::RENEW_ADDONS);
        match Router::<MemoryTable>::from_spec(&without_renewal) {
            Err(RouterError::Mismatch(problems)) => assert_eq!(
                problems,
                ["renew-addons runs on a schedule but no function in template.yaml has CodeUri functions/renew-addons"]
            ),
            other => panic!("accepted a template without renew-addons: {:?}", other.map(|r| r.routes())),
        }
    }

    #[test]
    fn renewals_run_with_the_renewal_functions_permissions() {
        let mut t = spec(&[]);
        let f = t.functions.iter_mut().find(|f| f.code_uri == registry::RENEW_ADDONS).unwrap();
        let policy = DynamoPolicy { table: ["GetItem".to_owned()].into(), ..Default::default() };
        f.dynamodb = Some(policy.clone());
        let router = Router::<MemoryTable>::from_spec(&t).unwrap();
        assert!(!router.routes().iter().any(|r| r.contains("renew")), "a scheduled function has no routes");
        let active = router.renewal_policy().unwrap();
        assert_eq!((active.function.as_str(), &active.policy), ("renewaddons", &policy));
    }

    #[test]
    fn routes_resolve_like_api_gateway() {
        let router = Router::<MemoryTable>::from_spec(&spec(&[])).unwrap();
        let key = |m: Method, p: &str| router.resolve(&m, p).map(|r| (r.route.key(), r.path_parameters));
        let (k, params) = key(Method::DELETE, "/partner/workspaces/demo-ws-1/addons/ad_1").unwrap();
        assert_eq!(k, "DELETE /partner/workspaces/{id}/addons/{addon_id}");
        assert_eq!((params["id"].as_str(), params["addon_id"].as_str()), ("demo-ws-1", "ad_1"));
        assert_eq!(key(Method::GET, "/partner/plans").unwrap().0, "GET /partner/plans");
        assert_eq!(key(Method::GET, "/partner/plans/growth").unwrap().0, "GET /partner/plans/{id}");
        assert_eq!(key(Method::GET, "/partner/workspaces/a%20b").unwrap().1["id"], "a b");
        assert!(key(Method::POST, "/partner/plans").is_none(), "wrong method");
        assert!(key(Method::GET, "/partner/plans/growth/x").is_none());
        assert!(key(Method::GET, "/partner/plans/").is_none(), "an empty segment is no parameter");
        assert!(key(Method::GET, "/nowhere").is_none());
    }

    #[test]
    fn literal_segments_win() {
        let mut t = spec(&[]);
        let f = &mut t.functions[0];
        f.routes = vec![
            RouteSpec { event: "a".into(), method: "ANY".into(), path: "/x/{id}".into(), jwt: true },
            RouteSpec { event: "b".into(), method: "GET".into(), path: "/x/{id}".into(), jwt: true },
            RouteSpec { event: "c".into(), method: "GET".into(), path: "/x/me".into(), jwt: true },
            RouteSpec { event: "d".into(), method: "GET".into(), path: "/x/{rest+}".into(), jwt: true },
        ];
        let router = Router::<MemoryTable> {
            routes: f
                .routes
                .iter()
                .map(|s| Route {
                    spec: s.clone(),
                    function: "F".into(),
                    code_uri: f.code_uri.clone(),
                    segments: segments(&s.path),
                    handler: registry::handler(&f.code_uri).unwrap(),
                    policy: None,
                })
                .collect(),
            renewal: None,
            fold: None,
            charging: None,
            sweep: None,
        };
        let key = |m: Method, p: &str| router.resolve(&m, p).unwrap().route.key();
        assert_eq!(key(Method::GET, "/x/me"), "GET /x/me");
        assert_eq!(key(Method::GET, "/x/you"), "GET /x/{id}");
        assert_eq!(key(Method::POST, "/x/you"), "ANY /x/{id}");
        assert_eq!(key(Method::GET, "/x/a/b"), "GET /x/{rest+}");
        assert_eq!(router.resolve(&Method::GET, "/x/a/b").unwrap().path_parameters["rest"], "a/b");
    }

    #[test]
    fn events_carry_what_api_gateway_sets() {
        use lambda_http::RequestExt;
        let router = Router::<MemoryTable>::from_spec(&spec(&[])).unwrap();
        let req = http::Request::builder()
            .method(Method::POST)
            .uri("/partner/workspaces/demo-ws-1/points?x=1&x=2&y=%C3%A9")
            .header(header::HOST, "127.0.0.1:3000")
            .header("idempotency-key", "k1")
            .header(header::COOKIE, "a=1; b=2")
            .body(br#"{"amount":"5"}"#.to_vec())
            .unwrap();
        let matched = router.resolve(req.method(), req.uri().path()).unwrap();
        let claims = Claims::from([("sub".to_owned(), "user-1".to_owned())]);
        let event = gateway_event(&matched, req, Some(claims));
        assert_eq!(api::route_key(&event).as_deref(), Some("POST /partner/workspaces/{id}/points"));
        assert_eq!(api::path_param(&event, "id").unwrap(), "demo-ws-1");
        assert_eq!(event.query_string_parameters_ref().unwrap().all("x"), Some(vec!["1", "2"]));
        assert_eq!(api::query_param(&event, "y").as_deref(), Some("é"));
        assert_eq!(event.raw_http_path(), "/partner/workspaces/demo-ws-1/points");
        assert_eq!(event.uri().path(), "/partner/workspaces/demo-ws-1/points");
        assert_eq!(event.method(), Method::POST);
        assert_eq!(event.headers()["idempotency-key"], "k1");
        assert_eq!(event.body(), &Body::Text(r#"{"amount":"5"}"#.into()));
        assert_eq!(api::Caller::from_request(&event).unwrap().sub, "user-1");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%20c"), "a/b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
