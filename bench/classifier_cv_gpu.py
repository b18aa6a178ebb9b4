"""Grouped 5-fold cross-validation of fine-tuning recipes on a GPU (the device tool), printing numbers.

Reads ``.gpu/`` (made by bench/classifier_cv_pack.py), rebuilds e5-small from its 4-bit blocks, and
for each recipe given as JSON on the command line (``{"name": {"lr": 1e-4, "epochs": 4,
"freeze_below": 8}}``) trains on four folds of sites and scores the fifth, five times, then once on
the whole training file for the dev file. Prints out-of-fold and dev F1 per label and language with
thresholds and Platt scaling chosen out of fold, and saves the logits under ``$OUT``. The chosen
recipe's out-of-fold logits became ``classify/artifact/cv.json``; ``wirewatch train`` reproduces
the final model on CPU. Run there: ``python3 bench/classifier_cv_gpu.py '{...}'``.
"""

import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.getcwd())
from transformers import BertConfig, BertModel

from classify import calibration
from classify.backbone import dequantize_q4

t00 = time.time()
meta = json.load(open(".gpu/meta.json"))
W = np.load(".gpu/weights.npz")
D = np.load(".gpu/data.npz")
cfg = meta["config"]
h, f, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]


def T(n):
    return W[n.replace(".", "__")]


def q4(n, r, c):
    return dequantize_q4(T(n), r, c)


sd = {
    "embeddings.word_embeddings.weight": dequantize_q4(T("emb.word").reshape(-1), V, h),
    "embeddings.position_embeddings.weight": T("emb.pos").reshape(-1, h),
    "embeddings.token_type_embeddings.weight": T("emb.type").reshape(-1, h),
    "embeddings.LayerNorm.weight": T("emb.ln.w"),
    "embeddings.LayerNorm.bias": T("emb.ln.b"),
}
lin = {
    "q": ("attention.self.query", h, h),
    "k": ("attention.self.key", h, h),
    "v": ("attention.self.value", h, h),
    "ao": ("attention.output.dense", h, h),
    "fi": ("intermediate.dense", f, h),
    "fo": ("output.dense", h, f),
}
for L in range(cfg["num_hidden_layers"]):
    p = f"encoder.layer.{L}."
    for s, (l, o, i) in lin.items():
        sd[p + l + ".weight"] = q4(f"l{L}.{s}.w", o, i)
        sd[p + l + ".bias"] = T(f"l{L}.{s}.b")
    for s, l in {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}.items():
        sd[p + l + ".weight"] = T(f"l{L}.{s}.w")
        sd[p + l + ".bias"] = T(f"l{L}.{s}.b")
SD = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in sd.items()}
CFG = BertConfig(**{k: v for k, v in cfg.items() if k not in ("architectures", "model_type", "torch_dtype")})


def split(name):
    flat, lens = D[name + "_flat"], D[name + "_len"]
    offs = np.concatenate([[0], np.cumsum(lens)])
    return [flat[offs[i] : offs[i + 1]].astype(np.int64) for i in range(len(lens))]


Xtr, Xdv = split("train"), split("dev")
Y, Ydv = D["train_y"].astype(bool), D["dev_y"].astype(bool)
N = int(os.environ.get("NLIM", "0")) or len(Xtr)
amb, dv_amb, lang, dv_lang, sites = (
    D["train_amb"],
    D["dev_amb"],
    D["train_lang"],
    D["dev_lang"],
    D["train_site"],
)
Xtr, Y, amb, lang, sites = Xtr[:N], Y[:N], amb[:N], lang[:N], sites[:N]
us = sorted(set(sites.tolist()))
perm = np.random.default_rng(0).permutation(len(us))
fm = {us[p]: i % 5 for i, p in enumerate(perm)}
FOLD = np.array([fm[s] for s in sites])
dev = torch.device("cuda")


