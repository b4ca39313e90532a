import ast
import csv
import json
import shutil
from pathlib import Path

import pytest

from agomni.cli import main
from agomni.errors import UsageError
from agomni.evaluate.item_stages import STAGES, ItemStages
from agomni.evaluate.registry import EMBEDDERS, KINDS, METRICS, EmbedderSpec, MetricEntry, availability
from agomni.metrics.av.score import AV_METRICS, ITEM_DETAILS
from agomni.metrics.speech import aesthetics, nisqa, quality, songeval
from agomni.metrics.speech.eval_stage import BACKENDS, NETWORK_OF, ROLE_OF, RUNS, group_of
from agomni.metrics.text_audio.eval_stage import SCORERS
from agomni.suites import (
    COMPUTED,
    check_known,
    get_suite,
    load_metric_specs,
    load_suites,
    network_rows,
    read_published,
    task_columns,
)

EVALUATION = Path(__file__).resolve().parents[1] / "evaluation"


def test_every_suite_file_loads_with_its_metrics():
    suites = load_suites(EVALUATION)
    files = sorted(p.stem for p in (EVALUATION / "suites").glob("*.json"))
    assert sorted(suites) == files
    for name in files:
        raw = json.loads((EVALUATION / "suites" / f"{name}.json").read_text())
        assert [m.name for m in suites[name].metrics] == raw["metrics"]


def test_metric_directions_match_the_catalogue():
    raw = json.loads((EVALUATION / "metrics.json").read_text())
    specs = load_metric_specs(EVALUATION)
    assert {n: s.higher_is_better for n, s in specs.items()} == {
        n: e["higher_is_better"] for n, e in raw.items()
    }
    # Direction sanity for the well-known ones (a flipped sign here would invert every comparison).
    assert not specs["fd_passt"].higher_is_better and specs["lse_c"].higher_is_better
    assert not specs["lse_d"].higher_is_better and specs["sim_o"].higher_is_better


def test_published_rows_all_carry_a_source_and_known_metric():
    specs = load_metric_specs(EVALUATION)
    for suite in load_suites(EVALUATION).values():
        rows = read_published(suite)
        with_file = suite.published is not None
        assert bool(rows) == with_file
        suite_metrics = {m.name: m for m in suite.metrics}
        for row in rows:
            assert row["source"].strip() and row["test_set"].strip()
            assert row["url"] == "" or row["url"].startswith("https://")
            float(row["value"])
            # every published metric is one of the suite's, in the catalogue's unit and direction
            assert row["metric"] in suite_metrics, (suite.name, row)
            spec = specs[row["metric"]]
            assert row["unit"] == spec.unit, (suite.name, row)
            assert (row["higher_is_better"] == "true") == spec.higher_is_better


def test_every_suite_with_a_public_test_set_has_published_rows():
    # smoke: the toy corpus (nothing published); v2song: no public video-to-song test set exists;
    # t2a-stable-audio: its suite says published rows are not included in this version
    without = {"smoke", "v2song", "t2a-stable-audio"}
    for suite in load_suites(EVALUATION).values():
        assert bool(read_published(suite)) == (suite.name not in without), suite.name
        if suite.name == "t2a-stable-audio":
            assert "Published rows are not included in this version" in suite.notes


def test_published_table_missing_a_source_is_rejected(tmp_path):
    root = tmp_path / "evaluation"
    shutil.copytree(EVALUATION, root)
    table = root / "published" / "lipsync-lrs2.csv"
    with table.open("a", newline="") as fh:
        csv.writer(fh).writerow(["someone", "lse_c", "7.0", "SyncNet confidence", "true", "", "", "LRS2", ""])
    with pytest.raises(UsageError, match="source"):
        read_published(load_suites(root)["v2s-lrs2"])


def test_suite_with_unknown_metric_is_an_error(tmp_path):
    root = tmp_path / "evaluation"
    shutil.copytree(EVALUATION, root)
    path = root / "suites" / "smoke.json"
    data = json.loads(path.read_text())
    data["metrics"].append("fd_nonexistent")
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="fd_nonexistent"):
        load_suites(root)


