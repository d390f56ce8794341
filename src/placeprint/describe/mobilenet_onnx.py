"""torchvision's MobileNetV2 as an ONNX graph, built from the raw weights, run by onnxruntime.

The graph follows ``torchvision.models.mobilenet_v2`` exactly: ``features`` is a
3x3/2 conv-BN-ReLU6 stem (index 0), 17 inverted residual blocks (indices 1-17:
1x1 expansion-BN-ReLU6, 3x3 depthwise-BN-ReLU6, 1x1 linear projection-BN, plus the
input when stride is 1 and the channel count is unchanged) and a 1x1 conv-BN-ReLU6
to 1280 channels (index 18); the classifier is global average pooling then
``Linear(1280, 1000)`` (dropout is the identity at inference). BatchNorm (eps 1e-5)
is folded into each convolution's weights and bias.

A *layer* names the tensor a caller wants: ``"last"`` (= 18, 1280 channels after
ReLU6), an index ``k`` in 0..18 (the output of ``features[k]``; for blocks 1-17 that
is the linear bottleneck, which can be negative), or ``"k.expand"`` / ``"k.dw"``
(the ReLU6 output of block k's expansion or depthwise conv, k in 2..17). The graph
is cut after the deepest layer asked for. Input ``image`` is ``(n, 3, h, w) float32``
normalised with ImageNet mean/std (:func:`preprocess`); batch, height and width are
dynamic. Built graphs are cached under ``cache_root()/models`` keyed by the weights'
SHA-256 and the graph options, written atomically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from placeprint.config import cache_root
from placeprint.describe.mobilenet_weights import WEIGHTS_SHA256, load_mobilenet_v2_weights
from placeprint.errors import PlaceprintError

BUILDER_VERSION = 1
OPSET = 17
BN_EPS = 1e-5
LAST = 18
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
# torchvision's inverted residual settings: expansion t, output channels c, repeats n, stride s
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip


@dataclass(frozen=True)
class Block:
    """One inverted residual block ``features[index]``."""

    index: int
    inp: int
    out: int
    stride: int
    expand: int

    @property
    def hidden(self) -> int:
        return self.inp * self.expand

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.inp == self.out


def blocks() -> list[Block]:
    """The 17 inverted residual blocks, ``features[1] .. features[17]``."""
    out, inp, index = [], 32, 1
    for t, c, n, s in _SETTINGS:
        for i in range(n):
            out.append(Block(index, inp, c, s if i == 0 else 1, t))
            inp, index = c, index + 1
    return out


def parse_layer(layer: int | str) -> tuple[int, str]:
    """``(index, part)`` of a layer name; part is ``"out"``, ``"expand"`` or ``"dw"``."""
    text = str(layer).strip().lower()
    if text == "last":
        return LAST, "out"
    index_text, _, part = text.partition(".")
    part = part or "out"
    try:
        index = int(index_text)
    except ValueError:
        index = -1
    ok = 0 <= index <= LAST and part == "out"
    ok |= 2 <= index <= 17 and part in ("expand", "dw")
    ok |= index == 1 and part == "dw"
    if not ok:
        raise PlaceprintError(
            f"unknown MobileNetV2 layer {layer!r}: use 'last', an index 0..18, "
            "or 'k.expand' / 'k.dw' with k in 2..17"
        )
    return index, part


def layer_name(layer: int | str) -> str:
    """Canonical graph output name of a layer, e.g. ``"layer18"``, ``"layer14_expand"``."""
    index, part = parse_layer(layer)
    return f"layer{index}" if part == "out" else f"layer{index}_{part}"


def layer_channels(layer: int | str) -> int:
    """Number of channels of a layer's feature map."""
    index, part = parse_layer(layer)
    if index == 0:
        return 32
    if index == LAST:
        return 1280
    block = blocks()[index - 1]
    return block.out if part == "out" else block.hidden


def layer_stride(layer: int | str) -> int:
    """Total stride (input pixels per feature-map cell) of a layer."""
    index, part = parse_layer(layer)
    stride = 2
    for block in blocks()[: min(index, 17)]:
        if block.index == index and part == "expand":
            break
        stride *= block.stride
    return stride


