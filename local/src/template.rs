//! Reads what the runner (and the route-set test) need from the deployment's files:
//! template.yaml's functions, their `HttpApi` routes and the table; openapi.yaml's operations.
//!
//! CloudFormation's short-form intrinsics (`!Ref`, `!GetAtt`, `!Sub`) arrive as tagged YAML
//! values; they are read through where a literal is expected, so `Path: !Sub ...` is refused
//! rather than guessed at.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

use crate::policy::DynamoPolicy;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid YAML: {source}")]
    Yaml { path: PathBuf, source: serde_yaml_ng::Error },
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> SpecError {
    SpecError::Invalid(message.into())
}

pub fn load_yaml(path: &Path) -> Result<Value, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read { path: path.to_owned(), source })?;
    serde_yaml_ng::from_str(&text).map_err(|source| SpecError::Yaml { path: path.to_owned(), source })
}

/// HTTP methods a route may name (`ANY` matches every method, as in API Gateway).
pub const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"];

/// One `HttpApi` event of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// The event's logical name in the template.
    pub event: String,
    /// Upper case, as API Gateway writes it in a route key.
    pub method: String,
    /// With `{param}` segments, as in the route key: `/partner/workspaces/{id}`.
    pub path: String,
    /// Whether API Gateway's JWT authorizer guards the route (the API's default authorizer,
    /// unless the event says `Authorizer: NONE`).
    pub jwt: bool,
}

impl RouteSpec {
    /// The route key API Gateway gives the function: `"GET /partner/workspaces/{id}"`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// An `AWS::Serverless::Function`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    pub logical_id: String,
    /// The crate folder: `functions/purchase-addon`.
    pub code_uri: String,
    /// `Metadata.BuildProperties.Binary`, the package cargo-lambda builds.
    pub binary: Option<String>,
    pub routes: Vec<RouteSpec>,
    /// The DynamoDB actions its `Policies` allow; `None` when they are not all inline
    /// statements the runner can read (a managed policy, a SAM policy template).
    pub dynamodb: Option<DynamoPolicy>,
}

/// The `AWS::DynamoDB::Table`, in the terms of `store::schema`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub logical_id: String,
    /// (partition, sort) attribute names.
    pub primary: (String, String),
    /// (name, partition, sort, projection type).
    pub global_indexes: Vec<(String, String, String, String)>,
    /// `AttributeDefinitions`: (name, type).
    pub attributes: Vec<(String, String)>,
    pub ttl_attribute: Option<String>,
    pub billing_mode: Option<String>,
    pub point_in_time_recovery: bool,
    pub deletion_protection: bool,
}

/// What the runner reads from template.yaml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub path: PathBuf,
    pub functions: Vec<FunctionSpec>,
    pub tables: Vec<TableSpec>,
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_mapping().and_then(|m| m.get(key))
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    get(v, key).and_then(Value::as_str)
}

/// The logical id a `!Ref X` or `{Ref: X}` names.
fn reference(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        other => str_at(other, "Ref"),
    }
}

fn mapping_entries(v: Option<&Value>) -> Vec<(String, &Value)> {
    v.and_then(Value::as_mapping)
        .map(|m| m.iter().filter_map(|(k, v)| k.as_str().map(|k| (k.to_owned(), v))).collect())
        .unwrap_or_default()
}

fn is_true(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool) == Some(true)
}

/// Checks a route path: starts with `/`, no empty segments, parameters are whole segments.
pub fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("path {path:?} must start with '/'"));
    }
    if path == "/" {
        return Ok(());
    }
    for segment in path[1..].split('/') {
        let param = segment.starts_with('{') && segment.ends_with('}');
        let name = segment.trim_start_matches('{').trim_end_matches('}').trim_end_matches('+');
        if segment.is_empty() || (param && name.is_empty()) || (!param && segment.contains(['{', '}'])) {
            return Err(format!("path {path:?} has an invalid segment {segment:?}"));
        }
    }
    Ok(())
}

