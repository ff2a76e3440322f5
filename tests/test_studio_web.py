"""The web studio: session behaviour (no browser) and headless Chromium driving the page of a face model
(the Face Studio's tab and the latent explorer's tab of one page).

The browser tests need the ``playwright`` package (a dev dependency) and a Chromium binary: Debian's
``chromium`` package at /usr/bin/chromium (``apt-get install -y chromium``) or the path in
``$LATENTSTUDIO_CHROMIUM``. In CI (``$CI`` set; ``.ci/run`` installs Chromium) a missing browser is a
failure that says what to install; elsewhere those tests are skipped with that message, so the README's
test line also passes on a machine without a browser (set ``LATENTSTUDIO_SKIP_BROWSER=1`` to skip
them on purpose everywhere). The session tests run everywhere.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import socket
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latentstudio.errors import ConfigError, LatentStudioError

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    env = os.environ.get("LATENTSTUDIO_CHROMIUM")
    for cand in ([env] if env else []) + ["/usr/bin/chromium", "/usr/bin/chromium-browser", shutil.which("chromium")]:
        if cand and Path(cand).is_file():
            return cand
    message = "the browser test needs Chromium: `apt-get install -y chromium` (or set LATENTSTUDIO_CHROMIUM)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_vae_dir(root: Path) -> Path:
    from latentstudio.models.vae import VAE
    from latentstudio.models.vae.config import VAEConfig

    torch.manual_seed(0)
    VAE(VAEConfig(image_channels=3, image_size=16, latent_dim=8, base_dim=4, num_scale=2, fc_dim=16)).save_pretrained(
        root / "model")
    return root / "model"


def png_bytes(img: torch.Tensor, side: int = 64) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img.permute(1, 2, 0).numpy()).resize((side, side), Image.NEAREST).save(buf, format="PNG")
    return buf.getvalue()


class StubLandmarker:
    """One face in the middle of any photo (eye and mouth points), instead of dlib."""

    predictor_path = "stub"

    def detect(self, image):
        from latentstudio.studio.alignment import Face

        h, w = image.shape[1:]
        pts = np.array([[0.4 * w, 0.42 * h], [0.6 * w, 0.42 * h], [0.42 * w, 0.62 * h], [0.58 * w, 0.62 * h]])
        return [Face(box=(int(0.25 * w), int(0.25 * h), int(0.75 * w), int(0.75 * h)), landmarks=pts, score=1.0)]


# ---------------------------------------------------------------------------------------------- sessions


@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory) -> Path:
    return tiny_vae_dir(tmp_path_factory.mktemp("vae"))


@pytest.fixture(scope="module")
def vae_studio(vae_dir):
    from latentstudio.studio.directions import DirectionLibrary, ganspace
    from latentstudio.studio.loading import load_latent_model
    from latentstudio.studio.projection import ProjectionConfig
    from latentstudio.studio.session import Studio

    model = load_latent_model(vae_dir)
    lib = DirectionLibrary(ganspace(model.sample_latents(200), k=3))
    return Studio(model, lib, projection=ProjectionConfig(steps=10, perceptual="none"), perceptual=None)


@pytest.fixture(scope="module")
def gan_studio():
    from latentstudio.models.stylegan2 import Generator, StyleGAN2Config
    from latentstudio.studio.directions import DirectionLibrary, ganspace
    from latentstudio.studio.projection import ProjectionConfig
    from latentstudio.studio.session import Studio
    from latentstudio.studio.stylegan import StyleGAN2Adapter

    torch.manual_seed(0)
    g = Generator(StyleGAN2Config(resolution=16, z_dim=16, w_dim=16, channel_base=256, channel_max=16,
                                  mapping_layers=2))
    g.estimate_w_avg(n=500)
    model = StyleGAN2Adapter(g)
    lib = DirectionLibrary(ganspace(model.sample_latents(300), k=3))
    return Studio(model, lib, projection=ProjectionConfig(steps=6, perceptual="none"), perceptual=None)


def test_layer_masks_conditional_edits_and_file_names(gan_studio):
    from latentstudio.studio.editing import parse_rows

    sess = gan_studio.session()
    model = gan_studio.model
    assert model.num_layers == 6 and model.layer_groups["coarse"] == (0, 1)
    assert parse_rows("all", 6, model.layer_groups) is None
    assert parse_rows("middle", 6, model.layer_groups) == [1, 2]
    assert parse_rows("0-2, 5", 6) == [0, 1, 2, 5]
    for bad in ("6", "2-1", "top"):
        with pytest.raises(ConfigError):
            parse_rows(bad, 6, model.layer_groups)
    base = sess.from_seed(3)
    sess.magnitudes = {"pc0": 2.0}
    full = sess.current_latent()
    sess.edit_layers = "fine"
    masked = sess.current_latent()
    lo = model.layer_groups["fine"][0]
    assert torch.allclose(masked[:lo], base[:lo]) and torch.allclose(masked[lo:], full[lo:])
    # conditional: pc0 holding pc1 fixed moves nothing along pc1 (the directions are not orthogonal in W+)
    sess.edit_layers, sess.fixed = "all", ["pc1"]
    moved = sess.current_latent() - base
    pc1 = gan_studio.library["pc1"].flat()
    assert abs(float(moved[0] @ pc1)) < 1e-4 * float(moved[0].norm() * pc1.norm())
    sess.truncation, sess.edit_layers = 0.7, "0-2"
    assert sess.file_stem() == "seed3_psi0.7_pc0+2_layers-0-2_fixed-pc1"
    assert sess.file_stem(edited=False) == "seed3"
    with pytest.raises(ConfigError, match="rows"):
        from latentstudio.studio.session import Controls

        sess.set_controls(Controls(edit_layers="9"))


def test_saved_latent_restores_face_and_every_control(gan_studio, tmp_path):
    from latentstudio.studio.projection import load_latent
    from latentstudio.studio.session import Controls

    sess = gan_studio.session()
    aligned = gan_studio.model.images(gan_studio.model.random_latents([5]))[0]
    sess.set_photo(aligned, "me.png")
    sess.project(aligned)
    assert sess.noise and sess.name == "me"
    sess.set_controls(Controls(magnitudes={"pc0": 1.5, "pc2": -0.5}, truncation=0.8, mix_seed=4, mix_layers="coarse",
                               mix_amount=0.5, edit_layers="middle", fixed=["pc1"]))
    image = sess.render()
    edited = sess.save_latent(tmp_path / f"{sess.file_stem()}.npz")
    unedited = sess.save_latent(tmp_path / "unedited.npz", edited=False)
    assert edited.name == "me_psi0.8_mix-coarse0.5-seed4_pc0+1.5_pc2-0.5_layers-middle_fixed-pc1.npz"
    assert torch.allclose(load_latent(edited)["latent"], sess.current_latent())
    assert torch.allclose(load_latent(unedited)["latent"], sess.base)

    other = gan_studio.session()
    assert other.restore(edited) == []
    assert other.controls() == sess.controls() and other.name == "me"
    assert torch.equal(other.render(), image)  # same face: base, noise maps, mixing face and edits
    other.restore(unedited)
    assert other.controls() == Controls() and torch.allclose(other.current_latent(), sess.base)
    # a latent written elsewhere (no base, no controls) becomes the base with the controls reset
    np.save(tmp_path / "bare.npy", sess.current_latent().numpy())
    other.set_controls(Controls(magnitudes={"pc0": 1.0}))
    other.restore(tmp_path / "bare.npy")
    assert other.controls() == Controls() and other.name == "bare"


def test_projection_reports_previews_and_stops_when_closed(vae_studio):
    sess = vae_studio.session()
    target = vae_studio.model.images(vae_studio.model.random_latents([2]))[0]
    cfg = vae_studio.projection.replace(steps=20)
    updates = list(sess.project_steps(target, cfg, preview_every=5))
    assert [u.step for u in updates if u.kind == "step"] == list(range(1, 21))
    assert [u.step for u in updates if u.kind == "image"][:5] == [0, 5, 10, 15, 20]
    assert all(u.image.shape == (3, 16, 16) for u in updates if u.kind == "image")
    assert updates[-1].kind == "done" and sess.source == "photo" and torch.equal(sess.base, updates[-1].result.latent)
    # closing the iterator (a cancelled request) stops the worker; the face stays as it was
    sess.from_seed(1)
    before = sess.base.clone()
    it = sess.project_steps(target, vae_studio.projection.replace(steps=100_000), preview_every=10)
    for u in it:
        if u.kind == "image" and u.step >= 10:
            break
    it.close()
    assert not [t for t in threading.enumerate() if t.name == "latentstudio-projection"]
    assert torch.equal(sess.base, before) and sess.source == "seed 1"


def test_wrong_face_number_keeps_the_photo(vae_studio):
    from latentstudio.studio.alignment import Face, MultipleFacesError

    vae_studio._landmarker = StubLandmarker()
    try:
        sess = vae_studio.session()
        photo = torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
        sess.set_photo(photo, "group.jpg")
        with pytest.raises(LatentStudioError, match="face 3 does not exist"):
            sess.align(face_index=3)
        assert sess.photo is photo
        aligned, faces = sess.align(face_index=None)
        assert len(faces) == 1 and aligned.shape == (3, 16, 16) and sess.face_used == 0
        assert [t.shape for t in sess.face_thumbnails()] == [(96, 96, 3)]
    finally:
        vae_studio._landmarker = None
    small, big = (Face((0, 0, 10, 10), np.zeros((4, 2))), Face((20, 0, 60, 40), np.zeros((4, 2))))
    assert sess.choose_face([small, big]) == 1  # the dominant face
    with pytest.raises(MultipleFacesError, match="choose one by its number"):
        sess.choose_face([big, Face((70, 0, 100, 30), np.zeros((4, 2)))])


def test_shared_controls_are_one_function_for_every_family(tmp_path):
    import gradio as gr

    from latentstudio.models.base import Knob
    from latentstudio.studio.web.app import TRUNCATION
    from latentstudio.studio.web.components import knob_control, knob_values, parse_seed, parse_seeds

    # a knob's control follows its kind, the same for the face view's psi and the explorer's knobs
    psi = knob_control(TRUNCATION, elem_id="truncation")
    assert isinstance(psi, gr.Slider) and (psi.minimum, psi.maximum, psi.value) == (0.0, 1.5, 1.0)
    assert isinstance(knob_control(Knob("sampler", "normal", "", kind=str), choices=["normal", "gmm"]), gr.Dropdown)
    assert isinstance(knob_control(Knob("greedy", False, "", kind=bool)), gr.Checkbox)
    cutoff = knob_control(Knob("truncation_cutoff", None, "", kind=int))
    assert isinstance(cutoff, gr.Number) and cutoff.precision == 0 and cutoff.elem_id == "knob-truncation_cutoff"
    assert knob_values([Knob("truncation_cutoff", None, "", kind=int), Knob("truncation_psi", 1.0, "")],
                       {"truncation_cutoff": 4.0, "truncation_psi": 1.0}) == {"truncation_cutoff": 4,
                                                                             "truncation_psi": 1.0}
    assert knob_values([Knob("temperature", 0.5, "")], {"temperature": ""}) == {"temperature": None}
    # one seed parser: the face view's single seed and the explorer's seeds
    assert parse_seed(3.0) == 3 and parse_seed("7") == 7 and parse_seeds("0-2,5") == [0, 1, 2, 5]
    for bad, message in ((None, "give a seed"), ("", "give a seed"), ("0-2", "one seed"), (-1, "not a number")):
        with pytest.raises(LatentStudioError, match=message):
            parse_seed(bad)


def test_the_page_needs_a_view_and_opens_on_one_it_has(tmp_path):
    from test_contract import make

    from latentstudio.studio.explorer import Explorer
    from latentstudio.studio.web.studio_app import build_studio_app

    with pytest.raises(LatentStudioError, match="needs a model"):
        build_studio_app(None, None, workdir=tmp_path / "a")
    with pytest.raises(LatentStudioError, match="no view 'face' on this page; it has explorer"):
        build_studio_app(Explorer(make("draw")), None, first="face", workdir=tmp_path / "b")


# ---------------------------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def server(tmp_path_factory, vae_dir, vae_studio):
    """The studio page of a face model (a VAE of unknown data): the Face Studio's tab, open first, and the
    latent explorer's tab, as ``latentstudio studio`` serves it."""
    if os.environ.get("LATENTSTUDIO_SKIP_BROWSER") == "1":
        pytest.skip("LATENTSTUDIO_SKIP_BROWSER=1")
    from latentstudio.samplers import load_model_with_samplers
    from latentstudio.studio.explorer import Explorer
    from latentstudio.studio.web.studio_app import serve_studio

    root = tmp_path_factory.mktemp("web")
    studio = vae_studio
    explorer = Explorer(load_model_with_samplers(vae_dir))
    demo, url = serve_studio(explorer, studio, port=free_port(), block=False, workdir=root / "files", quiet=True,
                             pca_samples=32)
    assert url.startswith("http://127.0.0.1:")
    # the models were loaded before the first request (the first projection reports from its first step)
    assert studio._distance is not None
    assert studio._landmarker is not None or studio.landmarker_error
    yield url, studio, root / "files", demo
    demo.close()
    assert not (root / "files").exists()  # the server's folder goes with the server


