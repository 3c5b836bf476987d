//! Every route answers what openapi.yaml documents: each route's rightful caller sends a valid
//! request (the access tests' samples), and the 2xx body is checked against the schema the spec
//! gives for that status, so the spec and the code cannot drift apart unnoticed.
//!
//! The checker knows the parts of JSON Schema the spec uses: `$ref`, `allOf`, `oneOf`, `not`,
//! `nullable`, `type`, `enum`, `properties`, `required`, `additionalProperties`, `items`, the
//! length, size and range bounds. `pattern` and `format` are left to the fuzzing
//! (`scripts/fuzz`, which checks every answer it gets against the same spec).

use serde_json::Value;
use store::memory::MemoryTable;

use super::access::{Target, allowed, callers, sample, setup};
use super::{ALL_ROUTES, Api};

/// openapi.yaml as JSON.
struct Spec {
    doc: Value,
}

impl Spec {
    fn load() -> Self {
        let path = local::template::repo_root().join("openapi.yaml");
        let text = std::fs::read_to_string(&path).expect("openapi.yaml is readable");
        Self { doc: serde_yaml_ng::from_str(&text).expect("openapi.yaml is YAML") }
    }

    /// `v`, or what its `$ref` (a local JSON pointer) names, followed to the end.
    fn resolve<'a>(&'a self, mut v: &'a Value) -> &'a Value {
        while let Some(target) = v.get("$ref").and_then(Value::as_str) {
            let pointer = target.strip_prefix('#').unwrap_or_else(|| panic!("a non-local $ref {target}"));
            v = self.doc.pointer(pointer).unwrap_or_else(|| panic!("$ref {target} names nothing"));
        }
        v
    }

    /// The schema of `route`'s JSON answer with `status`.
    fn answer_schema(&self, route: &str, status: u16) -> &Value {
        let (method, path) = route.split_once(' ').expect("METHOD /path");
        let pointer = format!("/paths/{}/{}", path.replace('~', "~0").replace('/', "~1"), method.to_ascii_lowercase());
        let operation = self.doc.pointer(&pointer).unwrap_or_else(|| panic!("{route} is not in openapi.yaml"));
        let answer = operation["responses"]
            .get(status.to_string())
            .unwrap_or_else(|| panic!("{route}: openapi.yaml documents no {status} answer"));
        let answer = self.resolve(answer);
        answer
            .pointer("/content/application~1json/schema")
            .unwrap_or_else(|| panic!("{route}: the {status} answer has no JSON schema"))
    }

    /// What is wrong with `value` against `schema`, each at its JSON path.
    fn check(&self, schema: &Value, value: &Value, at: &str, wrong: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if value.is_null() {
            let typed = ["type", "allOf", "oneOf", "properties", "enum"].iter().any(|k| schema.get(*k).is_some());
            if typed && schema.get("nullable") != Some(&Value::Bool(true)) {
                wrong.push(format!("{at}: null, and the spec does not allow it"));
            }
            return;
        }
        for sub in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            self.check(sub, value, at, wrong);
        }
        if let Some(subs) = schema.get("oneOf").and_then(Value::as_array) {
            let fits = subs.iter().filter(|sub| self.fits(sub, value, at)).count();
            if fits != 1 {
                wrong.push(format!("{at}: fits {fits} of oneOf's {} schemas, not 1", subs.len()));
            }
        }
        if let Some(not) = schema.get("not")
            && self.fits(not, value, at)
        {
            wrong.push(format!("{at}: fits the schema under `not`"));
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            wrong.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
        if let Some(kind) = schema.get("type").and_then(Value::as_str) {
            let fits = match kind {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                other => panic!("{at}: a type the checker does not know: {other}"),
            };
            if !fits {
                wrong.push(format!("{at}: {value} is not of type {kind}"));
                return;
            }
        }
        match value {
            Value::Object(fields) => self.check_object(schema, fields, at, wrong),
            Value::Array(items) => {
                let n = items.len() as u64;
                if schema.get("minItems").and_then(Value::as_u64).is_some_and(|min| n < min)
                    || schema.get("maxItems").and_then(Value::as_u64).is_some_and(|max| n > max)
                {
                    wrong.push(format!("{at}: {n} items, outside the spec's bounds"));
                }
                if let Some(item) = schema.get("items") {
                    for (i, v) in items.iter().enumerate() {
                        self.check(item, v, &format!("{at}[{i}]"), wrong);
                    }
                }
            }
            Value::String(s) => {
                let n = s.chars().count() as u64;
                if schema.get("minLength").and_then(Value::as_u64).is_some_and(|min| n < min)
                    || schema.get("maxLength").and_then(Value::as_u64).is_some_and(|max| n > max)
                {
                    wrong.push(format!("{at}: {n} characters, outside the spec's bounds"));
                }
            }
            Value::Number(n) => {
                let n = n.as_f64().expect("a JSON number");
                if schema.get("minimum").and_then(Value::as_f64).is_some_and(|min| n < min)
                    || schema.get("maximum").and_then(Value::as_f64).is_some_and(|max| n > max)
                {
                    wrong.push(format!("{at}: {n} is outside the spec's range"));
                }
            }
            Value::Bool(_) | Value::Null => {}
        }
    }

