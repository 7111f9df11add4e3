"""Krippendorff's alpha without the units x values x values tensor.

(~430 lines: one kernel, its four metrics and the input coding they share.)

The ``krippendorff`` package builds, per unit, a values x values matrix and
sums them, so memory grows with units x values^2 (20,000 units x 100 values
took 4.6 GiB). Here every quantity is a sum over the *pairable values* only:

- the coincidence matrix is ``o = sum_u (n_u n_u^T - diag(n_u)) / (m_u - 1)``
  with ``n_u`` the value counts of unit ``u`` and ``m_u = sum(n_u)``; it is
  the matrix product ``A^T W A - diag(A^T w)`` of the sparse units x values
  count matrix ``A`` with ``W = diag(1 / (m_u - 1))``;
- for the nominal level only its trace is needed
  (``D_o = n - trace(o)``), a sum over the (unit, value) counts;
- the interval distance is a squared difference, so the observed
  disagreement of a unit is ``2 m_u`` times its sum of squared deviations
  from the unit mean, and the expected one ``2 n`` times the pooled one;
- the ordinal distance of Krippendorff (2011) is a squared difference of
  *mid-ranks* ``M_c = sum_{g<c} n_g + n_c / 2`` (for ``c <= k``,
  ``sum_{g=c..k} n_g - (n_c + n_k)/2 = M_k - M_c``), so ordinal alpha is
  interval alpha on mid-ranks;
- ratio (and any callable metric) uses the sparse coincidence matrix for the
  observed part and a row-chunked values x values sweep for the expected
  part (memory O(values x chunk)).

Memory is O(pairable values + values) for nominal, ordinal and interval, and
O(non-zero coincidences + values x chunk) for ratio. Results equal
``krippendorff.alpha`` to rounding (the tests assert 1e-9).

Reference: K. Krippendorff, "Computing Krippendorff's Alpha-Reliability",
2011 (https://repository.upenn.edu/asc_papers/43).
"""

import numbers
from collections.abc import Mapping

import numpy as np
from scipy import sparse

LEVELS = ("nominal", "ordinal", "interval", "ratio")

# A values x values sweep (ratio / callable metrics) holds at most this many
# distances at once.
_CHUNK_ELEMENTS = 1 << 22


class AlphaUndefinedError(ValueError):
    """Alpha cannot be computed from these data (it is 0/0 or has no pairs).

    ``reason`` is a short code: ``"no_pairable_units"`` (no unit has values
    from two or more annotators, e.g. one annotator or no overlap) or
    ``"no_variation"`` (all pairable values are equal, or all distances
    between them are 0: the expected disagreement is 0 and Krippendorff
    defines alpha as undefined).
    """

    def __init__(self, message, reason):
        super().__init__(message)
        self.reason = reason


def krippendorff_alpha(reliability_data, level_of_measurement="nominal", *, value_domain=None):
    """Krippendorff's alpha, computed from sums over the pairable values.

    Parameters
    ----------
    reliability_data : array-like of shape (n_annotators, n_units), or dict
        The value each annotator gave each unit; ``nan`` or ``None`` means
        missing (the annotator did not judge the unit). Values may be
        numbers or strings (strings only for ``"nominal"``, or for
        ``"ordinal"`` with a ``value_domain`` giving their order). In a
        string array the text ``"nan"`` also counts as missing, because
        ``np.asarray([["a", np.nan]])`` turns ``nan`` into ``"nan"`` (as in
        the ``krippendorff`` package). A dict maps each annotator to either a
        sequence over the same units or a ``{unit: value}`` dict (units are
        the union of the keys; absent keys are missing).
    level_of_measurement : {"nominal", "ordinal", "interval", "ratio"} or callable
        The distance metric. A callable has the ``krippendorff`` package's
        signature ``metric(v1, v2, i1, i2, n_v, dtype)`` and returns
        element-wise distances.
    value_domain : sequence, optional
        The possible values. Needed to give non-numeric ordinal values an
        order (their position in the sequence); otherwise the sorted
        distinct values. Values outside it raise ``ValueError``.

    Returns
    -------
    float
        ``1 - D_o / D_e``: 1 is perfect agreement, 0 agreement at chance
        level, negative systematic disagreement.

    Raises
    ------
    AlphaUndefinedError (a ``ValueError``)
        when alpha is undefined: no unit has values from at least two
        annotators (one annotator, no overlap; ``reason="no_pairable_units"``)
        or all pairable values are the same (no variation, expected
        disagreement 0, alpha = 0/0; ``reason="no_variation"``). The
        ``krippendorff`` package raises for a single-value domain but
        returns ``nan`` with a RuntimeWarning for a single *used* value;
        here both raise, with the reason.
    ValueError
        for malformed input: not two-dimensional, an unknown level,
        out-of-domain values, strings at a numeric level.

    Examples
    --------
    Krippendorff (2011), 4 coders x 12 units (his reliability data example):

    >>> nan = float("nan")
    >>> data = [[1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
    ...         [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
    ...         [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
    ...         [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan]]
    >>> round(krippendorff_alpha(data, "nominal"), 3)
    0.743
    >>> round(krippendorff_alpha(data, "interval"), 3)
    0.849

    References
    ----------
    K. Krippendorff, "Computing Krippendorff's Alpha-Reliability", 2011,
    https://repository.upenn.edu/asc_papers/43 (the coincidence matrix,
    the four metrics and the worked example above); S. Castro,
    ``krippendorff`` (PyPI), the reference implementation the tests compare
    with.
    """
    metric = _check_level(level_of_measurement)
    units, codes, n_units, domain = encode_reliability_data(
        reliability_data, value_domain=value_domain, ordered=metric != "nominal"
    )
    return alpha_from_codes(units, codes, n_units, domain, metric)


