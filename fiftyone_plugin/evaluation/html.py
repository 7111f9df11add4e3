"""HTML and figure pieces of the report (:mod:`.report`): escaping,
number formatting, tables, matplotlib figures drawn on the Agg canvas
(pyplot and the user's backend are never touched) and thumbnails, all
embedded as base64 ``data:`` URLs."""

import base64
import html
import io
import math

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageOps

from ..concepts.names import NOT_NAMEABLE

_MAX_LABEL = 40

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.8em 0;font-size:.85em}th,td{border:1px solid #ddd;padding:3px 7px;text-align:left}
th{background:#f4f4f4}img.plot{max-width:100%;display:block;margin:.8em 0}
.examples{display:flex;flex-wrap:wrap;gap:8px}.example{margin:0;border:2px solid #ccc;padding:3px;font-size:.75em;max-width:180px}
.example.wrong{border-color:#d33}.note{color:#666;font-size:.9em}.missing{width:140px;height:100px;background:#eee;color:#888;
display:flex;align-items:center;justify-content:center;font-size:.8em}dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dt{font-weight:bold}
"""




def esc(value):
    """HTML-escaped text of anything (as :func:`shown`)."""
    return html.escape("" if value is None else shown(value), quote=True)


def mpl_text(text):
    """Text safe for matplotlib labels: ``$`` would start mathtext."""
    text = shown(text)
    if len(text) > _MAX_LABEL:
        text = text[: _MAX_LABEL - 1] + "\u2026"
    return text.replace("\\", "\\\\").replace("$", r"\$")


def shown(text):
    """Text as a reader sees it: the store's mark :data:`NOT_NAMEABLE`
    reads "not nameable" (no internal token in the report).

    Examples
    --------
    >>> shown("__not_nameable__"), shown("sun")
    ('not nameable', 'sun')
    """
    return "not nameable" if text == NOT_NAMEABLE else str(text)


def fmt(value, *, digits=3):
    """A number for a table cell: ``digits`` decimals (scientific below
    ``10**-digits``), integers as they are, booleans as yes/no, None and
    nan as a dash.

    Examples
    --------
    >>> fmt(0.12345), fmt(0.00001), fmt(7), fmt(float("nan")), fmt(True)
    ('0.123', '1.0e-05', '7', '\u2013', 'yes')
    """
    if value is None:
        return "\u2013"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "\u2013"
        if value != 0 and abs(value) < 10 ** -digits:
            return f"{value:.1e}"
        return f"{value:.{digits}f}"
    return shown(value)


def html_table(columns, rows):
    """An HTML table; ``columns`` are ``(key, header)``; every cell escaped."""
    head = "".join(f"<th>{esc(h)}</th>" for _, h in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(fmt(row.get(k)))}</td>" for k, _ in columns) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(width, height):
    """A matplotlib figure of ``width`` x ``height`` inches (100 dpi) on
    its own Agg canvas: no pyplot state, no GUI backend."""
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def png(fig):
    """``fig`` as a ``data:image/png;base64,...`` URL (mathtext on, TeX
    off)."""
    buffer = io.BytesIO()
    with matplotlib.rc_context({"text.usetex": False}):
        fig.savefig(buffer, format="png", bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def img(data_url, alt, *, css_class="plot"):
    """An ``<img>`` element of a data URL, ``alt`` escaped."""
    return f'<img class="{css_class}" src="{data_url}" alt="{esc(alt)}">'


def heatmap(ax, values, rows, cols, *, fmt="{:.2f}", cmap="viridis", vmin=None, vmax=None, annotate=True):
    """Draw ``values`` (shape ``(len(rows), len(cols))``, nan left blank) on
    ``ax`` with labelled ticks; non-zero cells are annotated with ``fmt``
    when ``annotate`` and there are at most 600 cells. Returns the image
    (for a colour bar)."""
    values = np.asarray(values, dtype=float)
    masked = np.ma.masked_invalid(values)
    image = ax.imshow(masked, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels([mpl_text(c) for c in cols], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([mpl_text(r) for r in rows], fontsize=8)
    if annotate and values.size <= 600:
        finite = values[np.isfinite(values)]
        middle = (finite.max() + finite.min()) / 2 if finite.size else 0
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v) and v != 0:
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                        color="black" if v > middle else "white")
    return image


def thumbnail(path, boxes, *, size):
    """A JPEG thumbnail of the image at ``path`` (EXIF orientation applied,
    never upscaled, longest side ``size`` pixels) with ``boxes`` (relative
    ``[x, y, w, h]``) outlined in red, as a ``data:`` URL.

    Raises
    ------
    OSError
        the image cannot be read.
    """
    with Image.open(path) as image:
        # boxes are in the frame the App shows: EXIF orientation applied
        image = ImageOps.exif_transpose(image).convert("RGB")
        width, height = image.size
        scale = min(1.0, size / max(width, height))  # never upscale
        thumb = image.resize((max(1, round(width * scale)), max(1, round(height * scale))))
    draw = ImageDraw.Draw(thumb)
    tw, th = thumb.size
    for box in boxes:
        if not box or len(box) != 4:
            continue
        x, y, w, h = box
        draw.rectangle(
            [x * tw, y * th, min((x + w) * tw, tw - 1), min((y + h) * th, th - 1)],
            outline=(255, 40, 40), width=2,
        )
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=85)  # photos: a tenth of a PNG's size
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
