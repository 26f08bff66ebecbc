package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaystation/relay/internal/fakeanthropic"
	"github.com/relaystation/relay/internal/testenv"
)

// uiWeb is the dashboard's source, relative to this package.
const uiWeb = "../../adapters/http/ui/web"

// needFor skips a test that lacks a tool, except under CI=true, where a
// missing tool is a failure: CI must never silently skip the browser suite.
func needFor(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if testenv.InCI() {
		t.Fatalf("%s is required under CI=true but unavailable: %v", what, err)
	}
	t.Skipf("%s unavailable, skipping (set CI=true to make this fatal): %v", what, err)
}

// TestDashboardE2E runs the dashboard's browser flows (web/e2e/flows.mjs:
// playwright-core driving Debian's chromium) against a whole relay on
// SQLite with the fake upstream. UI_SCREENSHOTS=dir keeps the screenshots
// (make ui-screenshots); otherwise they go to a temporary directory.
func TestDashboardE2E(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	needFor(t, "node", err)
	browser := os.Getenv("CHROMIUM")
	if browser == "" {
		browser = "/usr/bin/chromium"
	}
	_, err = os.Stat(browser)
	needFor(t, "chromium ("+browser+"; apt-get install chromium)", err)
	_, err = os.Stat(filepath.Join(uiWeb, "node_modules", "playwright-core", "package.json"))
	needFor(t, "the dashboard's node packages (make ui-deps)", err)

	shots := os.Getenv("UI_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if shots, err = filepath.Abs(shots); err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, fakeanthropic.New(fakeanthropic.Options{}))

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "e2e/flows.mjs")
	cmd.Dir = uiWeb
	cmd.Env = append(os.Environ(),
		"RELAY_URL="+r.URL,
		"RELAY_ADMIN_USER=admin",
		"RELAY_ADMIN_PASSWORD="+testAdminPassword,
		"SCREENSHOT_DIR="+shots,
		"CHROMIUM="+browser,
	)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("flows.mjs (%s):\n%s", time.Since(start).Round(time.Millisecond), out)
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		t.Fatalf("the browser flows failed (exit %d)", exit.ExitCode())
	case err != nil:
		t.Fatalf("run the browser flows: %v", err)
	}
}
