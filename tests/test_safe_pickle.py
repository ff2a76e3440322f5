"""latentstudio.io.safe_pickle: only allow-listed globals are resolved; hostile pickles never run."""

from __future__ import annotations

import codecs
import collections
import os
import pickle

import numpy as np
import pytest

from latentstudio.errors import DataError, LatentStudioError
from latentstudio.io import safe_pickle


class _Hostile:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_is_refused_with_one_line_naming_file_and_global(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"a": np.zeros(2), "b": _Hostile(marker)}))
    with pytest.raises(safe_pickle.PickleRefusedError) as info:
        safe_pickle.load(path, safe_pickle.numpy_globals())
    msg = str(info.value)
    assert isinstance(info.value, LatentStudioError) and "\n" not in msg
    assert str(path) in msg and ("posix.system" in msg or "nt.system" in msg or "os.system" in msg)
    assert not marker.exists()


def test_allowed_arrays_round_trip_across_protocols():
    obj = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "i": np.array([1, 2], dtype=np.int64),
           "s": np.float64(2.5), "od": collections.OrderedDict(a=1)}
    allowed = {**safe_pickle.numpy_globals(dtype=safe_pickle.plain_dtype),
               ("collections", "OrderedDict"): collections.OrderedDict,
               ("_codecs", "encode"): codecs.encode}  # protocol 2 stores array bytes through _codecs.encode
    for protocol in (2, 4, 5):
        back = safe_pickle.load(pickle.dumps(obj, protocol=protocol), allowed)
        assert back["w"].dtype == np.float32 and np.array_equal(back["w"], obj["w"])
        assert np.array_equal(back["i"], obj["i"]) and back["s"] == 2.5
        assert back["od"] == obj["od"]


def test_caller_error_type_and_message_and_helper_refusals():
    data = pickle.dumps(_Hostile("x"))
    with pytest.raises(DataError, match=r"^refusing to unpickle (posix|nt|os)\.system from f\.pkl$"):
        safe_pickle.load(data, {}, error=DataError, refusal=lambda m, n: f"refusing to unpickle {m}.{n} from f.pkl")
    # an object dtype is refused by plain_dtype; the refusal names the source and comes out as the caller's type
    objects = pickle.dumps(np.array([None, 1], dtype=object))
    with pytest.raises(DataError, match=r"^mem\.npy: refused numpy dtype"):
        safe_pickle.load(objects, safe_pickle.numpy_globals(dtype=safe_pickle.plain_dtype), source="mem.npy",
                         error=DataError)
    # ... but numpy's own np.dtype accepts it (object arrays of arrays, as sketch-rnn files hold)
    back = safe_pickle.load(pickle.dumps(np.array([np.zeros(2), np.ones(3)], dtype=object)),
                            safe_pickle.numpy_globals(scalars=False, buffers=False), encoding="latin1")
    assert back.dtype == object and np.array_equal(back[1], np.ones(3))
    # a builtin the caller did not allow is refused even though the array machinery is allowed
    with pytest.raises(safe_pickle.PickleRefusedError, match=r"builtin\w*\.set"):
        safe_pickle.load(pickle.dumps({1, 2}, protocol=2), safe_pickle.numpy_globals())


def test_ndarray_subclasses_and_persistent_ids_are_refused():
    with pytest.raises(safe_pickle.PickleRefusedError, match="reconstruction of"):
        safe_pickle.numpy_reconstruct(np.ma.MaskedArray, (0,), b"b")

    class _Persist(pickle.Pickler):
        def persistent_id(self, obj):
            return "pid" if isinstance(obj, str) and obj == "x" else None

    import io

    buf = io.BytesIO()
    _Persist(buf).dump(["x"])
    with pytest.raises(safe_pickle.PickleRefusedError, match="persistent ids"):
        safe_pickle.load(buf.getvalue(), {}, source="p.pkl")


# ----------------------------------------------------------------------------- sizes before allocation


