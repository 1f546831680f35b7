package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/samplit/samplit/client"
)

// The three lines of a service: a client, an assignment, a conversion.
func Example() {
	ctx := context.Background()
	c := client.New("http://localhost:8080", os.Getenv("SAMPLIT_KEY"))

	a, err := c.Assign(ctx, "checkout-button", "user-123")
	if err != nil {
		log.Fatal(err) // or show the default experience
	}
	var look struct{ Color string }
	_ = a.DecodePayload(&look)
	fmt.Println("show", a.Variant, look.Color)

	// Later, when user-123 buys: the order id makes the event count once
	// however often it is sent, so the client may retry it.
	if _, err := c.Track(ctx, "checkout-button", client.Event{UnitID: "user-123", IdempotencyKey: "order-789"}); err != nil {
		log.Print(err)
	}
}

// Creating an experiment, with the settings that differ from the defaults.
func ExampleClient_CreateExperiment() {
	ctx := context.Background()
	c := client.New("http://localhost:8080", os.Getenv("SAMPLIT_KEY"),
		client.WithLogger(slog.Default()),
		client.WithRetry(5, 100*time.Millisecond),
		client.WithUserAgent("checkout-service/1.4"))

	e, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{
		Key:    "checkout-button",
		Name:   "Checkout button colour",
		Metric: client.MetricBinary,
		Variants: []client.VariantSpec{
			{Key: "control", Control: true, Payload: map[string]string{"color": "grey"}},
			{Key: "green", Payload: map[string]string{"color": "green"}},
		},
		Settings: &client.SettingsSpec{DecisionThreshold: new(0.95), Seed: new(int64(42))},
		Start:    true,
	})
	switch {
	case client.IsConflict(err):
		e, err = c.GetExperiment(ctx, "checkout-button") // created before: use it
	case err != nil:
		log.Fatal(err)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.ID, e.Status)
}

// Iterating over every running experiment, page by page.
func ExampleClient_Experiments() {
	ctx := context.Background()
	c := client.New("http://localhost:8080", os.Getenv("SAMPLIT_KEY"))
	for e, err := range c.Experiments(ctx, client.ListParams{Status: client.StatusRunning}) {
		if err != nil {
			log.Fatal(err)
		}
		r, err := c.Results(ctx, e.ID)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Key, r.TotalUnits, r.Decision.State)
	}
}

// A 422 names every invalid field, for showing next to the right input.
func ExampleIsInvalid() {
	// A stand-in for a Samplit server that refuses the request.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		fmt.Fprint(w, `{"type":"https://samplit.dev/problems/invalid","title":"Invalid request","status":422,
			"detail":"the request has 2 invalid fields","request_id":"req_1",
			"errors":[{"field":"variants","reason":"must hold between 2 and 20 variants, not 1"},
			          {"field":"settings.decision_threshold","reason":"must be greater than 0 and less than 1"}]}`)
	}))
	defer srv.Close()

	c := client.New(srv.URL, "sk_example")
	_, err := c.CreateExperiment(context.Background(), client.CreateExperimentRequest{
		Key:      "checkout-button",
		Variants: []client.VariantSpec{{Key: "control"}},
		Settings: &client.SettingsSpec{DecisionThreshold: new(1.5)},
	})
	fmt.Println("invalid:", client.IsInvalid(err))
	var e *client.Error
	if errors.As(err, &e) {
		for _, f := range e.Fields {
			fmt.Printf("%s: %s\n", f.Field, f.Reason)
		}
		fmt.Println("quote", e.RequestID, "when reporting it")
	}
	// Output:
	// invalid: true
	// variants: must hold between 2 and 20 variants, not 1
	// settings.decision_threshold: must be greater than 0 and less than 1
	// quote req_1 when reporting it
}
