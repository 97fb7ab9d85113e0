"""Reports: an accuracy table, a heatmap, accuracy curves and one self-contained HTML page.

Reads the run directories the harness writes (`results.jsonl`, `run.json`), groups graded
queries by model x context size x hops x mode (CoT or skip), and gives every group its
accuracy with a 95% Wilson interval and its mean hop credit. Several runs share one report,
so models sit side by side. A model is its label and content digest, never a path: runs of
one label and digest pool, from whichever machines they came; results written before rows
carried a digest pool by label alone. Loading and tables need only the core install; the figures need
the `report` extra (matplotlib), drawn with Agg so no display and no global pyplot state.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hashhop.dataset import atomic_output, make_output_dir, read_records
from hashhop.errors import HashHopError
from hashhop.model_digest import DIGEST_PREFIX
from hashhop.score import Summary

if TYPE_CHECKING:
    from matplotlib.figure import Figure

RESULTS_FILE = "results.jsonl"
RUN_FILE = "run.json"
RESULT_FIELDS = ("spec", "model_label", "correct", "hop_credit")
"""What the report reads from each results line (spec: size, unit, hops, cot)."""

HEATMAP_FILE = "heatmap.png"
ACCURACY_FILE = "accuracy.png"
HTML_FILE = "report.html"

FIGURE_DPI = 100
PNG_COLOURS = 256
MIN_FIGURE_WIDTH = 6.4
"""Inches: room for a figure's title however few panels it has."""
COLOUR_MAP = "viridis"
MISSING_CELL_COLOUR = "#dddddd"
DARK_CELL_LUMINANCE = 0.5
"""Cells darker than this get white annotations, lighter ones black."""
MODE_LINE_STYLE = {False: "-", True: "--"}
MODE_MARKER = {False: "o", True: "s"}
MODE_NAME = {False: "skip", True: "CoT"}
MODE_TITLE = {False: "skip (last hash only)", True: "CoT (every hop written)"}
CURVE_DODGE = 1.07
"""Series at one size are spread by this factor on the log axis so error bars don't overlap."""
CURVE_PANELS_PER_ROW = 3
ERROR_BAR_ALPHA = 0.5
ACCURACY_AXIS_LIMITS = (-0.04, 1.04)
"""A little room beyond 0% and 100% so points on the edges stay visible."""
CURVE_MARGIN = 1.6
"""The log x axis reaches this factor beyond the smallest and largest size."""
SIZE_SUFFIXES = ((10**9, "B"), (10**6, "M"), (10**3, "K"))
SHORT_DIGEST_CHARS = 12
"""Enough of a digest to tell apart two models that share a label."""

SECRET_NAME = re.compile(
    r"key|secret|passw|credential|auth|(^|_)token($|_)|(^|_)env", re.IGNORECASE
)
"""Metadata names never shown: API keys, tokens, passwords, environment variables."""
_NAMED_ARGUMENT = re.compile(r"(--?[\w-]+(?:=|\s+)|\b\w+=)([^\s-]\S*)")
"""`--flag value`, `--flag=value` or `NAME=value` in a command line."""
REDACTED = "***"


@dataclass(frozen=True)
class Outcome:
    """What the report needs of one graded query."""

    model: str
    """The model's label."""
    digest: str | None
    """The model's content digest (or API model name); None in rows written before digests."""
    suite: str | None
    """The standard suite the query belongs to (see `hashhop.suite`), or None."""
    size: int
    unit: str
    hops: int
    cot: bool
    correct: bool
    hop_credit: float


@dataclass(frozen=True)
class Run:
    """One evaluation run directory: its `run.json` and the outcome of every query."""

    directory: Path
    metadata: dict[str, Any]
    outcomes: list[Outcome]


@dataclass(frozen=True)
class Setting:
    """One cell of the report: a model at one context size, hop count and mode."""

    model: str
    size: int
    hops: int
    cot: bool


