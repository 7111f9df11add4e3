"""Concepts: how names are stored on maps (store), the naming panel's
model (naming) and the App's selections (selection)."""
