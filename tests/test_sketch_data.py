"""Stroke data: formats, RDP, npz/ndjson loading and its errors, scale factor, augmentation, rendering."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import pickletools
import struct
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest
import torch

from latentstudio.data.strokes import (
    augment,
    drawing_to_stroke3,
    drop_points,
    load_strokes,
    normalizing_scale_factor,
    pad_batch,
    random_scale,
    rdp,
    read_ndjson,
    read_npz,
    stroke3_to_stroke5,
    stroke5_to_stroke3,
    synthetic_sketches,
    to_absolute,
    validate_stroke3,
)
from latentstudio.errors import DataError


def _obj(items):
    arr = np.empty(len(items), dtype=object)
    for k, s in enumerate(items):
        arr[k] = s
    return arr


@pytest.fixture
def tiny_npz(tmp_path):
    sk = [s.round().astype(np.int16) for s in synthetic_sketches(60, seed=3)]
    path = tmp_path / "tiny.npz"
    np.savez(path, train=_obj(sk[:40]), valid=_obj(sk[40:50]), test=_obj(sk[50:]))
    return path, sk


# ----------------------------------------------------------------------------- formats


def test_stroke3_stroke5_round_trip():
    s3 = np.array([[0, 0, 0], [3, -1, 0], [2, 2, 1], [-5, 0, 0], [1, 1, 1]], dtype=np.float32)
    s5 = stroke3_to_stroke5(s3, 8)
    assert s5.shape == (8, 5) and s5.dtype == np.float32
    np.testing.assert_array_equal(s5[:5, :2], s3[:, :2])
    np.testing.assert_array_equal(s5[:5, 2:], [[1, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(s5[5:], [[0, 0, 0, 0, 1]] * 3)  # padding
    np.testing.assert_array_equal(stroke5_to_stroke3(s5), s3)  # length found from the end token
    np.testing.assert_array_equal(stroke5_to_stroke3(torch.from_numpy(s5), 5), s3)
    with pytest.raises(DataError, match="more than max_seq_len=4"):
        stroke3_to_stroke5(s3, 4)


def test_pad_batch_shapes_and_lengths():
    sk = synthetic_sketches(5, seed=0)
    x, ln = pad_batch(sk, 50)
    assert x.dtype == torch.float32 and x.shape == (5, 50, 5)
    assert ln.dtype == torch.int64 and ln.tolist() == [len(s) for s in sk]
    assert torch.all(x.sum(-1)[torch.arange(50)[None] >= ln[:, None]] == 1)  # pure (0,0,0,0,1) padding


def test_absolute_polylines_follow_pen_lifts():
    s3 = np.array([[1, 1, 0], [1, 0, 1], [5, 5, 0], [0, 1, 1]], dtype=np.float32)
    lines = to_absolute(s3)
    assert len(lines) == 2
    np.testing.assert_array_equal(lines[0], [[1, 1], [2, 1]])
    np.testing.assert_array_equal(lines[1], [[7, 6], [7, 7]])


# ----------------------------------------------------------------------------- RDP


def test_rdp_collinear_points_reduce_to_end_points():
    line = np.column_stack([np.arange(10.0), 2 * np.arange(10.0)])
    np.testing.assert_array_equal(rdp(line, 0.5), line[[0, -1]])


def test_rdp_keeps_corners_farther_than_epsilon_only():
    pts = np.array([[0, 0], [5, 0.5], [10, 0], [10, 10]], dtype=float)
    # (5, 0.5) is 0.5 from its chord; (10, 0) is 7.07 from the chord (0,0)-(10,10)
    np.testing.assert_array_equal(rdp(pts, 1.0), pts[[0, 2, 3]])
    np.testing.assert_array_equal(rdp(pts, 0.4), pts)
    np.testing.assert_array_equal(rdp(pts, 0.0), pts)
    np.testing.assert_array_equal(rdp(pts, 100.0), pts[[0, 3]])


def test_rdp_closed_loop_uses_distance_to_the_point():
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]], dtype=float)
    out = rdp(square, 2.0)
    assert len(out) >= 3 and (out[0] == out[-1]).all()
    np.testing.assert_array_equal(out, square)  # every corner is >= 10 away from the zero-length chord


# ----------------------------------------------------------------------------- npz


def test_read_npz_real_layout_and_int16(tiny_npz):
    path, sk = tiny_npz
    data = read_npz(path)
    assert sorted(data) == ["test", "train", "valid"]
    assert len(data["train"]) == 40 and data["train"][0].dtype == np.float32
    np.testing.assert_array_equal(data["test"][0], sk[50].astype(np.float32))


def test_wrong_npz_keys_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, images=np.zeros((2, 3)))
    with pytest.raises(DataError, match=r"not the sketch-rnn layout.*\['train', 'valid', 'test'\]"):
        read_npz(path)
    path2 = tmp_path / "novalid.npz"
    np.savez(path2, valid=_obj([np.zeros((2, 3))]))
    with pytest.raises(DataError, match="no 'train' key"):
        read_npz(path2)
    txt = tmp_path / "x.npz"
    txt.write_text("hello")
    with pytest.raises(DataError, match="not an .npz archive"):
        read_npz(txt)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_npz_pickle_cannot_run_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    arr = np.empty(1, dtype=object)
    arr[0] = _Evil()
    buf = tmp_path / "train.npy"
    np.save(buf, arr, allow_pickle=True)
    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(buf, "train.npy")
    with pytest.raises(DataError, match="refusing to load posix.system|refusing to load os.system|refusing"):
        read_npz(path)
    assert not (tmp_path / "pwned").exists()
    assert pickle.loads(pickle.dumps(1)) == 1  # the standard unpickler is untouched


def test_empty_and_nan_sketches_are_clear_errors(tmp_path):
    good = np.array([[1, 2, 0], [3, 4, 1]], dtype=np.float32)
    with pytest.raises(DataError, match=r"train\[1\]: empty sketch"):
        path = tmp_path / "empty.npz"
        np.savez(path, train=_obj([good, np.zeros((0, 3))]))
        read_npz(path)
    bad = good.copy()
    bad[1, 0] = np.nan
    path = tmp_path / "nan.npz"
    np.savez(path, train=_obj([good, bad]))
    with pytest.raises(DataError, match=r"train\[1\]: NaN or infinite value at point 1"):
        read_npz(path)
    with pytest.raises(DataError, match="pen_lifted"):
        validate_stroke3([[1, 1, 2]])
    with pytest.raises(DataError, match=r"shape \[L, 3\]"):
        validate_stroke3(np.zeros((4, 2)))


def test_load_strokes_drops_long_sketches_and_normalises_by_train_only(tmp_path):
    rng = np.random.default_rng(0)
    train = [rng.normal(0, 5, (n, 3)).round() for n in (10, 20, 300)]
    for s in train:
        s[:, 2] = 0
        s[-1, 2] = 1
    test = [train[0] * 10]
    test[0][:, 2] = train[0][:, 2]
    path = tmp_path / "t.npz"
    np.savez(path, train=_obj(train), valid=_obj(train[:1]), test=_obj(test))
    sp = load_strokes(path, max_seq_len=250)
    assert len(sp.train) == 2 and sp.dropped == {"train": 1, "valid": 0, "test": 0}
    want = np.std(np.concatenate([train[0][:, :2].ravel(), train[1][:, :2].ravel()]))
    assert sp.scale_factor == pytest.approx(want)
    np.testing.assert_allclose(sp.test.sketches[0][:, :2], test[0][:, :2] / want, rtol=1e-6)
    np.testing.assert_allclose(np.std(np.concatenate([s[:, :2].ravel() for s in sp.train.sketches])), 1.0, rtol=1e-5)
    fixed = load_strokes(path, scale_factor=2.0)
    np.testing.assert_allclose(fixed.train.sketches[0][:, :2], train[0][:, :2] / 2.0)


def test_scale_factor_pools_x_and_y():
    sk = [np.array([[1, 3, 0], [-1, -3, 1]], dtype=np.float32)]
    assert normalizing_scale_factor(sk) == pytest.approx(np.std([1, 3, -1, -3]))
    with pytest.raises(DataError, match="empty training split"):
        normalizing_scale_factor([])


# ----------------------------------------------------------------------------- ndjson


def _write_ndjson(path, objs, gz=False):
    text = "\n".join(json.dumps(o) for o in objs) + "\n"
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)


def test_ndjson_simplified_to_stroke3(tmp_path):
    drawing = [[[10, 20, 30], [10, 10, 10]], [[50, 50], [60, 90]]]
    s3 = drawing_to_stroke3(drawing, epsilon=2.0)
    # the middle point of the first (straight) stroke is removed; the sketch starts at the origin
    np.testing.assert_array_equal(s3, [[0, 0, 0], [20, 0, 1], [20, 50, 0], [0, 30, 1]])
    path = tmp_path / "cat.ndjson.gz"
    objs = [{"word": "cat", "recognized": True, "drawing": drawing},
            {"word": "dog", "recognized": False, "drawing": drawing}]
    _write_ndjson(path, objs, gz=True)
    sk, words = read_ndjson(path)
    assert words == ["cat", "dog"] and len(sk) == 2
    assert read_ndjson(path, words=["dog"])[1] == ["dog"]
    assert read_ndjson(path, recognized_only=True)[1] == ["cat"]


def test_ndjson_raw_with_timing_is_rescaled_to_255():
    raw = [[[100, 300, 500], [200, 200, 200], [0, 10, 20]], [[100, 100], [200, 600], [30, 40]]]
    s3 = drawing_to_stroke3(raw, epsilon=0.0)
    xy = np.cumsum(s3[:, :2], axis=0)
    span = xy.max(0) - xy.min(0)
    assert span.max() == pytest.approx(255.0)
    assert s3[:, 2].tolist() == [0, 0, 1, 0, 1]


def test_ndjson_bad_lines_are_clear_errors(tmp_path):
    path = tmp_path / "bad.ndjson"
    path.write_text('{"word": "cat", "drawing": [[[1, 2], [3, 4]]]}\nthis is not json\n')
    with pytest.raises(DataError, match=r"bad.ndjson:2: not valid JSON"):
        read_ndjson(path)
    path.write_text('{"word": "cat"}\n')
    with pytest.raises(DataError, match=r":1: JSON object without a 'drawing' field"):
        read_ndjson(path)
    path.write_text('{"drawing": []}\n')
    with pytest.raises(DataError, match="non-empty list of strokes"):
        read_ndjson(path)
    path.write_text('{"drawing": [[[1, 2], [3]]]}\n')
    with pytest.raises(DataError, match="stroke 0 has 2 x and 1 y"):
        read_ndjson(path)
    with pytest.raises(DataError, match="unknown stroke file type"):
        load_strokes(tmp_path / "x.csv")


def test_ndjson_splits_are_seeded(tmp_path):
    objs = [{"word": "w", "drawing": [[[0, 5 + i, 9], [0, 3, 7 + i]]]} for i in range(40)]
    path = tmp_path / "w.ndjson"
    _write_ndjson(path, objs)
    a = load_strokes(path, split_fractions=(0.8, 0.1, 0.1), seed=1)
    b = load_strokes(path, split_fractions=(0.8, 0.1, 0.1), seed=1)
    assert (len(a.train), len(a.valid), len(a.test)) == (32, 4, 4)
    assert a.test.fingerprint() == b.test.fingerprint()
    assert load_strokes(path, split_fractions=(0.8, 0.1, 0.1), seed=2).test.fingerprint() != a.test.fingerprint()


# ----------------------------------------------------------------------------- augmentation


def test_drop_points_keeps_kept_points_in_place():
    from latentstudio.data.strokes import polylines_to_stroke3

    ang = np.linspace(0, 1.8 * np.pi, 30)
    s3 = polylines_to_stroke3([np.column_stack([50 * np.cos(ang), 40 * np.sin(ang)]), [[0, 60], [30, 60], [60, 60]]])
    out = drop_points(s3, np.random.default_rng(0), prob=0.5)
    assert len(out) < len(s3)
    a_in, a_out = np.cumsum(s3[:, :2], 0), np.cumsum(out[:, :2], 0)
    # every output point is an input point (same absolute position), in order
    idx = [int(np.argmin(np.abs(a_in - p).sum(1))) for p in a_out]
    assert idx == sorted(idx)
    np.testing.assert_allclose(a_in[idx], a_out, atol=1e-4)
    # pen lifts and the first points of each stroke survive
    assert out[:, 2].sum() == s3[:, 2].sum()
    np.testing.assert_array_equal(out[:3], s3[:3])
    np.testing.assert_array_equal(drop_points(s3, np.random.default_rng(0), prob=0.0), s3)


def test_random_scale_bounds_and_determinism():
    s3 = synthetic_sketches(1, seed=1)[0]
    out = random_scale(s3, np.random.default_rng(7), 0.15)
    ratio = out[:, :2][s3[:, :2] != 0] / s3[:, :2][s3[:, :2] != 0]
    assert ratio.min() >= 0.85 - 1e-6 and ratio.max() <= 1.15 + 1e-6
    np.testing.assert_array_equal(out, random_scale(s3, np.random.default_rng(7), 0.15))
    np.testing.assert_array_equal(augment(s3, np.random.default_rng(3), 0.0, 0.0), s3)


# ----------------------------------------------------------------------------- rendering


def test_svg_png_gif_rendering(tmp_path):
    from PIL import Image

    from latentstudio.errors import RunExistsError
    from latentstudio.io.strokes_render import grid_image, grid_svg, save_sketches

    s3 = np.array([[0, 0, 0], [10, 0, 1], [0, 10, 0], [10, 0, 1]], dtype=np.float32)  # two strokes
    svg = grid_svg([s3, s3, s3], nrow=2, titles=["a", "b", "c"], row_labels=["r0", "r1"], caption="cap",
                   prefix_lengths=[0, 3, 0])
    root = ET.fromstring(svg)
    lines = root.findall(".//{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 2 + 3 + 2  # the second sketch's second stroke is split at the prefix boundary
    assert sum(1 for ln in lines if ln.get("stroke") == "#d62728") == 2
    img = grid_image([s3] * 3, nrow=3)
    assert img.dtype == torch.uint8 and img.shape == (3, 128, 384)
    assert img.float().mean() < 255  # something was drawn
    assert grid_image([np.zeros((0, 3), np.float32)], nrow=1).float().mean() == 255  # empty cell is blank
    for ext in (".svg", ".png", ".gif"):
        p = save_sketches(tmp_path / f"g{ext}", [s3, s3], frames=4)
        assert p.stat().st_size > 0
    assert Image.open(tmp_path / "g.gif").n_frames == 4
    with pytest.raises(RunExistsError):
        save_sketches(tmp_path / "g.svg", [s3])
    with pytest.raises(Exception, match="unknown picture type"):
        save_sketches(tmp_path / "g.jpg", [s3])


def _npz_with_pickle(path, payloads: dict[str, bytes], shapes: dict[str, int]) -> None:
    """An .npz whose members are object-array .npy files holding the given raw pickles (any protocol)."""
    with zipfile.ZipFile(path, "w") as zf:
        for key, payload in payloads.items():
            buf = io.BytesIO()
            np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False,
                                                       "shape": (shapes[key],)})
            zf.writestr(f"{key}.npy", buf.getvalue() + payload)


@pytest.mark.parametrize("protocol", [2, 3, 4])
@pytest.mark.parametrize("dtype", [np.int16, np.float64])
def test_published_npz_encodings_load(tmp_path, protocol, dtype):
    """Python 3 pickles at protocols 2-4 of int16 and float64 sketches (protocol 2 stores the arrays'
    bytes through ``_codecs.encode(str, 'latin1')``)."""
    rng = np.random.default_rng(protocol)
    sketches = []
    for n in (5, 3, 7):
        s = np.zeros((n, 3), dtype=dtype)
        s[:, :2] = rng.integers(-20, 20, size=(n, 2))
        s[-1, 2] = 1
        sketches.append(s)
    arr = np.empty(len(sketches), dtype=object)
    for k, s in enumerate(sketches):
        arr[k] = s
    payload = pickle.dumps(arr, protocol=protocol)
    path = tmp_path / f"p{protocol}.npz"
    _npz_with_pickle(path, {"train": payload, "test": payload}, {"train": 3, "test": 3})
    out = read_npz(path)
    assert len(out["train"]) == 3
    for got, want in zip(out["train"], sketches, strict=True):
        np.testing.assert_array_equal(got, want.astype(np.float32))


def test_hostile_codecs_call_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            import _codecs  # only this hostile object's reduction needs it

            return (_codecs.encode, ("x", "rot13"))

    arr = np.empty(1, dtype=object)
    arr[0] = Evil()
    path = tmp_path / "evil.npz"
    _npz_with_pickle(path, {"train": pickle.dumps(arr, protocol=2)}, {"train": 1})
    with pytest.raises(DataError, match="_codecs.encode"):
        read_npz(path)


# ----------------------------------------------------------------------------- Python 2 pickles
# Python 2 wrote numpy arrays at protocol 2 with byte strings (SHORT_BINSTRING / BINSTRING) for the
# dtype codes and the arrays' raw bytes; Python 3 reads them with encoding='latin1'. These helpers
# write that opcode stream directly, so the files are what Python 2 produced, not a Python 3 dump.


def _py2_str(b: bytes) -> bytes:
    return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<i", len(b)) + b)


def _py2_int(v: int) -> bytes:
    return b"K" + bytes([v]) if 0 <= v < 256 else b"J" + struct.pack("<i", v)


def _py2_dtype(dt: np.dtype) -> bytes:
    code = {np.dtype(np.int16): b"i2", np.dtype(np.float64): b"f8", np.dtype(object): b"O8"}[dt]
    order, flags = (b"|", 63) if dt == object else (b"<", 0)
    state = (b"(" + _py2_int(3) + _py2_str(order) + b"NNN" + _py2_int(-1) + _py2_int(-1) + _py2_int(flags) + b"t")
    return b"cnumpy\ndtype\n" + _py2_str(code) + _py2_int(0) + _py2_int(1) + b"\x87R" + state + b"b"


def _py2_array(a: np.ndarray) -> bytes:
    # _reconstruct(ndarray, (0,), 'b') then BUILD with (1, shape, dtype, fortran, data)
    head = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + _py2_int(0) + b"\x85" + _py2_str(b"b") + b"\x87R"
    shape = b"(" + b"".join(_py2_int(n) for n in a.shape) + b"t"
    data = (b"](" + b"".join(_py2_array(x) for x in a) + b"e") if a.dtype == object else _py2_str(a.tobytes())
    return head + b"(" + _py2_int(1) + shape + _py2_dtype(a.dtype) + b"\x89" + data + b"tb"


def py2_pickle(a: np.ndarray) -> bytes:
    """``a`` (numeric or an object array of numeric arrays) as Python 2's protocol-2 pickle."""
    return b"\x80\x02" + _py2_array(a) + b"."