def test_declared_lengths_are_checked_before_the_unpickler_allocates():
    """A 14-byte pickle declaring a terabyte: one line, no MemoryError (the standard unpickler allocates first)."""
    import struct

    tb = 1 << 40
    for code, name in ((b"\x8e", "BINBYTES8"), (b"\x8d", "BINUNICODE8"), (b"\x96", "BYTEARRAY8")):
        data = b"\x80\x04" + code + struct.pack("<Q", tb) + b"abc"
        with pytest.raises(safe_pickle.MalformedPickleError,
                           match=rf"^w\.pkl: pickle field {name} at byte 2 declares {tb} bytes but only 3 remain"):
            safe_pickle.load(data, {}, source="w.pkl", malformed=safe_pickle.MalformedPickleError)
    frame = b"\x80\x04\x95" + struct.pack("<Q", tb) + b"N."
    with pytest.raises(DataError, match=rf"pickle field FRAME at byte 2 declares {tb} bytes"):
        safe_pickle.load(frame, {}, error=DataError)
    with pytest.raises(DataError, match=r"declares 4294967295 bytes"):
        safe_pickle.load(b"\x80\x03B\xff\xff\xff\xffab.", {}, error=DataError)  # BINBYTES, unsigned 4-byte length


def test_size_scan_finds_truncation_and_garbage_and_pickle_ends(tmp_path):
    good = pickle.dumps({"a": np.arange(3)}, protocol=4)
    with pytest.raises(DataError, match=r"FRAME at byte 2 declares \d+ bytes but only \d+ remain"):
        safe_pickle.load(good[:-1], safe_pickle.numpy_globals(), error=DataError)
    with pytest.raises(DataError, match="without its STOP opcode"):
        safe_pickle.load(pickle.dumps([1, 2], protocol=2)[:-1], {}, error=DataError)
    with pytest.raises(DataError, match=r"byte 0 \(0xff\) is not a pickle opcode"):
        safe_pickle.load(b"\xff\xd8\xff\xe0 JFIF", {}, error=DataError)
    with pytest.raises(DataError, match=r"pickle field BINFLOAT at byte 0 is cut off"):
        safe_pickle.load(b"GIF89a", {}, error=DataError)
    with pytest.raises(DataError, match=r"pickle field GLOBAL at byte \d+ has no end of line"):
        safe_pickle.load(b"\x80\x02cnumpy\nndarr", {}, error=DataError)
    two = pickle.dumps(1, protocol=2) + pickle.dumps("x", protocol=4)
    end = safe_pickle.check_sizes(two)
    assert safe_pickle.load_at(two, 0, {}) == (1, end) and safe_pickle.load_at(two, end, {}) == ("x", len(two))
    # the file size cap
    path = tmp_path / "big.pkl"
    path.write_bytes(good)
    with pytest.raises(DataError, match=rf"big\.pkl: the file is {len(good)} bytes, more than the 10 accepted"):
        safe_pickle.load(path, safe_pickle.numpy_globals(), error=DataError, max_bytes=10)


def test_persistent_ids_resolved_by_the_caller_and_its_errors_name_the_source():
    import io

    class _P(pickle.Pickler):
        def persistent_id(self, obj):
            return f"ref {obj}" if isinstance(obj, str) and obj.startswith("@") else None

    buf = io.BytesIO()
    _P(buf, protocol=2).dump(["@a", "b"])

    def resolve(pid):
        if pid == "ref @a":
            return 42
        raise safe_pickle.MalformedPickleError(f"unknown reference {pid.split()[1]}")

    assert safe_pickle.load(buf.getvalue(), {}, persistent=resolve) == [42, "b"]
    with pytest.raises(DataError, match=r"^f\.pkl: unknown reference @z$"):
        safe_pickle.load(buf.getvalue().replace(b"@a", b"@z"), {}, source="f.pkl", error=DataError,
                         persistent=resolve)
