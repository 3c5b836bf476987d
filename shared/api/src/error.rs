//! One error shape, one mapping to status codes:
//! `{"error": {"type": "...", "message": "...", "param": "..."}}`. Bodies never carry internal
//! error text; that goes to the log.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::json;

use billing::OpError;

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

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Invalid { param, message } => ApiError::invalid(&param, message),
            OpError::NotFound(what) => ApiError::not_found(what),
            OpError::Forbidden(why) => ApiError::forbidden(why),
            OpError::AlreadyExists(what) => {
                ApiError::new(StatusCode::CONFLICT, "already_exists", format!("{what} already exists"))
            }
            OpError::AccessDenied(why) => ApiError::new(StatusCode::FORBIDDEN, why.code(), why.to_string()),
            OpError::InsufficientPoints { balance, required } => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_points",
                format!("this needs {required} points and the balance is {balance}"),
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
            OpError::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "storage is briefly unavailable; retry with the same Idempotency-Key",
            ),
            OpError::StripeUnavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "stripe_unavailable",
                "Stripe is briefly unavailable; nothing was charged, retry with the same Idempotency-Key",
            ),
            OpError::StripeFailed => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "stripe_error",
                "Stripe refused the request; nothing was charged",
            ),
            OpError::RetryLater(why) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "retry_later", why),
            OpError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Balance, Points};

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
            (OpError::KeyReused, 422, "idempotency_key_reused"),
            (OpError::Conflict, 409, "conflict"),
            (OpError::Unavailable, 503, "unavailable"),
            (OpError::StripeUnavailable, 503, "stripe_unavailable"),
            (OpError::StripeFailed, 502, "stripe_error"),
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