class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = BertModel(CFG, add_pooling_layer=False)
        self.enc.load_state_dict(SD, strict=False)
        self.head = torch.nn.Linear(h, 3)

    def forward(self, ids, mask):
        hs = self.enc(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        return self.head((hs * m).sum(1) / m.sum(1))


def batches(X, idx, bs):
    for s in range(0, len(idx), bs):
        b = idx[s : s + bs]
        w = max(len(X[i]) for i in b)
        ids = torch.ones(len(b), w, dtype=torch.long)
        mask = torch.zeros(len(b), w, dtype=torch.long)
        for r, i in enumerate(b):
            ids[r, : len(X[i])] = torch.from_numpy(X[i])
            mask[r, : len(X[i])] = 1
        yield b, ids.to(dev), mask.to(dev)


def train(idx, cfgx, seed=0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    m = M().to(dev)
    frozen = cfgx.get("freeze_below", 0)
    for n, p in m.enc.named_parameters():
        if n.startswith("embeddings") and frozen > 0:
            p.requires_grad = False
        if n.startswith("encoder.layer.") and int(n.split(".")[2]) < frozen:
            p.requires_grad = False
    opt = torch.optim.AdamW(
        [
            {"params": [p for p in m.enc.parameters() if p.requires_grad], "lr": cfgx["lr"]},
            {"params": m.head.parameters(), "lr": 1e-3},
        ],
        weight_decay=0.01,
    )
    steps = cfgx["epochs"] * ((len(idx) + 15) // 16)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            min(1, s / (0.1 * steps)) * max(0, (steps - s) / (0.9 * steps))
            if s > 0.1 * steps
            else s / (0.1 * steps) + 1e-3
        ),
    )
    yt = torch.from_numpy(Y.astype(np.float32)).to(dev)
    m.train()
    for _ep in range(cfgx["epochs"]):
        order = np.array(idx)[rng.permutation(len(idx))]
        for b, ids, mask in batches(Xtr, order.tolist(), 16):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = m(ids, mask)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(out.float(), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    m.eval()
    return m


@torch.no_grad()
def predict(m, X, idx):
    out = np.zeros((len(X), 3))
    idx = sorted(idx, key=lambda i: len(X[i]))
    for b, ids, mask in batches(X, idx, 64):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out[b] = m(ids, mask).float().cpu().numpy()
    return out


def report(name, oof, dvl):
    ev = ~amb
    probs = np.zeros_like(oof)
    dp = np.zeros_like(dvl)
    ths = []
    for j in range(3):
        a, c = calibration.fit_platt(oof[:, j], Y[:, j].astype(float))
        probs[:, j] = calibration.sigmoid(a * oof[:, j] + c)
        dp[:, j] = calibration.sigmoid(a * dvl[:, j] + c)
        ths.append(calibration.choose_threshold(probs[ev, j], Y[ev, j], list(lang[ev])))
    r = {}
    for L in ["all", "en", "es"]:
        s = ev & ((lang == L) if L != "all" else True)
        r["oof_" + L] = [round(calibration.f1(Y[s, j], probs[s, j] >= ths[j]), 3) for j in range(3)]
        s = ~dv_amb & ((dv_lang == L) if L != "all" else True)
        r["dev_" + L] = [round(calibration.f1(Ydv[s, j], dp[s, j] >= ths[j]), 3) for j in range(3)]
    print(
        name,
        "OOF",
        round(float(np.mean(r["oof_all"])), 3),
        "DEV",
        round(float(np.mean(r["dev_all"])), 3),
        json.dumps(r),
        "th",
        ths,
        flush=True,
    )


configs = json.loads(sys.argv[1])
print("loaded", time.time() - t00, flush=True)
for name, cfgx in configs.items():
    t0 = time.time()
    oof = np.zeros((len(Xtr), 3))
    for k in range(5):
        tr = np.where(k != FOLD)[0].tolist()
        te = np.where(k == FOLD)[0].tolist()
        m = train(tr, cfgx)
        oof[te] = predict(m, Xtr, te)[te]
        del m
    m = train(list(range(len(Xtr))), cfgx)
    dvl = predict(m, Xdv, list(range(len(Xdv))))
    report(name, oof, dvl)
    print("time", name, round(time.time() - t0), flush=True)
    np.save(os.environ.get("OUT", ".") + f"/oof_{name}.npy", oof)
    np.save(os.environ.get("OUT", ".") + f"/dev_{name}.npy", dvl)
