package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"

	"github.com/relaystation/relay/config"
	"github.com/relaystation/relay/internal/fakeanthropic"
	"github.com/relaystation/relay/internal/testenv"
)

// procStatusKB reads one "Vm..." line of /proc/self/status, in kB.
func procStatusKB(field string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s not in /proc/self/status", field)
}

// heapResidentKB is the Go heap's memory held from the OS.
func heapResidentKB() int64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapSys-m.HeapReleased) / 1024
}

func buildSetting(key string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == key {
				return s.Value
			}
		}
	}
	return ""
}

// floodClient sends every request from the local address ip, so the relay
// sees ip as the peer.
func floodClient(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16},
		Timeout:   30 * time.Second,
	}
}

func loginFrom(c *http.Client, url, pass string) (*http.Response, error) {
	req, _ := http.NewRequest(http.MethodPost, url+"/admin/login", nil)
	req.SetBasicAuth("admin", pass)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// TestLoginFlood: about 60 concurrent wrong-password logins from 12
// loopback addresses for 10 s. Peak RSS growth stays under 600 MB (the
// bounded password checks, ~64 MB each, are what could grow it), a key
// holder's /api/usage/quota answers within 1.5 s throughout, few passwords
// are actually checked, and a correct login from a fresh address succeeds
// at once afterwards.
func TestLoginFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("a 10 s load test")
	}
	r := startRelay(t, fakeanthropic.New(fakeanthropic.Options{}))
	token := r.adminToken(t)
	_, key := r.createKey(t, token, map[string]any{"name": "flood-watcher"})
	if resp, err := floodClient("127.0.0.10").Get(r.URL + "/health"); err != nil {
		t.Skipf("cannot send from 127.0.0.10 (loopback is not a /8 here?): %v", err)
	} else {
		resp.Body.Close()
	}

	// Under the race detector RSS also holds the detector's shadow of every
	// heap page ever touched (about three times the heap, and never given
	// back), so there the bound is checked on the Go heap's resident part.
	race := buildSetting("-race") == "true"
	runtime.GC()
	debug.FreeOSMemory()
	base, err := procStatusKB("VmRSS")
	if err != nil {
		t.Skipf("cannot read the process's RSS: %v", err)
	}
	heapBase := heapResidentKB()
	// Writing 5 resets the peak (VmHWM) to the current RSS; sampling covers
	// kernels that refuse it.
	hwmReset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil

	const (
		addresses   = 12
		perAddress  = 5
		floodLength = 10 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), floodLength)
	defer cancel()
	var (
		wg                              sync.WaitGroup
		checked, throttled, other, errs atomic.Int64
		noRetryAfter                    atomic.Int64
	)
	for i := range addresses {
		c := floodClient(fmt.Sprintf("127.0.0.%d", 10+i))
		for range perAddress {
			wg.Go(func() {
				for ctx.Err() == nil {
					resp, err := loginFrom(c, r.URL, "wrong-password")
					switch {
					case err != nil:
						errs.Add(1)
						time.Sleep(10 * time.Millisecond)
					case resp.StatusCode == http.StatusUnauthorized:
						checked.Add(1)
					case resp.StatusCode == http.StatusTooManyRequests:
						throttled.Add(1)
						if resp.Header.Get("retry-after") == "" {
							noRetryAfter.Add(1)
						}
					default:
						other.Add(1)
					}
				}
			})
		}
	}

	// The key holder, polling its quota throughout.
	var (
		maxLatency time.Duration
		polls      int
		pollErrs   []string
	)
	watcher := floodClient("127.0.0.1")
	var peakKB, heapPeakKB atomic.Int64
	peakKB.Store(base)
	heapPeakKB.Store(heapBase)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for ctx.Err() == nil {
			if kb, err := procStatusKB("VmRSS"); err == nil && kb > peakKB.Load() {
				peakKB.Store(kb)
			}
			if kb := heapResidentKB(); kb > heapPeakKB.Load() {
				heapPeakKB.Store(kb)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	for ctx.Err() == nil {
		req, _ := http.NewRequest(http.MethodGet, r.URL+"/api/usage/quota", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		start := time.Now()
		resp, err := watcher.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		d := time.Since(start)
		maxLatency = max(maxLatency, d)
		polls++
		switch {
		case err != nil:
			pollErrs = append(pollErrs, err.Error())
		case resp.StatusCode != http.StatusOK:
			pollErrs = append(pollErrs, fmt.Sprintf("status %d", resp.StatusCode))
		}
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	<-sampled

	peak := peakKB.Load()
	if hwm, err := procStatusKB("VmHWM"); hwmReset && err == nil {
		peak = max(peak, hwm)
	}
	rssMB, heapMB := float64(peak-base)/1024, float64(heapPeakKB.Load()-heapBase)/1024
	growthMB, measured := rssMB, "RSS"
	if race {
		growthMB, measured = heapMB, "Go heap (race build)"
	}
	t.Logf("flood: %d passwords checked (401), %d throttled (429), %d other, %d transport errors; "+
		"quota: %d polls, max latency %v; peak growth: RSS %.0f MB (from %d MB; VmHWM reset: %v), Go heap %.0f MB",
		checked.Load(), throttled.Load(), other.Load(), errs.Load(), polls, maxLatency.Round(time.Millisecond),
		rssMB, base/1024, hwmReset, heapMB)

	if growthMB >= 600 {
		t.Errorf("peak %s grew by %.0f MB during the flood, want under 600 MB", measured, growthMB)
	}
	if maxLatency > 1500*time.Millisecond {
		t.Errorf("a quota call took %v during the flood, want at most 1.5 s", maxLatency)
	}
	if len(pollErrs) > 0 || polls < 10 {
		t.Errorf("quota polls: %d, failures %v", polls, pollErrs)
	}
	if other.Load() > 0 || errs.Load() > 0 || noRetryAfter.Load() > 0 {
		t.Errorf("flood answers: %d unexpected statuses, %d transport errors, %d 429s without retry-after",
			other.Load(), errs.Load(), noRetryAfter.Load())
	}
	// Each address gets its 5 free guesses, then one after each doubling
	// wait (1 s, 2 s, 4 s, 8 s): at most 9 in 10 s.
	if n := checked.Load(); n > addresses*9 || n < 1 {
		t.Errorf("%d passwords checked for %d addresses in %v, want between 1 and %d",
			n, addresses, floodLength, addresses*9)
	}

	start := time.Now()
	resp, err := loginFrom(floodClient("127.0.0.200"), r.URL, testAdminPassword)
	if err != nil {
		t.Fatalf("a correct login from a fresh address after the flood: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a correct login from a fresh address after the flood: %d, want 200 at once", resp.StatusCode)
	}
	t.Logf("the fresh address logged in in %v", time.Since(start).Round(time.Millisecond))
}

// TestLoginThrottleSharedByReplicas: two relays on one Redis throttle an
// address together, as `relay serve` wires them with REDIS_URL.
func TestLoginThrottleSharedByReplicas(t *testing.T) {
	rdb, _ := testenv.MustRedis(t) // skips (fails under CI) without Redis
	// relay serve keys the counters under relay:, shared with every other
	// relay on this Redis: this test's address and username are its own.
	var b [3]byte
	_, _ = rand.Read(b[:])
	ip := fmt.Sprintf("127.%d.%d.%d", 100+b[0]%100, b[1], 1+b[2]%250)
	user := fmt.Sprintf("admin-%x", b)
	t.Cleanup(func() {
		rdb.Del(context.Background(), "relay:login:{login}:addr:"+ip, "relay:login:{login}:known:"+ip)
	})
	hash, err := argon2id.CreateHash(testAdminPassword, &argon2id.Params{Memory: 8 * 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	cheap := func(c *config.Config) { c.Admin.PasswordHash = hash }
	fake := fakeanthropic.New(fakeanthropic.Options{})
	env := []string{"REDIS_URL=" + testenv.RedisURL(), "ADMIN_USERNAME=" + user}
	replicas := []*testRelay{startRelayWith(t, fake, cheap, env...), startRelayWith(t, fake, cheap, env...)}
	c := floodClient(ip)
	login := func(r *testRelay, pass string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, r.URL+"/admin/login", nil)
		req.SetBasicAuth(user, pass)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("retry-after")
	}
	for i := range 5 {
		if code, _ := login(replicas[i%2], "wrong"); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	// A sixth failure after the first wait makes the next one 2 s: time
	// enough to ask both replicas on a slow machine.
	time.Sleep(1100 * time.Millisecond)
	if code, _ := login(replicas[1], "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("failure 6 after the wait: %d", code)
	}
	for i, r := range replicas {
		if code, ra := login(r, testAdminPassword); code != http.StatusTooManyRequests || (ra != "2" && ra != "1") {
			t.Fatalf("replica %d, the right password after 6 failures on both: %d retry-after %q, want 429 within 2 s", i, code, ra)
		}
	}
	time.Sleep(2100 * time.Millisecond)
	if code, _ := login(replicas[0], testAdminPassword); code != http.StatusOK {
		t.Fatalf("the right password after the wait: %d", code)
	}
	// The login forgot the failures on both replicas.
	if code, _ := login(replicas[1], "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("after the login: %d", code)
	}
}
