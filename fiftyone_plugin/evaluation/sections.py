"""The sections of the report (:mod:`.report`), each from the
:class:`~fiftyone_plugin.evaluation.maptable.MapTable` and the evaluation
kernels: coverage per class, concept frequency per class, untrustworthy
example types with thumbnails, concepts and channels, and inter-annotator
agreement. Every piece of user text is escaped."""

import numpy as np

from ..agreement.compute import aligned_alpha_note, compute_agreement
from ..concepts.store import list_annotators, list_concepts
from .html import esc, figure, fmt, heatmap, html_table, img, mpl_text, png, thumbnail
from .neurons import correspondence_from_labels

_MAX_CONCEPTS_PLOTTED = 25
_MAX_CHANNELS_PLOTTED = 40


def coverage_section(table, explanations, classes):
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
    fig = figure(7, 0.35 * len(rows) + 1.2)
    ax = fig.add_subplot(111)
    y = np.arange(len(rows))
    ax.barh(y - 0.2, [r["coverage"] for r in rows], height=0.4, label="coverage (share of all positive contribution)")
    ax.barh(y + 0.2, [r["maps_coverage"] for r in rows], height=0.4, label="named share of the significant maps")
    ax.plot([r["fully_named"] for r in rows], y, "k|", markersize=12, label="fraction fully named")
    ax.set_yticks(y)
    ax.set_yticklabels([mpl_text(r["class"]) for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.6 / len(rows)), ncol=3, frameon=False)
    columns = [
        ("class", "predicted class"), ("n", "samples"), ("accuracy", "accuracy"),
        ("confidence", "mean confidence"), ("coverage", "mean coverage"),
        ("maps_coverage", "named share of the maps"), ("fully_named", "fully named"),
    ]
    return img(png(fig), "coverage per predicted class") + html_table(columns, rows)


def frequency_section(summary):
    if summary.empty:
        return "<p>No concept explains any prediction yet.</p>"
    totals = summary.groupby("concept")["n_with"].sum().sort_values(ascending=False, kind="stable")
    concepts = list(totals.index[:_MAX_CONCEPTS_PLOTTED])
    classes = sorted(summary["predicted_class"].unique(), key=str)
    pivot = summary.pivot_table(index="predicted_class", columns="concept", values="frequency", aggfunc="first")
    values = pivot.reindex(index=classes, columns=concepts).to_numpy(dtype=float)
    fig = figure(max(5, 0.45 * len(concepts) + 2.5), max(2.5, 0.35 * len(classes) + 1.5))
    ax = fig.add_subplot(111)
    image = heatmap(ax, np.nan_to_num(values, nan=0.0), classes, concepts, vmin=0, vmax=1)
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
        img(png(fig), "concept frequency per predicted class")
        + more
        + "<h3>Top concepts per class</h3>"
        + html_table(columns, top.to_dict("records"))
    )


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
        caption = f"predicted {cls} ({fmt(table.confidence[s], digits=2)})"
        if table.ground_truth[s] is not None:
            caption += f", truth {table.ground_truth[s]}"
        try:
            data_url = thumbnail(table.filepaths[s], boxes[s], size=size)
            picture = img(data_url, caption, css_class="thumb")
        except Exception as e:  # a missing or unreadable file must not stop the report
            picture = f"<div class='missing'>image unavailable ({esc(type(e).__name__)})</div>"
        css = "example wrong" if correct[s] is False else "example"
        cells.append(f"<figure class='{css}'>{picture}<figcaption>{esc(caption)}</figcaption></figure>")
    return "<div class='examples'>" + "".join(cells) + "</div>"


