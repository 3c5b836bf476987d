//! The screens, served as they are deployed: the files of `web/` (plain JavaScript modules, no
//! build step) at the same paths CloudFront serves them from (`/console/`, `/billing/`,
//! `/shared/`), beside the API, so the pages call it on their own origin. Plus the runner's own
//! sign-in page (`/_local/sign-in`) and the token it mints (`POST /_local/token`): local tools,
//! like the clock control, that no deployment has.
//!
//! The billing page may be framed only by the sites its partner lists (`brand.embed_origins`
//! in its settings): the runner answers `/billing/?partner=ID` with a Content-Security-Policy
//! whose `frame-ancestors` are that partner's; the console may not be framed at all.

use std::path::{Path, PathBuf};

use billing::Billing;
use domain::PartnerId;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde_json::json;
use store::Table;

use crate::jwt::{TokenRequest, Verifier};
use crate::seed;

/// The runner's sign-in page and token control (under `/_local`, never a template route).
pub const SIGN_IN_PATH: &str = "/_local/sign-in";
pub const TOKEN_PATH: &str = "/_local/token";
/// Where `web/` is read from, if not the repository's.
pub const WEB_ROOT_VAR: &str = "WEB_ROOT";
/// The folders of `web/` served, each at its own path.
const SERVED: [&str; 3] = ["console", "billing", "shared"];
/// A local token lasts a working day, as `local token` mints it.
const TOKEN_TTL_S: u64 = 8 * 60 * 60;

const SIGN_IN_PAGE: &str = include_str!("sign_in.html");
const SIGN_IN_SCRIPT: &str = include_str!("sign_in.js");
pub const SIGN_IN_SCRIPT_PATH: &str = "/_local/sign-in.js";
const EMBED_PAGE: &str = include_str!("embed.html");
const EMBED_SCRIPT: &str = include_str!("embed.js");
/// A stand-in for a partner's own app that embeds the billing page (and its script).
pub const EMBED_PATH: &str = "/_local/embed";
pub const EMBED_SCRIPT_PATH: &str = "/_local/embed.js";

/// A demo user the sign-in page offers: who, with which role, on what, and where they land.
pub struct DemoUser {
    pub sub: &'static str,
    pub role: &'static str,
    pub workspace: Option<&'static str>,
    pub lands_on: &'static str,
}

/// The demo users: the partner's admin, an admin and a member of the demo workspaces, and the
/// platform (whose usage reports pause and resume workspaces; the sign-in page's local tools).
pub const DEMO_USERS: [DemoUser; 5] = [
    DemoUser { sub: "alice", role: "partner_admin", workspace: None, lands_on: "/console/" },
    DemoUser { sub: "bob", role: "workspace_admin", workspace: Some("demo-ws-1"), lands_on: "/billing/" },
    DemoUser { sub: "carol", role: "workspace_admin", workspace: Some("demo-ws-2"), lands_on: "/billing/" },
    DemoUser { sub: "erin", role: "workspace_member", workspace: Some("demo-ws-1"), lands_on: "/billing/" },
    DemoUser { sub: "platform", role: "platform_service", workspace: None, lands_on: "/_local/sign-in" },
];

/// `web/` of the repository, or `WEB_ROOT`.
pub fn web_root() -> PathBuf {
    std::env::var_os(WEB_ROOT_VAR)
        .filter(|v| !v.is_empty())
        .map_or_else(|| crate::template::repo_root().join("web"), PathBuf::from)
}

/// The file of `web/` a GET of `path` names, if it is one of the served folders' and a plain
/// relative path (letters, digits, `-`, `_`, `.`; no `..`); a folder is its `index.html`.
pub fn file_of(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = path.strip_prefix('/')?;
    let folder = rel.split('/').next()?;
    if !SERVED.contains(&folder) {
        return None;
    }
    let plain = |s: &str| {
        !s.is_empty() && !s.starts_with('.') && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    let parts: Vec<&str> = rel.split('/').collect();
    let (last, dirs) = parts.split_last()?;
    if !dirs.iter().all(|d| plain(d)) {
        return None;
    }
    let mut file = root.to_path_buf();
    file.extend(dirs);
    match *last {
        "" => Some(file.join("index.html")),
        name if plain(name) => Some(file.join(name)),
        _ => None,
    }
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// The policy every page is served with: its own scripts, styles and API only; images also
/// from https (a partner's logo); framed by `ancestors`.
fn csp(ancestors: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; \
         connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors {ancestors}"
    )
}

/// The `frame-ancestors` of the billing page of partner `p`: the page's own origin and the
/// partner's `embed_origins` (each checked when saved); only its own without a partner.
async fn billing_ancestors<T: Table>(billing: &Billing<T>, query: Option<&str>) -> String {
    let partner = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("partner="))
        .and_then(|p| PartnerId::parse(p).ok());
    let origins = match partner {
        Some(p) => billing.partner_settings(&p).await.map(|s| s.brand.embed_origins).unwrap_or_default(),
        None => vec![],
    };
    std::iter::once("'self'".to_owned()).chain(origins).collect::<Vec<_>>().join(" ")
}

