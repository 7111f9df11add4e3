"""Interactive Naming: explain image classifiers by visual concepts named by
people, on FiftyOne datasets.

``import fiftyone_plugin as fpl``. This module is the public API: the entry
points below, grouped by room (the sub-package that owns them; see
docs/design.md, "Architecture"). Each takes a FiftyOne dataset or view first,
then keyword-only options; each ``compute_*`` is a FiftyOne custom run
(docs/design.md, "The run contract"). Helpers and kernels (for example
``fiftyone_plugin.agreement.compute.pair_alpha``,
``fiftyone_plugin.evaluation.report.render_report``,
``fiftyone_plugin.evaluation.explanations.read_maps``) stay in their modules.

Maps (``fiftyone_plugin.maps``, ``fiftyone_plugin.storage``)
    - :func:`compute_activation_maps`: the significant activation maps of
      every image, stored in a Detections field (default ``"actmaps"``)
    - :func:`resolve_model`: the model kinds ``compute_activation_maps``
      accepts, normalised to one spec
    - :func:`compute_map_visualization`: a 2-D layout of the maps (a Brain run)
    - :func:`map_points`: the maps' points in a layout
    - :func:`list_layouts`, :func:`stale_layouts`, :func:`choose_layout`,
      :func:`delete_layout`: manage layouts
    - :func:`resolve_maps`: the one rule for which maps a collection stands for
    - :func:`configure_map_display`, :func:`label_maps_by_concept`,
      :func:`label_maps_by_channel`, :func:`save_browse_view`: how maps look
      in the App's own views (colour scale, labels, a browsing view)

Concepts (``fiftyone_plugin.concepts``)
    - :func:`assign_concept`: name maps in an annotator's namespace
    - :func:`list_concepts`, :func:`list_annotators`: what has been named
    - :func:`rename_concept`, :func:`merge_concepts`, :func:`delete_concept`:
      manage a namespace
    - :func:`export_concepts`, :func:`import_concepts`: a JSON round trip
    - :data:`NOT_NAMEABLE`: the name meaning "no recognisable concept"

Agreement (``fiftyone_plugin.agreement``)
    - :func:`compute_agreement`: inter-annotator agreement, invariant to the
      names each annotator chose
    - :func:`write_consensus`: the consensus naming as its own annotator
    - :func:`krippendorff_alpha`: fast Krippendorff's alpha

Evaluation (``fiftyone_plugin.evaluation``)
    - :func:`compute_explanations`: every classification explained by concepts
    - :func:`summarize_concepts`: typical reasons per predicted class
    - :func:`untrustworthy_concepts`: concepts tied to errors
    - :func:`neuron_correspondence`: concepts against the channels of their maps
    - :func:`concept_deletion`: delete each concept from the images and
      measure what the model does
    - :func:`write_report`: a self-contained HTML report

Assistance (``fiftyone_plugin.assistance``)
    - :func:`suggest_concepts`, :func:`accept_suggestions`,
      :func:`undo_suggestions`, :func:`undo_accepted_suggestions`: names learnt
      from an annotator's hand names
    - :func:`transfer_concepts`: name new maps as a machine annotator

The concept world used by the demo and the tests is
``fiftyone_plugin.demo``; the run contract is ``fiftyone_plugin.runs``.
Importing this package imports FiftyOne, which reads its database settings
at import time: set them first.
"""

from .agreement.alpha import krippendorff_alpha
from .agreement.compute import compute_agreement, write_consensus
from .assistance.accept import accept_suggestions, undo_accepted_suggestions, undo_suggestions
from .assistance.suggestions import suggest_concepts
from .assistance.transfer import transfer_concepts
from .concepts.exchange import export_concepts, import_concepts
from .concepts.store import (
    NOT_NAMEABLE,
    assign_concept,
    delete_concept,
    list_annotators,
    list_concepts,
    merge_concepts,
    rename_concept,
)
from .evaluation.deletion import concept_deletion
from .evaluation.explanations import compute_explanations
from .evaluation.neurons import neuron_correspondence
from .evaluation.report import write_report
from .evaluation.reasons import summarize_concepts
from .evaluation.untrustworthy import untrustworthy_concepts
from .maps.compute import compute_activation_maps
from .maps.display import configure_map_display, label_maps_by_channel, label_maps_by_concept, save_browse_view
from .maps.layout import compute_map_visualization
from .maps.layouts import choose_layout, delete_layout, list_layouts, map_points, stale_layouts
from .maps.models import resolve_model
from .storage import resolve_maps

__version__ = "0.1.0"

__all__ = [
    # maps
    "compute_activation_maps",
    "resolve_model",
    "compute_map_visualization",
    "map_points",
    "list_layouts",
    "stale_layouts",
    "choose_layout",
    "delete_layout",
    "resolve_maps",
    "configure_map_display",
    "label_maps_by_concept",
    "label_maps_by_channel",
    "save_browse_view",
    # concepts
    "assign_concept",
    "list_concepts",
    "list_annotators",
    "rename_concept",
    "merge_concepts",
    "delete_concept",
    "export_concepts",
    "import_concepts",
    "NOT_NAMEABLE",
    # agreement
    "compute_agreement",
    "write_consensus",
    "krippendorff_alpha",
    # evaluation
    "compute_explanations",
    "summarize_concepts",
    "untrustworthy_concepts",
    "neuron_correspondence",
    "concept_deletion",
    "write_report",
    # assistance
    "suggest_concepts",
    "accept_suggestions",
    "undo_suggestions",
    "undo_accepted_suggestions",
    "transfer_concepts",
]