def test_unknown_suite_names_the_known_ones():
    with pytest.raises(UsageError, match="v2a-vggsound"):
        get_suite("v2a-vggsund")


def test_cli_suites_lists_every_suite(capsys):
    assert main(["suites"]) == 0
    out = capsys.readouterr().out
    for name in load_suites(EVALUATION):
        assert f"{name}  [" in out
    assert "lower is better" in out and "higher is better" in out


def test_every_metric_names_registered_weights():
    from agomni.weights import entries

    registered = {e.name for e in entries()}
    for spec in load_metric_specs(EVALUATION).values():
        assert set(spec.weights) <= registered, (spec.name, set(spec.weights) - registered)


def test_cli_suites_says_which_metrics_agomni_eval_computes(capsys):
    """Each metric line says available / pending, as the evaluate registry decides; a pending one says why."""
    registry = load_metric_specs(EVALUATION)
    computed = {"embedding", "audio_visual", "text_audio", "speech"}

    assert main(["suites"]) == 0
    out = capsys.readouterr().out
    for suite in load_suites(EVALUATION).values():
        for metric in suite.metrics:
            line = next(x for x in out.splitlines() if x.strip().startswith(f"{metric.name} ("))
            family = registry[metric.name].family
            if family in ("embedding", "audio_visual", "text_audio"):
                assert line.split("; not in the weights cache: ")[0].endswith("agomni eval: available"), line
            elif family == "speech":
                assert "agomni eval: available" in line, line
            else:
                assert family == "catalogue" and "agomni eval: not available in this version: use " in line
        available = sum(registry[m.name].family in computed for m in suite.metrics)
        assert f"({available} of {len(suite.metrics)} computed by `agomni eval` in this version)" in out
    # known cases, written out: V2A's network and audio-visual metrics are computed, and the speech metrics
    # with their offline default backends, labelled
    assert "fd_passt (FD, lower is better) - agomni eval: available" in out
    assert "ib_score (cosine x100, higher is better) - agomni eval: available" in out
    assert "clap (cosine, higher is better) - agomni eval: available" in out
    assert (
        "wer (% WER, lower is better) - agomni eval: available (default recogniser pocketsphinx, offline: "
        "NOT comparable; `--speech-backend whisper-large-v3` gives the seed-tts-eval recipe)" in out
    )
    assert "f0_stability (cents, lower is better) - agomni eval: available" in out
    assert "sim_o (cosine, higher is better) - agomni eval: available (default encoder resemblyzer" in out


def test_metric_availability_reports_a_missing_embedder_module(monkeypatch):
    absent = EmbedderSpec("vggish", "agomni.metrics.embedders.not_landed_yet", "f")
    monkeypatch.setitem(METRICS, "fd_vggish", MetricEntry("fd_vggish", "fd", absent, "av-benchmark"))
    ok, status = availability("fd_vggish")
    assert not ok and "not_landed_yet" in status and status.startswith("not available in this version")
    assert availability("fd_clap") == (True, "available")


def test_cli_suites_gives_the_fetch_command_of_each_checkpoint_not_in_the_cache(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path))  # an empty cache
    assert main(["suites"]) == 0
    lines = capsys.readouterr().out.splitlines()
    audiobox = next(x for x in lines if x.strip().startswith("audiobox_ce ("))
    assert audiobox.endswith("; not in the weights cache: `agomni weights fetch audiobox-aesthetics`")
    lse = next(x for x in lines if x.strip().startswith("lse_c ("))
    assert "`agomni weights fetch syncnet-v2 && agomni weights fetch s3fd-face`" in lse
    offline = next(x for x in lines if x.strip().startswith("fd_offline ("))
    assert "weights cache" not in offline  # a metric without a checkpoint needs nothing


