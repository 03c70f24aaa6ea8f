//! The GraphiQL playground at `GET /graphql`, served entirely by the binary:
//! GraphiQL's and React's production scripts are vendored in
//! `assets/graphiql/` (versions, checksums and licences in its README) and
//! embedded at compile time, and the page's content-security policy allows
//! no other origin. So the playground works on a plane, behind a proxy or in
//! an air-gapped cluster, and a compromised CDN cannot script it.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Where the assets are served.
pub const ASSET_PATH: &str = "/graphiql/{file}";

/// The page's policy: its own scripts, styles, images and fonts, requests
/// to its own origin only. GraphiQL sets element styles, hence
/// `'unsafe-inline'` for styles (never for scripts).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Each asset: its name under `/graphiql/`, media type and bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    ),
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.css"),
    ),
    (
        "playground.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/playground.js"),
    ),
    (
        "playground.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/graphiql/playground.css"),
    ),
];

/// The playground page; `authorization` is the header GraphiQL sends with
/// every request (the demo token), if any.
pub fn page(endpoint: &str, authorization: Option<&str>) -> Response {
    let headers = match authorization {
        Some(value) => json!({ "Authorization": value }),
        None => json!({}),
    };
    let config = json!({ "endpoint": endpoint, "headers": headers }).to_string();
    // JSON inside <script> ends at the first "</": escape every one.
    let config = config.replace("</", "<\\/");
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>usergraph</title>
<link rel="stylesheet" href="/graphiql/graphiql.min.css">
<link rel="stylesheet" href="/graphiql/playground.css">
</head>
<body>
<div id="graphiql">Loading the playground…</div>
<script id="playground-config" type="application/json">{config}</script>
<script src="/graphiql/react.production.min.js"></script>
<script src="/graphiql/react-dom.production.min.js"></script>
<script src="/graphiql/graphiql.min.js"></script>
<script src="/graphiql/playground.js"></script>
</body>
</html>
"#
    );
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

/// `GET /graphiql/{file}`: one of the embedded assets.
pub async fn asset(Path(file): Path<String>) -> Response {
    let Some((_, media_type, bytes)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, *media_type),
            // The names carry no version: revalidate after a day at most.
            (header::CACHE_CONTROL, "public, max-age=86400"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        *bytes,
    )
        .into_response()
}
