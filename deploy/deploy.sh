#!/usr/bin/env bash
# Deploys Relay Station with Docker Compose:
#   1. makes sure ../.env exists (copied from .env.example),
#   2. generates any missing secret with `openssl rand -hex 32`,
#   3. runs `docker compose up -d --build`,
#   4. waits until http://localhost:$RELAY_PORT/ready answers 200.
#
# Environment: READY_TIMEOUT (seconds, default 180), COMPOSE_ARGS (extra
# arguments for `up`, e.g. "--no-build").
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
env_file="${root}/.env"
compose_file="${root}/deploy/docker-compose.yml"
ready_timeout="${READY_TIMEOUT:-180}"

log() { printf '%s\n' "deploy: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required but not installed"; }

# compose runs Docker Compose v2 (`docker compose`), or the v1 binary.
compose() {
	if docker compose version >/dev/null 2>&1; then
		docker compose --env-file "${env_file}" -f "${compose_file}" "$@"
	elif command -v docker-compose >/dev/null 2>&1; then
		docker-compose --env-file "${env_file}" -f "${compose_file}" "$@"
	else
		die "Docker Compose is required (docker compose plugin or docker-compose)"
	fi
}

# env_value prints the value of NAME in .env ("" when absent), without the
# surrounding quotes.
env_value() {
	local line
	line="$(grep -E "^$1=" "${env_file}" | tail -n 1 || true)"
	line="${line#*=}"
	line="${line%\"}"
	line="${line#\"}"
	line="${line%\'}"
	line="${line#\'}"
	printf '%s' "${line}"
}

# set_env NAME VALUE replaces NAME's line in .env, or appends one.
set_env() {
	local tmp
	tmp="$(mktemp "${env_file}.XXXXXX")"
	awk -v name="$1" -v value="$2" '
		BEGIN { done = 0 }
		index($0, name "=") == 1 { if (!done) { print name "=" value; done = 1 }; next }
		{ print }
		END { if (!done) print name "=" value }
	' "${env_file}" >"${tmp}"
	chmod 600 "${tmp}"
	mv "${tmp}" "${env_file}"
}

# ensure_secret NAME generates NAME when .env leaves it empty.
ensure_secret() {
	if [[ -z "$(env_value "$1")" ]]; then
		set_env "$1" "$(openssl rand -hex 32)"
		log "generated $1 in .env"
	fi
}

# http_ok URL succeeds when URL answers 2xx.
http_ok() {
	if command -v curl >/dev/null 2>&1; then
		curl -fsS -o /dev/null --max-time 5 "$1" 2>/dev/null
	else
		wget -q -O /dev/null -T 5 "$1" 2>/dev/null
	fi
}

main() {
	need docker
	need openssl
	command -v curl >/dev/null 2>&1 || need wget

	if [[ ! -f "${env_file}" ]]; then
		[[ -f "${root}/.env.example" ]] || die "neither .env nor .env.example found in ${root}"
		cp "${root}/.env.example" "${env_file}"
		chmod 600 "${env_file}"
		log "created .env from .env.example"
	fi

	ensure_secret SECRET_KEY
	ensure_secret POSTGRES_PASSWORD
	ensure_secret REDIS_PASSWORD
	ensure_secret GRAFANA_ADMIN_PASSWORD
	if [[ -z "$(env_value ADMIN_PASSWORD_HASH)" ]]; then
		ensure_secret ADMIN_PASSWORD
	fi
	if [[ -z "$(env_value UPSTREAM_API_KEY)" ]]; then
		log "warning: UPSTREAM_API_KEY is empty in .env; proxied calls will fail until it is set"
	fi

	log "starting the stack"
	# COMPOSE_ARGS is split on purpose: it holds extra flags.
	# shellcheck disable=SC2086
	compose up -d --build ${COMPOSE_ARGS:-}

	local port url deadline
	port="$(env_value RELAY_PORT)"
	url="http://localhost:${port:-8000}/ready"
	deadline=$((SECONDS + ready_timeout))
	log "waiting up to ${ready_timeout}s for ${url}"
	until http_ok "${url}"; do
		if ((SECONDS >= deadline)); then
			compose ps >&2 || true
			compose logs --tail 50 relay >&2 || true
			die "the relay did not become ready within ${ready_timeout}s"
		fi
		sleep 2
	done

	log "ready: relay on http://localhost:${port:-8000}, Grafana on http://localhost:$(env_value GRAFANA_PORT | sed 's/^$/3000/'), Prometheus on http://localhost:$(env_value PROMETHEUS_PORT | sed 's/^$/9090/')"
	log "admin credentials and generated secrets are in ${env_file}"
}

main "$@"
