"""The studio page's latent explorer in headless Chromium, one tiny model per family (DRAW, sketch-rnn,
two-stage VAE, StyleGAN2).

Each test opens the page, samples, encodes an input, interpolates, moves a direction slider and downloads
files, checking their content and that the page shows no error; per family also DRAW's steps of an
encoded latent, sketch-rnn's completion of a drawing and StyleGAN2's W+ layer mask (on the page that also
has the Face Studio's tab). Chromium as in tests/test_studio_web.py (skipped with its message where there
is none; ``LATENTSTUDIO_SKIP_BROWSER=1`` skips on purpose).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from conftest import write_stroke_npz
from PIL import Image, ImageSequence
from test_contract import make
from test_studio_web import (
    CHROMIUM_ARGS,
    chromium_path,
    download,
    free_port,
    move_slider,
    set_slider_number,
    set_upload,
    status_text,
    wait_status,
)

from latentstudio.api import load
from latentstudio.io.images import save_image
from latentstudio.studio.explorer import Explorer, latent_grid
from latentstudio.studio.projection import load_latent


@pytest.fixture(scope="module")
def chromium():
    if os.environ.get("LATENTSTUDIO_SKIP_BROWSER") == "1":
        pytest.skip("LATENTSTUDIO_SKIP_BROWSER=1")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser test needs the playwright package: pip install -e '.[dev]'")
    exe = chromium_path()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_explorer(chromium, tmp_path, family: str, reference=None, face: bool = False, **config):
    """Serve the studio page for a saved tiny model of ``family`` (its example config with ``config``),
    with the Face Studio's tab too when ``face`` (opened on the explorer's, as ``--explorer`` does);
    returns (page, explorer, demo, context)."""
    from latentstudio.models.registry import MODELS
    from latentstudio.studio.web.studio_app import serve_studio

    if config:
        cls = MODELS.get(family)
        torch.manual_seed(0)
        cls(cls.example_config(**config)).save_pretrained(tmp_path / "model")
    else:
        make(family).save_pretrained(tmp_path / "model")
    model = load(tmp_path / "model")
    explorer = Explorer(model, None if reference is None else reference(model))
    studio = face_studio(model) if face else None
    demo, url = serve_studio(explorer, studio, first="explorer", port=free_port(), block=False,
                             workdir=tmp_path / "files", quiet=True, pca_samples=32, warm_up=False)
    ctx = chromium.new_context(accept_downloads=True, viewport={"width": 1280, "height": 1600})
    ctx.set_default_timeout(30_000)
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_selector("#sample")
    return page, explorer, demo, ctx


def face_studio(model):
    """The Face Studio of a face model (three GANSpace directions, projections without a perceptual model)."""
    from latentstudio.studio.directions import DirectionLibrary, ganspace
    from latentstudio.studio.loading import wrap_model
    from latentstudio.studio.projection import ProjectionConfig
    from latentstudio.studio.session import Studio

    face = wrap_model(model)
    lib = DirectionLibrary(ganspace(face.sample_latents(200), k=3))
    return Studio(face, lib, projection=ProjectionConfig(steps=6, perceptual="none"), perceptual=None)


def gif_frames(path, fps: float) -> int:
    """The number of frames of a GIF written at ``fps``, counting repeats (equal frames are merged)."""
    with Image.open(path) as im:
        assert im.format == "GIF"
        total = sum(f.info.get("duration", 0) for f in ImageSequence.Iterator(im))
    return round(total * fps / 1000)


def no_error(page) -> None:
    assert not status_text(page).startswith("Error"), status_text(page)
    assert page.locator(".toast-body.error, .toast-wrap .error").count() == 0


def explore(page, tmp_path, input_path, *, shape: tuple[int, ...], sketches: bool):
    """The steps every family goes through; ``shape`` is one latent's. Returns the sampled latents' file."""
    assert "Shown:" in page.locator("#space-info").inner_text()
    page.locator("#seeds textarea, #seeds input").first.fill("0-3")
    page.click("#sample")
    wait_status(page, "Sampled 4 latent(s) of z")
    no_error(page)
    conditional = "condition" in status_text(page)
    if sketches:
        assert page.locator("#samples svg").count() >= 1  # sketches as SVG in the page
    lat = download(page, "download-latents", tmp_path)
    with np.load(lat, allow_pickle=False) as data:
        assert data["latent"].shape == (4, *shape) and str(data["space"]) == "z"
        assert str(data["model_path"]).endswith("model")
        assert json.loads(str(data["meta"]))["condition"] == (2 if conditional else None)
    if input_path is not None:
        set_upload(page, input_path, "input-file")
        wait_status(page, "Encoded")
        no_error(page)
    set_slider_number(page, "path-steps", 5)
    page.click("#interpolate")
    wait_status(page, "slerp from latent 0 to latent 1 in z (5 steps)")
    no_error(page)
    gif = download(page, "download-anim", tmp_path)
    assert gif_frames(gif, fps=6.0) == 8  # 5 there, 3 back
    path = load_latent(download(page, "download-path-latents", tmp_path))
    assert tuple(path["latent"].shape) == (5, *shape)
    strip = download(page, "download-path", tmp_path)
    if sketches:
        assert strip.suffix == ".svg" and strip.read_text().startswith("<svg")
    else:
        assert Image.open(strip).format == "PNG"
    move_slider(page, "pc-pc0", 2)
    wait_status(page, "Moved latent 0 (pc0+2)")
    no_error(page)
    page.wait_for_selector("#latent-values img")  # the moved latent's values as a grid (a row per step for DRAW)
    moved = load_latent(download(page, "download-moved-latent", tmp_path))
    assert tuple(moved["latent"].shape) == (1, *shape) and moved["meta"]["directions"]["pc0"] == 2.0
    assert not torch.allclose(moved["latent"][0], torch.from_numpy(np.load(lat)["latent"][0]))
    # the pool's own principal directions (here: the samples and the encoded inputs)
    page.locator("#pca-of label", has_text="the pool").click()
    move_slider(page, "pc-pc1", -1)
    wait_status(page, "principal directions of given latents")
    no_error(page)
    # a latent file saved here comes back into the pool
    set_upload(page, lat, "input-file")
    wait_status(page, f"Loaded 4 latent(s) of z from {lat.name}")
    no_error(page)
    dirs = download(page, "download-directions", tmp_path)
    with np.load(dirs, allow_pickle=False) as data:
        index = json.loads(str(data["index"]))
        assert [d["name"] for d in index["directions"]][:1] == ["pc0"] and index["info"]["space"] == "z"
        assert data["vec/pc0"].shape == shape
    return lat


def test_class_conditional_draw_in_the_browser(chromium, tmp_path):
    page, explorer, demo, ctx = open_explorer(chromium, tmp_path, "draw", condition="class", cond_dim=3)
    try:
        assert "draw" in page.locator("#header").inner_text() and "class condition" in page.locator(
            "#header").inner_text()
        page.locator("#condition label", has_text="2").click()  # the condition is a control
        img = tmp_path / "digit.png"
        save_image(torch.randint(0, 255, (1, 40, 40), dtype=torch.uint8), img)
        explore(page, tmp_path, img, shape=explorer.space().shape, sketches=False)
        t = explorer.space().shape[0]
        page.click("#seed-steps")
        wait_status(page, "The canvas after each of")
        steps = download(page, "download-steps", tmp_path)
        assert gif_frames(steps, fps=4.0) == t
        # the steps of any latent of the pool: latent 4 is the encoded image's
        page.locator("#steps-latent input").fill("4")
        page.click("#latent-steps")
        assert "steps for latent 4 (digit.png[0])" in wait_status(page, "for latent 4")
        no_error(page)
        assert gif_frames(download(page, "download-steps", tmp_path), fps=4.0) == t
        with Image.open(download(page, "download-steps-strip", tmp_path)) as im:  # one row of T square canvases
            side = im.size[1] - 4  # make_grid pads by 2
            assert im.format == "PNG" and side >= explorer.output_shape()[-1] and im.size[0] == t * (side + 2) + 2
        # that latent's values as a grid, a row of latent_dim cells per step
        page.wait_for_selector("#steps-latent-values img")
        d = explorer.space().shape[1]
        with Image.open(download(page, "download-steps-values", tmp_path)) as im:
            cell = im.size[0] // d
            assert im.format == "PNG" and cell >= 4 and im.size == (d * cell, t * cell)
            got = np.asarray(im.convert("RGB")).astype(int)
        z4 = explorer.encode(explorer.read_input(img), condition=2)[0]  # latent 4: the encoded image
        def off(z) -> int:
            return int(np.abs(latent_grid(z, cell=cell).permute(1, 2, 0).numpy().astype(int) - got).max())

        assert off(z4) <= 2 and off(explorer.draw([0], condition=2)[0][0]) > 2  # latent 4's values, not latent 0's
        # the seeds' steps have no latent to show: the values are cleared
        page.click("#seed-steps")
        wait_status(page, "for 4 sample(s)")
        page.wait_for_selector("#steps-latent-values img", state="detached")
        no_error(page)
    finally:
        ctx.close()
        demo.close()


def test_sketch_rnn_in_the_browser(chromium, tmp_path):
    page, explorer, demo, ctx = open_explorer(chromium, tmp_path, "sketch-rnn")
    try:
        assert page.locator("#knob-temperature").count() == 1
        strokes = write_stroke_npz(tmp_path / "cats.npz", n=12, max_points=12, splits=(6, 3))
        explore(page, tmp_path, strokes, shape=explorer.space().shape, sketches=True)
        # a sketch drawn with the mouse on the canvas -> stroke-3 -> encoded, reconstructed
        page.locator("#canvas canvas").scroll_into_view_if_needed()  # the mouse draws in the viewport
        box = page.locator("#canvas canvas").bounding_box()
        for (x0, y0), (x1, y1) in (((0.2, 0.2), (0.8, 0.3)), ((0.5, 0.3), (0.5, 0.9))):
            page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
            page.mouse.down()
            page.mouse.move(box["x"] + x1 * box["width"], box["y"] + y1 * box["height"], steps=4)
            page.mouse.up()
        drawn = json.loads(page.locator("#drawing textarea").input_value())
        assert len(drawn) == 2 and all(len(xs) == len(ys) >= 2 for xs, ys in drawn)
        page.click("#encode-drawing")
        wait_status(page, "Encoded 1 input(s) from the drawing")
        no_error(page)
        assert page.locator("#samples svg").count() >= 1
        lat = download(page, "download-latents", tmp_path)
        with np.load(lat, allow_pickle=False) as data:
            assert data["latent"].shape == (1, *explorer.space().shape)
        # completion of the drawn prefix: 3 sketches, the prefix (2 strokes) in red in each
        set_slider_number(page, "completions", 3)
        page.click("#complete")
        wait_status(page, "3 completion(s) of the drawing")
        no_error(page)
        assert page.locator("#completions-view svg").count() == 1
        svg = download(page, "download-completions", tmp_path)
        text = svg.read_text()
        assert svg.suffix == ".svg" and text.startswith("<svg") and text.count("<g transform=") == 3
        assert text.count('<polyline stroke="#d62728"') >= 3 * 2
        page.locator("#canvas .canvas-clear").click()
        page.click("#complete")
        assert "nothing drawn yet" in wait_status(page, "Error:")
        page.click("#sample")
        wait_status(page, "Sampled 4 latent(s)")
        page.click("#encode-drawing")
        assert "nothing drawn yet" in wait_status(page, "Error:")
    finally:
        ctx.close()
        demo.close()


def training_data(model):
    """Labelled stand-in training data of the model's shape."""
    from latentstudio.data.base import ImageData
    from latentstudio.studio.explorer import Reference

    x = model.example_batch(12, torch.Generator().manual_seed(3)).x
    return Reference.of(ImageData(x, labels=torch.arange(12) % 3, class_names=["cat", "dog", "owl"], name="toy"))