@pytest.mark.parametrize("dtype", [np.int16, np.float64])
def test_python2_npz_pickles_load(tmp_path, dtype):
    rng = np.random.default_rng(7)
    sketches = []
    for n in (4, 90, 6):  # 90 points: the int16/float64 bytes exceed 255, so BINSTRING as well as SHORT_BINSTRING
        s = np.zeros((n, 3), dtype=dtype)
        s[:, :2] = rng.integers(-300, 300, size=(n, 2))
        s[-1, 2] = 1
        sketches.append(s)
    payload = py2_pickle(_obj(sketches))
    ops = {op.name for op, _, _ in pickletools.genops(payload)}
    assert {"SHORT_BINSTRING", "BINSTRING"} <= ops and not ops & {"BINUNICODE", "SHORT_BINUNICODE"}  # Python 2 strings
    assert "_codecs" not in payload.decode("latin1")
    path = tmp_path / "py2.npz"
    _npz_with_pickle(path, {"train": payload, "valid": payload, "test": payload}, {"train": 3, "valid": 3, "test": 3})
    out = read_npz(path)
    for got, want in zip(out["test"], sketches, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want.astype(np.float32))


def test_python2_hostile_pickle_is_refused(tmp_path):
    # a Python 2 style GLOBAL of os.system called through REDUCE inside the object array
    evil = b"\x80\x02cos\nsystem\n" + _py2_str(b"echo pwned") + b"\x85R."
    path = tmp_path / "evil2.npz"
    _npz_with_pickle(path, {"train": evil}, {"train": 1})
    with pytest.raises(DataError, match="refusing to load os.system"):
        read_npz(path)


