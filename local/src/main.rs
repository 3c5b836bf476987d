//! `cargo run -p local [serve]`: the local runner. `cargo run -p local -- token ...`: a token.
//! `cargo run -p local -- upgrade-table`: brings a deployed table's items to this version.

use std::process::ExitCode;

use api::Role;
use local::jwt::MAX_TTL_S;
use local::{Config, TokenRequest, Verifier};

const USAGE: &str = "\
usage:
  local [serve]      run every HTTP function of template.yaml on 127.0.0.1:$PORT (default 3000)
  local token --role ROLE [--role ROLE...] [--partner ID] [--workspace ID] [--sub SUB] [--ttl-s SECONDS]
                     print a token signed with $LOCAL_JWT_SECRET; roles: partner_admin, workspace_admin,
                     workspace_member, platform_service
  local routes       print the routes template.yaml gives each function, and exit
  local upgrade-table
                     give the items of table $TABLE_NAME what this version reads them by (the
                     workspace-list index's keys), with the AWS credentials and region of the
                     environment; safe to run again, and beside live traffic

environment: PORT, TEMPLATE_PATH, LOCAL_JWT_SECRET, DYNAMODB_ENDPOINT and TABLE_NAME, STRIPE_FAKE_PORT,
             LOCAL_RENEWAL_TICK_S, RUST_LOG";

/// A token's default lifetime: one working day.
const DEFAULT_TTL_S: u64 = 8 * 60 * 60;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None | Some("serve") => serve(),
        Some("token") => token(&args[1..]),
        Some("routes") => routes(),
        Some("upgrade-table") => upgrade_table(),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve() -> Result<(), String> {
    local::init_tracing();
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(local::run(config)).map_err(|e| e.to_string())
}

fn routes() -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let router =
        local::Router::<store::memory::MemoryTable>::from_template(&config.template_path).map_err(|e| e.to_string())?;
    for route in router.iter() {
        let auth = if route.spec.jwt { "jwt" } else { "open" };
        println!("{:<52} {:<26} {auth}", route.key(), route.code_uri);
    }
    Ok(())
}

fn upgrade_table() -> Result<(), String> {
    local::init_tracing();
    let table = std::env::var(local::TABLE_NAME_VAR).map_err(|_| format!("set {}", local::TABLE_NAME_VAR))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let config = runtime::aws_config().await.map_err(|e| e.to_string())?;
        let client =
            store::dynamodb::client(&config, store::dynamodb::ATTEMPT_TIMEOUT, store::dynamodb::OPERATION_TIMEOUT);
        let store = store::Store::new(store::dynamodb::DynamoTable::new(client, table.clone()));
        let done = store.backfill_workspace_list().await.map_err(|e| format!("{table}: {e}"))?;
        println!(
            "{table}: {} partners, {} workspaces, {} items given the workspace-list keys",
            done.partners, done.workspaces, done.items_updated
        );
        Ok(())
    })
}

fn token(args: &[String]) -> Result<(), String> {
    let mut request = TokenRequest { sub: "local-user".into(), ttl_s: DEFAULT_TTL_S, ..TokenRequest::default() };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--partner" => request.partner_id = Some(value()?),
            "--workspace" => request.workspace_id = Some(value()?),
            "--sub" => request.sub = value()?,
            "--role" => request.roles.push(value()?),
            "--ttl-s" => {
                let v = value()?;
                request.ttl_s = v.parse().ok().filter(|t| (1..=MAX_TTL_S).contains(t)).ok_or_else(|| {
                    format!("--ttl-s must be a whole number of seconds from 1 to {MAX_TTL_S}, not {v:?}")
                })?;
            }
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    check_token_request(&request)?;
    // Only the token on stdout, so `TOKEN=$(cargo run -q -p local -- token ...)` works.
    println!("{}", request.mint(&Verifier::new(&local::jwt_secret()), local::server::now_epoch_s()));
    Ok(())
}

/// Refuses a token the handlers could only answer with 401 or 403: unknown roles, a partner
/// admin without a partner, a workspace user without a workspace, malformed ids.
fn check_token_request(r: &TokenRequest) -> Result<(), String> {
    if r.roles.is_empty() {
        return Err(format!("name at least one --role\n{USAGE}"));
    }
    for role in &r.roles {
        if !Role::ALL.iter().any(|known| known.as_str() == role) {
            let known: Vec<_> = Role::ALL.iter().map(|k| k.as_str()).collect();
            return Err(format!("unknown role {role:?}; expected one of {}", known.join(", ")));
        }
    }
    let has = |role: Role| r.roles.iter().any(|x| x == role.as_str());
    if has(Role::PartnerAdmin) && r.partner_id.is_none() {
        return Err("a partner_admin token needs --partner".into());
    }
    if (has(Role::WorkspaceAdmin) || has(Role::WorkspaceMember)) && r.workspace_id.is_none() {
        return Err("a workspace token needs --workspace".into());
    }
    if let Some(p) = &r.partner_id {
        domain::PartnerId::parse(p).map_err(|e| format!("--partner: {e}"))?;
    }
    if let Some(w) = &r.workspace_id {
        domain::WorkspaceId::parse(w).map_err(|e| format!("--workspace: {e}"))?;
    }
    if r.sub.trim().is_empty() {
        return Err("--sub must not be empty".into());
    }
    Ok(())
}
