"""Coding concept labels for the agreement statistics (pure numpy/pandas).

Annotators' labels become per-annotator integer codes (:func:`encode_labels`);
:data:`NOT_NAMEABLE` is kept as a category or made missing
(:func:`_concept_codes`), or reduced to "named" vs "not nameable"
(:func:`_nameable_codes`). The helpers here are shared by the pair alpha
(:mod:`.pairs`), the alignment (:mod:`.alignment`, :mod:`.crossfit`) and the
summary statistics (:mod:`.statistics`).
"""

import math

import numpy as np
import pandas as pd

from ..concepts.names import NOT_NAMEABLE
from .alpha import AlphaUndefinedError, alpha_from_codes

_NOT_NAMEABLE_MODES = ("category", "missing")


def encode_labels(labels):
    """Per-annotator integer codes of ``labels`` (annotators x maps).

    Returns ``(codes, names)``: ``codes`` is an int64 array of the same shape
    with -1 for missing (``None`` / ``nan``) and ``names[a][codes[a, i]]`` the
    label. Codes are per annotator: the same text from two annotators is not
    assumed to mean the same thing.
    """
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        rows = list(labels)
    else:
        rows = [np.asarray(r, dtype=object) if not isinstance(r, np.ndarray) else r for r in labels]
    lengths = {len(r) for r in rows}
    if len(lengths) > 1:
        raise ValueError(
            f"every annotator needs one label (or None) per map; got lengths {sorted(lengths)}"
        )
    n = lengths.pop() if lengths else 0
    codes = np.empty((len(rows), n), dtype=np.int64)
    names = []
    for a, row in enumerate(rows):
        row_codes, uniques = pd.factorize(row, use_na_sentinel=True)
        codes[a] = row_codes
        names.append(list(np.asarray(uniques, dtype=object)))
    return codes, names


def _nominal_alpha(codes):
    """Nominal alpha of a coded annotators x units array (-1 missing)."""
    codes = np.asarray(codes, dtype=np.int64)
    present = codes >= 0
    units = np.nonzero(present)[1]
    values = codes[present]
    size = int(values.max()) + 1 if values.size else 0
    return alpha_from_codes(units, values, codes.shape[1], np.arange(size), "nominal")


def _annotator_names(annotators, count):
    if annotators is None:
        return [str(i) for i in range(count)]
    annotators = [str(a) for a in annotators]
    if len(annotators) != count:
        raise ValueError(f"{len(annotators)} annotator names for {count} rows of labels")
    if len(set(annotators)) != len(annotators):
        raise ValueError(f"annotator names must be distinct; got {annotators}")
    return annotators


def _not_nameable_codes(names):
    return np.array(
        [row.index(NOT_NAMEABLE) if NOT_NAMEABLE in row else -1 for row in names], dtype=np.int64
    )


def _concept_codes(codes, names, not_nameable):
    """Codes for the pair and aligned alphas: ``NOT_NAMEABLE`` kept as a
    category or made missing."""
    if not_nameable not in _NOT_NAMEABLE_MODES:
        raise ValueError(f"not_nameable must be one of {_NOT_NAMEABLE_MODES}; got {not_nameable!r}")
    nn = _not_nameable_codes(names)
    if not_nameable == "category":
        return codes, nn
    out = codes.copy()
    for a, code in enumerate(nn):
        if code >= 0:
            out[a][out[a] == code] = -1
    return out, np.full(len(codes), -1, dtype=np.int64)


def _nameable_codes(codes, names):
    nn = _not_nameable_codes(names)
    out = np.where(codes >= 0, 1, -1)
    for a, code in enumerate(nn):
        if code >= 0:
            out[a][codes[a] == code] = 0
    return out


def _order(codes, annotators, reference):
    judged = (codes >= 0).sum(axis=1)
    order = sorted(range(len(codes)), key=lambda a: -judged[a])
    if reference is not None:
        if reference not in annotators:
            raise ValueError(f"reference {reference!r} is not one of the annotators {annotators}")
        ref = annotators.index(reference)
        order.remove(ref)
        order.insert(0, ref)
    return order


def _attempt(fn, *args):
    """``(value, None)``, or ``(nan, reason)`` when alpha is undefined."""
    try:
        return fn(*args), None
    except AlphaUndefinedError as err:
        return math.nan, str(err)



def _nameable_alpha(nameable):
    value, reason = _attempt(_nominal_alpha, nameable)
    if reason is not None and "same value" in reason:
        answer = "named with a concept" if (nameable == 1).any() else f"marked {NOT_NAMEABLE}"
        reason = (
            f"nameable alpha is undefined: every pairable map was {answer} by everyone "
            "who judged it (no variation, expected disagreement 0)"
        )
    return value, reason

