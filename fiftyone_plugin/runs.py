"""Every computation is a FiftyOne custom run, so users list, load, rename
and delete them like brain runs (``dataset.list_runs()``, ...)."""

from .storage import check_field_name


def register_run(samples, run_key, run_type, config):
    """Register (or replace) ``run_key`` with a JSON-serialisable config."""
    check_field_name(run_key, "run key")
    run_config = samples.init_run(run_type=run_type, **config)
    samples.register_run(run_key, run_config, overwrite=True, cleanup=False)


def save_run_results(samples, run_key, results):
    """Attach a JSON-serialisable results dict to ``run_key``."""
    results = {k: v for k, v in results.items() if k != "run_key"}
    run_results = samples.init_run_results(run_key, **results)
    samples.save_run_results(run_key, run_results, overwrite=True)


def load_run_config(samples, run_key):
    """The config dict of ``run_key``."""
    return samples.get_run_info(run_key).config.serialize()
