//! Business metrics as CloudWatch Embedded Metric Format (EMF) lines: a function prints one JSON
//! line to stdout, Lambda sends it to CloudWatch Logs with the rest of the log, and CloudWatch
//! makes metrics of it. No `PutMetricData` call, no permission, nothing on the request's path
//! but a `println!`.
//!
//! A line declares, under `_aws`, which of its members are metrics (with their units) and
//! which dimension sets each is aggregated under; the members themselves carry the values. A
//! metric declared under `[["Function"], ["Function", "Reason"]]` is stored twice: once per
//! function (what an alarm watches) and once per function and reason (what a graph splits).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use domain::Money;

/// The namespace of every business metric, in CloudWatch and in template.yaml's alarms and
/// dashboard.
pub const NAMESPACE: &str = "BillingBackend";

/// The dimension every line carries: the function that emitted it (its crate's name).
pub const FUNCTION: &str = "Function";

/// EMF allows 30 dimensions in a set and 100 metrics in a directive; ours stay far below.
const MAX_DIMENSIONS_PER_SET: usize = 30;
const MAX_METRICS_PER_DIRECTIVE: usize = 100;

/// The units a metric is declared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// How many times something happened.
    Count,
    /// A figure without a CloudWatch unit: an amount of money in its currency's major unit.
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::None => "None",
        }
    }
}

/// A metric's value, kept as the JSON number it is written as: money goes in as its exact
/// decimal, never through a float.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number(String);

impl Number {
    /// An amount in its currency's major unit, with the currency's decimals: 12.50 for 1250
    /// cents. Its currency belongs in a dimension.
    pub fn major(amount: Money) -> Self {
        let text = amount.format_major();
        assert!(is_json_number(&text), "a money amount formats as a JSON number: {text:?}");
        Number(text)
    }
}

impl From<u64> for Number {
    fn from(n: u64) -> Self {
        Number(n.to_string())
    }
}

impl From<u32> for Number {
    fn from(n: u32) -> Self {
        Number(n.to_string())
    }
}

/// Whether `text` is a JSON number as `format_major` writes one: an optional minus, digits,
/// and optionally a point and digits.
fn is_json_number(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    match unsigned.split_once('.') {
        Some((int, frac)) => digits(int) && digits(frac),
        None => digits(unsigned),
    }
}

/// One group of metrics under the same dimension sets (an EMF "directive").
#[derive(Debug)]
struct Directive {
    dimension_sets: Vec<Vec<&'static str>>,
    metrics: Vec<(&'static str, Unit)>,
}

/// One EMF line being built: its dimensions' values, its metrics and their values.
#[derive(Debug)]
pub struct MetricLine {
    dimensions: BTreeMap<&'static str, String>,
    values: BTreeMap<&'static str, Number>,
    directives: Vec<Directive>,
}

impl MetricLine {
    /// A line of `function`'s metrics (the value of its [`FUNCTION`] dimension).
    pub fn new(function: &str) -> Self {
        let mut line = MetricLine { dimensions: BTreeMap::new(), values: BTreeMap::new(), directives: Vec::new() };
        line.dimensions.insert(FUNCTION, function.to_owned());
        line
    }

    /// Another dimension's value on this line (the [`FUNCTION`] one is there already).
    pub fn dimension(mut self, name: &'static str, value: impl Into<String>) -> Self {
        assert!(!self.values.contains_key(name), "{name} is a metric of this line already");
        self.dimensions.insert(name, value.into());
        self
    }

    /// A metric counted once per function: `metric(name, value, Count, &[&[FUNCTION]])`.
    pub fn count(self, name: &'static str, value: impl Into<Number>) -> Self {
        self.metric(name, value.into(), Unit::Count, &[&[FUNCTION]])
    }

