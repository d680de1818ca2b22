"""Paired timings: the median of the per-run differences (a - b) with a distribution-free
95% confidence interval (order statistics of the binomial distribution), and a verdict.

    python3 tests/e2e/paired.py LABEL A_NAME "A samples" B_NAME "B samples"

Samples are space-separated integers (milliseconds), one per run, in run order, so that
a[i] and b[i] were measured side by side. An interval above zero means A is slower; one
that holds zero means no difference was measured at that precision.
"""
import math
import statistics
import sys

label, a_name, a, b_name, b = sys.argv[1:6]
a, b = [int(x) for x in a.split()], [int(x) for x in b.split()]
assert len(a) == len(b) and a, "need as many A samples as B samples, at least one"
d = sorted(x - y for x, y in zip(a, b))
n = len(d)
# The largest k with P(Binomial(n, 1/2) < k) <= 2.5%: [d_k, d_(n+1-k)] (1-based) holds the
# median of the differences with at least 95% confidence.
k, below = 0, 0.0
while k < n and below + math.comb(n, k) / 2**n <= 0.025:
    below += math.comb(n, k) / 2**n
    k += 1
ci = f"[{d[k - 1]:+d}, {d[n - k]:+d}]" if k >= 1 else "[n too small]"
verdict = ("slower" if k >= 1 and d[k - 1] > 0 else
           "faster" if k >= 1 and d[n - k] < 0 else "no difference measured")
print(f"{label:<35} {a_name} {statistics.median(a):>6.0f}  {b_name} "
      f"{statistics.median(b):>6.0f}  diff {statistics.median(d):+6.0f} {ci:>14}  {verdict}")
