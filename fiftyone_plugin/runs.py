"""The run contract: every computation on a dataset is one FiftyOne custom run.

Each capability (``compute_activation_maps``, ``compute_explanations``, ...)
follows the same five steps, after FiftyOne Brain's methods
(``fiftyone.brain.internal.core``: a validated config, a method that knows its
fields and cleans them up, and a results object)::

    config = ExplanationsConfig(annotator="ann", maps_field="actmaps")   # 1 validate
    config.validate(samples)
    register_run(samples, run_key, config)                               # 2 register
    table = kernel(...)                                                  # 3 pure kernel
    results = ExplanationsResults(samples, config, run_key, table=...)
    save_run_results(samples, run_key, results)                          # 4 save
    return results                                                       # 5 return

so that what ``compute_x`` returns is what ``dataset.load_run_results(key)``
returns (the same class, the same values), and ``dataset.delete_run(key)``
removes the fields the run owns (:meth:`RunConfig.fields`).

- :class:`RunConfig`: JSON parameters. Subclasses set :attr:`RunConfig.run_type`
  (the run's ``method``, listed by ``dataset.list_runs(method=...)``) and
  override :meth:`RunConfig.fields` and :meth:`RunConfig.validate`.
- :class:`RunResults`: JSON attributes. Subclasses pass their values as
  keyword arguments; :meth:`RunResults.to_dict` gives them back as plain JSON
  (NaN and infinities as ``None``, via :func:`jsonable`, the package's one
  cleaner of non-JSON values).

Runs are FiftyOne's custom runs (``fiftyone.core.runs``), so users list,
rename and delete them like brain runs: ``dataset.list_runs()``,
``dataset.rename_run()``, ``dataset.delete_run()``.
"""

import datetime
import math

import numpy as np
import fiftyone.core.runs as focr

from .storage import check_field_name


def jsonable(value):
    """``value`` as plain JSON: numpy scalars and arrays as Python numbers and
    lists, NaN and infinities as ``None``, mapping keys as strings, tuples and
    sets as lists, pandas DataFrames as a list of records, datetimes as ISO
    strings.

    >>> jsonable({"a": np.float32(0.5), 2: (np.nan, np.int64(3))})
    {'a': 0.5, '2': [None, 3]}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a DataFrame
        return jsonable(value.to_dict("records"))
    return value


class RunConfig(focr.RunConfig):
    """Base class of every run's config: JSON parameters, validated.

    Subclasses set ``run_type`` and take their parameters as keyword
    arguments (FiftyOne rebuilds a stored config with ``cls(**stored)``, so
    every parameter must be accepted by ``__init__`` and kept as an attribute
    of the same name).

    Args:
        **kwargs: JSON-serialisable parameters, stored as attributes
    """

    #: the run's method name, as listed by ``dataset.list_runs(method=...)``
    run_type = None

    def __init__(self, **kwargs):
        kwargs.pop("method", None)
        super().__init__(method=self.run_type, **jsonable(kwargs))

    @property
    def run_cls(self):
        return Run

    def fields(self):
        """The sample fields (top-level names or embedded paths such as
        ``"actmaps.detections.point_layout"``) this run writes and owns;
        :meth:`Run.cleanup` deletes them with the run. Default: none."""
        return []

    def validate(self, samples):
        """Raise ``ValueError`` (or a subclass) if ``samples`` can't take this
        run. Called by :func:`register_run` before anything is written."""


class Run(focr.Run):
    """The FiftyOne run behind every :class:`RunConfig`: its fields are
    ``config.fields()`` and its cleanup deletes them."""

    @classmethod
    def validate(cls, config):
        # ETA pairs a run class with one config class by name; here one run
        # class serves every config of the contract
        if not isinstance(config, RunConfig):
            raise TypeError(f"expected a fiftyone_plugin.runs.RunConfig, got {type(config).__name__}")

    def get_fields(self, samples, key):
        return list(self.config.fields())

    def cleanup(self, samples, key):
        _delete_fields(samples._root_dataset, self.config.fields())


class RunResults(focr.RunResults):
    """Base class of every run's results: JSON attributes.

    Subclasses take ``(samples, config, key, **values)`` and keep each value
    as an attribute of the same name, so ``load_run_results`` rebuilds them
    with FiftyOne's ``cls(samples, config, key, **stored)``. Values are
    cleaned by :func:`jsonable` when saved, never silently dropped.
    """

    @property
    def run_key(self):
        """The run key the results are saved under (``None`` if unsaved)."""
        return self.key

    def to_dict(self):
        """The results' values as plain JSON (without the run's config)."""
        return jsonable({k: getattr(self, k) for k in self.attributes() if k != "cls"})

    def serialize(self, reflective=False):
        d = super().serialize(reflective=reflective)
        return {k: (v if k == "cls" else jsonable(v)) for k, v in d.items()}


def _delete_fields(dataset, fields):
    schema_paths = set(dataset.get_field_schema(flat=True))
    # deepest first, so an embedded path goes before its parent
    for path in sorted(set(fields), key=lambda p: -p.count(".")):
        if path in schema_paths:
            dataset.delete_sample_field(path)


def register_run(samples, run_key, config):
    """Validate ``config`` on ``samples`` and register it as ``run_key``.

    Re-running a key keeps what both runs own (so an interrupted run resumes
    on its own fields) and deletes the fields the previous run owned that
    this one doesn't (a changed output field is not left behind).

    Args:
        samples: a FiftyOne dataset or view
        run_key: a valid field-like name (letters, digits, underscores)
        config: a :class:`RunConfig`

    Raises:
        ValueError: a bad run key, or what ``config.validate`` raises
    """
    check_field_name(run_key, "run key")
    config.validate(samples)
    if run_key in samples.list_runs():
        old = samples.get_run_info(run_key).config
        old_fields = old.fields() if isinstance(old, RunConfig) else []
        _delete_fields(samples._root_dataset, set(old_fields) - set(config.fields()))
    samples.register_run(run_key, config, overwrite=True, cleanup=False)


def save_run_results(samples, run_key, results):
    """Save ``results`` (a :class:`RunResults`) under ``run_key``."""
    samples.save_run_results(run_key, results, overwrite=True, cache=False)


def load_run_results(samples, run_key):
    """The results saved under ``run_key`` (the class the run returned)."""
    return samples.load_run_results(run_key, cache=False)

