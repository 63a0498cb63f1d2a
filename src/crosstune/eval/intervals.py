"""The one interval rule for proportions (95% Wilson score), for paired differences of proportions (Newcombe's
hybrid score interval, built from the two Wilson intervals) and the clustered McNemar test, all honest at the edges.

Every table, plot, Markdown file, HTML page and terminal line that prints the interval of a rate (accuracy, share of
responses in the expected language) or of a paired difference gets it from here:

- `wilson(k, n)`: the Wilson score interval; 0/n and n/n give intervals of non-zero width (13/13: [0.77, 1.00]).
  It equals scipy's `binomtest(k, n).proportion_ci(method="wilson")` for whole counts; it is written out because
  the clustered form below needs a fractional n.
- Rates pooled over several languages of the same items (the same prompt in zh, es and vi; a question in four
  languages) are not independent trials: `proportion_ci(values, clusters)` uses Wilson with the effective number
  of trials n / design effect, the design effect from the between-item variance (Kish), never more than the trials
  and never fewer than the items. When every outcome is the same the correlation cannot be estimated and n is the
  number of items (the cautious end).
- `paired_diff_ci(a, b)`: B - A for paired outcomes, Newcombe (1998, Stat Med 17:2635, method 10). When no pair
  differs the difference is 0 and the interval still has width: it says how large a difference n pairs could
  have missed. Pooled over languages, the counts are scaled to the effective number of pairs the same way.
- `clustered_mcnemar(a, b, clusters)`: Durkalski et al. (2003, Stat Med 22:2417); with one pair per item it is
  McNemar's chi-square, so per-language rows use the exact McNemar test and pooled rows this one.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from statistics import NormalDist

Z95 = NormalDist().inv_cdf(0.975)
RULE = "95% Wilson score"
PAIRED_RULE = "95% Newcombe hybrid score (paired)"
CLUSTER_NOTE = "pooled over languages: effective n clustered by item"


def wilson(k: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials (k and n may be fractional); (nan, nan) for n <= 0."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(max(p * (1 - p) / n + z * z / (4 * n * n), 0.0)) / den
    return (0.0 if k <= 0 else max(0.0, centre - half), 1.0 if k >= n else min(1.0, centre + half))


def _groups(clusters: Sequence[Hashable] | None, n: int) -> list[list[int]]:
    by: dict = {}
    for i, c in enumerate(clusters if clusters is not None else range(n)):
        by.setdefault(c, []).append(i)
    return list(by.values())


def effective_n(values: Sequence[float], clusters: Sequence[Hashable] | None = None) -> float:
    """n / design effect of the mean of `values` when the values of one cluster (item) are correlated: between the
    number of clusters and n; the number of clusters when the values do not vary."""
    n = len(values)
    groups = _groups(clusters, n)
    g = len(groups)
    if g == n or n == 0:
        return float(n)
    if g == 1:  # one item: no between-item variance to learn from
        return 1.0
    mean = sum(values) / n
    srs = sum((v - mean) ** 2 for v in values) / n / n  # variance of the mean if all n were independent
    if srs <= 0:
        return float(g)
    clustered = g / (g - 1) * sum((sum(values[i] for i in grp) - mean * len(grp)) ** 2 for grp in groups) / n / n
    if clustered <= 0:
        return float(n)
    return min(float(n), max(float(g), n * srs / clustered))


def proportion_ci(values: Sequence[bool | float], clusters: Sequence[Hashable] | None = None) -> list[float] | None:
    """The rule's interval of the share of true values (None for none), clustered when `clusters` is given."""
    if not values:
        return None
    x = [float(v) for v in values]
    n_eff = effective_n(x, clusters)
    lo, hi = wilson(sum(x) / len(x) * n_eff, n_eff)
    return [round(lo, 4), round(hi, 4)]


def paired_counts(a: Sequence[bool], b: Sequence[bool]) -> tuple[int, int, int, int]:
    """(both right, right only in A, right only in B, both wrong)."""
    both = sum(1 for x, y in zip(a, b) if x and y)
    only_a = sum(1 for x, y in zip(a, b) if x and not y)
    only_b = sum(1 for x, y in zip(a, b) if y and not x)
    return both, only_a, only_b, len(a) - both - only_a - only_b


def newcombe_paired(both: float, only_a: float, only_b: float, neither: float,
                    z: float = Z95) -> tuple[float, float]:
    """Newcombe's hybrid score interval (method 10) for p_B - p_A from the paired 2x2 counts (may be fractional)."""
    n = both + only_a + only_b + neither
    if n <= 0:
        return (float("nan"), float("nan"))
    pa, pb = (both + only_a) / n, (both + only_b) / n
    la, ua = wilson(both + only_a, n, z)
    lb, ub = wilson(both + only_b, n, z)
    margins = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = 0.0
    if margins > 0:
        cross = both * neither - only_a * only_b
        phi = (cross - n / 2) / math.sqrt(margins) if cross > n / 2 else min(cross, 0.0) / math.sqrt(margins)
    d = pb - pa
    lower = d - math.sqrt(max((pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2, 0.0))
    upper = d + math.sqrt(max((ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2, 0.0))
    return (max(-1.0, lower), min(1.0, upper))


def paired_diff_ci(a: Sequence[bool], b: Sequence[bool],
                   clusters: Sequence[Hashable] | None = None) -> list[float]:
    """The interval of p_B - p_A for paired outcomes; with `clusters`, the counts scaled to the effective n."""
    counts = paired_counts(a, b)
    diff = [float(y) - float(x) for x, y in zip(a, b)]
    scale = effective_n(diff, clusters) / len(diff) if diff else 1.0
    lo, hi = newcombe_paired(*(c * scale for c in counts))
    return [round(lo, 4), round(hi, 4)]


def clustered_mcnemar(a: Sequence[bool], b: Sequence[bool], clusters: Sequence[Hashable]) -> float:
    """Durkalski's clustered McNemar p-value: (B - C)^2 / sum over clusters of (b_k - c_k)^2 against chi-square(1);
    B, C: pairs right only in A, only in B. 1.0 when no cluster leans either way."""
    from scipy.stats import chi2

    per: dict = {}
    for x, y, c in zip(a, b, clusters):
        per[c] = per.get(c, 0) + (int(bool(x) and not y) - int(bool(y) and not x))
    total = sum(per.values())
    spread = sum(v * v for v in per.values())
    if spread == 0:
        return 1.0
    return float(chi2.sf(total * total / spread, 1))


def fmt_p(p: float) -> str:
    """A p-value for people: `< 0.001`, else two significant digits (0.0043, 0.12, 1.0)."""
    if p < 0.001:
        return "< 0.001"
    return f"{p:.2g}" if p < 0.995 else "1.0"


def fmt_ci(ci, digits: int = 2, signed: bool = False) -> str:
    """` [lo, hi]` (empty for no interval)."""
    if not ci or any(c is None or (isinstance(c, float) and math.isnan(c)) for c in ci):
        return ""
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    return f" [{f.format(ci[0])}, {f.format(ci[1])}]"