    fn check_object(&self, schema: &Value, fields: &serde_json::Map<String, Value>, at: &str, wrong: &mut Vec<String>) {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let name = name.as_str().expect("required names are strings");
            if !fields.contains_key(name) {
                wrong.push(format!("{at}: the required field `{name}` is missing"));
            }
        }
        for (name, v) in fields {
            let here = format!("{at}.{name}");
            match (properties.and_then(|p| p.get(name)), schema.get("additionalProperties")) {
                (Some(sub), _) => self.check(sub, v, &here, wrong),
                (None, Some(Value::Bool(false))) => wrong.push(format!("{here}: not in the spec")),
                (None, Some(Value::Bool(true)) | None) => {}
                (None, Some(sub)) => self.check(sub, v, &here, wrong),
            }
        }
    }

    fn fits(&self, schema: &Value, value: &Value, at: &str) -> bool {
        let mut wrong = Vec::new();
        self.check(schema, value, at, &mut wrong);
        wrong.is_empty()
    }
}

/// Every route, called by its rightful caller with a valid request, answers a body that fits
/// the schema openapi.yaml documents for the status it answers.
#[tokio::test]
async fn every_answer_fits_the_documented_schema() {
    let spec = Spec::load();
    let api = Api::over(MemoryTable::new()).await;
    let (mine, _) = setup(&api).await;
    let code = super::access::own_account_code(&api).await;
    let (receipt, wallet_receipt) = super::access::receipts(&api).await;
    let delivery = super::access::delivery(&api).await;
    let billed = super::plans::billed_addon(&api).await;
    let target = Target {
        workspace: super::W,
        addon: &mine,
        code: &code,
        receipt: &receipt,
        wallet_receipt: &wallet_receipt,
        delivery: &delivery,
        billed: &billed,
    };
    let mut wrong = Vec::new();
    for route in ALL_ROUTES {
        let (caller, _) = callers().into_iter().zip(allowed(route)).find(|(_, ok)| *ok).expect("a caller");
        let r = api.call(sample(route, &target).by(caller)).await;
        super::access::rightful(route, r.status, &r.body).unwrap();
        spec.check(spec.answer_schema(route, r.status), &r.body, route, &mut wrong);
    }
    assert!(wrong.is_empty(), "answers that openapi.yaml does not document:\n{}", wrong.join("\n"));
}

/// The checker finds what it is for: a missing field, an undocumented one, a wrong type.
#[test]
fn the_checker_catches_drift() {
    let spec = Spec::load();
    let schema = spec.answer_schema("GET /partner/settings", 200);
    let mut wrong = Vec::new();
    spec.check(schema, &serde_json::json!({ "credit_billing": "yes", "surprise": 1 }), "settings", &mut wrong);
    let all = wrong.join("\n");
    assert!(all.contains("settings.credit_billing: \"yes\" is not of type boolean"), "{all}");
    assert!(all.contains("settings.surprise: not in the spec"), "{all}");
    assert!(all.contains("the required field"), "{all}");
}

/// Every kind of partner event is one `GET /partner/events` documents, and no other.
#[test]
fn every_partner_event_type_is_documented() {
    let spec = Spec::load();
    let pointer = "/paths/~1partner~1events/get/responses/200/content/application~1json/schema/properties/data/items/properties/type/enum";
    let documented: std::collections::BTreeSet<&str> = spec
        .doc
        .pointer(pointer)
        .expect("the events' type enum")
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let written: std::collections::BTreeSet<&str> = billing::PartnerEventKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(documented, written);
}
