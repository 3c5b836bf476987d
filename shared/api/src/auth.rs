//! The caller, from the claims API Gateway's JWT authorizer verified: `sub`, `partner_id`,
//! `workspace_id`, `roles`. A handler asks for the role its route needs and gets the tenant
//! it may act on; anything else is a 401 or 403.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use domain::{Actor, PartnerId, WorkspaceId};

use super::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    PartnerAdmin,
    WorkspaceAdmin,
    WorkspaceMember,
    PlatformService,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::PartnerAdmin, Role::WorkspaceAdmin, Role::WorkspaceMember, Role::PlatformService];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::PartnerAdmin => "partner_admin",
            Role::WorkspaceAdmin => "workspace_admin",
            Role::WorkspaceMember => "workspace_member",
            Role::PlatformService => "platform_service",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Reads the `roles` claim. The identity provider puts a JSON array of exact role names in the
/// token (`"roles": ["partner_admin"]`); API Gateway's JWT authorizer hands the function an array
/// claim flattened to `[partner_admin workspace_member]`. Accepted, exactly:
/// - a JSON array of strings, each one role name;
/// - `[`, names separated by single spaces, `]` (the flattened array; `[]` is no role);
/// - a plain string equal to one role name.
///
/// Anything else (commas, spaces outside brackets, quotes, doubled or trailing separators) is one
/// unknown role, that is no role: `"workspace_member,partner_admin"` never becomes two. Other
/// well-formed names in a list (the identity provider's own roles) are ignored.
pub fn parse_roles(claim: &str) -> Vec<Role> {
    if let Ok(list) = serde_json::from_str::<Vec<String>>(claim) {
        return list.iter().filter_map(|r| Role::parse(r)).collect();
    }
    match claim.strip_prefix('[').and_then(|c| c.strip_suffix(']')) {
        Some("") => vec![],
        Some(names) => {
            let names: Vec<&str> = names.split(' ').collect();
            if names.iter().any(|n| n.is_empty() || n.contains(is_separator)) {
                return vec![];
            }
            names.into_iter().filter_map(Role::parse).collect()
        }
        None => Role::parse(claim).into_iter().collect(),
    }
}

/// What separates or quotes names in the shapes we refuse: inside a flattened list, a name that
/// holds one makes the whole claim malformed.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | ';' | '"' | '\'' | '[' | ']')
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub sub: String,
    pub partner: Option<PartnerId>,
    pub workspace: Option<WorkspaceId>,
    pub roles: Vec<Role>,
}