@pytest.fixture(scope="module")
def browser_context(server):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser test needs the playwright package: pip install -e '.[dev]'")
    exe = chromium_path()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        ctx = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 1400})
        ctx.set_default_timeout(60_000)
        yield ctx
        browser.close()


def open_page(ctx, url):
    pg = ctx.new_page()
    pg.goto(url)
    pg.wait_for_selector("#generate")
    return pg


@pytest.fixture(scope="module")
def page(browser_context, server):
    return open_page(browser_context, server[0])


def status_text(page) -> str:
    return page.locator("#status textarea").input_value()


def wait_status(page, text: str, timeout: float = 60_000) -> str:
    page.wait_for_function(
        "t => (document.querySelector('#status textarea') || {}).value?.includes(t)", arg=text, timeout=timeout)
    return status_text(page)


def img_src(page, elem: str) -> str:
    loc = page.locator(f"#{elem} img")
    return (loc.get_attribute("src") or "") if loc.count() else ""


def slider_value(page, elem: str) -> float:
    return float(page.locator(f"#{elem} input[type=number]").input_value())


def move_slider(page, elem: str, value: float) -> None:
    slider = page.locator(f"#{elem} input[type=range]")
    slider.fill(str(value))
    slider.dispatch_event("pointerup")


def set_slider_number(page, elem: str, value: float, tries: int = 5) -> None:
    """Type ``value`` into the number box of the slider ``elem`` until the slider holds it (its range input
    follows the box). In Chromium a fill right after an accordion opened is sometimes lost (the box keeps its
    old value), so the fill is repeated until the page shows the value, not timed."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.locator(f"#{elem} input[type=number]")
    for _ in range(tries):
        box.fill(str(value))
        box.press("Tab")
        try:
            page.wait_for_function("([e, v]) => Number(document.querySelector(`#${e} input[type=range]`)?.value) === v",
                                   arg=[elem, value], timeout=5_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"the slider #{elem} did not take {value} after {tries} tries")


def show(page, elem: str, accordion: str) -> None:
    """Open ``accordion`` unless ``elem`` (inside it) is already visible."""
    if not page.locator(f"#{elem}").is_visible():
        page.get_by_text(accordion, exact=True).click()
        page.locator(f"#{elem}").wait_for(state="visible")


def download(page, elem: str, folder: Path) -> Path:
    with page.expect_download() as dl:
        page.click(f"#{elem}")
    path = folder / dl.value.suggested_filename
    dl.value.save_as(path)
    return path


def set_upload(page, path: Path, elem: str = "upload") -> None:
    """Put ``path`` into a file box (clearing the file it shows first)."""
    clear = page.locator(f"#{elem} button[aria-label=Clear]")
    if clear.count():
        clear.click()
    page.locator(f"#{elem} input[type=file]").set_input_files(str(path))


def upload_aligned(page, path: Path) -> None:
    page.get_by_role("tab", name="Upload photo").click()
    page.locator("#already-aligned input").check()
    set_upload(page, path)
    wait_status(page, f"Photo {path.name}")


def test_generate_edit_download_named_files(page, tmp_path):
    page.locator("#seed input").fill("3")
    page.click("#generate")
    wait_status(page, "Face from seed 3")
    first = img_src(page, "after")
    assert first
    move_slider(page, "dir-pc0", 2.5)  # the mouse: released slider
    wait_status(page, "pc0 +2.50")
    page.wait_for_function("s => document.querySelector('#after img')?.src !== s", arg=first)
    png = download(page, "download-image", tmp_path)
    assert png.name == "seed3_pc0+2.5.png"
    assert Image.open(png).size == (16, 16) and Image.open(png).mode == "RGB"  # the model's resolution
    edited = download(page, "download-latent", tmp_path)
    unedited = download(page, "download-unedited", tmp_path)
    assert edited.name == "seed3_pc0+2.5.npz" and unedited.name == "seed3.npz"
    with np.load(edited, allow_pickle=False) as data:
        assert data["latent"].shape == (1, 8) and str(data["space"]) == "z"
        assert json.loads(str(data["meta"]))["controls"]["magnitudes"]["pc0"] == 2.5
    with np.load(unedited, allow_pickle=False) as data:
        assert np.allclose(data["latent"], data["base"])


def test_keyboard_and_enter_re_render(page):
    page.get_by_role("tab", name="Random face").click()
    page.locator("#seed input").fill("4")
    page.locator("#seed input").press("Enter")
    wait_status(page, "Face from seed 4")
    page.locator("#dir-pc1 input[type=range]").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    wait_status(page, "pc1 +0.10")


def test_reset_resets_every_control(page):
    page.locator("#seed input").fill("5")
    page.click("#generate")
    wait_status(page, "Face from seed 5")
    move_slider(page, "truncation", 0.5)
    show(page, "mix-amount", "Style mixing")
    move_slider(page, "mix-amount", 0.5)
    move_slider(page, "dir-pc2", -1)
    wait_status(page, "pc2 -1.00")
    page.click("#reset")
    wait_status(page, "Reset every control")
    assert slider_value(page, "truncation") == 1.0
    assert slider_value(page, "mix-amount") == 0.0
    assert slider_value(page, "dir-pc0") == slider_value(page, "dir-pc2") == 0.0


def test_refused_uploads_are_one_log_line_and_a_message(page, tmp_path, caplog, capfd):
    caplog.set_level(logging.WARNING, logger="latentstudio.studio.web")
    page.get_by_role("tab", name="Upload photo").click()
    fake = tmp_path / "photo.png"
    fake.write_text("this is not an image")
    set_upload(page, fake)
    assert "not a readable image" in wait_status(page, "Error:")
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (8, 8)).save(tiny)
    set_upload(page, tiny)
    assert "at least 32 pixels" in wait_status(page, "at least")
    refused = [r for r in caplog.records if r.getMessage().startswith("refused upload")]
    assert len(refused) == 2 and not any(r.exc_info for r in refused)
    assert all("\n" not in r.getMessage() for r in refused)
    assert "Traceback" not in capfd.readouterr().err
    # the server still works afterwards
    page.get_by_role("tab", name="Random face").click()
    page.locator("#seed input").fill("5")
    page.click("#generate")
    wait_status(page, "Face from seed 5")


def test_face_number_photo_and_controls_on_a_new_photo(page, server, tmp_path):
    _, studio, _, _ = server
    photo = tmp_path / "group.png"
    photo.write_bytes(png_bytes(torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)))
    saved = studio._landmarker
    studio._landmarker = StubLandmarker()
    try:
        page.locator("#seed input").fill("8")
        page.click("#generate")
        wait_status(page, "Face from seed 8")
        move_slider(page, "truncation", 0.6)
        show(page, "mix-amount", "Style mixing")
        move_slider(page, "mix-amount", 0.5)
        wait_status(page, "Edited")
        page.wait_for_function("() => !document.querySelector('#after .pending, #after .generating')")
        page.get_by_role("tab", name="Upload photo").click()
        page.locator("#already-aligned input").uncheck()
        set_upload(page, photo)
        wait_status(page, "One face found")
        assert page.locator("#faces img").count() == 1
        page.locator("#face-index input").fill("3")
        page.click("#project")
        assert "face 3 does not exist" in wait_status(page, "Error:")
        assert img_src(page, "photo")  # the photo stays; another number works without uploading again
        page.locator("#face-index input").fill("0")
        page.click("#project")
        wait_status(page, "Projected the photo")
    finally:
        studio._landmarker = saved
    # psi and mixing of the seed face do not carry over to the photo
    assert slider_value(page, "truncation") == 1.0 and slider_value(page, "mix-amount") == 0.0
    assert download(page, "download-unedited", tmp_path).name == "group_projection.npz"


def slow_projections(monkeypatch) -> None:
    """Each projection step takes at least 20 ms, so that 2000 steps outlast the queueing and cancelling of
    a test on an idle machine too (the tiny model alone projects them in a few seconds)."""
    from latentstudio.studio.session import StudioSession

    project = StudioSession.project

    def slow_project(self, aligned, config=None, progress=None, preview=None):
        def report(step, total, info):
            time.sleep(0.02)
            if progress is not None:
                progress(step, total, info)

        return project(self, aligned, config, progress=report, preview=preview)

    monkeypatch.setattr(StudioSession, "project", slow_project)


def aligned_photo(studio, folder: Path) -> Path:
    model = studio.model
    photo = folder / "aligned.png"
    photo.write_bytes(png_bytes(model.images(model.random_latents([11]))[0]))
    return photo


def test_projection_previews_queue_message_and_cancel(page, browser_context, server, tmp_path, monkeypatch):
    url, studio, _, _ = server
    slow_projections(monkeypatch)
    photo = aligned_photo(studio, tmp_path)
    upload_aligned(page, photo)
    set_slider_number(page, "steps", 2000)
    set_slider_number(page, "preview-every", 50)
    page.click("#project")
    wait_status(page, "Projecting: step")  # the reconstruction is shown while projecting
    shown = img_src(page, "before")
    page.wait_for_function("s => document.querySelector('#before img')?.src !== s", arg=shown)
    other = open_page(browser_context, url)
    try:
        upload_aligned(other, photo)
        other.click("#project")
        wait_status(other, "Waiting: another photo is being projected")
        page.click("#cancel")
        wait_status(page, "Projection cancelled")
        other.locator("#cancel").click()  # while still queued or just started
        wait_status(other, "Projection cancelled")
        # no preview of the cancelled projection came after the Cancel's message
        assert "Projection cancelled" in status_text(page)
    finally:
        other.close()
    deadline = time.time() + 20
    while studio.projections_running and time.time() < deadline:
        time.sleep(0.1)
    assert studio.projections_running == 0
    assert not [t for t in threading.enumerate() if t.name == "latentstudio-projection"]


def test_sweep_and_latent_round_trip(page, tmp_path):
    page.get_by_role("tab", name="Random face").click()
    page.locator("#seed input").fill("6")
    page.click("#generate")
    wait_status(page, "Face from seed 6")
    move_slider(page, "truncation", 0.8)
    move_slider(page, "dir-pc0", 1.5)
    wait_status(page, "pc0 +1.50")
    show(page, "sweep", "Sweep (GIF / MP4)")
    set_slider_number(page, "sweep-frames", 5)
    page.click("#sweep")
    wait_status(page, "Sweep of pc0")
    gif = download(page, "download-sweep", tmp_path)
    assert gif.name == "seed6_psi0.8_pc0+1.5_sweep-pc0-3..+3.gif"
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 8  # 5 frames there and 3 back
    latent = download(page, "download-latent", tmp_path)
    page.click("#reset")
    wait_status(page, "Reset every control")
    assert slider_value(page, "dir-pc0") == 0.0
    page.get_by_role("tab", name="Latent file").click()
    set_upload(page, latent, "latent-file")
    wait_status(page, "Loaded the latent file (pc0 +1.50)")
    assert slider_value(page, "dir-pc0") == 1.5 and slider_value(page, "truncation") == 0.8


def test_http_api_names_every_event_and_parameter(server):
    url, _, _, demo = server
    info = json.load(urllib.request.urlopen(url + "gradio_api/info"))
    endpoints = info["named_endpoints"]
    for name in ("/generate", "/edit", "/project", "/upload_photo", "/load_latent", "/reset", "/sweep",
                 "/cancel_projection", "/random_seed",
                 "/sample", "/encode", "/interpolate", "/move"):  # one API: the explorer's tab is on the page
        assert name in endpoints
    names = {ep: [p["parameter_name"] for p in d["parameters"]] for ep, d in endpoints.items()}
    assert not [ep for ep, ps in names.items() if any(p.startswith("param_") for p in ps)]
    assert names["/edit"] == ["truncation_psi", "mix_seed", "mix_rows", "mix_amount", "edit_layers", "hold_fixed",
                              "pc0", "pc1", "pc2"]
    assert names["/project"] == ["face_number", "already_aligned", "steps", "show_every"]
    unnamed = [d for d in demo.config["dependencies"]
               if not d.get("api_name") and "unload" not in str(d.get("targets"))]
    assert not unnamed
    assert demo.run_history is False  # no copies of the calls' photos in the browser's storage


def test_edit_options_through_the_http_api(server):
    from gradio_client import Client

    url, _, _, _ = server
    client = Client(url, verbose=False, download_files=False)
    out = client.predict(seed=2, api_name="/generate")
    assert "Face from seed 2" in out[-1]
    out = client.predict(pc0=1.0, pc1=0.5, hold_fixed=["pc2"], api_name="/edit")
    assert out[-1] == "Edited (pc0 +1.00, pc1 +0.50, holding pc2 fixed)."
    out = client.predict(pc0=1.0, edit_layers="3", api_name="/edit")
    assert out[-1].startswith("Error: layers '3': rows [3] do not exist")


def test_cancel_through_the_http_api_stops_the_projection(server, tmp_path, monkeypatch):
    """An API client's /cancel_projection stops its session's running projection (the page's Cancel also
    cancels the request itself): no preview and no result come after it."""
    from gradio_client import Client, handle_file

    url, studio, _, _ = server
    slow_projections(monkeypatch)
    client = Client(url, verbose=False, download_files=False)
    out = client.predict(photo=handle_file(str(aligned_photo(studio, tmp_path))), already_aligned=True,
                         api_name="/upload_photo")
    assert "Photo aligned.png" in out[-1]
    job = client.submit(face_number=None, already_aligned=True, steps=2000, show_every=50, api_name="/project")

    def statuses() -> list[str]:
        return [o for out in job.outputs() for o in out if isinstance(o, str) and o.startswith(("Projecting", "Projected"))]

    deadline = time.time() + 120  # a limit on waiting only: the assertions below are about the order of messages
    while not statuses() and time.time() < deadline:
        time.sleep(0.05)
    assert statuses() and statuses()[0].startswith("Projecting: step"), statuses()
    assert client.predict(api_name="/cancel_projection")[0].startswith("Projection cancelled")
    job.result(timeout=120)
    said = statuses()
    assert not [m for m in said if m.startswith("Projected")], said[-1]  # it stopped: no result
    last = int(said[-1].split("step ")[1].split("/")[0])
    assert last < 2000
    while studio.projections_running and time.time() < deadline:
        time.sleep(0.05)
    assert studio.projections_running == 0


def test_one_page_has_the_face_view_and_the_explorer_in_one_session(browser_context, server, tmp_path):
    url, _, files, _ = server
    sessions = files / "sessions"
    before = set(sessions.iterdir()) if sessions.is_dir() else set()
    pg = open_page(browser_context, url)
    try:
        assert pg.get_by_role("tab", name="Face studio").get_attribute("aria-selected") == "true"
        assert "Pick a seed" in status_text(pg)
        pg.locator("#seed input").fill("2")
        pg.click("#generate")
        wait_status(pg, "Face from seed 2")
        pg.get_by_role("tab", name="Latent explorer").click()
        assert "vae" in pg.locator("#header").inner_text() and "latent space z" in pg.locator("#space-info").inner_text()
        pg.locator("#seeds textarea, #seeds input").first.fill("0-3")
        pg.click("#sample")
        wait_status(pg, "Sampled 4 latent(s) of z")
        assert pg.locator(".toast-body.error, .toast-wrap .error").count() == 0
        lat = download(pg, "download-latents", tmp_path)
        with np.load(lat, allow_pickle=False) as data:
            assert data["latent"].shape == (4, 8) and str(data["space"]) == "z"
        move_slider(pg, "pc-pc0", 1)
        wait_status(pg, "Moved latent 0 (pc0+1)")
        # back on the face tab, its face and controls are as they were
        pg.get_by_role("tab", name="Face studio").click()
        assert img_src(pg, "after") and download(pg, "download-image", tmp_path).name == "seed2.png"
        # both views wrote into the one folder of this browser session
        (folder,) = set(sessions.iterdir()) - before
        assert any(folder.rglob("seed2.png")) and any(folder.rglob("z_seeds0-3.npz"))
    finally:
        pg.close()


def test_session_folder_is_deleted_when_the_tab_closes(browser_context, server):
    url, _, files, _ = server
    sessions = files / "sessions"
    before = set(sessions.iterdir()) if sessions.is_dir() else set()
    pg = open_page(browser_context, url)
    pg.locator("#seed input").fill("9")
    pg.click("#generate")
    wait_status(pg, "Face from seed 9")
    (folder,) = set(sessions.iterdir()) - before
    assert any(folder.rglob("*.png"))
    pg.close()
    deadline = time.time() + 20
    while folder.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert not folder.exists()
