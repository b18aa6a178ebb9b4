"""Feed-forward outlier channels: how the int8 export quantises the FFN output projections.

A BERT-family encoder's GELU outputs carry a few channels far larger than the rest (here up
to 68 against a median channel maximum near 2), and they are the same channels whatever the
text. The FFN output projection reads them with one dynamic activation scale per call, so
quantising it as is rounds every other channel coarsely; keeping it fp32 instead cost about
35% of the int8 encoder's time. So the export splits it, as LLM.int8() does but with the
channels fixed ahead instead of found per call::

    x @ W  =  (x * keep) @ W   (int8: the outliers zeroed, so the scale fits the rest)
           +  x[..., outliers] @ W[outliers]   (fp32: a 16 x 384 product)

The channels are found once per build (:func:`outlier_channels`): the ``k`` largest absolute
GELU outputs per layer over calibration windows from the corpus bundled with the package
(``classify/corpus``, written for the project), in torch. :func:`split_outliers` rewrites an
exported graph accordingly; the quantiser then leaves only the small fp32 products alone.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
OUTLIERS_PER_LAYER = 16
"""Beyond the first few channels per layer the maxima flatten out (~5 against a median of ~2):
16 covers the large ones with room, at a negligible fp32 cost."""
CALIBRATION_EVERY = 16
"""Every 16th corpus article (~130 windows): the channels are a property of the weights."""
CALIBRATION_TOKENS = 512


def calibration_texts(every: int = CALIBRATION_EVERY) -> list[str]:
    """Title and text of every ``every``-th article of the bundled corpus, files in name order."""
    texts = []
    for path in sorted(CORPUS_DIR.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        texts += [f"{row.get('title') or ''}\n{row.get('text') or ''}" for row in rows[::every]]
    if not texts:
        raise FileNotFoundError(f"no calibration text under {CORPUS_DIR}")
    return texts


def calibration_digest() -> str:
    """Short digest of the calibration corpus: builds are keyed by it, so a changed corpus rebuilds."""
    h = hashlib.sha256()
    for path in sorted(CORPUS_DIR.glob("*.jsonl")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def outlier_channels(
    encoder_dir: Path, first_layer: int = 0, k: int = OUTLIERS_PER_LAYER
) -> list[np.ndarray]:
    """Per layer from ``first_layer`` on, the ``k`` GELU output channels with the largest absolute
    value over the calibration texts (ascending channel order)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(encoder_dir), add_pooling_layer=False).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir))
    layers = model.encoder.layer[first_layer:]
    peaks = [torch.zeros(int(model.config.intermediate_size)) for _ in layers]

    def recorder(index: int) -> Any:
        def record(_module: Any, _inputs: Any, output: torch.Tensor) -> None:
            peaks[index] = torch.maximum(peaks[index], output.abs().amax(dim=(0, 1)))

        return record

    handles = [layer.intermediate.register_forward_hook(recorder(i)) for i, layer in enumerate(layers)]
    try:
        with torch.inference_mode():
            for text in calibration_texts():
                encoded = tokenizer(text, truncation=True, max_length=CALIBRATION_TOKENS, return_tensors="pt")
                model(**encoded)
    finally:
        for handle in handles:
            handle.remove()
    return [np.sort(np.argsort(-peak.numpy(), kind="stable")[:k]).astype(np.int64) for peak in peaks]


def split_outliers(graph: Any, matmuls: list[str], channels: list[np.ndarray]) -> list[str]:
    """Rewrite each FFN output ``MatMul`` of ``graph`` (an ``onnx.GraphProto``, in place) into the
    masked product plus the outlier channels' own fp32 product; returns the fp32 products' names."""
    from onnx import helper, numpy_helper

    if len(matmuls) != len(channels):
        raise ValueError(f"{len(matmuls)} feed-forward projections but channels for {len(channels)} layers")
    weights = {init.name: init for init in graph.initializer}
    by_name = {node.name: node for node in graph.node}
    before: dict[str, list[Any]] = {}
    after: dict[str, Any] = {}
    kept = []
    for layer, (name, outliers) in enumerate(zip(matmuls, channels, strict=True)):
        node = by_name[name]
        x, w = node.input
        weight = numpy_helper.to_array(weights[w])
        keep = np.ones(weight.shape[0], dtype=np.float32)
        keep[outliers] = 0.0
        p = f"ffn_outliers_{layer}"
        graph.initializer.extend(
            [
                numpy_helper.from_array(keep, f"{p}_keep"),
                numpy_helper.from_array(outliers, f"{p}_channels"),
                numpy_helper.from_array(weight[outliers], f"{p}_weight"),
            ]
        )
        result = node.output[0]
        node.input[0], node.output[0] = f"{p}_rest", f"{p}_rest_out"
        before[name] = [
            helper.make_node("Mul", [x, f"{p}_keep"], [f"{p}_rest"], name=f"{p}_mask"),
            helper.make_node("Gather", [x, f"{p}_channels"], [f"{p}_x"], name=f"{p}_gather", axis=-1),
            helper.make_node("MatMul", [f"{p}_x", f"{p}_weight"], [f"{p}_out"], name=f"{p}_matmul"),
        ]
        after[name] = helper.make_node("Add", [f"{p}_rest_out", f"{p}_out"], [result], name=f"{p}_add")
        kept.append(f"{p}_matmul")
    nodes = []
    for node in graph.node:  # keep the node list topologically sorted
        nodes += [*before.get(node.name, []), node, *([after[node.name]] if node.name in after else [])]
    del graph.node[:]
    graph.node.extend(nodes)
    return kept
