"""Model directories: ``config.json`` + ``model.safetensors`` + ``meta.json`` (+ fitted samplers), and
foreign torch weights files read without running code.

A model directory loads without pickle: weights are safetensors, configs are JSON, and the class is
found in the model registry by ``model_type``. Directories are written to a temporary sibling and
renamed into place, so a crash never leaves a half-written model; an existing directory is only
replaced with ``overwrite=True``.

Foreign weights (:func:`read_torch_file`: ``torch.save`` zip files and the legacy ``torch.save``
stream that stylegan2-ada pickles embed for each tensor storage) are read by
:mod:`latentstudio.io.safe_pickle`, never by ``torch.load``, and every size is checked before
memory is allocated for it:

- zip records: compression method, declared sizes against the file and :data:`MAX_WEIGHTS_BYTES`,
  inflate ratio of compressed records (:data:`MAX_ZIP_RATIO`), all before inflating;
- storages: declared element count x element size against the record (zip) or against the bytes
  that remain (legacy stream), and the total against :data:`MAX_WEIGHTS_BYTES`;
- tensors: the extent of ``size`` / ``stride`` / ``offset`` must lie inside the storage (``Tensor.set_``
  would otherwise grow the storage with uninitialised memory).
"""

from __future__ import annotations

import collections
import datetime as _dt
import json
import math
import platform
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from latentstudio.errors import CheckpointError
from latentstudio.io import safe_pickle
from latentstudio.io.atomic import atomic_dir

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
META_FILE = "meta.json"
SAMPLERS_FILE = "samplers.json"
SAMPLERS_WEIGHTS = "samplers.safetensors"
FORMAT_VERSION = 1

_VERSIONED = ("latentstudio", "torch", "torchvision", "lightning", "torchmetrics", "scikit-learn", "numpy")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape results (plus Python)."""
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """Strip DDP / torch.compile wrappers so parameter names are the plain module's."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):  # DDP
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile
            model = model._orig_mod
        else:
            return model


def write_model_files(
    folder: str | Path,
    model: torch.nn.Module,
    *,
    meta: dict[str, Any] | None = None,
    samplers: dict[str, Any] | None = None,
) -> None:
    """Write ``config.json``, ``model.safetensors``, ``meta.json`` (+ samplers) into an existing ``folder``.

    Not atomic by itself: use :func:`save_model_dir`, or call it on the folder yielded by
    :func:`latentstudio.io.atomic.atomic_dir`. Arguments as :func:`save_model_dir`.
    """
    folder = Path(folder)
    model = unwrap(model)
    cfg = {"format_version": FORMAT_VERSION, "model_type": model.model_type, "config": model.config.to_dict()}
    (folder / CONFIG_FILE).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"model_type": model.model_type})
    full_meta = {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
        **(meta or {}),
    }
    (folder / META_FILE).write_text(json.dumps(full_meta, indent=2, sort_keys=True, default=str) + "\n")
    if samplers:
        _write_samplers(folder, samplers)


