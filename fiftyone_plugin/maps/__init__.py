"""Activation maps: each image's significant maps and their 2-D layout.

- ``compute``: :func:`compute_activation_maps` (validate -> probe -> register
  -> per-batch kernel and writes -> save); ``config``: its run config and
  results; ``loading``: images into batches; ``writing``: the per-batch
  kernel (``batch_maps``) and the MongoDB writes.
- ``contributions``: the pure tensor kernels (gradient x input per channel,
  top maps, heatmaps, regions); ``engine``: activations and gradients of one
  layer; ``models``: what a user passes as a model; ``geometry``: where the
  model's input lies on the image; ``images``: robust decoding.
- ``layout``: :func:`compute_map_visualization` and its run; ``embedding``:
  its pure kernels (UMAP, t-SNE, PCA); ``layouts``: listing, choosing,
  reading and deleting layouts.
"""
