"""A self-contained HTML report of an annotator's concepts, for people who
don't run FiftyOne.

One file, no external resources: plots are PNGs drawn with matplotlib's Agg
canvas (pyplot and the user's backend are never touched) and embedded as
base64 ``data:`` URLs, thumbnails likewise, styles inline, no scripts. Every
piece of user text (concept, class, annotator, dataset names) is HTML-escaped.

Sections: overview; coverage per predicted class; concept frequency per
class; untrustworthy example types with example thumbnails (the concept's
map regions drawn on the image); the channel x concept matrix; the
inter-annotator agreement matrix (when :mod:`fiftyone_plugin.agreement.compute`
provides ``compute_agreement`` and at least two annotators named maps); and
how each number is defined.
"""

import base64
import html
import io
import math
import os
from datetime import datetime, timezone

import numpy as np

from ..concepts.store import NOT_NAMEABLE, list_annotators
from .explanations import default_run_key, explain, read_maps
from .neurons import correspondence_from_labels
from ..runs import register_run, save_run_results
from ..storage import check_field_name
from .summaries import concept_summary_table, untrustworthy_table

RUN_TYPE = "report"

_MAX_CONCEPTS_PLOTTED = 25
_MAX_CHANNELS_PLOTTED = 40
_MAX_LABEL = 40


# --------------------------------------------------------------------------
# small helpers


def _e(value):
    """HTML-escaped text of anything."""
    return html.escape("" if value is None else str(value), quote=True)


def _mpl_text(text):
    """Text safe for matplotlib labels: ``$`` would start mathtext."""
    text = str(text)
    if len(text) > _MAX_LABEL:
        text = text[: _MAX_LABEL - 1] + "\u2026"
    return text.replace("\\", "\\\\").replace("$", r"\$")


def _fmt(value, digits=3):
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
    return str(value)


