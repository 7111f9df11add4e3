"""Saved views of evaluation runs: the samples of one *(predicted class,
concept)* pair in the App, named from user text with one prefix
(:data:`VIEW_PREFIX`), never replacing a user's view, replaced by a rerun,
deleted with the run that saved them (:class:`ViewsRun`), and all cleared
at once (:func:`clear_saved_views`)."""

import re
import unicodedata

import fiftyone.core.utils as fou
from fiftyone import ViewField as F

from ..concepts.store import concept_field
from ..runs import Run
from ..storage import MAPS_FIELD

_MAX_VIEW_PART = 60
#: every view the plugin saves starts with it, so that they sort together
VIEW_PREFIX = "naming: "
#: ... and its description with this: a view is the plugin's only if both
VIEW_DESCRIPTION = "Interactive naming"


def concept_view(samples, annotator, predicted_class, concept, *, maps_field=MAPS_FIELD,
                 prediction_field="actmap_prediction"):
    """Samples predicted ``predicted_class`` whose maps include
    ``annotator``'s ``concept``, showing only those maps.

    Parameters
    ----------
    samples : SampleCollection
    annotator : str
    predicted_class : str
        a label of ``prediction_field``.
    concept : str
    maps_field : str, default ``"actmaps"``
    prediction_field : str, default ``"actmap_prediction"``
        a ``fo.Classification`` field.

    Returns
    -------
    DatasetView
    """
    # the concept's attribute on each map, relative to the map
    attribute = concept_field(annotator, maps_field).rsplit(".", 1)[1]
    return samples.match(F(f"{prediction_field}.label") == predicted_class).filter_labels(
        maps_field, F(attribute) == concept
    )


def _clean_part(text):
    text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in str(text))
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= _MAX_VIEW_PART else text[: _MAX_VIEW_PART - 1] + "\u2026"


def view_name(template, **parts):
    """A saved-view name from user text (class and concept names): control
    characters removed, whitespace collapsed, each part at most 60
    characters.

    Examples
    --------
    >>> view_name("{cls} with {concept}", cls="a\\u0007  b", concept="sun")
    'naming: a b with sun'
    """
    return VIEW_PREFIX + template.format(**{k: _clean_part(v) for k, v in parts.items()})


def _slug(name):
    try:
        return fou.to_slug(name)
    except ValueError:
        return None


def previous_views(samples, run_key):
    """The names of the views that the run ``run_key`` saved (empty when
    there is no such run or its results are unreadable)."""
    dataset = samples._dataset
    if run_key not in dataset.list_runs():
        return []
    try:
        results = dataset.load_run_results(run_key, cache=False)
    except Exception:  # an unreadable old result must not block a new run
        return []
    return list(getattr(results, "saved_views", None) or [])


def is_ours(dataset, name):
    """Whether the saved view ``name`` is one the plugin saved: its name
    starts with :data:`VIEW_PREFIX` and its description with
    :data:`VIEW_DESCRIPTION` (a user's view of the same name is kept)."""
    if not name.startswith(VIEW_PREFIX) or not dataset.has_saved_view(name):
        return False
    description = dataset.get_saved_view_info(name).get("description") or ""
    return description.startswith(VIEW_DESCRIPTION)


def delete_views(samples, names):
    """Delete those of the saved views ``names`` that exist and are the
    plugin's (:func:`is_ours`; others are ignored)."""
    dataset = samples._root_dataset
    for name in names:
        if is_ours(dataset, name):
            dataset.delete_saved_view(name)


def list_saved_views(samples):
    """The names of the plugin's saved views on the dataset (:func:`is_ours`)."""
    dataset = samples._root_dataset
    return [name for name in dataset.list_saved_views() if is_ours(dataset, name)]


def clear_saved_views(samples):
    """Delete every saved view of the plugin (:func:`list_saved_views`);
    the users' own views are kept. A run rerun saves its views again.

    Returns
    -------
    list of str
        the names deleted.
    """
    names = list_saved_views(samples)
    delete_views(samples, names)
    return names


def save_views(samples, named_views, *, previous=(), description=None):
    """Save ``[(name, view)]`` in the dataset (``description`` must start
    with :data:`VIEW_DESCRIPTION`, which marks them as the plugin's).

    First delete ``previous`` (names this plugin saved in an earlier run),
    then give each name a suffix ``[2]``, ``[3]``, ... where its slug is
    taken, so no user's view is ever replaced.

    Returns
    -------
    list of str
        the names saved, in order.
    """
    dataset = samples._dataset
    delete_views(dataset, previous)
    taken = {_slug(n) for n in dataset.list_saved_views()}
    saved = []
    for name, view in named_views:
        final, i = name, 2
        while _slug(final) is None or _slug(final) in taken:
            final = f"{name} [{i}]"
            i += 1
        dataset.save_view(final, view, description=description)
        taken.add(_slug(final))
        saved.append(final)
    return saved


def save_views_for(samples, run_key, named_views, description):
    """Save views for a run, replacing the views the same run saved before."""
    return save_views(samples, named_views, previous=previous_views(samples, run_key), description=description)


class ViewsRun(Run):
    """A run that saves views: its cleanup deletes them (the names listed
    in its results' ``saved_views``) along with its fields."""

    def cleanup(self, samples, key):
        delete_views(samples, previous_views(samples, key))
        super().cleanup(samples, key)