@dataclass(frozen=True)
class Aggregate:
    """Accuracy per setting, the one source every table and figure draws from."""

    unit: str
    """Unit of the context sizes: 'tokens' or 'chars'."""
    models: tuple[str, ...]
    """In the order their runs were given."""
    summaries: dict[Setting, Summary]
    """Sorted by model (as given), size, hops, skip before CoT."""
    headlines: dict[tuple[str, str], Summary]
    """(model, suite) -> accuracy over every query of that standard suite: its one figure."""

    @property
    def sizes(self) -> list[int]:
        return sorted({setting.size for setting in self.summaries})

    @property
    def hop_counts(self) -> list[int]:
        return sorted({setting.hops for setting in self.summaries})

    @property
    def modes(self) -> list[bool]:
        return sorted({setting.cot for setting in self.summaries})


@dataclass(frozen=True)
class ReportPaths:
    """What `write_report` wrote, and the table it printed into the page."""

    heatmap: Path
    accuracy: Path
    html: Path
    table: str


_EXPECTED = {str: "a string", int: "an integer", bool: "true or false", float: "a number"}


def _field(mapping: dict[str, Any], name: str, kind: type, where: str) -> Any:
    """mapping[name], checked to be a `kind`; a bool is not a number here, an int is a float."""
    value = mapping.get(name)
    accepted = (int, float) if kind is float else (kind,)
    if isinstance(value, bool) is not (kind is bool) or not isinstance(value, accepted):
        raise HashHopError(f"{where}: field '{name}' must be {_EXPECTED[kind]}, got {value!r}")
    return value


def _outcome(record: dict[str, Any], where: str) -> Outcome:
    spec = record["spec"]
    if not isinstance(spec, dict):
        raise HashHopError(f"{where}: field 'spec' must be a JSON object")
    spec_where = f"{where}, spec"
    size = _field(spec, "size", int, spec_where)
    if size <= 0:
        raise HashHopError(f"{spec_where}: field 'size' must be positive, got {size}")
    digest = record.get("model_digest")
    return Outcome(
        model=_field(record, "model_label", str, where),
        digest=None if digest is None else _field(record, "model_digest", str, where),
        suite=None if record.get("suite") is None else _field(record, "suite", str, where),
        size=size,
        unit=_field(spec, "unit", str, spec_where),
        hops=_field(spec, "hops", int, spec_where),
        cot=_field(spec, "cot", bool, spec_where),
        correct=_field(record, "correct", bool, where),
        hop_credit=float(_field(record, "hop_credit", float, where)),
    )


