#!/usr/bin/env bash
# Checks the deploy assets without Docker (make-callable: `deploy/check.sh`):
#   - builds ./cmd/relay exactly as the Dockerfile does (static, trimmed);
#   - promtool: alert rules syntax, alert unit tests, prometheus.yml;
#   - shellcheck on the scripts;
#   - `docker compose config` for compose syntax;
#   - the Go tests of deploy/ and adapters/metrics (dashboard and alert
#     metric names against the registry).
# A tool that is not installed is skipped with a message.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"

step() { printf '\n== %s\n' "$*"; }
skip() { printf 'SKIP: %s\n' "$*"; }

step "static build (Dockerfile flags)"
out="${RELAY_STATIC_OUT:-/tmp/relay-static}"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=check" -o "${out}" ./cmd/relay
if command -v file >/dev/null 2>&1; then
	file "${out}" | grep -q 'statically linked' || {
		file "${out}"
		echo "FAIL: ${out} is not statically linked" >&2
		exit 1
	}
fi
echo "ok: ${out}"

step "promtool"
if command -v promtool >/dev/null 2>&1; then
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml
	# check config resolves rule_files and the token file relative to the
	# config, so check a copy laid out like the container's /etc/prometheus.
	tmp="$(mktemp -d)"
	trap 'rm -rf "${tmp}"' EXIT
	cp deploy/prometheus/alerts.yml "${tmp}/"
	: >"${tmp}/metrics_token"
	sed "s#/etc/prometheus/metrics_token#${tmp}/metrics_token#" deploy/prometheus/prometheus.yml >"${tmp}/prometheus.yml"
	promtool check config "${tmp}/prometheus.yml"
else
	skip "promtool not installed (apt-get install prometheus)"
fi

step "shellcheck"
if command -v shellcheck >/dev/null 2>&1; then
	shellcheck deploy/deploy.sh deploy/check.sh
	echo "ok"
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
	docker compose --env-file "${env_file}" -f deploy/docker-compose.yml config --quiet
	rm -f "${env_file}"
	echo "ok"
else
	skip "the docker compose plugin is not installed"
fi

step "go tests"
go test -race ./deploy/... ./adapters/metrics/...
