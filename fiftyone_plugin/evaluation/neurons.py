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
channel's ``top_concept_share`` is near 1: the study's question of whether
people name what single units compute.

References
----------
.. [1] M. Hamidi-Haines, Z. Qi, A. Fern, F. Li and P. Tadepalli,
   "Interactive Naming for Explaining Deep Neural Networks: A Formative
   Study", arXiv:1812.07150, 2018.
.. [2] N. X. Vinh, J. Epps and J. Bailey, "Information theoretic measures
   for clusterings comparison", JMLR 11:2837-2854, 2010 (NMI, AMI).
"""

import math

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

from ..concepts.store import NOT_NAMEABLE
from ..runs import RunConfig, RunResults, jsonable, register_run, save_run_results
from ..storage import MAPS_FIELD, check_field_name, resolve_maps
from .maptable import default_run_key, read_maps

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


class NeuronConfig(RunConfig):
    """Parameters of :func:`neuron_correspondence`; the run writes no field."""

    run_type = RUN_TYPE

    def __init__(self, annotator=None, maps_field=MAPS_FIELD, **kwargs):
        self.annotator = annotator
        self.maps_field = maps_field
        super().__init__(**kwargs)


class NeuronResults(RunResults):
    """What :func:`neuron_correspondence` (or, without a run,
    :func:`correspondence_from_labels`) found.

    Attributes
    ----------
    num_maps, num_concepts, num_channels : int
        named maps, distinct concepts and distinct channels among them.
    nmi, ami : float
        normalised and adjusted mutual information between channel and
        concept.
    concept_purity, channel_purity : float
        fractions of maps, in [0, 1] (module docstring).
    concept_rows, channel_rows : list of dict
        the records of :attr:`concepts` and :attr:`channels`.
    matrix_cells : list
        the non-zero cells of :attr:`matrix` as ``[concept, channel,
        count]``.
    """

    def __init__(self, samples, config, key, backend=None, num_maps=0, num_concepts=0, num_channels=0,
                 nmi=None, ami=None, concept_purity=None, channel_purity=None, concept_rows=None,
                 channel_rows=None, matrix_cells=None):
        super().__init__(samples, config, key, backend=backend)
        self.num_maps = num_maps
        self.num_concepts = num_concepts
        self.num_channels = num_channels
        self.nmi = nmi
        self.ami = ami
        self.concept_purity = concept_purity
        self.channel_purity = channel_purity
        self.concept_rows = list(concept_rows or [])
        self.channel_rows = list(channel_rows or [])
        self.matrix_cells = list(matrix_cells or [])

    @property
    def concepts(self):
        """Per concept (most maps first): ``concept, num_maps,
        num_channels, top_channel, top_channel_share, entropy`` (nats),
        ``normalized_entropy, effective_channels``."""
        return pd.DataFrame(self.concept_rows, columns=_CONCEPT_COLUMNS)

    @property
    def channels(self):
        """Per channel (most maps first): ``layer, channel, unit, num_maps,
        num_concepts, top_concept, top_concept_share, entropy,
        normalized_entropy, effective_concepts``."""
        return pd.DataFrame(self.channel_rows, columns=_CHANNEL_COLUMNS)

    @property
    def matrix(self):
        """Concepts x channels map counts (rows sorted by name, columns by
        layer then channel; labelled ``"<channel>"``, or
        ``"<layer>:<channel>"`` when the maps come from several layers)."""
        concepts = sorted(r["concept"] for r in self.concept_rows)
        units = [r["unit"] for r in sorted(self.channel_rows, key=lambda r: (str(r["layer"]), r["channel"]))]
        matrix = pd.DataFrame(0, index=pd.Index(concepts, name="concept"),
                              columns=pd.Index(units, name="channel"), dtype=np.int64)
        for concept, unit, count in self.matrix_cells:
            matrix.loc[concept, unit] = count
        return matrix


_CONCEPT_COLUMNS = ["concept", "num_maps", "num_channels", "top_channel", "top_channel_share",
                    "entropy", "normalized_entropy", "effective_channels"]
_CHANNEL_COLUMNS = ["layer", "channel", "unit", "num_maps", "num_concepts", "top_concept",
                    "top_concept_share", "entropy", "normalized_entropy", "effective_concepts"]


def _cells(counts, concept_names, unit_labels):
    return [[concept_names[i], unit_labels[j], int(counts[i, j])] for i, j in zip(*np.nonzero(counts))]


def _count(concepts, channels, layers):
    """The concepts x units count matrix of parallel per-map lists, with
    the sorted concept names and units ``(layer, channel)``."""
    units = [(layer, ch) for layer, ch in zip(layers, channels)]
    unit_names = sorted(set(units), key=lambda u: (str(u[0]), u[1]))
    unit_index = {u: i for i, u in enumerate(unit_names)}
    concept_names = sorted(set(concepts))
    concept_index = {c: i for i, c in enumerate(concept_names)}
    ci = np.array([concept_index[c] for c in concepts])
    ui = np.array([unit_index[u] for u in units])
    counts = np.zeros((len(concept_names), len(unit_names)), dtype=np.int64)
    np.add.at(counts, (ci, ui), 1)
    return counts, concept_names, unit_names, ci, ui


def _concept_frame(counts, concept_names, unit_labels):
    c_total = counts.sum(axis=1)
    c_entropy = _entropy(counts)
    c_top = counts.argmax(axis=1)
    return pd.DataFrame(
        {
            "concept": concept_names,
            "num_maps": c_total,
            "num_channels": (counts > 0).sum(axis=1),
            "top_channel": [unit_labels[j] for j in c_top],
            "top_channel_share": counts[np.arange(counts.shape[0]), c_top] / c_total,
            "entropy": c_entropy,
            "normalized_entropy": _normalise(c_entropy, counts.shape[1]),
            "effective_channels": np.exp(c_entropy),
        }
    ).sort_values(["num_maps", "concept"], ascending=[False, True], kind="stable").reset_index(drop=True)


def _channel_frame(counts, concept_names, unit_names, unit_labels):
    u_total = counts.sum(axis=0)
    u_entropy = _entropy(counts.T)
    u_top = counts.argmax(axis=0)
    return pd.DataFrame(
        {
            "layer": [u[0] for u in unit_names],
            "channel": [u[1] for u in unit_names],
            "unit": unit_labels,
            "num_maps": u_total,
            "num_concepts": (counts > 0).sum(axis=0),
            "top_concept": [concept_names[i] for i in u_top],
            "top_concept_share": counts[u_top, np.arange(counts.shape[1])] / u_total,
            "entropy": u_entropy,
            "normalized_entropy": _normalise(u_entropy, counts.shape[0]),
            "effective_concepts": np.exp(u_entropy),
        }
    ).sort_values(["num_maps", "unit"], ascending=[False, True], kind="stable").reset_index(drop=True)


def _correspondence(concepts, channels, layers=None):
    """The values of :class:`NeuronResults` of parallel per-map lists."""
    concepts = [str(c) for c in concepts]
    channels = [int(c) for c in channels]
    layers = list(layers) if layers is not None else [None] * len(channels)
    if not (len(concepts) == len(channels) == len(layers)):
        raise ValueError("concepts, channels and layers must have the same length")
    if not concepts:
        raise ValueError("no named maps: name some maps with a concept first")
    counts, concept_names, unit_names, ci, ui = _count(concepts, channels, layers)
    several_layers = len(set(layers)) > 1
    unit_labels = [f"{u[0]}:{u[1]}" if several_layers else str(u[1]) for u in unit_names]
    n_concepts, n_units = counts.shape
    if n_concepts == 1 and n_units == 1:
        # sklearn defines NMI of two constant labelings as 1: they determine each other
        nmi = ami = 1.0
    else:
        nmi = float(normalized_mutual_info_score(ci, ui))
        ami = float(adjusted_mutual_info_score(ci, ui))
    n = len(concepts)
    return jsonable({
        "num_maps": n,
        "num_concepts": n_concepts,
        "num_channels": n_units,
        "nmi": nmi,
        "ami": ami,
        "concept_purity": float(counts.max(axis=0).sum() / n),
        "channel_purity": float(counts.max(axis=1).sum() / n),
        "concept_rows": _concept_frame(counts, concept_names, unit_labels),
        "channel_rows": _channel_frame(counts, concept_names, unit_names, unit_labels),
        "matrix_cells": _cells(counts, concept_names, unit_labels),
    })


def correspondence_from_labels(concepts, channels, *, layers=None):
    """The correspondence statistics of parallel per-map lists (pure: no
    FiftyOne, no run).

    Parameters
    ----------
    concepts : sequence of str, length M
        one concept per map (maps without a real concept already removed).
    channels : sequence of int, length M
        the channel of each map.
    layers : sequence of str, length M, optional
        the layer of each map (default: one layer).

    Returns
    -------
    NeuronResults
        not attached to a run (``key`` None).

    Raises
    ------
    ValueError
        lists of different lengths, or no map.

    Examples
    --------
    >>> result = correspondence_from_labels(["a", "a", "b"], [7, 7, 8])
    >>> result.nmi, result.concept_purity, result.matrix_cells
    (1.0, 1.0, [['a', '7', 2], ['b', '8', 1]])
    """
    return NeuronResults(None, None, None, **_correspondence(concepts, channels, layers))


def neuron_correspondence(samples, annotator, *, maps_field=MAPS_FIELD, run_key=None):
    """How ``annotator``'s concepts correspond to the channels their maps
    come from. See the module docstring for every statistic.

    Parameters
    ----------
    samples : SampleCollection
        images with maps, or a patches view of the maps field: the
        statistics are then over the maps in the view
        (:func:`~fiftyone_plugin.storage.resolve_maps`).
    annotator : str
    maps_field : str, default ``"actmaps"``
    run_key : str, optional
        default ``neuron_correspondence_<annotator>``; the results are a
        FiftyOne custom run of type ``"neuron_correspondence"``.

    Returns
    -------
    NeuronResults
        the same as ``samples.load_run_results(run_key)``: ``nmi``,
        ``ami``, ``concept_purity``, ``channel_purity``, counts, and the
        ``concepts``, ``channels`` and ``matrix`` DataFrames.

    Raises
    ------
    ValueError
        unknown annotator, or no map with a real concept; raised before
        the run is registered.
    """
    samples, _ = resolve_maps(samples, maps_field=maps_field, what="neuron_correspondence")
    table = read_maps(samples, annotator, maps_field=maps_field)
    run_key = check_field_name(
        run_key or default_run_key("neuron_correspondence", annotator, maps_field), "run_key"
    )
    named = table.named & (table.channels >= 0)
    if not named.any():
        raise ValueError(
            f"{annotator} has given no map in {maps_field!r} a concept "
            f"(only unnamed or {NOT_NAMEABLE!r} maps)"
        )
    config = NeuronConfig(annotator=annotator, maps_field=maps_field)
    register_run(samples, run_key, config)
    values = _correspondence(table.concepts[named], table.channels[named], table.layers[named])
    results = NeuronResults(samples, config, run_key, **values)
    save_run_results(samples, run_key, results)
    return results
