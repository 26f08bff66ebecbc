package proxy_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaystation/relay/internal/fakeanthropic"
)

// processCPU is the CPU time (user and system) this process has used, from
// /proc/self/stat; the test is skipped where there is no /proc.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		tb.Skipf("no /proc/self/stat: %v", err)
	}
	// After the command name, which ends at the last ')', state is field
	// 3; utime is 14 and stime 15, in USER_HZ (100) ticks.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		tb.Fatalf("/proc/self/stat: %q", b)
	}
	return time.Duration(u+s) * (time.Second / 100)
}

// cpuBudget scales a CPU budget set for a build without the race detector
// to this build: the race detector makes this code 5 to 15 times dearer
// (measured on a loaded 2-core machine), so under -race, which is how
// `make test` runs, the budget is raceCPUFactor times larger, and the
// assertion still runs. Each budget is several times what the plain build
// measures, which covers the rest.
func cpuBudget(d time.Duration) time.Duration {
	if raceEnabled {
		return d * raceCPUFactor
	}
	return d
}

// raceCPUFactor is how much more CPU a budget allows under the race
// detector.
const raceCPUFactor = 10

// nestedBody is a Messages body of about size bytes whose one user message
// holds unit (a content block) repeated, then a text block.
func nestedBody(size int, unit string) string {
	var b strings.Builder
	b.Grow(size + len(unit) + 128)
	b.WriteString(`{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":[`)
	for b.Len() < size {
		b.WriteString(unit)
		b.WriteByte(',')
	}
	b.WriteString(`{"type":"text","text":"end"}]}]}`)
	return b.String()
}

// hostileUnits are content blocks nesting as deep as the relay accepts
// (1000 levels; the content array is level 4), in the shapes that cost the
// strict parser or the estimator most before they were made linear.
var hostileUnits = map[string]string{
	// An escape anywhere makes the parser look for file ids.
	"arrays":  strings.Repeat("[", 995) + `"\u0078"` + strings.Repeat("]", 995),
	"objects": strings.Repeat(`{"a":`, 995) + `"\u0078"` + strings.Repeat("}", 995),
	// Blocks whose type comes after their content, at every level.
	"results_type_last": strings.Repeat(`{"content":[`, 497) + `{"type":"text","text":"x"}` +
		strings.Repeat(`],"type":"tool_result"}`, 497),
	"documents_type_last": strings.Repeat(`{"source":{"content":[`, 331) + `{"type":"text","text":"x"}` +
		strings.Repeat(`],"type":"content"},"type":"document"}`, 331),
	// Blocks with two types at every level.
	"two_types": strings.Repeat(`{"type":"tool_result","content":[`, 497) + `{"type":"text","text":"x"}` +
		strings.Repeat(`],"type":"search_result"}`, 497),
	"server_results": strings.Repeat(`{"type":"web_fetch_tool_result","content":`, 995) + `{"type":"text","text":"x"}` +
		strings.Repeat("}", 995),
}

// spendQuota gives the key a token_limit its settled usage has reached.
func (e *proxyEnv) spendQuota(raw string, limit, used int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := e.keys[raw]
	k.TokenLimit, k.TokensUsed = &limit, used
	e.keys[raw] = k
	e.byHash[k.KeyHash] = k
}

