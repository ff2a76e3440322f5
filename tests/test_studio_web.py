"""Browser test of the web studio: headless Chromium drives generate -> edit -> download, and bad uploads.

Needs the ``playwright`` package (a dev dependency) and a Chromium binary: Debian's ``chromium``
package at /usr/bin/chromium (``apt-get install -y chromium``) or the path in
``$LATENTSTUDIO_CHROMIUM``. In CI (``$CI`` set; ``.ci/run`` installs Chromium) a missing browser is a
failure that says what to install; elsewhere the test is skipped with that message, so the README's
test line also passes on a machine without a browser (set ``LATENTSTUDIO_SKIP_BROWSER=1`` to skip
it on purpose everywhere).
"""

from __future__ import annotations

import io
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if os.environ.get("LATENTSTUDIO_SKIP_BROWSER") == "1":
        pytest.skip("LATENTSTUDIO_SKIP_BROWSER=1")
    from latentstudio.models.vae import VAE
    from latentstudio.models.vae.config import VAEConfig
    from latentstudio.studio.directions import DirectionLibrary, ganspace
    from latentstudio.studio.loading import load_latent_model
    from latentstudio.studio.projection import ProjectionConfig
    from latentstudio.studio.session import Studio
    from latentstudio.studio.web.app import serve

    root = tmp_path_factory.mktemp("web")
    torch.manual_seed(0)
    VAE(VAEConfig(image_channels=3, image_size=16, latent_dim=8, base_dim=4, num_scale=2, fc_dim=16)).save_pretrained(
        root / "model")
    model = load_latent_model(root / "model")
    lib = DirectionLibrary(ganspace(model.sample_latents(200), k=2))
    studio = Studio(model, lib, projection=ProjectionConfig(steps=10, perceptual="none"), perceptual=None)
    demo, url = serve(studio, port=free_port(), block=False, workdir=root / "files", quiet=True)
    assert url.startswith("http://127.0.0.1:")
    yield url, model, root
    demo.close()


@pytest.fixture(scope="module")
def page(server):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser test needs the playwright package: pip install -e '.[dev]'")
    exe = chromium_path()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        ctx = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 1000})
        pg = ctx.new_page()
        pg.set_default_timeout(60_000)
        pg.goto(server[0])
        pg.wait_for_selector("#generate")
        yield pg
        browser.close()


def status_text(page) -> str:
    return page.locator("#status textarea").input_value()


def wait_status(page, text: str) -> str:
    page.wait_for_function(
        "t => (document.querySelector('#status textarea') || {}).value?.includes(t)", arg=text, timeout=60_000)
    return status_text(page)


def after_src(page) -> str:
    return page.locator("#after img").get_attribute("src") or ""


def test_generate_edit_download(page, tmp_path):
    page.locator("#seed input").fill("3")
    page.click("#generate")
    wait_status(page, "Face from seed 3")
    first = after_src(page)
    assert first
    # move the first direction's slider: the "after" image changes
    slider = page.locator("#dir-pc0 input[type=range]")
    slider.fill("2.5")
    slider.dispatch_event("pointerup")
    wait_status(page, "pc0 +2.5")
    page.wait_for_function("s => document.querySelector('#after img')?.src !== s", arg=first)
    with page.expect_download() as dl:
        page.click("#download-image")
    path = tmp_path / "face.png"
    dl.value.save_as(path)
    img = Image.open(path)
    assert img.size == (16, 16) and img.mode == "RGB"
    with page.expect_download() as dl:
        page.click("#download-latent")
    lat = tmp_path / "face.npz"
    dl.value.save_as(lat)
    with np.load(lat, allow_pickle=False) as data:
        assert data["latent"].shape == (1, 8)
        assert str(data["space"]) == "z"


def test_bad_uploads_are_rejected(page, tmp_path):
    page.get_by_role("tab", name="Upload photo").click()
    fake = tmp_path / "photo.png"
    fake.write_text("this is not an image")
    page.locator("#upload input[type=file]").set_input_files(str(fake))
    page.click("#project")
    assert "not a readable image" in wait_status(page, "Error:")
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (8, 8)).save(tiny)
    page.locator("#upload input[type=file]").set_input_files(str(tiny))
    page.click("#project")
    assert "at least 32 pixels" in wait_status(page, "at least")
    # the server still works afterwards
    page.get_by_role("tab", name="Random face").click()
    page.locator("#seed input").fill("5")
    page.click("#generate")
    wait_status(page, "Face from seed 5")


def test_upload_aligned_face_is_projected(page, server, tmp_path):
    _, model, _ = server
    face = model.images(model.random_latents([11]))[0]
    buf = io.BytesIO()
    Image.fromarray(face.permute(1, 2, 0).numpy()).resize((64, 64), Image.NEAREST).save(buf, format="PNG")
    photo = tmp_path / "aligned.png"
    photo.write_bytes(buf.getvalue())
    page.get_by_role("tab", name="Upload photo").click()
    page.locator("#upload input[type=file]").set_input_files(str(photo))
    page.locator("#already-aligned input").check()
    page.click("#project")
    msg = wait_status(page, "Projected the photo")
    assert "into z in 10 steps" in msg and "PSNR" in msg
