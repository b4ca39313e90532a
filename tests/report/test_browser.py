"""A real browser (Debian's chromium through Playwright) opens the self-contained HTML report.

CI installs chromium and playwright (.ci/run) and sets AGOMNI_REQUIRE_BROWSER=1, so there the test
must run; elsewhere it skips and says what is missing. Playwright launches /usr/bin/chromium and
never downloads a browser.
"""

import json
import os
import shutil
from pathlib import Path

import pytest

from agomni.report.render import write_report
from tests.report.test_compare import write_run

CHROMIUM = Path("/usr/bin/chromium")


def _browser_missing() -> str | None:
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} not found (CI installs Debian's chromium with apt-get)"
    if shutil.which("chromium") is None:
        return "chromium is not on PATH"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[browser]')"
    return None


@pytest.fixture
def browser():
    missing = _browser_missing()
    if missing:
        if os.environ.get("AGOMNI_REQUIRE_BROWSER") == "1":
            pytest.fail(f"the browser test must run here: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


def _at_step(folder, step):
    """A run folder whose run.json records a checkpoint step (as `agomni run` writes it)."""
    (folder / "run.json").write_text(
        json.dumps({"generator": {"kind": "checkpoint", "checkpoint": {"step": step}}})
    )
    return folder


def test_html_report_renders_offline_with_plots_and_rows(tmp_path, browser):
    base = _at_step(write_run(tmp_path / "early", [0.5, 0.7, 0.6, 0.9, 0.8, 0.4]), 500)
    new = _at_step(write_run(tmp_path / "final", [0.3, 0.5, 0.4, 0.6, 0.5, 0.2]), 2000)
    (page_path,) = write_report([base, new], tmp_path / "report", ["html"])
    page = browser.new_page()
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
    page.goto(page_path.resolve().as_uri())
    page.wait_for_load_state("load")
    assert errors == [] and requests == []  # no console errors, nothing fetched from a network
    plots = page.locator("figure.plot svg")
    assert plots.count() >= 4  # trend against step, metric per system, per-item distribution, comparison
    for i in range(plots.count()):
        box = plots.nth(i).bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0
    table = page.locator("table.paper")
    assert table.count() == 1 and table.is_visible()
    assert table.locator("thead th").all_inner_texts() == ["system", "KL-PANNs ↓ (nats)"]
    rows = table.locator("tbody tr").all_inner_texts()
    assert rows == ["early1\t0.65", "final2\t0.4167"]  # footnote marks as superscripts after the name
    best = table.locator("td.best")
    assert best.count() == 1 and best.inner_text() == "0.4167" and best.is_visible()
    trend = page.locator("figure.plot[title^='metrics against checkpoint step'] svg")
    assert trend.count() == 1 and trend.is_visible() and trend.bounding_box()["height"] > 50
    series = page.locator("table.series tbody tr").all_inner_texts()
    assert series[0].startswith("kl_panns ↓ (nats)\t0.65 [") and series[0].endswith("final")
    assert "better" in page.locator("table.comparison").inner_text()
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 0
