#!/usr/bin/env python3
"""Reference P(best) and expected loss of independent Beta posteriors.

Run from this directory:  python3 gen_pbest.py > pbest_reference.json
Requires mpmath (tested with 1.3.0). Read by internal/engine/numbers_test.go.
Takes about half a minute of two cores.

Each case is a list of arms (units n, conversions c) with the Beta(1 + c, 1 + n - c)
posterior of the default prior. For every arm i the script computes

    P_i    = integral of f_i(x) * prod_{j != i} F_j(x) dx
    loss_i = E[max_j theta_j] - a_i / (a_i + b_i),
    E[max] = L + integral_L^1 (1 - prod_j F_j(x)) dx

(the loss from the CDF form of E[max], not from densities, and the mean in closed
form), independently of the Go code and of its method:

- every density is exact: its logarithm at the mean at 30 digits (mpmath loggamma
  for the normalising constant, so nothing is normalised numerically), and relative
  to the mean in double precision as (a-1) log1p(d/m) + (b-1) log1p(-d/(1-m)), d = x - m,
  whose terms are small where the mass is (relative error ~1e-12 even at 1e9 units);
- each arm's support is cut at 40 standard deviations (or at 0 and 1); the mass
  beyond is below 1e-17 for every shape here (shapes >= 1);
- the x axis is split at every arm's mean + k sd, k = -40..40, so each panel is at
  most one sd of every arm whose support it meets; a panel met by m supports is
  split again into ceil(sqrt(m)) parts (a product of m CDFs is steeper); each
  panel is integrated by 12-point Gauss-Legendre;
- each F_j at the nodes is the cumulative sum of 6-point Gauss-Legendre integrals
  of f_j between consecutive nodes (at most 1/12 of a panel apart).

Self-checks, asserted and written to each case's "check": sum_i P_i = 1; every F_j
ends at 1; E[max] from the CDF form equals sum_i integral x f_i prod_{j!=i} F_j (all
within 1e-6; they are ~1e-12 except for posteriors within 1e-8 of 0 or 1, where double
precision resolves x only to 1e-16, i.e. 1e-7 of a standard deviation at 1e9 units).
For two arms with small integer shapes Evan Miller's closed form is checked too.
"""
import json
import sys

import math

import mpmath as mp

mp.mp.dps = 30
GL_N = 12
GL_CDF = 6


def gl_nodes(n=GL_N, _cache={}):
    if n not in _cache:
        # Gauss-Legendre nodes and weights on [-1, 1] at the working precision.
        xs, ws = [], []
        for k in range(1, n + 1):
            x = mp.cos(mp.pi * (k - 1.0 / 4) / (n + 1.0 / 2))
            for _ in range(100):
                p0, p1 = 1.0, x
                for m in range(2, n + 1):
                    p0, p1 = p1, ((2 * m - 1) * x * p1 - (m - 1) * p0) / m
                dp = n * (x * p1 - p0) / (x * x - 1)
                dx = p1 / dp
                x -= dx
                if abs(dx) < mp.mpf(10) ** -28:
                    break
            xs.append(x)
            ws.append(2 / ((1 - x * x) * dp * dp))
        _cache[n] = ([float(x) for x in xs], [float(w) for w in ws])
    return _cache[n]


class Arm:
    def __init__(self, n, c):
        a, b = mp.mpf(1 + c), mp.mpf(1 + n - c)
        mean = a / (a + b)
        sd = mp.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        # log f(mean) at 30 digits (log-gamma normalising constant); the density
        # elsewhere is f(mean) times exp((a-1) log1p(d/m) + (b-1) log1p(-d/(1-m)))
        # with d = x - m: every term is small near the mass, so double precision
        # keeps ~1e-12 relative accuracy even at a + b = 1e9.
        self.logfm = float(mp.loggamma(a + b) - mp.loggamma(a) - mp.loggamma(b)
                           + (a - 1) * mp.log(mean) + (b - 1) * mp.log1p(-mean))
        self.a, self.b = float(a), float(b)
        self.mean, self.sd = float(mean), float(sd)
        self.exact_mean = mean
        self.lo = max(0.0, self.mean - 40 * self.sd)
        self.hi = min(1.0, self.mean + 40 * self.sd)

    def pdf(self, x):
        if x < self.lo or x > self.hi:
            return 0.0
        m, d = self.mean, x - self.mean
        l = self.logfm
        if self.a != 1:
            if x <= 0:
                return 0.0
            # log(x/m): log1p near the mean, plain log far from it (no rounding to -1).
            l += (self.a - 1) * (math.log1p(d / m) if d > -m / 2 else math.log(x / m))
        if self.b != 1:
            if x >= 1:
                return 0.0
            l += (self.b - 1) * (math.log1p(-d / (1 - m)) if d < (1 - m) / 2 else math.log((1 - x) / (1 - m)))
        return math.exp(l)


