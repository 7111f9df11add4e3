"""Naming assistance: suggestions learnt from an annotator's names and
their transfer to maps nobody named."""
