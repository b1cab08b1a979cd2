#!/usr/bin/env bash
# Validates docs/openapi.json (served at GET /openapi.json) against the
# OpenAPI 3.1 specification with Redocly's linter, structural rules only
# (its "minimal" set: warnings are style advice and do not fail). Installs
# the linter under target/redocly with npm the first time.
# tests/api_docs.rs checks the other half: that the document lists exactly
# the routes and methods the service answers.
set -euo pipefail
cd "$(dirname "$0")/.."

REDOCLY=target/redocly/node_modules/.bin/redocly
if [ ! -x "$REDOCLY" ]; then
  npm install --prefix target/redocly --no-audit --no-fund --silent @redocly/cli@2.77.0 >/dev/null
fi
"$REDOCLY" lint docs/openapi.json --extends=minimal --format=stylish 2>&1 \
  | grep -v -e '^ *[║╔╚]' -e '^$'