def integrate(f, x0, x1, n=GL_N):
    xs, ws = gl_nodes(n)
    h = (x1 - x0) / 2
    c = (x1 + x0) / 2
    return h * math.fsum(w * f(c + h * x) for x, w in zip(xs, ws))


def case(arms_nc):
    import bisect
    print(len(arms_nc), arms_nc[:3], file=sys.stderr, flush=True)
    distinct = {}
    for n, c in arms_nc:
        if (n, c) not in distinct:
            distinct[(n, c)] = Arm(n, c)
    arms = [distinct[(n, c)] for n, c in arms_nc]
    k = len(arms)
    cuts = set()
    for a in distinct.values():
        cuts.add(a.lo)
        cuts.add(a.hi)
        for j in range(-40, 41):
            x = a.mean + j * a.sd
            if a.lo < x < a.hi:
                cuts.add(x)
    cuts = sorted(cuts)
    # A product of m CDFs varies faster than one of them (up to m times for the
    # exponential tails of Beta(a, 1)): a panel met by m supports is split into
    # ceil(sqrt(m)) equal parts, which keeps the exponent's change over a panel
    # under ~4 even then, where 12-point Gauss-Legendre is exact to ~1e-17.
    panels = []
    for x0, x1 in zip(cuts, cuts[1:]):
        m = sum(1 for a in arms if a.lo < x1 and a.hi > x0)
        parts = max(1, int(math.ceil(math.sqrt(m))))
        for p in range(parts):
            panels.append((x0 + (x1 - x0) * p / parts, x0 + (x1 - x0) * (p + 1) / parts))
    xs, ws = gl_nodes()
    nodes = []
    for x0, x1 in panels:
        h, c = (x1 - x0) / 2, (x1 + x0) / 2
        for x, w in zip(xs, ws):
            nodes.append((c + h * x, h * w))
    points = sorted(set(cuts) | {p for pan in panels for p in pan} | {x for x, _ in nodes})
    cdfs, pdfs = {}, {}
    worst_end = 0.0
    for key, a in distinct.items():
        F, f = {}, {}
        i0 = bisect.bisect_left(points, a.lo)
        i1 = bisect.bisect_right(points, a.hi)
        acc = 0.0
        prev = a.lo
        for x in points[i0:i1]:
            if x > prev:
                acc += integrate(a.pdf, prev, x, GL_CDF)
            F[x] = acc
            f[x] = a.pdf(x)
            prev = x
        assert abs(acc - 1) < 1e-6, ("cdf end", acc, a.a, a.b)
        worst_end = max(worst_end, abs(acc - 1))
        cdfs[key], pdfs[key] = F, f
    keys = [(n, c) for n, c in arms_nc]

    def Fv(key, x):
        a = distinct[key]
        if x <= a.lo:
            return 0.0
        if x >= a.hi:
            return 1.0
        return cdfs[key][x]

    def fv(key, x):
        return pdfs[key].get(x, 0.0)

    pbest = [0.0] * k
    emax_density = 0.0
    for x, w in nodes:
        fs = [fv(key, x) for key in keys]
        Fs = [Fv(key, x) for key in keys]
        # Leave-one-out products from prefix and suffix products.
        pre = [1.0]
        for j in range(k):
            pre.append(pre[-1] * Fs[j])
        suf = [1.0]
        for j in reversed(range(k)):
            suf.append(suf[-1] * Fs[j])
        suf.reverse()
        for i in range(k):
            if fs[i] == 0:
                continue
            g = w * fs[i] * pre[i] * suf[i + 1]
            pbest[i] += g
            emax_density += x * g
    # CDF form of E[max]: below L = max_j lo_j some F_j is 0, so 1 - prod F = 1;
    # L is a cut point, so no panel straddles it.
    L = max(a.lo for a in arms)
    emax = L
    for x, w in nodes:
        if x > L:
            prod = 1.0
            for key in keys:
                prod *= Fv(key, x)
            emax += w * (1 - prod)
    assert abs(math.fsum(pbest) - 1) < 1e-6, ("sum", math.fsum(pbest))
    assert abs(emax - emax_density) < 1e-6, ("emax", emax, emax_density)
    return {
        "arms": [[n, c] for n, c in arms_nc],
        "p_best": [float(p) for p in pbest],
        "expected_loss": [max(emax - float(a.exact_mean), 0.0) for a in arms],
        # Self-check residuals: |sum P - 1|, max |F_j(end) - 1|, |E[max] two ways|.
        "check": [abs(math.fsum(pbest) - 1), worst_end, abs(emax - emax_density)],
    }


