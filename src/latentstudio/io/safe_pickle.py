"""Restricted unpickling: rebuild plain data from a pickle without ever importing or calling anything else.

A pickle names the globals (``module.name``) it needs; the standard unpickler imports and calls
them, so a hostile file can run any code (``os.system``). :class:`RestrictedUnpickler` resolves a
global only through an explicit allow-list given by the caller, ``{(module, name): callable}``
(usually safe stand-ins, not the real objects), and refuses everything else with a one-line error
naming the file and the refused global, before anything is executed. Persistent ids are refused too.

The numpy helpers below (:func:`numpy_globals` and the reconstructors it maps to) rebuild
``numpy.ndarray`` / dtype / scalar records under both the numpy 1 (``numpy.core``) and numpy 2
(``numpy._core``) module names.

Example::

    allowed = {**numpy_globals(dtype=plain_dtype), ("collections", "OrderedDict"): collections.OrderedDict}
    obj = load(path, allowed, error=MyError)
"""

from __future__ import annotations

import functools
import io
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from latentstudio.errors import LatentStudioError

__all__ = [
    "Allowed",
    "PickleRefusedError",
    "RestrictedUnpickler",
    "latin1_bytes",
    "load",
    "numpy_frombuffer",
    "numpy_globals",
    "numpy_reconstruct",
    "numpy_scalar",
    "plain_dtype",
]

Allowed = Mapping[tuple[str, str], Callable[..., Any]]
"""An allow-list: ``(module, name)`` as written in the pickle -> the callable or class to use for it."""


class PickleRefusedError(LatentStudioError):
    """A pickle needed something outside the allow-list (it could run code when loaded); nothing was run."""


class RestrictedUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` that resolves only the globals in ``allowed``.

    Args:
        file: a binary file object positioned at the pickle.
        allowed: ``{(module, name): callable}``; every other global is refused.
        source: the file (or member) name used in error messages.
        error: exception type (or factory taking one message) raised for every refusal.
        refusal: ``(module, name) -> message`` for a refused global; default
            ``"<source>: refused to unpickle <module>.<name>: not an allowed global (nothing was executed)"``.
        encoding, errors: as :class:`pickle.Unpickler` (``"latin1"`` reads numpy pickles made by Python 2).

    Raises (from :meth:`load`):
        ``error``: a refused global, a persistent id, or a refusal raised by an allowed callable
            (:class:`PickleRefusedError`, re-raised as ``error`` with ``source`` prepended).
    """

    def __init__(
        self,
        file: IO[bytes],
        allowed: Allowed,
        *,
        source: str,
        error: Callable[[str], BaseException] = PickleRefusedError,
        refusal: Callable[[str, str], str] | None = None,
        encoding: str = "ASCII",
        errors: str = "strict",
    ) -> None:
        super().__init__(file, encoding=encoding, errors=errors)
        self.allowed = allowed
        self.source = source
        self.error = error
        self.refusal = refusal
        self._raised: BaseException | None = None

    def _refuse(self, message: str) -> BaseException:
        self._raised = self.error(message)
        return self._raised

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except (KeyError, TypeError):
            pass
        if self.refusal is not None:
            message = self.refusal(module, name)
        else:
            message = f"{self.source}: refused to unpickle {module}.{name}: not an allowed global (nothing was executed)"
        raise self._refuse(message) from None

    def persistent_load(self, pid: Any) -> Any:
        raise self._refuse(f"{self.source}: refused to load: the pickle uses persistent ids ({pid!r:.60})")

    def load(self) -> Any:
        try:
            return super().load()
        except PickleRefusedError as exc:
            if exc is self._raised:
                raise
            raise self._refuse(f"{self.source}: {exc}") from None


def load(
    file: str | Path | bytes | bytearray | IO[bytes],
    allowed: Allowed,
    *,
    source: str | None = None,
    error: Callable[[str], BaseException] = PickleRefusedError,
    refusal: Callable[[str, str], str] | None = None,
    encoding: str = "ASCII",
    errors: str = "strict",
) -> Any:
    """Unpickle one object from a path, bytes or a binary file with :class:`RestrictedUnpickler`.

    Args:
        source: name for messages; default the path (``"pickle"`` for bytes / file objects).
        Other arguments: as :class:`RestrictedUnpickler`.

    Raises:
        ``error``: a refusal (see :class:`RestrictedUnpickler`). FileNotFoundError: a missing path.
        pickle.UnpicklingError, EOFError, ValueError, TypeError ...: a corrupt pickle (callers wrap these).
    """
    kwargs = {"error": error, "refusal": refusal, "encoding": encoding, "errors": errors}
    if isinstance(file, str | Path):
        with open(file, "rb") as f:
            return RestrictedUnpickler(f, allowed, source=source or str(file), **kwargs).load()
    if isinstance(file, bytes | bytearray):
        file = io.BytesIO(bytes(file))
    return RestrictedUnpickler(file, allowed, source=source or "pickle", **kwargs).load()


# ----------------------------------------------------------------------------- numpy reconstructors

_NP_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy(._)core.multiarray._reconstruct
_NP_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]  # numpy(._)core.numeric._frombuffer
_NP_SCALAR = np.float32(1).__reduce__()[0]  # numpy(._)core.multiarray.scalar


def plain_dtype(*args: Any) -> np.dtype:
    """``np.dtype(*args)``, refusing object and structured dtypes (plain numeric / bool / string only).

    Raises:
        PickleRefusedError: the dtype holds Python objects or named fields.
    """
    dt = np.dtype(*args)
    if dt.hasobject or dt.fields is not None:
        raise PickleRefusedError(f"refused numpy dtype {dt!r}: only plain numeric arrays are accepted")
    return dt


def numpy_reconstruct(cls: Any, shape: Any, typecode: Any) -> np.ndarray:
    """Stand-in for ``numpy.core.multiarray._reconstruct``: only a plain ``np.ndarray`` is rebuilt.

    Raises:
        PickleRefusedError: ``cls`` is anything but ``numpy.ndarray`` (e.g. a subclass).
    """
    if cls is not np.ndarray:
        raise PickleRefusedError(f"refused numpy reconstruction of {cls!r}")
    return _NP_RECONSTRUCT(np.ndarray, shape, typecode)


def numpy_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any, *,
                     check: Callable[..., np.dtype] = np.dtype) -> np.ndarray:
    """Stand-in for ``numpy.core.numeric._frombuffer`` (pickle protocol 5 arrays); ``check`` vets the dtype."""
    return _NP_FROMBUFFER(buf, check(dtype), shape, order)


def numpy_scalar(dtype: Any, data: Any = None, *, check: Callable[..., np.dtype] = np.dtype) -> Any:
    """Stand-in for ``numpy.core.multiarray.scalar`` (numpy scalars); ``check`` vets the dtype."""
    return _NP_SCALAR(check(dtype), data) if data is not None else _NP_SCALAR(check(dtype))


def latin1_bytes(text: Any, encoding: Any = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3 pickles at protocol 2 use it for ``bytes`` (``encode(str, "latin1")``);
    refuses any other argument (it could otherwise run an arbitrary codec).

    Raises:
        PickleRefusedError: a non-string or another codec.
    """
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise PickleRefusedError(f"refusing _codecs.encode({type(text).__name__}, {encoding!r}): only the latin1 "
                                 "bytes of protocol-2 pickles are allowed")
    return text.encode("latin1")


def numpy_globals(
    *,
    dtype: Callable[..., np.dtype] = np.dtype,
    scalars: bool = True,
    buffers: bool = True,
) -> dict[tuple[str, str], Callable[..., Any]]:
    """An allow-list for numpy arrays: ``numpy.ndarray``, ``numpy.dtype``, ``_reconstruct`` and the vetted
    ``_codecs.encode`` that protocol-2 pickles written by Python 3 use for the arrays' bytes.

    Args:
        dtype: the constructor used for ``numpy.dtype`` records and to vet the dtypes of scalars and
            buffers; :func:`plain_dtype` refuses object / structured dtypes, ``np.dtype`` allows all.
        scalars: also allow numpy scalars (``multiarray.scalar``).
        buffers: also allow protocol-5 arrays (``numeric._frombuffer``).

    Returns:
        ``{(module, name): callable}`` under both ``numpy.core`` and ``numpy._core`` module names.
    """
    out: dict[tuple[str, str], Callable[..., Any]] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): dtype,
                                                      ("_codecs", "encode"): latin1_bytes}
    for core in ("numpy.core", "numpy._core"):
        out[(f"{core}.multiarray", "_reconstruct")] = numpy_reconstruct
        if scalars:
            out[(f"{core}.multiarray", "scalar")] = functools.partial(numpy_scalar, check=dtype)
        if buffers:
            out[(f"{core}.numeric", "_frombuffer")] = functools.partial(numpy_frombuffer, check=dtype)
    return out
