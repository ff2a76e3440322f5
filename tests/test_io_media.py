"""latentstudio.io.media: GIF / MP4 round trips, per-frame durations, atomic refusal to overwrite."""

from __future__ import annotations

import importlib.util

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from latentstudio.errors import LatentStudioError, RunExistsError, ShapeError
from latentstudio.io import media


def _frames(t=4, h=15, w=17, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, c), dtype=np.uint8)


def _gif_durations(path, n):
    return [iio.immeta(path, index=i, plugin="pillow")["duration"] for i in range(n)]


def test_gif_round_trip_keeps_frames_size_and_per_frame_durations(tmp_path):
    arr = _frames()
    path = media.write_gif(arr, tmp_path / "a.gif", duration_ms=[60, 60, 60, 1500])
    back = iio.imread(path, index=None, plugin="pillow")
    assert back.shape[:3] == (4, 15, 17)
    assert _gif_durations(path, 4) == [60, 60, 60, 1500]
    assert iio.immeta(path, index=0, plugin="pillow")["loop"] == 0
    assert not list(tmp_path.glob(".*"))  # no temporary file is left behind


def test_gif_from_fps_and_torch_channels_first(tmp_path):
    t = torch.from_numpy(_frames(t=3, c=1)).permute(0, 3, 1, 2)  # uint8 [T, 1, H, W]
    path = media.write_gif(t, tmp_path / "g.gif", fps=10)
    back = iio.imread(path, index=None, plugin="pillow")
    assert back.shape[:3] == (3, 15, 17)
    assert _gif_durations(path, 3) == [100, 100, 100]
    listed = media.write_gif(list(t), tmp_path / "l.gif", fps=10)  # a list of [C, H, W] tensors
    assert listed.read_bytes() == path.read_bytes()


def test_gif_bytes_match_the_written_file(tmp_path):
    arr = _frames(t=2)
    data = media.gif_bytes(arr, duration_ms=80)
    path = media.write_gif(arr, tmp_path / "b.gif", duration_ms=80)
    assert data[:6] == b"GIF89a" and data == path.read_bytes()


def test_gif_refuses_to_overwrite_unless_asked(tmp_path):
    path = media.write_gif(_frames(seed=1), tmp_path / "a.gif", fps=5)
    before = path.read_bytes()
    with pytest.raises(RunExistsError, match="already exists"):
        media.write_gif(_frames(seed=2), path, fps=5)
    assert path.read_bytes() == before
    media.write_gif(_frames(seed=2), path, fps=5, overwrite=True)
    assert path.read_bytes() != before


def test_bad_frames_and_durations_are_one_line_errors(tmp_path):
    with pytest.raises(ShapeError, match="uint8"):
        media.write_gif(_frames().astype(np.float32), tmp_path / "x.gif", fps=5)
    with pytest.raises(ShapeError, match="C 1 or 3"):
        media.write_gif(_frames(c=2), tmp_path / "x.gif", fps=5)
    with pytest.raises(ShapeError, match="at least one frame"):
        media.write_gif([], tmp_path / "x.gif", fps=5)
    with pytest.raises(LatentStudioError, match="4 frames but 2 durations"):
        media.write_gif(_frames(), tmp_path / "x.gif", duration_ms=[10, 20])
    with pytest.raises(LatentStudioError, match="exactly one of"):
        media.write_gif(_frames(), tmp_path / "x.gif")
    assert not (tmp_path / "x.gif").exists()


@pytest.mark.skipif(importlib.util.find_spec("av") is None, reason="PyAV (av) is not installed")
def test_mp4_round_trip_pads_odd_sizes_and_refuses_to_overwrite(tmp_path):
    path = media.write_mp4(_frames(t=5), tmp_path / "v.mp4", fps=10)
    back = iio.imread(path, plugin="pyav")
    assert back.shape == (5, 16, 18, 3)  # 15x17 padded to even sides for yuv420p
    assert iio.immeta(path, plugin="pyav")["fps"] == 10
    with pytest.raises(RunExistsError):
        media.write_mp4(_frames(t=2), path, fps=10)
    assert iio.imread(path, plugin="pyav").shape[0] == 5
    t = torch.from_numpy(_frames(t=3, h=16, w=16)).permute(0, 3, 1, 2)
    path = media.write_mp4(t, path, fps=7.5, crf=18, overwrite=True)
    assert iio.imread(path, plugin="pyav").shape == (3, 16, 16, 3)
    assert not list(tmp_path.glob(".*"))


def test_mp4_without_pyav_names_the_fix(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "av" else real(name, *a))
    with pytest.raises(LatentStudioError, match=r"pip install av.*\.gif") as info:
        media.write_mp4(_frames(), tmp_path / "v.mp4", fps=10)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "v.mp4").exists()