// TestProxySpentQuotaRefusalIsCheap: six 30 MB bodies nested 1000 levels
// deep, on a key whose settled usage has reached its token_limit, cost
// less than 3 CPU-seconds in all (the whole process, client included),
// because the quota refusal comes before the body is parsed. Each is a
// 429 that says no retry can succeed, and nothing goes upstream.
func TestProxySpentQuotaRefusalIsCheap(t *testing.T) {
	env := newProxyEnv(t, proxyEnvOptions{noLog: true})
	env.spendQuota(env.good, 1_000_000, 1_000_000)
	var bodies []string
	for _, unit := range hostileUnits {
		bodies = append(bodies, nestedBody(30<<20, unit))
	}
	budget := cpuBudget(3 * time.Second)
	start := processCPU(t)
	for _, body := range bodies {
		resp, b := proxyDo(t, env.newRequest(context.Background(), "/v1/messages", body))
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("x-should-retry") != "false" ||
			anthropicError(t, string(b)) != "rate_limit_error" || !strings.Contains(string(b), "quota exhausted") {
			t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, b)
		}
	}
	used := processCPU(t) - start
	t.Logf("%d refusals of 30 MB bodies: %v of CPU (budget %v)", len(bodies), used, budget)
	if used > budget {
		t.Fatalf("%d refusals cost %v of CPU, over %v", len(bodies), used, budget)
	}
	if n := env.fake.Count(); n != 0 {
		t.Fatalf("%d refused requests reached the upstream", n)
	}
}

// TestProxyLargeNestedBodyCostIsLinear: a key with quota left sends a body
// nested 1000 levels deep, with text beside every nest, whose cheap input
// bound does not fit its quota, so the relay parses it, bounds it and
// tokenises it before it goes upstream. The answer is the upstream's, billed
// as it reported; 30 MB costs about ten times what 3 MB does (linear), and
// less than 2 CPU-seconds.
func TestProxyLargeNestedBodyCostIsLinear(t *testing.T) {
	fake := fakeanthropic.Usage{InputTokens: 900, OutputTokens: 100}
	est := mustEstimator(t)
	prose := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 40)
	// Text below 32 levels counts its raw bytes, unread: the text the
	// estimate tokenises sits at the top, beside each nest.
	unit := `{"type":"text","text":"` + prose + `"},` +
		strings.Repeat(`{"type":"tool_result","tool_use_id":"t","content":[`, 497) +
		`{"type":"text","text":"` + prose + `"}` + strings.Repeat("]}", 497)
	cost := func(size int) time.Duration {
		env := newProxyEnv(t, proxyEnvOptions{noLog: true, fake: fakeanthropic.Options{Usage: fake}})
		body := nestedBody(size, unit)
		loose := est.InputBound([]byte(body))
		tight, err := est.InputEstimate(context.Background(), []byte(body))
		if err != nil || tight >= loose {
			t.Fatalf("estimate %d (%v), bound %d: the test needs the estimate below the bound", tight, err, loose)
		}
		// Room for the tight estimate only, and settled usage besides.
		used := int64(5_000)
		env.spendQuota(env.good, used+1024+(tight+loose)/2, used)
		start := processCPU(t)
		resp, b := proxyDo(t, env.newRequest(context.Background(), "/v1/messages", body))
		spent := processCPU(t) - start
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"output_tokens":100`) {
			t.Fatalf("%d MB: %d %s", size>>20, resp.StatusCode, b)
		}
		r := env.waitRecords(1)[0]
		if r.Usage.InputTokens != fake.InputTokens || r.Usage.OutputTokens != fake.OutputTokens || r.Estimated {
			t.Fatalf("%d MB billed %+v", size>>20, r)
		}
		if got := env.fake.Last(); got == nil || len(got.Body) != len(body) {
			t.Fatalf("%d MB: the upstream did not get the body whole", size>>20)
		}
		t.Logf("%d MB body: %v of CPU (bound %d, estimate %d tokens)", size>>20, spent, loose, tight)
		return spent
	}
	small := cost(3 << 20)
	large := cost(30 << 20)
	if budget := cpuBudget(2 * time.Second); large > budget {
		t.Fatalf("a 30 MB body cost %v of CPU, over %v", large, budget)
	}
	// Ten times the bytes; /proc counts in 10 ms ticks, hence the floor.
	if ratio := float64(large) / float64(max(small, 50*time.Millisecond)); ratio > 20 {
		t.Fatalf("30 MB cost %.1f times what 3 MB did (%v, %v): not linear", ratio, large, small)
	}
}
