// Package browsertest drives a headless Chromium (Debian's chromium
// package) from Go tests through the DevTools protocol, so that a test
// sees a page as a user's browser does: after its redirects, with the
// cookies the browser kept, and with what the page logged to the console
// and fetched over the network. Every page a test visits can be kept as a
// screenshot (see ScreenshotDir).
//
// Only tests import it: the DevTools client stays out of the server.
//
// Tests fail, never skip, when CI=true and there is no Chromium.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
)

// ScreenshotsEnv names the directory the screenshots go to; unset, they go
// to tenancy-browser-screens in the system's temporary directory.
const ScreenshotsEnv = "TENANCY_SCREENSHOTS"

// ChromiumEnv names the browser program to drive, when it is not one of
// the names Chromium has on PATH.
const ChromiumEnv = "CHROMIUM"

// StepTimeout bounds each Run: a page that never loads, or a selector that
// never matches, fails the test rather than hanging it until go test's
// own timeout.
const StepTimeout = 30 * time.Second

// ExecPath is the browser to drive: $CHROMIUM when set, else the first of
// Chromium's usual names found on PATH.
func ExecPath() (string, error) {
	if p := os.Getenv(ChromiumEnv); p != "" {
		return exec.LookPath(p)
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium, chromium-browser or google-chrome on PATH")
}

// Require returns the browser to drive, or fails the test (CI=true) or
// skips it (elsewhere) when there is none.
func Require(t testing.TB) string {
	t.Helper()
	p, err := ExecPath()
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("BROWSER TESTS NOT RUN: %v; install it with `make chromium` (make test does), or set %s", err, ChromiumEnv)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// ScreenshotDir is the directory screenshots go to ($TENANCY_SCREENSHOTS,
// or tenancy-browser-screens in the temporary directory), created if
// need be. It outlives the test, so that a developer can look at the
// pages afterwards.
func ScreenshotDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(ScreenshotsEnv)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "tenancy-browser-screens")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("browsertest: screenshot directory: %v", err)
	}
	return dir
}

// Browser is one headless Chromium process. Each of its tabs is a private
// window of its own, with its own cookies: tests that run at once do not
// see each other's sign-ins (a cookie is for a host on any port, and every
// test server is some tenant-1.localhost).
type Browser struct {
	ctx   context.Context
	shots string
}

// Start starts a headless Chromium for the test; it is ended at cleanup.
//
// Its resolver sends every *.localhost name (tenant hosts and the base
// domain) to 127.0.0.1, where the test servers listen, and finds no other
// name: Chromium looks up its vendor's update and sign-in services even
// with background networking turned off, and a test must reach nothing
// but loopback.
func Start(t testing.TB) *Browser {
	t.Helper()
	path := Require(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("host-resolver-rules", "MAP *.localhost 127.0.0.1, MAP localhost 127.0.0.1, MAP * ~NOTFOUND"),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	// Chromium refuses to run as root with its sandbox, and CI runs as
	// root.
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	// The first Do starts the browser, under no timeout: one would end the
	// browser with it.
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("browsertest: start %s: %v", path, err)
	}
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	dir := ScreenshotDir(t)
	t.Logf("browsertest: screenshots of %s go to %s", t.Name(), dir)
	return &Browser{ctx: bctx, shots: dir}
}

// Tab is one browser tab, with what its pages logged and fetched.
type Tab struct {
	t     testing.TB
	ctx   context.Context
	shots string

	mu       sync.Mutex
	problems []string // console errors and warnings, exceptions, the browser's own errors
	requests []string // every URL the tab's pages asked for
	seq      int
}

// NewTab opens a tab in a new private window, closed at cleanup.
func (b *Browser) NewTab(t testing.TB) *Tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	tab := &Tab{t: t, ctx: ctx, shots: b.shots}
	// A previous run's pictures of this test would pass for this run's.
	old, _ := filepath.Glob(filepath.Join(b.shots, tab.shotPrefix()+"-*.png"))
	for _, f := range old {
		_ = os.Remove(f)
	}
	// Before the first page, so that all of its events are heard.
	if err := chromedp.Listen(ctx, tab.record); err != nil {
		cancel()
		t.Fatalf("browsertest: open tab: %v", err)
	}
	t.Cleanup(cancel)
	return tab
}

