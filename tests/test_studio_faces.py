"""Choosing a face in a photo (left-to-right numbers, dominant face, threshold, preview, gallery) and the
identity similarity of two aligned faces.

Photos are built here from the portrait matplotlib ships (``grace_hopper.jpg``, a real photo) pasted on
synthetic textured backgrounds: a group of three heads of different sizes, a portrait with a small
face on a badge. Tests that run dlib skip when it is not installed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from latentstudio.errors import LatentStudioError
from latentstudio.studio.alignment import (
    DOMINANT_AREA_RATIO,
    Face,
    MultipleFacesError,
    NoFaceError,
    align_face,
    draw_faces,
    face_gallery,
    pick_face,
)
from latentstudio.studio.identity import IdentityScore, compare_faces

# ---------------------------------------------------------------------------------------------- photos


def texture(h: int, w: int, seed: int = 0, amp: float = 30.0) -> np.ndarray:
    """``uint8 [h, w, 3]``: noise at several scales (coarse blotches to pixel grain), like a busy background."""
    rng = np.random.default_rng(seed)
    out = np.full((h, w, 3), 120.0, dtype=np.float32)
    for k, scale in enumerate((32, 8, 2, 1)):
        n = rng.normal(size=(h // scale + 1, w // scale + 1, 3)).astype(np.float32)
        up = np.stack([np.asarray(Image.fromarray(n[..., c]).resize((w // scale * scale + scale, h // scale * scale
                                                                     + scale), Image.BICUBIC))[:h, :w]
                       for c in range(3)], axis=-1)
        out += up * amp / (k + 1)
    return np.clip(out, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def portrait() -> Image.Image:
    from matplotlib import cbook

    return Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")  # 512 x 600


def _head(portrait: Image.Image, scale: float) -> Image.Image:
    head = portrait.crop((150, 80, 400, 380))  # the face with some hair and collar
    return head.resize((round(250 * scale), round(300 * scale)), Image.LANCZOS)


def _tensor(im: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(im)).permute(2, 0, 1).contiguous()


#: The group photo's heads, pasted in this order: (scale, x, y); the largest is in the middle.
GROUP = [(1.0, 280, 50), (0.7, 30, 110), (0.5, 660, 150)]


@pytest.fixture(scope="module")
def group_photo(portrait) -> Image.Image:
    canvas = Image.fromarray(texture(420, 900, seed=1))
    for scale, x, y in GROUP:
        canvas.paste(_head(portrait, scale), (x, y))
    return canvas


@pytest.fixture(scope="module")
def badge_photo(portrait) -> Image.Image:
    photo = portrait.copy()
    card = Image.new("RGB", (104, 134), (240, 240, 240))
    card.paste(_head(portrait, 0.38), (4, 8))
    photo.paste(card, (330, 440))  # on the chest
    return photo


@pytest.fixture(scope="module")
def landmarker():
    pytest.importorskip("dlib")
    from latentstudio.studio.alignment import DlibLandmarker

    return DlibLandmarker()


# ---------------------------------------------------------------------------------------------- choosing (no dlib)


def _face(left: int, side: int, score: float = 1.0) -> Face:
    return Face(box=(left, 10, left + side, 10 + side), landmarks=np.zeros((68, 2)), score=score)


def test_pick_face_takes_the_only_the_asked_or_the_dominant_face():
    one = [_face(50, 100)]
    assert pick_face(one).index == 0 and pick_face(one).reason == "the only face" and not pick_face(one).automatic
    faces = [_face(0, 40), _face(100, 100), _face(300, 45)]  # 100^2 / 45^2 = 4.9 >= 4
    choice = pick_face(faces)
    assert choice.index == 1 and choice.face is faces[1] and choice.automatic
    assert "dominant" in choice.reason and "4.9x" in choice.reason
    assert pick_face(faces, 2).index == 2 and not pick_face(faces, 2).automatic
    with pytest.raises(MultipleFacesError):
        pick_face(faces, dominance=5.0)  # a stricter rule leaves the choice to the user
    with pytest.raises(LatentStudioError, match=r"--face 3: the photo has 3 face\(s\), numbered 0..2 from the left"):
        pick_face(faces, 3)
    with pytest.raises(NoFaceError, match="no face found"):
        pick_face([])


def test_an_ambiguous_choice_lists_the_numbered_faces_and_says_how_to_choose():
    faces = [_face(0, 80, 1.5), _face(200, 100, 0.4), _face(400, 90, 2.0)]  # 100^2 / 90^2 = 1.2
    assert DOMINANT_AREA_RATIO == 4.0
    with pytest.raises(MultipleFacesError) as info:
        pick_face(faces)
    msg = str(info.value)
    assert "3 faces found, numbered from the left" in msg
    for i, f in enumerate(faces):
        assert f"face {i}: box {f.box}" in msg and f"score {f.score:.2f}" in msg
    assert "--preview faces.png" in msg and "--face N" in msg
    assert info.value.faces == faces


def test_draw_faces_boxes_and_numbers_each_face():
    img = torch.full((3, 200, 300), 128, dtype=torch.uint8)
    faces = [_face(20, 80), _face(150, 100)]
    out = draw_faces(img, faces, chosen=1)
    assert out.shape == img.shape and out.dtype == torch.uint8
    hwc = out.permute(1, 2, 0).numpy().astype(int)
    assert tuple(hwc[60, 20]) == (255, 210, 0)  # face 0's left edge: yellow
    assert tuple(hwc[60, 150]) == (40, 220, 40)  # the chosen face's left edge: green
    label = hwc[:10, 150:175]  # the number's tag above the box holds black digits
    assert (label.sum(-1) < 100).any()
    assert torch.equal(out[:, 40:80, 40:80], img[:, 40:80, 40:80])  # inside the box the photo is untouched


def test_face_gallery_gives_numbered_square_thumbnails():
    img = np.zeros((120, 200, 3), dtype=np.uint8)
    img[:] = (0, 0, 255)
    img[30:70, 20:60] = (255, 0, 0)  # face 0's box is red
    img[40:100, 120:180] = (0, 255, 0)  # face 1's box is green
    faces = [Face((20, 30, 60, 70), np.zeros((68, 2)), 0.7), Face((120, 40, 180, 100), np.zeros((68, 2)), 1.9)]
    gallery = face_gallery(torch.from_numpy(img).permute(2, 0, 1).contiguous(), faces, size=64, margin=0.5)
    assert [g[0] for g in gallery] == [0, 1]
    assert [g[2] for g in gallery] == [f.box for f in faces] and [g[3] for g in gallery] == [0.7, 1.9]
    for (_, thumb, _, _), colour in zip(gallery, [(255, 0, 0), (0, 255, 0)], strict=True):
        assert thumb.shape == (64, 64, 3) and thumb.dtype == np.uint8
        assert tuple(int(v) for v in thumb[32, 32]) == colour  # the box fills the middle half
        assert abs(int(thumb[5, 32, 2]) - 255) < 3 or thumb[5, 32].sum() < 5  # context: photo or black outside
    assert thumb[60, 60].sum() < 5  # face 1's square reaches below the photo: black


# ---------------------------------------------------------------------------------------------- detection (dlib)


def test_faces_are_numbered_left_to_right_not_by_size(landmarker, group_photo):
    faces = landmarker.detect(_tensor(group_photo))
    assert len(faces) == 3
    centres = [(f.box[0] + f.box[2]) / 2 for f in faces]
    assert centres == sorted(centres)
    pasted = sorted(GROUP, key=lambda g: g[1])  # left to right
    for f, (scale, x, _) in zip(faces, pasted, strict=True):
        assert x < (f.box[0] + f.box[2]) / 2 < x + 250 * scale
    assert max(range(3), key=lambda i: faces[i].area) == 1  # the largest face is number 1, in the middle
    with pytest.raises(MultipleFacesError, match="3 faces found"):
        landmarker.choose(_tensor(group_photo))
    assert landmarker.choose(_tensor(group_photo), 2).face.box == faces[2].box


def test_a_portrait_with_a_badge_face_is_aligned_without_choosing(landmarker, badge_photo):
    photo = _tensor(badge_photo)
    faces = landmarker.detect(photo)
    assert len(faces) == 2
    choice = landmarker.choose(photo)
    assert choice.automatic and "dominant" in choice.reason
    big = max(faces, key=lambda f: f.area)
    assert choice.face.box == big.box and big.box[2] - big.box[0] > 150
    aligned = align_face(photo, choice.landmarks, 64)
    assert aligned.image.shape == (3, 64, 64)


def test_the_face_score_threshold_keeps_only_surer_faces(landmarker, group_photo):
    photo = _tensor(group_photo)
    scores = sorted(f.score for f in landmarker.detect(photo, min_face_score=-0.3))
    assert len(scores) >= 3 and all(s > -0.3 for s in scores)
    cut = (scores[-1] + scores[-2]) / 2
    kept = landmarker.detect(photo, min_face_score=cut)
    assert len(kept) == 1 and kept[0].score == pytest.approx(scores[-1])
    assert landmarker.choose(photo, min_face_score=cut).reason == "the only face"
    with pytest.raises(NoFaceError, match=rf"best candidate scored {scores[-1]:.2f}.*--min-face-score"):
        landmarker.choose(photo, min_face_score=scores[-1] + 0.05)


def test_cli_align_preview_lists_and_numbers_the_faces(landmarker, group_photo, badge_photo, tmp_path):
    from latentstudio.cli.main import cli

    group, badge = tmp_path / "group.png", tmp_path / "badge.jpg"
    group_photo.save(group)
    badge_photo.save(badge, quality=95)
    runner = CliRunner()
    r = runner.invoke(cli, ["align", str(group), "--preview", str(tmp_path / "faces.png")])
    assert r.exit_code == 0, r.output
    assert "3 face(s) numbered from the left" in r.output and "face 2: box" in r.output
    preview = np.array(Image.open(tmp_path / "faces.png"))
    assert preview.shape == (420, 900, 3) and (preview != np.array(group_photo)).any()

    r = runner.invoke(cli, ["align", str(group), "--out", str(tmp_path / "face.png")])
    assert r.exit_code == 1 and "--preview faces.png" in r.output and "--face N" in r.output
    assert not (tmp_path / "face.png").exists()
    r = runner.invoke(cli, ["align", str(group), "--face", "0", "--size", "64", "--out", str(tmp_path / "face.png")])
    assert r.exit_code == 0, r.output
    assert "aligning face 0: chosen with --face" in r.output and Image.open(tmp_path / "face.png").size == (64, 64)

    r = runner.invoke(cli, ["align", str(badge), "--size", "64", "--out", str(tmp_path / "badge-face.png")])
    assert r.exit_code == 0, r.output
    assert "aligning face 0: the dominant face" in r.output and "(pass --face N for another)" in r.output

    r = runner.invoke(cli, ["align", str(badge), "--min-face-score", "9", "--out", str(tmp_path / "none.png")])
    assert r.exit_code == 1 and "no face found" in r.output and "--min-face-score" in r.output
    r = runner.invoke(cli, ["align", str(badge)])
    assert r.exit_code == 2 and "--out" in r.output and "--preview" in r.output


# ---------------------------------------------------------------------------------------------- identity


@pytest.fixture(scope="module")
def aligned_portrait(landmarker, portrait) -> torch.Tensor:
    photo = _tensor(portrait)
    return align_face(photo, landmarker.choose(photo).landmarks, 64).image


def test_identity_of_a_face_with_itself_and_with_other_images(aligned_portrait):
    pytest.importorskip("dlib")
    same = compare_faces(aligned_portrait, aligned_portrait)
    assert same.available and same.reason == ""
    assert same.distance == pytest.approx(0.0, abs=1e-9) and same.similarity == pytest.approx(1.0)
    assert same.same_person and same.box == "detected" and same.threshold == 0.6
    mirrored = compare_faces(aligned_portrait, aligned_portrait.flip(-1))  # the same person
    assert 0.0 < mirrored.distance < 0.6 and mirrored.same_person
    rng = np.random.default_rng(0)
    tex = torch.from_numpy(texture(64, 64, seed=3)).permute(2, 0, 1).contiguous()
    noise = torch.from_numpy(rng.integers(0, 256, (3, 64, 64), dtype=np.uint8))
    for other in (tex, noise):
        d = compare_faces(aligned_portrait, other)
        assert d.distance > 0.6 and d.distance > 2 * mirrored.distance and not d.same_person
        assert d.similarity < mirrored.similarity
    grey = aligned_portrait.float().mean(0, keepdim=True).round().to(torch.uint8)
    assert compare_faces(grey, grey).distance == pytest.approx(0.0, abs=1e-9)  # one channel is read as grey RGB
    json.dumps(same.as_dict())


def test_identity_without_a_model_says_why(monkeypatch):
    from latentstudio.studio import identity

    def missing(*a, **k):
        raise identity.IdentityUnavailable("dlib is not installed (test)")

    monkeypatch.setattr(identity, "_EMBEDDER", None)
    monkeypatch.setattr(identity, "FaceEmbedder", missing)
    img = torch.zeros(3, 16, 16, dtype=torch.uint8)
    score = compare_faces(img, img)
    assert not score.available and score.distance is None and score.same_person is None
    assert score.reason == "dlib is not installed (test)"
    assert score.as_dict()["reason"] == "dlib is not installed (test)"
    assert IdentityScore.unavailable("x").as_dict()["similarity"] is None