def untrustworthy_section(table, untrustworthy, guard, *, max_types, per_type, size):
    """The flagged types (or, when none, the best tested pairs, marked as
    no evidence) with example thumbnails; ``guard`` holds the test's
    ``by, min_support, alpha, fdr``."""
    if untrustworthy is None:
        return "<p>Skipped: no ground truth and no prediction confidence.</p>"
    by = guard["by"]
    flagged = untrustworthy[untrustworthy["flagged"]]
    note = (
        f"<p>{len(flagged)} of {int(untrustworthy['tested'].sum())} tested (class, concept) pairs are "
        f"flagged (ranked by {'excess errors' if by == 'error' else 'confidence lost'}; "
        f"guard: at least {guard['min_support']} samples with the concept and "
        f"{'BH-corrected ' if guard['fdr'] else ''}one-sided "
        f"{'Fisher exact' if by == 'error' else 'Mann-Whitney'} p &le; {esc(guard['alpha'])}).</p>"
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
    parts = [note, html_table(columns, shown.to_dict("records"))]
    for _, row in shown.iterrows():
        parts.append(f"<h3>{esc(row['predicted_class'])} with \u201c{esc(row['concept'])}\u201d</h3>")
        if row.get("view"):
            parts.append(f"<p class='note'>Saved view in FiftyOne: {esc(row['view'])}</p>")
        parts.append(_examples(table, row["predicted_class"], row["concept"], per_type, size))
    return "".join(parts)


def neurons_section(table):
    named = table.named & (table.channels >= 0)
    if not named.any():
        return "<p>No map has a concept yet.</p>", None
    result = correspondence_from_labels(table.concepts[named], table.channels[named], layers=table.layers[named])
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
    fig = figure(max(5, 0.28 * len(top_units) + 2.5), max(2.5, 0.35 * len(top_concepts) + 1.5))
    ax = fig.add_subplot(111)
    image = heatmap(ax, share, top_concepts, top_units, fmt="{:.0%}", cmap="magma", vmin=0,
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
        f"Normalised mutual information between channel and concept: <b>{fmt(result.nmi)}</b> "
        f"(chance-adjusted: {fmt(result.ami)}); a channel predicts the concept of {fmt(result.concept_purity * 100, digits=1)}% "
        f"of the maps, a concept predicts the channel of {fmt(result.channel_purity * 100, digits=1)}%.</p>"
    )
    columns = [
        ("concept", "concept"), ("num_maps", "maps"), ("num_channels", "channels"),
        ("top_channel", "top channel"), ("top_channel_share", "top-channel share"),
        ("normalized_entropy", "normalised entropy"), ("effective_channels", "effective channels"),
    ]
    return overview + img(png(fig), "channel x concept matrix") + more + html_table(
        columns, result.concepts.to_dict("records")
    ), result


def default_agreement_annotators(samples, maps_field):
    """The annotators the agreement section compares by default: those who
    judged (named, or marked not nameable) at least half as many maps as
    the annotator who judged most, so that a half-done annotator does not
    pull the figures down; never the consensus (it is made from the
    others)."""
    judged = {a: sum(list_concepts(samples, a, maps_field=maps_field).values())
              for a in list_annotators(samples, maps_field=maps_field) if a != "consensus"}
    most = max(judged.values(), default=0)
    return [a for a, n in judged.items() if n > 0 and 2 * n >= most]


def agreement_section(samples, maps_field, annotators):
    """Krippendorff's alphas of the annotators (default:
    :func:`default_agreement_annotators`) and their pairwise matrix;
    returns ``(html, status)``."""
    chosen = annotators if annotators is not None else default_agreement_annotators(samples, maps_field)
    if len(chosen) < 2:
        return (
            f"<p class='note'>Skipped: agreement needs at least two annotators; "
            f"{len(chosen)} named maps here.</p>",
            "fewer than two annotators",
        )
    try:
        # run_key=None: the report computes agreement without registering a run
        result = compute_agreement(samples, annotators=chosen, maps_field=maps_field, run_key=None)
    except ValueError as e:
        return f"<p class='note'>Skipped: {esc(e)}</p>", str(e)

    stats = []
    for name, label in (("pair_alpha", "pair alpha (same concept or not)"),
                        ("aligned_alpha", "aligned alpha (concepts matched across annotators, cross-fitted)"),
                        ("nameable_alpha", "nameable alpha (nameable or not)")):
        value = getattr(result, name, None)
        if value is not None:
            reason = (getattr(result, "reasons", None) or {}).get(name)
            if not reason and name == "aligned_alpha":
                # the matching never scores the maps it was learned on
                reason = aligned_alpha_note(result)
            stats.append({"statistic": label, "alpha": value, "note": reason or ""})
    # a note column only where some statistic has a note
    columns = [("statistic", "statistic"), ("alpha", "alpha")] + (
        [("note", "note")] if any(row["note"] for row in stats) else [])
    parts = [
        f"<p>Krippendorff's alpha over {esc(', '.join(chosen))}, invariant to the words each annotator chose.</p>",
        html_table(columns, stats),
    ]
    pairwise = getattr(result, "pairwise", None) or {}
    matrix = pairwise.get("pair_alpha")
    names = pairwise.get("annotators") or chosen
    if matrix is not None:
        values = np.array([[np.nan if v is None else float(v) for v in row] for row in matrix])
        np.fill_diagonal(values, 1.0)
        fig = figure(max(3.5, 0.6 * len(names) + 2), max(3, 0.5 * len(names) + 1.5))
        ax = fig.add_subplot(111)
        image = heatmap(ax, values, names, names, fmt="{:.2f}", cmap="RdYlGn", vmin=-0.2, vmax=1)
        fig.colorbar(image, ax=ax, label="pair alpha")
        ax.set_title("pairwise agreement", fontsize=9)
        parts.insert(1, img(png(fig), "pairwise agreement matrix"))
    return "".join(parts), "ok"


METHOD = """
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

