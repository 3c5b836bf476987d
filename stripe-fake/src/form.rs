//! Stripe's request encoding: `application/x-www-form-urlencoded` with nested keys,
//! `line_items[0][price_data][currency]=usd`, `metadata[workspace_id]=ws-1`, `expand[]=x` or
//! `expand[0]=x`. Parsed into a tree whose maps are ordered, so two requests with the same
//! parameters in another order compare equal (Stripe's idempotency compares parameters, and
//! async-stripe serializes metadata from a `HashMap`, whose order changes from process to process).

use std::collections::BTreeMap;

use serde_json::Value;

/// Most parameters read from one request, and deepest nesting: Stripe's own limits are lower.
const MAX_PARAMS: usize = 1000;
const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Value(String),
    /// Named or indexed children; list indexes are kept as zero-padded keys (see [`index_key`]) so
    /// they stay in numeric order.
    Map(BTreeMap<String, Param>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("Invalid request body: {0}")]
    Malformed(&'static str),
    #[error("Invalid request body: parameter {0} is given twice or with conflicting shapes")]
    Conflict(String),
}

/// A list index as a map key: `0000000007` sorts before `0000000010`.
fn index_key(i: usize) -> String {
    format!("{i:010}")
}

fn percent_decode(s: &str) -> Result<String, FormError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3).ok_or(FormError::Malformed("bad percent escape"))?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| FormError::Malformed("bad percent escape"))?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FormError::Malformed("not UTF-8"))
}

/// `a[b][0]` -> `["a", "b", "0"]`; `a[]` -> `["a", ""]`.
fn split_key(key: &str) -> Result<Vec<&str>, FormError> {
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() {
        return Err(FormError::Malformed("empty parameter name"));
    }
    let mut path = vec![head];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[').ok_or(FormError::Malformed("bad brackets"))?;
        let close = inner.find(']').ok_or(FormError::Malformed("bad brackets"))?;
        path.push(&inner[..close]);
        rest = &inner[close + 1..];
    }
    if path.len() > MAX_DEPTH {
        return Err(FormError::Malformed("too deeply nested"));
    }
    Ok(path)
}

impl Param {
    pub fn empty() -> Self {
        Param::Map(BTreeMap::new())
    }

    /// Parses a request body or query string.
    pub fn parse(body: &str) -> Result<Self, FormError> {
        let mut root = BTreeMap::new();
        for (n, pair) in body.split('&').filter(|p| !p.is_empty()).enumerate() {
            if n >= MAX_PARAMS {
                return Err(FormError::Malformed("too many parameters"));
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(k)?;
            let value = percent_decode(v)?;
            let path = split_key(&key)?;
            insert(&mut root, &key, &path, value)?;
        }
        Ok(Param::Map(root))
    }

    pub fn get(&self, name: &str) -> Option<&Param> {
        match self {
            Param::Map(m) => m.get(name),
            Param::Value(_) => None,
        }
    }

    /// `p.at(&["line_items", "0", "price_data", "currency"])`; numeric segments are list indexes.
    pub fn at(&self, path: &[&str]) -> Option<&Param> {
        path.iter().try_fold(self, |p, seg| match seg.parse::<usize>() {
            Ok(i) => p.get(&index_key(i)).or_else(|| p.get(seg)),
            Err(_) => p.get(seg),
        })
    }

    pub fn str_at(&self, path: &[&str]) -> Option<&str> {
        match self.at(path) {
            Some(Param::Value(v)) => Some(v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Param::Value(v) => Some(v),
            Param::Map(_) => None,
        }
    }

    /// Children of a map in key order (a list's items in index order).
    pub fn items(&self) -> Vec<&Param> {
        match self {
            Param::Map(m) => m.values().collect(),
            Param::Value(_) => Vec::new(),
        }
    }

    /// Top-level names, to refuse unknown parameters as Stripe does.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Param::Map(m) => m.keys().map(String::as_str).collect(),
            Param::Value(_) => Vec::new(),
        }
    }