def _read_metadata(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise HashHopError(f"{path}: no such file; is {path.parent} a run directory?")
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise HashHopError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    if not isinstance(metadata, dict):
        raise HashHopError(f"{path}: expected a JSON object")
    return metadata


def _load_run(directory: Path) -> Run:
    directory = Path(directory)
    if not directory.is_dir():
        raise HashHopError(f"{directory}: no such run directory")
    metadata = _read_metadata(directory / RUN_FILE)
    results = directory / RESULTS_FILE
    records = read_records(results, fields=RESULT_FIELDS)
    # read_records skips blank lines, so a record number may differ from its line number.
    outcomes = [
        _outcome(record, f"{results}: record {number}")
        for number, record in enumerate(records, start=1)
    ]
    return Run(directory, metadata, outcomes)


def load_runs(run_dirs: list[Path]) -> list[Run]:
    """Every run directory's metadata and graded queries; a missing or bad file is an error."""
    if not run_dirs:
        raise HashHopError("no run directories given")
    return [_load_run(directory) for directory in run_dirs]


def model_names(outcomes: list[Outcome]) -> dict[tuple[str, str | None], str]:
    """(label, digest) -> the model's name in the report: its label, with a short digest
    added where one label names several models."""
    digests: dict[str, list[str | None]] = defaultdict(list)
    for outcome in outcomes:
        if outcome.digest not in digests[outcome.model]:
            digests[outcome.model].append(outcome.digest)
    return {
        (label, digest): label if len(shared) == 1 else f"{label} [{_short_digest(digest)}]"
        for label, shared in digests.items()
        for digest in shared
    }


def _short_digest(digest: str | None) -> str:
    return "no digest" if digest is None else digest.removeprefix(DIGEST_PREFIX)[:SHORT_DIGEST_CHARS]


def aggregate(runs: list[Run]) -> Aggregate:
    """Group the queries of all runs by setting; runs of one model (label and digest) pool."""
    outcomes = [outcome for run in runs for outcome in run.outcomes]
    units = sorted({outcome.unit for outcome in outcomes})
    if len(units) != 1:
        raise HashHopError(
            f"the runs size contexts in {' and '.join(units)}: report each unit separately"
        )
    names = model_names(outcomes)
    models = tuple(dict.fromkeys(names.values()))
    groups: dict[Setting, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        name = names[outcome.model, outcome.digest]
        groups[Setting(name, outcome.size, outcome.hops, outcome.cot)].append(outcome)
    order = sorted(groups, key=lambda s: (models.index(s.model), s.size, s.hops, s.cot))
    suites: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        if outcome.suite is not None:
            suites[names[outcome.model, outcome.digest], outcome.suite].append(outcome)
    return Aggregate(
        units[0],
        models,
        {setting: Summary.of(groups[setting]) for setting in order},
        {key: Summary.of(queries) for key, queries in suites.items()},
    )


def size_label(size: int) -> str:
    """A short context-size label to three significant digits: 500, 2K, 4.1K, 16K, 1M."""
    rounded = float(f"{size:.3g}")
    for factor, suffix in SIZE_SUFFIXES:
        if rounded >= factor:
            return f"{rounded / factor:g}{suffix}"
    return f"{rounded:g}"


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


_RIGHT_ALIGNED = {1, 2, 4, 5, 7}
"""Columns of numbers in the table (size, hops, n, accuracy, hop credit)."""


def _table(grouped: Aggregate) -> list[list[str]]:
    """Header and rows of the accuracy table, shared by the text and HTML forms."""
    header = [
        "model",
        f"size ({grouped.unit})",
        "hops",
        "mode",
        "n",
        "accuracy",
        "95% CI",
        "hop credit",
    ]
    rows = [
        [
            setting.model,
            f"{setting.size:,}",
            str(setting.hops),
            MODE_NAME[setting.cot],
            str(summary.n),
            _percent(summary.accuracy),
            f"[{_percent(summary.low)}, {_percent(summary.high)}]",
            f"{summary.mean_hop_credit:.3f}",
        ]
        for setting, summary in grouped.summaries.items()
    ]
    return [header, *rows]


_HEADLINE_RIGHT_ALIGNED = {2, 3}
"""Columns of numbers in the headline table (n, accuracy)."""


def _headline_table(grouped: Aggregate) -> list[list[str]]:
    """Header and rows of the suite headlines: one accuracy per model and suite."""
    header = ["model", "suite", "n", "accuracy", "95% CI"]
    rows = [
        [model, suite, str(summary.n), _percent(summary.accuracy),
         f"[{_percent(summary.low)}, {_percent(summary.high)}]"]
        for (model, suite), summary in grouped.headlines.items()
    ]
    return [header, *rows]


def _aligned(table: list[list[str]], right_aligned: set[int]) -> str:
    widths = [max(len(row[column]) for row in table) for column in range(len(table[0]))]
    return "\n".join(
        "  ".join(
            cell.rjust(width) if column in right_aligned else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths))
        ).rstrip()
        for row in table
    )


