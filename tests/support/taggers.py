"""A stand-in for the model (``classify.labels.TaggerProtocol``): predictions without torch.

One fake for every test of the worker, ``reclassify`` and the location wiring. ``scores`` (a
mapping, or a function of the input) gives each input's scores; the labels are the scores at or
over ``threshold``, in the mapping's order; ``evidence=True`` cites the input's whole text for each
label. A test that needs the model to fail overrides :meth:`check`, which sees every call first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from classify.labels import Prediction, TagInput

Scores = Mapping[str, float] | Callable[[TagInput], Mapping[str, float]]


class FakeTagger:
    def __init__(
        self,
        scores: Scores,
        *,
        threshold: float = 0.5,
        evidence: bool = False,
        model_name: str = "fake",
        model_version: str = "1",
    ) -> None:
        self.model_name, self.model_version = model_name, model_version
        self._scores, self._threshold, self._evidence = scores, threshold, evidence
        self.calls: list[int] = []
        """The size of every batch asked for, in order."""

    def check(self, items: Sequence[TagInput]) -> None:
        """Raise here to play a model that fails on this call (see the subclasses in the tests)."""

    def predict(self, items: Sequence[TagInput]) -> list[Prediction]:
        self.calls.append(len(items))
        self.check(items)
        return [self._one(item) for item in items]

    def _one(self, item: TagInput) -> Prediction:
        scores = dict(self._scores(item) if callable(self._scores) else self._scores)
        labels = tuple(name for name, score in scores.items() if score >= self._threshold)
        evidence = {name: item.text for name in labels} if self._evidence else {}
        return Prediction(id=item.id, labels=labels, scores=scores, evidence=evidence)