def test_the_metric_registry_is_the_one_list_of_metrics():
    """Every metric the code computes has one row in evaluation/metrics.json, whose family routes it and
    whose network is one the code of that family knows (its network tables hold exactly the registry's
    networks): the embedder table, the audio-visual and text-audio scorers, the speech runs and the
    paper-table labels agree with it."""
    registry = load_metric_specs(EVALUATION)
    raw = json.loads((EVALUATION / "metrics.json").read_text())
    tables = {"embedding": EMBEDDERS, "speech": RUNS, "audio_visual": ITEM_DETAILS, "text_audio": SCORERS}
    assert set(tables) == set(COMPUTED)
    for family, table in tables.items():
        rows = {n: r for n, r in raw.items() if r["family"] == family}
        assert rows and all(r["network"] in table for r in rows.values()), family
        assert {r["network"] for r in rows.values()} == set(table), family  # no network without a row
    assert all("network" not in r for r in raw.values() if r["family"] not in COMPUTED)
    embedding = {n: r for n, r in raw.items() if r["family"] == "embedding"}
    assert set(embedding) == set(METRICS)
    for name, row in embedding.items():
        entry = METRICS[name]
        assert entry.embedder is EMBEDDERS[row["network"]] and entry.embedder.name == row["network"]
        assert entry.kind == row["statistic"] and row["statistic"] in KINDS
        assert entry.default_profile == row["recipe"]
        assert entry.profiles == tuple(row.get("profiles", ()))
    assert (
        set(AV_METRICS)
        == {n for n, s in registry.items() if s.family == "audio_visual"}
        == {"lse_c", "lse_d", "desync", "ib_score"}
    )
    assert network_rows("audio_visual", "syncnet", EVALUATION) == ("lse_c", "lse_d")  # one lip-sync run
    speech = {n: r for n, r in raw.items() if r["family"] == "speech"}
    assert {n: r["network"] for n, r in speech.items()} == NETWORK_OF
    # the backend role of a metric is its network: the recogniser's metrics and the speaker encoder's
    assert {n: r["network"] for n, r in speech.items() if r["network"] in ("asr", "speaker")} == ROLE_OF
    assert set(ROLE_OF.values()) == {b.role for b in BACKENDS.values()}
    for name, row in speech.items():
        together = [n for n, r in speech.items() if r["network"] == row["network"]]
        assert group_of(name) == (tuple(together) if RUNS[row["network"]].shared else (name,)), name
    # each shared run's network gives (among its outputs) the registry rows of its network
    outputs = {
        "audiobox-aesthetics": {f"AUDIOBOX_{axis}" for axis in aesthetics.AXES},
        "dnsmos": set(quality.AXES.values()),
        "nisqa": set(nisqa.OUTPUTS),
        "songeval": set(songeval.OUTPUTS),
    }
    assert set(outputs) == {network for network, run in RUNS.items() if run.shared}
    for network, given in outputs.items():
        rows = [n for n, r in speech.items() if r["network"] == network]
        assert rows and {n.upper() for n in rows} <= given, network
    stages, rest = ItemStages.split(["fd_passt", "LSE_C", "clap", "wer", "dnsmos_sig"], ())
    assert stages.names == {
        "audio_visual": ("lse_c",),
        "text_audio": ("clap",),
        "speech": ("wer", "dnsmos_sig"),
    }
    assert rest == ["fd_passt"] and set(stages.names) <= set(STAGES)
    for task in ("v2a", "t2a", "tts", "v2s", "t2song", "v2song"):
        columns = task_columns(task, EVALUATION)
        assert columns and all(registry[name].label for name in columns), task
    assert task_columns("v2a", EVALUATION)[:3] == ("fd_passt", "fd_panns", "fd_vggish")  # MMAudio Table 1


def _registry_with(tmp_path: Path, name: str, **changes) -> Path:
    """A copy of the registry in ``tmp_path`` with row ``name`` changed (a value None drops the column)."""
    data = json.loads((EVALUATION / "metrics.json").read_text())
    data[name].update(changes)
    data[name] = {k: v for k, v in data[name].items() if v is not None}
    (tmp_path / "metrics.json").write_text(json.dumps(data))
    return tmp_path


def test_a_registry_row_naming_a_network_the_code_does_not_know_is_refused_naming_the_row(tmp_path):
    root = _registry_with(tmp_path, "nisqa_col", network="nisqa-v3")
    assert load_metric_specs(root)["nisqa_col"].network == "nisqa-v3"  # well-formed: parsed
    with pytest.raises(UsageError) as err:
        check_known("speech", "network", RUNS, root)
    assert "metric 'nisqa_col' names network 'nisqa-v3', which this version does not compute" in str(
        err.value
    )
    assert "for the speech family (known: asr, speaker" in str(err.value)
    check_known("speech", "network", RUNS, EVALUATION)  # the shipped registry passes
    root = _registry_with(tmp_path, "kl_passt", statistic="js")
    with pytest.raises(UsageError, match="metric 'kl_passt' names statistic 'js'"):
        check_known("embedding", "statistic", KINDS, root)


