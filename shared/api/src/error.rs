//! One error shape, one mapping to status codes:
//! `{"error": {"type": "...", "message": "...", "param": "..."}}`. Bodies never carry internal
//! error text; that goes to the log.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::json;

use billing::{OpError, error_chain};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    param: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, message: message.into(), param: None }
    }

    pub fn invalid(param: &str, message: impl ToString) -> Self {
        Self {
            param: Some(param.to_owned()),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_request", message.to_string())
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn route_not_found() -> Self {
        Self::not_found("route")
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    pub fn param(&self) -> Option<&str> {
        self.param.as_deref()
    }

    pub fn into_response(self) -> Response<Body> {
        let mut error = json!({ "type": self.kind, "message": self.message });
        if let Some(p) = self.param {
            error["param"] = json!(p);
        }
        super::json_response(self.status, &json!({ "error": error }))
    }
}

/// The answer to a failed operation. A server error (5xx) is logged here, once, with its whole
/// chain of causes; the answer carries none of it. A client error is the client's to read and
/// is not logged as an error.
impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        let api = Self::answering(&e);
        if api.status.is_server_error() {
            tracing::error!(status = api.status.as_u16(), kind = api.kind, error = %error_chain(&e), "request failed");
        }
        api
    }
}

impl ApiError {
    fn answering(e: &OpError) -> Self {
        match e {
            OpError::Invalid { param, message } => ApiError::invalid(param, message),
            OpError::NotFound(what) => ApiError::not_found(what),
            OpError::Forbidden(why) => ApiError::forbidden(*why),
            OpError::AlreadyExists(what) => {
                ApiError::new(StatusCode::CONFLICT, "already_exists", format!("{what} already exists"))
            }
            OpError::AccessDenied(why) => ApiError::new(StatusCode::FORBIDDEN, why.code(), why.to_string()),
            OpError::InsufficientPoints { balance, required } => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_points",
                format!("this needs {required} points and the balance is {balance}"),
            ),
            OpError::PaymentDeclined { code } => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "payment_declined",
                format!("the card on file was declined ({code}); nothing was charged or changed"),
            ),
            // A conflict with what the workspace holds, like an existing id: the request was
            // well formed, and the same one succeeds once an add-on has ended.
            OpError::AddonLimit(limit) => ApiError::new(StatusCode::CONFLICT, "addon_limit", limit.to_string()),
            OpError::KeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request",
            ),
            OpError::Conflict => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "the resource changed while this request ran; nothing was written, retry with the same Idempotency-Key",
            ),
            OpError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "storage is briefly unavailable; retry with the same Idempotency-Key",
            ),
            OpError::StripeUnavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "stripe_unavailable",
                "Stripe is briefly unavailable; nothing was charged, retry with the same Idempotency-Key",
            ),
            OpError::StripeFailed(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "stripe_error",
                "Stripe refused the request; nothing was charged",
            ),
            OpError::RetryLater(why) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "retry_later", *why),
            OpError::Storage(_) | OpError::Internal(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use store::{SdkCause, StoreError, TableError};
    use stripe_gateway::gateway::GatewayError;

    use super::*;
    use domain::{Balance, Points};

    fn unavailable() -> OpError {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer");
        let table = TableError::Ambiguous { what: "no answer".into(), source: Some(SdkCause::new(reset)) };
        OpError::Unavailable(StoreError::Unavailable(table))
    }

    /// Where the test's subscriber writes its lines.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The JSON log lines `f` writes, under a subscriber of this thread only (no process-wide
    /// one, so this runs with the other tests).
    fn logged(f: impl FnOnce()) -> Vec<Value> {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt().json().with_writer(move || writer.clone()).finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    fn answer(e: OpError) -> (Vec<Value>, u16, String) {
        let mut response = None;
        let lines = logged(|| response = Some(ApiError::from(e).into_response()));
        let response = response.unwrap();
        let Body::Text(body) = response.body() else { panic!("{:?}", response.body()) };
        (lines, response.status().as_u16(), body.clone())
    }

    #[test]
    fn a_server_error_logs_one_line_with_its_chain_and_answers_as_before() {
        let (lines, status, body) = answer(unavailable());
        assert_eq!(status, 503);
        assert_eq!(
            body,
            r#"{"error":{"message":"storage is briefly unavailable; retry with the same Idempotency-Key","type":"unavailable"}}"#
        );
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["level"], "ERROR");
        assert_eq!(lines[0]["fields"]["status"], 503);
        assert_eq!(
            lines[0]["fields"]["error"],
            "storage temporarily unavailable; retry: storage unavailable: ambiguous: no answer: connection reset by peer"
        );

        let refused = GatewayError::Fatal("No such customer: 'cus_1'".into());
        let (lines, status, body) = answer(OpError::StripeFailed(refused));
        assert_eq!(status, 502);
        assert_eq!(
            body,
            r#"{"error":{"message":"Stripe refused the request; nothing was charged","type":"stripe_error"}}"#
        );
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(
            lines[0]["fields"]["error"],
            "Stripe refused the request: Stripe call failed: No such customer: 'cus_1'"
        );

        let (lines, status, body) = answer(OpError::Storage(StoreError::Corrupt("wallet w: entry 2".into())));
        assert_eq!(status, 500);
        assert_eq!(body, r#"{"error":{"message":"internal error","type":"internal"}}"#);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["fields"]["error"], "storage failed: corrupt data: wallet w: entry 2");
    }

    #[test]
    fn a_client_error_is_not_logged() {
        let (lines, status, body) = answer(OpError::NotFound("workspace"));
        assert_eq!(status, 404);
        assert_eq!(body, r#"{"error":{"message":"workspace not found","type":"not_found"}}"#);
        assert_eq!(lines, Vec::<Value>::new());
    }

    #[test]
    fn statuses() {
        let cases = [
            (OpError::invalid("x", "bad"), 400, "invalid_request"),
            (OpError::NotFound("workspace"), 404, "not_found"),
            (OpError::Forbidden("no"), 403, "forbidden"),
            (OpError::AccessDenied(domain::AccessDenied::WalletDepleted), 403, "wallet_depleted"),
            (OpError::AccessDenied(domain::AccessDenied::PartnerWalletDepleted), 403, "partner_wallet_depleted"),
            (OpError::AccessDenied(domain::AccessDenied::Paused), 403, "paused"),
            (OpError::AccessDenied(domain::AccessDenied::PartnerSuspended), 403, "partner_suspended"),
            (OpError::AlreadyExists("workspace"), 409, "already_exists"),
            (
                OpError::InsufficientPoints { balance: Balance::ZERO, required: Points::ZERO },
                402,
                "insufficient_points",
            ),
            (OpError::AddonLimit(domain::AddonLimitReached { max: 90 }), 409, "addon_limit"),
            (OpError::PaymentDeclined { code: "card_declined".into() }, 402, "payment_declined"),
            (OpError::KeyReused, 422, "idempotency_key_reused"),
            (OpError::Conflict, 409, "conflict"),
            (unavailable(), 503, "unavailable"),
            (OpError::StripeUnavailable(GatewayError::RateLimited), 503, "stripe_unavailable"),
            (OpError::StripeFailed(GatewayError::Fatal("secret detail".into())), 502, "stripe_error"),
            (OpError::Storage(StoreError::Corrupt("secret detail".into())), 500, "internal"),
            (OpError::RetryLater("not yet"), 503, "retry_later"),
            (OpError::Internal("secret detail".into()), 500, "internal"),
        ];
        for (e, status, kind) in cases {
            let api = ApiError::from(e);
            assert_eq!((api.status().as_u16(), api.kind()), (status, kind));
            assert!(!api.message.contains("secret"));
        }
    }
}
