//! The web pages: the operator dashboard at `/ui` and the customer portal at `/portal`, and
//! the files they load from `/ui/assets/`, all embedded in the binary.
//!
//! Every URL in the pages is relative (assets as `ui/assets/…` from a page at `<root>/ui` or
//! `<root>/portal`; API calls from `api.js`'s own location), so Herald also works behind a
//! reverse proxy that serves it under a path prefix. For that the pages' addresses have no
//! trailing slash: `/ui/` and `/portal/` redirect to `../ui` and `../portal` (relative, so the
//! prefix stays), and `/` to `ui`.
//!
//! The pages hold no data and need no token. Everything they show comes from the public API,
//! called from the browser with the token its user holds (an organisation token pasted into
//! the dashboard, the application token in the portal link's fragment). This module must not
//! grow routes that only the pages use: the pages use the same API as everyone else.

use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::api::ApiState;
use crate::api::error::ApiError;

/// What a page may load and do: its own scripts, styles and API only; no inline script or
/// style, no plugins, no form posts, no `<base>`, and DOM sinks that take strings (innerHTML)
/// refuse them (Trusted Types), so text from the API can only ever become text.
const CSP_COMMON: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; require-trusted-types-for 'script'";

/// One embedded file.
#[derive(Debug)]
struct Asset {
    /// The name under `/ui/assets/`.
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// Embeds `crates/herald/ui/<name>`.
macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/", $name)),
        }
    };
}

const DASHBOARD_HTML: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/dashboard.html"));
const PORTAL_HTML: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/portal.html"));

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the pages load. Plain files, no build step: what is here is what runs.
const ASSETS: &[Asset] = &[
    asset!("herald.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("router.js", JS),
    asset!("charts.js", JS),
    asset!("prometheus.js", JS),
    asset!("views-endpoint.js", JS),
    asset!("views-message.js", JS),
    asset!("views-overview.js", JS),
    asset!("views-apps.js", JS),
    asset!("views-sources.js", JS),
    asset!("dashboard.js", JS),
    asset!("portal.js", JS),
];

/// Headers every UI response carries.
fn common_headers() -> [(HeaderName, HeaderValue); 3] {
    [
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        // Page URLs never carry secrets (tokens travel in the fragment), but say so anyway.
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        // Embedded files change only with the binary; revalidating is cheap and never stale.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ]
}

/// `GET /ui`: the operator dashboard. Nobody may frame it.
pub async fn dashboard() -> Response {
    let csp = format!("{CSP_COMMON}; frame-ancestors 'none'");
    (
        common_headers(),
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        ],
        [(header::CONTENT_SECURITY_POLICY, csp)],
        DASHBOARD_HTML,
    )
        .into_response()
}

/// `GET /portal`: the customer portal. Operators embed it in their own pages, so the sites
/// `portal_frame_ancestors` names (by default any) may frame it; it shows only what the link's
/// application token reaches.
pub async fn portal(State(state): State<ApiState>) -> Response {
    let csp = format!("{CSP_COMMON}; frame-ancestors {}", state.portal_frame_ancestors());
    (
        common_headers(),
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))],
        [(header::CONTENT_SECURITY_POLICY, csp)],
        PORTAL_HTML,
    )
        .into_response()
}

/// `GET /ui/assets/{name}`: a script, stylesheet or image of the pages.
pub async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let asset = ASSETS
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| ApiError::NotFound("asset not found".to_owned()))?;
    Ok((common_headers(), [(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response())
}

/// `GET /`: people who open the server's address in a browser are probably looking for the
/// dashboard.
pub async fn root() -> Redirect {
    Redirect::to("ui")
}

/// Sends `/ui/` and `/portal/` to their slash-less addresses, before paths are normalized
/// (which would serve the page at an address its relative links do not work from). The
/// redirect is relative, so a path prefix added by a proxy stays, and the fragment of a
/// portal link is kept by the browser.
pub async fn canonical_page_paths(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match request.uri().path() {
        "/ui/" => Redirect::permanent("../ui").into_response(),
        "/portal/" => Redirect::permanent("../portal").into_response(),
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_pages_import_is_embedded() {
        let embedded: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
        let sources = ASSETS.iter().map(|a| a.body).chain([DASHBOARD_HTML, PORTAL_HTML]);
        for source in sources {
            for reference in references(source) {
                assert!(embedded.contains(&reference.as_str()), "{reference} is referenced but not embedded");
            }
        }
    }

    #[test]
    fn pages_have_no_inline_scripts_or_styles() {
        for page in [DASHBOARD_HTML, PORTAL_HTML] {
            assert!(!page.contains("<script>") && !page.contains("style="), "{page}");
            assert!(!page.contains("<style"), "{page}");
        }
    }

    #[test]
    fn the_hidden_attribute_wins_over_every_class_display() {
        // `.button { display: inline-flex }` once showed the dashboard's hidden "Sign out"
        // button on the sign-in screen: a class's `display` beats the browser's own
        // `[hidden] { display: none }`, unless the stylesheet says otherwise, importantly.
        let css = ASSETS.iter().find(|a| a.name == "herald.css").map(|a| a.body).unwrap_or_default();
        let rule = css.lines().find(|line| line.starts_with("[hidden]")).unwrap_or_default();
        assert!(rule.contains("display: none !important"), "no `[hidden]` rule that wins: {rule:?}");
        assert!(DASHBOARD_HTML.contains(r#"id="sign-out" class="button secondary" hidden"#));
    }

    #[test]
    fn scripts_never_assign_html_strings() {
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
                assert!(!asset.body.contains(sink), "{} uses {sink}", asset.name);
            }
        }
    }

    #[test]
    fn pages_and_scripts_use_only_relative_urls() {
        let sources = ASSETS
            .iter()
            .map(|a| (a.name, a.body))
            .chain([("dashboard.html", DASHBOARD_HTML), ("portal.html", PORTAL_HTML)]);
        for (name, source) in sources {
            for absolute in [
                "\"/ui",
                "'/ui",
                "`/ui",
                "\"/portal",
                "'/portal",
                "fetch('/",
                "fetch(\"/",
                "href=\"/",
                "src=\"/",
            ] {
                assert!(
                    !source.contains(absolute),
                    "{name} has an absolute URL ({absolute}…), which breaks under a path prefix"
                );
            }
        }
    }

    /// The file names a page or module refers to: `ui/assets/x` and `./x.js` imports.
    fn references(source: &str) -> Vec<String> {
        let mut found = Vec::new();
        for (marker, end) in [("ui/assets/", '"'), ("from './", '\''), ("import('./", '\'')] {
            let mut rest = source;
            while let Some(start) = rest.find(marker) {
                rest = &rest[start + marker.len()..];
                if let Some(stop) = rest.find(end) {
                    found.push(rest[..stop].to_owned());
                }
            }
        }
        found
    }
}
