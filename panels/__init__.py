"""Panels of the plugin. The naming panel arrives with its own issue; the
list is empty until then so that the plugin registers cleanly."""

PANELS = []