def format_table(grouped: Aggregate) -> str:
    """The accuracy table for a terminal: one row per model, size, hops and mode, after the
    suite headlines where the runs are of a standard suite."""
    grid = _aligned(_table(grouped), _RIGHT_ALIGNED)
    if not grouped.headlines:
        return grid
    return _aligned(_headline_table(grouped), _HEADLINE_RIGHT_ALIGNED) + "\n\n" + grid


def _new_figure(width: float, height: float) -> Figure:
    """An empty figure rendered by Agg, or a HashHopError saying how to get matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise HashHopError("figures need matplotlib: pip install 'hashhop[report]'") from None
    figure = Figure(
        figsize=(max(width, MIN_FIGURE_WIDTH), height), dpi=FIGURE_DPI, layout="constrained"
    )
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    """The figure as a palette PNG: a third of the size of Agg's RGBA, no visible difference."""
    from PIL import Image  # a dependency of matplotlib

    rendered = io.BytesIO()
    figure.savefig(rendered, format="png")
    rendered.seek(0)
    palette = Image.open(rendered).convert("RGB").quantize(PNG_COLOURS, Image.Quantize.MEDIANCUT)
    compact = io.BytesIO()
    palette.save(compact, format="png", optimize=True)
    return compact.getvalue()


def _context_axis_label(unit: str) -> str:
    return f"context length ({unit})"


def _cell_text_colour(rgba: tuple[float, float, float, float]) -> str:
    red, green, blue, _ = rgba
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return "white" if luminance < DARK_CELL_LUMINANCE else "black"


def heatmap_figure(grouped: Aggregate) -> Figure:
    """Accuracy by context length (x) and hops (y): a row of panels per model, one per mode.

    The colour scale is fixed at 0..1 so panels and reports compare by eye; a setting that
    was not run is a grey cell marked with a dash.
    """
    sizes, hop_counts, modes = grouped.sizes, grouped.hop_counts, grouped.modes
    panel_width = max(3.0, 0.6 * len(sizes) + 1.2)
    panel_height = max(2.2, 0.45 * len(hop_counts) + 1.4)
    figure = _new_figure(panel_width * len(modes) + 1.2, panel_height * len(grouped.models) + 0.5)
    figure.suptitle("HashHop accuracy by context length and hops", fontweight="bold")
    axes = figure.subplots(len(grouped.models), len(modes), squeeze=False)
    for model, row in zip(grouped.models, axes):
        for cot, ax in zip(modes, row):
            grid = np.full((len(hop_counts), len(sizes)), np.nan)
            for y, hops in enumerate(hop_counts):
                for x, size in enumerate(sizes):
                    summary = grouped.summaries.get(Setting(model, size, hops, cot))
                    if summary is not None:
                        grid[y, x] = summary.accuracy
            ax.set_facecolor(MISSING_CELL_COLOUR)
            image = ax.imshow(grid, cmap=COLOUR_MAP, vmin=0, vmax=1, origin="lower", aspect="auto")
            for (y, x), accuracy in np.ndenumerate(grid):
                missing = np.isnan(accuracy)
                ax.text(
                    x,
                    y,
                    "–" if missing else f"{accuracy:.0%}",
                    ha="center",
                    va="center",
                    fontsize="small",
                    color="black"
                    if missing
                    else _cell_text_colour(image.cmap(image.norm(accuracy))),
                )
            ax.set_title(f"{model}\n{MODE_TITLE[cot]}", fontsize="medium")
            ax.set_xticks(range(len(sizes)), [size_label(size) for size in sizes])
            ax.set_yticks(range(len(hop_counts)), [str(hops) for hops in hop_counts])
            ax.set_xlabel(_context_axis_label(grouped.unit))
            ax.set_ylabel("hops")
            ax.tick_params(length=0)
    colour_bar = figure.colorbar(image, ax=axes, label="accuracy", shrink=0.9)
    colour_bar.ax.yaxis.set_major_formatter(lambda value, _: f"{value:.0%}")
    return figure


