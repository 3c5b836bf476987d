//! Local JWTs: HS256 with a shared secret, signed and checked by the `jsonwebtoken` crate the
//! way API Gateway's JWT authorizer checks the deployed API's tokens (signature and algorithm,
//! `exp`, `nbf`, issuer, audience), and turned into the same claims map it hands a function.
//!
//! Deployed, tokens come from a real identity provider (RS256 and a JWKS); locally a shared
//! secret is enough, and it is for local use only.

use std::collections::HashMap;
use std::fmt::Write as _;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value, json};

/// The secret when `LOCAL_JWT_SECRET` is not set. For a developer's machine only.
pub const DEFAULT_SECRET: &str = "local-dev-secret-change-me";
/// The issuer and audience local tokens carry and the runner expects (the deployed API takes
/// its own from the template's `JwtIssuer` and `JwtAudience` parameters).
pub const LOCAL_ISSUER: &str = "billing-local";
pub const LOCAL_AUDIENCE: &str = "billing-api";
/// Longest token accepted, and the longest lifetime `mint` gives one.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
pub const MAX_TTL_S: u64 = 30 * 24 * 60 * 60;
/// The one algorithm local tokens are signed with and the only one accepted.
const ALGORITHM: Algorithm = Algorithm::HS256;
/// Claims that hold a time, in whole seconds since the epoch.
const TIME_CLAIMS: [&str; 3] = ["exp", "nbf", "iat"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token is not signed with HS256")]
    Algorithm,
    #[error("the signature does not match")]
    Signature,
    #[error("the token has no {0} claim")]
    Missing(String),
    #[error("the token's {0} claim is not a whole number of seconds")]
    NotWholeSeconds(&'static str),
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
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
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
    /// `secret` is never empty (`LOCAL_JWT_SECRET` unset or blank means the default): an empty
    /// one is a bug, and the crate refuses it.
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(ALGORITHM);
        validation.set_issuer(&[LOCAL_ISSUER]);
        validation.set_audience(&[LOCAL_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // Checked to the second, as the runner always did: no grace period.
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()).expect("a non-empty secret"),
            decoding: DecodingKey::from_secret(secret.as_bytes()).expect("a non-empty secret"),
            validation,
            issuer: LOCAL_ISSUER.into(),
            audience: LOCAL_AUDIENCE.into(),
        }
    }

    /// Checks `token` now (the signature and its algorithm, `exp`, `nbf`, `iss`, `aud`) and
    /// returns its claims as API Gateway passes them on.
    pub fn verify(&self, token: &str) -> Result<HashMap<String, String>, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::Malformed);
        }
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.decoding, &self.validation)
            .map_err(|e| self.refusal(e.kind()))?;
        // The crate reads a fractional NumericDate and rounds it. Our tokens and API Gateway's
        // use whole seconds, so a time the runner might read otherwise than the deployed API
        // is refused instead.
        if let Some(name) = TIME_CLAIMS.into_iter().find(|n| data.claims.get(*n).is_some_and(|v| v.as_u64().is_none()))
        {
            return Err(JwtError::NotWholeSeconds(name));
        }
        Ok(gateway_claims(&data.claims))
    }

    fn refusal(&self, kind: &ErrorKind) -> JwtError {
        match kind {
            ErrorKind::InvalidSignature => JwtError::Signature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => JwtError::Algorithm,
            ErrorKind::ExpiredSignature => JwtError::Expired,
            ErrorKind::ImmatureSignature => JwtError::NotYetValid,
            ErrorKind::InvalidIssuer => JwtError::Issuer(self.issuer.clone()),
            ErrorKind::InvalidAudience => JwtError::Audience(self.audience.clone()),
            ErrorKind::MissingRequiredClaim(name) => JwtError::Missing(name.clone()),
            ErrorKind::InvalidClaimFormat(name) if name == "nbf" => JwtError::NotWholeSeconds("nbf"),
            ErrorKind::InvalidClaimFormat(name) if name == "exp" => JwtError::NotWholeSeconds("exp"),
            _ => JwtError::Malformed,
        }
    }

    /// Signs `claims` with HS256 (they should carry `exp`, `iss` and `aud`; see [`TokenRequest`]).
    pub fn sign(&self, claims: &Map<String, Value>) -> String {
        jsonwebtoken::encode(&Header::new(ALGORITHM), claims, &self.encoding).expect("a JSON object signs with HS256")
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

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn now() -> u64 {
        crate::server::now_epoch_s()
    }

    fn request() -> TokenRequest {
        TokenRequest {
            sub: "user-1".into(),
            partner_id: Some("demo-partner".into()),
            workspace_id: Some("demo-ws-1".into()),
            roles: vec!["workspace_admin".into(), "workspace_member".into()],
            ttl_s: 600,
        }
    }

    /// A token of `request()` issued now, with `edit` applied to its claims, signed by `v`.
    fn resign(v: &Verifier, edit: impl Fn(&mut Map<String, Value>)) -> String {
        let mut c = request().claims(v, now());
        edit(&mut c);
        v.sign(&c)
    }

    /// `header` and `claims` signed with HMAC-SHA256 under `secret`, whatever the header says.
    fn forge(header: &str, claims: &Map<String, Value>, secret: &str) -> String {
        let head = URL_SAFE_NO_PAD.encode(header);
        let body = URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string());
        let key = EncodingKey::from_secret(secret.as_bytes()).unwrap();
        let signature = jsonwebtoken::crypto::sign(format!("{head}.{body}").as_bytes(), &key, Algorithm::HS256);
        format!("{head}.{body}.{}", signature.unwrap())
    }

    #[test]
    fn minted_tokens_verify_into_gateway_claims() {
        let v = Verifier::new("s3cret");
        let issued = now();
        let claims = v.verify(&request().mint(&v, issued)).unwrap();
        assert_eq!(claims["sub"], "user-1");
        assert_eq!(claims["partner_id"], "demo-partner");
        assert_eq!(claims["workspace_id"], "demo-ws-1");
        assert_eq!(claims["roles"], "[workspace_admin workspace_member]");
        assert_eq!(claims["exp"], (issued + 600).to_string());
        assert_eq!(claims["iat"], issued.to_string());
        assert_eq!(claims["iss"], LOCAL_ISSUER);
        assert_eq!(claims["aud"], LOCAL_AUDIENCE);
        // The shared edge reads the flattened form.
        let roles = api::parse_roles(&claims["roles"]);
        assert_eq!(roles, vec![api::Role::WorkspaceAdmin, api::Role::WorkspaceMember]);
        // A header the crate writes: HS256, typed JWT.
        let header = jsonwebtoken::decode_header(request().mint(&v, issued)).unwrap();
        assert_eq!((header.alg, header.typ.as_deref()), (Algorithm::HS256, Some("JWT")));
    }

    #[test]
    fn times_are_checked_to_the_second() {
        let v = Verifier::new("s3cret");
        let t = now();
        assert_eq!(v.verify(&request().mint(&v, t - 700)), Err(JwtError::Expired), "expired 100 s ago");
        assert_eq!(v.verify(&resign(&v, |c| drop(c.insert("exp".into(), json!(t - 2))))), Err(JwtError::Expired));
        assert_eq!(v.verify(&resign(&v, |c| drop(c.remove("exp")))), Err(JwtError::Missing("exp".into())));
        let later = resign(&v, |c| drop(c.insert("nbf".into(), json!(t + 3600))));
        assert_eq!(v.verify(&later), Err(JwtError::NotYetValid));
        assert!(v.verify(&resign(&v, |c| drop(c.insert("nbf".into(), json!(t - 10))))).is_ok());
        // A time that is not a whole number of seconds is refused, wherever it points.
        let with = |name: &str, text: String| {
            resign(&v, |c| drop(c.insert(name.into(), serde_json::from_str(&text).expect("JSON"))))
        };
        assert_eq!(v.verify(&with("nbf", "1.5".into())), Err(JwtError::NotWholeSeconds("nbf")));
        assert_eq!(v.verify(&with("nbf", format!("{}.5", t - 10))), Err(JwtError::NotWholeSeconds("nbf")));
        assert_eq!(v.verify(&with("nbf", format!("\"{}\"", t - 10))), Err(JwtError::NotWholeSeconds("nbf")));
        assert_eq!(v.verify(&with("nbf", format!("{}.5", t + 3600))), Err(JwtError::NotYetValid));
        assert_eq!(v.verify(&with("nbf", "-1".into())), Err(JwtError::NotWholeSeconds("nbf")));
        assert_eq!(v.verify(&with("exp", format!("{}.5", t + 600))), Err(JwtError::NotWholeSeconds("exp")));
        assert_eq!(v.verify(&with("exp", format!("\"{}\"", t + 600))), Err(JwtError::Missing("exp".into())));
        assert_eq!(v.verify(&with("iat", format!("{}.5", t))), Err(JwtError::NotWholeSeconds("iat")));
    }

    #[test]
    fn bad_tokens_are_refused() {
        let v = Verifier::new("s3cret");
        let token = request().mint(&v, now());
        assert_eq!(Verifier::new("other").verify(&token), Err(JwtError::Signature));
        assert_eq!(v.verify("a.b"), Err(JwtError::Malformed));
        assert_eq!(v.verify(""), Err(JwtError::Malformed));
        assert_eq!(v.verify(&"a".repeat(MAX_TOKEN_LEN + 1)), Err(JwtError::Malformed));

        // A changed payload with the old signature.
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims = request().claims(&v, now());
        claims.insert("partner_id".into(), json!("someone-else"));
        let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string()), parts[2]);
        assert_eq!(v.verify(&forged), Err(JwtError::Signature));

        // alg "none" with an empty signature: the crate knows no such algorithm, so the header
        // itself is refused.
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#), parts[1]);
        assert_eq!(v.verify(&none), Err(JwtError::Malformed));
        // Another algorithm the crate knows, even with a valid HMAC under our secret.
        let claims = request().claims(&v, now());
        assert_eq!(v.verify(&forge(r#"{"alg":"HS384","typ":"JWT"}"#, &claims, "s3cret")), Err(JwtError::Algorithm));
        assert!(v.verify(&forge(r#"{"alg":"HS256","typ":"JWT"}"#, &claims, "s3cret")).is_ok(), "the forge is sound");

        // The wrong issuer or audience; none at all.
        assert_eq!(
            v.verify(&resign(&v, |c| drop(c.insert("iss".into(), json!("x"))))),
            Err(JwtError::Issuer(LOCAL_ISSUER.into()))
        );
        assert_eq!(v.verify(&resign(&v, |c| drop(c.remove("iss")))), Err(JwtError::Missing("iss".into())));
        assert_eq!(
            v.verify(&resign(&v, |c| drop(c.insert("aud".into(), json!(["x", "y"]))))),
            Err(JwtError::Audience(LOCAL_AUDIENCE.into()))
        );
        assert_eq!(
            v.verify(&resign(&v, |c| drop(c.insert("aud".into(), json!("billing-api-other"))))),
            Err(JwtError::Audience(LOCAL_AUDIENCE.into()))
        );
        assert_eq!(v.verify(&resign(&v, |c| drop(c.remove("aud")))), Err(JwtError::Missing("aud".into())));
        let in_list = resign(&v, |c| drop(c.insert("aud".into(), json!(["x", LOCAL_AUDIENCE]))));
        assert!(v.verify(&in_list).is_ok());
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
