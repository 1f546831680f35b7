package dashboard

import (
	"context"
	"errors"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/optimize"
)

// transition applies a lifecycle action to an experiment, funnel or
// campaign (a pointer to the stored object) through its Optimizer: the same
// status machine, webhook events and cache invalidation as the API's
// lifecycle routes.
func (d *Dashboard) transition(ctx context.Context, object any, action string, winner *string) error {
	opt, err := d.optimizers.For(object)
	if err != nil {
		return err
	}
	return opt.Transition(ctx, optimize.Action(action), winner)
}

// refusal is how a refused change is shown: the HTTP status the API answers
// it with and its message (the problem's detail). ok is false for an
// internal failure, which is not the person's to read.
func refusal(err error) (status int, message string, ok bool) {
	var ae *apperr.Error
	if !errors.As(err, &ae) || ae.Code == apperr.Internal {
		return 0, "", false
	}
	return apperr.HTTPStatus(ae.Code), ae.Message, true
}
