//! Local JWTs: HS256 with a shared secret, checked the way API Gateway's JWT authorizer checks
//! the deployed API's tokens (signature, `exp`, `nbf`, issuer, audience), and turned into the
//! same claims map it hands a function.
//!
//! Deployed, tokens come from a real identity provider (RS256 and a JWKS); locally a shared
//! secret is enough, and it is for local use only.

use std::collections::HashMap;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

/// The secret when `LOCAL_JWT_SECRET` is not set. For a developer's machine only.
pub const DEFAULT_SECRET: &str = "local-dev-secret-change-me";
/// The issuer and audience local tokens carry and the runner expects (the deployed API takes
/// its own from the template's `JwtIssuer` and `JwtAudience` parameters).
pub const LOCAL_ISSUER: &str = "billing-local";
pub const LOCAL_AUDIENCE: &str = "billing-api";
/// Longest token accepted, and the longest lifetime `mint` gives one.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
pub const MAX_TTL_S: u64 = 30 * 24 * 60 * 60;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not three base64url parts")]
    Malformed,
    #[error("the token is not signed with HS256")]
    Algorithm,
    #[error("the signature does not match")]
    Signature,
    #[error("the token has no numeric exp claim")]
    MissingExpiry,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's issuer is not {0}")]
    Issuer(String),
    #[error("the token's audience does not include {0}")]
    Audience(String),
}

/// How tokens are checked: the secret, and what `iss` and `aud` must say.
#[derive(Clone)]
pub struct Verifier {
    secret: Vec<u8>,
    pub issuer: String,
    pub audience: String,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Verifier").field("issuer", &self.issuer).field("audience", &self.audience).finish()
    }
}

impl Verifier {
    pub fn new(secret: &str) -> Self {
        Self { secret: secret.as_bytes().to_vec(), issuer: LOCAL_ISSUER.into(), audience: LOCAL_AUDIENCE.into() }
    }

    /// Checks `token` at `now_epoch_s` and returns its claims as API Gateway passes them on.
    pub fn verify(&self, token: &str, now_epoch_s: u64) -> Result<HashMap<String, String>, JwtError> {
        let payload = verify_hs256(&self.secret, token)?;
        let time = |name: &str| payload.get(name).and_then(Value::as_u64);
        let exp = time("exp").ok_or(JwtError::MissingExpiry)?;
        if now_epoch_s >= exp {
            return Err(JwtError::Expired);
        }
        if time("nbf").is_some_and(|nbf| now_epoch_s < nbf) {
            return Err(JwtError::NotYetValid);
        }
        if payload.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(JwtError::Issuer(self.issuer.clone()));
        }
        let audience_ok = match payload.get("aud") {
            Some(Value::String(a)) => *a == self.audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(self.audience.as_str())),
            _ => false,
        };
        if !audience_ok {
            return Err(JwtError::Audience(self.audience.clone()));
        }
        Ok(gateway_claims(&payload))
    }

    /// Signs `claims` (which should carry `exp`, `iss` and `aud`; see [`TokenRequest`]).
    pub fn sign(&self, claims: &Map<String, Value>) -> String {
        sign_hs256(&self.secret, claims)
    }
}

/// What a local token says about its bearer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRequest {
    pub sub: String,
    pub partner_id: Option<String>,
    pub workspace_id: Option<String>,
    pub roles: Vec<String>,
    pub ttl_s: u64,
}

impl TokenRequest {
    /// The claims of a token issued at `now_epoch_s`: `roles` is a JSON array, as the identity
    /// provider sends it (API Gateway flattens it to `"[a b]"` on the way to the function).
    pub fn claims(&self, verifier: &Verifier, now_epoch_s: u64) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("sub".into(), json!(self.sub));
        claims.insert("iss".into(), json!(verifier.issuer));
        claims.insert("aud".into(), json!(verifier.audience));
        claims.insert("iat".into(), json!(now_epoch_s));
        claims.insert("exp".into(), json!(now_epoch_s.saturating_add(self.ttl_s.min(MAX_TTL_S))));
        if let Some(p) = &self.partner_id {
            claims.insert("partner_id".into(), json!(p));
        }
        if let Some(w) = &self.workspace_id {
            claims.insert("workspace_id".into(), json!(w));
        }
        claims.insert("roles".into(), json!(self.roles));
        claims
    }

    pub fn mint(&self, verifier: &Verifier, now_epoch_s: u64) -> String {
        verifier.sign(&self.claims(verifier, now_epoch_s))
    }
}

fn mac(secret: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length")
}

pub fn sign_hs256(secret: &[u8], claims: &Map<String, Value>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string());
    let signing_input = format!("{header}.{payload}");
    let mut m = mac(secret);
    m.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// Checks the header and signature of `token` and returns its payload. `alg` must be HS256:
/// `none` and every other algorithm are refused, whatever the token claims.
pub fn verify_hs256(secret: &[u8], token: &str) -> Result<Map<String, Value>, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_part), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Malformed);
    let header: Value = serde_json::from_slice(&decode(header_part)?).map_err(|_| JwtError::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(JwtError::Algorithm);
    }
    let mut m = mac(secret);
    m.update(format!("{header_part}.{payload}").as_bytes());
    // Constant-time comparison.
    m.verify_slice(&decode(signature)?).map_err(|_| JwtError::Signature)?;
    match serde_json::from_slice(&decode(payload)?) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => Err(JwtError::Malformed),
    }
}