impl Template {
    pub fn load(path: &Path) -> Result<Template, SpecError> {
        let doc = load_yaml(path)?;
        let resources = get(&doc, "Resources").ok_or_else(|| invalid("the template has no Resources"))?;
        let globals = get(&doc, "Globals").and_then(|g| get(g, "Function"));
        let resources = mapping_entries(Some(resources));
        let kind_of = |id: &str| resources.iter().find(|(k, _)| k == id).and_then(|(_, r)| str_at(r, "Type"));

        let mut functions = Vec::new();
        let mut tables = Vec::new();
        for (id, resource) in &resources {
            match str_at(resource, "Type") {
                Some("AWS::Serverless::Function") => {
                    let props = get(resource, "Properties");
                    let code_uri = props
                        .and_then(|p| str_at(p, "CodeUri"))
                        .or_else(|| globals.and_then(|g| str_at(g, "CodeUri")))
                        .ok_or_else(|| invalid(format!("function {id} has no literal CodeUri")))?;
                    let binary = get(resource, "Metadata")
                        .and_then(|m| get(m, "BuildProperties"))
                        .and_then(|b| str_at(b, "Binary"))
                        .map(str::to_owned);
                    let mut routes = Vec::new();
                    for (event, spec) in mapping_entries(props.and_then(|p| get(p, "Events"))) {
                        if str_at(spec, "Type") != Some("HttpApi") {
                            continue;
                        }
                        let ep = get(spec, "Properties")
                            .ok_or_else(|| invalid(format!("{id}.{event}: an HttpApi event needs Properties")))?;
                        let method = str_at(ep, "Method")
                            .ok_or_else(|| invalid(format!("{id}.{event}: Method must be a literal")))?
                            .to_ascii_uppercase();
                        if !METHODS.contains(&method.as_str()) {
                            return Err(invalid(format!("{id}.{event}: unknown method {method}")));
                        }
                        let path = str_at(ep, "Path")
                            .ok_or_else(|| invalid(format!("{id}.{event}: Path must be a literal")))?
                            .to_owned();
                        check_path(&path).map_err(|e| invalid(format!("{id}.{event}: {e}")))?;
                        let api = get(ep, "ApiId").map(|a| {
                            reference(a).ok_or_else(|| invalid(format!("{id}.{event}: ApiId must be a !Ref")))
                        });
                        let api = api.transpose()?;
                        if let Some(api) = api
                            && kind_of(api) != Some("AWS::Serverless::HttpApi")
                        {
                            return Err(invalid(format!(
                                "{id}.{event}: ApiId {api} is not an AWS::Serverless::HttpApi"
                            )));
                        }
                        let default_authorizer = api
                            .and_then(|api| resources.iter().find(|(k, _)| k == api))
                            .and_then(|(_, r)| get(r, "Properties"))
                            .and_then(|p| get(p, "Auth"))
                            .and_then(|a| str_at(a, "DefaultAuthorizer"));
                        let route_authorizer = get(ep, "Auth").and_then(|a| str_at(a, "Authorizer"));
                        let jwt = match route_authorizer {
                            Some("NONE") => false,
                            Some(_) => true,
                            None => default_authorizer.is_some(),
                        };
                        routes.push(RouteSpec { event, method, path, jwt });
                    }
                    let dynamodb = dynamo_policy(props.and_then(|p| get(p, "Policies")));
                    functions.push(FunctionSpec {
                        logical_id: id.clone(),
                        code_uri: code_uri.to_owned(),
                        binary,
                        routes,
                        dynamodb,
                    });
                }
                Some("AWS::DynamoDB::Table") => tables.push(table_spec(id, resource)?),
                _ => {}
            }
        }
        Ok(Template { path: path.to_owned(), functions, tables })
    }

    /// Every route key of every function.
    pub fn route_keys(&self) -> BTreeSet<String> {
        self.functions.iter().flat_map(|f| f.routes.iter().map(RouteSpec::key)).collect()
    }
}

fn one_or_many(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None => vec![],
        Some(Value::Sequence(items)) => items.iter().collect(),
        Some(one) => vec![one],
    }
}

/// What a policy resource designates: the table (`!GetAtt T.Arn`), one of its indexes
/// (`!Sub "${T.Arn}/index/NAME"`, `NAME` may be `*`), everything (`*`), or something else.
enum Target {
    Table,
    Index(String),
    All,
    Other,
}

