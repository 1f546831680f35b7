package optimize

import (
	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/store"
)

// ForgetPolicy lets the external tests drop an experiment's allocation as a
// recorded guardrail trip does (Results).
func ForgetPolicy(x *Experiments, experimentID string) { x.forgetPolicy(experimentID) }

// ArmOf lets the external tests build an engine arm from stored counters as
// the optimizer does.
func ArmOf(v store.Variant, c store.Counters) engine.Arm { return armOf(v, c) }