def evan_miller(aA, bA, aB, bB):
    """P(theta_B > theta_A), integer aB."""
    lb = lambda a, b: mp.loggamma(a) + mp.loggamma(b) - mp.loggamma(a + b)
    return mp.fsum(mp.exp(lb(aA + i, bA + bB) - mp.log(bB + i) - lb(1 + i, bB) - lb(aA, bA)) for i in range(int(aB)))


E9, E8, E6 = 10**9, 10**8, 10**6
CASES = [
    # n = 0, 1, small
    [(0, 0), (0, 0)],
    [(1, 0), (1, 1)],
    [(1, 1), (0, 0)],
    [(10, 3), (12, 5)],
    [(100, 10), (100, 15)],
    [(3, 0), (3, 3), (0, 0)],
    # 1e4 .. 1e9, near-equal arms
    [(10**4, 1000), (10**4, 1050)],
    [(E6, 10**5), (E6, 100300)],
    [(E8, 10**7), (E8, 10**7 + 3000)],
    [(E9, E8), (E9, E8 + 10000)],
    [(E9, E8), (E9, E8 + 10000), (E9, E8 - 5000)],
    # rates 0 and 1
    [(E8, E8), (1000, 100)],
    [(1000, 0), (1000, 0)],
    [(E9, 0), (10, 0)],
    [(E9, E9), (E9, E9)],
    [(5, 5), (E6, E6)],
    [(E9, 0), (E9, 1)],
    [(E9, E9), (E6, E6 - 1)],
    # very unequal n
    [(6000, 2), (E9, 183000)],
    [(10, 1), (E9, E8)],
    [(0, 0), (E9, 5 * E8)],
    [(3, 1), (E9, 5 * E8)],
    [(E9, 5 * E8), (E9, 5 * E8 + 30000), (2, 1)],
    [(50, 1), (E9, 2 * 10**7), (10**5, 2000), (10**4, 230)],
    # many arms
    [(1000, 100 + 3 * i) for i in range(5)],
    [(10**4 * (i + 1), 100 * (i + 1) + 7 * i) for i in range(10)],
    [(100, 100)] * 17,
    [(1000, 1000)] * 20,
    [(0, 0)] * 20,
    [(E9, E8)] * 12,
    [(n, c) for n, c in [(0, 0), (1, 1), (10, 2), (100, 12), (1000, 110), (10**4, 1030), (10**5, 10100), (E6, 100500),
                         (E8, 10**7 + 2000), (E9, E8 + 5000), (E9, E8 - 7000), (500, 500), (2000, 0), (30, 4),
                         (3000, 320), (E6, 99800), (40000, 4100), (7, 1), (E9, 0), (60, 9)]],
]


def main():
    out = []
    # Self-check of the method against Evan Miller's closed form.
    for aA, bA, aB, bB in [(11, 91, 16, 86), (1, 1001, 3, 999), (5, 5, 300, 3)]:
        r = case([(aA + bA - 2, aA - 1), (aB + bB - 2, aB - 1)])
        em = evan_miller(aA, bA, aB, bB)
        assert abs(r["p_best"][1] - em) < 1e-10, (r, em)
    from multiprocessing import Pool
    with Pool(2) as pool:
        out = pool.map(case, CASES, chunksize=1)
    print(json.dumps({"cases": out}, indent=1))


if __name__ == "__main__":
    main()
