"""SIMULATED annotators for the concept world (demo and tests only).

These are *not* people and do not do what the product does for real: in the
App, people look at activation maps and name them. A simulated annotator
cheats by reading the ground-truth part mask of the concept world under a
map's peak and answering with its own wording, now and then wrong or skipping,
so that naming, agreement and evaluation can be demonstrated and tested end to
end without humans.

The canonical concepts are part + attribute: ``"round head"``,
``"triangular head"``, ``"square head"``, ``"striped body"``,
``"dotted body"`` and ``"sun"``. Background is :data:`NOT_NAMEABLE`.
"""

import re
import zlib

import numpy as np

from ..concepts.names import NOT_NAMEABLE
from . import world

HEAD_CONCEPTS = {
    "round": "round head",
    "triangle": "triangular head",
    "square": "square head",
}
BODY_CONCEPTS = {"striped": "striped body", "dotted": "dotted body"}
SUN_CONCEPT = "sun"

#: The canonical concepts, in a fixed order.
CONCEPTS = [*HEAD_CONCEPTS.values(), *BODY_CONCEPTS.values(), SUN_CONCEPT]

#: Wordings people might use per canonical concept; index 0 is canonical.
SYNONYMS = {
    "round head": ["round head", "circle face", "blob head", "circular head"],
    "triangular head": ["triangular head", "pointy head", "triangle face", "wedge head"],
    "square head": ["square head", "box head", "square face", "blocky head"],
    "striped body": ["striped body", "zebra body", "stripes", "banded body"],
    "dotted body": ["dotted body", "spotty body", "polka dots", "spotted body"],
    "sun": ["sun", "yellow disc", "star", "sunshine"],
}

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def true_concept(part_id, head_shape, body_pattern):
    """Canonical concept of a part of a creature, or :data:`NOT_NAMEABLE`.

    Parameters
    ----------
    part_id : int
        0 background, 1 head, 2 body, 3 sun (:data:`world.PART_NAMES`).
    head_shape : str
        One of :data:`world.HEAD_SHAPES`.
    body_pattern : str
        One of :data:`world.BODY_PATTERNS`.
    """
    part_id = int(part_id)
    if part_id == 0:
        return NOT_NAMEABLE
    if part_id == world.PART_IDS["head"]:
        if head_shape not in HEAD_CONCEPTS:
            raise ValueError(f"unknown head_shape {head_shape!r}")
        return HEAD_CONCEPTS[head_shape]
    if part_id == world.PART_IDS["body"]:
        if body_pattern not in BODY_CONCEPTS:
            raise ValueError(f"unknown body_pattern {body_pattern!r}")
        return BODY_CONCEPTS[body_pattern]
    if part_id == world.PART_IDS["sun"]:
        return SUN_CONCEPT
    raise ValueError(f"part_id must be in 0..3, got {part_id}")


