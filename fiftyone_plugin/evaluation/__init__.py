"""Evaluation: explanations of each classification by its concepts,
per-class reasons, untrustworthy types, concept-channel correspondence,
the causal deletion check and the HTML report."""