/// The claims map API Gateway's JWT authorizer gives a function: every claim becomes a string.
/// Strings stay as they are, numbers and booleans are printed, an array becomes `"[a b]"` (its
/// items printed the same way, space-separated) and an object `"map[k:v]"`. Null claims are
/// left out.
pub fn gateway_claims(claims: &Map<String, Value>) -> HashMap<String, String> {
    claims.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), flatten(v))).collect()
}

fn flatten(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => format!("[{}]", items.iter().map(flatten).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut out = String::from("map[");
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{k}:{}", flatten(&m[k]));
            }
            out.push(']');
            out
        }
    }
}

/// The bearer token of an `Authorization` header value (`Bearer <token>`, any case of the
/// scheme). API Gateway also accepts the bare token; so do we.
pub fn bearer(header: &str) -> Option<&str> {
    let header = header.trim();
    if header.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = match header.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => return None,
        None => header,
    };
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn request() -> TokenRequest {
        TokenRequest {
            sub: "user-1".into(),
            partner_id: Some("demo-partner".into()),
            workspace_id: Some("demo-ws-1".into()),
            roles: vec!["workspace_admin".into(), "workspace_member".into()],
            ttl_s: 60,
        }
    }

    #[test]
    fn minted_tokens_verify_into_gateway_claims() {
        let v = Verifier::new("s3cret");
        let claims = v.verify(&request().mint(&v, NOW), NOW + 59).unwrap();
        assert_eq!(claims["sub"], "user-1");
        assert_eq!(claims["partner_id"], "demo-partner");
        assert_eq!(claims["workspace_id"], "demo-ws-1");
        assert_eq!(claims["roles"], "[workspace_admin workspace_member]");
        assert_eq!(claims["exp"], (NOW + 60).to_string());
        assert_eq!(claims["aud"], LOCAL_AUDIENCE);
        // The shared edge reads the flattened form.
        let roles = shared::http::parse_roles(&claims["roles"]);
        assert_eq!(roles, vec![shared::http::Role::WorkspaceAdmin, shared::http::Role::WorkspaceMember]);
    }

    #[test]
    fn bad_tokens_are_refused() {
        let v = Verifier::new("s3cret");
        let token = request().mint(&v, NOW);
        assert_eq!(v.verify(&token, NOW + 60), Err(JwtError::Expired));
        assert_eq!(Verifier::new("other").verify(&token, NOW), Err(JwtError::Signature));
        assert_eq!(v.verify("a.b", NOW), Err(JwtError::Malformed));
        assert_eq!(v.verify("", NOW), Err(JwtError::Malformed));

        // A changed payload with the old signature.
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims = request().claims(&v, NOW);
        claims.insert("partner_id".into(), json!("someone-else"));
        let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string()), parts[2]);
        assert_eq!(v.verify(&forged, NOW), Err(JwtError::Signature));

        // alg "none" with an empty signature.
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#), parts[1]);
        assert_eq!(v.verify(&none, NOW), Err(JwtError::Algorithm));

        // No exp; the wrong issuer; the wrong audience; not before.
        let resign = |edit: &dyn Fn(&mut Map<String, Value>)| {
            let mut c = request().claims(&v, NOW);
            edit(&mut c);
            v.sign(&c)
        };
        assert_eq!(v.verify(&resign(&|c| drop(c.remove("exp"))), NOW), Err(JwtError::MissingExpiry));
        assert!(matches!(
            v.verify(&resign(&|c| drop(c.insert("iss".into(), json!("x")))), NOW),
            Err(JwtError::Issuer(_))
        ));
        assert!(matches!(
            v.verify(&resign(&|c| drop(c.insert("aud".into(), json!(["x", "y"])))), NOW),
            Err(JwtError::Audience(_))
        ));
        let in_list = resign(&|c| drop(c.insert("aud".into(), json!(["x", LOCAL_AUDIENCE]))));
        assert!(v.verify(&in_list, NOW).is_ok());
        assert_eq!(
            v.verify(&resign(&|c| drop(c.insert("nbf".into(), json!(NOW + 10)))), NOW),
            Err(JwtError::NotYetValid)
        );
    }

    #[test]
    fn claims_flatten_like_api_gateway() {
        let claims = json!({
            "s": "x", "n": 42, "b": true, "a": ["p", "q"], "e": [], "o": {"k": "v", "j": 1}, "z": null
        });
        let flat = gateway_claims(claims.as_object().unwrap());
        assert_eq!(flat["s"], "x");
        assert_eq!(flat["n"], "42");
        assert_eq!(flat["b"], "true");
        assert_eq!(flat["a"], "[p q]");
        assert_eq!(flat["e"], "[]");
        assert_eq!(flat["o"], "map[j:1 k:v]");
        assert!(!flat.contains_key("z"));
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer(""), None);
    }
}
