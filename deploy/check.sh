#!/usr/bin/env bash
# Checks the deploy assets without Docker (make-callable: `deploy/check.sh`):
#   - builds ./cmd/relay exactly as the Dockerfile does (static, trimmed);
#   - promtool: alert rules syntax, alert unit tests, prometheus.yml;
#   - shellcheck on the scripts;
#   - `docker compose config` for compose syntax;
#   - the Go tests of deploy/ and adapters/metrics (dashboard and alert
#     metric names against the registry).
# A tool that is not installed is skipped with a message. Every step runs;
# the script fails at the end if any step failed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"

failed=()
step() { printf '\n== %s\n' "$*"; }
skip() { printf 'SKIP: %s\n' "$*"; }
fail() {
	printf 'FAIL: %s\n' "$*" >&2
	failed+=("$*")
}

step "static build (Dockerfile flags)"
out="${RELAY_STATIC_OUT:-/tmp/relay-static}"
if CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=check" -o "${out}" ./cmd/relay; then
	if command -v file >/dev/null 2>&1 && ! file "${out}" | grep -q 'statically linked'; then
		file "${out}"
		fail "${out} is not statically linked"
	else
		echo "ok: ${out}"
	fi
else
	fail "go build ./cmd/relay"
fi

step "promtool"
if command -v promtool >/dev/null 2>&1; then
	promtool check rules deploy/prometheus/alerts.yml || fail "promtool check rules"
	promtool test rules deploy/prometheus/alerts_test.yml || fail "promtool test rules"
	# check config resolves rule_files and the token file relative to the
	# config, so check a copy laid out like the container's /etc/prometheus.
	tmp="$(mktemp -d)"
	trap 'rm -rf "${tmp}"' EXIT
	cp deploy/prometheus/alerts.yml "${tmp}/"
	: >"${tmp}/metrics_token"
	sed "s#/etc/prometheus/metrics_token#${tmp}/metrics_token#" deploy/prometheus/prometheus.yml >"${tmp}/prometheus.yml"
	promtool check config "${tmp}/prometheus.yml" || fail "promtool check config"
else
	skip "promtool not installed (apt-get install prometheus)"
fi

step "shellcheck"
if command -v shellcheck >/dev/null 2>&1; then
	if shellcheck deploy/deploy.sh deploy/check.sh; then
		echo "ok"
	else
		fail "shellcheck"
	fi
else
	skip "shellcheck not installed"
fi

step "docker compose config"
if docker compose version >/dev/null 2>&1; then
	env_file="$(mktemp)"
	sed -e 's/^POSTGRES_PASSWORD=$/POSTGRES_PASSWORD=check/' \
		-e 's/^REDIS_PASSWORD=$/REDIS_PASSWORD=check/' \
		-e 's/^GRAFANA_ADMIN_PASSWORD=$/GRAFANA_ADMIN_PASSWORD=check/' \
		-e 's/^SECRET_KEY=$/SECRET_KEY=check/' .env.example >"${env_file}"
	if docker compose --env-file "${env_file}" -f deploy/docker-compose.yml config --quiet; then
		echo "ok"
	else
		fail "docker compose config"
	fi
	rm -f "${env_file}"
else
	skip "the docker compose plugin is not installed"
fi

step "go tests"
go test -race ./deploy/... ./adapters/metrics/... || fail "go test"

if ((${#failed[@]})); then
	printf '\n%d check(s) failed:\n' "${#failed[@]}" >&2
	printf '  - %s\n' "${failed[@]}" >&2
	exit 1
fi
printf '\nall deploy checks passed\n'
