package browsertest_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/gin-gonic/gin"

	"tenancy/configs"
	"tenancy/handlers"
	"tenancy/internal/browsertest"
	"tenancy/internal/pgtest"
	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/strategies"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	os.Exit(m.Run())
}

// seedOptions: three small tenants, each with at least 4*2*3 = 24
// subtasks, so three pages at 10 a page.
func seedOptions() seed.Options {
	o := seed.DefaultOptions()
	o.Accounts = 3
	o.MaxProjects, o.MaxTasks, o.MaxSubtasks = 8, 4, 4
	o.MinProjects, o.MinTasks, o.MinSubtasks = 4, 2, 3
	return o
}

// site is the real server of one strategy, seeded, on a loopback port.
type site struct {
	port string
}

// url is the address of path on tenant slug's host, as a user types it.
func (s site) url(slug, path string) string {
	return "http://" + slug + ".localhost:" + s.port + path
}

// startSite sets up a throwaway deployment of strategyName, seeds it, and
// serves the application's handlers over it on a loopback port, as
// `tenancy serve` does, until the test ends.
func startSite(t *testing.T, strategyName string) site {
	t.Helper()
	cfg, err := configs.Load(pgtest.Getenv(pgtest.Env(t, strategyName, map[string]string{"BASE_DOMAIN": "localhost"})))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin, err := strategies.OpenAdmin(cfg.Strategy)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Setup(ctx, nil); err != nil {
		t.Fatalf("setup %s: %v", strategyName, err)
	}
	seeder, err := seed.NewSeeder(admin, cfg.Strategy.TenantCount, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seeder.Run(ctx, seedOptions()); err != nil {
		t.Fatalf("seed %s: %v", strategyName, err)
	}
	s, err := strategies.Open(ctx, cfg.Strategy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h, err := handlers.New(s, handlers.Options{BaseDomain: cfg.BaseDomain, SecretKey: cfg.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h) // 127.0.0.1, a free port
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return site{port: u.Port()}
}

// activeUser is the email of a seeded active user of tenant i.
func activeUser(t *testing.T, i int) string {
	t.Helper()
	for _, u := range seed.Generate(seedOptions(), i, "").Users {
		if u.IsActive {
			return u.Email
		}
	}
	t.Fatalf("the seed gave tenant-%d no active user", i)
	return ""
}

// TestSignInPageThroughSignOut is a user's visit in a real browser: sent
// to sign in on tenant-1, signing in, paging through its subtasks, editing
// one, sent to sign in on tenant-2, signing out. Each page is kept as a
// screenshot.
func TestSignInPageThroughSignOut(t *testing.T) {
	t.Parallel()
	browser := browsertest.Start(t)
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := startSite(t, name)
			tab := browser.NewTab(t)
			signIn(t, tab, s, "tenant-1", activeUser(t, 1))
			checkSessionCookie(t, tab, "tenant-1.localhost")
			pageThrough(t, tab, s, "tenant-1")
			editAndCompleteSubtask(t, tab, s, "tenant-1")
			otherTenantAsksForSignIn(t, tab, s, "tenant-2")
			signOut(t, tab, s, "tenant-1")
			if p := tab.Problems(); len(p) > 0 {
				t.Errorf("the pages logged problems:\n%s", strings.Join(p, "\n"))
			}
			// The pages carry their style inline and fetch nothing else.
			for _, r := range tab.Requests() {
				if u, err := url.Parse(r); err != nil || !strings.HasSuffix(u.Hostname(), ".localhost") || u.Port() != s.port {
					t.Errorf("a page asked for %s, not a page of this server", r)
				}
			}
		})
	}
}

// signIn opens a page deep in tenant slug's list, is sent to the sign-in
// page, fills it in, and expects to be brought back to that page.
func signIn(t *testing.T, tab *browsertest.Tab, s site, slug, email string) {
	t.Helper()
	const deep = "/subtasks/2/"
	askedToSignIn(t, tab, s, slug, deep)
	tab.Run("fill in the form", chromedp.SendKeys(chromedp.CSS(`input[name=email]`), email),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), seed.SamplePassword))
	tab.Screenshot(slug + "-sign-in-form")
	tab.Run("sign in", chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`nav.pages`)))
	if got, want := tab.Location(), s.url(slug, deep); got != want {
		t.Errorf("after signing in on %s the browser is at %s, want %s, the page it asked for", slug, got, want)
	}
}