def accuracy_figure(grouped: Aggregate) -> Figure:
    """Accuracy against context length (log x), one panel per model, panels sharing the y axis.

    A colour per hop count, skip solid and CoT dashed; bars are 95% Wilson intervals, the
    series at one size nudged apart so their bars stay readable.
    """
    sizes = grouped.sizes
    models, hop_counts, modes = grouped.models, grouped.hop_counts, grouped.modes
    columns = min(len(models), CURVE_PANELS_PER_ROW)
    rows = -(-len(models) // columns)
    figure = _new_figure(4.8 * columns + 1.4, 3.6 * rows + 0.4)
    from matplotlib.lines import Line2D  # only now: _new_figure has checked matplotlib is there

    figure.suptitle("HashHop accuracy against context length", fontweight="bold")
    axes = figure.subplots(rows, columns, squeeze=False, sharey=True).flatten()
    series = [(hops, cot) for hops in hop_counts for cot in modes]
    hop_colour = {hops: f"C{index}" for index, hops in enumerate(hop_counts)}
    for panel, (model, ax) in enumerate(zip(models, axes)):
        for index, (hops, cot) in enumerate(series):
            points = [
                (size, summary)
                for size in sizes
                if (summary := grouped.summaries.get(Setting(model, size, hops, cot)))
            ]
            dodge = CURVE_DODGE ** (index - (len(series) - 1) / 2)
            _, caps, bars = ax.errorbar(
                [size * dodge for size, _ in points],
                [summary.accuracy for _, summary in points],
                yerr=[
                    [summary.accuracy - summary.low for _, summary in points],
                    [summary.high - summary.accuracy for _, summary in points],
                ],
                color=hop_colour[hops],
                linestyle=MODE_LINE_STYLE[cot],
                marker=MODE_MARKER[cot],
                markersize=4,
                capsize=2,
            )
            for part in (*caps, *bars):
                part.set_alpha(ERROR_BAR_ALPHA)
        # Each panel its own sizes: models count tokens with their own tokenizers.
        own_sizes = sorted({setting.size for setting in grouped.summaries if setting.model == model})
        ax.set_xscale("log")
        ax.set_xticks(own_sizes, [size_label(size) for size in own_sizes])
        ax.minorticks_off()
        ax.set_xlim(min(own_sizes) / CURVE_MARGIN, max(own_sizes) * CURVE_MARGIN)
        ax.set_ylim(*ACCURACY_AXIS_LIMITS)
        ax.yaxis.set_major_formatter(lambda value, _: f"{value:.0%}")
        ax.grid(alpha=0.3)
        ax.set_title(model, fontsize="medium")
        ax.set_xlabel(_context_axis_label(grouped.unit))
        if panel % columns == 0:
            ax.set_ylabel("accuracy (bars: 95% Wilson interval)")
    for unused in axes[len(models) :]:
        unused.remove()
    handles = [
        Line2D([], [], color=hop_colour[hops], label=f"{hops} hop{'' if hops == 1 else 's'}")
        for hops in hop_counts
    ] + [
        Line2D(
            [],
            [],
            color="grey",
            linestyle=MODE_LINE_STYLE[cot],
            marker=MODE_MARKER[cot],
            label=MODE_NAME[cot],
        )
        for cot in modes
    ]
    figure.legend(handles=handles, loc="outside right center")
    return figure


def _redact_arguments(text: str) -> str:
    """`text` with the value of every `--flag value` or `NAME=value` named like a secret hidden."""

    def hide(match: re.Match[str]) -> str:
        name = match.group(1).strip(" -=").replace("-", "_")
        return match.group(1) + REDACTED if SECRET_NAME.search(name) else match.group(0)

    return _NAMED_ARGUMENT.sub(hide, text)


def _public_items(value: Any, name: str = "") -> Iterator[tuple[str, str]]:
    """(dotted name, text) of every leaf of `value`, leaving out whatever is named like a secret."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not SECRET_NAME.search(str(key)):
                yield from _public_items(item, f"{name}.{key}" if name else str(key))
    elif isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        for index, item in enumerate(value):
            yield from _public_items(item, f"{name}[{index}]")
    else:
        yield name, _redact_arguments(value if isinstance(value, str) else json.dumps(value))


def _html_table(rows: list[list[str]], header: list[str] | None, numeric: set[int]) -> str:
    def cells(row: list[str], tag: str) -> str:
        return "".join(
            f"<{tag}{' class=num' if column in numeric else ''}>{html.escape(cell)}</{tag}>"
            for column, cell in enumerate(row)
        )

    head = f"<thead><tr>{cells(header, 'th')}</tr></thead>" if header else ""
    body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def _image(png: bytes, description: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(description)}">'


_PAGE_STYLE = (
    "body{font-family:system-ui,sans-serif;color:#222;max-width:80em;margin:2em auto;"
    "padding:0 1em}table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "th,td{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top;"
    "overflow-wrap:anywhere}.num{text-align:right;font-variant-numeric:tabular-nums}"
    "img{max-width:100%}"
)


def _html_headlines(grouped: Aggregate) -> list[str]:
    """The suite headline section, or nothing when no run is of a standard suite."""
    if not grouped.headlines:
        return []
    header, *rows = _headline_table(grouped)
    return [
        "<h2>Standard suite</h2>",
        "<p>One figure per model: accuracy over every query of the suite.</p>",
        _html_table(rows, header, _HEADLINE_RIGHT_ALIGNED),
    ]


def _html_page(runs: list[Run], grouped: Aggregate, heatmap: bytes, curves: bytes) -> str:
    """The report as one HTML file: table, both figures inline, then every run's metadata."""
    header, *rows = _table(grouped)
    n_queries = sum(len(run.outcomes) for run in runs)
    sections = [
        "<h1>HashHop report</h1>",
        (
            f"<p>{len(runs)} run(s), {len(grouped.models)} model(s), {n_queries} graded queries. "
            "Accuracy is exact match on the asked query, with a 95% Wilson interval; hop credit "
            "is the mean fraction of hops answered right.</p>"
        ),
        *_html_headlines(grouped),
        "<h2>Accuracy</h2>",
        _html_table(rows, header, _RIGHT_ALIGNED),
        _image(heatmap, "accuracy heatmap: context length by hops"),
        _image(curves, "accuracy against context length, one line per hop count and mode"),
        "<h2>Runs</h2>",
    ]
    for run in runs:
        # The directory's own name: the path leading to it belongs to one machine.
        details = [["directory", run.directory.name], ["graded queries", str(len(run.outcomes))]]
        details += [list(item) for item in _public_items(run.metadata)]
        sections += [
            f"<h3>{html.escape(run.outcomes[0].model)}</h3>",
            _html_table(details, None, set()),
        ]
    body = "\n".join(sections)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>HashHop report</title><style>{_PAGE_STYLE}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def _write(path: Path, content: bytes) -> None:
    with atomic_output(path) as file:
        file.write(content)


def write_report(run_dirs: list[Path], out_dir: Path) -> ReportPaths:
    """Report on the runs: heatmap.png, accuracy.png and report.html in `out_dir`.

    `out_dir` is created if needed, in a directory that exists; each file appears whole or
    not at all.
    """
    runs = load_runs(run_dirs)
    grouped = aggregate(runs)
    heatmap = _png(heatmap_figure(grouped))
    curves = _png(accuracy_figure(grouped))
    out_dir = make_output_dir(out_dir)
    paths = ReportPaths(
        out_dir / HEATMAP_FILE, out_dir / ACCURACY_FILE, out_dir / HTML_FILE, format_table(grouped)
    )
    _write(paths.heatmap, heatmap)
    _write(paths.accuracy, curves)
    _write(paths.html, _html_page(runs, grouped, heatmap, curves).encode("utf-8"))
    return paths
