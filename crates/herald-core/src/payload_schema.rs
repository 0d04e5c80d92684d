//! Checking a payload against its version's JSON Schema (an event type's `validatePayloads`).
//!
//! The keywords that decide a payload's shape are checked: `type`, `enum`, `const`,
//! `properties`, `required`, `additionalProperties`, `minProperties`, `maxProperties`,
//! `items` (one schema, or an array of schemas by position), `minItems`, `maxItems`,
//! `uniqueItems`, `minLength`, `maxLength`, `minimum`, `maximum`, `exclusiveMinimum`,
//! `exclusiveMaximum`, `multipleOf`, `allOf`, `anyOf`, `oneOf`, `not`, and local `$ref`s
//! (`#/…`). Others (`pattern`, `format`, `if`/`then`, `dependentRequired`, …) are not checked.

use serde_json::{Map, Value};

/// The most violations reported for one payload.
pub const MAX_VIOLATIONS: usize = 20;
/// How deep schemas and payloads are followed at most (`$ref`s count).
const MAX_DEPTH: usize = 32;

/// One way a payload does not match its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where, as a JSON Pointer into the payload (`""` is the payload itself).
    pub path: String,
    pub reason: String,
}

/// Every violation (up to [`MAX_VIOLATIONS`]) of `schema` by `payload`.
pub fn violations(schema: &Value, payload: &Value) -> Vec<Violation> {
    let mut checker = Checker { root: schema, found: Vec::new() };
    checker.check(schema, payload, &mut String::new(), 0);
    checker.found
}

struct Checker<'a> {
    root: &'a Value,
    found: Vec<Violation>,
}

impl Checker<'_> {
    fn fail(&mut self, path: &str, reason: String) {
        if self.found.len() < MAX_VIOLATIONS {
            self.found.push(Violation { path: path.to_owned(), reason });
        }
    }

    fn matches(&self, schema: &Value, value: &Value, depth: usize) -> bool {
        let mut probe = Checker { root: self.root, found: Vec::new() };
        probe.check(schema, value, &mut String::new(), depth);
        probe.found.is_empty()
    }

    fn check(&mut self, schema: &Value, value: &Value, path: &mut String, depth: usize) {
        if depth > MAX_DEPTH || self.found.len() >= MAX_VIOLATIONS {
            return;
        }
        let schema = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => return self.fail(path, "no value is allowed here".to_owned()),
            Value::Object(schema) => schema,
            _ => return,
        };
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            match reference.strip_prefix('#').and_then(|pointer| self.root.pointer(pointer)) {
                Some(target) => self.check(target, value, path, depth + 1),
                None => self.fail(path, format!("the schema's $ref {reference:?} names nothing")),
            }
        }
        if let Some(kind) = schema.get("type") {
            let allowed: Vec<&str> = match kind {
                Value::String(one) => vec![one.as_str()],
                Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !allowed.is_empty() && !allowed.iter().any(|t| is_type(value, t)) {
                self.fail(path, format!("must be {}, not {}", allowed.join(" or "), type_of(value)));
                return;
            }
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array)
            && !options.contains(value)
        {
            self.fail(path, format!("must be one of {}", Value::Array(options.clone())));
        }
        if let Some(expected) = schema.get("const")
            && expected != value
        {
            self.fail(path, format!("must be {expected}"));
        }
        self.combinators(schema, value, path, depth);
        match value {
            Value::Object(object) => self.object(schema, object, path, depth),
            Value::Array(items) => self.array(schema, items, path, depth),
            Value::String(text) => {
                let length = text.chars().count() as u64;
                if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                    && length < min
                {
                    self.fail(path, format!("must be at least {min} characters long"));
                }
                if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                    && length > max
                {
                    self.fail(path, format!("must be at most {max} characters long"));
                }
            }
            Value::Number(number) => self.number(schema, number.as_f64().unwrap_or(0.0), path),
            _ => {}
        }
    }

    fn combinators(&mut self, schema: &Map<String, Value>, value: &Value, path: &mut String, depth: usize) {
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.check(sub, value, path, depth + 1);
            }
        }
        if let Some(any) = schema.get("anyOf").and_then(Value::as_array)
            && !any.iter().any(|sub| self.matches(sub, value, depth + 1))
        {
            self.fail(path, "matches none of the schemas in anyOf".to_owned());
        }
        if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
            let matching = one.iter().filter(|sub| self.matches(sub, value, depth + 1)).count();
            if matching != 1 {
                self.fail(path, format!("must match exactly one schema in oneOf (matches {matching})"));
            }
        }
        if let Some(not) = schema.get("not")
            && self.matches(not, value, depth + 1)
        {
            self.fail(path, "matches the schema in not".to_owned());
        }
    }

    fn object(
        &mut self,
        schema: &Map<String, Value>,
        object: &Map<String, Value>,
        path: &mut String,
        depth: usize,
    ) {
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(name) {
                    self.fail(path, format!("is missing the required property {name:?}"));
                }
            }
        }
        let count = object.len() as u64;
        if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
            && count < min
        {
            self.fail(path, format!("must have at least {min} properties"));
        }
        if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
            && count > max
        {
            self.fail(path, format!("must have at most {max} properties"));
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        for (name, property) in object {
            let len = path.len();
            path.push('/');
            path.push_str(&name.replace('~', "~0").replace('/', "~1"));
            match properties.and_then(|p| p.get(name)) {
                Some(sub) => self.check(sub, property, path, depth + 1),
                None => match additional {
                    Some(Value::Bool(false)) => self.fail(path, "is not an allowed property".to_owned()),
                    Some(sub @ Value::Object(_)) => self.check(sub, property, path, depth + 1),
                    _ => {}
                },
            }
            path.truncate(len);
        }
    }

    fn array(&mut self, schema: &Map<String, Value>, items: &[Value], path: &mut String, depth: usize) {
        let count = items.len() as u64;
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && count < min
        {
            self.fail(path, format!("must have at least {min} items"));
        }
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
            && count > max
        {
            self.fail(path, format!("must have at most {max} items"));
        }
        if schema.get("uniqueItems") == Some(&Value::Bool(true))
            && items.iter().enumerate().any(|(i, item)| items[..i].contains(item))
        {
            self.fail(path, "must not repeat an item".to_owned());
        }
        for (i, item) in items.iter().enumerate() {
            let sub = match schema.get("items") {
                Some(Value::Array(by_position)) => by_position.get(i),
                Some(one) => Some(one),
                None => None,
            };
            if let Some(sub) = sub {
                let len = path.len();
                path.push_str(&format!("/{i}"));
                self.check(sub, item, path, depth + 1);
                path.truncate(len);
            }
        }
    }

    fn number(&mut self, schema: &Map<String, Value>, n: f64, path: &str) {
        let get = |key: &str| schema.get(key).and_then(Value::as_f64);
        if let Some(min) = get("minimum")
            && n < min
        {
            self.fail(path, format!("must be at least {min}"));
        }
        if let Some(max) = get("maximum")
            && n > max
        {
            self.fail(path, format!("must be at most {max}"));
        }
        if let Some(min) = get("exclusiveMinimum")
            && n <= min
        {
            self.fail(path, format!("must be more than {min}"));
        }
        if let Some(max) = get("exclusiveMaximum")
            && n >= max
        {
            self.fail(path, format!("must be less than {max}"));
        }
        if let Some(step) = get("multipleOf")
            && step > 0.0
            && ((n / step).round() * step - n).abs() > f64::EPSILON * n.abs().max(1.0) * 16.0
        {
            self.fail(path, format!("must be a multiple of {step}"));
        }
    }
}

