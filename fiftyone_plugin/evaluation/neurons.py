"""Concept <-> neuron correspondence: does a named concept correspond to an
individual channel ("neuron") of the layer, or is it spread over many?

Every map with a real concept (not :data:`NOT_NAMEABLE`, not unnamed) is one
observation of the pair *(channel, concept)*, where a channel is identified
by ``(layer, channel)``. From the resulting contingency table:

per concept
    ``num_maps``, ``num_channels`` (distinct channels its maps come from),
    ``top_channel`` and ``top_channel_share`` (fraction of its maps from its
    most frequent channel), ``entropy`` (Shannon, nats, of its channel
    distribution), ``normalized_entropy`` = entropy / log(K) with K the number
    of distinct channels among all named maps (0: one channel; 1: spread
    evenly over all of them; 0 when K = 1) and ``effective_channels`` =
    exp(entropy) (how many equally used channels that spread amounts to);
per channel
    the same, the other way round (``num_concepts``, ``top_concept``, ...,
    normalised by the number of distinct concepts);
overall
    normalised mutual information between channel and concept
    (``sklearn.metrics.normalized_mutual_info_score``, arithmetic mean
    normalisation: 1 when channels and concepts determine each other, 0 when
    independent) and its chance-adjusted version (adjusted mutual
    information: NMI is biased upwards when there are many channels and few
    maps), plus ``concept_purity`` (fraction of maps whose channel's most
    common concept is theirs: how well the channel predicts the concept) and
    ``channel_purity`` (how well the concept predicts the channel).

A concept "is a neuron" when its ``top_channel_share`` is near 1 *and* that
channel's ``top_concept_share`` is near 1.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from ..concepts.store import NOT_NAMEABLE
from .explanations import default_run_key, read_maps
from ..runs import register_run, save_run_results
from ..storage import check_field_name, resolve_maps

RUN_TYPE = "neuron_correspondence"


def _entropy(counts):
    counts = np.asarray(counts, dtype=float)
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(total > 0, counts / np.where(total > 0, total, 1), 0.0)
        logs = np.where(p > 0, np.log(np.where(p > 0, p, 1)), 0.0)
    return -(p * logs).sum(axis=-1)


def _normalise(entropy, k):
    return entropy / math.log(k) if k > 1 else np.zeros_like(entropy)


def _clean(value):
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclass
class NeuronCorrespondence:
    """What :func:`neuron_correspondence` found.

    ``concepts`` and ``channels`` are :class:`pandas.DataFrame` (columns in
    the module docstring), ``matrix`` a concepts x channels DataFrame of map
    counts (columns labelled ``"<channel>"``, or ``"<layer>:<channel>"``
    when the maps come from several layers).
    """

    annotator: str
    maps_field: str
    num_maps: int
    num_concepts: int
    num_channels: int
    nmi: float
    ami: float
    concept_purity: float
    channel_purity: float
    concepts: object = field(repr=False)
    channels: object = field(repr=False)
    matrix: object = field(repr=False)
    run_key: str = None

    def to_dict(self):
        """JSON-serialisable: tables as records, the matrix as non-zero
        ``(concept, channel, count)`` triplets."""
        matrix = self.matrix
        cells = []
        if matrix is not None and matrix.size:
            values = matrix.to_numpy()
            for i, j in zip(*np.nonzero(values)):
                cells.append([str(matrix.index[i]), str(matrix.columns[j]), int(values[i, j])])
        return {
            "annotator": self.annotator,
            "maps_field": self.maps_field,
            "num_maps": self.num_maps,
            "num_concepts": self.num_concepts,
            "num_channels": self.num_channels,
            "nmi": _clean(self.nmi),
            "ami": _clean(self.ami),
            "concept_purity": _clean(self.concept_purity),
            "channel_purity": _clean(self.channel_purity),
            "concepts": [{k: _clean(v) for k, v in r.items()} for r in self.concepts.to_dict("records")],
            "channels": [{k: _clean(v) for k, v in r.items()} for r in self.channels.to_dict("records")],
            "matrix": cells,
        }


def correspondence_from_labels(concepts, channels, layers=None, annotator=None, maps_field=None):
    """The correspondence statistics of parallel per-map lists (no FiftyOne).

    Parameters
    ----------
    concepts : sequence of str
        one concept per map (maps without a real concept already removed).
    channels : sequence of int
    layers : sequence of str, optional
    """
    import pandas as pd
    from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

    concepts = [str(c) for c in concepts]
    channels = [int(c) for c in channels]
    layers = list(layers) if layers is not None else [None] * len(channels)
    if not (len(concepts) == len(channels) == len(layers)):
        raise ValueError("concepts, channels and layers must have the same length")
    if not concepts:
        raise ValueError("no named maps: name some maps with a concept first")

    several_layers = len(set(layers)) > 1
    units = [(layer, ch) for layer, ch in zip(layers, channels)]
    unit_names = sorted(set(units), key=lambda u: (str(u[0]), u[1]))
    unit_index = {u: i for i, u in enumerate(unit_names)}
    concept_names = sorted(set(concepts))
    concept_index = {c: i for i, c in enumerate(concept_names)}
    ci = np.array([concept_index[c] for c in concepts])
    ui = np.array([unit_index[u] for u in units])
    counts = np.zeros((len(concept_names), len(unit_names)), dtype=np.int64)
    np.add.at(counts, (ci, ui), 1)

    def label(unit):
        return f"{unit[0]}:{unit[1]}" if several_layers else str(unit[1])

    n_concepts, n_units = counts.shape
    c_total = counts.sum(axis=1)
    u_total = counts.sum(axis=0)
    c_entropy = _entropy(counts)
    u_entropy = _entropy(counts.T)
    c_top = counts.argmax(axis=1)
    u_top = counts.argmax(axis=0)

    concept_df = pd.DataFrame(
        {
            "concept": concept_names,
            "num_maps": c_total,
            "num_channels": (counts > 0).sum(axis=1),
            "top_channel": [label(unit_names[j]) for j in c_top],
            "top_channel_share": counts[np.arange(n_concepts), c_top] / c_total,
            "entropy": c_entropy,
            "normalized_entropy": _normalise(c_entropy, n_units),
            "effective_channels": np.exp(c_entropy),
        }
    ).sort_values(["num_maps", "concept"], ascending=[False, True], kind="stable").reset_index(drop=True)
    channel_df = pd.DataFrame(
        {
            "layer": [u[0] for u in unit_names],
            "channel": [u[1] for u in unit_names],
            "unit": [label(u) for u in unit_names],
            "num_maps": u_total,
            "num_concepts": (counts > 0).sum(axis=0),
            "top_concept": [concept_names[i] for i in u_top],
            "top_concept_share": counts[u_top, np.arange(n_units)] / u_total,
            "entropy": u_entropy,
            "normalized_entropy": _normalise(u_entropy, n_concepts),
            "effective_concepts": np.exp(u_entropy),
        }
    ).sort_values(["num_maps", "unit"], ascending=[False, True], kind="stable").reset_index(drop=True)
    matrix = pd.DataFrame(counts, index=concept_names, columns=[label(u) for u in unit_names])
    matrix.index.name = "concept"
    matrix.columns.name = "channel"

    n = len(concepts)
    if n_concepts == 1 and n_units == 1:
        # sklearn defines NMI of two constant labelings as 1: they determine each other
        nmi = ami = 1.0
    else:
        nmi = float(normalized_mutual_info_score(ci, ui))
        ami = float(adjusted_mutual_info_score(ci, ui))
    return NeuronCorrespondence(
        annotator=annotator,
        maps_field=maps_field,
        num_maps=n,
        num_concepts=n_concepts,
        num_channels=n_units,
        nmi=nmi,
        ami=ami,
        concept_purity=float(counts.max(axis=0).sum() / n),
        channel_purity=float(counts.max(axis=1).sum() / n),
        concepts=concept_df,
        channels=channel_df,
        matrix=matrix,
    )


def neuron_correspondence(samples, annotator, maps_field="actmaps", run_key=None):
    """How ``annotator``'s concepts correspond to the channels their maps
    come from. See the module docstring for every statistic.

    Parameters
    ----------
    samples : SampleCollection
    annotator : str
    maps_field : str
    run_key : str, optional
        default ``neuron_correspondence_<annotator>``; the results are a
        FiftyOne custom run of type ``"neuron_correspondence"``.

    Returns
    -------
    NeuronCorrespondence
        ``nmi``, ``ami``, ``concept_purity``, ``channel_purity``, counts, and
        the ``concepts``, ``channels`` and ``matrix`` DataFrames.

    Raises
    ------
    ValueError
        unknown annotator, or no map with a real concept.

    ``samples`` may be a patches view of the maps field: the statistics are
    then over the maps in the view (:func:`~fiftyone_plugin.storage.resolve_maps`).
    """
    samples, _ = resolve_maps(samples, maps_field, what="neuron_correspondence")
    table = read_maps(samples, annotator, maps_field)
    run_key = check_field_name(
        run_key or default_run_key("neuron_correspondence", annotator, maps_field), "run_key"
    )
    named = table.named & (table.channels >= 0)
    if not named.any():
        raise ValueError(
            f"{annotator} has given no map in {maps_field!r} a concept "
            f"(only unnamed or {NOT_NAMEABLE!r} maps)"
        )
    result = correspondence_from_labels(
        table.concepts[named], table.channels[named], table.layers[named],
        annotator=annotator, maps_field=maps_field,
    )
    result.run_key = run_key
    register_run(samples, run_key, RUN_TYPE, {"annotator": annotator, "maps_field": maps_field})
    save_run_results(samples, run_key, result.to_dict())
    return result
