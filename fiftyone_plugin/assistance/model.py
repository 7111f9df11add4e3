"""The suggestion model and what it reads: every map's descriptor with an
annotator's name and its provenance (:func:`read_descriptors`), the
classifier (:func:`concept_classifier`), fitted on the hand-given names only
(:func:`fit_hand_named`), and its two most likely concepts per map
(:func:`predict_top_two`). Shared by :mod:`.suggestions` and :mod:`.transfer`.

The classifier is scikit-learn's multinomial ``LogisticRegression`` on
standardised map descriptors (``StandardScaler``), with its own predicted
probabilities as the confidence. Measured on the concept world (600 test
images, 3,000 maps, a random 10 % named by their true part, three seeds;
tests/test_assistance_world.py and a scratch comparison of the variants):
right on 95.4-96.8 % of its most confident 80 % of suggestions, against
95.1-95.3 % for a distance-weighted 10-nearest-neighbour vote; expected
calibration error 0.007-0.023 with its own probabilities, against
0.036-0.079 (isotonic) and 0.13-0.19 (sigmoid) for ``CalibratedClassifierCV``
with 3 folds, which has too few named maps per fold to calibrate on -- so
the plain probabilities are used.

References
----------
F. Pedregosa et al., "Scikit-learn: Machine Learning in Python", JMLR 12,
2011 (``sklearn.linear_model.LogisticRegression``,
``sklearn.calibration.CalibratedClassifierCV``); C. Guo et al., "On
Calibration of Modern Neural Networks", ICML 2017 (expected calibration
error).
"""

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fiftyone.core.utils as fou

from ..concepts.store import concept_field, provenance_field, validate_annotator
from ..storage import MAPS_FIELD, maps_field_of
from ..maps.display import with_heavy_attributes


def concept_classifier(*, C=1.0):
    """The suggestion model: ``StandardScaler`` then multinomial
    ``LogisticRegression(C=C, max_iter=5000)`` (scikit-learn); see the
    module notes for why this one and why its own probabilities.

    Parameters
    ----------
    C : float > 0, default 1.0
        Inverse regularisation strength of the logistic regression.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted.
    """
    return make_pipeline(StandardScaler(), LogisticRegression(C=float(C), max_iter=5000))


def read_descriptors(samples, annotator, *, maps_field=MAPS_FIELD):
    """Every map of ``samples`` with its descriptor, ``annotator``'s name
    and that name's provenance.

    Parameters
    ----------
    samples : SampleCollection
    annotator : str
    maps_field : str, default ``"actmaps"`` (:data:`~fiftyone_plugin.storage.MAPS_FIELD`)

    Returns
    -------
    pandas.DataFrame
        ``map_id, sample_id, concept, provenance``, and
        ``df.attrs["descriptors"]``: float array of shape ``(n, d)``, rows
        aligned with the frame; maps without a descriptor are left out and
        counted in ``df.attrs["missing_descriptors"]``.

    Raises
    ------
    ValueError
        a bad annotator id or maps field.
    """
    maps_field_of(samples, maps_field)
    validate_annotator(annotator)
    det = f"{maps_field}.detections"
    name_path = concept_field(annotator, maps_field)
    prov_path = provenance_field(annotator, maps_field)
    paths = ["id", f"{det}.id", f"{det}.descriptor"]
    paths += [p for p in (name_path, prov_path) if samples.get_field(p) is not None]
    # a browsing view leaves the descriptors out (maps.display.browse_view)
    columns = with_heavy_attributes(samples, maps_field=maps_field).values(paths)
    sample_ids, map_ids, descriptors = columns[:3]
    names = columns[3] if samples.get_field(name_path) is not None else None
    provs = columns[-1] if samples.get_field(prov_path) is not None else None
    rows, vectors, missing = [], [], 0
    for s, sid in enumerate(sample_ids):
        for k, map_id in enumerate(map_ids[s] or []):
            vector = descriptors[s][k] if descriptors[s] else None
            if vector is None:
                missing += 1
                continue
            rows.append({
                "map_id": map_id,
                "sample_id": sid,
                "concept": names[s][k] if names is not None and names[s] else None,
                "provenance": provs[s][k] if provs is not None and provs[s] else None,
            })
            if isinstance(vector, bytes):  # an undeclared array attribute
                vector = fou.deserialize_numpy_array(vector)
            vectors.append(np.asarray(vector, dtype=np.float64))
    df = pd.DataFrame(rows, columns=["map_id", "sample_id", "concept", "provenance"])
    df.attrs["descriptors"] = np.vstack(vectors) if vectors else np.zeros((0, 0))
    df.attrs["missing_descriptors"] = missing
    return df


def fit_hand_named(table, *, C=1.0):
    """Fit :func:`concept_classifier` on the hand-named maps of ``table``
    (from :func:`read_descriptors`: named, without provenance).

    Returns
    -------
    model : fitted Pipeline
    num_taught : int
        The number of hand-named maps learnt from.

    Raises
    ------
    ValueError
        fewer than two different concepts named by hand.
    """
    X = table.attrs["descriptors"]
    teach = table["concept"].notna() & (table["provenance"].isna())
    labels = table.loc[teach, "concept"]
    if labels.nunique() < 2:
        raise ValueError(
            "suggestions need maps named by hand with at least two different "
            f"concepts (NOT_NAMEABLE counts as one); found {sorted(labels.unique())}"
        )
    model = concept_classifier(C=C)
    model.fit(X[teach.to_numpy()], labels.to_numpy())
    return model, int(teach.sum())


def predict_top_two(model, X):
    """``(concept, confidence, runner_up, runner_up_confidence)``: arrays of
    length ``len(X)``, the model's two most probable concepts per row and
    their probabilities."""
    proba = model.predict_proba(X)
    classes = model.classes_
    order = np.argsort(-proba, axis=1)
    best, second = order[:, 0], order[:, 1]
    rows = np.arange(len(X))
    return classes[best], proba[rows, best], classes[second], proba[rows, second]