fn is_type(value: &Value, kind: &str) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.as_f64().is_some_and(|n| n.fract() == 0.0),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => true,
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Object(_) => "an object",
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(schema: Value, payload: Value) -> Vec<(String, String)> {
        violations(&schema, &payload).into_iter().map(|v| (v.path, v.reason)).collect()
    }

    #[test]
    fn a_matching_payload_has_no_violations() {
        let schema = json!({"type": "object", "required": ["id"], "properties": {
            "id": {"type": "string", "minLength": 3},
            "amount": {"type": "integer", "minimum": 0},
            "items": {"type": "array", "items": {"$ref": "#/$defs/item"}, "minItems": 1}},
            "$defs": {"item": {"type": "object", "properties": {"sku": {"enum": ["a", "b"]}}}}});
        assert!(paths(schema, json!({"id": "ord_1", "amount": 3, "items": [{"sku": "a"}]})).is_empty());
    }

    #[test]
    fn each_violation_names_its_path_and_reason() {
        let schema = json!({"type": "object", "required": ["id", "amount"], "additionalProperties": false,
            "properties": {
                "id": {"type": "string", "maxLength": 3},
                "amount": {"type": "number", "exclusiveMinimum": 0},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
                "a/b": {"const": 1}}});
        let found = paths(schema, json!({"id": "toolong", "tags": ["x", 2, "x"], "extra": true, "a/b": 2}));
        assert_eq!(
            found,
            vec![
                ("".to_owned(), "is missing the required property \"amount\"".to_owned()),
                ("/a~1b".to_owned(), "must be 1".to_owned()),
                ("/extra".to_owned(), "is not an allowed property".to_owned()),
                ("/id".to_owned(), "must be at most 3 characters long".to_owned()),
                ("/tags".to_owned(), "must not repeat an item".to_owned()),
                ("/tags/1".to_owned(), "must be string, not a number".to_owned()),
            ]
        );
    }

    #[test]
    fn combinators_and_integer_types_are_checked() {
        let schema = json!({"oneOf": [{"type": "integer"}, {"type": "string"}]});
        assert!(paths(schema.clone(), json!(3)).is_empty());
        assert_eq!(paths(schema, json!(3.5)).len(), 1);
        assert_eq!(paths(json!({"not": {"type": "null"}}), json!(null)).len(), 1);
        assert_eq!(paths(json!({"multipleOf": 0.1}), json!(0.3)), vec![]);
        assert_eq!(paths(json!({"multipleOf": 2}), json!(3)).len(), 1);
    }

    #[test]
    fn violations_are_capped_and_recursion_is_bounded() {
        let schema = json!({"type": "array", "items": {"type": "string"}});
        let many: Vec<Value> = (0..100).map(Value::from).collect();
        assert_eq!(violations(&schema, &Value::Array(many)).len(), MAX_VIOLATIONS);
        let looping = json!({"$ref": "#"});
        assert!(violations(&looping, &json!({})).is_empty());
    }
}