def _check_level(level):
    if callable(level):
        return level
    if isinstance(level, str) and level in LEVELS:
        return level
    raise ValueError(
        f"level_of_measurement must be one of {LEVELS} or a callable metric; got {level!r}"
    )


# --------------------------------------------------------------------------
# input: annotators x units -> (unit index, value code) of every present value


def _as_array(reliability_data):
    if isinstance(reliability_data, Mapping):
        rows = list(reliability_data.values())
        if not rows:
            raise ValueError("reliability_data is empty: it needs at least one annotator")
        dicts = [isinstance(r, Mapping) for r in rows]
        if all(dicts):
            units = list(dict.fromkeys(u for r in rows for u in r))
            rows = [[r.get(u) for u in units] for r in rows]
        elif any(dicts):
            raise ValueError(
                "in a dict of annotators, give every annotator either a sequence "
                "or a {unit: value} dict, not a mix"
            )
        else:
            rows = [list(r) for r in rows]
            lengths = {len(r) for r in rows}
            if len(lengths) > 1:
                raise ValueError(
                    f"every annotator needs a value (or None) for every unit; "
                    f"got rows of lengths {sorted(lengths)}"
                )
        arr = np.empty((len(rows), len(rows[0]) if rows else 0), dtype=object)
        for i, row in enumerate(rows):
            arr[i, :] = row
    else:
        try:
            arr = np.asarray(reliability_data)
        except ValueError as err:  # ragged lists
            raise ValueError(
                f"reliability_data must be a rectangular (annotators x units) array: {err}"
            ) from None
    if arr.ndim != 2:
        raise ValueError(
            f"reliability_data must be two-dimensional (annotators x units); got shape {arr.shape}"
        )
    return arr


def _is_missing_scalar(v):
    if v is None:
        return True
    if isinstance(v, (float, np.floating)):
        return v != v
    return False


def _present_values(arr):
    """``(present mask, present values as a 1-D array)``, numbers as float
    where every present value is a number."""
    kind = arr.dtype.kind
    if kind in "fc":
        present = ~np.isnan(arr)
    elif kind in "iub":
        present = np.ones(arr.shape, dtype=bool)
    elif kind in "US":
        present = arr != arr.dtype.type("nan")
    elif kind == "O":
        present = ~np.frompyfunc(_is_missing_scalar, 1, 1)(arr).astype(bool)
    else:
        raise ValueError(f"cannot use values of dtype {arr.dtype} as reliability data")
    values = arr[present]
    if kind == "O" and values.size and all(
        isinstance(v, numbers.Number) and not isinstance(v, bool) for v in values
    ):
        values = values.astype(float)
    return present, values


def _is_numeric(values):
    return values.dtype.kind in "iuf"


