//! `/docs`: a readable API reference rendered from the OpenAPI document at start-up.
//!
//! One self-contained HTML page (inline CSS, no scripts, no CDN), so it works offline and
//! behind any firewall.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::response::Html;
use serde_json::Value;

/// Serves the pre-rendered page.
pub async fn serve(page: Arc<str>) -> Html<String> {
    Html(page.to_string())
}

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Renders a description: escaped for HTML, with Markdown's inline `code` as `<code>` and line
/// breaks kept. An unpaired backtick stays as it is.
fn prose(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        let is_code = i % 2 == 1 && i + 1 < parts.len();
        if is_code {
            let _ = write!(out, "<code>{}</code>", esc(part));
        } else {
            if i % 2 == 1 {
                out.push('`');
            }
            out.push_str(&esc(part).replace('\n', "<br>"));
        }
    }
    out
}

/// A short type description of a schema, linking to named schemas.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    if let Some(options) = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(Value::as_array) {
        return options.iter().map(type_of).collect::<Vec<_>>().join(" | ");
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" | "),
        _ => "any".to_owned(),
    };
    if let (true, Some(items)) = (kind.starts_with("array"), schema.get("items")) {
        return format!("array of {}", type_of(items));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values.iter().map(|v| esc(&v.to_string())).collect();
        return format!("{} ({})", esc(&kind), values.join(", "));
    }
    esc(&kind)
}

/// Renders the whole page.
pub fn render(document: &utoipa::openapi::OpenApi) -> Arc<str> {
    let doc = serde_json::to_value(document).unwrap_or_default();
    let title = doc.pointer("/info/title").and_then(Value::as_str).unwrap_or("API");
    let description = doc.pointer("/info/description").and_then(Value::as_str).unwrap_or("");
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head><body><main>\
         <h1>{t}</h1><p>{d}</p><p>Machine-readable: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>. \
         Authenticate with <code>Authorization: Bearer &lt;token&gt;</code>.</p>",
        t = esc(title),
        d = prose(description)
    );

    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        html.push_str("<h2>Operations</h2>");
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, operation) in item {
                render_operation(&mut html, method, path, operation);
            }
        }
    }
    if let Some(schemas) = doc.pointer("/components/schemas").and_then(Value::as_object) {
        html.push_str("<h2>Schemas</h2>");
        for (name, schema) in schemas {
            render_schema(&mut html, name, schema);
        }
    }
    html.push_str("</main></body></html>");
    Arc::from(html)
}

fn render_operation(html: &mut String, method: &str, path: &str, operation: &Value) {
    let summary = operation.get("summary").and_then(Value::as_str).unwrap_or("");
    let _ = write!(
        html,
        "<section class=\"op\"><h3><span class=\"m {m}\">{M}</span> <code>{p}</code></h3><p>{s}</p>",
        m = esc(method),
        M = esc(&method.to_uppercase()),
        p = esc(path),
        s = prose(summary)
    );
    if let Some(params) = operation.get("parameters").and_then(Value::as_array) {
        html.push_str("<table><tr><th>Parameter</th><th>In</th><th>Type</th><th>Description</th></tr>");
        for param in params {
            let text = |key: &str| param.get(key).and_then(Value::as_str).unwrap_or("");
            let _ = write!(
                html,
                "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(text("name")),
                if param.get("required").and_then(Value::as_bool) == Some(true) { " *" } else { "" },
                esc(text("in")),
                param.get("schema").map(type_of).unwrap_or_default(),
                prose(text("description"))
            );
        }
        html.push_str("</table>");
    }
    if let Some(body) = operation.pointer("/requestBody/content/application~1json/schema") {
        let _ = write!(html, "<p>Request body: {}</p>", type_of(body));
    }
    if let Some(responses) = operation.get("responses").and_then(Value::as_object) {
        html.push_str("<ul class=\"responses\">");
        for (status, response) in responses {
            let description = response.get("description").and_then(Value::as_str).unwrap_or("");
            let body = response
                .pointer("/content/application~1json/schema")
                .map(|schema| format!(": {}", type_of(schema)))
                .unwrap_or_default();
            let _ = write!(html, "<li><b>{}</b> {}{}</li>", esc(status), prose(description), body);
        }
        html.push_str("</ul>");
    }
    html.push_str("</section>");
}

fn render_schema(html: &mut String, name: &str, schema: &Value) {
    let _ = write!(html, "<section class=\"schema\" id=\"schema-{0}\"><h3>{0}</h3>", esc(name));
    if let Some(description) = schema.get("description").and_then(Value::as_str) {
        let _ = write!(html, "<p>{}</p>", prose(description));
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match schema.get("properties").and_then(Value::as_object) {
        Some(properties) => {
            html.push_str("<table><tr><th>Field</th><th>Type</th><th>Description</th></tr>");
            for (field, property) in properties {
                let description = property.get("description").and_then(Value::as_str).unwrap_or("");
                let _ = write!(
                    html,
                    "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(field),
                    if required.contains(&field.as_str()) { " *" } else { "" },
                    type_of(property),
                    prose(description)
                );
            }
            html.push_str("</table>");
        }
        None => {
            let _ = write!(html, "<p>Type: {}</p>", type_of(schema));
        }
    }
    html.push_str("</section>");
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1b1f24;background:#fafafa}\
main{max-width:960px;margin:auto;padding:1rem}\
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.5rem 1rem;margin:.75rem 0}\
h3{font-size:1rem;margin:.5rem 0}code{font-family:ui-monospace,monospace}\
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.5rem 0}\
td,th{border-bottom:1px solid #eee;text-align:left;padding:.25rem .5rem;vertical-align:top}\
.m{display:inline-block;min-width:4.5rem;text-align:center;border-radius:4px;color:#fff;padding:0 .25rem}\
.get{background:#1f6feb}.post{background:#1a7f37}.put{background:#9a6700}.patch{background:#8250df}\
.delete{background:#cf222e}.head{background:#57606a}\
@media (max-width:600px){td,th{display:block;border:0}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_code_is_rendered_as_code_and_escaped() {
        assert_eq!(prose("set `bearerToken` <here>"), "set <code>bearerToken</code> &lt;here&gt;");
        assert_eq!(prose("`<b>` & `a`"), "<code>&lt;b&gt;</code> &amp; <code>a</code>");
        assert_eq!(prose("one ` alone"), "one ` alone", "an unpaired backtick stays");
        assert_eq!(prose("a\nb"), "a<br>b");
    }
}