def test_two_stage_vae_in_the_browser(chromium, tmp_path):
    page, explorer, demo, ctx = open_explorer(chromium, tmp_path, "two-stage-vae", reference=training_data)
    try:
        img = tmp_path / "face.png"
        save_image(torch.randint(0, 255, (3, 24, 24), dtype=torch.uint8), img)
        explore(page, tmp_path, img, shape=explorer.space().shape, sketches=False)
        # label directions of the training data and the nearest training examples
        assert "12 examples of toy train" in page.locator("#reference-info").inner_text()
        move_slider(page, "label-1", 1.5)
        wait_status(page, "dog+1.5")
        no_error(page)
        page.click("#nearest")
        wait_status(page, "Nearest training examples of the moved latent 0")
        no_error(page)
        nearest = download(page, "download-nearest", tmp_path)
        with Image.open(nearest) as im:
            assert im.format == "PNG" and im.size[0] > 6 * explorer.output_shape()[-1]
        page.locator("#space label", has_text="u").click()
        wait_status(page, "Latent space u")
        assert "latent space u" in page.locator("#space-info").inner_text()
        page.click("#sample")
        wait_status(page, "Sampled 4 latent(s) of u")
        no_error(page)
    finally:
        ctx.close()
        demo.close()


def test_stylegan2_with_explorer_in_the_browser(chromium, tmp_path):
    """StyleGAN2: one page with the Face Studio's tab and the explorer's (opened first, as ``--explorer``
    does); z is explored (no encoder) and W+ moves act on the ticked style layers only."""
    page, explorer, demo, ctx = open_explorer(chromium, tmp_path, "stylegan2", face=True)
    try:
        assert page.get_by_role("tab", name="Face studio").count() == 1
        assert page.get_by_role("tab", name="Latent explorer").get_attribute("aria-selected") == "true"
        page.wait_for_selector("#knob-truncation_psi", state="attached")  # rendered after #sample on a busy machine
        assert page.locator("#knob-truncation_psi").count() == 1
        # no encoder: only latent files load here (photos go through the Face Studio's tab)
        assert "A latent file" in page.locator("#input-file").inner_text()
        move_slider(page, "knob-truncation_psi", 0.7)
        lat = explore(page, tmp_path, None, shape=explorer.space().shape, sketches=False)
        with np.load(lat, allow_pickle=False) as data:  # the shared knob control fed the sampling
            assert json.loads(str(data["meta"]))["knobs"]["truncation_psi"] == 0.7
        # W+: a layer mask of num_ws style layers
        assert not page.locator("#layer-mask").is_visible()
        page.locator("#space label", has_text="w+").click()
        wait_status(page, "Latent space w+")
        n = explorer.layer_count("w+")
        mask = page.locator("#layer-mask")
        mask.wait_for(state="visible")
        assert n > 2 and mask.locator("input[type=checkbox]").count() == n
        page.click("#sample")
        wait_status(page, "Sampled 4 latent(s) of w+")
        no_error(page)
        wplus = download(page, "download-latents", tmp_path)
        for i in range(2, n):  # keep layers 0 and 1
            mask.get_by_label(str(i), exact=True).uncheck()
        move_slider(page, "pc-pc0", 2)
        wait_status(page, "on style layers 0, 1;")
        no_error(page)
        moved = load_latent(download(page, "download-moved-latent", tmp_path))
        assert moved["meta"]["layers"] == [0, 1]
        base = torch.from_numpy(np.load(wplus)["latent"][0])
        assert tuple(moved["latent"].shape) == (1, n, base.shape[-1])
        assert torch.equal(moved["latent"][0, 2:], base[2:]) and not torch.allclose(moved["latent"][0, :2], base[:2])
        for i in range(n):
            mask.get_by_label(str(i), exact=True).uncheck()
        assert "tick at least one style layer" in wait_status(page, "Error:")
        # the Face Studio's tab of the same page
        page.get_by_role("tab", name="Face studio").click()
        page.locator("#seed input").fill("3")
        page.click("#generate")
        wait_status(page, "Face from seed 3")
        no_error(page)
    finally:
        ctx.close()
        demo.close()
