"""Report files: the table rows with unit and direction, published rows with their source, CSV rows,
and an HTML page that needs no network."""

import csv
import dataclasses
import json
import re

from agomni.cli import main
from agomni.results import read_results, write_results
from agomni.suites import get_suite, read_published
from tests.report.test_compare import write_run


def _as_suite(folder, suite):
    results = read_results(folder / "results.json")
    run = dataclasses.replace(results.run, suite=suite)
    write_results(dataclasses.replace(results, run=run), folder / "results.json")
    return folder


def test_report_formats_carry_units_directions_and_published_sources(tmp_path):
    a = _as_suite(write_run(tmp_path / "mine", [0.5, 0.7, 0.6, 0.9]), "v2a-vggsound")
    b = _as_suite(write_run(tmp_path / "other", [0.4, 0.6, 0.5, 0.7]), "v2a-vggsound")
    out = tmp_path / "report"
    argv = ["report", str(a), str(b), "--out", str(out), "--format", "md,html,csv,json", "--against-paper"]
    assert main(argv) == 0
    published = read_published(get_suite("v2a-vggsound"))
    with (out / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 + len(published)  # one row per system x metric, then the published rows
    assert (
        rows[0]["system"] == "mine"
        and rows[0]["unit"] == "nats"
        and rows[0]["direction"] == "lower is better"
    )
    assert {(r["system"], r["metric"], r["source"]) for r in rows[2:]} == {
        (p["system"], p["metric"], p["source"]) for p in published
    }
    md = (out / "report.md").read_text()
    assert "KL-PANNs ↓ (nats)" in md and "| mine <sup>1</sup> |  |  |  | 0.675 |" in md
    assert "## Comparison: other vs mine" in md and published[0]["source"] in md
    report = json.loads((out / "report.json").read_text())
    assert report["comparisons"][0]["metrics"][0]["name"] == "kl_panns"
    page = (out / "index.html").read_text()
    assert not re.search(r"""src=["']?(https?:)?//""", page)  # nothing loaded from a network
    assert "<link" not in page and "@import" not in page
    # source links are plain anchors (followed only when clicked)
    links = re.findall(r"""<a href=["']([^"']+)""", page)
    assert "https://github.com/hkchengrex/MMAudio/issues/90" in links
    assert all(re.fullmatch(r"https://[A-Za-z0-9._~:/?=&+-]+", u) for u in links)
    external = [u for u in re.findall(r"""href=["']([^"']+)""", page) if not u.startswith("#")]
    assert sorted(external) == sorted(links)  # SVG hrefs are in-page references
    assert page.count("<svg") >= 3 and "<script" not in page