fn target(resource: &Value) -> Target {
    let (tag, value) = match resource {
        Value::Tagged(t) => (t.tag.to_string().trim_start_matches('!').to_owned(), &t.value),
        Value::String(s) if s == "*" => return Target::All,
        Value::Mapping(m) if m.len() == 1 => match m.iter().next() {
            Some((Value::String(k), v)) => (k.trim_start_matches("Fn::").to_owned(), v),
            _ => return Target::Other,
        },
        _ => return Target::Other,
    };
    match (tag.as_str(), value) {
        ("GetAtt", Value::String(s)) if s.ends_with(".Arn") => Target::Table,
        ("GetAtt", Value::Sequence(parts)) if parts.get(1).and_then(Value::as_str) == Some("Arn") => Target::Table,
        ("Sub", Value::String(s)) => match s.split_once(".Arn}") {
            Some((_, "")) => Target::Table,
            Some((_, rest)) => rest.strip_prefix("/index/").map_or(Target::Other, |i| Target::Index(i.to_owned())),
            None => Target::Other,
        },
        _ => Target::Other,
    }
}

/// Reads inline policy statements into the DynamoDB actions they allow.
fn dynamo_policy(policies: Option<&Value>) -> Option<DynamoPolicy> {
    let mut policy = DynamoPolicy::default();
    for document in one_or_many(policies) {
        let statements = get(document, "Statement")?;
        for statement in one_or_many(Some(statements)) {
            if str_at(statement, "Effect") != Some("Allow") {
                return None;
            }
            let actions: Vec<&str> = one_or_many(get(statement, "Action"))
                .into_iter()
                .filter_map(Value::as_str)
                .filter_map(|a| a.strip_prefix("dynamodb:"))
                .collect();
            for resource in one_or_many(get(statement, "Resource")) {
                let grant = |set: &mut std::collections::BTreeSet<String>| {
                    set.extend(actions.iter().map(|a| a.to_string()));
                };
                match target(resource) {
                    Target::Table => grant(&mut policy.table),
                    Target::Index(i) => grant(policy.indexes.entry(i).or_default()),
                    Target::All => {
                        grant(&mut policy.table);
                        grant(policy.indexes.entry("*".into()).or_default());
                    }
                    Target::Other => {}
                }
            }
        }
    }
    Some(policy)
}

fn table_spec(id: &str, resource: &Value) -> Result<TableSpec, SpecError> {
    let props = get(resource, "Properties").ok_or_else(|| invalid(format!("table {id} has no Properties")))?;
    let key_schema = |v: Option<&Value>| -> Result<(String, String), SpecError> {
        let mut hash = None;
        let mut range = None;
        for element in v.and_then(Value::as_sequence).into_iter().flatten() {
            let name = str_at(element, "AttributeName").map(str::to_owned);
            match str_at(element, "KeyType") {
                Some("HASH") => hash = name,
                Some("RANGE") => range = name,
                _ => return Err(invalid(format!("table {id}: a KeySchema element has no KeyType"))),
            }
        }
        match (hash, range) {
            (Some(h), Some(r)) => Ok((h, r)),
            _ => Err(invalid(format!("table {id}: a KeySchema needs a HASH and a RANGE key"))),
        }
    };
    let primary = key_schema(get(props, "KeySchema"))?;
    let mut global_indexes = Vec::new();
    for gsi in get(props, "GlobalSecondaryIndexes").and_then(Value::as_sequence).into_iter().flatten() {
        let name = str_at(gsi, "IndexName").ok_or_else(|| invalid(format!("table {id}: a GSI has no IndexName")))?;
        let (pk, sk) = key_schema(get(gsi, "KeySchema"))?;
        let projection = get(gsi, "Projection").and_then(|p| str_at(p, "ProjectionType")).unwrap_or("").to_owned();
        global_indexes.push((name.to_owned(), pk, sk, projection));
    }
    let attributes = get(props, "AttributeDefinitions")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .map(|a| {
            (str_at(a, "AttributeName").unwrap_or("").to_owned(), str_at(a, "AttributeType").unwrap_or("").to_owned())
        })
        .collect();
    let ttl = get(props, "TimeToLiveSpecification");
    let ttl_attribute =
        ttl.filter(|t| is_true(get(t, "Enabled"))).and_then(|t| str_at(t, "AttributeName")).map(str::to_owned);
    Ok(TableSpec {
        logical_id: id.to_owned(),
        primary,
        global_indexes,
        attributes,
        ttl_attribute,
        billing_mode: str_at(props, "BillingMode").map(str::to_owned),
        point_in_time_recovery: get(props, "PointInTimeRecoverySpecification")
            .is_some_and(|p| is_true(get(p, "PointInTimeRecoveryEnabled"))),
        deletion_protection: is_true(get(props, "DeletionProtectionEnabled")),
    })
}

