package dashboard

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserCampaign signs in, opens a campaign whose guardrail stopped a
// variant, and saves screenshots at a laptop's and a phone's width.
func TestBrowserCampaign(t *testing.T) {
	exe := chromium(t)
	e := newEnv(t)
	shots := artifactDir(t)
	id := e.createCampaign(e.admin, "bf")
	first := e.send(e.admin, "bf", "r", 400)
	var evs []map[string]any
	unsubs := 0
	for r, v := range first {
		if v == "s2" {
			evs = append(evs, map[string]any{"recipient": r, "type": "click"})
			if unsubs < 20 {
				evs = append(evs, map[string]any{"recipient": r, "type": "unsubscribe"})
				unsubs++
			}
		}
	}
	e.api("POST", "/v1/campaigns/bf/events", e.admin, map[string]any{"events": evs}, 202, nil)
	e.api("GET", "/v1/campaigns/bf/results", e.admin, nil, 200, nil)
	e.send(e.admin, "bf", "q", 100)

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
	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", filepath.Join(shots, name))
	}
	do("sign in",
		chromedp.Navigate(e.srv.URL+"/campaigns/"+id),
		chromedp.SendKeys(chromedp.ID("key"), e.admin, chromedp.NodeVisible),
		chromedp.Submit(chromedp.ID("key")),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/campaigns"]`)),
		chromedp.Navigate(e.srv.URL+"/campaigns/"+id),
		chromedp.WaitVisible(chromedp.CSS(`svg[data-chart="waves"]`)),
	)
	shot("campaign-laptop.png")
	do("phone width", chromedp.EmulateViewport(390, 844))
	shot("campaign-phone.png")
}
