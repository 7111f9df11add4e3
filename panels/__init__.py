"""Panels of the plugin."""

from .evaluation_panel import EvaluationPanel
from .naming_panel import NamingPanel

PANELS = [NamingPanel, EvaluationPanel]
