#!/usr/bin/env bash
# The dependency rule: domain/ and ports/ import no adapter, no echo, pgx,
# sqlc output, generated API types or koanf; echo stays inside adapters/http
# (and the generated server stubs it mounts).
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)
fail=0

forbidden_inner='github.com/labstack/echo|github.com/jackc/pgx|github.com/knadh/koanf|modernc.org/sqlite|github.com/redis/go-redis|github.com/prometheus|'"$mod"'/adapters|'"$mod"'/api|'"$mod"'/config|'"$mod"'/cmd'
for pkg in $(go list ./domain/... ./ports/...); do
  bad=$(go list -deps -f '{{.ImportPath}}' "$pkg" | grep -E "^($forbidden_inner)" || true)
  if [ -n "$bad" ]; then
    echo "depcheck: $pkg must not depend on:"; echo "$bad" | sed 's/^/    /'
    fail=1
  fi
done

for pkg in $(go list ./...); do
  case "$pkg" in
    "$mod"/adapters/http|"$mod"/adapters/http/*|"$mod"/api|"$mod"/api/*) continue ;;
  esac
  if go list -f '{{join .Imports "\n"}}' "$pkg" | grep -q '^github.com/labstack/echo'; then
    echo "depcheck: $pkg imports echo; keep echo inside adapters/http"
    fail=1
  fi
done

if [ $fail -ne 0 ]; then exit 1; fi
echo "depcheck: ok"