// askedToSignIn opens path on slug's host and expects to land on that
// tenant's sign-in form, with the way back to path, and not signed in.
func askedToSignIn(t *testing.T, tab *browsertest.Tab, s site, slug, path string) {
	t.Helper()
	tab.Run("open "+slug+" "+path, chromedp.Navigate(s.url(slug, path)),
		chromedp.WaitVisible(chromedp.CSS(`h1`)))
	if got, want := tab.Location(), s.url(slug, "/login?next="+url.QueryEscape(path)); got != want {
		t.Errorf("GET %s %s unsigned: the browser is at %s, want %s", slug, path, got, want)
	}
	if h := tab.Text("h1"); !strings.HasPrefix(h, "Sign in") {
		t.Errorf("%s sign-in page heading = %q, want Sign in ...", slug, h)
	}
	if got := tab.Text("p.meta"); got != slug {
		t.Errorf("%s sign-in page names tenant %q", slug, got)
	}
	if !browsertest.Get(tab, "look for the sign-in form", chromedp.Evaluate[bool](`document.querySelector('form[action="/login"] input[name=password]') !== null`)) {
		t.Errorf("%s sign-in page has no sign-in form", slug)
	}
	if body := tab.Text("body"); strings.Contains(body, "Signed in as") {
		t.Errorf("%s sign-in page says the browser is signed in:\n%s", slug, body)
	}
}

// checkSessionCookie: the browser holds exactly one session cookie, for
// host only, out of the page's scripts' reach, and sent on same-site
// requests and top-level navigations only.
func checkSessionCookie(t *testing.T, tab *browsertest.Tab, host string) {
	t.Helper()
	var sessions []*network.Cookie
	for _, c := range tab.Cookies() {
		if c.Name == "tenancy_session" {
			sessions = append(sessions, c)
		}
	}
	if len(sessions) != 1 {
		t.Fatalf("the browser holds %d tenancy_session cookies, want 1 (for %s)", len(sessions), host)
	}
	c := sessions[0]
	// A domain cookie shows with a leading dot; a host-only one shows
	// the host, and is sent to no other tenant under the base domain.
	if c.Domain != host {
		t.Errorf("session cookie domain = %q, want %q (host-only)", c.Domain, host)
	}
	if !c.HTTPOnly {
		t.Error("session cookie is not HttpOnly: the page's scripts can read it")
	}
	if c.SameSite != network.CookieSameSiteLax {
		t.Errorf("session cookie SameSite = %q, want Lax", c.SameSite)
	}
	if c.Secure {
		t.Error("session cookie is Secure over plain HTTP: the browser would not send it back")
	}
	if c.Session || c.Expires <= 0 {
		t.Errorf("session cookie has no expiry (session %v, expires %v), want one", c.Session, c.Expires)
	}
	visible := browsertest.Get(tab, "read document.cookie", chromedp.Evaluate[string](`document.cookie`))
	if strings.Contains(visible, "tenancy_session") {
		t.Errorf("document.cookie = %q: the session is visible to scripts", visible)
	}
}

