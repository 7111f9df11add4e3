"""Interactive Naming: explain image classifiers by visual concepts named by
people, on FiftyOne datasets.

``import fiftyone_plugin as fpl`` and see DESIGN.md section 4 for the surface.
Names are imported lazily so that ``fiftyone_plugin.mongod`` can be used
before FiftyOne is imported (FiftyOne reads its database settings at import).
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "compute_activation_maps": "maps.compute",
    "default_field_names": "maps.compute",
    "compute_map_visualization": "maps.layout",
    "map_points": "maps.layout",
    "layout_purity": "maps.layout",
    "list_layouts": "maps.layout",
    "stale_layouts": "maps.layout",
    "delete_layout": "maps.layout",
    "choose_layout": "maps.layout",
    "resolve_maps": "storage",
    "assign_concept": "concepts.store",
    "list_concepts": "concepts.store",
    "list_annotators": "concepts.store",
    "rename_concept": "concepts.store",
    "merge_concepts": "concepts.store",
    "delete_concept": "concepts.store",
    "export_concepts": "concepts.exchange",
    "import_concepts": "concepts.exchange",
    "validate_concept_name": "concepts.store",
    "concept_field": "concepts.store",
    "NOT_NAMEABLE": "concepts.store",
    "resolve_model": "maps.models",
    "krippendorff_alpha": "agreement.alpha",
    "AlphaUndefinedError": "agreement.alpha",
    "compute_agreement": "agreement.compute",
    "write_consensus": "agreement.compute",
    "pair_alpha": "agreement.compute",
    "align_concepts": "agreement.compute",
    "aligned_alpha": "agreement.compute",
    "agreement_from_labels": "agreement.compute",
    "AgreementResults": "agreement.compute",
    "compute_explanations": "evaluation.explanations",
    "read_maps": "evaluation.explanations",
    "summarize_concepts": "evaluation.summaries",
    "untrustworthy_concepts": "evaluation.summaries",
    "neuron_correspondence": "evaluation.neurons",
    "write_report": "evaluation.report",
    "render_report": "evaluation.report",
    "concept_deletion": "evaluation.deletion",
    "load_deletion_results": "evaluation.deletion",
    "suggest_concepts": "assistance.suggestions",
    "accept_suggestions": "assistance.suggestions",
    "undo_suggestions": "assistance.suggestions",
    "transfer_concepts": "assistance.transfer",
}

_SUBMODULES = {
    "demo", "maps", "concepts", "agreement", "evaluation", "assistance", "mongod", "runs", "storage",
}

__all__ = sorted(_EXPORTS) + sorted(_SUBMODULES)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
