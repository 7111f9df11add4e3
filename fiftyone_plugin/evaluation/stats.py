"""Statistics kernels of the evaluation (pure numpy/scipy, no FiftyOne).

Every function is vectorised over its arguments and returns ``nan`` where a
quantity is undefined (an empty group), so that whole tables of
*(predicted class, concept)* pairs are computed in one call.

References
----------
.. [1] E. B. Wilson, "Probable inference, the law of succession, and
   statistical inference", J. Am. Stat. Assoc. 22:209-212, 1927.
.. [2] R. G. Newcombe, "Interval estimation for the difference between
   independent proportions: comparison of eleven methods", Stat. Med.
   17:873-890, 1998.
.. [3] R. A. Fisher, "On the interpretation of chi-squared from contingency
   tables, and the calculation of P", J. R. Stat. Soc. 85:87-94, 1922
   (Fisher's exact test).
.. [4] Y. Benjamini and Y. Hochberg, "Controlling the false discovery rate:
   a practical and powerful approach to multiple testing", J. R. Stat.
   Soc. B 57:289-300, 1995.
.. [5] D. S. Kerby, "The simple difference formula: an approach to teaching
   nonparametric correlation", Comprehensive Psychology 3:11.IT.3.1, 2014.
"""

import numpy as np
from scipy import stats

#: the standard normal quantile of a two-sided 95% interval
Z95 = 1.959963984540054


def ratio(num, den):
    """``num / den`` elementwise, ``nan`` where ``den`` is 0.

    Examples
    --------
    >>> ratio([1, 2], [4, 0]).tolist()
    [0.25, nan]
    """
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def wilson_interval(k, n, *, z=Z95):
    """Wilson score interval of a binomial proportion ``k / n`` [1]_.

    Parameters
    ----------
    k : int or array_like of int
        successes.
    n : int or array_like of int
        trials, broadcastable with ``k``.
    z : float, default 1.96
        the standard normal quantile of the interval (95%: 1.959964).

    Returns
    -------
    low, high : ndarray of float
        the interval's bounds, clipped to ``[0, 1]``; ``nan`` where ``n ==
        0``.

    Examples
    --------
    >>> low, high = wilson_interval(5, 10)
    >>> round(float(low), 4), round(float(high), 4)
    (0.2366, 0.7634)
    >>> [float(v) for v in wilson_interval(0, 0)]
    [nan, nan]
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = np.clip(centre - half, 0.0, 1.0)
    high = np.clip(centre + half, 0.0, 1.0)
    low = np.where(n > 0, low, np.nan)
    high = np.where(n > 0, high, np.nan)
    return low, high


def newcombe_interval(k1, n1, k2, n2, *, z=Z95):
    """Newcombe's hybrid score interval for the difference of two
    independent proportions ``k1/n1 - k2/n2`` (his method 10 [2]_, built on
    the Wilson intervals [1]_ of each proportion).

    Parameters
    ----------
    k1, n1 : int or array_like of int
        successes and trials of the first group.
    k2, n2 : int or array_like of int
        successes and trials of the second group (all four broadcastable).
    z : float, default 1.96
        the standard normal quantile of the interval (95%).

    Returns
    -------
    difference, low, high : ndarray of float
        the difference and its interval; ``nan`` where a group is empty.

    Examples
    --------
    Newcombe (1998), table II, example (a):

    >>> d, low, high = newcombe_interval(56, 70, 48, 80)
    >>> round(float(low), 4), round(float(high), 4)
    (0.0524, 0.3339)
    """
    k1, n1, k2, n2 = (np.asarray(v, dtype=float) for v in (k1, n1, k2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, z=z)
    l2, u2 = wilson_interval(k2, n2, z=z)
    d = p1 - p2
    low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, low, high


def fisher_greater(a, b, c, d):
    """One-sided Fisher exact p-values [3]_ that the first row of ``[[a, b],
    [c, d]]`` has the larger share of the first column (odds ratio > 1).

    Computed through the hypergeometric upper tail, so whole arrays of 2 x 2
    tables are tested in one call; equals ``scipy.stats.fisher_exact(table,
    alternative="greater")[1]`` table by table.

    Parameters
    ----------
    a, b, c, d : int or array_like of int
        the cells of the tables (broadcastable), non-negative counts.

    Returns
    -------
    ndarray of float
        p-values in ``[0, 1]``.

    Examples
    --------
    P(X >= 4) for X hypergeometric with 16 samples, 5 errors and 6 drawn:
    ``(C(5,4) C(11,2) + C(5,5) C(11,1)) / C(16,6) = 286 / 8008``:

    >>> round(float(fisher_greater(4, 2, 1, 9)), 4)
    0.0357
    """
    a, b, c, d = (np.asarray(v, dtype=np.int64) for v in (a, b, c, d))
    total = a + b + c + d
    first_column = a + c
    first_row = a + b
    return stats.hypergeom.sf(a - 1, total, first_column, first_row)


def benjamini_hochberg(p_values):
    """Benjamini-Hochberg adjusted p-values (q-values) [4]_.

    A pair is a discovery at false discovery rate ``alpha`` when its q-value
    is at most ``alpha``.

    Parameters
    ----------
    p_values : array_like of float, shape ``(m,)``
        ``nan`` marks an untested hypothesis: it stays ``nan`` and is not
        counted among the tests.

    Returns
    -------
    ndarray of float, shape ``(m,)``

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.04, 0.03, 0.005, float("nan")]).round(4).tolist()
    [0.02, 0.04, 0.04, 0.02, nan]
    """
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = len(tested)
    if m == 0:
        return q
    order = tested[np.argsort(p[tested], kind="stable")]
    scaled = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return q


def excess_errors(errors_with, n_with, errors_without, n_without):
    """Errors among the samples with a concept beyond what the error rate
    without it predicts: ``a - n_with * c / n_without`` (the
    epidemiologists' attributable number; ``n_with`` x the risk difference).

    Parameters
    ----------
    errors_with, n_with : int or array_like
        errors and samples with the concept (``a`` and ``a + b``).
    errors_without, n_without : int or array_like
        errors and samples without it (``c`` and ``c + d``).

    Returns
    -------
    ndarray of float
        in errors; ``nan`` where there is no sample without the concept.

    Examples
    --------
    >>> float(excess_errors(4, 6, 1, 10))
    3.4
    """
    a, n1, c, n0 = (np.asarray(v, dtype=float) for v in (errors_with, n_with, errors_without, n_without))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n0 > 0, a - n1 * c / n0, np.nan)


def lower_with(with_, without):
    """One-sided Mann-Whitney U test that the values ``with_`` are lower
    than ``without``, and the rank-biserial correlation of that comparison
    [5]_: ``P(without > with) - P(without < with)`` (1 when every value with
    is below every value without, -1 the other way round).

    Parameters
    ----------
    with_, without : array_like of float, shapes ``(n1,)`` and ``(n0,)``
        both non-empty.

    Returns
    -------
    p_value : float
        scipy's ``mannwhitneyu(with_, without, alternative="less")``.
    effect : float
        the rank-biserial correlation, in ``[-1, 1]``.

    Examples
    --------
    >>> p, effect = lower_with([0.5, 0.5], [0.9, 0.9, 0.9])
    >>> effect
    1.0
    """
    test = stats.mannwhitneyu(with_, without, alternative="less")
    effect = 1.0 - 2.0 * float(test.statistic) / (len(with_) * len(without))
    return float(test.pvalue), effect
