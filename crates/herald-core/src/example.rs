//! Example payloads for an event type: the JSON Schema's own `examples` when it has them,
//! otherwise one generated from the schema (types, required properties, `enum`, `const`,
//! `default`, formats, lengths and bounds), so every event type can be sent to test a receiver.

use serde_json::{Map, Value, json};

/// How deep a generated example nests (and `$ref`s are followed) at most.
const MAX_DEPTH: usize = 8;

/// The schema's `examples[index]` when it lists examples; `Err` names the count when the
/// index is past them. Without examples, one generated from the schema.
pub fn pick(schema: &Value, index: usize) -> Result<Value, usize> {
    match schema.get("examples").and_then(Value::as_array) {
        Some(examples) if !examples.is_empty() => examples.get(index).cloned().ok_or(examples.len()),
        _ => Ok(generate(schema)),
    }
}

/// A value the schema accepts, made up from what it says.
pub fn generate(schema: &Value) -> Value {
    value(schema, schema, 0)
}

fn value(schema: &Value, root: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    let Some(object) = schema.as_object() else { return Value::Null };
    if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
        return resolve(reference, root).map_or(Value::Null, |target| value(target, root, depth + 1));
    }
    for known in ["const", "default"] {
        if let Some(v) = object.get(known) {
            return v.clone();
        }
    }
    if let Some(first) = object.get("examples").and_then(Value::as_array).and_then(|e| e.first()) {
        return first.clone();
    }
    if let Some(first) = object.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
        return first.clone();
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        if let Some(first) = object.get(combinator).and_then(Value::as_array).and_then(|s| s.first()) {
            return value(first, root, depth + 1);
        }
    }
    let kind = match object.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(Value::Array(kinds)) => {
            kinds.iter().filter_map(Value::as_str).find(|k| *k != "null").unwrap_or("null")
        }
        _ if object.contains_key("properties") => "object",
        _ if object.contains_key("items") => "array",
        _ => "object",
    };
    match kind {
        "object" => {
            let mut out = Map::new();
            if let Some(properties) = object.get("properties").and_then(Value::as_object) {
                for (name, property) in properties {
                    out.insert(name.clone(), value(property, root, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let item = object.get("items").map_or(Value::Null, |items| value(items, root, depth + 1));
            let count = object.get("minItems").and_then(Value::as_u64).unwrap_or(1).clamp(1, 3);
            Value::Array(vec![item; count as usize])
        }
        "string" => string(object),
        "integer" => json!(bound(object).round() as i64),
        "number" => json!(bound(object)),
        "boolean" => json!(true),
        _ => Value::Null,
    }
}

/// A number within `minimum`/`maximum` (and their exclusive forms).
fn bound(object: &Map<String, Value>) -> f64 {
    let get = |key: &str| object.get(key).and_then(Value::as_f64);
    match (get("minimum"), get("exclusiveMinimum"), get("maximum"), get("exclusiveMaximum")) {
        (Some(min), _, _, _) => min,
        (None, Some(min), _, _) => min + 1.0,
        (None, None, Some(max), _) => max.min(1.0),
        (None, None, None, Some(max)) => (max - 1.0).min(1.0),
        _ => 1.0,
    }
}

fn string(object: &Map<String, Value>) -> Value {
    let text = match object.get("format").and_then(Value::as_str) {
        Some("date-time") => "2026-01-01T00:00:00Z".to_owned(),
        Some("date") => "2026-01-01".to_owned(),
        Some("time") => "00:00:00Z".to_owned(),
        Some("email") => "user@example.com".to_owned(),
        Some("uri" | "url") => "https://example.com/".to_owned(),
        Some("uuid") => "00000000-0000-4000-8000-000000000000".to_owned(),
        Some("ipv4") => "192.0.2.1".to_owned(),
        Some("ipv6") => "2001:db8::1".to_owned(),
        Some("hostname") => "example.com".to_owned(),
        _ => "string".to_owned(),
    };
    let min = object.get("minLength").and_then(Value::as_u64).unwrap_or(0).min(1024) as usize;
    let max = object.get("maxLength").and_then(Value::as_u64).map_or(usize::MAX, |m| m as usize);
    let mut text = text;
    while text.len() < min {
        text.push('x');
    }
    text.truncate(max.max(min));
    Value::String(text)
}

/// A local reference (`#/definitions/x`, `#/$defs/x`) in the root schema.
fn resolve<'a>(reference: &str, root: &'a Value) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    root.pointer(pointer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schemas_examples_come_first_and_an_index_past_them_says_how_many() {
        let schema = json!({"type": "object", "examples": [{"a": 1}, {"a": 2}]});
        assert_eq!(pick(&schema, 1), Ok(json!({"a": 2})));
        assert_eq!(pick(&schema, 5), Err(2));
    }

    #[test]
    fn a_generated_example_follows_types_formats_enums_and_refs() {
        let schema = json!({
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "status": {"enum": ["paid", "refunded"]},
                "amount": {"type": "integer", "minimum": 100},
                "ratio": {"type": "number", "exclusiveMaximum": 0.5},
                "tags": {"type": "array", "items": {"type": "string", "minLength": 8}},
                "customer": {"$ref": "#/$defs/customer"},
                "note": {"type": ["null", "string"], "maxLength": 3},
                "live": {"type": "boolean", "default": false}
            },
            "$defs": {"customer": {"type": "object", "properties": {"email": {"type": "string", "format": "email"}}}}
        });
        assert_eq!(
            generate(&schema),
            json!({
                "id": "00000000-0000-4000-8000-000000000000",
                "status": "paid",
                "amount": 100,
                "ratio": -0.5,
                "tags": ["stringxx"],
                "customer": {"email": "user@example.com"},
                "note": "str",
                "live": false
            })
        );
    }

    #[test]
    fn self_referencing_schemas_stop_at_the_depth_limit() {
        let schema = json!({"type": "object", "properties": {"child": {"$ref": "#"}}});
        let mut nested = &generate(&schema);
        let mut depth = 0;
        while let Some(child) = nested.get("child") {
            nested = child;
            depth += 1;
        }
        assert!(depth <= MAX_DEPTH, "{depth}");
    }
}