    /// A metric with its value and unit, aggregated under each of `dimension_sets` (each naming
    /// dimensions this line has values for).
    pub fn metric(mut self, name: &'static str, value: Number, unit: Unit, dimension_sets: &[&[&'static str]]) -> Self {
        assert!(!dimension_sets.is_empty(), "{name} is aggregated under at least one dimension set");
        for set in dimension_sets {
            assert!(set.len() <= MAX_DIMENSIONS_PER_SET, "{name}: {} dimensions in a set", set.len());
            for dimension in *set {
                assert!(
                    self.dimensions.contains_key(dimension),
                    "{name} is declared under {dimension}, which has no value"
                );
            }
        }
        assert!(!self.dimensions.contains_key(name), "{name} is a dimension of this line already");
        assert!(self.values.insert(name, value).is_none(), "{name} is declared twice");
        let sets: Vec<Vec<&'static str>> = dimension_sets.iter().map(|s| s.to_vec()).collect();
        match self.directives.iter_mut().find(|d| d.dimension_sets == sets) {
            Some(directive) => directive.metrics.push((name, unit)),
            None => self.directives.push(Directive { dimension_sets: sets, metrics: vec![(name, unit)] }),
        }
        self
    }

    /// The line at `timestamp_ms` (milliseconds since the epoch). Members are in key order, as
    /// `serde_json` writes an object: the dimensions and the values, then `_aws`.
    pub fn to_json(&self, timestamp_ms: i64) -> String {
        assert!(!self.directives.is_empty(), "a metric line declares at least one metric");
        let mut members: BTreeMap<&str, String> = BTreeMap::new();
        for (name, value) in &self.dimensions {
            members.insert(name, json_string(value));
        }
        for (name, value) in &self.values {
            members.insert(name, value.0.clone());
        }
        let mut directives = Vec::with_capacity(self.directives.len());
        for directive in &self.directives {
            assert!(directive.metrics.len() <= MAX_METRICS_PER_DIRECTIVE, "too many metrics in one directive");
            let sets: Vec<String> = directive
                .dimension_sets
                .iter()
                .map(|set| format!("[{}]", set.iter().map(|d| json_string(d)).collect::<Vec<_>>().join(",")))
                .collect();
            let metrics: Vec<String> = directive
                .metrics
                .iter()
                .map(|(name, unit)| {
                    format!("{{\"Name\":{},\"Unit\":{}}}", json_string(name), json_string(unit.as_str()))
                })
                .collect();
            directives.push(format!(
                "{{\"Dimensions\":[{}],\"Metrics\":[{}],\"Namespace\":{}}}",
                sets.join(","),
                metrics.join(","),
                json_string(NAMESPACE)
            ));
        }
        members.insert(
            "_aws",
            format!("{{\"CloudWatchMetrics\":[{}],\"Timestamp\":{timestamp_ms}}}", directives.join(",")),
        );
        let mut line = String::from("{");
        for (i, (name, value)) in members.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            let _ = write!(line, "{}:{value}", json_string(name));
        }
        line.push('}');
        line
    }

    /// Prints the line, stamped now, on stdout (where Lambda's log is read from).
    pub fn emit(&self) {
        println!("{}", self.to_json(now_ms()));
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use domain::Currency;
    use serde_json::{Value, json};

    use super::*;

    const AT_MS: i64 = 1_777_000_000_000;

    /// Every metric a line declares has a value, every dimension a declaration names has one,
    /// and every value is declared: what CloudWatch needs to make metrics of the line.
    fn check_declarations(line: &Value) {
        let directives = line["_aws"]["CloudWatchMetrics"].as_array().expect("directives");
        let mut declared = Vec::new();
        for directive in directives {
            assert_eq!(directive["Namespace"], NAMESPACE);
            for set in directive["Dimensions"].as_array().unwrap() {
                for dimension in set.as_array().unwrap() {
                    let name = dimension.as_str().unwrap();
                    assert!(line[name].is_string(), "dimension {name} has a value: {line}");
                }
            }
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap();
                assert!(line[name].is_number(), "{name} has a value: {line}");
                declared.push(name.to_owned());
            }
        }
        for (member, value) in line.as_object().unwrap() {
            if value.is_number() {
                assert!(declared.contains(member), "{member} is declared: {line}");
            }
        }
        assert_eq!(line["_aws"]["Timestamp"], AT_MS);
    }

    #[test]
    fn counts_under_the_function_alone() {
        let text =
            MetricLine::new("renew-addons").count("RenewalsDone", 7_u64).count("RenewalsFailed", 0_u64).to_json(AT_MS);
        let line: Value = serde_json::from_str(&text).unwrap();
        check_declarations(&line);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"],
            json!([{ "Namespace": NAMESPACE, "Dimensions": [["Function"]], "Metrics": [
                { "Name": "RenewalsDone", "Unit": "Count" }, { "Name": "RenewalsFailed", "Unit": "Count" }] }])
        );
        assert_eq!(
            (&line["Function"], &line["RenewalsDone"], &line["RenewalsFailed"]),
            (&json!("renew-addons"), &json!(7), &json!(0))
        );
    }

    #[test]
    fn metrics_under_other_dimension_sets_get_a_directive_of_their_own() {
        let paid = Money::from_minor(1250, Currency::USD).unwrap();
        let text = MetricLine::new("stripe-webhook")
            .dimension("Currency", "usd")
            .metric("TopupsCredited", 1_u64.into(), Unit::Count, &[&["Function"], &["Function", "Currency"]])
            .metric("TopupAmount", Number::major(paid), Unit::None, &[&["Function", "Currency"]])
            .to_json(AT_MS);
        // The amount is written exactly as the currency's decimals say, not through a float.
        assert!(text.contains("\"TopupAmount\":12.50"), "{text}");
        let line: Value = serde_json::from_str(&text).unwrap();
        check_declarations(&line);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"],
            json!([
                { "Namespace": NAMESPACE, "Dimensions": [["Function"], ["Function", "Currency"]],
                  "Metrics": [{ "Name": "TopupsCredited", "Unit": "Count" }] },
                { "Namespace": NAMESPACE, "Dimensions": [["Function", "Currency"]],
                  "Metrics": [{ "Name": "TopupAmount", "Unit": "None" }] },
            ])
        );
        assert_eq!(line["Currency"], "usd");
    }

    #[test]
    fn amounts_keep_their_currency_s_decimals() {
        let cases = [(1000, "jpy", "1000"), (5120, "kwd", "5.120"), (7, "usd", "0.07")];
        for (minor, code, written) in cases {
            let money = Money::from_minor(minor, Currency::parse(code).unwrap()).unwrap();
            assert_eq!(Number::major(money), Number(written.into()));
        }
    }

    #[test]
    fn the_line_is_written_as_serde_json_writes_an_object() {
        // Members in key order, no spaces: the sweep's line, byte for byte as it was printed
        // before this writer existed.
        let text = MetricLine::new("reconcile-payments")
            .count("SweepFixed", 2_u32)
            .count("SweepEvents", 6_u32)
            .count("SweepRefused", 1_u32)
            .to_json(AT_MS);
        let expected = r#"{"Function":"reconcile-payments","SweepEvents":6,"SweepFixed":2,"SweepRefused":1,"_aws":{"CloudWatchMetrics":[{"Dimensions":[["Function"]],"Metrics":[{"Name":"SweepFixed","Unit":"Count"},{"Name":"SweepEvents","Unit":"Count"},{"Name":"SweepRefused","Unit":"Count"}],"Namespace":"BillingBackend"}],"Timestamp":1777000000000}}"#;
        assert_eq!(text, expected);
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(reparsed.to_string(), text, "serde_json writes it back the same");
    }

    #[test]
    fn dimension_values_are_escaped() {
        let text = MetricLine::new("f\"1").count("N", 1_u64).to_json(AT_MS);
        let line: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(line["Function"], "f\"1");
    }

    #[test]
    #[should_panic(expected = "has no value")]
    fn a_metric_under_a_dimension_without_a_value_is_a_programming_error() {
        let _ = MetricLine::new("f").metric("N", 1_u64.into(), Unit::Count, &[&["Function", "Reason"]]);
    }

    #[test]
    fn json_numbers_are_recognized() {
        for ok in ["0", "12", "12.50", "-3.1"] {
            assert!(is_json_number(ok), "{ok}");
        }
        for bad in ["", "1.", ".5", "1e3", "NaN", "1,5", "--1"] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }
}
