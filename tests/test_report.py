"""Reports: exact aggregates with Wilson intervals, a readable table, valid figures, a safe page."""

from __future__ import annotations

import base64
import json
import re
import sys
from pathlib import Path

import pytest

from hashhop.errors import HashHopError
from hashhop.report import (
    Setting,
    aggregate,
    format_table,
    load_runs,
    size_label,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PNG_BYTES = 150_000
SIZES = (500, 2000, 8000)
HOPS = (1, 2)
QUERIES_PER_CELL = 8
SECRET = "sk-do-not-print-me"


def correct_count(model: str, size: int, hops: int, cot: bool) -> int:
    """The known number of right answers (of 8) in each synthetic cell."""
    if model == "alpha":
        return QUERIES_PER_CELL - SIZES.index(size) - 2 * (hops - 1) - (0 if cot else 1)
    return QUERIES_PER_CELL if cot and hops == 1 else SIZES.index(size) + hops - 1


def write_run(
    directory: Path, model: str, unit: str = "tokens", digest: str | None = None, suite: str | None = None
) -> Path:
    """A run directory as the harness writes it: every cell with its known correct count.

    Wrong CoT answers get half hop credit, wrong skip answers none.
    """
    directory.mkdir(parents=True)
    lines = []
    for size in SIZES:
        for hops in HOPS:
            for cot in (False, True):
                n_correct = correct_count(model, size, hops, cot)
                for index in range(QUERIES_PER_CELL):
                    correct = index < n_correct
                    spec = {"size": size, "unit": unit, "hops": hops, "cot": cot, "seed": index}
                    record = {
                        "spec": spec,
                        "model_label": model,
                        **({"model_digest": digest} if digest else {}),
                        **({"suite": suite} if suite else {}),
                        "correct": correct,
                        "hop_credit": 1.0 if correct else (0.5 if cot else 0.0),
                    }
                    lines.append(json.dumps(record))
    (directory / "results.jsonl").write_text("\n".join(lines) + "\n")
    metadata = {
        "package_version": "0.1.0",
        "git_commit": f"commit-of-{model}",
        "command": f"OPENAI_API_KEY={SECRET} hashhop eval --model {model} --api-key {SECRET}",
        "machine": {"platform": "Linux-test", "cpus": 2, "env": {"HOME": "/home/secret-home"}},
        "started": "2025-01-01T00:00:00+00:00",
        "finished": "2025-01-01T00:10:00+00:00",
        "backend": {
            "kind": "hf",
            "model": model,
            "max_new_tokens": 64,
            "api_key": SECRET,
            "headers": [{"Authorization": f"Bearer {SECRET}"}],
        },
        "model_label": model,
    }
    (directory / "run.json").write_text(json.dumps(metadata, indent=2))
    return directory


@pytest.fixture
def run_dirs(tmp_path: Path) -> list[Path]:
    return [write_run(tmp_path / "alpha", "alpha"), write_run(tmp_path / "beta", "beta")]


def test_aggregate_counts_every_cell_exactly(run_dirs):
    grouped = aggregate(load_runs(run_dirs))
    assert grouped.models == ("alpha", "beta")
    assert grouped.unit == "tokens"
    assert len(grouped.summaries) == 2 * len(SIZES) * len(HOPS) * 2
    for setting, summary in grouped.summaries.items():
        expected = correct_count(setting.model, setting.size, setting.hops, setting.cot)
        assert (summary.n, summary.correct) == (QUERIES_PER_CELL, expected)
        assert summary.accuracy == expected / QUERIES_PER_CELL


def test_aggregate_orders_by_model_as_given_then_size_hops_and_skip_first(tmp_path):
    runs = load_runs([write_run(tmp_path / "b", "beta"), write_run(tmp_path / "a", "alpha")])
    settings = list(aggregate(runs).summaries)
    assert settings[:3] == [
        Setting("beta", 500, 1, False),
        Setting("beta", 500, 1, True),
        Setting("beta", 500, 2, False),
    ]
    assert settings[-1] == Setting("alpha", 8000, 2, True)


def test_aggregate_gives_wilson_intervals(run_dirs):
    summaries = aggregate(load_runs(run_dirs)).summaries
    # alpha at 2000 tokens, 2 hops, CoT: 5 of 8 right; Wilson 95% is [30.57%, 86.32%].
    five_of_eight = summaries[Setting("alpha", 2000, 2, True)]
    assert (five_of_eight.low, five_of_eight.high) == pytest.approx((0.3057, 0.8632), abs=1e-4)
    # beta at 500 tokens, 1 hop, CoT: 8 of 8 right; the interval still has width.
    all_right = summaries[Setting("beta", 500, 1, True)]
    assert (all_right.low, all_right.high) == pytest.approx((0.6756, 1.0), abs=1e-4)
    # beta at 500 tokens, 1 hop, skip: none right.
    none_right = summaries[Setting("beta", 500, 1, False)]
    assert (none_right.low, none_right.high) == pytest.approx((0.0, 0.3244), abs=1e-4)


def test_aggregate_averages_hop_credit(run_dirs):
    summaries = aggregate(load_runs(run_dirs)).summaries
    assert summaries[Setting("alpha", 2000, 2, True)].mean_hop_credit == (5 + 3 * 0.5) / 8
    assert summaries[Setting("alpha", 2000, 2, False)].mean_hop_credit == 4 / 8


def test_runs_of_one_model_label_are_pooled(tmp_path):
    runs = load_runs([write_run(tmp_path / "one", "alpha"), write_run(tmp_path / "two", "alpha")])
    summary = aggregate(runs).summaries[Setting("alpha", 2000, 2, True)]
    assert (summary.n, summary.correct) == (16, 10)


def test_runs_of_one_label_and_digest_pool_and_different_digests_stay_apart(tmp_path):
    runs = load_runs([
        write_run(tmp_path / "one", "alpha", digest="sha256:" + "a" * 64),
        write_run(tmp_path / "two", "alpha", digest="sha256:" + "a" * 64),
        write_run(tmp_path / "three", "alpha", digest="sha256:" + "b" * 64),
    ])
    grouped = aggregate(runs)
    assert grouped.models == ("alpha [aaaaaaaaaaaa]", "alpha [bbbbbbbbbbbb]")
    assert grouped.summaries[Setting("alpha [aaaaaaaaaaaa]", 2000, 2, True)].n == 16


def test_a_suite_run_gets_one_headline_accuracy_with_a_wilson_interval(tmp_path):
    grouped = aggregate(load_runs([write_run(tmp_path / "alpha", "alpha", suite="v1")]))
    headline = grouped.headlines[("alpha", "v1")]
    n_correct = sum(correct_count("alpha", size, hops, cot) for size in SIZES for hops in HOPS for cot in (False, True))
    assert (headline.n, headline.correct) == (QUERIES_PER_CELL * 12, n_correct)
    assert headline.low < headline.accuracy < headline.high
    first_lines = format_table(grouped).splitlines()[:2]
    assert first_lines[0].split() == ["model", "suite", "n", "accuracy", "95%", "CI"]
    assert first_lines[1].split()[:3] == ["alpha", "v1", "96"]


def test_runs_outside_a_suite_get_no_headline(run_dirs):
    assert aggregate(load_runs(run_dirs)).headlines == {}


def test_table_shows_each_setting_with_accuracy_interval_and_credit(run_dirs):
    table = format_table(aggregate(load_runs(run_dirs)))
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["model", "size", "(tokens)"]
    assert len(lines) == 1 + 24
    row = next(line for line in lines if re.match(r"alpha\s+2,000\s+2\s+CoT\b", line))
    assert row.split()[-5:] == ["8", "62.5%", "[30.6%,", "86.3%]", "0.812"]


def test_size_labels_are_short_and_readable():
    labels = [size_label(size) for size in (500, 2000, 4096, 16_000, 131_072, 1_000_000)]
    assert labels == ["500", "2K", "4.1K", "16K", "131K", "1M"]
    assert size_label(999_999) == "1M"
    assert size_label(100_000_000) == "100M"


def test_report_writes_small_valid_pngs(run_dirs, tmp_path):
    pytest.importorskip("matplotlib")
    paths = write_report(run_dirs, tmp_path / "report")
    for png in (paths.heatmap, paths.accuracy):
        content = png.read_bytes()
        assert content.startswith(PNG_SIGNATURE)
        assert len(content) < MAX_PNG_BYTES
    assert paths.table == format_table(aggregate(load_runs(run_dirs)))
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "accuracy.png",
        "heatmap.png",
        "report.html",
    ]


