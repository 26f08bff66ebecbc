#!/usr/bin/env bash
# Smoke test with the real clients: Claude Code (both auth variables) and
# the official TypeScript SDK, through a freshly built relay, against the
# in-repo fake Anthropic upstream. Needs Node.js and the npm registry.
#   make smoke
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

echo "smoke: installing Claude Code and @anthropic-ai/sdk into $work"
(cd "$work" && npm install --silent --no-audit --no-fund @anthropic-ai/claude-code @anthropic-ai/sdk >/dev/null)
CGO_ENABLED=0 go build -o "$work/relay" ./cmd/relay
go build -o "$work/fakeanthropic" ./internal/fakeanthropic/cmd/fakeanthropic

fake_port=$((20000 + RANDOM % 10000)); relay_port=$((fake_port + 1))
"$work/fakeanthropic" -addr "127.0.0.1:$fake_port" -deltas 5 -text "smoke-ok " >"$work/fake.log" 2>&1 & pids+=($!)
DATA_DIR="$work/data" LISTEN_ADDR="127.0.0.1:$relay_port" UPSTREAM_URL="http://127.0.0.1:$fake_port/v1" \
  UPSTREAM_API_KEY=sk-ant-smoke-upstream ADMIN_PASSWORD=smoke-admin-pass "$work/relay" serve >"$work/relay.log" 2>&1 & pids+=($!)
base="http://127.0.0.1:$relay_port"
for _ in $(seq 1 50); do curl -sf "$base/ready" >/dev/null && break; sleep 0.2; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
token=$(curl -sf -X POST -u admin:smoke-admin-pass "$base/admin/login" | json '["access_token"]')
key=$(curl -sf -X POST "$base/admin/api-keys" -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"name":"smoke","token_limit":1000000}' | json '["api_key"]')

export ANTHROPIC_BASE_URL="$base" DISABLE_TELEMETRY=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1
fail=0
out=$(ANTHROPIC_API_KEY="$key" timeout 120 "$work/node_modules/.bin/claude" -p "say hello" 2>&1) || true
if grep -q "smoke-ok" <<<"$out"; then echo "smoke: Claude Code with ANTHROPIC_API_KEY: ok"; else echo "smoke: Claude Code with ANTHROPIC_API_KEY FAILED: $out"; fail=1; fi
out=$(ANTHROPIC_AUTH_TOKEN="$key" timeout 120 "$work/node_modules/.bin/claude" -p "say hello" 2>&1) || true
if grep -q "smoke-ok" <<<"$out"; then echo "smoke: Claude Code with ANTHROPIC_AUTH_TOKEN: ok"; else echo "smoke: Claude Code with ANTHROPIC_AUTH_TOKEN FAILED: $out"; fail=1; fi

cat >"$work/sdk.mjs" <<'JS'
import Anthropic from '@anthropic-ai/sdk';
const c = new Anthropic({ baseURL: process.env.BASE, apiKey: process.env.KEY });
const m = await c.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
if (!m.usage || m.usage.input_tokens <= 0) throw new Error('no usage');
let n = 0;
const s = c.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
s.on('text', () => n++);
await s.finalMessage();
if (n !== 5) throw new Error('stream deltas: ' + n);
console.log('smoke: TypeScript SDK create + stream: ok');
JS
(cd "$work" && BASE="$base" KEY="$key" node sdk.mjs) || fail=1

used=$(curl -sf "$base/api/usage/quota" -H "x-api-key: $key" | json '["tokens_used"]')
for _ in $(seq 1 20); do [ "$used" -gt 0 ] && break; sleep 0.2; used=$(curl -sf "$base/api/usage/quota" -H "x-api-key: $key" | json '["tokens_used"]'); done
echo "smoke: tokens_used recorded for the key: $used"
[ "$used" -gt 0 ] || fail=1
if grep -q "$key" "$work/relay.log"; then echo "smoke: the proxy key leaked into the log"; fail=1; fi
# Paths the clients asked for that the endpoint catalogue refused (an
# endpoint Claude Code needs would show here).
refused=$(grep '"msg":"proxied"' "$work/relay.log" | grep -E '"status":(400|404|405|415)' | sed -E 's/.*"path":"([^"]*)".*"status":([0-9]+).*/\2 \1/' | sort | uniq -c || true)
echo "smoke: Claude Code $("$work/node_modules/.bin/claude" --version 2>/dev/null | head -1); refused by the catalogue: ${refused:-none}"
exit $fail
