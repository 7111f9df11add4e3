"""Concepts: how names are stored on maps (store, the one door to that
scheme) and exchanged as JSON (exchange), the naming panel's model (naming),
the App's selections (selection), and what the plugin keeps between
requests in FiftyOne's execution store (records)."""
