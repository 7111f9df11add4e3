"""What an activation-maps run records (:mod:`fiftyone_plugin.runs`
contract): its config (:class:`ActivationMapsConfig`: the user's
parameters, what the model probe found, the fields it owns) and its results
(:class:`ActivationMapsResults`), and the default names of its fields."""

import hashlib
import json
import re

import torch

from . import contributions as C
from ..runs import RunConfig, RunResults, jsonable
from ..storage import MAPS_FIELD, check_field_name, check_image_collection

#: the ``run_type`` (run method) of activation-maps runs; a dataset's maps
#: fields are the ``maps_field`` of its runs of this type
MAPS_RUN_TYPE = "activation_maps"

# a repr without memory addresses: the same across processes
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def default_field_names(maps_field=MAPS_FIELD):
    """The prediction, heatmap and error fields that go with ``maps_field``.

    Parameters
    ----------
    maps_field : str, default ``"actmaps"``

    Returns
    -------
    dict
        ``{"prediction_field", "heatmap_field", "error_field"}``.

    Examples
    --------
    >>> default_field_names("actmaps")["heatmap_field"]
    'actmap_heatmap'
    >>> default_field_names("maps2")["prediction_field"]
    'maps2_prediction'
    """
    stem = "actmap" if maps_field == MAPS_FIELD else maps_field
    return {
        "prediction_field": f"{stem}_prediction",
        "heatmap_field": f"{stem}_heatmap",
        "error_field": f"{maps_field}_error",
    }