class SimulatedAnnotator:
    """A simulated person who names maps by the ground-truth part (SIMULATION).

    Parameters
    ----------
    name : str
        Annotator name, matching ``^[A-Za-z][A-Za-z0-9_]*$`` (it is used as a
        namespace and in field names).
    error_rate : float, default=0.0
        Probability of naming a random *other* concept instead of the true one.
    skip_rate : float, default=0.0
        Probability of not naming the map at all (returns None). Checked first.
    seed : int, default=0
        Seeds the annotator's errors and skips, and the vocabulary when none is
        given.
    vocabulary : dict, optional
        Canonical concept -> this annotator's word. Missing concepts are
        filled from :data:`SYNONYMS`, picked deterministically from
        ``(name, seed)``. Words must be distinct.
    name_background : bool, default=True
        Name background maps :data:`NOT_NAMEABLE`; if False, leave them
        unnamed (None).

    Notes
    -----
    Randomness is per map when ``name_map`` gets a ``key`` (same key, same
    answer, in any call order); without a key the annotator draws from its own
    seeded stream, so answers depend on call order.
    """

    def __init__(
        self,
        name,
        error_rate=0.0,
        skip_rate=0.0,
        seed=0,
        vocabulary=None,
        name_background=True,
    ):
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(
                f"annotator name must match {_NAME_RE.pattern}, got {name!r}"
            )
        for label, rate in (("error_rate", error_rate), ("skip_rate", skip_rate)):
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"{label} must be in [0, 1], got {rate}")
        self.name = name
        self.error_rate = float(error_rate)
        self.skip_rate = float(skip_rate)
        self.seed = int(seed)
        self.name_background = bool(name_background)
        # crc32, not hash(): stable across processes.
        self._base = [self.seed, zlib.crc32(name.encode("utf-8"))]
        self.vocabulary = self._build_vocabulary(vocabulary)
        self._rng = np.random.default_rng(self._base)

    def _build_vocabulary(self, vocabulary):
        vocabulary = dict(vocabulary or {})
        unknown = set(vocabulary) - set(CONCEPTS)
        if unknown:
            raise ValueError(
                f"vocabulary keys must be canonical concepts {CONCEPTS}, "
                f"got {sorted(unknown)}"
            )
        rng = np.random.default_rng([*self._base, 1])
        vocab = {}
        for concept in CONCEPTS:
            choice = SYNONYMS[concept][rng.integers(len(SYNONYMS[concept]))]
            vocab[concept] = str(vocabulary.get(concept, choice)).strip()
        if len(set(vocab.values())) != len(vocab) or "" in vocab.values():
            raise ValueError(f"vocabulary words must be non-empty and distinct: {vocab}")
        return vocab

    def word(self, concept):
        """This annotator's word for a canonical concept (NOT_NAMEABLE passes)."""
        if concept == NOT_NAMEABLE:
            return NOT_NAMEABLE
        return self.vocabulary[concept]

    def name_map(self, part_id, head_shape, body_pattern, key=None):
        """Name a map by the ground-truth part under its peak.

        Parameters
        ----------
        part_id : int
            Part under the map's peak (see :func:`part_under_point`).
        head_shape, body_pattern : str
            Attributes of the sample's creature.
        key : str or int, optional
            Identifies the map (e.g. its label id) so the random error/skip
            decision is reproducible per map.

        Returns
        -------
        str or None
            This annotator's word for the concept, :data:`NOT_NAMEABLE` for
            background, or None when skipped.
        """
        truth = true_concept(part_id, head_shape, body_pattern)
        rng = self._rng if key is None else np.random.default_rng(
            [*self._base, 2, zlib.crc32(str(key).encode("utf-8"))]
        )
        # Always draw all three numbers so one decision never shifts another.
        u_skip, u_err, u_pick = rng.random(3)
        if u_skip < self.skip_rate:
            return None
        if truth == NOT_NAMEABLE and not self.name_background:
            return None
        if u_err < self.error_rate:
            others = [c for c in CONCEPTS if c != truth]
            truth = others[int(u_pick * len(others))]
        return self.word(truth)

    def __repr__(self):
        return (
            f"SimulatedAnnotator(name={self.name!r}, error_rate={self.error_rate}, "
            f"skip_rate={self.skip_rate}, seed={self.seed})"
        )


def default_annotators(seed=0):
    """Three simulated annotators with different wordings and small error rates.

    Returns
    -------
    list of SimulatedAnnotator
        ``ann_alice`` (canonical words), ``ann_bob`` and ``ann_carol``; no word
        is shared between any two of them.
    """
    def vocab(i):
        return {c: SYNONYMS[c][i] for c in CONCEPTS}

    return [
        SimulatedAnnotator("ann_alice", 0.03, 0.02, seed, vocab(0)),
        SimulatedAnnotator("ann_bob", 0.06, 0.05, seed + 1, vocab(1)),
        SimulatedAnnotator("ann_carol", 0.10, 0.03, seed + 2, vocab(2)),
    ]


def part_under_point(part_mask, x_rel, y_rel, tolerance_px=2):
    """Part id at a relative point of a part mask, tolerant by a few pixels.

    The pixel containing the point wins when it is a part (non-zero);
    otherwise the most frequent non-zero part within ``tolerance_px`` pixels
    (a square window; ties go to the smaller id); otherwise 0.

    Parameters
    ----------
    part_mask : array-like of shape (H, W)
        Integer part ids (0 background).
    x_rel, y_rel : float
        Point in [0, 1] relative coordinates (x to the right, y down); 1.0
        maps to the last pixel.
    tolerance_px : int, default=2

    Returns
    -------
    int
    """
    mask = np.asarray(part_mask)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"part_mask must be a non-empty 2-D array, got shape {mask.shape}")
    x_rel, y_rel = float(x_rel), float(y_rel)
    if not (0.0 <= x_rel <= 1.0 and 0.0 <= y_rel <= 1.0):
        raise ValueError(f"x_rel and y_rel must be in [0, 1], got ({x_rel}, {y_rel})")
    tol = int(tolerance_px)
    if tol < 0:
        raise ValueError(f"tolerance_px must be non-negative, got {tolerance_px}")
    h, w = mask.shape
    col = min(int(x_rel * w), w - 1)
    row = min(int(y_rel * h), h - 1)
    centre = int(mask[row, col])
    if centre != 0:
        return centre
    window = mask[max(row - tol, 0): row + tol + 1, max(col - tol, 0): col + tol + 1]
    ids, counts = np.unique(window[window != 0], return_counts=True)
    if len(ids) == 0:
        return 0
    # np.unique sorts ids, and argmax takes the first maximum: smaller id wins ties.
    return int(ids[np.argmax(counts)])