def encode_reliability_data(reliability_data, value_domain=None, ordered=False):
    """``(units, codes, n_units, domain)``: for every present value, its unit
    (column) index and its index into ``domain`` (an array of the values, in
    order for ordinal/interval/ratio levels)."""
    arr = _as_array(reliability_data)
    n_units = arr.shape[1]
    present, values = _present_values(arr)
    units = np.nonzero(present)[1].astype(np.int64)
    if value_domain is not None:
        domain, codes = _codes_in_domain(values, value_domain)
    else:
        if ordered and values.size and not _is_numeric(values):
            raise ValueError(
                "non-numeric values need an ordered value_domain for the ordinal "
                "level (and cannot be used at the interval or ratio level)"
            )
        domain, codes = factorize(values)
    return units, codes, n_units, domain


def _codes_in_domain(values, value_domain):
    domain = np.asarray(value_domain)
    if domain.ndim != 1:
        raise ValueError("value_domain must be a one-dimensional sequence")
    try:
        distinct = len(set(domain.tolist()))
    except TypeError:
        raise ValueError("value_domain must hold hashable values") from None
    if distinct != len(domain):
        raise ValueError("value_domain has repeated values")
    if _is_numeric(domain) and (_is_numeric(values) or values.size == 0):
        sorter = np.argsort(domain, kind="stable")
        ordered = domain[sorter]
        pos = np.clip(np.searchsorted(ordered, values), 0, max(len(domain) - 1, 0))
        ok = ordered[pos] == values if len(domain) else np.zeros(len(values), bool)
        codes = sorter[pos]
    else:
        index = {v: i for i, v in enumerate(domain.tolist())}
        codes = np.fromiter((index.get(v, -1) for v in values.tolist()), np.int64, len(values))
        ok = codes >= 0
    if not np.all(ok):
        bad = list(dict.fromkeys(values[~ok].tolist()))
        raise ValueError(f"values outside value_domain: {bad[:10]}")
    return domain, codes.astype(np.int64)


def factorize(values):
    """``(domain, codes)`` with ``domain[codes] == values``; the domain is
    sorted where values are comparable. Small-range integers (the usual
    case: labels already coded) take an O(n) path without sorting, whose
    domain may include unused values in between (they have no weight)."""
    values = np.asarray(values)
    if values.size == 0:
        return values[:0], np.zeros(0, np.int64)
    if _is_numeric(values):
        lo, hi = values.min(), values.max()
        integral = values.dtype.kind in "iu" or np.all(values == np.floor(values))
        if integral and np.isfinite(hi - lo) and hi - lo <= 4 * values.size + 1024:
            lo = int(lo)
            codes = (values - lo).astype(np.int64)
            domain = np.arange(lo, int(hi) + 1).astype(values.dtype)
            return domain, codes
    try:
        domain, codes = np.unique(values, return_inverse=True)
        return domain, codes.reshape(-1).astype(np.int64)
    except TypeError:  # mixed, non-comparable objects: first-seen order
        index = {}
        codes = np.fromiter(
            (index.setdefault(v, len(index)) for v in values.tolist()), np.int64, len(values)
        )
        domain = np.empty(len(index), dtype=object)
        domain[:] = list(index)
        return domain, codes


# --------------------------------------------------------------------------
# the computation


