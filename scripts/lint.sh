#!/usr/bin/env bash
# Static checks of the whole module: gofmt, go vet, whether go.mod and go.sum
# are tidy, and staticcheck (pinned). scripts/test.sh runs this first; see
# docs/testing.md.
# Usage: scripts/lint.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

# Pinned, and run with go run pkg@version so that go.mod stays free of it.
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2

echo "== gofmt and go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...

echo "== go mod tidy"
# -e: plain tidy fails here on a test-only dependency of modernc.org/sqlite
# that the module proxy refuses (docs/testing.md).
if ! tidy_diff=$(go mod tidy -e -diff 2>&1); then
	echo "go.mod/go.sum are not tidy; run go mod tidy -e and commit the result:" >&2
	echo "$tidy_diff" >&2
	exit 1
fi

echo "== staticcheck (${STATICCHECK#*@})"
go run "$STATICCHECK" ./...
