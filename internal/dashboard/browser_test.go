package dashboard

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/samplit/samplit/internal/store"
)

// chromium finds Debian's chromium. Without it the browser test is skipped,
// except in CI (CI=true), where .ci/run installs it and its absence is a
// failure rather than a silently skipped test.
func chromium(t *testing.T) string {
	for _, p := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; .ci/run should have installed it")
	}
	t.Skip("chromium is not installed (apt-get install chromium); skipping the browser test")
	return ""
}

// artifactDir is where screenshots go: $SAMPLIT_ARTIFACTS when set (CI keeps
// it), else the test's temporary directory. Never the source tree.
func artifactDir(t *testing.T) string {
	if dir := os.Getenv("SAMPLIT_ARTIFACTS"); dir != "" {
		dir = filepath.Join(dir, "dashboard")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// TestBrowser drives the dashboard in headless Chromium the way a person
// would: sign in, create an experiment through the form (first with a
// mistake), feed it data through the API, watch the page show the leader and
// the charts without a reload, pause it with the button (accepting the
// confirmation), and sign out.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	e := newEnv(t)
	shots := artifactDir(t)

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second) // generous: CI runs it under -race on two shared cores
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(shots, name)
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", path)
	}
	do("start the browser", chromedp.Navigate("about:blank"))

	// Accept every confirmation dialog, and remember what it asked.
	dialogs := make(chan string, 4)
	go func() {
		for ev, err := range chromedp.Events(bctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			dialogs <- ev.Message
			go func() {
				_ = chromedp.Do(bctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
					_, err := cdp.Call(ctx, tg, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
					return err
				}))
			}()
		}
	}()
	base := e.srv.URL
	id := func(s string) chromedp.ID { return chromedp.ID(s) }
	visible := chromedp.NodeVisible

	// Sign in: the list page sends us to the form, and back after it.
	do("sign in",
		chromedp.Navigate(base+"/experiments"),
		chromedp.SendKeys(id("key"), e.admin, visible),
		chromedp.Submit(id("key")),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/experiments/new"]`)),
	)

	// Create through the form, first with a key the API refuses.
	do("invalid form",
		chromedp.Click(chromedp.CSS(`a[href="/experiments/new"]`), visible),
		chromedp.SetValue(id("key"), "Checkout Button!", visible),
		chromedp.SetValue(id("name"), "Checkout button colour"),
		chromedp.SetValue(id("v1key"), "green"),
		chromedp.SetValue(id("v1payload"), `{"color": "green"}`),
		chromedp.SetValue(id("min_samples"), "30"),
		chromedp.Click(id("create"), visible),
		chromedp.WaitVisible(id("key-error")),
	)
	if msg := text("#key-error"); !strings.Contains(msg, "lower-case") {
		t.Errorf("validation message %q", msg)
	}
	shot("1-validation.png")
	do("valid form",
		chromedp.SetValue(id("key"), "checkout-button", visible),
		chromedp.Click(id("create"), visible),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if flash := text(".flash"); !strings.Contains(flash, "created") {
		t.Errorf("flash %q", flash)
	}
	loc, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	ref := loc[strings.LastIndex(loc, "/")+1:]
	ref, _, _ = strings.Cut(ref, "?")

	// Data arrives through the API while the page is open; the live refresh
	// (every second in this test) shows the leader without a reload.
	e.feed(e.admin, ref, "a", 400, map[string]float64{"control": 0.04, "green": 0.22})
	e.feed(e.admin, ref, "b", 300, map[string]float64{"control": 0.04, "green": 0.22})
	// The leader appears with the first refresh after the first data, which
	// can land between a feed's assignments and its conversions (no
	// conversions: the control leads), so wait for the refresh that has
	// them all; reads that race a refresh's re-render are retried.
	do("live results", chromedp.WaitVisible(id("leader")))
	var lead string
	for deadline := time.Now().Add(30 * time.Second); lead != "green" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#leader"), chromedp.NodeVisible)); err == nil {
			lead = strings.TrimSpace(s)
		}
	}
	paths, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('svg[data-chart="density"] path, svg[data-chart="allocation"] path, svg[data-chart="cumulative"] path').length`))
	if err != nil {
		t.Fatal(err)
	}
	if lead != "green" || paths < 6 {
		t.Errorf("leader %q, %d chart paths", lead, paths)
	}
	shot("2-detail.png")
	do("phone width", chromedp.EmulateViewport(390, 844))
	shot("3-detail-phone.png")
	// The list and the form at phone width too: the page itself must not
	// scroll sideways (a wide table scrolls inside its own region).
	overflow := func(what string) {
		t.Helper()
		w, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		if err != nil {
			t.Fatal(err)
		}
		if w > 390 {
			t.Errorf("%s at 390 px is %d px wide: the page scrolls sideways", what, w)
		}
	}
	overflow("the detail page")
	do("list at phone width", chromedp.Navigate(base+"/experiments"), chromedp.WaitVisible(chromedp.CSS(`a[href="/experiments/new"]`)))
	overflow("the list")
	// The list's table fits too: the winner or leader column is not
	// hidden behind a sideways scroll.
	if w, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelector('table.list').scrollWidth - document.querySelector('.table-wrap').clientWidth`)); err != nil || w > 0 {
		t.Errorf("the experiment list's table overflows its region at 390 px by %d px (%v)", w, err)
	}
	shot("3-list-phone.png")
	do("form at phone width", chromedp.Navigate(base+"/experiments/new"), chromedp.WaitVisible(id("create")))
	overflow("the new-experiment form")
	shot("3-new-phone.png")
	do("laptop width", chromedp.EmulateViewport(1280, 900))
	do("list at laptop width", chromedp.Navigate(base+"/experiments"), chromedp.WaitVisible(chromedp.CSS(`a[href="/experiments/new"]`)))
	shot("2-list.png")
	do("form at laptop width", chromedp.Navigate(base+"/experiments/new"), chromedp.WaitVisible(id("create")))
	shot("2-new.png")

	// Layers: create one on its page, then, from its link, an experiment in
	// it with a targeting rule, through the form (first with a share the
	// service refuses, shown next to the field); the layers page shows its
	// range, at laptop and at phone width.
	do("layers page", chromedp.Navigate(base+"/layers"), chromedp.WaitVisible(id("create-layer")))
	do("create a layer",
		chromedp.SetValue(id("layer-key"), "checkout", visible),
		chromedp.SetValue(id("layer-name"), "Checkout"),
		chromedp.Click(id("create-layer"), visible),
		chromedp.WaitVisible(id("layer-created")),
	)
	do("new experiment in the layer",
		chromedp.Click(chromedp.CSS(`a[href="/experiments/new?layer=checkout"]`), visible),
		chromedp.WaitVisible(id("create")),
		chromedp.SetValue(id("key"), "layered", visible),
		chromedp.SetValue(id("c0attribute"), "country"),
		chromedp.SetValue(id("c0op"), "in"),
		chromedp.SetValue(id("c0value"), "ES, MX"),
		chromedp.SetValue(id("layer_share"), "1.5"),
		chromedp.Click(id("create"), visible),
		chromedp.WaitVisible(id("layer_share-error")),
	)
	if msg := text("#layer_share-error"); !strings.Contains(msg, "must be from") {
		t.Errorf("layer share message %q", msg)
	}
	if v, err := chromedp.Run(bctx, chromedp.Value(id("c0value"))); err != nil || v != "ES, MX" {
		t.Errorf("the refused form lost the condition's value: %q (%v)", v, err)
	}
	shot("4-layer-form-error.png")
	do("phone width", chromedp.EmulateViewport(390, 844))
	overflow("the refused form")
	shot("4-layer-form-error-phone.png")
	do("laptop width", chromedp.EmulateViewport(1280, 900))
	do("valid share",
		chromedp.SetValue(id("layer_share"), "0.7", visible),
		chromedp.Click(id("create"), visible),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if x, err := e.st.GetExperiment(context.Background(), e.defaultWorkspace(), "layered"); err != nil || x.LayerKey != "checkout" ||
		x.LayerTo-x.LayerFrom != 7000 || x.Targeting == nil || len(x.Targeting.All) != 1 || len(x.Targeting.All[0].Values) != 2 {
		t.Errorf("experiment made in the browser: %+v, %v", x, err)
	}
	do("layers with a range", chromedp.Navigate(base+"/layers"), chromedp.WaitVisible(chromedp.CSS(`tr[data-experiment="layered"]`)))
	shot("4-layers.png")
	do("phone width", chromedp.EmulateViewport(390, 844))
	overflow("the layers page")
	shot("4-layers-phone.png")
	do("laptop width", chromedp.EmulateViewport(1280, 900))

	do("back to the experiment", chromedp.Navigate(base+"/experiments/"+ref), chromedp.WaitVisible(id("action-pause")))

	// Pause with the button; the confirmation is accepted. The live refresh
	// can show the resume button before the redirect after the POST lands,
	// so wait for the page the redirect brings (?done=pause) first; reading
	// the page while it navigates fails, so those errors are retried.
	do("pause", chromedp.Click(id("action-pause"), visible))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if loc, err := chromedp.Run(bctx, chromedp.Location()); err == nil && strings.Contains(loc, "done=pause") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pause: no redirect to the paused page within 30 s")
		}
	}
	do("paused page", chromedp.WaitVisible(id("action-resume")))
	if flash := text(".flash"); !strings.Contains(flash, "Paused") {
		t.Errorf("flash after pause %q", flash)
	}
	select {
	case msg := <-dialogs:
		if !strings.Contains(msg, "Pause") {
			t.Errorf("confirmation %q", msg)
		}
	default:
		t.Error("pausing asked for no confirmation")
	}
	if x, _ := e.st.GetExperiment(context.Background(), e.defaultWorkspace(), ref); x.Status != store.StatusPaused {
		t.Errorf("experiment is %s after the pause button", x.Status)
	}

	// Sign out: back at the form, and the pages are closed again.
	do("sign out",
		chromedp.Click(id("signout"), visible),
		chromedp.WaitVisible(id("key")),
		chromedp.Navigate(base+"/experiments/"+ref),
		chromedp.WaitVisible(id("key")),
	)
}
