"""The FFN outlier split on a small graph: exact in fp32, and why int8 needs it.

A projection ``x @ W`` whose input has one channel 40x the others, as the encoder's GELU
outputs do; the real encoder's graphs are checked in test_model_runtimes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from classify.outliers import calibration_texts, split_outliers  # noqa: E402

WIDTH, OUT, TOKENS, LOUD = 64, 16, 24, 5


def _projection(weight: np.ndarray) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="ffn_out")],
        "ffn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None, WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None, OUT])],
        [numpy_helper.from_array(weight, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    weight = rng.normal(0, 0.1, (WIDTH, OUT)).astype(np.float32)
    x = np.abs(rng.normal(0, 1, (1, TOKENS, WIDTH))).astype(np.float32)
    x[..., LOUD] *= 40  # one massive channel, the same on every token
    return weight, x


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


def test_the_split_graph_computes_the_same_projection() -> None:
    weight, x = _inputs()
    model = _projection(weight)
    kept = split_outliers(model.graph, ["ffn_out"], [np.array([2, LOUD], dtype=np.int64)])
    onnx.checker.check_model(model)
    assert kept == ["ffn_outliers_0_matmul"]
    np.testing.assert_allclose(_run(model, x), x @ weight, rtol=1e-5, atol=1e-5)


def test_int8_with_the_loud_channel_split_off_is_far_closer(tmp_path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weight, x = _inputs()
    exact = x @ weight

    def quantised(model: onnx.ModelProto, exclude: list[str], name: str) -> np.ndarray:
        onnx.save(model, str(tmp_path / f"{name}.onnx"))
        quantize_dynamic(
            str(tmp_path / f"{name}.onnx"),
            str(tmp_path / f"{name}.int8.onnx"),
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=exclude,
        )
        return _run(onnx.load(str(tmp_path / f"{name}.int8.onnx")), x)

    plain = quantised(_projection(weight), [], "plain")
    split_model = _projection(weight)
    kept = split_outliers(split_model.graph, ["ffn_out"], [np.array([LOUD], dtype=np.int64)])
    split = quantised(split_model, kept, "split")
    plain_error, split_error = np.abs(plain - exact).mean(), np.abs(split - exact).mean()
    assert split_error < plain_error / 5, (split_error, plain_error)


def test_one_channel_list_per_projection_is_required() -> None:
    weight, _ = _inputs()
    with pytest.raises(ValueError, match="1 feed-forward projections but channels for 2 layers"):
        split_outliers(_projection(weight).graph, ["ffn_out"], [np.array([0]), np.array([1])])


def test_calibration_reads_the_bundled_corpus_in_both_languages() -> None:
    texts = calibration_texts()
    assert 100 <= len(texts) <= 200
    assert any("secuestr" in t for t in texts) and any("kidnap" in t.lower() for t in texts)
