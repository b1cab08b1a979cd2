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

# GET /docs loads Swagger UI from jsDelivr, which serves npm packages'
# files as published: every file the page names must carry the SHA-384 of
# that file in the npm package, or browsers refuse to run it.
page=src/net/api_docs.rs
version=$(grep -o 'swagger-ui-dist@[0-9.]*' "$page" | sort -u)
if [ "$(echo "$version" | wc -l)" != 1 ]; then
  echo "expected one swagger-ui-dist version in $page, found: $version" >&2
  exit 1
fi
package=$(mktemp -d)
trap 'rm -rf "$package"' EXIT
(cd "$package" && npm pack --silent "$version" >/dev/null && tar xzf ./*.tgz)
checked=0
while read -r file hash; do
  actual="sha384-$(openssl dgst -sha384 -binary "$package/package/$file" | openssl base64 -A)"
  if [ "$actual" != "$hash" ]; then
    echo "$page: $file of $version has $actual, the page says $hash" >&2
    exit 1
  fi
  checked=$((checked + 1))
done < <(grep -o "$version/[a-z.-]*\" integrity=\"sha384-[A-Za-z0-9+/=]*" "$page" \
  | sed -E 's|^[^/]*/([a-z.-]*)" integrity="(.*)$|\1 \2|')
if [ "$checked" != 2 ]; then
  echo "expected the page's 2 files with integrity hashes, checked $checked" >&2
  exit 1
fi
echo "GET /docs: the 2 files of $version match their integrity hashes"
