package dashboard

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// TestBrowserKeys makes a website's assign key on the Keys page (first with
// an origin the API refuses), reads it from the page once, and revokes it
// with the button, accepting the confirmation.
func TestBrowserKeys(t *testing.T) {
	exe := chromium(t)
	e := newEnv(t)
	shots := artifactDir(t)

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second) // generous: CI runs it under -race on two shared cores
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
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
		if err := os.WriteFile(filepath.Join(shots, name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do("start the browser", chromedp.Navigate("about:blank"))
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
	id := func(s string) chromedp.ID { return chromedp.ID(s) }
	visible := chromedp.NodeVisible

	do("sign in and open the keys page",
		chromedp.Navigate(e.srv.URL+"/keys"),
		chromedp.SendKeys(id("key"), e.admin, visible),
		chromedp.Submit(id("key")),
		chromedp.Click(chromedp.CSS(`nav a[href="/keys"]`), visible),
		chromedp.WaitVisible(id("create-key")),
	)
	do("an invalid origin",
		chromedp.SetValue(id("key-name"), "shop", visible),
		chromedp.SetValue(id("origins"), "https://shop.example/checkout"),
		chromedp.Click(id("create-key"), visible),
		chromedp.WaitVisible(id("origins-error")),
	)
	if msg := text("#origins-error"); !strings.Contains(msg, "https://shop.example/checkout: must be an origin") {
		t.Errorf("validation message %q", msg)
	}
	do("a valid key",
		chromedp.SetValue(id("origins"), "https://shop.example\nhttp://localhost:3000", visible),
		chromedp.Click(id("create-key"), visible),
		chromedp.WaitVisible(id("new-key")),
	)
	plain, err := chromedp.Run(bctx, chromedp.Value(id("new-key")))
	if err != nil || !strings.HasPrefix(plain, "sk_") {
		t.Fatalf("the new key %q: %v", plain, err)
	}
	shot("keys-created.png")
	kid, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById("created-key").dataset.keyId`))
	if err != nil || kid == "" {
		t.Fatalf("the new key's id: %q %v", kid, err)
	}
	e.api("POST", "/v1/experiments", plain, nil, 403, nil) // an assign key: serving only

	// The page before the revocation has a .flash too (the key's
	// creation), so waiting for one can catch the old page while the form's
	// answer replaces it. Instead wait for the row to say revoked on the
	// new page, retrying reads that race the navigation, then read its
	// flash.
	do("revoke", chromedp.Click(id("revoke-"+kid), visible))
	flash, err := "", error(nil)
	for deadline := time.Now().Add(10 * time.Second); flash == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		flash, err = chromedp.Run(bctx, chromedp.Evaluate[string](`(document.querySelector('tr[data-key="`+kid+`"]')?.dataset.revoked === "true" &&
			document.querySelector('.flash')?.textContent.trim()) || ""`))
	}
	if flash == "" {
		t.Fatalf("no revoked row with a flash after the revocation (last error: %v)", err)
	}
	select {
	case msg := <-dialogs:
		if !strings.Contains(msg, "Revoke the key") {
			t.Errorf("confirmation %q", msg)
		}
	default:
		t.Error("revoking asked for no confirmation")
	}
	if !strings.Contains(flash, "revoked") {
		t.Errorf("flash %q", flash)
	}
	shot("keys-revoked.png")
	e.api("POST", "/v1/experiments/x/assign", plain, map[string]any{"unit_id": "u"}, 401, nil)
}