// record runs on the tab's reading goroutine: it only appends.
func (tab *Tab) record(ev any) {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		switch ev.Type {
		case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeWarning, runtime.ConsoleAPICalledTypeAssert:
			var args []string
			for _, a := range ev.Args {
				args = append(args, consoleArg(a))
			}
			tab.problems = append(tab.problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		tab.problems = append(tab.problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
	case *cdplog.EventEntryAdded:
		// What the browser itself reports: a blocked load, a refused
		// style, a violation of the page's security policy.
		if e := ev.Entry; e.Level == cdplog.EntryLevelError || e.Level == cdplog.EntryLevelWarning {
			tab.problems = append(tab.problems, fmt.Sprintf("browser %s (%s): %s %s", e.Level, e.Source, e.Text, e.URL))
		}
	case *network.EventRequestWillBeSent:
		tab.requests = append(tab.requests, ev.Request.URL)
	}
}

func consoleArg(a *runtime.RemoteObject) string {
	if a.Description != "" {
		return a.Description
	}
	if len(a.Value) > 0 {
		return string(a.Value)
	}
	return string(a.Type)
}

// Run runs steps in the tab within StepTimeout; on error it takes a
// screenshot of where the tab got to and fails the test.
func (tab *Tab) Run(what string, steps ...chromedp.Action[chromedp.Void]) {
	tab.t.Helper()
	Get(tab, what, chromedp.Steps(steps...))
}

// Get runs one action in the tab within StepTimeout and returns its value;
// on error it takes a screenshot of where the tab got to and fails the
// test.
func Get[T any](tab *Tab, what string, a chromedp.Action[T]) T {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, StepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		where, _ := chromedp.Run(tab.ctx, chromedp.Location())
		path := tab.Screenshot("failed-" + what)
		tab.t.Fatalf("browser: %s: %v (tab at %s; screenshot %s)", what, err, where, path)
	}
	return v
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (tab *Tab) shotPrefix() string { return unsafeName.ReplaceAllString(tab.t.Name(), "_") }

// Screenshot saves the whole page as
// <ScreenshotDir>/<test name>-<nn>-<name>.png, and returns the path. A
// screenshot that fails is logged, not an error: the page is what is
// tested, and a full-page capture can outlast StepTimeout on a loaded
// machine (it did, at a load average of 20, with the page checked fine).
func (tab *Tab) Screenshot(name string) string {
	tab.t.Helper()
	tab.mu.Lock()
	tab.seq++
	n := tab.seq
	tab.mu.Unlock()
	file := fmt.Sprintf("%s-%02d-%s.png", tab.shotPrefix(), n, unsafeName.ReplaceAllString(name, "_"))
	path := filepath.Join(tab.shots, file)
	ctx, cancel := context.WithTimeout(tab.ctx, StepTimeout)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tab.t.Logf("browser: no screenshot %s: %v", name, err)
		return path
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		tab.t.Errorf("browser: write screenshot: %v", err)
	}
	return path
}

// Problems are the console errors and warnings, uncaught exceptions and
// the browser's own error reports seen in the tab so far.
func (tab *Tab) Problems() []string {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return append([]string(nil), tab.problems...)
}

// Requests are the URLs the tab's pages asked for so far, in order.
func (tab *Tab) Requests() []string {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return append([]string(nil), tab.requests...)
}

// Cookies are every cookie the tab's window holds, for every site, as the
// browser sees them.
func (tab *Tab) Cookies() []*network.Cookie {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, StepTimeout)
	defer cancel()
	res, err := chromedp.CallBrowser(ctx, storage.GetCookies, storage.GetCookiesParams{BrowserContextID: chromedp.FromContext(tab.ctx).BrowserContextID})
	if err != nil {
		tab.t.Fatalf("browser: read cookies: %v", err)
	}
	return res.Cookies
}

// Text is the visible text of the first element the CSS selector matches.
func (tab *Tab) Text(sel string) string {
	tab.t.Helper()
	return Get(tab, "read "+sel, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
}

// Location is the tab's current URL.
func (tab *Tab) Location() string {
	tab.t.Helper()
	return Get(tab, "read location", chromedp.Location())
}
