"""Naming assistance: the suggestion model (model), suggestions learnt from
an annotator's names (suggestions), accepting and undoing them (accept),
groups of unnamed maps and what to name next (groups), and the transfer of
names to maps nobody named (transfer)."""
