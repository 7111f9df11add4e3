"""The run contract (fiftyone_plugin/runs.py): results round-trip through
load_run_results as the same class and values, a run's cleanup deletes the
fields it owns, and a re-run keeps shared fields but drops abandoned ones."""

import math

import fiftyone as fo
import numpy as np
import pytest

from fiftyone_plugin import runs


class _ToyConfig(runs.RunConfig):
    run_type = "toy"

    def __init__(self, field="toy_score", threshold=0.5, **kwargs):
        self.field = field
        self.threshold = threshold
        super().__init__(**kwargs)

    def fields(self):
        return [self.field]

    def validate(self, samples):
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"threshold must lie in [0, 1], got {self.threshold}")


class _ToyResults(runs.RunResults):
    def __init__(self, samples, config, key, scores=None, mean=None, backend=None):
        super().__init__(samples, config, key, backend=backend)
        self.scores = scores
        self.mean = mean


def _dataset(n=3):
    dataset = fo.Dataset()
    dataset.add_samples([fo.Sample(filepath=f"/tmp/toy_{i}.png") for i in range(n)])
    return dataset


def _run(dataset, key, field="toy_score", threshold=0.5):
    config = _ToyConfig(field=field, threshold=threshold)
    runs.register_run(dataset, key, config)
    scores = [0.25 * i for i in range(len(dataset))]
    dataset.set_values(field, scores)
    results = _ToyResults(dataset, config, key, scores=np.array(scores), mean=float("nan"))
    runs.save_run_results(dataset, key, results)
    return results


def test_results_round_trip_as_the_same_class_and_values():
    dataset = _dataset()
    returned = _run(dataset, "toy_run")
    loaded = runs.load_run_results(dataset, "toy_run")
    assert type(loaded) is _ToyResults
    assert loaded.to_dict() == returned.to_dict() == {"scores": [0.0, 0.25, 0.5], "mean": None}
    assert type(dataset.get_run_info("toy_run").config) is _ToyConfig
    assert dataset.get_run_info("toy_run").config.threshold == 0.5
    assert dataset.list_runs(method="toy") == ["toy_run"]


def test_delete_run_removes_the_fields_it_owns():
    dataset = _dataset()
    _run(dataset, "toy_run")
    dataset.add_sample_field("kept", fo.FloatField)
    dataset.delete_run("toy_run")
    assert "toy_score" not in dataset.get_field_schema()
    assert "kept" in dataset.get_field_schema()


def test_rerun_keeps_shared_fields_and_drops_abandoned_ones():
    dataset = _dataset()
    _run(dataset, "toy_run", field="first")
    _run(dataset, "toy_run", field="first")
    assert dataset.values("first") == [0.0, 0.25, 0.5]
    _run(dataset, "toy_run", field="second")
    schema = dataset.get_field_schema()
    assert "first" not in schema and "second" in schema


def test_invalid_config_fails_before_any_write():
    dataset = _dataset()
    with pytest.raises(ValueError, match="threshold"):
        runs.register_run(dataset, "toy_run", _ToyConfig(threshold=2.0))
    assert dataset.list_runs() == []
    with pytest.raises(ValueError, match="run key"):
        runs.register_run(dataset, "bad key!", _ToyConfig())


@pytest.mark.parametrize(
    "value, expected",
    [
        (np.float32(0.5), 0.5),
        (float("inf"), None),
        ({1: (np.int64(2), np.nan)}, {"1": [2, None]}),
        (np.array([[1, 2]]), [[1, 2]]),
        (np.bool_(True), True),
    ],
)
def test_jsonable_makes_plain_json(value, expected):
    out = runs.jsonable(value)
    assert out == expected
    assert not any(isinstance(v, float) and math.isnan(v) for v in [out])
