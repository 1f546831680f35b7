package optimize

// ForgetPolicy lets the external tests drop an experiment's allocation as a
// recorded guardrail trip does (Results).
func ForgetPolicy(x *Experiments, experimentID string) { x.forgetPolicy(experimentID) }
