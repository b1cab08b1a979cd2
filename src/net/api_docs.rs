//! The API's own description, served as FastAPI (the original's framework)
//! serves it: the OpenAPI document at `GET /openapi.json` (for client
//! generators, Postman's import and other tools) and a Swagger UI page
//! reading it at `GET /docs`. The document is `docs/openapi.json`;
//! `tests/api_docs.rs` checks that it lists exactly the routes served.

/// `GET /openapi.json`: OpenAPI 3.1.
pub const OPENAPI_JSON: &str = include_str!("../../docs/openapi.json");

/// `GET /docs`: Swagger UI, its script and style from the jsDelivr CDN as
/// FastAPI's page loads them, pointed at `/openapi.json`.
pub const DOCS_HTML: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>orderbook - Swagger UI</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>
SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });
</script>
</body>
</html>
"##;

/// The `Content-Type` of [`DOCS_HTML`].
pub const HTML: &str = "text/html; charset=utf-8";
