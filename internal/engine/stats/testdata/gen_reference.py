#!/usr/bin/env python3
"""Generate high-precision reference values for internal/engine/stats tests.

Run from this directory:  python3 gen_reference.py > reference.json
Requires mpmath (tested with 1.3.0). Every value is computed with 40 significant
digits by mpmath, independently of the Go code: the regularized incomplete beta
uses mpmath.betainc for moderate parameters and, for huge parameters where its
hypergeometric series does not converge, tanh-sinh quadrature of the exact density
(log-gamma at 40 digits) split around the mode; quantiles are found by Newton's
method on those CDFs (checked to 1e-20), normal quantiles by mpmath.findroot on ncdf.
"""
import json
import mpmath as mp

mp.mp.dps = 40


def logpdf(x, a, b):
    return (a - 1) * mp.log(x) + (b - 1) * mp.log1p(-x) - (mp.loggamma(a) + mp.loggamma(b) - mp.loggamma(a + b))


def cdf(x, a, b):
    a, b, x = mp.mpf(a), mp.mpf(b), mp.mpf(x)
    if x <= 0:
        return mp.mpf(0)
    if x >= 1:
        return mp.mpf(1)
    if a + b < 1e5:
        return mp.betainc(a, b, 0, x, regularized=True)
    mean = a / (a + b)
    sd = mp.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    f = lambda t: mp.exp(logpdf(t, a, b))
    # Integrate over the side that holds less mass, with breakpoints every sd.
    if x <= mean:
        lo = max(mp.mpf(0), mean - 40 * sd)
        if x <= lo:
            return mp.mpf(0)
        pts = [lo] + [lo + 2 * k * sd for k in range(1, int((x - lo) / (2 * sd)) + 1)] + [x]
        return mp.quad(f, sorted(set(pts)))
    hi = min(mp.mpf(1), mean + 40 * sd)
    if x >= hi:
        return mp.mpf(1)
    pts = [x] + [x + 2 * k * sd for k in range(1, int((hi - x) / (2 * sd)) + 1)] + [hi]
    return 1 - mp.quad(f, sorted(set(pts)))


def quantile(p, a, b):
    a, b, p = mp.mpf(a), mp.mpf(b), mp.mpf(p)
    mean = a / (a + b)
    sd = mp.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    # Newton's method on the CDF with the exact density as derivative, started at
    # the normal approximation and kept inside (0, 1); convergence is checked.
    f = lambda t: mp.exp(logpdf(t, a, b))
    z = mp.sqrt(2) * mp.erfinv(2 * p - 1)
    x = min(max(mean + z * sd, mean / 100), 1 - (1 - mean) / 100)
    for _ in range(200):
        step = (cdf(x, a, b) - p) / f(x)
        nx = x - step
        if nx <= 0:
            nx = x / 2
        elif nx >= 1:
            nx = (x + 1) / 2
        if abs(nx - x) < mp.mpf(10) ** -25 * x:
            x = nx
            break
        x = nx
    else:
        raise RuntimeError("no convergence")
    assert abs(cdf(x, a, b) - p) < mp.mpf(10) ** -20
    return x


beta_cases = [
    (1, 1), (2, 3), (0.5, 0.5), (101, 901), (1, 1001), (1001, 1),
    (3, 10**6), (10**4, 9 * 10**4), (120, 1082), (10**6 + 1, 9 * 10**6 + 1),
    (10**8 + 1, 9 * 10**8 + 1), (1, 10**9 + 1), (5 * 10**8, 5 * 10**8), (2, 10**9),
]
out = {"beta_cdf": [], "beta_quantile": [], "normal_quantile": []}
import sys
for a, b in beta_cases:
    print(a, b, file=sys.stderr, flush=True)
    a_, b_ = mp.mpf(a), mp.mpf(b)
    mean = a_ / (a_ + b_)
    sd = mp.sqrt(a_ * b_ / ((a_ + b_) ** 2 * (a_ + b_ + 1)))
    for z in (-3, -1, 0, 0.5, 2):
        x = mean + z * sd
        if x <= 0 or x >= 1:
            continue
        out["beta_cdf"].append({"a": a, "b": b, "x": float(x), "cdf": float(cdf(mp.mpf(float(x)), a, b))})
    if a + b <= 2e9 and not (a + b > 1e5 and min(a, b) < 1):
        for p in (0.001, 0.025, 0.5, 0.975, 0.999):
            out["beta_quantile"].append({"a": a, "b": b, "p": p, "q": float(quantile(p, a, b))})
for p in (1e-300, 1e-12, 1e-6, 0.001, 0.025, 0.05, 0.3, 0.5, 0.8, 0.975, 0.999, 1 - 1e-9):
    # Solve log ncdf(q) = log p at 40 digits; ncdf is mpmath's own erfc-based normal CDF.
    pp = mp.mpf(p)
    q = mp.findroot(lambda t: mp.log(mp.ncdf(t)) - mp.log(pp), mp.sqrt(2) * mp.erfinv(2 * mp.mpf(min(max(p, 1e-15), 1 - 1e-15)) - 1))
    assert abs(mp.ncdf(q) - pp) < pp * mp.mpf(10) ** -25
    out["normal_quantile"].append({"p": p, "q": float(q)})
print(json.dumps(out, indent=1))
