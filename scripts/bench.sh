#!/usr/bin/env bash
# make bench: the relay against a bare reverse proxy and against going
# direct to a fake upstream, on this machine. Needs only Go; PostgreSQL at
# BENCH_PG (or the default below) adds the relay-on-PostgreSQL column.
#
#   BENCH_QUICK=1 ./scripts/bench.sh       smoke test, every phase ~1 s
#   BENCH_PG= ./scripts/bench.sh           skip the PostgreSQL relay
#   BENCH_ARGS="-rounds 5" ./scripts/bench.sh
#   ./scripts/bench.sh -strict             extra flags go to benchrun (-help lists them)
#
# Results: a table on stdout, JSON in bench-results/ (latest.json).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
PG_URL=${BENCH_PG-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}

# Each open stream costs the relay two sockets: raise the soft limit.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ]; then hard=1048576; fi
ulimit -n "$hard" 2>/dev/null || ulimit -n 65536 2>/dev/null || true
echo "bench: open-files limit $(ulimit -n)" >&2

# nginx (Debian's nginx-light) is the reference column: what a proxy can
# cost. Installed here when missing and possible; otherwise skipped.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bench: installing nginx-light (the reference proxy)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light >&2 ||
      echo "bench: could not install nginx-light: its column is skipped" >&2
  else
    echo "bench: nginx is not installed (apt-get install nginx-light): its column is skipped" >&2
  fi
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/relay-bench-bin.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

relay_flag=(-relay bin/relay)
build_failed=0
if ! make --no-print-directory build >&2; then
  echo "bench: 'make build' FAILED: the relay cannot be measured; measuring direct and the bare proxy only" >&2
  relay_flag=(-relay "")
  build_failed=1
fi

CGO_ENABLED=0 "$GO" build -trimpath -o "$tmp/" ./internal/bench/cmd/benchrun ./internal/bench/cmd/bareproxy

args=(-bareproxy "$tmp/bareproxy" -pg "$PG_URL" -out bench-results)
if [ "${BENCH_QUICK:-0}" = 1 ]; then args+=(-quick); fi
# shellcheck disable=SC2206 # BENCH_ARGS is split on purpose
extra=(${BENCH_ARGS:-})

rc=0
"$tmp/benchrun" "${relay_flag[@]}" "${args[@]}" ${extra[@]+"${extra[@]}"} "$@" || rc=$?
if [ "$rc" -eq 0 ] && [ "$build_failed" -eq 1 ]; then rc=1; fi

# The hot-path figures of the quota issue, from the packages' own Go
# benchmarks: admission + settlement with the in-process adapters (target
# < 20 µs), and the usage writer's store throughput (targets: >= 20,000
# records/s on PostgreSQL, >= 5,000 on SQLite).
echo
echo "hot-path benchmarks (go test -bench):"
benchtime=40x
if [ "${BENCH_QUICK:-0}" = 1 ]; then benchtime=5x; fi
"$GO" test -run '^$' -bench 'BenchmarkAdmitSettle' -benchmem ./domain/relay/ | grep -E '^Benchmark' || rc=1
"$GO" test -run '^$' -bench 'BenchmarkAdmission$' -benchmem ./adapters/memory/ | grep -E '^Benchmark' || rc=1
# Allocations per request, relay handler against a bare ReverseProxy in the
# same run (the performance issue: at most the bare proxy's).
proxytime=2000x
if [ "${BENCH_QUICK:-0}" = 1 ]; then proxytime=200x; fi
"$GO" test -run '^$' -bench 'BenchmarkProxy$' -benchmem -benchtime "$proxytime" ./adapters/proxy/ | grep -E '^Benchmark' || rc=1
for store in sqlite postgres; do
  printf '%-9s ' "$store"
  TEST_DATABASE_URL=${TEST_DATABASE_URL:-${PG_URL}} "$GO" test -run '^$' -bench 'BenchmarkInsertUsage' -benchtime "$benchtime" "./adapters/$store/" \
    | grep -E '^Benchmark|SKIP' || echo "(no result: is PostgreSQL at TEST_DATABASE_URL?)"
done
exit "$rc"