impl Caller {
    /// The caller of `req`; 401 without verified claims (API Gateway lets no such request
    /// through, so this is a misconfiguration guard, not a path users take).
    pub fn from_request(req: &Request) -> Result<Caller, ApiError> {
        let claims = match req.request_context_ref() {
            Some(ctx @ RequestContext::ApiGatewayV2(_)) => {
                ctx.authorizer().and_then(|a| a.jwt.as_ref()).map(|j| &j.claims)
            }
            _ => None,
        }
        .ok_or_else(ApiError::unauthorized)?;
        let sub = claims.get("sub").filter(|s| !s.is_empty()).ok_or_else(ApiError::unauthorized)?.clone();
        // A malformed tenant id in a verified token is the issuer's bug: refuse, don't guess.
        let partner =
            claims.get("partner_id").map(|p| PartnerId::parse(p)).transpose().map_err(|_| ApiError::unauthorized())?;
        let workspace = claims
            .get("workspace_id")
            .map(|w| WorkspaceId::parse(w))
            .transpose()
            .map_err(|_| ApiError::unauthorized())?;
        let roles = claims.get("roles").map(|r| parse_roles(r)).unwrap_or_default();
        Ok(Caller { sub, partner, workspace, roles })
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn actor(&self) -> Actor {
        Actor::User(self.sub.clone())
    }

    /// A partner admin, and the partner it administers.
    pub fn partner_admin(&self) -> Result<&PartnerId, ApiError> {
        match (&self.partner, self.has(Role::PartnerAdmin)) {
            (Some(p), true) => Ok(p),
            _ => Err(ApiError::forbidden("this route is for partner admins")),
        }
    }

    /// Anyone of a workspace (admin or member): reads.
    pub fn workspace_reader(&self) -> Result<&WorkspaceId, ApiError> {
        match (&self.workspace, self.has(Role::WorkspaceAdmin) || self.has(Role::WorkspaceMember)) {
            (Some(w), true) => Ok(w),
            _ => Err(ApiError::forbidden("this route is for workspace users")),
        }
    }

    /// Who may pay for a workspace (top up, auto top-up, buy or cancel add-ons, save a card):
    /// its admin, or a member whose partner granted it billing access (the operation checks the
    /// grant in its read). Anyone else is refused here.
    pub fn workspace_payer(&self) -> Result<(&WorkspaceId, billing::Asker<'_>), ApiError> {
        match &self.workspace {
            Some(w) if self.has(Role::WorkspaceAdmin) => Ok((w, billing::Asker::Workspace(self.partner.as_ref()))),
            Some(w) if self.has(Role::WorkspaceMember) => {
                Ok((w, billing::Asker::Member { partner: self.partner.as_ref(), sub: &self.sub }))
            }
            _ => Err(ApiError::forbidden("this route is for workspace users")),
        }
    }

    /// A workspace admin: changes. A member may read, not change.
    pub fn workspace_admin(&self) -> Result<&WorkspaceId, ApiError> {
        match (&self.workspace, self.has(Role::WorkspaceAdmin)) {
            (Some(w), true) => Ok(w),
            _ => Err(ApiError::forbidden("this route is for workspace admins")),
        }
    }

    pub fn platform_service(&self) -> Result<(), ApiError> {
        if self.has(Role::PlatformService) {
            Ok(())
        } else {
            Err(ApiError::forbidden("this route is for the platform"))
        }
    }
}

/// Idempotency scopes: a key belongs to one tenant and never collides with another's.
pub fn partner_scope(p: &PartnerId) -> String {
    format!("partner:{p}")
}

pub fn workspace_scope(w: &WorkspaceId) -> String {
    format!("ws:{w}")
}

pub const PLATFORM_SCOPE: &str = "platform";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_in_both_forms() {
        let both = vec![Role::PartnerAdmin, Role::WorkspaceMember];
        assert_eq!(parse_roles(r#"["partner_admin","workspace_member"]"#), both);
        assert_eq!(parse_roles(r#"[ "partner_admin", "workspace_member" ]"#), both);
        assert_eq!(parse_roles("[partner_admin workspace_member]"), both);
        assert_eq!(parse_roles("[partner_admin something_else workspace_member]"), both);
        assert_eq!(parse_roles("platform_service"), vec![Role::PlatformService]);
        assert_eq!(parse_roles("[platform_service]"), vec![Role::PlatformService]);
        assert_eq!(parse_roles("[]"), vec![]);
        assert_eq!(parse_roles(r#"[]"#), vec![]);
    }

    #[test]
    fn a_string_with_separators_is_one_unknown_role() {
        let none: Vec<Role> = vec![];
        // The two shapes that used to become two roles each.
        assert_eq!(parse_roles("workspace_member,partner_admin"), none);
        assert_eq!(parse_roles("viewer platform_service"), none);
        for claim in [
            "partner_admin workspace_member",
            "[partner_admin, workspace_member]",
            "[partner_admin,workspace_member]",
            "[partner_admin  workspace_member]",
            "[partner_admin workspace_member ]",
            "[ partner_admin]",
            "[partner_admin\tworkspace_member]",
            " [partner_admin]",
            "[partner_admin] ",
            " partner_admin",
            "partner_admin ",
            "partner_admin;platform_service",
            r#""partner_admin""#,
            r#"["partner_admin"]"#.trim_end_matches(']'),
            "[\"partner_admin\"]x",
            r#"["partner_admin platform_service"]"#,
            r#"["partner_admin,platform_service"]"#,
            "[partner_admin",
            "partner_admin]",
            "",
            "Partner_Admin",
        ] {
            assert_eq!(parse_roles(claim), none, "{claim:?}");
        }
    }
}
