//! The API's own description, served as FastAPI (the original's framework)
//! serves it: the OpenAPI document at `GET /openapi.json` (for client
//! generators, Postman's import and other tools) and a Swagger UI page
//! reading it at `GET /docs`. The document is `docs/openapi.json`;
//! `tests/api_docs.rs` checks that it lists exactly the routes served.

/// `GET /openapi.json`: OpenAPI 3.1.
pub const OPENAPI_JSON: &str = include_str!("../../docs/openapi.json");

/// `GET /docs`: Swagger UI, its script and style from the jsDelivr CDN as
/// FastAPI's page loads them, pointed at `/openapi.json`. Unlike FastAPI's,
/// the version is pinned and each file carries its SHA-384 (subresource
/// integrity), so the browser runs nothing but the files of that release
/// (`scripts/openapi_check.sh` checks the hashes against npm's package).
pub const DOCS_HTML: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>orderbook - Swagger UI</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.35.0/swagger-ui.css" integrity="sha384-WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I" crossorigin="anonymous">
</head>
<body>
<div id="swagger-ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.35.0/swagger-ui-bundle.js" integrity="sha384-gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9" crossorigin="anonymous"></script>
<script>
SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });
</script>
</body>
</html>
"##;

/// The `Content-Type` of [`DOCS_HTML`].
pub const HTML: &str = "text/html; charset=utf-8";