def test_drop_points_reference_mode_moves_the_previous_point():
    s3 = np.array([[0, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 5, 0], [1, 1, 1]], dtype=np.float32)

    class Rng:  # point 4 (eligible: the third consecutive pen-down pair) is the one drawn below prob
        def random(self, n):
            r = np.ones(n)
            r[4] = 0.0
            return r

    paper = drop_points(s3, Rng(), prob=0.5, mode="paper")
    ref = drop_points(s3, Rng(), prob=0.5, mode="reference")
    want_paper = np.delete(s3, 4, 0)
    want_paper[4, :2] = [1, 5]  # the next kept point absorbs the dropped offset: it stays in place
    want_ref = np.delete(s3, 4, 0)
    want_ref[3, :2] = [2, 0]  # the previous kept point absorbs it: it moves onto the dropped point
    np.testing.assert_array_equal(paper, want_paper)
    np.testing.assert_array_equal(ref, want_ref)
    for out in (paper, ref):  # later points do not move in either mode
        np.testing.assert_allclose(np.cumsum(out[:, :2], 0)[-2:], np.cumsum(s3[:, :2], 0)[-2:])
    with pytest.raises(ValueError, match="mode"):
        drop_points(s3, Rng(), 0.5, mode="magenta")


def test_default_nmax_is_the_longest_sketch_of_all_splits(tmp_path):
    def sk(n):
        s = np.ones((n, 3))
        s[::2, :2] = -1  # offsets with a spread (the scale factor is their std)
        s[:, 2] = 0
        s[-1, 2] = 1
        return s

    path = tmp_path / "long.npz"
    np.savez(path, train=_obj([sk(10), sk(300)]), valid=_obj([sk(5)]), test=_obj([sk(320)]))
    sp = load_strokes(path)
    assert sp.max_seq_len == sp.longest == 320 and sum(sp.dropped.values()) == 0 and len(sp.test) == 1
    cut = load_strokes(path, max_seq_len=250)
    assert cut.dropped == {"train": 1, "valid": 0, "test": 1} and cut.dropped_share() == pytest.approx(0.5)
    assert cut.total == {"train": 2, "valid": 1, "test": 1}
