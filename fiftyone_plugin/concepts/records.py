"""What the plugin keeps between requests, in the dataset's FiftyOne
execution store (``ExecutionStore``, kept in MongoDB next to the dataset):

- the undo record of the last naming an operator made, per annotator, which
  the naming panel offers to undo;
- each naming panel's large or persistent memory: the maps it has
  selected and the undo record of its last action. The App sends a panel's
  state with every event, so the state holds only a reference to this
  memory (and counts); see :class:`PanelMemory`.
"""

import time
import uuid

from fiftyone.operators.store import ExecutionStore

from ..storage import MAPS_FIELD
from .naming import undo
from .store import concept_field

STORE = "interactive_naming"
#: kept in the App's state for a panel; not forever: a panel nobody opens for
#: this long forgets its selection and undo step
PANEL_TTL = 30 * 24 * 3600


def plugin_store(dataset):
    """The dataset's execution store of this plugin."""
    return ExecutionStore.create(STORE, dataset._doc.id)


# ---- undo of operator namings, readable by the naming panel ------------------


def _undo_key(maps_field, annotator):
    return f"undo:{maps_field}:{annotator}"


def record_undo(dataset, record, maps_field=MAPS_FIELD):
    """Leave ``record`` (from :func:`fiftyone_plugin.concepts.naming.name_maps`) where
    the naming panel finds it; stamps it with an id and the time. Replaces
    an older record of the same annotator (undo is one step)."""
    record = dict(record, id=uuid.uuid4().hex, time=time.time(), source="operator")
    plugin_store(dataset).set(_undo_key(maps_field, record["annotator"]), record)
    return record


def pending_undo(dataset, annotator, maps_field=MAPS_FIELD):
    """The operator's undo record for ``annotator``, or ``None``."""
    if not annotator:
        return None
    return plugin_store(dataset).get(_undo_key(maps_field, annotator))


def drop_undo(dataset, record, maps_field=MAPS_FIELD):
    """Forget ``record`` (undone, or superseded); another record written
    since is kept."""
    store = plugin_store(dataset)
    key = _undo_key(maps_field, record["annotator"])
    current = store.get(key)
    if current is not None and current.get("id") == record.get("id"):
        store.delete(key)


def undo_operator_naming(dataset, record, maps_field=MAPS_FIELD):
    """Undo an operator's naming (a record from :func:`record_undo`): the
    maps still carrying the name it gave get their previous name back; maps
    renamed since are left as they are (another action owns them now).

    Returns
    -------
    dict
        ``{"restored": int, "skipped": int, "count": int}``.
    """
    previous = record["previous"]
    path = concept_field(record["annotator"], maps_field)
    view = dataset.select_labels(ids=list(previous), fields=maps_field)
    ids, names = view.values([f"{maps_field}.detections.id", path], unwind=True)
    still = {i for i, n in zip(ids, names) if n == record.get("concept")}
    kept = {i: name for i, name in previous.items() if i in still}
    restored = undo(dataset, dict(record, previous=kept), maps_field) if kept else 0
    drop_undo(dataset, record, maps_field)
    return {"restored": len(kept), "skipped": len(previous) - len(kept), "count": restored}


# ---- a naming panel's memory ----------------------------------------------------


class PanelMemory:
    """One naming panel's selection and undo step, in the execution store.

    A selection can hold every map of the dataset and an undo record the
    previous name of each map it changed: tens of thousands of ids, which
    must not travel with every event as panel state does. The panel keeps
    only ``ref`` (and counts) in its state; its memory survives a reload of
    the App as the state does, and expires after :data:`PANEL_TTL` seconds
    unused.

    Parameters
    ----------
    dataset : fiftyone.core.dataset.Dataset
    ref : str
        the panel's reference, from :meth:`new_ref` (kept in panel state).
    """

    def __init__(self, dataset, ref):
        self.store = plugin_store(dataset)
        self.ref = ref

    @staticmethod
    def new_ref():
        """A fresh reference for a new panel."""
        return uuid.uuid4().hex

    def _key(self, what):
        return f"panel:{self.ref}:{what}"

    def selection(self):
        """The selected map ids (``[]`` if none or expired)."""
        return list(self.store.get(self._key("selection")) or [])

    def set_selection(self, ids):
        self.store.set(self._key("selection"), list(ids), ttl=PANEL_TTL)

    def take(self, source, digest):
        """Whether the App's selection from ``source`` with ``digest`` (see
        :func:`~fiftyone_plugin.concepts.selection.ids_digest`; ``None``
        when the source selects nothing) is new to this panel, recording it.

        The App re-sends its selections with later events, and sends events
        with the panel state of when they were sent, which may predate a
        selection the panel took since; this record is read fresh, so that
        each App selection replaces the panel's own selection once.
        """
        key = self._key(f"taken:{source}")
        if self.store.get(key) == digest:
            return False
        self.store.set(key, digest, ttl=PANEL_TTL)
        return digest is not None

    def undo(self):
        """The undo record of the panel's last action, or ``None``."""
        return self.store.get(self._key("undo"))

    def set_undo(self, record):
        """Keep ``record`` (``None`` forgets the undo step)."""
        if record is None:
            self.store.delete(self._key("undo"))
        else:
            self.store.set(self._key("undo"), record, ttl=PANEL_TTL)
