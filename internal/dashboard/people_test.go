package dashboard

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestListsForPeople: the experiment list is newest first, says "too
// early" rather than naming a leader before every variant has min_samples
// units, names a leader after, and names a declared winner as the winner.
func TestListsForPeople(t *testing.T) {
	e := newEnv(t)
	early := e.createExperiment(e.admin, "early", "control", "green") // min_samples 20
	e.feed(e.admin, early, "e", 10, map[string]float64{"control": 0.1, "green": 0.9})
	leading := e.createExperiment(e.admin, "leading", "control", "green")
	e.feed(e.admin, leading, "l", 200, map[string]float64{"control": 0.05, "green": 0.30})
	won := e.createExperiment(e.admin, "won", "control", "green")
	e.feed(e.admin, won, "w", 600, map[string]float64{"control": 0.02, "green": 0.5})
	x, _ := e.st.GetExperiment(context.Background(), e.defaultWorkspace(), won)
	if res, err := e.opt.Results(context.Background(), &x); err != nil || res.Winner == nil {
		t.Fatalf("the test data should declare a winner: %v %v", err, res)
	}
	b := e.browser()
	b.signIn(e.admin)
	p := b.get("/experiments")
	order := regexp.MustCompile(`data-experiment="([a-z-]+)"`).FindAllStringSubmatch(p.Body, -1)
	var keys []string
	for _, m := range order {
		keys = append(keys, m[1])
	}
	if strings.Join(keys, ",") != "won,leading,early" {
		t.Errorf("list order %v, want newest first", keys)
	}
	row := func(key string) string {
		r := p.Body[strings.Index(p.Body, `data-experiment="`+key+`"`):]
		return r[:strings.Index(r, "</tr>")]
	}
	if r := row("early"); !strings.Contains(r, "too early") || strings.Contains(r, "leading") || strings.Contains(r, "%") {
		t.Errorf("below min_samples the row names a leader:\n%s", r)
	}
	if r := row("leading"); !strings.Contains(r, "green <span class=\"muted\">(leading)</span>") {
		t.Errorf("leading row:\n%s", r)
	}
	if r := row("won"); !strings.Contains(r, `<strong class="winner">green</strong>`) {
		t.Errorf("the list does not show the winner:\n%s", r)
	}
	// The detail page of the early one marks no leader either.
	d := b.get("/experiments/" + early)
	if strings.Contains(d.Body, `class="leader"`) || strings.Contains(d.Body, `id="leader"`) {
		t.Errorf("the early experiment's page marks a leader")
	}
}

// TestServeFromNowOnDefault: completing an experiment proposes the winner,
// else the leader, else the control; "no variant" is offered but never
// preselected.
func TestServeFromNowOnDefault(t *testing.T) {
	e := newEnv(t)
	id := e.createExperiment(e.admin, "fresh", "control", "green")
	b := e.browser()
	b.signIn(e.admin)
	selected := func() string {
		body := b.get("/experiments/" + id).Body
		sel := body[strings.Index(body, `name="winner"`):]
		sel = sel[:strings.Index(sel, "</select>")]
		m := regexp.MustCompile(`<option value="([^"]*)" selected>`).FindStringSubmatch(sel)
		if m == nil {
			return "(nothing selected: the browser takes the first option)" + sel
		}
		return m[1]
	}
	// No data: the control (the first variant, marked control by the API).
	if got := selected(); got != "control" {
		t.Errorf("with no data the default is %q, want control", got)
	}
	e.feed(e.admin, id, "u", 600, map[string]float64{"control": 0.02, "green": 0.5})
	if got := selected(); got != "green" {
		t.Errorf("with green the winner the default is %q, want green", got)
	}
	csrf := b.csrf()
	if p := b.post("/experiments/"+id+"/complete", url.Values{"csrf": {csrf}, "winner": {"green"}}); p.Status >= 400 {
		t.Fatalf("complete: %d", p.Status)
	}
}

// TestNumbersForPeople: small p-values, losses and means are written out,
// never in scientific notation.
func TestNumbersForPeople(t *testing.T) {
	for _, x := range []float64{2.6e-05, 1.2e-7, 0.00048, 3e-10} {
		for _, s := range []string{small(x), num(x), num(-x)} {
			if strings.ContainsAny(s, "eE") {
				t.Errorf("%v formatted as %q", x, s)
			}
		}
	}
	if got := small(2.6e-05); got != "0.000026" {
		t.Errorf("small(2.6e-05) = %q", got)
	}
}