class _GraphBuilder:
    """Accumulates nodes and initialisers; BatchNorm is folded into each conv."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        from onnx import helper, numpy_helper

        self.w, self.helper, self.numpy_helper = weights, helper, numpy_helper
        self.nodes: list = []
        self.inits: list = [
            numpy_helper.from_array(np.array(0.0, np.float32), "relu6_min"),
            numpy_helper.from_array(np.array(6.0, np.float32), "relu6_max"),
        ]

    def param(self, name: str, value: np.ndarray) -> str:
        self.inits.append(self.numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def conv_bn(self, x: str, conv: str, bn: str, stride: int, groups: int, relu6: bool) -> str:
        W = self.w[f"{conv}.weight"]
        gamma, beta = self.w[f"{bn}.weight"], self.w[f"{bn}.bias"]
        mean, var = self.w[f"{bn}.running_mean"], self.w[f"{bn}.running_var"]
        scale = gamma / np.sqrt(var.astype(np.float64) + BN_EPS)
        wf = self.param(f"{conv}.w", W * scale[:, None, None, None])
        bf = self.param(f"{conv}.b", beta - mean * scale)
        k = W.shape[-1]
        y = f"{conv}.y"
        self.nodes.append(
            self.helper.make_node(
                "Conv", [x, wf, bf], [y], kernel_shape=[k, k], strides=[stride, stride],
                pads=[k // 2] * 4, group=groups,
            )
        )  # fmt: skip
        if not relu6:
            return y
        self.nodes.append(self.helper.make_node("Clip", [y, "relu6_min", "relu6_max"], [y + "6"]))
        return y + "6"

    def block(self, x: str, b: Block) -> dict[str, str]:
        """Tensors of block ``b``: ``expand`` (if any), ``dw``, ``out``."""
        p, taps, i = f"features.{b.index}.conv", {}, 0
        h = x
        if b.expand != 1:
            h = taps["expand"] = self.conv_bn(h, f"{p}.0.0", f"{p}.0.1", 1, 1, True)
            i = 1
        h = taps["dw"] = self.conv_bn(h, f"{p}.{i}.0", f"{p}.{i}.1", b.stride, b.hidden, True)
        y = self.conv_bn(h, f"{p}.{i + 1}", f"{p}.{i + 2}", 1, 1, False)
        if b.residual:
            self.nodes.append(self.helper.make_node("Add", [x, y], [f"features.{b.index}.y"]))
            y = f"features.{b.index}.y"
        taps["out"] = y
        return taps

    def logits(self, x: str) -> str:
        h = self.helper
        self.nodes.append(h.make_node("GlobalAveragePool", [x], ["pooled"]))
        self.nodes.append(h.make_node("Flatten", ["pooled"], ["pooled_flat"], axis=1))
        w = self.param("classifier.1.w", self.w["classifier.1.weight"])
        b = self.param("classifier.1.b", self.w["classifier.1.bias"])
        self.nodes.append(h.make_node("Gemm", ["pooled_flat", w, b], ["logits"], transB=1))
        return "logits"


def build_model(
    weights: dict[str, np.ndarray], layers: Sequence[int | str] = ("last",), logits: bool = False
):
    """ONNX ``ModelProto`` of MobileNetV2 with outputs ``layer_name(l)`` for each of
    ``layers`` (``(n, C, h', w') float32``) and, if ``logits``, ``"logits"`` ``(n, 1000)``."""
    from onnx import TensorProto, checker, helper

    specs = {layer_name(layer): layer for layer in layers}
    if not specs and not logits:
        raise PlaceprintError("ask for at least one layer or the logits")
    wanted = [parse_layer(layer) for layer in specs.values()]
    deepest = LAST if logits else max(index for index, _ in wanted)
    g = _GraphBuilder(weights)
    x = g.conv_bn("image", "features.0.0", "features.0.1", 2, 1, True)
    found = {(0, "out"): x}
    for b in blocks()[:deepest]:
        taps = g.block(x, b)
        found.update({(b.index, part): name for part, name in taps.items()})
        x = taps["out"]
    if deepest == LAST:
        x = found[(LAST, "out")] = g.conv_bn(x, "features.18.0", "features.18.1", 1, 1, True)
    outputs = []
    for (name, layer), key in zip(specs.items(), wanted, strict=True):
        g.nodes.append(helper.make_node("Identity", [found[key]], [name]))
        shape = ["batch", layer_channels(layer), f"{name}_h", f"{name}_w"]
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    if logits:
        outputs.append(
            helper.make_tensor_value_info(g.logits(x), TensorProto.FLOAT, ["batch", 1000])
        )
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "h", "w"])
    graph = helper.make_graph(g.nodes, "mobilenet_v2", [image], outputs, g.inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="placeprint"
    )
    model.ir_version = 8
    checker.check_model(model)
    return model


def model_path(layers: Sequence[int | str] = ("last",), logits: bool = False) -> Path:
    """Cache path of the graph with these options (not created here)."""
    options = {
        "layers": [layer_name(layer) for layer in layers],
        "logits": bool(logits),
        "opset": OPSET,
        "builder": BUILDER_VERSION,
    }
    key = hashlib.sha1(json.dumps(options, sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / "models" / f"mobilenet_v2-{WEIGHTS_SHA256[:12]}-{key}.onnx"


def _write_atomic(path: Path, data: bytes) -> None:
    from placeprint.atomic import atomic_write_bytes

    atomic_write_bytes(path, data, make_parents=True, sync=True)


def ensure_model(layers: Sequence[int | str] = ("last",), logits: bool = False) -> Path:
    """Path of the cached ONNX graph, building and writing it (atomically) if missing."""
    path = model_path(layers, logits)
    if not path.is_file():
        model = build_model(load_mobilenet_v2_weights(), layers, logits)
        _write_atomic(path, model.SerializeToString())
    return path


def open_session(layers: Sequence[int | str] = ("last",), logits: bool = False, threads: int = 2):
    """An onnxruntime ``InferenceSession`` (CPU, ``threads`` intra-op threads that do not
    spin while idle) on the cached graph; a damaged cache file is rebuilt once."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise PlaceprintError(
            "deep describers need onnxruntime: pip install 'placeprint[deep]'"
        ) from None
    if int(threads) < 1:
        raise PlaceprintError(f"threads must be >= 1, got {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # idle threads sleep instead of spinning: on busy machines (and with several
    # sessions) spinning doubled the CPU time per image and slowed the wall clock
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    path = ensure_model(layers, logits)
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception:  # any load failure means a damaged cache file
        path.unlink(missing_ok=True)
        path = ensure_model(layers, logits)
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def preprocess(images_rgb: np.ndarray) -> np.ndarray:
    """``(n, h, w, 3)`` RGB in [0, 255] -> ``(n, 3, h, w) float32`` ImageNet-normalised."""
    x = np.asarray(images_rgb, np.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise PlaceprintError(f"images must be (n, h, w, 3) RGB, got {x.shape}")
    x = (x * (1.0 / 255.0) - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
