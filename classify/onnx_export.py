"""ONNX Runtime serving models, built once from the Hugging Face encoder folder.

Owns the three steps that turn a ``BertModel``-family folder into the files the
serving runtimes load (``classify/model.py`` picks one by name):

1. **export** the encoder with eager attention (the pattern ONNX Runtime's
   transformer optimizer recognises) and dynamic batch/sequence axes;
2. **fuse** attention, embedding + LayerNorm and bias + GELU
   (``onnxruntime.transformers.optimizer``) -> ``model.fp32.onnx``; same
   numbers as torch. Residual Add + LayerNorm stay two ops (see :func:`fuse`);
3. **quantise** the weight matrices to int8 per output channel, activations
   dynamically (``quantize_dynamic``) -> ``model.int8.onnx``. The feed-forward
   output projections read GELU outputs with a few very large channels, which
   one per-tensor activation scale cannot share with the rest: those channels
   get their own small fp32 product and the rest runs int8
   (:mod:`classify.outliers`; README "Benchmarks").

Files go to ``<model cache>/onnx/<folder name>-<digest>/`` (the digest covers the
encoder's config and weights, the recipe and the library versions, so a changed
encoder or toolchain builds afresh). Building is idempotent: a folder with a
``.complete`` marker is returned as is.

CLI: ``python -m classify.onnx_export build [--backbone DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import re
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from classify.backbone import DEFAULT_BACKBONE, model_cache_root
from classify.outliers import calibration_digest, outlier_channels, split_outliers

log = logging.getLogger(__name__)

ARTIFACT_DIR = Path(__file__).resolve().parent / "artifact"
FP32_FILE = "model.fp32.onnx"
INT8_FILE = "model.int8.onnx"
OPSET = 17
RECIPE_VERSION = "3"
"""Bump when a step below changes what it writes."""

_GELU_OPS = {"Gelu", "BiasGelu", "FastGelu"}
UNFUSED = ("SkipLayerNormFusion",)
"""ORT's own load-time fusions that a session must leave off: :func:`fuse` keeps these ops apart."""
_SAMPLE = 4 << 20
_DIGEST_LENGTH = 12


class OnnxBuildError(RuntimeError):
    """The encoder could not be exported or optimised (not retriable)."""


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def _digest(encoder_dir: Path, versions: dict[str, str | int | None]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"recipe": RECIPE_VERSION, "opset": OPSET, **versions}, sort_keys=True).encode())
    h.update((encoder_dir / "config.json").read_bytes())
    for weights in sorted(encoder_dir.glob("*.safetensors")) + sorted(encoder_dir.glob("*.bin")):
        # Size plus both ends (a safetensors header names every tensor): cheap on every load,
        # unlike hashing gigabytes, and unaffected by copies that reset modification times.
        size = weights.stat().st_size
        h.update(f"{weights.name}:{size}".encode())
        with weights.open("rb") as f:
            h.update(f.read(_SAMPLE))
            f.seek(max(0, size - _SAMPLE))
            h.update(f.read(_SAMPLE))
    return h.hexdigest()[:_DIGEST_LENGTH]


