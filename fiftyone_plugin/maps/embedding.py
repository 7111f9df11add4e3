"""Pure kernels of a map layout: descriptors (numpy in) to 2-D points (numpy
out), and how well points group by a label. No FiftyOne, no database.

References
----------
McInnes, Healy, Melville, "UMAP: Uniform Manifold Approximation and
Projection for Dimension Reduction", arXiv:1802.03426, 2018; van der Maaten
& Hinton, "Visualizing Data using t-SNE", JMLR 9, 2008.
"""

import warnings

import numpy as np
import umap
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.neighbors import NearestNeighbors

# PCA before UMAP: wide layers (2048 channels) make UMAP's neighbour search
# slow, and 50 components keep the structure that matters.
_PCA_DIMS = 50
# descriptors are compared as unit vectors; rows equal to this many decimals
# are one descriptor (float32 noise between batches is ~1e-7)
_UNIQUE_DECIMALS = 5
# umap-learn's spectral initialisation needs more points than dimensions + 2
# (scipy's eigh: "k >= N"); below this, random initialisation
_UMAP_SPECTRAL_MIN = 5
#: the layout methods (the libraries FiftyOne Brain uses)
METHODS = ("umap", "tsne", "pca")


def unique_descriptors(descriptors):
    """Identical descriptors (e.g. of duplicated images) collapsed to one row.

    Rows are compared as unit vectors, to ``_UNIQUE_DECIMALS`` (5)
    decimals. This is what umap-learn's ``UMAP(unique=True)`` does, applied
    to every method, so duplicates share one point instead of being spread
    apart by the reducer.

    Parameters
    ----------
    descriptors : array_like, shape (N, D)

    Returns
    -------
    unique_rows : ndarray, shape (m, D), float32
        the distinct rows, as unit vectors.
    inverse : ndarray, shape (N,), int
        ``unique_rows[inverse]`` gives every (normalised) row back.

    Examples
    --------
    >>> rows, inverse = unique_descriptors([[3.0, 4.0], [0.6, 0.8], [1.0, 0.0]])
    >>> rows.tolist(), inverse.tolist()
    ([[0.6000000238418579, 0.800000011920929], [1.0, 0.0]], [0, 0, 1])
    """
    x = np.asarray(descriptors, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    _, first, inverse = np.unique(
        np.round(x, _UNIQUE_DECIMALS), axis=0, return_index=True, return_inverse=True
    )
    return x[first], np.asarray(inverse).ravel()


def layout_points(descriptors, method="umap", num_neighbors=15, min_dist=0.1, seed=51, **kwargs):
    """2-D points for ``descriptors`` ``(N, D)``, for any ``N >= 1``.

    Methods (the libraries FiftyOne Brain uses): ``"umap"`` (umap-learn,
    McInnes et al. 2018), ``"tsne"`` (scikit-learn's ``TSNE``, van der Maaten
    & Hinton 2008), ``"pca"`` (scikit-learn). Rows are compared as unit
    vectors (cosine geometry); identical rows get one point
    (:func:`unique_descriptors`); more than 50 dimensions are reduced by PCA
    to 50 first where there are more than 50 distinct rows.

    Small inputs work, with the parameters adapted (and recorded in the
    returned ``info``) where the library cannot take them as given, with
    ``m`` the number of distinct descriptors:

    - ``m == 1``: every map at ``(0, 0)``;
    - ``"pca"``: ``min(2, m, D)`` components, the missing axis 0;
    - ``"umap"``: ``n_neighbors = clip(num_neighbors, 2, m - 1)``; random
      initialisation for ``m < 5`` (spectral initialisation fails there:
      scipy's "Cannot use scipy.linalg.eigh for sparse A with k >= N");
      ``m == 2``, which umap-learn cannot embed, falls back to PCA;
    - ``"tsne"``: ``perplexity = min(perplexity (default 30), max(1,
      (m - 1) / 3))`` since scikit-learn requires it below ``m``; PCA
      initialisation where ``m > 2`` and ``D >= 2``, else random.

    Parameters
    ----------
    descriptors : array_like, shape (N, D)
        one row per map (any scale: rows are normalised).
    method : {"umap", "tsne", "pca"}, default "umap"
    num_neighbors : int, default 15
        UMAP's ``n_neighbors`` (adapted to small inputs, see above).
    min_dist : float, default 0.1
        UMAP's ``min_dist``, in layout units.
    seed : int, default 51
        the reducers' ``random_state``: the same input gives the same points.
    **kwargs
        passed to ``umap.UMAP`` / ``sklearn.manifold.TSNE`` /
        ``sklearn.decomposition.PCA`` (e.g. ``perplexity``, ``metric``).

    Returns
    -------
    points : ndarray, shape (N, 2), float64
    info : dict
        the parameters actually used (``method``, ``method_used``,
        ``distinct_descriptors``, ``num_maps``, ``fallback`` and the
        method's parameters).

    Raises
    ------
    ValueError
        an unknown method, or not a non-empty 2-D matrix.

    References
    ----------
    .. [1] McInnes, Healy, Melville, "UMAP: Uniform Manifold Approximation
       and Projection for Dimension Reduction", arXiv:1802.03426, 2018.
    .. [2] van der Maaten, Hinton, "Visualizing Data using t-SNE", JMLR 9, 2008.

    Examples
    --------
    Two distinct descriptors, each twice: duplicates share a point.

    >>> points, info = layout_points([[1, 0], [0, 1], [2, 0], [0, 3]], method="pca")
    >>> bool((points[0] == points[2]).all() and (points[1] == points[3]).all())
    True
    >>> info["distinct_descriptors"], info["components"]
    (2, 2)
    >>> layout_points([[1.0, 2.0]])[1]["fallback"]
    'one distinct descriptor: every map at (0, 0)'
    """
    if method not in METHODS:
        raise ValueError(f"unknown layout method {method!r}; use one of {list(METHODS)}")
    x = np.asarray(descriptors, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError("need a non-empty (N, D) descriptor matrix")
    unique, inverse = unique_descriptors(x)
    m, d = unique.shape
    info = {"method": method, "method_used": method, "distinct_descriptors": int(m), "num_maps": int(len(x)), "fallback": None}
    if m == 1:
        info.update(method_used=None, fallback="one distinct descriptor: every map at (0, 0)")
        return np.zeros((len(x), 2)), info
    if method == "umap" and m == 2:
        method = "pca"
        info.update(method_used="pca", fallback="2 distinct descriptors: UMAP cannot embed 2 points; PCA used")
    if d > _PCA_DIMS and m > _PCA_DIMS:
        unique = PCA(n_components=_PCA_DIMS, random_state=seed).fit_transform(unique).astype(np.float32)
        info["pca_dims"] = _PCA_DIMS
    d = unique.shape[1]

    if method == "pca":
        components = min(2, m, d)
        reduced = PCA(n_components=components, random_state=seed, **kwargs).fit_transform(unique)
        distinct = np.zeros((m, 2))
        distinct[:, :components] = reduced
        info["components"] = components
    elif method == "umap":
        n_neighbors = int(min(max(num_neighbors, 2), m - 1))
        init = "spectral" if m >= _UMAP_SPECTRAL_MIN else "random"
        info.update(num_neighbors=n_neighbors, min_dist=min_dist, init=init, seed=seed)
        with warnings.catch_warnings():
            # "n_jobs value 1 overridden by setting random_state": expected
            warnings.filterwarnings("ignore", message=".*n_jobs.*")
            reducer = umap.UMAP(
                n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, init=init,
                random_state=seed, verbose=False, **kwargs,
            )
            distinct = reducer.fit_transform(unique)
    else:
        perplexity = float(kwargs.pop("perplexity", 30.0))
        perplexity = min(perplexity, max(1.0, (m - 1) / 3.0))
        init = "pca" if m > 2 and d >= 2 else "random"
        info.update(perplexity=perplexity, init=init, seed=seed)
        distinct = TSNE(n_components=2, perplexity=perplexity, init=init, random_state=seed, **kwargs).fit_transform(unique)
    return np.asarray(distinct, dtype=np.float64)[inverse], info


def knn_purity(points, labels, k=10):
    """Mean fraction of each point's ``k`` nearest neighbours (itself
    excluded) that share its label: how well a layout groups by ``labels``.

    Parameters
    ----------
    points : array_like, shape (N, 2)
    labels : array_like, shape (N,)
    k : int, default 10
        neighbours per point; needs ``N > k``.

    Returns
    -------
    float
        in ``[0, 1]``; 1 when every neighbourhood is pure.

    Raises
    ------
    ValueError
        ``points`` and ``labels`` differ in length, or ``N <= k``.

    Examples
    --------
    >>> points = [[0, 0], [0, 1], [10, 0], [10, 1]]
    >>> knn_purity(points, ["a", "a", "b", "b"], k=1)
    1.0
    >>> knn_purity(points, ["a", "b", "a", "b"], k=1)
    0.0
    """
    points = np.asarray(points, dtype=np.float64)
    labels = np.asarray(labels)
    if len(points) != len(labels):
        raise ValueError("points and labels must have the same length")
    if len(points) <= k:
        raise ValueError(f"need more than k={k} points; got {len(points)}")
    _, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    same = labels[neighbours[:, 1:]] == labels[:, None]
    return float(same.mean())