def _table(columns, rows):
    """An HTML table; ``columns`` are ``(key, header)``; every cell escaped."""
    head = "".join(f"<th>{_e(h)}</th>" for _, h in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(_fmt(row.get(k)))}</td>" for k, _ in columns) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig):
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"text.usetex": False}):
        fig.savefig(buffer, format="png", bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(data_url, alt, css_class="plot"):
    return f'<img class="{css_class}" src="{data_url}" alt="{_e(alt)}">'


def _heatmap(ax, values, rows, cols, fmt="{:.2f}", cmap="viridis", vmin=None, vmax=None, annotate=True):
    values = np.asarray(values, dtype=float)
    masked = np.ma.masked_invalid(values)
    image = ax.imshow(masked, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels([_mpl_text(c) for c in cols], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([_mpl_text(r) for r in rows], fontsize=8)
    if annotate and values.size <= 600:
        finite = values[np.isfinite(values)]
        middle = (finite.max() + finite.min()) / 2 if finite.size else 0
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v) and v != 0:
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                        color="black" if v > middle else "white")
    return image


# --------------------------------------------------------------------------
# sections


def _coverage_section(table, explanations, classes):
    rows = []
    by_class = {}
    for i, label in enumerate(table.predicted):
        if label is not None:
            by_class.setdefault(label, []).append(i)
    for cls in sorted(by_class, key=str):
        idx = np.array(by_class[cls])
        info = classes.get(cls, {})
        rows.append(
            {
                "class": cls,
                "n": len(idx),
                "accuracy": info.get("accuracy"),
                "confidence": info.get("mean_confidence"),
                "coverage": float(explanations.named_share[idx].mean()),
                "maps_coverage": float(
                    np.mean(np.where(explanations.maps_share[idx] > 0,
                                     explanations.named_share[idx] / np.maximum(explanations.maps_share[idx], 1e-12), 0.0))
                ),
                "fully_named": float(explanations.fully_named[idx].mean()),
            }
        )
    if not rows:
        return "<p>No sample has a prediction.</p>"
    fig = _figure(7, 0.35 * len(rows) + 1.2)
    ax = fig.add_subplot(111)
    y = np.arange(len(rows))
    ax.barh(y - 0.2, [r["coverage"] for r in rows], height=0.4, label="coverage (share of all positive contribution)")
    ax.barh(y + 0.2, [r["maps_coverage"] for r in rows], height=0.4, label="named share of the significant maps")
    ax.plot([r["fully_named"] for r in rows], y, "k|", markersize=12, label="fraction fully named")
    ax.set_yticks(y)
    ax.set_yticklabels([_mpl_text(r["class"]) for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.6 / len(rows)), ncol=3, frameon=False)
    columns = [
        ("class", "predicted class"), ("n", "samples"), ("accuracy", "accuracy"),
        ("confidence", "mean confidence"), ("coverage", "mean coverage"),
        ("maps_coverage", "named share of the maps"), ("fully_named", "fully named"),
    ]
    return _img(_png(fig), "coverage per predicted class") + _table(columns, rows)


def _frequency_section(summary):
    if summary.empty:
        return "<p>No concept explains any prediction yet.</p>"
    totals = summary.groupby("concept")["n_with"].sum().sort_values(ascending=False, kind="stable")
    concepts = list(totals.index[:_MAX_CONCEPTS_PLOTTED])
    classes = sorted(summary["predicted_class"].unique(), key=str)
    pivot = summary.pivot_table(index="predicted_class", columns="concept", values="frequency", aggfunc="first")
    values = pivot.reindex(index=classes, columns=concepts).to_numpy(dtype=float)
    fig = _figure(max(5, 0.45 * len(concepts) + 2.5), max(2.5, 0.35 * len(classes) + 1.5))
    ax = fig.add_subplot(111)
    image = _heatmap(ax, np.nan_to_num(values, nan=0.0), classes, concepts, vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="fraction of the class's samples with the concept")
    ax.set_xlabel("concept")
    ax.set_ylabel("predicted class")
    more = (
        f"<p class='note'>Showing the {len(concepts)} most frequent of {len(totals)} concepts.</p>"
        if len(totals) > len(concepts) else ""
    )
    top = summary.sort_values(["predicted_class", "n_with"], ascending=[True, False], kind="stable")
    top = top.groupby("predicted_class", sort=True).head(3)
    columns = [
        ("predicted_class", "predicted class"), ("concept", "concept"), ("n_with", "samples"),
        ("frequency", "frequency"), ("mean_share", "mean share"),
        ("confidence_with", "confidence with"), ("confidence_without", "without"),
        ("accuracy_with", "accuracy with"), ("accuracy_without", "without"),
    ]
    return (
        _img(_png(fig), "concept frequency per predicted class")
        + more
        + "<h3>Top concepts per class</h3>"
        + _table(columns, top.to_dict("records"))
    )


def _thumbnail(path, boxes, size):
    from PIL import Image, ImageDraw, ImageOps

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


def _examples(table, cls, concept, limit, size):
    """Thumbnails of samples predicted ``cls`` with ``concept``: errors
    first, then by the concept's share."""
    shares, boxes = {}, {}
    for m in np.flatnonzero(table.concepts == concept):
        s = int(table.map_sample[m])
        if table.predicted[s] != cls:
            continue
        shares[s] = shares.get(s, 0.0) + float(table.shares[m])
        boxes.setdefault(s, []).append(table.boxes[m])
    correct = table.correct
    order = sorted(shares, key=lambda s: (correct[s] is not False, -shares[s]))
    cells = []
    for s in order[:limit]:
        caption = f"predicted {cls} ({_fmt(table.confidence[s], 2)})"
        if table.ground_truth[s] is not None:
            caption += f", truth {table.ground_truth[s]}"
        try:
            data_url = _thumbnail(table.filepaths[s], boxes[s], size)
            picture = _img(data_url, caption, "thumb")
        except Exception as e:  # a missing or unreadable file must not stop the report
            picture = f"<div class='missing'>image unavailable ({_e(type(e).__name__)})</div>"
        css = "example wrong" if correct[s] is False else "example"
        cells.append(f"<figure class='{css}'>{picture}<figcaption>{_e(caption)}</figcaption></figure>")
    return "<div class='examples'>" + "".join(cells) + "</div>"


def _untrustworthy_section(table, untrustworthy, max_types, per_type, size):
    if untrustworthy is None:
        return "<p>Skipped: no ground truth and no prediction confidence.</p>"
    by = untrustworthy.attrs["by"]
    flagged = untrustworthy[untrustworthy["flagged"]]
    note = (
        f"<p>{len(flagged)} of {untrustworthy.attrs['num_tested']} tested (class, concept) pairs are "
        f"flagged (ranked by {'excess errors' if by == 'error' else 'confidence lost'}; "
        f"guard: at least {untrustworthy.attrs['min_support']} samples with the concept and "
        f"{'BH-corrected ' if untrustworthy.attrs['fdr'] else ''}one-sided "
        f"{'Fisher exact' if by == 'error' else 'Mann-Whitney'} p &le; {_e(untrustworthy.attrs['alpha'])}).</p>"
    )
    shown = flagged.head(max_types)
    if shown.empty:
        shown = untrustworthy[untrustworthy["tested"]].head(min(max_types, 3))
        note += (
            "<p class='note'>Nothing passes the significance guard; the best-ranked tested pairs "
            "are shown for inspection only: they are <b>not</b> evidence of untrustworthiness.</p>"
            if not shown.empty else "<p class='note'>No pair has enough support to be tested.</p>"
        )
    if by == "error":
        columns = [
            ("predicted_class", "predicted class"), ("concept", "concept"), ("n_with", "samples with"),
            ("errors_with", "errors with"), ("error_rate_with", "error rate with"),
            ("error_rate_without", "without"), ("risk_difference_low", "difference, 95% low"),
            ("excess_errors", "excess errors"), ("q_value", "q"),
        ]
    else:
        columns = [
            ("predicted_class", "predicted class"), ("concept", "concept"), ("n_with", "samples with"),
            ("confidence_with", "confidence with"), ("confidence_without", "without"),
            ("confidence_effect", "rank-biserial"), ("confidence_lost", "confidence lost"),
            ("confidence_q", "q"),
        ]
    parts = [note, _table(columns, shown.to_dict("records"))]
    for _, row in shown.iterrows():
        parts.append(f"<h3>{_e(row['predicted_class'])} with \u201c{_e(row['concept'])}\u201d</h3>")
        if row.get("view"):
            parts.append(f"<p class='note'>Saved view in FiftyOne: {_e(row['view'])}</p>")
        parts.append(_examples(table, row["predicted_class"], row["concept"], per_type, size))
    return "".join(parts)


def _neurons_section(table):
    named = table.named & (table.channels >= 0)
    if not named.any():
        return "<p>No map has a concept yet.</p>", None
    result = correspondence_from_labels(table.concepts[named], table.channels[named], table.layers[named])
    matrix = result.matrix
    top_concepts = list(result.concepts["concept"][:_MAX_CONCEPTS_PLOTTED])
    # the busiest channels, grouped by their most common concept (in the
    # order of the rows), so that a one-channel-per-concept world would
    # show as a diagonal
    channels = result.channels.head(_MAX_CHANNELS_PLOTTED)
    rank = {c: i for i, c in enumerate(top_concepts)}
    channels = channels.assign(_group=[rank.get(c, len(rank)) for c in channels["top_concept"]])
    top_units = list(channels.sort_values(["_group", "num_maps"], ascending=[True, False], kind="stable")["unit"])
    counts = matrix.reindex(index=top_concepts, columns=top_units).to_numpy(dtype=float)
    share = counts / np.maximum(matrix.reindex(index=top_concepts).sum(axis=1).to_numpy()[:, None], 1)
    fig = _figure(max(5, 0.28 * len(top_units) + 2.5), max(2.5, 0.35 * len(top_concepts) + 1.5))
    ax = fig.add_subplot(111)
    image = _heatmap(ax, share, top_concepts, top_units, fmt="{:.0%}", cmap="magma", vmin=0,
                     annotate=len(top_units) <= 20)
    fig.colorbar(image, ax=ax, label="fraction of the concept's maps")
    ax.set_xlabel("channel")
    ax.set_ylabel("concept")
    more = (
        f"<p class='note'>Showing the {len(top_units)} channels with most named maps of {result.num_channels}.</p>"
        if result.num_channels > len(top_units) else ""
    )
    overview = (
        f"<p>{result.num_maps} named maps, {result.num_concepts} concepts, {result.num_channels} channels. "
        f"Normalised mutual information between channel and concept: <b>{_fmt(result.nmi)}</b> "
        f"(chance-adjusted: {_fmt(result.ami)}); a channel predicts the concept of {_fmt(result.concept_purity * 100, 1)}% "
        f"of the maps, a concept predicts the channel of {_fmt(result.channel_purity * 100, 1)}%.</p>"
    )
    columns = [
        ("concept", "concept"), ("num_maps", "maps"), ("num_channels", "channels"),
        ("top_channel", "top channel"), ("top_channel_share", "top-channel share"),
        ("normalized_entropy", "normalised entropy"), ("effective_channels", "effective channels"),
    ]
    return overview + _img(_png(fig), "channel x concept matrix") + more + _table(
        columns, result.concepts.to_dict("records")
    ), result


def _agreement_section(samples, maps_field, annotators):
    try:
        import importlib

        module = importlib.import_module("fiftyone_plugin.agreement.compute")
        compute = module.compute_agreement
    except (ImportError, AttributeError):
        return "<p class='note'>Skipped: inter-annotator agreement is not available in this installation.</p>", "unavailable"
    known = [a for a in list_annotators(samples, maps_field) if a != "consensus"]
    chosen = annotators if annotators is not None else known
    if len(chosen) < 2:
        return (
            f"<p class='note'>Skipped: agreement needs at least two annotators; "
            f"{len(chosen)} named maps here.</p>",
            "fewer than two annotators",
        )
    try:
        try:
            result = compute(samples, annotators=chosen, maps_field=maps_field, run_key=None)
        except TypeError:
            result = compute(samples, annotators=chosen, maps_field=maps_field)
    except ValueError as e:
        return f"<p class='note'>Skipped: {_e(e)}</p>", str(e)

    stats = []
    for name, label in (("pair_alpha", "pair alpha (same concept or not)"),
                        ("aligned_alpha", "aligned alpha (concepts matched across annotators, cross-fitted)"),
                        ("nameable_alpha", "nameable alpha (nameable or not)")):
        value = getattr(result, name, None)
        if value is not None:
            reason = (getattr(result, "reasons", None) or {}).get(name)
            note_of = getattr(module, "aligned_alpha_note", None)
            if not reason and name == "aligned_alpha" and note_of is not None:
                # the matching never scores the maps it was learned on
                reason = note_of(result)
            stats.append({"statistic": label, "alpha": value, "note": reason or ""})
    parts = [
        f"<p>Krippendorff's alpha over {_e(', '.join(chosen))}, invariant to the words each annotator chose.</p>",
        _table([("statistic", "statistic"), ("alpha", "alpha"), ("note", "note")], stats),
    ]
    pairwise = getattr(result, "pairwise", None) or {}
    matrix = pairwise.get("pair_alpha")
    names = pairwise.get("annotators") or chosen
    if matrix is not None:
        values = np.array([[np.nan if v is None else float(v) for v in row] for row in matrix])
        np.fill_diagonal(values, 1.0)
        fig = _figure(max(3.5, 0.6 * len(names) + 2), max(3, 0.5 * len(names) + 1.5))
        ax = fig.add_subplot(111)
        image = _heatmap(ax, values, names, names, fmt="{:.2f}", cmap="RdYlGn", vmin=-0.2, vmax=1)
        fig.colorbar(image, ax=ax, label="pair alpha")
        ax.set_title("pairwise agreement", fontsize=9)
        parts.insert(1, _img(_png(fig), "pairwise agreement matrix"))
    return "".join(parts), "ok"


_METHOD = """
<ul>
<li><b>Map share</b>: a map's fraction of the sample's whole positive contribution to the explained
logit (all channels, not only the significant maps kept).</li>
<li><b>Coverage</b>: the summed share of the maps with a real concept (maps marked not nameable or not
named count as unexplained). <b>Named share of the maps</b> divides that by the summed share of all
significant maps. <b>Fully named</b>: every significant map has a concept.</li>
<li><b>Frequency</b>: the fraction of the samples predicted as a class in which at least one significant
map has the concept; <b>mean share</b>: the concept's summed share in those samples.</li>
<li><b>Untrustworthy example types</b>: for a predicted class and a concept, the error rate of the
class's predictions with and without the concept; flagged when at least the minimum support has the
concept and a one-sided Fisher exact test (Benjamini-Hochberg corrected over all tested pairs) passes;
ranked by <b>excess errors</b>, the errors with the concept beyond what the class's error rate without it
predicts. The 95% lower bound of the difference (Newcombe's hybrid score interval) says how much worse the
type is at least.</li>
<li><b>Channel &harr; concept</b>: normalised mutual information (arithmetic normalisation) between the
channel and the concept of each named map; the chance-adjusted mutual information corrects its upward
bias with many channels; entropies are normalised by the log of the number of channels.</li>
</ul>
"""

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.8em 0;font-size:.85em}th,td{border:1px solid #ddd;padding:3px 7px;text-align:left}
th{background:#f4f4f4}img.plot{max-width:100%;display:block;margin:.8em 0}
.examples{display:flex;flex-wrap:wrap;gap:8px}.example{margin:0;border:2px solid #ccc;padding:3px;font-size:.75em;max-width:180px}
.example.wrong{border-color:#d33}.note{color:#666;font-size:.9em}.missing{width:140px;height:100px;background:#eee;color:#888;
display:flex;align-items:center;justify-content:center;font-size:.8em}dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dt{font-weight:bold}
"""


# --------------------------------------------------------------------------
# the report


def render_report(
    samples,
    annotator,
    gt_field=None,
    maps_field="actmaps",
    prediction_field=None,
    title=None,
    by=None,
    min_support=5,
    alpha=0.05,
    max_types=5,
    examples_per_type=6,
    thumbnail_size=160,
    agreement=True,
    agreement_annotators=None,
):
    """The HTML of the report (see :func:`write_report`) and a dict saying
    what each section contains (``"ok"`` or why it was skipped)."""
    table = read_maps(samples, annotator, maps_field, prediction_field, gt_field)
    if by is None:
        by = "error" if gt_field is not None else "confidence"
    explanations = explain(table)
    summary = concept_summary_table(table)
    sections = {}

    dataset_name = samples._dataset.name
    title = title or f"Interactive naming report: {dataset_name} \u2013 {annotator}"
    named = table.named
    num_maps = len(table.concepts)
    judged = np.array([c is not None for c in table.concepts], dtype=bool)
    correct = table.correct
    known = [c for c in correct if c is not None]
    overview = {
        "dataset": dataset_name,
        "annotator": annotator,
        "maps field": maps_field,
        "samples with maps": table.num_samples,
        "maps": num_maps,
        "maps with a concept": f"{int(named.sum())} ({_fmt(named.mean() * 100 if num_maps else 0, 1)}%)",
        "maps not nameable": int((judged & ~named).sum()),
        "maps not named": int((~judged).sum()),
        "concepts": len({c for c in table.concepts[named]}),
        "mean coverage": _fmt(float(explanations.named_share.mean()) if table.num_samples else None),
        "fully named samples": _fmt(float(explanations.fully_named.mean()) if table.num_samples else None),
        "accuracy": _fmt(float(np.mean(known)) if known else None) + (f" on {len(known)} samples" if known else ""),
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    body = [f"<h1>{_e(title)}</h1>"]
    body.append("<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in overview.items()) + "</dl>")

    body.append("<h2>Coverage per predicted class</h2>")
    body.append(_coverage_section(table, explanations, summary.attrs.get("classes", {})))
    sections["coverage"] = "ok"

    body.append("<h2>Concepts per predicted class</h2>")
    body.append(_frequency_section(summary))
    sections["concepts"] = "ok" if not summary.empty else "no concepts"

    body.append("<h2>Untrustworthy example types</h2>")
    try:
        untrustworthy = untrustworthy_table(table, by=by, min_support=min_support, alpha=alpha)
        sections["untrustworthy"] = "ok"
    except ValueError as e:
        untrustworthy = None
        sections["untrustworthy"] = str(e)
    body.append(_untrustworthy_section(table, untrustworthy, max_types, examples_per_type, thumbnail_size))

    body.append("<h2>Concepts and channels</h2>")
    neurons_html, neurons = _neurons_section(table)
    body.append(neurons_html)
    sections["neurons"] = "ok" if neurons is not None else "no named maps"

    body.append("<h2>Inter-annotator agreement</h2>")
    if agreement:
        agreement_html, sections["agreement"] = _agreement_section(samples, maps_field, agreement_annotators)
    else:
        agreement_html, sections["agreement"] = "<p class='note'>Not requested.</p>", "not requested"
    body.append(agreement_html)

    body.append("<h2>How the numbers are defined</h2>" + _METHOD)
    body.append(
        f"<p class='note'>Concept {_e(NOT_NAMEABLE)!s} marks maps an annotator judged not nameable. "
        "Generated by the Interactive Naming FiftyOne plugin.</p>"
    )
    document = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
    return document, sections


def write_report(
    samples,
    annotator,
    path,
    gt_field=None,
    maps_field="actmaps",
    prediction_field=None,
    title=None,
    by=None,
    min_support=5,
    alpha=0.05,
    max_types=5,
    examples_per_type=6,
    thumbnail_size=160,
    agreement=True,
    agreement_annotators=None,
    run_key=None,
):
    """Write a self-contained HTML report of ``annotator``'s concepts to
    ``path``: coverage per predicted class, concept frequency per class,
    untrustworthy example types with example thumbnails, the channel x
    concept matrix and the inter-annotator agreement matrix.

    Parameters
    ----------
    samples : SampleCollection
    annotator : str
    path : str
        the ``.html`` file to write (its folder is created).
    gt_field : str, optional
        ground truth; without it, untrustworthy types are ranked by
        confidence (``by="confidence"``) and accuracies are omitted.
    maps_field, prediction_field : str
    title : str, optional
    by, min_support, alpha
        see :func:`fiftyone_plugin.evaluation.summaries.untrustworthy_concepts`.
    max_types : int
        untrustworthy types shown.
    examples_per_type : int
        thumbnails per type (errors first).
    thumbnail_size : int
        longest side of a thumbnail, in pixels.
    agreement : bool
        include the agreement section (needs two annotators or more).
    agreement_annotators : list of str, optional
    run_key : str, optional
        default ``report_<annotator>``: a FiftyOne custom run recording the
        path and the sections.

    Returns
    -------
    dict
        ``{"path", "bytes", "sections": {name: "ok" or why skipped},
        "run_key"}``.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ValueError(f"path must be a file path; got {path!r}")
    run_key = check_field_name(run_key or default_run_key("report", annotator, maps_field), "run_key")
    document, sections = render_report(
        samples, annotator, gt_field=gt_field, maps_field=maps_field,
        prediction_field=prediction_field, title=title, by=by, min_support=min_support,
        alpha=alpha, max_types=max_types, examples_per_type=examples_per_type,
        thumbnail_size=thumbnail_size, agreement=agreement,
        agreement_annotators=agreement_annotators,
    )
    path = os.path.abspath(os.fspath(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = document.encode("utf-8")
    with open(path, "wb") as f:
        f.write(data)
    result = {"path": path, "bytes": len(data), "sections": sections, "run_key": run_key}
    register_run(
        samples,
        run_key,
        RUN_TYPE,
        {"annotator": annotator, "maps_field": maps_field, "gt_field": gt_field, "path": path},
    )
    save_run_results(samples, run_key, result)
    return result
