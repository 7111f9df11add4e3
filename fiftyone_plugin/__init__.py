"""Interactive Naming: explain image classifiers by visual concepts named by
people, on FiftyOne datasets.

``import fiftyone_plugin as fpl`` and see DESIGN.md section 4 for the surface.
Names are imported lazily so that ``fiftyone_plugin.mongod`` can be used
before FiftyOne is imported (FiftyOne reads its database settings at import).
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "compute_activation_maps": "activation_maps",
    "default_field_names": "activation_maps",
    "compute_map_visualization": "visualization",
    "map_points": "visualization",
    "layout_purity": "visualization",
    "list_layouts": "visualization",
    "stale_layouts": "visualization",
    "delete_layout": "visualization",
    "choose_layout": "visualization",
    "resolve_maps": "storage",
    "assign_concept": "concepts",
    "list_concepts": "concepts",
    "list_annotators": "concepts",
    "rename_concept": "concepts",
    "merge_concepts": "concepts",
    "delete_concept": "concepts",
    "export_concepts": "concepts",
    "import_concepts": "concepts",
    "validate_concept_name": "concepts",
    "concept_field": "concepts",
    "NOT_NAMEABLE": "concepts",
    "resolve_model": "models",
    "krippendorff_alpha": "krippendorff_fast",
    "AlphaUndefinedError": "krippendorff_fast",
    "compute_agreement": "agreement",
    "write_consensus": "agreement",
    "pair_alpha": "agreement",
    "align_concepts": "agreement",
    "aligned_alpha": "agreement",
    "agreement_from_labels": "agreement",
    "AgreementResults": "agreement",
    "compute_explanations": "explanations",
    "read_maps": "explanations",
    "summarize_concepts": "summaries",
    "untrustworthy_concepts": "summaries",
    "neuron_correspondence": "neurons",
    "write_report": "report",
    "render_report": "report",
    "concept_deletion": "deletion",
    "load_deletion_results": "deletion",
    "suggest_concepts": "suggestions",
    "accept_suggestions": "suggestions",
    "undo_suggestions": "suggestions",
    "transfer_concepts": "transfer",
}

_SUBMODULES = {
    "demo", "contributions", "models", "engine", "images", "mongod", "runs", "storage",
    "naming", "agreement", "krippendorff_fast", "explanations", "summaries", "neurons", "report",
    "deletion", "suggestions", "transfer",
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
