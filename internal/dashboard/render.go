package dashboard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/samplit/samplit/internal/human"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/samplit/samplit/internal/optimize"
)

// pageBase is what the layout of every page needs.
type pageBase struct {
	Title     string
	Nav       string // "experiments", "layers", "funnels", "campaigns", "webhooks" or "keys": the current section
	Workspace string // empty when signed out
	CSRF      string
	Asset     string // the static files' version
	Refresh   int    // seconds between live refreshes
}

func (d *Dashboard) base(r *http.Request, s *session, title string) pageBase {
	b := pageBase{Title: title, Asset: d.assetVersion, Refresh: d.opts.RefreshSeconds}
	if s != nil {
		b.Workspace, b.CSRF = s.workspace, s.csrf
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/funnels"):
		b.Nav = "funnels"
	case strings.HasPrefix(r.URL.Path, "/experiments"):
		b.Nav = "experiments"
	case strings.HasPrefix(r.URL.Path, "/layers"):
		b.Nav = "layers"
	case strings.HasPrefix(r.URL.Path, "/campaigns"):
		b.Nav = "campaigns"
	case strings.HasPrefix(r.URL.Path, "/webhooks"):
		b.Nav = "webhooks"
	case strings.HasPrefix(r.URL.Path, "/keys"):
		b.Nav = "keys"
	}
	return b
}

// The pages; each is parsed with the layout and the shared partials.
var pageNames = []string{"signin", "error", "experiments", "experiment", "experiment_live", "new_experiment", "funnels", "funnel", "funnel_live",
	"campaigns", "campaign", "campaign_live", "webhooks", "webhook", "keys", "layers"}

func parsePages() map[string]*template.Template {
	partials, err := fs.Glob(templateFS, "templates/_*.html")
	if err != nil {
		panic(err)
	}
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		files := append([]string{"templates/" + name + ".html"}, partials...)
		t := template.New(name + ".html").Funcs(funcs)
		pages[name] = template.Must(t.ParseFS(templateFS, files...))
	}
	return pages
}

// render writes a page. It renders into a buffer first so that a template
// failure becomes a clean 500 rather than half a page.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	var buf bytes.Buffer
	if err := d.pages[page].ExecuteTemplate(&buf, page+".html", data); err != nil {
		d.log.Error("dashboard: render", "page", page, "err", err)
		http.Error(w, "The page could not be drawn; the error is in the server's log.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorPage struct {
	pageBase
	Status  int
	Message string
}

func (d *Dashboard) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s, ok := r.Context().Value(sessionCtxKey{}).(*session)
	if !ok {
		s, _, _ = d.currentSession(r)
	}
	d.render(w, r, status, "error", errorPage{pageBase: d.base(r, s, http.StatusText(status)), Status: status, Message: msg})
}

// fail answers an unexpected error: the details go to the log, never to the
// page.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the browser went away
	}
	d.log.Error("dashboard: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	d.renderError(w, r, http.StatusInternalServerError, "Something went wrong on the server; the details are in its log.")
}

// funcs are the template functions: number formatting for people.
var funcs = template.FuncMap{
	"pct":         pct,
	"days":        optimize.FormatDays,
	"count":       count,
	"num":         num,
	"small":       small,
	"when":        when,
	"optPct":      optPct,
	"optNum":      optNum,
	"color":       colorClass,
	"title":       strings.ToUpper,
	"add":         func(a, b int) int { return a + b },
	"asset":       func(v, name string) string { return path.Join("/static", name) + "?v=" + v },
	"rowField":    func(i int, f string) string { return fmt.Sprintf("variant.%d.%s", i, f) },
	"metricField": func(i int, f string) string { return fmt.Sprintf("metric.%d.%s", i, f) },
	"condField":   func(i int, f string) string { return fmt.Sprintf("condition.%d.%s", i, f) },
	"exact":       exact,
	// permille places a share of a layer on its bar, 1000 wide.
	"permille": func(x float64) string { return strconv.FormatFloat(1000*x, 'f', 1, 64) },
	"latency":  latency,
	"sentence": sentence,
	"signedPct": func(p *float64) string {
		if p == nil {
			return "–"
		}
		if *p > 0 {
			return "+" + pct(*p)
		}
		return pct(*p)
	},
	// signedPP formats a difference of rates in percentage points.
	"signedPP": func(x float64) string {
		s := strconv.FormatFloat(100*math.Abs(x), 'f', 1, 64) + " pp"
		if x < 0 {
			return "−" + s
		}
		return "+" + s
	},
	"deref": func(p *float64) float64 {
		if p == nil {
			return math.NaN()
		}
		return *p
	},
	"deref2": func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	},
	"field": func(name, label, value, err, placeholder string) formField {
		return formField{name, label, value, err, placeholder}
	},
}

// formField is one numeric input of the create form.
type formField struct{ Name, Label, Value, Error, Placeholder string }

// pct formats a probability or rate for people: 12.3%, with "<0.1%" and
// ">99.9%" where one decimal would round to a certainty that is not there.
func pct(p float64) string {
	switch {
	case math.IsNaN(p):
		return "–"
	case p > 0 && p < 0.0005:
		return "<0.1%"
	case p < 1 && p > 0.9995:
		return ">99.9%"
	}
	return strconv.FormatFloat(100*p, 'f', 1, 64) + "%"
}

func optPct(p *float64) string {
	if p == nil {
		return "–"
	}
	return pct(*p)
}

// count formats a count: 950, 1.2k, 34k, 1.2M.
func count(n int64) string {
	a := math.Abs(float64(n))
	switch {
	case a < 1000:
		return strconv.FormatInt(n, 10)
	case a < 1e6:
		return short(float64(n)/1e3) + "k"
	case a < 1e9:
		return short(float64(n)/1e6) + "M"
	}
	return short(float64(n)/1e9) + "B"
}

// short keeps one decimal below 100 (1.2, 12.3) and none above (123),
// dropping a trailing ".0".
func short(x float64) string {
	prec := 1
	if math.Abs(x) >= 100 {
		prec = 0
	}
	s := strconv.FormatFloat(x, 'f', prec, 64)
	return strings.TrimSuffix(s, ".0")
}

// num formats a value of a continuous metric with three significant digits
// (12.3, 0.0456), and thousands as counts do (12.3k).
func num(x float64) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "–"
	case math.Abs(x) >= 1000:
		a := math.Abs(x)
		sign := ""
		if x < 0 {
			sign = "-"
		}
		switch {
		case a < 1e6:
			return sign + short(a/1e3) + "k"
		case a < 1e9:
			return sign + short(a/1e6) + "M"
		}
		return sign + short(a/1e9) + "B"
	}
	return human.Sig(x, 3)
}

func optNum(x *float64) string {
	if x == nil {
		return "–"
	}
	return num(*x)
}

// small formats a small quantity such as an expected loss or a p-value with
// two significant digits (0.0012), plain zero as 0.
func small(x float64) string {
	return human.Sig(x, 2)
}

// when formats a time for people, in UTC (the server does not know the
// reader's zone; the script does not rewrite times, to keep it small).
func when(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return "–"
		}
		return v.UTC().Format("2 Jan 2006 15:04 UTC")
	case *time.Time:
		if v == nil {
			return "–"
		}
		return when(*v)
	}
	return "–"
}

// exact formats a number for a data attribute: the shortest text that parses
// back to the same float64, so tests can compare charts with the results
// exactly.
func exact(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
