"""Fine-tuning the encoder's top layers with the tagging head, on CPU, deterministically.

Owns the training loop of the recipe chosen by grouped cross-validation (README
"Classify: the model"): the lower layers stay frozen, so their output — the
hidden states entering layer ``L - k`` — is computed once per article (eval
mode) and kept in memory; only the top ``k`` layers and a linear head over the
mean-pooled last hidden states are trained (AdamW, linear warm-up then decay,
binary cross-entropy per label). With ``k = 4`` an epoch over ~2,000 articles
takes minutes on two cores instead of the hour a full fine-tune would.

Deterministic: fixed seeds, deterministic torch algorithms and a fixed thread
count give the same weights on every run on the same machine. With
:mod:`classify.model` this is the only module that imports torch/transformers;
it must not read files (the caller passes token windows and labels).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import AutoModel
from transformers.masking_utils import create_bidirectional_mask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneRecipe:
    layers: int = 4
    """Top encoder layers trained (the rest, embeddings included, stay frozen)."""
    lr: float = 1e-4
    head_lr: float = 1e-3
    epochs: int = 4
    batch_size: int = 16
    weight_decay: float = 0.01
    warmup: float = 0.1
    seed: int = 13
    threads: int = 2


@dataclass(frozen=True)
class Tuned:
    """What training produces: the trained top layers (``encoder.layer.N.*`` names) and the head."""

    layers: dict[str, np.ndarray]
    weight: np.ndarray  # [labels, H]
    bias: np.ndarray  # [labels]


def _pad(windows: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(w) for w in windows)
    ids = torch.full((len(windows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(windows), width), dtype=torch.long)
    for row, window in enumerate(windows):
        ids[row, : len(window)] = torch.tensor(list(window), dtype=torch.long)
        mask[row, : len(window)] = 1
    return ids, mask


class _TopStack(torch.nn.Module):
    """The trainable part: the top layers of a ``BertModel`` and a linear head on mean pooling."""

    def __init__(self, model: Any, first: int, labels: int) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(model.encoder.layer[first:])
        self.head = torch.nn.Linear(int(model.config.hidden_size), labels)
        self._config = model.config

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # The layers take the mask in the form their attention implementation wants (transformers 5).
        extended = create_bidirectional_mask(config=self._config, inputs_embeds=states, attention_mask=mask)
        for layer in self.layers:
            out = layer(states, attention_mask=extended)
            states = out[0] if isinstance(out, tuple) else out
        weights = mask.unsqueeze(-1).to(states.dtype)
        return self.head((states * weights).sum(1) / weights.sum(1))  # type: ignore[no-any-return]


def lower_states(
    backbone: str, windows: Sequence[Sequence[int]], frozen: int, pad: int, threads: int = 2
) -> list[np.ndarray]:
    """Hidden states entering layer ``frozen`` for each window (no dropout), ``[len, H]`` float32."""
    torch.set_num_threads(threads)
    model = AutoModel.from_pretrained(backbone, add_pooling_layer=False).eval()
    out: list[np.ndarray] = [np.empty(0)] * len(windows)
    order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
    with torch.inference_mode():
        for start in range(0, len(order), 16):
            batch = order[start : start + 16]
            ids, mask = _pad([windows[i] for i in batch], pad)
            hidden = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[
                frozen
            ]
            for row, i in enumerate(batch):
                out[i] = hidden[row, : len(windows[i])].numpy().copy()
    return out


def train_top(
    backbone: str,
    windows: Sequence[Sequence[int]],
    targets: np.ndarray,
    recipe: FinetuneRecipe,
    pad: int,
    lower: Sequence[np.ndarray] | None = None,
) -> Tuned:
    """Train the top ``recipe.layers`` layers and the head on ``windows`` (token ids) -> ``targets``."""
    torch.manual_seed(recipe.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(recipe.threads)
    rng = np.random.default_rng(recipe.seed)
    model = AutoModel.from_pretrained(backbone, add_pooling_layer=False)
    total = int(model.config.num_hidden_layers)
    first = total - recipe.layers
    started = time.perf_counter()
    if lower is None:
        lower = lower_states(backbone, windows, first, pad, recipe.threads)
    log.info(
        "lower %d layers encoded for %d windows (%.0fs)", first, len(windows), time.perf_counter() - started
    )
    stack = _TopStack(model, first, targets.shape[1])
    stack.train()
    optimiser = torch.optim.AdamW(
        [
            {"params": list(stack.layers.parameters()), "lr": recipe.lr},
            {"params": list(stack.head.parameters()), "lr": recipe.head_lr},
        ],
        weight_decay=recipe.weight_decay,
    )
    per_epoch = (len(windows) + recipe.batch_size - 1) // recipe.batch_size
    steps = recipe.epochs * per_epoch
    warm = recipe.warmup * steps

    def schedule(step: int) -> float:
        return step / warm + 1e-3 if step <= warm else max(0.0, (steps - step) / (steps - warm))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, schedule)
    y = torch.from_numpy(targets.astype(np.float32))
    for epoch in range(recipe.epochs):
        order = rng.permutation(len(windows))
        loss_sum = 0.0
        for start in range(0, len(order), recipe.batch_size):
            batch = order[start : start + recipe.batch_size].tolist()
            width = max(len(lower[i]) for i in batch)
            states = torch.zeros((len(batch), width, lower[batch[0]].shape[1]))
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                states[row, : len(lower[i])] = torch.from_numpy(lower[i])
                mask[row, : len(lower[i])] = 1
            loss = torch.nn.functional.binary_cross_entropy_with_logits(stack(states, mask), y[batch])
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            scheduler.step()
            loss_sum += float(loss.detach()) * len(batch)
        log.info(
            "epoch %d/%d: loss %.4f (%.0fs)",
            epoch + 1,
            recipe.epochs,
            loss_sum / len(windows),
            time.perf_counter() - started,
        )
    layers = {
        f"encoder.layer.{first + i}.{name}": tensor.detach().numpy().copy()
        for i, layer in enumerate(stack.layers)
        for name, tensor in layer.state_dict().items()
    }
    return Tuned(
        layers=layers,
        weight=stack.head.weight.detach().numpy().copy(),
        bias=stack.head.bias.detach().numpy().copy(),
    )


def predict_top(backbone: str, tuned: Tuned, lower: Sequence[np.ndarray]) -> np.ndarray:
    """Head logits ``[n, labels]`` of a trained top stack on cached lower states (eval mode)."""
    model = AutoModel.from_pretrained(backbone, add_pooling_layer=False)
    first = int(model.config.num_hidden_layers) - len({k.split(".")[2] for k in tuned.layers})
    stack = _TopStack(model, first, tuned.weight.shape[0])
    own = {
        f"layers.{int(k.split('.')[2]) - first}.{k.split('.', 3)[3]}": torch.from_numpy(v)
        for k, v in tuned.layers.items()
    }
    own["head.weight"] = torch.from_numpy(tuned.weight)
    own["head.bias"] = torch.from_numpy(tuned.bias)
    stack.load_state_dict(own)
    stack.eval()
    out = np.zeros((len(lower), tuned.weight.shape[0]))
    with torch.inference_mode():
        for i, states in enumerate(lower):
            tensor = torch.from_numpy(states)[None]
            out[i] = stack(tensor, torch.ones((1, len(states)), dtype=torch.long))[0].numpy()
    return out
