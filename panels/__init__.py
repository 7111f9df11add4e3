"""Panels of the plugin."""

from .naming_panel import NamingPanel

PANELS = [NamingPanel]
