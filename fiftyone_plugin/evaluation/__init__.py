"""Evaluation: explanations of each classification by its concepts,
per-class reasons, untrustworthy types, concept-channel correspondence,
the causal deletion check and the HTML report.

Runs (each a FiftyOne custom run: a config, a results object that
``dataset.load_run_results`` returns as it was returned, and a cleanup):

- :mod:`.explanations` -- ``compute_explanations`` (writes three fields)
- :mod:`.reasons` -- ``summarize_concepts`` (saves views)
- :mod:`.untrustworthy` -- ``untrustworthy_concepts`` (saves views)
- :mod:`.neurons` -- ``neuron_correspondence``
- :mod:`.report` -- ``write_report`` (its pieces in :mod:`.sections` and
  :mod:`.html`)
- :mod:`.deletion` -- ``concept_deletion`` (image edits and model passes in
  :mod:`.occlusion`)

Read by the evaluation panel: :mod:`.findings` (an annotator's newest run of
each type as small rounded tables; computes nothing).

Shared pieces: :mod:`.maptable` (the one bulk read of maps, concepts and
predictions), :mod:`.pairs` (per class x concept sums), :mod:`.stats` (pure
statistics kernels), :mod:`.views` (saved views of a run).
"""
