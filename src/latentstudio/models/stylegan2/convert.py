"""Import official StyleGAN2 weights without executing pickled code.

Three source formats are read and mapped one to one onto :class:`~.networks.Generator` /
:class:`~.networks.Discriminator`:

``tf``
    The original TensorFlow release (``stylegan2-ffhq-config-f.pkl``): a pickled tuple
    ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network`` objects. Each holds its variables as numpy
    arrays, its sub-networks (``components``: ``mapping``, ``synthesis``) and the *source code* of
    its build function, which TensorFlow would execute. A restricted unpickler rebuilds only the
    Network state (names, kwargs, variables): no TensorFlow, no dnnlib, nothing executed.
``pytorch``
    stylegan2-ada-pytorch and stylegan3 ``.pkl`` files: a dict ``{"G", "D", "G_ema", ...}`` of
    ``torch_utils.persistence`` objects whose pickles embed their module source code and are
    reconstructed by calling ``torch_utils.persistence._reconstruct_persistent_obj``. The
    restricted unpickler replaces that function by a stub that keeps the module state (parameters,
    buffers, sub-modules, constructor kwargs) and never imports or runs the embedded source;
    tensor storages (legacy ``torch.save`` streams) are decoded by
    :func:`latentstudio.io.checkpoint.read_legacy_torch`, not ``torch.load``. Class-conditional
    snapshots (``mapping.embed``) convert with their label embedding (``c_dim``); their
    discriminator (label-projection head) is not converted.
``rosinality``
    ``.pt`` checkpoints of rosinality/stylegan2-pytorch (``{"g_ema", "g", "d", "latent_avg", "args"}``),
    ``torch.save`` zip or legacy files, read by :func:`latentstudio.io.checkpoint.read_torch_file`
    (``argparse.Namespace`` allowed as plain data).

Anything in a pickle beyond plain containers, numpy arrays and tensor storages (for example
``os.system`` or ``builtins.eval``) is refused with :class:`UnsafePickleError` before it can run.
Every declared size (pickle fields, zip records, storages, tensor extents) is checked before memory
is allocated for it, and any malformed file ends in one :class:`CheckpointError` line naming the file
and the field, never a traceback.

Weight transforms (TF stores dense weights ``[in, out]``, conv weights ``[kh, kw, in, out]``):
dense ``W.T``; conv ``W.transpose(3, 2, 0, 1)``; TF's upsampling convolution was a flipped
transposed convolution, so its weights are also flipped spatially; modulation biases are stored
minus 1 in TF (``+ 1`` here); per-layer noise buffers ``[1, 1, r, r] -> [r, r]``.
"""

from __future__ import annotations

import argparse
import collections
import contextvars
import math
import pickle
import re
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentstudio.errors import CheckpointError, ConfigError, LatentStudioError, RunExistsError
from latentstudio.io import checkpoint, safe_pickle
from latentstudio.models.stylegan2 import save_model
from latentstudio.models.stylegan2.config import StyleGAN2Config
from latentstudio.models.stylegan2.networks import Discriminator, Generator

FORMATS = ("tf", "pytorch", "rosinality")


class UnsafePickleError(CheckpointError):
    """A pickle referenced something other than plain data (it could run code when loaded); nothing was run."""


# --------------------------------------------------------------------------------------------------
# Restricted unpickling