def save_model_dir(
    model: torch.nn.Module,
    path: str | Path,
    *,
    meta: dict[str, Any] | None = None,
    samplers: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` (a registered model with ``.config`` and ``model_type``) to ``path``.

    Args:
        model: the model (DDP / compile wrappers are removed).
        path: target directory.
        meta: extra provenance (dataset fingerprint, seed, run); library versions and a UTC
            timestamp are added.
        samplers: fitted latent samplers by name (objects with ``sampler_type``, ``config_dict()``
            and ``state_dict()``); their fitted state is stored, not only their config.
        overwrite: replace an existing directory.

    Raises:
        RunExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    with atomic_dir(path, overwrite=overwrite) as tmp:
        write_model_files(tmp, model, meta=meta, samplers=samplers)
    return path


def _write_samplers(folder: Path, samplers: dict[str, Any]) -> None:
    index: dict[str, Any] = {}
    tensors: dict[str, torch.Tensor] = {}
    for name, sampler in samplers.items():
        index[name] = {"sampler_type": sampler.sampler_type, "config": sampler.config_dict()}
        for key, value in sampler.state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().cpu().contiguous().clone()
    (folder / SAMPLERS_FILE).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    save_file(tensors, str(folder / SAMPLERS_WEIGHTS))


def save_samplers(path: str | Path, samplers: dict[str, Any]) -> None:
    """(Re)write the fitted samplers of an existing model directory atomically."""
    path = Path(path)
    tmp = Path(tempfile.mkdtemp(prefix=".samplers.", dir=path))
    try:
        _write_samplers(tmp, samplers)
        for f in (SAMPLERS_WEIGHTS, SAMPLERS_FILE):  # weights first: the index names them
            (tmp / f).replace(path / f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_model_config(path: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a model directory.

    Raises:
        CheckpointError: the directory or its files are missing or not valid JSON.
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(
            f"model directory {path} does not exist (expected {CONFIG_FILE} and {WEIGHTS_FILE} in it; "
            "train one with `latentstudio train` or pass the run's model/ folder)"
        )
    for f in (CONFIG_FILE, WEIGHTS_FILE):
        if not (path / f).is_file():
            raise CheckpointError(f"{path} is not a complete model directory: {f} is missing")
    try:
        cfg = json.loads((path / CONFIG_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path / CONFIG_FILE} is not valid JSON: {exc}") from None
    if "model_type" not in cfg or "config" not in cfg:
        raise CheckpointError(f"{path / CONFIG_FILE} lacks 'model_type' or 'config'")
    return cfg


_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
#: Largest safetensors JSON header read (bytes); real headers of this project's models are < 1 MB.
MAX_HEADER_BYTES = 64 << 20


def read_safetensors_header(path: str | Path) -> dict[str, dict[str, Any]]:
    """The tensor table of a safetensors file, checked against the file before anything is allocated.

    Every entry's byte range must lie inside the file and match its dtype and shape.

    Returns:
        ``{name: {"dtype": str, "shape": [int, ...], "data_offsets": [begin, end]}}``.

    Raises:
        CheckpointError: a missing, empty, truncated or malformed file (one line naming the file and
            the field).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    size = path.stat().st_size
    where = f"{path} is not a valid safetensors file"
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{where}: it is {size} bytes long (truncated or empty); re-export the model")
        n = int.from_bytes(head, "little")
        if n > min(MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(f"{where}: its header claims {n} bytes but the file has {size - 8} after the "
                                  "length field (truncated?)")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CheckpointError(f"{where}: its header is not JSON (truncated or corrupted)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{where}: its header is not a table of tensors")
    body = size - 8 - n
    out: dict[str, dict[str, Any]] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], [int(d) for d in entry["shape"]], entry["data_offsets"]
            nbytes = _DTYPE_BYTES[dtype] * math.prod(shape)
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{where}: tensor {name!r} has a malformed entry") from None
        if not (0 <= begin <= end <= body) or end - begin != nbytes or min(shape, default=0) < 0:
            raise CheckpointError(f"{where}: tensor {name!r} ({dtype} {shape}) does not fit the file "
                                  f"(bytes {begin}..{end} of {body}); the file is truncated or corrupted")
        out[name] = {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}
    return out


def read_weights(
    path: str | Path,
    *,
    expected: dict[str, torch.Tensor] | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, torch.Tensor]:
    """Load a safetensors file (no pickle) after checking its table against the file and, when given,
    against the names and shapes of ``expected`` (a model's ``state_dict()``).

    Raises:
        CheckpointError: see :func:`read_safetensors_header`; or missing/unexpected tensors or a
            shape that differs from ``expected`` (named).
    """
    table = read_safetensors_header(path)
    if expected is not None:
        missing = sorted(set(expected) - set(table))
        extra = sorted(set(table) - set(expected))
        if missing or extra:
            raise CheckpointError(f"{path} does not match the model in its config.json: missing tensors "
                                  f"{missing[:5]}, unexpected tensors {extra[:5]}")
        for name, t in expected.items():
            if list(t.shape) != table[name]["shape"]:
                raise CheckpointError(f"{path}: tensor {name!r} has shape {table[name]['shape']}, the config "
                                      f"needs {list(t.shape)}")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} could not be read: {str(exc).splitlines()[0]}") from None


def read_samplers_files(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The raw fitted-sampler index (``samplers.json``) and tensors of a model folder (empty if none).

    Raises:
        CheckpointError: an unreadable index or tensor file.
    """
    path = Path(path)
    if not (path / SAMPLERS_FILE).is_file():
        return {}, {}
    try:
        index = json.loads((path / SAMPLERS_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path / SAMPLERS_FILE} is not valid JSON: {exc}") from None
    tensors = read_weights(path / SAMPLERS_WEIGHTS) if (path / SAMPLERS_WEIGHTS).is_file() else {}
    return index, tensors


def read_meta(path: str | Path) -> dict[str, Any]:
    """The parsed ``meta.json`` of a model directory (empty dict if absent)."""
    f = Path(path) / META_FILE
    return json.loads(f.read_text()) if f.is_file() else {}


# --------------------------------------------------------------------------------------------------
# Foreign torch weights files (torch.save zip / legacy streams), read without torch.load

#: Most bytes of tensor data one weights file may declare, and the largest weights file read (16 GiB;
#: official StyleGAN2 files hold about 0.4 GB).
MAX_WEIGHTS_BYTES = 16 << 30
#: Largest inflate ratio of a compressed zip record (``torch.save`` stores records uncompressed; tensors
#: deflate by far less than this, zip bombs by ~1000x). Records up to :data:`ZIP_SMALL_RECORD` are exempt.
MAX_ZIP_RATIO = 20
ZIP_SMALL_RECORD = 1 << 20
#: The number the legacy ``torch.save`` stream starts with (a pickled int), and its protocol version.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
#: The first bytes of a legacy ``torch.save`` stream (protocol-2 pickle of :data:`LEGACY_MAGIC`).
LEGACY_HEAD = b"\x80\x02\x8a\x0a" + LEGACY_MAGIC.to_bytes(10, "little")

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}


@dataclass(frozen=True)
class StorageType:
    """Stand-in for a storage class named in a pickle (``torch.FloatStorage`` ...): its dtype, nothing callable."""

    name: str
    dtype: torch.dtype


class TensorStorage:
    """A tensor storage read from a weights file: ``flat``, a 1-D tensor of the storage's dtype."""

    def __init__(self, flat: torch.Tensor) -> None:
        self.flat = flat

    @property
    def dtype(self) -> torch.dtype:
        return self.flat.dtype


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                   backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: a view of ``storage`` whose whole extent
    (``offset + sum((size_i - 1) * stride_i)``) is checked to lie inside it first.

    Raises:
        MalformedPickleError: not a storage, non-integer or negative sizes, or an extent beyond the storage.
    """
    if not isinstance(storage, TensorStorage):
        raise safe_pickle.MalformedPickleError("a tensor record does not reference a tensor storage")
    if not (isinstance(size, tuple | list) and isinstance(stride, tuple | list) and len(size) == len(stride)
            and all(_is_int(v) and v >= 0 for v in (*size, *stride)) and _is_int(storage_offset)
            and storage_offset >= 0):
        raise safe_pickle.MalformedPickleError(
            f"a tensor record has a malformed size {size!r:.60} / stride {stride!r:.60} / offset "
            f"{storage_offset!r:.20} (field: size)")
    n = storage.flat.numel()
    if math.prod(size) == 0:
        return storage.flat.new_empty(tuple(size))
    extent = storage_offset + sum((d - 1) * s for d, s in zip(size, stride, strict=True)) + 1
    if extent > n:
        raise safe_pickle.MalformedPickleError(
            f"a tensor of size {list(size)}, stride {list(stride)} and offset {storage_offset} reaches element "
            f"{extent} of a storage of {n} elements (field: size); the file is corrupt")
    return storage.flat.as_strided(tuple(size), tuple(stride), storage_offset)


def rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None, *state: Any) -> torch.Tensor:
    """Stand-in for ``torch._utils._rebuild_parameter``: the tensor itself (a parameter is plain data here).

    Raises:
        MalformedPickleError: ``data`` is not a tensor.
    """
    if not isinstance(data, torch.Tensor):
        raise safe_pickle.MalformedPickleError("a parameter record does not hold a tensor")
    return data


def torch_globals() -> dict[tuple[str, str], Any]:
    """The allow-list of tensors in torch pickles: storage classes (as :class:`StorageType`), the checked
    :func:`rebuild_tensor` / :func:`rebuild_parameter` and ``collections.OrderedDict``."""
    out: dict[tuple[str, str], Any] = {("torch", k): StorageType(k, v) for k, v in _STORAGE_DTYPES.items()}
    out[("torch._utils", "_rebuild_tensor_v2")] = rebuild_tensor
    out[("torch._utils", "_rebuild_parameter")] = rebuild_parameter
    out[("torch._utils", "_rebuild_parameter_with_state")] = rebuild_parameter
    out[("collections", "OrderedDict")] = collections.OrderedDict
    return out


def _storage_record(pid: Any, fields: int) -> tuple[StorageType, str, int]:
    if not (isinstance(pid, tuple) and len(pid) == fields and pid[0] == "storage"):
        raise safe_pickle.MalformedPickleError(f"persistent id {pid!r:.80} is not a tensor storage record")
    stype, key, location, numel = pid[1:5]
    if not isinstance(stype, StorageType):
        raise safe_pickle.MalformedPickleError(f"storage record {key!r:.40} names no storage type ({stype!r:.40})")
    if not (isinstance(key, str) and isinstance(location, str) and _is_int(numel) and numel >= 0):
        raise safe_pickle.MalformedPickleError(f"storage record {pid!r:.80} is malformed (field: numel)")
    return stype, key, numel


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def read_legacy_torch(
    data: bytes | bytearray,
    allowed: safe_pickle.Allowed,
    *,
    source: str,
    error: Callable[[str], BaseException] = safe_pickle.PickleRefusedError,
    refusal: Callable[[str, str], str] | None = None,
    malformed: Callable[[str], BaseException] = CheckpointError,
    max_bytes: int = MAX_WEIGHTS_BYTES,
) -> Any:
    """The object of a legacy (non-zip) ``torch.save`` stream: five pickles (magic number, protocol,
    system info, the object, the storage keys) followed by each storage's element count and bytes.

    Storages are allocated when the object names them, only after their declared bytes were checked
    against what remains of ``data`` (all of them together) and ``max_bytes``.

    Args:
        allowed: the allow-list (usually :func:`torch_globals` plus the caller's plain-data classes).
        source, error, refusal, malformed: as :func:`latentstudio.io.safe_pickle.load`.

    Raises:
        ``malformed``: wrong magic number or protocol, big-endian data, sizes that do not fit.
        ``error``: a refused global.
    """
    kw = {"source": source, "error": error, "refusal": refusal, "malformed": malformed}
    if not bytes(data[:len(LEGACY_HEAD)]) == LEGACY_HEAD:
        raise malformed(f"{source}: not a torch.save stream (wrong magic number)")
    magic, pos = safe_pickle.load_at(data, 0, {}, **kw)
    if magic != LEGACY_MAGIC:
        raise malformed(f"{source}: not a torch.save stream (wrong magic number)")
    proto, pos = safe_pickle.load_at(data, pos, {}, **kw)
    if proto != LEGACY_PROTOCOL:
        raise malformed(f"{source}: unsupported torch.save protocol {proto!r:.20} (field: protocol_version)")
    info, pos = safe_pickle.load_at(data, pos, {}, **kw)
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise malformed(f"{source}: only little-endian torch.save streams are read (field: little_endian)")
    end = safe_pickle.check_sizes(data, source=source, start=pos, error=malformed)
    room = min(len(data) - end, max_bytes)
    pending: dict[str, torch.Tensor] = {}
    declared = 0

    def persistent(pid: Any) -> TensorStorage:
        nonlocal declared
        stype, key, numel = _storage_record(pid, 6)
        if pid[5] is not None:
            raise safe_pickle.MalformedPickleError(f"storage {key!r:.40} is a storage view (old format), not read")
        if key not in pending:
            nbytes = numel * _itemsize(stype.dtype)
            declared += nbytes + 8
            if declared > room:
                raise safe_pickle.MalformedPickleError(
                    f"storage {key!r:.40} declares {numel} {stype.name} elements ({nbytes} bytes) but the stream "
                    f"holds {len(data) - end} bytes of tensor data (field: numel); truncated or corrupt")
            pending[key] = torch.empty(numel, dtype=stype.dtype)
        flat = pending[key]
        if flat.dtype != stype.dtype or flat.numel() != numel:
            raise safe_pickle.MalformedPickleError(f"storage {key!r:.40} is declared twice with different sizes")
        return TensorStorage(flat)

    obj, pos = safe_pickle.load_at(data, pos, allowed, persistent=persistent, **kw)
    keys, pos = safe_pickle.load_at(data, pos, {}, **kw)
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys) and len(set(keys)) == len(keys)
            and set(keys) == set(pending)):
        raise malformed(f"{source}: the storage key list does not match the storages the object uses (field: keys)")
    for key in keys:
        flat = pending[key]
        if pos + 8 > len(data):
            raise malformed(f"{source}: storage {key!r:.40} is cut off (truncated)")
        numel = int.from_bytes(data[pos:pos + 8], "little", signed=True)
        pos += 8
        nbytes = flat.numel() * flat.element_size()
        if numel != flat.numel() or pos + nbytes > len(data):
            raise malformed(f"{source}: storage {key!r:.40} holds {numel} elements where {flat.numel()} were declared, "
                            f"or is cut off (field: numel)")
        if nbytes:
            flat.view(torch.uint8).numpy()[:] = np.frombuffer(data, dtype=np.uint8, count=nbytes, offset=pos)
        pos += nbytes
    return obj


def _zip_records(path: Path, zf: zipfile.ZipFile, malformed: Callable[[str], BaseException],
                 max_bytes: int) -> dict[str, zipfile.ZipInfo]:
    size = path.stat().st_size
    total = packed = 0
    records = {}
    for info in zf.infolist():
        name = info.filename
        where = f"{path}: zip record {name!r:.80}"
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise malformed(f"{where} uses compression method {info.compress_type} (field: compress_type); "
                            "only stored or deflated records are read")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise malformed(f"{where} is stored uncompressed but declares {info.file_size} bytes in {info.compress_size} "
                            "(field: file_size)")
        if (info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > ZIP_SMALL_RECORD
                and info.file_size > MAX_ZIP_RATIO * info.compress_size):
            raise malformed(f"{where} would inflate {info.compress_size} bytes to {info.file_size} (more than "
                            f"{MAX_ZIP_RATIO}:1; field: file_size); refused before inflating")
        if info.header_offset + info.compress_size > size:
            raise malformed(f"{where} declares {info.compress_size} bytes at offset {info.header_offset}, beyond the "
                            f"end of the {size}-byte file (field: compress_size); truncated")
        total += info.file_size
        packed += info.compress_size
        records[name] = info
    if packed > size:
        raise malformed(f"{path}: its zip records declare {packed} bytes in a {size}-byte file (overlapping records; "
                        "field: compress_size)")
    if total > max_bytes:
        raise malformed(f"{path}: its zip records declare {total} bytes, more than the {max_bytes} accepted "
                        "(field: file_size)")
    return records


def _read_record(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str,
                 malformed: Callable[[str], BaseException]) -> bytes:
    try:
        with zf.open(info) as f:
            data = f.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as exc:
        raise malformed(f"{where}: zip record {info.filename!r:.80} is unreadable ({str(exc).splitlines()[0]:.120})") from None
    if len(data) != info.file_size:
        raise malformed(f"{where}: zip record {info.filename!r:.80} holds {len(data)} bytes, not the {info.file_size} "
                        "it declares (field: file_size)")
    return data


def read_torch_zip(
    path: str | Path,
    allowed: safe_pickle.Allowed,
    *,
    error: Callable[[str], BaseException] = safe_pickle.PickleRefusedError,
    refusal: Callable[[str, str], str] | None = None,
    malformed: Callable[[str], BaseException] = CheckpointError,
    max_bytes: int = MAX_WEIGHTS_BYTES,
) -> Any:
    """The object of a ``torch.save`` zip file (``<prefix>/data.pkl`` + ``<prefix>/data/<key>`` records).

    Every record is validated before it is inflated (:func:`_zip_records`); each storage's declared
    element count must match its record's size, and tensors are checked views (:func:`rebuild_tensor`).

    Raises:
        ``malformed``: an unreadable zip, a record that fails a check, a storage that does not match its
            record (all naming the file and the field). ``error``: a refused global.
    """
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise malformed(f"{path}: not a readable zip file, truncated or corrupt ({str(exc).splitlines()[0]:.120})") from None
    with zf:
        records = _zip_records(path, zf, malformed, max_bytes)
        pkls = [n for n in records if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise malformed(f"{path}: not a torch.save zip file (expected one <name>/data.pkl record, found {len(pkls)})")
        prefix = pkls[0][: -len("data.pkl")]
        order = records.get(prefix + "byteorder")
        if order is not None and _read_record(zf, order, str(path), malformed).strip() != b"little":
            raise malformed(f"{path}: only little-endian torch files are read (field: byteorder)")
        loaded: dict[str, TensorStorage] = {}

        def persistent(pid: Any) -> TensorStorage:
            stype, key, numel = _storage_record(pid, 5)
            if key in loaded:
                return loaded[key]
            info = records.get(f"{prefix}data/{key}")
            if info is None:
                raise safe_pickle.MalformedPickleError(f"storage {key!r:.40} has no record {prefix}data/{key}")
            nbytes = numel * _itemsize(stype.dtype)
            if nbytes != info.file_size:
                raise safe_pickle.MalformedPickleError(
                    f"storage {key!r:.40} declares {numel} {stype.name} elements ({nbytes} bytes) but its record "
                    f"holds {info.file_size} bytes (field: numel)")
            raw = _read_record(zf, info, str(path), malformed)
            flat = torch.frombuffer(bytearray(raw), dtype=stype.dtype) if nbytes else torch.empty(0, dtype=stype.dtype)
            loaded[key] = TensorStorage(flat)
            return loaded[key]

        data = _read_record(zf, records[pkls[0]], str(path), malformed)
        obj, _ = safe_pickle.load_at(data, 0, allowed, source=f"{path}: {pkls[0]}", error=error, refusal=refusal,
                                     malformed=malformed, persistent=persistent)
    return obj


def read_torch_file(
    path: str | Path,
    allowed: safe_pickle.Allowed,
    *,
    error: Callable[[str], BaseException] = safe_pickle.PickleRefusedError,
    refusal: Callable[[str, str], str] | None = None,
    malformed: Callable[[str], BaseException] = CheckpointError,
    max_bytes: int = MAX_WEIGHTS_BYTES,
) -> Any:
    """The object of a ``torch.save`` file, zip (:func:`read_torch_zip`) or legacy stream
    (:func:`read_legacy_torch`), without ``torch.load`` and with every size checked first.

    Raises:
        FileNotFoundError: a missing file. ``malformed`` / ``error``: as the two readers.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise malformed(f"{path}: the file is {size} bytes, more than the {max_bytes} accepted (file size)")
    with open(path, "rb") as f:
        zipped = f.read(4) == b"PK\x03\x04"
    if zipped or zipfile.is_zipfile(path):
        return read_torch_zip(path, allowed, error=error, refusal=refusal, malformed=malformed, max_bytes=max_bytes)
    data = path.read_bytes()
    return read_legacy_torch(data, allowed, source=str(path), error=error, refusal=refusal, malformed=malformed,
                             max_bytes=max_bytes)