class ActivationMapsConfig(RunConfig):
    """The config of an activation-maps run (run key: ``maps_field``).

    The parameters a user chooses (``maps_field``, ``top_k``,
    ``cumulative_share``, ``target_field``, ``region_threshold``,
    ``store_descriptors`` and the three companion fields) are checked by
    :meth:`validate`; what the model probe finds (``model``,
    ``model_fingerprint``, ``layer``, ``geometry``, ``reshape``, ``classes``,
    ``feature_shape``, ``layout``, ``logits``, ``binary``, ``probe_images``)
    and ``config_hash`` are filled in before the run is registered
    (:func:`compute_activation_maps`). See :func:`compute_activation_maps`
    for each parameter.
    """

    run_type = MAPS_RUN_TYPE

    # what makes two runs' maps of one image the same maps: the
    # maps' ``config_hash`` is the hash of these (and ``reshape`` if any)
    _HASHED = (
        "model", "model_fingerprint", "layer", "top_k", "cumulative_share", "target_field",
        "region_threshold", "store_descriptors", "maps_field", "geometry",
        "prediction_field", "heatmap_field", "error_field",
    )

    def __init__(
        self,
        maps_field=MAPS_FIELD,
        top_k=5,
        cumulative_share=None,
        target_field=None,
        region_threshold=0.5,
        store_descriptors=True,
        prediction_field=None,
        heatmap_field=None,
        error_field=None,
        model=None,
        model_fingerprint=None,
        layer=None,
        geometry=None,
        reshape=None,
        config_hash=None,
        classes=None,
        feature_shape=None,
        layout=None,
        logits=None,
        binary=None,
        probe_images=None,
        **kwargs,
    ):
        defaults = default_field_names(maps_field)
        self.model = model
        self.model_fingerprint = model_fingerprint
        self.layer = layer
        self.top_k = top_k
        self.cumulative_share = cumulative_share
        self.target_field = target_field
        self.region_threshold = region_threshold
        self.store_descriptors = store_descriptors
        self.maps_field = maps_field
        self.geometry = geometry
        self.prediction_field = prediction_field or defaults["prediction_field"]
        self.heatmap_field = heatmap_field or defaults["heatmap_field"]
        self.error_field = error_field or defaults["error_field"]
        self.reshape = reshape
        self.config_hash = config_hash
        self.classes = classes
        self.feature_shape = feature_shape
        self.layout = layout
        self.logits = logits
        self.binary = binary
        self.probe_images = probe_images
        super().__init__(**kwargs)

    @property
    def output_fields(self):
        """``{"prediction_field", "heatmap_field", "error_field"}`` names."""
        return {
            "prediction_field": self.prediction_field,
            "heatmap_field": self.heatmap_field,
            "error_field": self.error_field,
        }

    def fields(self):
        """The maps field and its prediction, heatmap and error fields."""
        return [self.maps_field, self.prediction_field, self.heatmap_field, self.error_field]

    def validate(self, samples):
        """Check the user's parameters on ``samples``.

        Raises
        ------
        TypeError
            ``samples`` is not a FiftyOne collection.
        ValueError
            not a flat image collection; a bad field name; ``region_threshold``
            outside ``(0, 1)``; ``top_k < 1`` or ``cumulative_share`` outside
            ``(0, 1]``; no field ``target_field``.
        """
        check_image_collection(samples)
        check_field_name(self.maps_field, "maps_field")
        for name, value in self.output_fields.items():
            check_field_name(value, name)
        if not 0 < self.region_threshold < 1:
            raise ValueError(f"region_threshold must be in (0, 1); got {self.region_threshold}")
        if self.target_field is not None and self.target_field not in samples.get_field_schema():
            raise ValueError(f"samples have no field {self.target_field!r}")
        C.select_top_maps(torch.zeros(1, 1), top_k=self.top_k, cumulative_share=self.cumulative_share)  # validates

    def describe_model(self, spec, engine, geometry_note):
        """Fill in what the probe found about the model (before registering)."""
        self.model = spec.name
        self.model_fingerprint = spec.fingerprint
        self.layer = engine.layer_name
        self.geometry = geometry_note
        if engine.layout == "reshape":
            # another reshape makes other maps
            self.reshape = _ADDRESS.sub("", repr(engine.reshape))
        self.classes = jsonable(spec.classes)
        self.feature_shape = jsonable(list(engine.feature_shape))
        self.layout = engine.layout
        self.logits = engine.output_name
        self.binary = engine.binary
        self.probe_images = engine.probe_images
        self.config_hash = _hash(self._hashed())

    def _hashed(self):
        hashed = {k: getattr(self, k) for k in self._HASHED}
        if self.reshape is not None:
            hashed["reshape"] = self.reshape
        return hashed

    def map_identity(self, spec):
        """What makes channel ``c`` of an image the same map across runs (not
        ``top_k`` and the like, which only choose among the maps): model,
        layer, preprocessing, explained class, reshape."""
        identity = {k: getattr(self, k) for k in ("model", "model_fingerprint", "layer", "target_field")}
        identity["transforms"] = _ADDRESS.sub("", repr(spec.transforms))
        if self.reshape is not None:
            identity["reshape"] = self.reshape
        return _hash(identity)


def _hash(values):
    return hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


class ActivationMapsResults(RunResults):
    """What :func:`compute_activation_maps` did, as
    ``dataset.load_run_results(maps_field)`` gives it back.

    Attributes
    ----------
    layer : str
        the layer whose maps were computed.
    processed, skipped, failed : int
        images computed now, skipped (already done with this config), and
        whose file could not be used (see the error field).
    num_maps : int
        maps written by this run.
    names_kept : int
        of those, maps that kept the names given to the maps they replaced.
    geometry_unknown : int
        images whose maps were placed on the whole image (unknown geometry).
    stale_layouts : list of str
        layouts (brain keys) some of whose maps this run replaced.
    seconds : float
        wall-clock time of the computation (not the probe).
    """

    def __init__(self, samples, config, key, layer=None, processed=0, skipped=0, failed=0,
                 num_maps=0, names_kept=0, geometry_unknown=0, stale_layouts=None, seconds=None,
                 backend=None):
        super().__init__(samples, config, key, backend=backend)
        self.layer = layer
        self.processed = processed
        self.skipped = skipped
        self.failed = failed
        self.num_maps = num_maps
        self.names_kept = names_kept
        self.geometry_unknown = geometry_unknown
        self.stale_layouts = list(stale_layouts or [])
        self.seconds = seconds