    /// A flat string map (`metadata[k]=v`); `metadata=` (empty) is an empty map.
    pub fn string_map(&self) -> Option<BTreeMap<String, String>> {
        match self {
            Param::Map(m) => m.iter().map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect(),
            Param::Value(v) if v.is_empty() => Some(BTreeMap::new()),
            Param::Value(_) => None,
        }
    }

    /// The values of `expand[]=a&expand[]=b` or `expand[0]=a`.
    pub fn string_list(&self) -> Vec<&str> {
        match self {
            Param::Map(m) => m.values().filter_map(Param::as_str).collect(),
            Param::Value(v) => vec![v.as_str()],
        }
    }

    /// For the request log: lists show with their plain indexes.
    pub fn to_json(&self) -> Value {
        match self {
            Param::Value(v) => Value::String(v.clone()),
            Param::Map(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let k = k.parse::<usize>().map(|i| i.to_string()).unwrap_or_else(|_| k.clone());
                        (k, v.to_json())
                    })
                    .collect(),
            ),
        }
    }
}

fn insert(map: &mut BTreeMap<String, Param>, key: &str, path: &[&str], value: String) -> Result<(), FormError> {
    let (first, rest) = path.split_first().expect("split_key returns at least the head");
    let name = match first.parse::<usize>() {
        Ok(i) => index_key(i),
        // `a[]`: the next index.
        Err(_) if first.is_empty() => index_key(map.len()),
        Err(_) => (*first).to_owned(),
    };
    if rest.is_empty() {
        if map.contains_key(&name) {
            return Err(FormError::Conflict(key.to_owned()));
        }
        map.insert(name, Param::Value(value));
        return Ok(());
    }
    match map.entry(name).or_insert_with(Param::empty) {
        Param::Map(child) => insert(child, key, rest, value),
        Param::Value(_) => Err(FormError::Conflict(key.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_keys_lists_and_escapes() {
        let p = Param::parse(
            "mode=payment&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=1000\
             &line_items[0][price_data][product_data][name]=1%2C000+points&metadata[workspace_id]=ws-1\
             &expand[]=payment_intent&expand[]=customer",
        )
        .unwrap();
        assert_eq!(p.str_at(&["mode"]), Some("payment"));
        assert_eq!(p.str_at(&["line_items", "0", "price_data", "currency"]), Some("usd"));
        assert_eq!(p.str_at(&["line_items", "0", "price_data", "product_data", "name"]), Some("1,000 points"));
        assert_eq!(p.get("metadata").unwrap().string_map().unwrap()["workspace_id"], "ws-1");
        assert_eq!(p.get("expand").unwrap().string_list(), vec!["payment_intent", "customer"]);
        assert_eq!(p.get("line_items").unwrap().items().len(), 1);
        // serde_qs's `%5B0%5D` form is the same thing.
        let q = Param::parse("line_items%5B0%5D%5Bquantity%5D=1").unwrap();
        assert_eq!(q.str_at(&["line_items", "0", "quantity"]), Some("1"));
    }

    #[test]
    fn order_does_not_matter_but_list_order_does() {
        assert_eq!(
            Param::parse("metadata[a]=1&metadata[b]=2").unwrap(),
            Param::parse("metadata[b]=2&metadata[a]=1").unwrap()
        );
        assert_ne!(Param::parse("x[]=1&x[]=2").unwrap(), Param::parse("x[]=2&x[]=1").unwrap());
        let many = Param::parse(&(0..12).map(|i| format!("x[{i}]={i}")).collect::<Vec<_>>().join("&")).unwrap();
        assert_eq!(many.get("x").unwrap().string_list()[10], "10");
    }

    #[test]
    fn refusals() {
        for bad in ["a=%zz", "=1", "a[b=1", "a=1&a=2", "a=1&a[b]=2", "a%ff=1"] {
            assert!(Param::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Param::parse("").unwrap(), Param::empty());
    }
}