@pytest.mark.parametrize(
    ("name", "changes", "message"),
    [
        ("desync", {"network": None}, "a row of a computed family .* names its network"),
        ("wer_offline", {"network": "asr"}, "a row of a computed family .* names its network"),
        ("fd_panns", {"statistic": None}, "an embedding row, and only one, names its statistic"),
        ("utmos", {"statistic": "fd"}, "an embedding row, and only one, names its statistic"),
        ("utmos", {"profiles": ["fadtk"]}, "only an embedding row restricts its profiles"),
        ("fd_clap", {"profiles": ["av-benchmark"]}, "its recipe 'fadtk' .* is not one of its profiles"),
        ("wer", {"tolerance": -0.3}, "its tolerance -0.3 is not a non-negative number"),
    ],
)
def test_a_registry_row_with_a_malformed_column_is_refused(tmp_path, name, changes, message):
    with pytest.raises(UsageError, match=f"metric {name!r}: {message}"):
        load_metric_specs(_registry_with(tmp_path, name, **changes))


AGOMNI = Path(__file__).resolve().parents[1] / "agomni"


def metric_name_lists(source: str, names: set[str]) -> list[tuple[int, list[str]]]:
    """(line, the names) of each tuple / list / set / dict literal in ``source`` holding two or more of
    ``names`` as strings, directly or as a call's first argument (``Entry("fd_x", ...)``); ``__all__``
    (names of Python objects) aside."""
    tree = ast.parse(source)
    exported = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and id(node) not in exported:
            elements = list(node.elts)
        elif isinstance(node, ast.Dict):
            elements = [k for k in node.keys if k is not None] + list(node.values)
        else:
            continue
        strings = [e.args[0] if isinstance(e, ast.Call) and e.args else e for e in elements]
        hits = [e.value for e in strings if isinstance(e, ast.Constant) and e.value in names]
        if len(hits) >= 2:
            found.append((node.lineno, hits))
    return found


def test_no_module_but_the_registry_parser_holds_a_list_of_metric_names():
    names = set(load_metric_specs(EVALUATION))
    # the finder finds each form it looks for, and no single name or exported function names
    assert metric_name_lists('A = ("wer", "cer")', names) == [(1, ["wer", "cer"])]
    assert metric_name_lists('R = {"nisqa_mos": 1, "utmos": 2}', names) == [(1, ["nisqa_mos", "utmos"])]
    assert metric_name_lists('M = (E("fd_vggish", 1), E("kl_panns", 2))', names) == [
        (1, ["fd_vggish", "kl_panns"])
    ]
    assert metric_name_lists('if name == "per": x = ["per", "x"]\n__all__ = ["cer", "wer"]', names) == []
    found = {}
    for path in sorted(AGOMNI.rglob("*.py")):
        module = path.relative_to(AGOMNI).as_posix()
        hits = metric_name_lists(path.read_text(), names)
        if hits and module != "suites.py":
            found[module] = hits
    assert found == {}


def test_a_registry_row_with_an_unknown_family_is_refused(tmp_path):
    data = json.loads((EVALUATION / "metrics.json").read_text())
    data["fd_offline"]["family"] = "embeddings"
    (tmp_path / "metrics.json").write_text(json.dumps(data))
    with pytest.raises(UsageError, match="family 'embeddings' is not one of"):
        load_metric_specs(tmp_path)


def test_cli_help_lists_every_registry_metric_and_speech_backend(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # argparse breaks long lines at hyphens otherwise
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, spec in load_metric_specs(EVALUATION).items():
        if spec.family not in ("catalogue", "validation"):
            assert f" {name}," in text or f" {name};" in text or f" {name} " in text, name
    for backend in BACKENDS:
        assert backend in text, backend
