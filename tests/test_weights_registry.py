"""Format check of every real registry entry (no network), and the registry's lookup rules."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from urllib.parse import urlparse

import pytest

from agomni.errors import UnknownWeightsError
from agomni.weights import REGISTRY, Pin, entries, get_entry, registered
from agomni.weights.load import TORCH_SUFFIXES
from tests.weights_http_server import make_entry

HEX = re.compile(r"^[0-9a-f]+$")
# the checkpoints the metrics and the model need, each needs at least one entry
REQUIRED = {
    "vggish",
    "panns-cnn14-16k",
    "panns-cnn14-32k",
    "passt-s-swa-p16-128-ap476",
    "laion-clap-630k-audioset-best",
    "laion-clap-music-speech-audioset-89.98",
    "whisper-large-v3",
    "wavlm-large-ecapa-sv",
    "ecapa-voxceleb-embedding",
    "syncnet-v2",
    "s3fd-face",
    "synchformer-24-01-04T16-39-21",
    "imagebind-huge",
    "agomni-tiny",
    "agomni-S",
    "agomni-M",
    "agomni-L",
}


def test_required_checkpoints_are_registered():
    assert set(REGISTRY) >= REQUIRED


@pytest.mark.parametrize("entry", list(REGISTRY.values()), ids=lambda e: e.name)
def test_entry_is_well_formed(entry):
    assert re.fullmatch(r"[a-z0-9][A-Za-z0-9.\-]*", entry.name)
    assert entry.filename and "/" not in entry.filename
    assert entry.licence.strip() and entry.metrics and all(m.strip() for m in entry.metrics)
    assert entry.checksum_search.strip(), "say where the checksum was looked for"
    if entry.size_bytes is not None:
        assert entry.size_bytes > 0
    else:
        assert not entry.size_exact
    if entry.url is None:
        assert entry.manual, "an entry without URL must say how to obtain the file"
    else:
        url = urlparse(entry.url)
        assert url.scheme == "https" and url.netloc
        assert url.path.rsplit("/", 1)[-1].replace("%3D", "=") == entry.filename
    pin = entry.pin
    if pin is None:
        assert "unpinned" in entry.checksum_search.lower() or "recorded" in entry.checksum_search.lower()
    else:
        assert HEX.match(pin.value) and pin.source.strip()
        assert len(pin.value) == {"sha256": 64, "md5": 32}.get(pin.kind, len(pin.value))
        if pin.kind == "sha256-prefix":
            assert 6 <= len(pin.value) < 64 and pin.value in entry.filename
    if entry.filename.endswith(TORCH_SUFFIXES) and entry.state_dict_key is not None:
        assert entry.state_dict_key in {"model", "state_dict", "model_state_dict"}


def test_the_reference_models_have_no_invented_url_or_hash():
    own = [e for e in REGISTRY.values() if e.name.startswith("agomni-")]
    assert len(own) >= 4
    for entry in own:
        assert entry.url is None and entry.pin is None and entry.size_bytes is None
        assert "agomni train" in entry.manual and f"agomni weights import {entry.name} PATH" in entry.manual


@pytest.mark.parametrize("tiny", [False, True])
@pytest.mark.parametrize("rate", ["16k", "44k"])
def test_codec_checkpoint_names_are_registered(rate, tiny):
    from agomni.model.codec.audio_codec import codec_config

    cfg = codec_config(rate, tiny=tiny)
    for name in (cfg.vae_weights_name, cfg.vocoder_weights_name):
        assert get_entry(name).filename.endswith(".safetensors")


def test_whisper_pin_is_the_hash_in_its_url_path():
    entry = get_entry("whisper-large-v3")
    assert entry.pin.kind == "sha256" and entry.url.split("/")[-2] == entry.pin.value


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownWeightsError, match="known: vggish, panns-cnn14-16k"):
        get_entry("no-such-model")
    assert UnknownWeightsError.exit_code == 2


def test_registered_adds_entries_temporarily():
    extra = make_entry("test-extra", None, None, manual="test")
    with registered(extra):
        assert get_entry("test-extra") is extra and entries()[-1] is extra
    with pytest.raises(UnknownWeightsError):
        get_entry("test-extra")


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("sha256", "ab" * 31),
        ("sha256", "AB" * 32),
        ("md5", "zz" * 16),
        ("sha256-prefix", "abc"),
        ("crc32", "ab"),
    ],
)
def test_malformed_pins_are_rejected(kind, value):
    with pytest.raises(ValueError):
        Pin(kind, value, "somewhere")


def test_pin_needs_a_source():
    with pytest.raises(ValueError, match="where"):
        Pin("md5", "0" * 32, " ")


def test_importing_the_package_touches_neither_network_nor_disk(tmp_path):
    home = tmp_path / "never-created"
    code = (
        "import socket\n"
        "def refuse(*args, **kwargs):\n"
        "    raise SystemExit('network touched at import')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "import agomni.weights, agomni.weights.cli\n"
        "print(len(agomni.weights.entries()))\n"
    )
    env = {**os.environ, "AGOMNI_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) == len(REGISTRY) and not home.exists()