def test_html_embeds_both_figures_the_table_and_run_metadata(run_dirs, tmp_path):
    pytest.importorskip("matplotlib")
    paths = write_report(run_dirs, tmp_path / "report")
    page = paths.html.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert [base64.b64decode(image) for image in images] == [
        paths.heatmap.read_bytes(),
        paths.accuracy.read_bytes(),
    ]
    assert "<td class=num>62.5%</td>" in page
    for expected in (
        "commit-of-alpha",
        "commit-of-beta",
        "0.1.0",
        "Linux-test",
        "2025-01-01T00:10:00+00:00",
        "backend.max_new_tokens",
        "hashhop eval --model beta",
    ):
        assert expected in page


def test_html_never_shows_keys_or_environment(run_dirs, tmp_path):
    pytest.importorskip("matplotlib")
    page = write_report(run_dirs, tmp_path / "report").html.read_text()
    assert SECRET not in page
    assert "secret-home" not in page
    assert "OPENAI_API_KEY=*** hashhop eval --model alpha --api-key ***" in page


def test_figures_without_matplotlib_say_how_to_install_it(run_dirs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(HashHopError, match=re.escape("pip install 'hashhop[report]'")):
        write_report(run_dirs, tmp_path / "report")


def test_malformed_results_line_names_file_and_line(run_dirs):
    results = run_dirs[1] / "results.jsonl"
    lines = results.read_text().splitlines()
    lines[2] = '{"spec": {"size": 500'
    results.write_text("\n".join(lines) + "\n")
    with pytest.raises(HashHopError, match=re.escape(f"{results}:3")):
        load_runs(run_dirs)


def test_results_field_of_wrong_type_names_file_and_record(run_dirs):
    results = run_dirs[0] / "results.jsonl"
    records = [json.loads(line) for line in results.read_text().splitlines()]
    records[4]["spec"]["size"] = "2K"
    results.write_text("\n".join(json.dumps(record) for record in records) + "\n")
    with pytest.raises(HashHopError, match=rf"{re.escape(str(results))}: record 5.*'size'"):
        load_runs(run_dirs)


def test_missing_run_directory_is_an_error(tmp_path):
    with pytest.raises(HashHopError, match="no such run directory"):
        load_runs([tmp_path / "never-ran"])


def test_an_out_directory_in_a_missing_directory_is_refused_like_generates_output(run_dirs, tmp_path):
    with pytest.raises(HashHopError, match="does not exist"):
        write_report(run_dirs, tmp_path / "missing" / "report")
    assert not (tmp_path / "missing").exists()


def test_missing_run_json_is_an_error(run_dirs):
    (run_dirs[0] / "run.json").unlink()
    with pytest.raises(HashHopError, match="run.json: no such file"):
        load_runs(run_dirs)


def test_malformed_run_json_names_file_and_line(run_dirs):
    (run_dirs[0] / "run.json").write_text('{\n  "git_commit": \n}\n')
    with pytest.raises(HashHopError, match=r"run\.json:3: not valid JSON"):
        load_runs(run_dirs)


def test_runs_sized_in_different_units_are_refused(tmp_path):
    runs = load_runs(
        [write_run(tmp_path / "a", "alpha"), write_run(tmp_path / "b", "beta", "chars")]
    )
    with pytest.raises(HashHopError, match="chars and tokens"):
        aggregate(runs)