/// Answers a GET of a page or file of `web/`, or `None` when `path` is not one.
pub async fn serve_static<T: Table>(
    billing: &Billing<T>,
    root: &Path,
    path: &str,
    query: Option<&str>,
) -> Option<Response<Full<Bytes>>> {
    if let Some(folder @ ("/console" | "/billing")) = Some(path) {
        let location = format!("{folder}/{}", query.map(|q| format!("?{q}")).unwrap_or_default());
        let mut redirect = Response::new(Full::new(Bytes::new()));
        *redirect.status_mut() = StatusCode::MOVED_PERMANENTLY;
        redirect.headers_mut().insert(header::LOCATION, HeaderValue::from_str(&location).ok()?);
        return Some(redirect);
    }
    let file = file_of(root, path)?;
    let Ok(bytes) = tokio::fs::read(&file).await else {
        return Some(not_found());
    };
    let ancestors =
        if path.starts_with("/billing/") { billing_ancestors(billing, query).await } else { "'none'".into() };
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(&file)));
    // Read from disk on every request: an edit shows on the next reload.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(policy) = HeaderValue::from_str(&csp(&ancestors)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    Some(response)
}

fn not_found() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"not found")));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// The runner's own pages: the sign-in page (pick a demo user, get a token, go to their
/// screen) and the embedding demo (a host page framing the billing page), and their scripts.
pub fn local_page(path: &str) -> Option<Response<Full<Bytes>>> {
    let (body, kind) = match path {
        "/" | SIGN_IN_PATH => (SIGN_IN_PAGE, "text/html; charset=utf-8"),
        SIGN_IN_SCRIPT_PATH => (SIGN_IN_SCRIPT, "text/javascript; charset=utf-8"),
        EMBED_PATH => (EMBED_PAGE, "text/html; charset=utf-8"),
        EMBED_SCRIPT_PATH => (EMBED_SCRIPT, "text/javascript; charset=utf-8"),
        _ => return None,
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(policy) = HeaderValue::from_str(&csp("'none'")) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    Some(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenAsk {
    user: String,
}

/// `POST /_local/token` with `{"user": "alice"}`: a token for that demo user, and the page it
/// lands on (the billing page names its partner, for its `frame-ancestors`).
pub fn token(verifier: &Verifier, now_epoch_s: u64, body: &[u8]) -> (StatusCode, serde_json::Value) {
    let ask: TokenAsk = match serde_json::from_slice(body) {
        Ok(ask) => ask,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                json!({ "error": { "type": "invalid_request", "message": e.to_string() } }),
            );
        }
    };
    let Some(user) = DEMO_USERS.iter().find(|u| u.sub == ask.user) else {
        let known: Vec<&str> = DEMO_USERS.iter().map(|u| u.sub).collect();
        let message = format!("no demo user {:?}; the demo users are {}", ask.user, known.join(", "));
        return (
            StatusCode::BAD_REQUEST,
            json!({ "error": { "type": "invalid_request", "param": "user", "message": message } }),
        );
    };
    let platform = user.role == "platform_service";
    let request = TokenRequest {
        sub: user.sub.to_owned(),
        partner_id: (!platform).then(|| seed::DEMO_PARTNER.to_owned()),
        workspace_id: user.workspace.map(str::to_owned),
        roles: vec![user.role.to_owned()],
        ttl_s: TOKEN_TTL_S,
    };
    let lands_on = match user.workspace {
        Some(_) => format!("{}?partner={}", user.lands_on, seed::DEMO_PARTNER),
        None => user.lands_on.to_owned(),
    };
    (StatusCode::OK, json!({ "token": request.mint(verifier, now_epoch_s), "lands_on": lands_on, "role": user.role }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_of_the_served_folders() {
        let root = Path::new("/w");
        assert_eq!(file_of(root, "/console/"), Some(PathBuf::from("/w/console/index.html")));
        assert_eq!(file_of(root, "/billing/billing.js"), Some(PathBuf::from("/w/billing/billing.js")));
        assert_eq!(file_of(root, "/shared/api.js"), Some(PathBuf::from("/w/shared/api.js")));
        for refused in ["/", "/types/api.d.ts", "/console/../../etc/passwd", "/shared/.hidden", "/shared//x.js", "/x"] {
            assert_eq!(file_of(root, refused), None, "{refused}");
        }
    }

    #[test]
    fn a_demo_users_token_names_its_workspace_and_role() {
        let verifier = Verifier::new("s");
        let now = crate::server::now_epoch_s();
        let (status, answer) = token(&verifier, now, br#"{"user": "bob"}"#);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["lands_on"], "/billing/?partner=demo-partner");
        let claims = verifier.verify(answer["token"].as_str().unwrap()).unwrap();
        assert_eq!(
            (claims["sub"].as_str(), claims["workspace_id"].as_str(), claims["partner_id"].as_str()),
            ("bob", "demo-ws-1", "demo-partner")
        );
        assert_eq!(claims["roles"], "[workspace_admin]");
        let (_, alice) = token(&verifier, now, br#"{"user": "alice"}"#);
        assert_eq!(alice["lands_on"], "/console/");
        let (_, platform) = token(&verifier, now, br#"{"user": "platform"}"#);
        let claims = verifier.verify(platform["token"].as_str().unwrap()).unwrap();
        assert_eq!((claims.get("partner_id"), claims["roles"].as_str()), (None, "[platform_service]"));
        let (status, answer) = token(&verifier, now, br#"{"user": "mallory"}"#);
        assert_eq!((status, answer["error"]["param"].as_str()), (StatusCode::BAD_REQUEST, Some("user")));
    }
}