def pair_counts(a, b, size_b, size_a=None):
    """Distinct ``(a, b)`` combinations of two non-negative int arrays with
    their counts, as ``(a_values, b_values, counts)``: a dense ``bincount``
    when the table is small, a sort otherwise (memory O(len(a)))."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.size == 0:
        return a[:0], b[:0], np.zeros(0, np.int64)
    size_a = int(a.max()) + 1 if size_a is None else int(size_a)
    size_b = int(size_b)
    key = a * size_b + b
    if size_a * size_b <= max(4 * key.size, 1 << 20):
        counts = np.bincount(key, minlength=size_a * size_b)
        nz = np.flatnonzero(counts)
        return nz // size_b, nz % size_b, counts[nz]
    keys, counts = np.unique(key, return_counts=True)
    return keys // size_b, keys % size_b, counts


def _show(value):
    return value.item() if isinstance(value, np.generic) else value


def _ratio_metric(v1, v2, i1=None, i2=None, n_v=None, dtype=np.float64):
    v1 = np.asarray(v1, dtype=dtype)
    v2 = np.asarray(v2, dtype=dtype)
    total = v1 + v2
    ratio = np.divide(v1 - v2, total, out=np.zeros(np.broadcast(v1, v2).shape), where=total != 0)
    return ratio**2


def alpha_from_codes(units, codes, n_units, domain, level="nominal"):
    """Alpha from coded data: ``units[i]`` and ``codes[i]`` are the unit and
    the value index (into ``domain``) of the i-th present value.

    See :func:`krippendorff_alpha` for levels, the result and the errors.
    """
    units = np.asarray(units, dtype=np.int64)
    codes = np.asarray(codes, dtype=np.int64)
    n_values = len(domain)
    m = np.bincount(units, minlength=n_units)
    keep = m[units] >= 2
    if not keep.any():
        raise AlphaUndefinedError(
            "alpha is undefined: no unit has values from two or more annotators, so "
            "no values are pairable (one annotator, or annotators who judged "
            "disjoint units)",
            "no_pairable_units",
        )
    units, codes = units[keep], codes[keep]
    n_c = np.bincount(codes, minlength=n_values).astype(np.float64)
    n = n_c.sum()
    used = np.flatnonzero(n_c)
    if used.size < 2:
        raise AlphaUndefinedError(
            f"alpha is undefined: all {int(n)} pairable values are the same value "
            f"({_show(domain[used[0]])!r}); with no variation the expected disagreement is 0 "
            "and alpha = 0/0",
            "no_variation",
        )
    # 1 / (m_u - 1) for pairable units
    w = np.zeros(n_units, dtype=np.float64)
    pairable = m >= 2
    w[pairable] = 1.0 / (m[pairable] - 1)

    if level == "nominal":
        u, _, count = pair_counts(units, codes, n_values, n_units)
        trace = np.sum(w[u] * count * (count - 1.0))
        observed = n - trace
        expected = (n * n - np.sum(n_c * n_c)) / (n - 1.0)
    elif level in ("interval", "ordinal"):
        if level == "interval":
            x = np.asarray(domain, dtype=np.float64)
        else:
            x = np.cumsum(n_c) - n_c / 2.0  # mid-ranks
        # distances are translation-invariant: centre to keep precision
        x = x - np.sum(n_c * x) / n
        xv = x[codes]
        mean_u = np.bincount(units, weights=xv, minlength=n_units)
        mean_u[pairable] /= m[pairable]
        ss_u = np.bincount(units, weights=(xv - mean_u[units]) ** 2, minlength=n_units)
        observed = np.sum(w * 2.0 * m * ss_u)
        expected = 2.0 * n * np.sum(n_c * x * x) / (n - 1.0)
    else:
        metric = _ratio_metric if level == "ratio" else level
        values = np.asarray(domain)
        if level == "ratio" and not _is_numeric(values):
            raise ValueError("the ratio level needs numeric values")
        observed, expected = _generic_disagreements(
            units, codes, n_units, values, n_c, w, used, metric
        )
    if not expected > 0:
        raise AlphaUndefinedError(
            "alpha is undefined: the expected disagreement is 0 (all distances "
            "between the pairable values are 0)",
            "no_variation",
        )
    return float(1.0 - observed / expected)


def _generic_disagreements(units, codes, n_units, values, n_c, w, used, metric):
    """Observed and expected disagreement for any distance metric, from the
    sparse coincidence matrix and a chunked sweep over the used values."""
    u, c, count = pair_counts(units, codes, len(values), n_units)
    a = sparse.csr_matrix(
        (count.astype(np.float64), (u, c)), shape=(n_units, len(values))
    )
    weighted = sparse.diags(w) @ a
    o = (a.T @ weighted).tocoo()
    diagonal = np.asarray(weighted.sum(axis=0)).ravel()  # sum_u n_uc / (m_u - 1)

    def dist(i1, i2):
        return np.asarray(
            metric(values[i1], values[i2], i1=i1, i2=i2, n_v=n_c, dtype=np.float64),
            dtype=np.float64,
        )

    self_d = dist(used, used)
    observed = np.sum(o.data * dist(o.row, o.col)) - np.sum(diagonal[used] * self_d)

    total = 0.0
    n_used = n_c[used]
    step = max(1, _CHUNK_ELEMENTS // max(len(used), 1))
    for start in range(0, len(used), step):
        rows = used[start : start + step]
        d = dist(rows[:, None], used[None, :])
        total += n_c[rows] @ d @ n_used
    expected = (total - np.sum(n_used * self_d)) / (n_c.sum() - 1.0)
    return observed, expected