class _EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` (a dict with attribute access): plain data only."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


class TFNetwork:
    """The state of a pickled ``dnnlib.tflib.network.Network`` (the build-function source is kept, never run).

    Attributes:
        name: network scope name (``G_main``, ``G_mapping``, ``G_synthesis``, ``D_stylegan2`` ...).
        static_kwargs: the build kwargs (resolution, fmap_base, ...).
        components: sub-networks by name (``mapping``, ``synthesis``).
        variables: ``{name: float ndarray}`` of this network's own variables (no sub-networks).
    """

    def __init__(self) -> None:
        self.name = ""
        self.static_kwargs: dict[str, Any] = {}
        self.components: dict[str, TFNetwork] = {}
        self.variables: dict[str, np.ndarray] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or "variables" not in state:
            raise CheckpointError("not a dnnlib Network pickle: the Network state has no 'variables'")
        if state.get("version") not in (2, 3, 4):
            raise CheckpointError(f"unsupported dnnlib Network pickle version {state.get('version')!r:.20} "
                                  "(field: version; expected 2-4)")
        self.name = str(state.get("name", ""))[:200]
        kw, comps, variables = state.get("static_kwargs") or {}, state.get("components") or {}, state["variables"]
        if not isinstance(kw, dict) or not isinstance(comps, dict) or not isinstance(variables, list | tuple):
            raise CheckpointError(f"network {self.name!r:.60}: malformed state (field: static_kwargs, components "
                                  "or variables)")
        self.static_kwargs, self.components = dict(kw), dict(comps)
        self.variables = {}
        for item in variables:
            if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)):
                raise CheckpointError(f"network {self.name!r:.60}: malformed variable record (field: variables)")
            self.variables[item[0]] = item[1]

    def all_variables(self, prefix: str = "", _depth: int = 0) -> dict[str, np.ndarray]:
        """Own and component variables, components prefixed ``<component>/`` (``mapping/Dense0/weight``).

        Raises:
            CheckpointError: a component that is not a Network, or components nested deeper than 4
                (a cycle).
        """
        if _depth > 4:
            raise CheckpointError(f"network {self.name!r:.60}: components nested deeper than 4 (a cycle?)")
        out = {prefix + k: v for k, v in self.variables.items()}
        for name, comp in self.components.items():
            if not isinstance(comp, TFNetwork):
                raise CheckpointError(f"component {name!r:.60} of network {self.name!r:.60} is not a Network")
            out.update(comp.all_variables(f"{prefix}{name}/", _depth + 1))
        return out


@dataclass
class PersistentModule:
    """A ``torch_utils.persistence`` object from a stylegan2-ada / stylegan3 pickle, not reconstructed.

    Attributes:
        class_name: the original class (``Generator``, ``Discriminator``, ``MappingNetwork`` ...).
        state: its ``__dict__`` as pickled (``_parameters``, ``_buffers``, ``_modules``, ``_init_kwargs``, ...).
        module_src_length: characters of embedded source code that were ignored (never run).
    """

    class_name: str
    state: dict[str, Any]
    module_src_length: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def state_dict(self, prefix: str = "", _depth: int = 0) -> dict[str, torch.Tensor]:
        """Flattened ``{dotted name: tensor}`` of parameters and persistent buffers, like ``nn.Module.state_dict``.

        Raises:
            CheckpointError: a non-tensor parameter, an unknown sub-module type, malformed module state, or
                modules nested deeper than 16 (a cycle).
        """
        if _depth > 16:
            raise CheckpointError(f"{prefix or 'network'}: sub-modules nested deeper than 16 (a cycle?)")
        out: dict[str, torch.Tensor] = {}
        skip = self.state.get("_non_persistent_buffers_set") or ()
        if not isinstance(skip, set | frozenset | list | tuple):
            raise CheckpointError(f"{prefix}_non_persistent_buffers_set: malformed module state")
        for kind in ("_parameters", "_buffers", "_modules"):
            if not isinstance(self.state.get(kind) or {}, dict):
                raise CheckpointError(f"{prefix}{kind}: malformed module state (expected a dict)")
        for kind in ("_parameters", "_buffers"):
            for name, t in (self.state.get(kind) or {}).items():
                if t is None or (kind == "_buffers" and name in skip):
                    continue
                if not isinstance(t, torch.Tensor):
                    raise CheckpointError(f"{prefix}{name}: expected a tensor in the pickle, got {type(t).__name__}")
                out[f"{prefix}{name}"] = t.detach()
        for name, child in (self.state.get("_modules") or {}).items():
            if child is None:
                continue
            if not isinstance(child, PersistentModule):
                raise CheckpointError(f"{prefix}{name}: unsupported sub-module type {type(child).__name__}")
            out.update(child.state_dict(f"{prefix}{name}.", _depth + 1))
        return out

    @property
    def init_kwargs(self) -> dict[str, Any]:
        """The constructor keyword arguments recorded by ``torch_utils.persistence`` (empty if absent)."""
        kw = self.state.get("_init_kwargs") or {}
        return dict(kw) if isinstance(kw, dict) else {}


def _reconstruct_persistent_obj(meta: Any) -> PersistentModule:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise safe_pickle.PickleRefusedError("a torch_utils.persistence record is not a plain class record; refused")
    src = meta.get("module_src") or ""
    return PersistentModule(class_name=str(meta.get("class_name"))[:200], state=meta["state"],
                            module_src_length=len(src) if isinstance(src, str) else 0)


_STORAGE_GLOBALS = checkpoint.torch_globals()


def _load_storage_bytes(data: Any) -> checkpoint.TensorStorage:
    """Stand-in for ``torch.storage._load_from_bytes``: the legacy ``torch.save`` stream of one storage,
    read with every size checked (:func:`latentstudio.io.checkpoint.read_legacy_torch`)."""
    if not isinstance(data, bytes | bytearray):
        raise safe_pickle.MalformedPickleError("a tensor storage record does not hold bytes")
    storage = checkpoint.read_legacy_torch(data, _STORAGE_GLOBALS, source="a tensor storage",
                                           malformed=safe_pickle.MalformedPickleError)
    if not isinstance(storage, checkpoint.TensorStorage):
        raise safe_pickle.MalformedPickleError("a tensor storage record does not hold a storage")
    return storage


_COMMON_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
    **safe_pickle.numpy_globals(dtype=safe_pickle.plain_dtype),  # plain numeric arrays, dtypes and scalars
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("dnnlib", "EasyDict"): _EasyDict,
}

_TF_GLOBALS = {**_COMMON_GLOBALS, ("dnnlib.tflib.network", "Network"): TFNetwork}

_TORCH_GLOBALS = {
    **_COMMON_GLOBALS,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): checkpoint.rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): checkpoint.rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): checkpoint.rebuild_parameter,
}

_ROSINALITY_GLOBALS = {**_COMMON_GLOBALS, **_STORAGE_GLOBALS, ("argparse", "Namespace"): argparse.Namespace}


def _refused_global(path: Path) -> Callable[[str, str], str]:
    def message(module: str, name: str) -> str:
        return (f"{path}: refused to load: the pickle references {module}.{name}, which is not part of "
                "an official StyleGAN2 weights file and could run code when unpickled. Nothing was executed. "
                "Only TensorFlow StyleGAN2, stylegan2-ada-pytorch/stylegan3 .pkl and rosinality .pt files are "
                "accepted.")

    return message


def _first_line(exc: BaseException, limit: int = 160) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:limit]}" if text else type(exc).__name__


def _unpickle(path: Path, allowed: dict) -> Any:
    try:
        return safe_pickle.load(path, allowed, error=UnsafePickleError, refusal=_refused_global(path),
                                malformed=CheckpointError)
    except LatentStudioError:
        raise
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RuntimeError, MemoryError, RecursionError, OverflowError) as exc:
        raise CheckpointError(f"{path} is not a readable StyleGAN2 pickle ({_first_line(exc)})") from None


def read_tf_pickle(path: str | Path) -> dict[str, TFNetwork]:
    """The networks of an original TensorFlow StyleGAN2 pickle: ``{"G": ..., "D": ..., "Gs": ...}``.

    Raises:
        UnsafePickleError: the pickle references anything but Network states, dicts and numpy arrays.
        CheckpointError: unreadable file, or not a ``(G, D, Gs)`` tuple of Networks.
    """
    path = Path(path)
    obj = _unpickle(path, _TF_GLOBALS)
    if not (isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(o, TFNetwork) for o in obj)):
        raise CheckpointError(f"{path}: expected a pickled (G, D, Gs) tuple of TensorFlow networks, "
                              f"got {type(obj).__name__}")
    return dict(zip(("G", "D", "Gs"), obj, strict=True))


def read_pytorch_pickle(path: str | Path) -> dict[str, PersistentModule]:
    """The networks of a stylegan2-ada-pytorch / stylegan3 pickle (``G``, ``D``, ``G_ema`` when present).

    Raises:
        UnsafePickleError: anything but persistence records, containers, tensors and arrays.
        CheckpointError: unreadable file or no networks in it.
    """
    path = Path(path)
    obj = _unpickle(path, _TORCH_GLOBALS)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a pickled dict of networks (G, D, G_ema), got {type(obj).__name__}")
    nets = {k: v for k, v in obj.items() if isinstance(v, PersistentModule)}
    if not nets:
        raise CheckpointError(f"{path}: the pickle holds no networks (keys: {sorted(map(str, obj))})")
    return nets


def read_rosinality(path: str | Path) -> dict[str, Any]:
    """A rosinality/stylegan2-pytorch ``.pt`` checkpoint (``torch.save`` zip or legacy file), read without
    ``torch.load`` and with every size checked (:func:`latentstudio.io.checkpoint.read_torch_file`).

    Raises:
        UnsafePickleError: the file holds anything beyond tensors and plain data.
        CheckpointError: unreadable, or no ``g_ema`` / ``g`` state dict.
    """
    path = Path(path)
    try:
        ckpt = checkpoint.read_torch_file(path, _ROSINALITY_GLOBALS, error=UnsafePickleError,
                                          refusal=_refused_global(path), malformed=CheckpointError)
    except LatentStudioError:
        raise
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RuntimeError, MemoryError, RecursionError, OverflowError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path} is not a readable torch checkpoint ({_first_line(exc)})") from None
    if not isinstance(ckpt, dict) or not any(k in ckpt for k in ("g_ema", "g")):
        keys = sorted(map(str, ckpt))[:12] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: not a rosinality StyleGAN2 checkpoint (expected 'g_ema' or 'g'; found {keys})")
    for key in ("g_ema", "g", "d"):
        if key in ckpt and not (isinstance(ckpt[key], dict) and all(isinstance(k, str) for k in ckpt[key])):
            raise CheckpointError(f"{path}: {key!r} is not a state dict (field: {key})")
    return ckpt


# --------------------------------------------------------------------------------------------------
# Source layouts -> ours


#: Memory a conversion may fill with tensors: this many times the file's size, plus :data:`_BUDGET_BASE`.
#: Real files need about 1x (float32) or 2x (float16); tensors that overlap in their storage (stride-0
#: views) could otherwise turn a small file into any amount of memory.
BUDGET_FACTOR = 4
_BUDGET_BASE = 256 << 20
_budget: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("stylegan2_convert_budget", default=None)


def _spend(nbytes: int, what: str) -> None:
    left = _budget.get()
    if left is None:
        return
    left[0] -= nbytes
    if left[0] < 0:
        raise CheckpointError(f"{what} would need more memory than {BUDGET_FACTOR}x the file's size (field: tensor "
                              "sizes); its tensors overlap in their storages or the file is corrupt")


def _t(a: Any) -> torch.Tensor:
    _spend(4 * (a.size if isinstance(a, np.ndarray) else torch.as_tensor(a).numel()), "the converted network")
    if isinstance(a, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(a).astype(np.float32, copy=False))
    return torch.as_tensor(a).detach().to(torch.float32).clone()


def _take(src: dict[str, Any], key: str, used: set[str], what: str, ndim: int | None = None,
          numel: int | None = None) -> Any:
    """``src[key]``, checked to be a non-empty real numeric array (``ndim`` dimensions / ``numel`` elements
    when given), so that the layout transforms below cannot fail on it.

    Raises:
        CheckpointError: missing, not a numeric array, empty, or another number of dimensions (named).
    """
    if key not in src:
        raise CheckpointError(f"{what}: tensor {key!r} is missing from the source file")
    used.add(key)
    v = src[key]
    if isinstance(v, np.generic):
        v = np.asarray(v)
    if isinstance(v, np.ndarray):
        ok = v.dtype.kind in "fiub"
    elif isinstance(v, torch.Tensor):
        ok = v.dtype.is_floating_point or v.dtype in _INT_DTYPES
    else:
        ok = False
    if not ok:
        kind = f"{v.dtype}" if isinstance(v, np.ndarray | torch.Tensor) else type(v).__name__
        raise CheckpointError(f"{what}: tensor {key!r} holds {kind}, not real numbers")
    shape = list(v.shape)
    if ndim is not None and len(shape) != ndim:
        raise CheckpointError(f"{what}: tensor {key!r} has shape {shape}; a {ndim}-D tensor is expected there")
    if math.prod(shape) == 0 or (numel is not None and math.prod(shape) != numel):
        raise CheckpointError(f"{what}: tensor {key!r} has shape {shape}, which cannot hold "
                              f"{'this tensor' if numel is None else f'{numel} value(s)'}")
    return v


_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool)


def _resolutions(keys, pattern: str) -> list[int]:
    out = sorted({int(m.group(1)) for k in keys if (m := re.match(pattern, k))})
    if not out:
        raise CheckpointError(f"no layers matching {pattern!r}: not a StyleGAN2 network")
    return out


def tf_generator_state(net: TFNetwork) -> dict[str, torch.Tensor]:
    """TensorFlow ``Gs``/``G`` variables -> our generator state dict (see the module docstring for transforms).

    Raises:
        CheckpointError: a missing variable, an unsupported architecture (resnet generator,
            conditional) or variables left unmapped.
    """
    tf = net.all_variables()
    used: set[str] = set()
    what = f"TF generator {net.name!r}"
    if any(k.startswith(("mapping/LabelConcat", "mapping/LabelEmbed")) for k in tf):
        raise CheckpointError(f"{what} is class-conditional; only unconditional StyleGAN2 networks are supported")
    if any("/Skip/" in k for k in tf if k.startswith("synthesis/")):
        raise CheckpointError(f"{what} uses the resnet generator architecture; only the skip generator "
                              "(config-e/f, the published networks) is supported")
    out: dict[str, torch.Tensor] = {}
    n_map = len(_resolutions(tf, r"mapping/Dense(\d+)/weight"))
    for i in range(n_map):
        out[f"mapping.fc{i}.weight"] = _t(_take(tf, f"mapping/Dense{i}/weight", used, what, 2)).t()
        out[f"mapping.fc{i}.bias"] = _t(_take(tf, f"mapping/Dense{i}/bias", used, what))
    out["mapping.w_avg"] = _t(_take(tf, "dlatent_avg", used, what))
    res = _resolutions(tf, r"synthesis/(\d+)x\1/")

    def layer(dst: str, src: str, noise: str | None, flip: bool = False) -> None:
        w = _t(_take(tf, f"{src}/weight", used, what, 4))
        if flip:
            w = w.flip([0, 1])
        out[f"{dst}.weight"] = w.permute(3, 2, 0, 1).contiguous()
        out[f"{dst}.bias"] = _t(_take(tf, f"{src}/bias", used, what))
        out[f"{dst}.affine.weight"] = _t(_take(tf, f"{src}/mod_weight", used, what, 2)).t().contiguous()
        out[f"{dst}.affine.bias"] = _t(_take(tf, f"{src}/mod_bias", used, what)) + 1
        if noise is not None:
            out[f"{dst}.noise_strength"] = _t(_take(tf, f"{src}/noise_strength", used, what, numel=1)).reshape([])
            out[f"{dst}.noise_const"] = _t(_take(tf, f"synthesis/{noise}", used, what, 4))[0, 0]

    out["synthesis.b4.const"] = _t(_take(tf, "synthesis/4x4/Const/const", used, what, 4))[0]
    layer("synthesis.b4.conv1", "synthesis/4x4/Conv", "noise0")
    layer("synthesis.b4.torgb", "synthesis/4x4/ToRGB", None)
    for r in res[1:]:
        k = int(math.log2(r))
        layer(f"synthesis.b{r}.conv0", f"synthesis/{r}x{r}/Conv0_up", f"noise{2 * k - 5}", flip=True)
        layer(f"synthesis.b{r}.conv1", f"synthesis/{r}x{r}/Conv1", f"noise{2 * k - 4}")
        layer(f"synthesis.b{r}.torgb", f"synthesis/{r}x{r}/ToRGB", None)
    _check_all_used(tf, used, what, ignore=r"(^|/)lod$")
    return out


def tf_discriminator_state(net: TFNetwork) -> dict[str, torch.Tensor]:
    """TensorFlow ``D`` variables -> our discriminator state dict (resnet D).

    Raises:
        CheckpointError: missing variables, a conditional or non-resnet discriminator, unmapped variables.
    """
    tf = net.all_variables()
    used: set[str] = set()
    what = f"TF discriminator {net.name!r}"
    if "Output/weight" in tf and getattr(tf["Output/weight"], "shape", (1,))[-1:] != (1,):
        raise CheckpointError(f"{what} is class-conditional; only unconditional networks are supported")
    out: dict[str, torch.Tensor] = {}

    def conv(dst: str, src: str, bias: bool = True) -> None:
        out[f"{dst}.weight"] = _t(_take(tf, f"{src}/weight", used, what, 4)).permute(3, 2, 0, 1).contiguous()
        if bias:
            out[f"{dst}.bias"] = _t(_take(tf, f"{src}/bias", used, what))

    def dense(dst: str, src: str) -> None:
        out[f"{dst}.weight"] = _t(_take(tf, f"{src}/weight", used, what, 2)).t().contiguous()
        out[f"{dst}.bias"] = _t(_take(tf, f"{src}/bias", used, what))

    res = [r for r in _resolutions(tf, r"(\d+)x\1/") if r > 4]
    top = max(res)
    if any(f"{r}x{r}/FromRGB/weight" in tf for r in res if r != top):
        raise CheckpointError(f"{what} uses the skip discriminator architecture; only resnet (config-e/f) is supported")
    conv(f"b{top}.fromrgb", f"{top}x{top}/FromRGB")
    for r in res:
        conv(f"b{r}.conv0", f"{r}x{r}/Conv0")
        conv(f"b{r}.conv1", f"{r}x{r}/Conv1_down")
        conv(f"b{r}.skip", f"{r}x{r}/Skip", bias=False)
    conv("b4.conv", "4x4/Conv")
    dense("b4.fc", "4x4/Dense0")
    dense("b4.out", "Output")
    _check_all_used(tf, used, what, ignore=r"(^|/)lod$")
    return out


def rosinality_generator_state(sd: dict[str, torch.Tensor], latent_avg: torch.Tensor | None):
    """rosinality ``g_ema`` state dict -> our generator state dict (``mapping.w_avg`` from ``latent_avg`` when
    given; otherwise it is left out and estimated by the caller).

    Raises:
        CheckpointError: missing tensors or tensors left unmapped.
    """
    used: set[str] = set()
    what = "rosinality generator"
    out: dict[str, torch.Tensor] = {}
    n_map = len(_resolutions(sd, r"style\.(\d+)\.weight"))
    for i in range(n_map):
        out[f"mapping.fc{i}.weight"] = _t(_take(sd, f"style.{i + 1}.weight", used, what))
        out[f"mapping.fc{i}.bias"] = _t(_take(sd, f"style.{i + 1}.bias", used, what))
    if latent_avg is not None:
        out["mapping.w_avg"] = _t(_take({"latent_avg": latent_avg}, "latent_avg", set(), what)).reshape(-1)

    def layer(dst: str, src: str, noise: str | None) -> None:
        out[f"{dst}.weight"] = _t(_take(sd, f"{src}.conv.weight", used, what, 5))[0]
        out[f"{dst}.affine.weight"] = _t(_take(sd, f"{src}.conv.modulation.weight", used, what))
        out[f"{dst}.affine.bias"] = _t(_take(sd, f"{src}.conv.modulation.bias", used, what))
        if noise is None:  # toRGB
            out[f"{dst}.bias"] = _t(_take(sd, f"{src}.bias", used, what)).reshape(-1)
        else:
            out[f"{dst}.bias"] = _t(_take(sd, f"{src}.activate.bias", used, what))
            out[f"{dst}.noise_strength"] = _t(_take(sd, f"{src}.noise.weight", used, what, numel=1)).reshape([])
            out[f"{dst}.noise_const"] = _t(_take(sd, f"noises.{noise}", used, what, 4))[0, 0]

    out["synthesis.b4.const"] = _t(_take(sd, "input.input", used, what, 4))[0]
    layer("synthesis.b4.conv1", "conv1", "noise_0")
    layer("synthesis.b4.torgb", "to_rgb1", None)
    n_up = len(_resolutions(sd, r"to_rgbs\.(\d+)\.conv\.weight"))
    for j in range(n_up):
        r = 2 ** (j + 3)
        layer(f"synthesis.b{r}.conv0", f"convs.{2 * j}", f"noise_{2 * j + 1}")
        layer(f"synthesis.b{r}.conv1", f"convs.{2 * j + 1}", f"noise_{2 * j + 2}")
        layer(f"synthesis.b{r}.torgb", f"to_rgbs.{j}", None)
    _check_all_used(sd, used, what, ignore=r"(\.kernel$)")
    return out


def rosinality_discriminator_state(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """rosinality ``d`` state dict -> our discriminator state dict.

    Raises:
        CheckpointError: missing tensors or tensors left unmapped.
    """
    used: set[str] = set()
    what = "rosinality discriminator"
    out: dict[str, torch.Tensor] = {}

    def put(dst: str, src: str) -> None:
        out[dst] = _t(_take(sd, src, used, what))

    n_blocks = len(_resolutions(sd, r"convs\.(\d+)\.conv1\.0\.weight"))
    top = 2 ** (n_blocks + 2)
    put(f"b{top}.fromrgb.weight", "convs.0.0.weight")
    put(f"b{top}.fromrgb.bias", "convs.0.1.bias")
    for i in range(n_blocks):
        r = top >> i
        put(f"b{r}.conv0.weight", f"convs.{i + 1}.conv1.0.weight")
        put(f"b{r}.conv0.bias", f"convs.{i + 1}.conv1.1.bias")
        put(f"b{r}.conv1.weight", f"convs.{i + 1}.conv2.1.weight")
        put(f"b{r}.conv1.bias", f"convs.{i + 1}.conv2.2.bias")
        put(f"b{r}.skip.weight", f"convs.{i + 1}.skip.1.weight")
    put("b4.conv.weight", "final_conv.0.weight")
    put("b4.conv.bias", "final_conv.1.bias")
    put("b4.fc.weight", "final_linear.0.weight")
    put("b4.fc.bias", "final_linear.0.bias")
    put("b4.out.weight", "final_linear.1.weight")
    put("b4.out.bias", "final_linear.1.bias")
    _check_all_used(sd, used, what, ignore=r"(\.kernel$)")
    return out


def _check_all_used(src: dict, used: set[str], what: str, ignore: str) -> None:
    left = sorted(k for k in src if k not in used and not re.search(ignore, k))
    if left:
        shown = ", ".join(left[:8]) + (" ..." if len(left) > 8 else "")
        raise CheckpointError(f"{what}: {len(left)} tensor(s) have no place in the StyleGAN2 layout: {shown}")


# --------------------------------------------------------------------------------------------------
# Config inference and assembly


def infer_config(g_state: dict[str, torch.Tensor], **overrides: Any) -> StyleGAN2Config:
    """The :class:`StyleGAN2Config` whose generator has exactly the shapes of ``g_state`` (our layout).

    ``overrides`` set fields that shapes cannot tell (``conv_clamp``, ``mbstd_group_size``, ...).

    Raises:
        CheckpointError: shapes that no ``channels = min(channel_base // res, channel_max)`` rule explains.
    """
    res = _resolutions(g_state, r"synthesis\.b(\d+)\.conv1\.weight")
    if max(res) > 1 << 16:
        raise CheckpointError(f"generator layer synthesis.b{max(res)} is beyond any supported resolution")
    need = ["mapping.fc0.weight", *(f"synthesis.b{r}.conv1.weight" for r in res),
            f"synthesis.b{max(res)}.torgb.weight"]
    for key in need:
        t = g_state.get(key)
        if not isinstance(t, torch.Tensor) or t.ndim not in (2, 4):
            raise CheckpointError(f"generator tensor {key!r} is missing or has the wrong number of dimensions")
    ch = {r: int(g_state[f"synthesis.b{r}.conv1.weight"].shape[0]) for r in res}
    fc0 = g_state["mapping.fc0.weight"]
    embed = g_state.get("mapping.embed.weight")
    c_dim = embed_features = 0
    if embed is not None:
        if embed.ndim != 2 or embed.shape[0] != fc0.shape[0] or embed.shape[0] >= fc0.shape[1]:
            raise CheckpointError(f"label embedding mapping.embed.weight has shape {list(embed.shape)}; with mapping.fc0 "
                                  f"{list(fc0.shape)} it must be [w_dim, c_dim] = [{fc0.shape[0]}, c_dim] (other "
                                  "embed_features are not supported)")
        c_dim, embed_features = int(embed.shape[1]), int(embed.shape[0])
    channel_max = max(ch.values())
    below = [c * r for r, c in ch.items() if c < channel_max]
    channel_base = max(below) if below else channel_max * max(res)
    kwargs = {
        "resolution": max(res),
        "img_channels": int(g_state[f"synthesis.b{max(res)}.torgb.weight"].shape[0]),
        "z_dim": int(fc0.shape[1]) - embed_features,
        "w_dim": int(fc0.shape[0]),
        "mapping_layers": len(_resolutions(g_state, r"mapping\.fc(\d+)\.weight")),
        "channel_base": int(channel_base),
        "channel_max": int(channel_max),
        "c_dim": c_dim,
    }
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    try:
        config = StyleGAN2Config(**kwargs)
    except (ConfigError, TypeError, ValueError) as exc:
        raise CheckpointError(f"the weights describe an unsupported StyleGAN2 configuration: {exc}") from None
    bad = {r: (c, config.channels(r)) for r, c in ch.items() if config.channels(r) != c}
    if bad:
        raise CheckpointError(f"channel counts {ch} do not follow min(channel_base // res, channel_max) "
                              f"(mismatch at {bad}); not a standard StyleGAN2 layout")
    return config


@dataclass
class ConvertedModel:
    """Result of :func:`convert`: networks in our layout plus provenance."""

    generator: Generator
    discriminator: Discriminator | None
    source_format: str
    info: dict[str, Any]


def _build(config: StyleGAN2Config, g_state, d_state, what: str) -> tuple[Generator, Discriminator | None]:
    """The networks of ``config`` holding the converted tensors. Their layout is checked on the ``meta``
    device first (no memory), so a file whose shapes imply a huge network is refused before allocating it."""
    G = _fit(Generator, config, g_state, f"{what} generator")
    D = _fit(Discriminator, config, d_state, f"{what} discriminator") if d_state is not None else None
    return G.eval(), (D.eval() if D is not None else None)


def _fit(cls: type[torch.nn.Module], config: StyleGAN2Config, state: dict[str, torch.Tensor], what: str):
    with torch.device("meta"):
        meta = cls(config).state_dict()
    shapes = {k: tuple(v.shape) for k, v in meta.items()}
    _check_layout(shapes, state, what, buffers_optional=("resample_filter",))
    _spend(sum(v.numel() * v.element_size() for v in meta.values()), what)
    model = cls(config)
    own = model.state_dict()
    model.load_state_dict({**own, **{k: v.to(own[k].dtype) for k, v in state.items()}}, strict=True)
    return model


def _check_layout(own: dict[str, tuple[int, ...]], state: dict[str, torch.Tensor], what: str,
                  buffers_optional=()) -> None:
    missing = [k for k in own if k not in state and not k.endswith(buffers_optional)]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {list(state[k].shape)} vs {list(own[k])}" for k in state
             if k in own and tuple(state[k].shape) != own[k]]
    if missing or unexpected or wrong:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if items:
                parts.append(f"{label}: {', '.join(items[:6])}{' ...' if len(items) > 6 else ''}")
        raise CheckpointError(f"{what}: the converted tensors do not fit the StyleGAN2 layout ({'; '.join(parts)})")
    bad = [k for k, v in state.items() if v.is_complex() or not (v.dtype.is_floating_point or v.dtype in _INT_DTYPES)]
    if bad:
        raise CheckpointError(f"{what}: tensor {bad[0]!r} holds {state[bad[0]].dtype}, not real numbers")


def detect_format(path: str | Path) -> str:
    """``"tf"``, ``"pytorch"`` or ``"rosinality"`` from the file's contents (zip = torch.save; pickle globals).

    Raises:
        CheckpointError: not a file, or neither a zip nor a pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist or is not a file")
    head = _head(path)
    if zipfile.is_zipfile(path) or head.startswith(b"PK\x03\x04"):  # torch.save zip (maybe truncated)
        return "rosinality"
    if head.startswith(checkpoint.LEGACY_HEAD):  # torch.save without zip (torch < 1.6)
        return "rosinality"
    if b"dnnlib.tflib.network" in head:
        return "tf"
    if b"torch_utils.persistence" in head or b"torch_utils" in head:
        return "pytorch"
    if head[:1] == b"\x80":
        # a pickle whose first global is something else: let the pytorch reader name the refused global
        return "pytorch"
    what = "an empty file" if not head else "neither a pickle nor a torch checkpoint"
    raise CheckpointError(f"{path}: unknown format ({what}); pass --format with one of {', '.join(FORMATS)}")


def _head(path: Path, n: int = 1 << 16) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def convert(path: str | Path, fmt: str | None = None, *, network: str = "ema") -> ConvertedModel:
    """Read official StyleGAN2 weights safely and rebuild them as our networks.

    Args:
        path: ``.pkl`` (TensorFlow or stylegan2-ada-pytorch/stylegan3) or rosinality ``.pt``.
        fmt: ``tf``, ``pytorch``, ``rosinality`` or None (detected).
        network: ``ema`` (``Gs`` / ``G_ema`` / ``g_ema``, the one to sample from) or ``raw`` (``G`` / ``g``).

    Returns:
        :class:`ConvertedModel` (discriminator None when the file has none, or when it is the label-projection
        discriminator of a class-conditional snapshot, which is not converted: a warning says so).

    Raises:
        UnsafePickleError: the file could run code when unpickled (nothing was executed).
        CheckpointError: unreadable or malformed file, unsupported architecture (TF conditional, StyleGAN3,
            resnet G), or tensors that do not fit; one line that names the file and the field.
    """
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise CheckpointError(f"unknown weights format {fmt!r}; use one of {', '.join(FORMATS)}")
    if network not in ("ema", "raw"):
        raise CheckpointError(f"network must be 'ema' or 'raw', got {network!r}")
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist or is not a file")
    token = _budget.set([BUDGET_FACTOR * path.stat().st_size + _BUDGET_BASE])
    try:
        return _convert(path, fmt, network)
    except LatentStudioError as exc:
        message = " ".join(str(exc).split())
        if str(path) in message:
            raise
        raise type(exc)(f"{path}: {message}") from None
    except Exception as exc:  # noqa: BLE001 - a malformed file can break any step; the user gets one line
        raise CheckpointError(f"{path}: not a readable StyleGAN2 weights file ({_first_line(exc)})") from None
    finally:
        _budget.reset(token)


def _kwargs(obj: Any, *keys: str) -> dict[str, Any]:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return dict(obj) if isinstance(obj, dict) else {}


def _convert(path: Path, fmt: str, network: str) -> ConvertedModel:
    info: dict[str, Any] = {"source": str(path), "format": fmt, "network": network}
    estimate_w_avg = False
    if fmt == "tf":
        nets = read_tf_pickle(path)
        g_net = nets["Gs" if network == "ema" else "G"]
        g_state = tf_generator_state(g_net)
        d_state = tf_discriminator_state(nets["D"])
        kw = g_net.static_kwargs
        dkw = nets["D"].static_kwargs
        config = infer_config(g_state, mbstd_group_size=dkw.get("mbstd_group_size"),
                              mbstd_num_channels=dkw.get("mbstd_num_features"),
                              mapping_lr_multiplier=kw.get("mapping_lrmul"),
                              w_avg_beta=kw.get("dlatent_avg_beta"))
        info["tf_networks"] = {k: v.name for k, v in nets.items()}
    elif fmt == "pytorch":
        nets = read_pytorch_pickle(path)
        key = "G_ema" if network == "ema" else "G"
        if key not in nets:
            raise CheckpointError(f"{path} has no {key!r} network (found {sorted(nets)[:8]})")
        g = nets[key]
        g_state = g.state_dict()
        if any(k.startswith("synthesis.input.") for k in g_state) or not any(k.startswith("synthesis.b4.") for k in g_state):
            raise CheckpointError(
                f"{path}: {key} is a StyleGAN3 (alias-free) generator, which has a different architecture "
                "(Fourier-feature input, L0..L14 layers); only StyleGAN2 networks can be converted "
                "(stylegan3-repository pickles of StyleGAN2 configs convert fine)"
            )
        conditional = any(k.startswith("mapping.embed.") for k in g_state)
        d_state = nets["D"].state_dict() if "D" in nets else None
        if d_state is not None and (conditional or any(k.startswith("mapping.") for k in d_state)):
            d_state = None
            info["discriminator"] = "not converted: the label-projection discriminator of a class-conditional network"
            warnings.warn(f"{path}: class-conditional snapshot: the generator is converted with its label embedding; "
                          "its discriminator (label projection) is not", stacklevel=3)
        ikw = g.init_kwargs
        skw, mkw = _kwargs(ikw, "synthesis_kwargs"), _kwargs(ikw, "mapping_kwargs")
        ekw = _kwargs(nets["D"].init_kwargs, "epilogue_kwargs") if "D" in nets else {}
        if skw.get("architecture", "skip") != "skip":
            raise CheckpointError(f"{path}: generator architecture {skw['architecture']!r:.40}; only 'skip' is "
                                  "supported (field: synthesis_kwargs.architecture)")
        config = infer_config(g_state, conv_clamp=skw.get("conv_clamp"),
                              mapping_lr_multiplier=mkw.get("lr_multiplier"), w_avg_beta=mkw.get("w_avg_beta"),
                              mbstd_group_size=ekw.get("mbstd_group_size"),
                              mbstd_num_channels=ekw.get("mbstd_num_channels"))
        c_dim = ikw.get("c_dim")
        if c_dim is not None and c_dim != config.c_dim:
            raise CheckpointError(f"{path}: {key} records c_dim={c_dim!r:.20} but its label embedding has "
                                  f"{config.c_dim} inputs (field: c_dim)")
        info["embedded_source_chars_ignored"] = sum(n.module_src_length for n in nets.values())
    else:
        ckpt = read_rosinality(path)
        key = "g_ema" if network == "ema" and "g_ema" in ckpt else "g"
        if key not in ckpt:
            raise CheckpointError(f"{path} has no {key!r} state dict")
        latent_avg = ckpt.get("latent_avg")
        g_state = rosinality_generator_state(ckpt[key], latent_avg)
        d_state = rosinality_discriminator_state(ckpt["d"]) if "d" in ckpt else None
        config = infer_config(g_state)
        estimate_w_avg = "mapping.w_avg" not in g_state
        if estimate_w_avg:
            g_state["mapping.w_avg"] = torch.zeros(config.w_dim)  # replaced below
        info["w_avg"] = "latent_avg from the file" if latent_avg is not None else "estimated from 10000 z (seed 0)"
    G, D = _build(config, g_state, d_state, fmt)
    if fmt == "rosinality" and estimate_w_avg:
        G.estimate_w_avg()
    if config.c_dim:
        info["classes"] = config.c_dim
    info["tensors"] = len(g_state) + (len(d_state) if d_state else 0)
    return ConvertedModel(generator=G, discriminator=D, source_format=fmt, info=info)


def convert_to_folder(
    path: str | Path,
    out: str | Path,
    fmt: str | None = None,
    *,
    network: str = "ema",
    include_discriminator: bool = True,
    overwrite: bool = False,
) -> Path:
    """:func:`convert` ``path`` and write a model folder (``config.json`` + ``model.safetensors`` [+ D]).

    Raises:
        UnsafePickleError, CheckpointError: see :func:`convert`. RunExistsError: ``out`` exists.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise RunExistsError(f"{out} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    result = convert(path, fmt, network=network)
    D = result.discriminator if include_discriminator else None
    return save_model(out, result.generator, D, meta={"converted_from": result.info}, overwrite=overwrite)