def export_encoder(encoder_dir: Path, out: Path, tap: int | None = None) -> None:
    """Trace the encoder to ONNX: inputs ``input_ids``/``attention_mask`` -> ``last_hidden_state``.

    With ``tap``, a second output ``tap_hidden_state`` holds the states after the first ``tap``
    layers: for a fine-tuned encoder, the part it shares with its base, from which the base's own
    top layers (:func:`export_stack`) finish the article vectors incident linking compares.
    """
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = AutoModel.from_pretrained(str(encoder_dir), add_pooling_layer=False, attn_implementation="eager")
    model.eval()

    class Encoder(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
            with tapped_states(self.inner, tap) as taps:
                last = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return (last, *taps)

    outputs = ["last_hidden_state"] + (["tap_hidden_state"] if tap else [])
    _trace(
        Encoder(model),
        (torch.ones((2, 8), dtype=torch.long),) * 2,
        ["input_ids", "attention_mask"],
        outputs,
        out,
    )


def export_stack(encoder_dir: Path, out: Path, start: int) -> None:
    """Trace the layers from ``start`` on: ``hidden_states``/``attention_mask`` -> ``last_hidden_state``."""
    import torch
    from transformers import AutoModel
    from transformers.masking_utils import create_bidirectional_mask
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = AutoModel.from_pretrained(str(encoder_dir), add_pooling_layer=False, attn_implementation="eager")
    model.eval()

    class Stack(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.config = inner.config
            self.layers = inner.encoder.layer[start:]

        def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            # The same mask the whole model builds, so the optimiser recognises the attention pattern.
            mask = create_bidirectional_mask(
                config=self.config, inputs_embeds=hidden_states, attention_mask=attention_mask
            )
            for layer in self.layers:
                hidden_states = layer(hidden_states, mask)
            return hidden_states

    hidden = int(model.config.hidden_size)
    example = (torch.ones((2, 8, hidden)), torch.ones((2, 8), dtype=torch.long))
    _trace(Stack(model), example, ["hidden_states", "attention_mask"], ["last_hidden_state"], out)


@contextlib.contextmanager
def tapped_states(model: Any, tap: int | None) -> Iterator[list[Any]]:
    """Collects the output of ``model``'s layer ``tap - 1`` (the states after ``tap`` layers) while open."""
    taps: list[Any] = []
    if not tap:
        yield taps
        return
    layer = model.encoder.layer[tap - 1]
    handle = layer.register_forward_hook(lambda _module, _inputs, output: taps.append(output))
    try:
        yield taps
    finally:
        handle.remove()


def _trace(module: Any, example: tuple, inputs: list[str], outputs: list[str], out: Path) -> None:
    import torch

    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.inference_mode():
        # The tracer warns about Python-level shape checks it freezes; the axes we need are dynamic.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            example,
            str(out),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes={name: axes for name in inputs + outputs},
            opset_version=OPSET,
            dynamo=False,
        )


def fuse(raw: Path, out: Path, config: dict) -> dict[str, int]:
    """Fuse transformer subgraphs for the CPU kernels; returns the fused-operator counts."""
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    options = FusionOptions("bert")
    # ORT's fused SkipLayerNormalization kernel ran 6x slower than Add + LayerNormalization on
    # this project's 2-core Xeon (AVX-512): 0.32 vs 0.056 ms per 264-token call, 17% of the int8
    # encoder's time. Sessions keep ORT from fusing them again at load (UNFUSED).
    options.enable_skip_layer_norm = False
    options.enable_bias_skip_layer_norm = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = optimizer.optimize_model(
            str(raw),
            model_type="bert",
            num_heads=int(config["num_attention_heads"]),
            hidden_size=int(config["hidden_size"]),
            opt_level=1,
            optimization_options=options,
        )
    fused = {k: int(v) for k, v in model.get_fused_operator_statistics().items() if v}
    if not fused.get("Attention"):
        raise OnnxBuildError(f"attention was not fused ({fused}); the export pattern changed")
    model.save_model_to_file(str(out), use_external_data_format=True)
    return fused


def ffn_output_matmuls(path: Path) -> list[str]:
    """Names of the MatMuls that read a GELU output: the feed-forward output projections."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    gelu_outputs = {o for node in graph.node if node.op_type in _GELU_OPS for o in node.output}
    return [n.name for n in graph.node if n.op_type == "MatMul" and n.input[0] in gelu_outputs]


def quantize(fp32: Path, out: Path, outliers: list[np.ndarray]) -> list[str]:
    """Per-channel int8 weights, dynamic activations; the FFN output projections split so their
    ``outliers`` channels (one array per layer) stay fp32. Returns the fp32 products' names."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    projections = ffn_output_matmuls(fp32)
    if not projections:
        raise OnnxBuildError("no feed-forward output projection found to split")
    model = onnx.load(str(fp32))
    keep_fp32 = split_outliers(model.graph, projections, outliers)
    split = out.with_name("split.onnx")
    onnx.save(model, str(split), save_as_external_data=True, location=split.name + ".data")
    with warnings.catch_warnings(), _quiet_root_logger():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            str(split),
            str(out),
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Attention"],
            nodes_to_exclude=keep_fp32,
            use_external_data_format=True,
            # Only weight matrices: QK^T and attention x V stay fp32 (both inputs are activations).
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    split.unlink()
    split.with_name(split.name + ".data").unlink()
    return keep_fp32


def share_weights(path: Path) -> None:
    """Let other users read the weights file beside ``path`` (``<name>.data``).

    Both steps above write weights as external data so ONNX Runtime maps them from disk
    instead of parsing and copying them (~2x the file in resident memory); most of the
    250k-row embedding table is never paged in. onnx writes that file owner-only, and images
    build as root but serve as another user.
    """
    (path.parent / (path.name + ".data")).chmod(0o644)


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """The quantiser logs a line per tensor on the root logger (and a generic hint); keep logs readable."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def ensure_onnx(encoder_dir: str | Path, root: Path | None = None, tap: int | None = None) -> Path:
    """The folder holding ``model.fp32.onnx`` and ``model.int8.onnx`` for ``encoder_dir``; builds it once.

    ``tap``: the graphs also output the states after that many layers (``tap_hidden_state``).
    """
    encoder_dir = _local(encoder_dir)
    return _ensure(
        encoder_dir,
        encoder_dir.name,
        {"tap": tap},
        lambda raw: export_encoder(encoder_dir, raw, tap),
        root,
        first_layer=0,
    )


def ensure_stack(encoder_dir: str | Path, start: int, root: Path | None = None) -> Path:
    """Like :func:`ensure_onnx`, for the encoder's layers from ``start`` on (inputs: hidden states, mask)."""
    encoder_dir = _local(encoder_dir)
    return _ensure(
        encoder_dir,
        f"{encoder_dir.name}-from{start}",
        {"start": start},
        lambda raw: export_stack(encoder_dir, raw, start),
        root,
        first_layer=start,
    )


def _local(encoder_dir: str | Path) -> Path:
    encoder_dir = Path(encoder_dir)
    if not (encoder_dir / "config.json").exists():
        raise OnnxBuildError(
            f"{encoder_dir} is not a local encoder folder (no config.json): the ONNX runtimes need one; "
            "download it first or set WIREWATCH_CLASSIFY_RUNTIME=torch"
        )
    return encoder_dir


def _ensure(
    encoder_dir: Path,
    name: str,
    spec: dict[str, int | None],
    export: Callable[[Path], None],
    root: Path | None,
    first_layer: int,
) -> Path:
    versions = {**_versions(), "calibration": calibration_digest()}
    folder = (root or model_cache_root()) / "onnx" / f"{name}-{_digest(encoder_dir, {**versions, **spec})}"
    if (folder / ".complete").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(folder):
        if (folder / ".complete").exists():  # another process built it while we waited
            return folder
        return _build(encoder_dir, folder, {**versions, **spec}, export, first_layer)


@contextlib.contextmanager
def _build_lock(folder: Path) -> Iterator[None]:
    """One builder per folder: services and test stages may start together on a fresh machine."""
    with open(folder.with_name(folder.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(
    encoder_dir: Path,
    folder: Path,
    versions: dict[str, str | int | None],
    export: Callable[[Path], None],
    first_layer: int,
) -> Path:
    """Export, fuse and quantise into ``folder``; ``first_layer``: the encoder layer the graph starts at."""
    log.info("building ONNX serving models for %s into %s (once, about a minute)", encoder_dir, folder)
    config = json.loads((encoder_dir / "config.json").read_text(encoding="utf-8"))
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    raw = tmp / "export.onnx"
    export(raw)
    fused = fuse(raw, tmp / FP32_FILE, config)
    raw.unlink()
    outliers = outlier_channels(encoder_dir, first_layer)
    kept = quantize(tmp / FP32_FILE, tmp / INT8_FILE, outliers)
    for name in (FP32_FILE, INT8_FILE):
        share_weights(tmp / name)
    (tmp / "recipe.json").write_text(
        json.dumps(
            {
                "encoder": str(encoder_dir),
                "recipe": RECIPE_VERSION,
                "opset": OPSET,
                "versions": versions,
                "fused": fused,
                "int8": {"weights": "per output channel, symmetric", "activations": "dynamic, per tensor"},
                "kept_fp32": kept,
                "ffn_outlier_channels": [channels.tolist() for channels in outliers],
            },
            indent=2,
        )
    )
    (tmp / ".complete").write_text("ok\n")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    for stale in stale_builds(folder):
        shutil.rmtree(stale, ignore_errors=True)
    return folder


def stale_builds(folder: Path) -> list[Path]:
    """Earlier builds (other recipes or toolchains) of the encoder ``folder`` was built from.

    Matched on the exact ``<encoder name>-<digest>`` shape: a plain prefix match would take
    ``multilingual-e5-small-tuned-…-<digest>`` (another encoder) for an old build of
    ``multilingual-e5-small`` and delete the served model's files.
    """
    encoder_name, _, _ = folder.name.rpartition("-")
    shape = re.compile(rf"{re.escape(encoder_name)}-[0-9a-f]{{{_DIGEST_LENGTH}}}")
    return sorted(
        p for p in folder.parent.iterdir() if p != folder and p.is_dir() and shape.fullmatch(p.name)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classify.onnx_export")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build (once) the ONNX serving models of an encoder folder")
    build.add_argument(
        "--backbone", type=Path, default=None, help="encoder folder (default: the one the artifact serves)"
    )
    build.add_argument("--artifact", type=Path, default=ARTIFACT_DIR, help="trained artifact folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    # Built ahead (make backbone, the image) so no service or test builds it on its first load:
    # the served encoder, and the untuned top layers the tagger finishes incident vectors with.
    from classify.backbone import ensure_backbone, served_backbone, tuned_from

    if args.backbone:
        print(ensure_onnx(args.backbone))
        return 0
    base = ensure_backbone(DEFAULT_BACKBONE)
    start = tuned_from(args.artifact)
    print(ensure_onnx(served_backbone(args.artifact, base), tap=start))
    if start is not None:
        print(ensure_stack(base, start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
