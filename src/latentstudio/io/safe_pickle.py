"""Restricted unpickling: rebuild plain data from a pickle without ever importing or calling anything else.

A pickle names the globals (``module.name``) it needs; the standard unpickler imports and calls
them, so a hostile file can run any code (``os.system``). :class:`RestrictedUnpickler` resolves a
global only through an explicit allow-list given by the caller, ``{(module, name): callable}``
(usually safe stand-ins, not the real objects), and refuses everything else with a one-line error
naming the file and the refused global, before anything is executed. Persistent ids are refused unless
the caller resolves them (``persistent=``, e.g. the tensor storages of a torch file).

Sizes are checked before anything is allocated: :func:`check_sizes` walks the opcodes of the pickle
and refuses any length field (``BINBYTES8``, ``BINUNICODE``, ``FRAME`` ...) that declares more bytes
than the data holds; the standard unpickler would otherwise allocate what a 20-byte file declares
(a terabyte ``BINBYTES8`` is a ``MemoryError``). :func:`load` reads at most ``max_bytes``
(:data:`MAX_PICKLE_BYTES`) and runs this check first.

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
import pickletools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from latentstudio.errors import LatentStudioError

__all__ = [
    "MAX_PICKLE_BYTES",
    "Allowed",
    "MalformedPickleError",
    "PickleRefusedError",
    "RestrictedUnpickler",
    "check_sizes",
    "latin1_bytes",
    "load",
    "load_at",
    "numpy_frombuffer",
    "numpy_globals",
    "numpy_reconstruct",
    "numpy_scalar",
    "plain_dtype",
]

Allowed = Mapping[tuple[str, str], Callable[..., Any]]
"""An allow-list: ``(module, name)`` as written in the pickle -> the callable or class to use for it."""


#: Largest pickle :func:`load` reads (bytes) unless the caller passes ``max_bytes`` (8 GiB; the largest
#: official StyleGAN2 pickles are about 0.4 GB).
MAX_PICKLE_BYTES = 8 << 30


class PickleRefusedError(LatentStudioError):
    """A pickle needed something outside the allow-list (it could run code when loaded); nothing was run."""


class MalformedPickleError(LatentStudioError):
    """A pickle (or a record it holds) is malformed: truncated, not a pickle, or a declared size beyond the
    data; raised before anything is allocated for it."""


def _op_table() -> dict[int, pickletools.OpcodeInfo]:
    return {ord(op.code): op for op in pickletools.opcodes}


_OPS = _op_table()
# length-prefixed arguments: (width of the length field, signed)
_COUNTED = {pickletools.TAKEN_FROM_ARGUMENT1: (1, False), pickletools.TAKEN_FROM_ARGUMENT4: (4, True),
            pickletools.TAKEN_FROM_ARGUMENT4U: (4, False), pickletools.TAKEN_FROM_ARGUMENT8U: (8, False)}


def check_sizes(
    data: bytes | bytearray,
    *,
    source: str = "pickle",
    start: int = 0,
    error: Callable[[str], BaseException] = MalformedPickleError,
) -> int:
    """Check every length the pickle at ``data[start:]`` declares against the bytes that follow it.

    Walks the opcodes (nothing is unpickled or allocated): each length-prefixed argument (bytes,
    strings, long integers) and each ``FRAME`` must fit in the data, every opcode must be known, and
    the pickle must end with ``STOP``.

    Returns:
        The offset just after the ``STOP`` opcode (the next pickle of a multi-pickle file starts there).

    Raises:
        ``error``: one line naming ``source``, the opcode (the field) and the byte offset.
    """
    end = len(data)
    pos = start
    while True:
        if pos >= end:
            raise error(f"{source}: the pickle ends at byte {end} without its STOP opcode (truncated or not a pickle)")
        at = pos
        op = _OPS.get(data[pos])
        if op is None:
            raise error(f"{source}: byte {at} ({data[pos]:#04x}) is not a pickle opcode (not a pickle, or corrupt)")
        pos += 1
        arg = op.arg
        if arg is not None:
            n = arg.n
            if n >= 0:
                if pos + n > end:
                    raise error(f"{source}: pickle field {op.name} at byte {at} is cut off (truncated)")
                if op.name == "FRAME":
                    frame = int.from_bytes(data[pos:pos + n], "little")
                    if frame > end - pos - n:
                        raise error(f"{source}: pickle field FRAME at byte {at} declares {frame} bytes but only "
                                    f"{end - pos - n} remain (truncated or corrupt)")
                pos += n
            elif n == pickletools.UP_TO_NEWLINE:
                for _ in range(2 if arg.name == "stringnl_noescape_pair" else 1):
                    nl = data.find(b"\n", pos)
                    if nl < 0:
                        raise error(f"{source}: pickle field {op.name} at byte {at} has no end of line (truncated)")
                    pos = nl + 1
            else:
                width, signed = _COUNTED[n]
                if pos + width > end:
                    raise error(f"{source}: pickle field {op.name} at byte {at} is cut off (truncated)")
                length = int.from_bytes(data[pos:pos + width], "little", signed=signed)
                pos += width
                if length < 0 or length > end - pos:
                    raise error(f"{source}: pickle field {op.name} at byte {at} declares {length} bytes but only "
                                f"{end - pos} remain (truncated or corrupt)")
                pos += length
        if op.name == "STOP":
            return pos


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
        persistent: resolves persistent ids (``pid -> object``); None refuses them.
        malformed: exception type (or factory) for a :class:`MalformedPickleError` raised by an allowed
            callable or ``persistent`` (re-raised with ``source`` prepended); default ``error``.

    Raises (from :meth:`load`):
        ``error``: a refused global, a persistent id, or a refusal raised by an allowed callable
            (:class:`PickleRefusedError`, re-raised as ``error`` with ``source`` prepended).
        ``malformed``: see above.
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
        persistent: Callable[[Any], Any] | None = None,
        malformed: Callable[[str], BaseException] | None = None,
    ) -> None:
        super().__init__(file, encoding=encoding, errors=errors)
        self.allowed = allowed
        self.source = source
        self.error = error
        self.refusal = refusal
        self.persistent = persistent
        self.malformed = malformed or error
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
        if self.persistent is not None:
            return self.persistent(pid)
        raise self._refuse(f"{self.source}: refused to load: the pickle uses persistent ids ({pid!r:.60})")

    def load(self) -> Any:
        try:
            return super().load()
        except PickleRefusedError as exc:
            if exc is self._raised:
                raise
            raise self._refuse(f"{self.source}: {exc}") from None
        except MalformedPickleError as exc:
            self._raised = self.malformed(f"{self.source}: {exc}")
            raise self._raised from None


def load(
    file: str | Path | bytes | bytearray | IO[bytes],
    allowed: Allowed,
    *,
    source: str | None = None,
    error: Callable[[str], BaseException] = PickleRefusedError,
    refusal: Callable[[str, str], str] | None = None,
    encoding: str = "ASCII",
    errors: str = "strict",
    persistent: Callable[[Any], Any] | None = None,
    malformed: Callable[[str], BaseException] | None = None,
    max_bytes: int = MAX_PICKLE_BYTES,
) -> Any:
    """Unpickle one object from a path, bytes or a binary file with :class:`RestrictedUnpickler`.

    The whole pickle is read first (at most ``max_bytes``) and its declared sizes are checked
    (:func:`check_sizes`) before the unpickler allocates anything.

    Args:
        source: name for messages; default the path (``"pickle"`` for bytes / file objects).
        max_bytes: largest input accepted (:data:`MAX_PICKLE_BYTES`).
        Other arguments: as :class:`RestrictedUnpickler`.

    Raises:
        ``error``: a refusal (see :class:`RestrictedUnpickler`). ``malformed`` (default ``error``): a size
            beyond the data or ``max_bytes``, an unknown opcode, a missing STOP. FileNotFoundError: a
            missing path. pickle.UnpicklingError, EOFError, ValueError, TypeError ...: other corruption
            (callers wrap these).
    """
    bad = malformed or error
    if isinstance(file, str | Path):
        source = source or str(file)
        size = Path(file).stat().st_size
        if size > max_bytes:
            raise bad(f"{source}: the file is {size} bytes, more than the {max_bytes} accepted (file size)")
        with open(file, "rb") as f:
            data = f.read()
    elif isinstance(file, bytes | bytearray):
        data = file
    else:
        chunks, total = [], 0
        while chunk := file.read(1 << 24):  # in chunks: read(n) may allocate n bytes up front
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise bad(f"{source or 'pickle'}: more than the {max_bytes} bytes accepted (file size)")
        data = b"".join(chunks)
    obj, _ = load_at(data, 0, allowed, source=source or "pickle", error=error, refusal=refusal, encoding=encoding,
                     errors=errors, persistent=persistent, malformed=malformed)
    return obj


def load_at(
    data: bytes | bytearray,
    start: int,
    allowed: Allowed,
    *,
    source: str = "pickle",
    error: Callable[[str], BaseException] = PickleRefusedError,
    refusal: Callable[[str, str], str] | None = None,
    encoding: str = "ASCII",
    errors: str = "strict",
    persistent: Callable[[Any], Any] | None = None,
    malformed: Callable[[str], BaseException] | None = None,
) -> tuple[Any, int]:
    """Unpickle the pickle that starts at ``data[start]`` (files made of several pickles in a row).

    Returns:
        ``(object, offset just after it)``.

    Raises:
        As :func:`load`.
    """
    end = check_sizes(data, source=source, start=start, error=malformed or error)
    unpickler = RestrictedUnpickler(io.BytesIO(data[start:end] if start or end != len(data) else data), allowed,
                                    source=source, error=error, refusal=refusal, encoding=encoding, errors=errors,
                                    persistent=persistent, malformed=malformed)
    return unpickler.load(), end


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
