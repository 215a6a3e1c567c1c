package dashboard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/walt-testbed/walt/api"
)

// ScreenshotsEnv names the directory the browser tests save their
// screenshots in (default: the test's temporary directory).
const ScreenshotsEnv = "WALT_SCREENSHOTS"

// browser is a headless Chromium driven over the DevTools protocol, with
// the page's errors (exceptions, console errors, CSP violations)
// collected: any fails the test at its next step.
type browser struct {
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

// newBrowser starts Debian's chromium for t. Without it the test skips,
// unless CI=true, where a missing browser is a failure.
func newBrowser(t testing.TB) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (CI=true: the browser tests must run); scripts/install-deps.sh installs it")
		}
		t.Skip("chromium is not installed: scripts/install-deps.sh installs it; the dashboard's browser tests skip")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // starts the browser, on a context without a deadline
		t.Fatalf("start chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// Failed loads are the tests' own doing (a stream cut at
			// the end, an error answer the page shows); the other
			// errors (CSP violations among them) are bugs.
			if (m.Type == chromedp.ConsoleError || m.IsException()) && m.Source != "network" {
				b.mu.Lock()
				b.errs = append(b.errs, m.String()+" ("+m.URL+")")
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// run runs actions within 30 s, failing t with what the page said.
func (b *browser) run(t testing.TB, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v (page errors: %v)", what, err, b.errors())
	}
	if errs := b.errors(); len(errs) > 0 {
		t.Fatalf("%s: the page reported errors: %s", what, strings.Join(errs, "; "))
	}
}

func (b *browser) errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// waitJS polls expr (a JavaScript expression) until it is true; an
// exception (an element not there yet) counts as false. On a timeout it
// fails t with the text the page shows.
func (b *browser) waitJS(t testing.TB, what, expr string) {
	t.Helper()
	expr = "(() => { try { return !!(" + expr + "); } catch { return false; } })()"
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, discard(chromedp.Poll[bool](expr, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(25*time.Second)))); err != nil {
		shown := eval[string](t, b, `(document.getElementById('main') || document.body).innerText.slice(0, 4000)`)
		t.Fatalf("wait for %s: %v (page errors: %v); the page shows:\n%s", what, err, b.errors(), shown)
	}
	if errs := b.errors(); len(errs) > 0 {
		t.Fatalf("wait for %s: the page reported errors: %s", what, strings.Join(errs, "; "))
	}
}

// eval returns the value of a JavaScript expression.
func eval[T any](t testing.TB, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v (page errors: %v)", expr, err, b.errors())
	}
	return v
}

// discard makes an action that returns a value one that returns none.
func discard[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

// screenshot saves the page as name.png in $WALT_SCREENSHOTS (or the
// test's temporary directory).
func (b *browser) screenshot(t testing.TB, name string) {
	t.Helper()
	dir := os.Getenv(ScreenshotsEnv)
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// authRecorder serves h and keeps the Authorization header of each
// request that changes something (POST, PUT, DELETE) and of each event
// stream, by path.
type authRecorder struct {
	h  http.Handler
	mu sync.Mutex
	by map[string][]string
}

func (a *authRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path == api.Prefix+"/events" {
		a.mu.Lock()
		a.by[r.URL.Path] = append(a.by[r.URL.Path], r.Header.Get("Authorization"))
		a.mu.Unlock()
	}
	a.h.ServeHTTP(w, r)
}

func (a *authRecorder) auth(path string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.by[path]...)
}

// serve serves h on a new test server, recording authorizations.
func serve(t testing.TB, h http.Handler) (string, *authRecorder) {
	rec := &authRecorder{h: h, by: map[string][]string{}}
	hs := httptest.NewServer(rec)
	t.Cleanup(hs.Close)
	return hs.URL, rec
}

// click waits for the element sel names and clicks it, in one step in
// the page: a redraw between finding and clicking cannot lose the click.
func (b *browser) click(t testing.TB, sel string) {
	t.Helper()
	b.waitJS(t, "click on "+sel, `(() => { const el = document.querySelector(`+js(sel)+`); if (el) el.click(); return el; })()`)
}

// login logs in on the page open with token, and waits for the view
// drawn again.
func (b *browser) login(t testing.TB, token string) {
	t.Helper()
	b.run(t, "log in",
		chromedp.WaitVisible(chromedp.CSS("#need-login")),
		chromedp.SendKeys(chromedp.CSS("#login-token"), token),
		chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#whoami")))
}