/// Every operation of openapi.yaml as a route key (`"GET /workspace"`).
pub fn openapi_route_keys(path: &Path) -> Result<BTreeSet<String>, SpecError> {
    let doc = load_yaml(path)?;
    let paths = get(&doc, "paths").ok_or_else(|| invalid("openapi.yaml has no paths"))?;
    let mut keys = BTreeSet::new();
    for (p, item) in mapping_entries(Some(paths)) {
        check_path(&p).map_err(|e| invalid(format!("openapi.yaml: {e}")))?;
        for (method, _) in mapping_entries(Some(item)) {
            let upper = method.to_ascii_uppercase();
            // Path items also hold `parameters`, `summary`...: only methods are operations.
            if METHODS.contains(&upper.as_str()) {
                keys.insert(format!("{upper} {p}"));
            }
        }
    }
    Ok(keys)
}

/// The repository's root: `TEMPLATE_PATH`'s default is found from here.
pub fn repo_root() -> PathBuf {
    // At build time, this crate is `<root>/local`.
    let from_manifest = Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf);
    match from_manifest {
        Some(root) if root.join("template.yaml").is_file() => root,
        // A binary copied elsewhere: look from the current directory.
        _ => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        for ok in ["/", "/workspace", "/partner/workspaces/{id}/addons/{addon_id}", "/files/{proxy+}"] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
        for bad in ["workspace", "/workspace/", "//x", "/a/{}", "/a/x{id}", "/a/{id"] {
            assert!(check_path(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn reads_functions_routes_and_authorizers() {
        let dir = std::env::temp_dir().join(format!("local-template-{:x}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("template.yaml");
        std::fs::write(
            &path,
            r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
  Fn:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: fn-crate
    Properties:
      CodeUri: functions/fn-crate
      Policies:
        - Statement:
            - Effect: Allow
              Action: [dynamodb:GetItem, dynamodb:Query, s3:GetObject]
              Resource: !GetAtt Table.Arn
            - Effect: Allow
              Action: dynamodb:Query
              Resource:
                - !Sub "${Table.Arn}/index/GSI2"
                - { "Fn::Sub": "arn:aws:s3:::bucket/*" }
      Environment:
        Variables:
          TABLE_NAME: !Ref Table
      Events:
        Get:
          Type: HttpApi
          Properties: { ApiId: !Ref Api, Method: get, Path: "/things/{id}" }
        Hook:
          Type: HttpApi
          Properties: { ApiId: !Ref Api, Method: POST, Path: /hook, Auth: { Authorizer: NONE } }
        Tick:
          Type: Schedule
          Properties: { Schedule: rate(1 hour) }
  Renew:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/renew-crate
      Policies:
        - Statement:
            - Effect: Allow
              Action: dynamodb:Query
              Resource: !Sub "${Table.Arn}/index/GSI1"
      Events:
        Every15Minutes:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(15 minutes)
            DeadLetterConfig: { Arn: !GetAtt Dlq.Arn }
"#,
        )
        .unwrap();
        let t = Template::load(&path).unwrap();
        assert_eq!(t.functions.len(), 2);
        let f = &t.functions[0];
        assert_eq!((f.code_uri.as_str(), f.binary.as_deref()), ("functions/fn-crate", Some("fn-crate")));
        let routes: Vec<_> = f.routes.iter().map(|r| (r.key(), r.jwt)).collect();
        assert_eq!(routes, vec![("GET /things/{id}".to_owned(), true), ("POST /hook".to_owned(), false)]);
        let policy = f.dynamodb.as_ref().unwrap();
        assert!(policy.allows_table("GetItem") && policy.allows_table("Query") && !policy.allows_table("PutItem"));
        assert!(policy.allows_index("GSI2", "Query") && !policy.allows_index("GSI1", "Query"));
        assert!(!policy.allows_table("GetObject"));
        // A scheduled function: read, with its policy, and no routes.
        let renew = &t.functions[1];
        assert_eq!((renew.logical_id.as_str(), renew.code_uri.as_str()), ("Renew", "functions/renew-crate"));
        assert_eq!(renew.routes, []);
        assert!(renew.dynamodb.as_ref().unwrap().allows_index("GSI1", "Query"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