// pageThrough follows "Next" from the first page to the last, checking
// that each page is the one asked for and holds only slug's subtasks.
func pageThrough(t *testing.T, tab *browsertest.Tab, s site, slug string) {
	t.Helper()
	tab.Run("open the first page", chromedp.Navigate(s.url(slug, "/subtasks/")),
		chromedp.WaitVisible(chromedp.CSS(`nav.pages`)))
	pages := 0
	for n := 1; ; n++ {
		if cur := tab.Text(`nav.pages .current`); cur != fmt.Sprint(n) {
			t.Fatalf("%s: on page %s, want %d", slug, cur, n)
		}
		meta := tab.Text(`p.meta`)
		if _, err := fmt.Sscanf(meta[strings.Index(meta, "Page "):], "Page %d of %d", new(int), &pages); err != nil {
			t.Fatalf("%s page %d: no page count in %q", slug, n, meta)
		}
		accounts := browsertest.Get(tab, "read rows", chromedp.Evaluate[[]string](`[...document.querySelectorAll("tbody tr td:first-child")].map(td => td.textContent)`))
		if len(accounts) == 0 {
			t.Errorf("%s page %d shows no subtasks", slug, n)
		}
		for _, a := range accounts {
			if !strings.HasPrefix(a, slug+" ·") {
				t.Errorf("%s page %d shows a row of %q", slug, n, a)
			}
		}
		tab.Screenshot(fmt.Sprintf("%s-subtasks-page-%d", slug, n))
		if !browsertest.Get(tab, "look for Next", chromedp.Evaluate[bool](`document.querySelector('a[rel=next]') !== null`)) {
			break
		}
		tab.Run(fmt.Sprintf("go to page %d", n+1), chromedp.Click(chromedp.CSS(`a[rel=next]`)),
			chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//nav[@class="pages"]/span[@class="current" and text()="%d"]`, n+1))))
	}
	if pages < 3 {
		t.Errorf("%s has %d pages, want at least 3 from the seed", slug, pages)
	}
	if got, want := tab.Location(), s.url(slug, fmt.Sprintf("/subtasks/%d/", pages)); got != want {
		t.Errorf("after the last Next the browser is at %s, want %s", got, want)
	}
}

// editAndCompleteSubtask renames the first open subtask of slug's list
// and marks it complete through its edit form, then sees both after
// reloading the form and on the list.
func editAndCompleteSubtask(t *testing.T, tab *browsertest.Tab, s site, slug string) {
	t.Helper()
	tab.Run("open the list", chromedp.Navigate(s.url(slug, "/subtasks/")), chromedp.WaitVisible(chromedp.CSS(`nav.pages`)))
	href := browsertest.Get(tab, "find an open subtask", chromedp.Evaluate[string](`(() => {
		const tr = [...document.querySelectorAll("tbody tr")].find(tr => tr.cells.length === 7 && tr.cells[5].textContent === "no");
		const a = tr && tr.cells[4].querySelector("a");
		return a ? a.getAttribute("href") : "";
	})()`))
	if href == "" {
		t.Fatalf("%s /subtasks/ has no open subtask with a link to its edit form", slug)
	}
	id := strings.Trim(strings.TrimPrefix(href, "/subtask/"), "/")
	tab.Run("open subtask "+id, chromedp.Click(chromedp.CSS(`tbody a[href="`+href+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form.edit input[name=name]`)))
	if got, want := tab.Location(), s.url(slug, href); got != want {
		t.Errorf("the list's link took the browser to %s, want %s", got, want)
	}
	if browsertest.Get(tab, "read completion", chromedp.Evaluate[bool](`document.querySelector('form.edit input[name=is_complete]').checked`)) {
		t.Fatalf("%s subtask %s is open on the list and complete in its form", slug, id)
	}
	name := "Renamed in a real browser"
	tab.Run("edit the form", chromedp.Clear(chromedp.CSS(`form.edit input[name=name]`)),
		chromedp.SendKeys(chromedp.CSS(`form.edit input[name=name]`), name),
		chromedp.Click(chromedp.CSS(`form.edit input[name=is_complete]`)))
	tab.Screenshot(slug + "-subtask-edited")
	tab.Run("save", chromedp.Click(chromedp.CSS(`form.edit button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`p.saved`)))
	tab.Screenshot(slug + "-subtask-saved")
	tab.Run("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`form.edit input[name=name]`)))
	if got := browsertest.Get(tab, "read the name", chromedp.Value(chromedp.CSS(`form.edit input[name=name]`))); got != name {
		t.Errorf("after saving and reloading, subtask %s's name = %q, want %q", id, got, name)
	}
	if !browsertest.Get(tab, "read completion", chromedp.Evaluate[bool](`document.querySelector('form.edit input[name=is_complete]').checked`)) {
		t.Errorf("after saving and reloading, subtask %s is not complete", id)
	}
	// And on the list, wherever its new name puts it.
	for n := 1; ; n++ {
		tab.Run(fmt.Sprintf("open page %d", n), chromedp.Navigate(s.url(slug, fmt.Sprintf("/subtasks/%d/", n))), chromedp.WaitVisible(chromedp.CSS(`nav.pages`)))
		row := browsertest.Get(tab, "find subtask "+id, chromedp.Evaluate[[]string](`(() => {
			const tr = [...document.querySelectorAll("tbody tr")].find(tr => tr.querySelector("td.num")?.textContent === `+strconv.Quote(id)+`);
			return tr ? [...tr.cells].map(td => td.textContent) : [];
		})()`))
		if len(row) == 7 {
			if row[4] != name || row[5] != "yes" {
				t.Errorf("%s list page %d shows subtask %s as %q, complete %q; want %q, yes", slug, n, id, row[4], row[5], name)
			}
			tab.Screenshot(fmt.Sprintf("%s-list-after-edit-page-%d", slug, n))
			return
		}
		if !browsertest.Get(tab, "look for Next", chromedp.Evaluate[bool](`document.querySelector('a[rel=next]') !== null`)) {
			t.Fatalf("%s list: subtask %s is on no page after its edit", slug, id)
		}
	}
}

// otherTenantAsksForSignIn: tenant-1's session means nothing on another
// tenant's host, which sends the browser to its own sign-in page.
func otherTenantAsksForSignIn(t *testing.T, tab *browsertest.Tab, s site, slug string) {
	t.Helper()
	askedToSignIn(t, tab, s, slug, "/subtasks/")
	tab.Screenshot(slug + "-sign-in-page")
}

// signOut signs out on slug's sign-in page: the browser drops the cookie,
// the page offers the form again, and the list sends it to sign in.
func signOut(t *testing.T, tab *browsertest.Tab, s site, slug string) {
	t.Helper()
	tab.Run("open "+slug+" sign-in page", chromedp.Navigate(s.url(slug, "/login")),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/logout"]`)))
	if body := tab.Text("body"); !strings.Contains(body, "Signed in as") {
		t.Errorf("%s /login does not say who is signed in:\n%s", slug, body)
	}
	tab.Screenshot(slug + "-signed-in")
	tab.Run("sign out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"] input[name=password]`)))
	tab.Screenshot(slug + "-signed-out")
	if got, want := tab.Location(), s.url(slug, "/login"); got != want {
		t.Errorf("after signing out the browser is at %s, want %s", got, want)
	}
	for _, c := range tab.Cookies() {
		if c.Name == "tenancy_session" {
			t.Errorf("after signing out the browser still holds a session cookie for %s", c.Domain)
		}
	}
	askedToSignIn(t, tab, s, slug, "/subtasks/")
}
