"""Activation maps: the model's significant maps per image (compute),
where they lie on the image (geometry), and their 2-D layout (layout)."""
