"""Screenshots of the web studio (docs/explorer.md) with headless Chromium, one model per family.

Each model is opened the way a user opens it, with ``latentstudio studio --model PATH --port N`` in a
subprocess; Playwright then samples, encodes an input, interpolates and moves a direction slider (and, per
family: DRAW's drawing steps of an encoded latent, a sheep drawn with the mouse and completed, a photo
projected and edited in the face view), and takes one full-page screenshot per model.

    python docs/images/explorer_screenshots.py \\
        --model two-stage-vae=RUN --input two-stage-vae=digit.png --reference two-stage-vae \\
        --model draw=RUN --input draw=digit.png \\
        --model sketch-rnn=RUN --input sketch-rnn=sheep.npz \\
        --model face=RUN --input face=photo.png --directions face=directions.npz \\
        --data-root ../shared/data

Writes docs/images/explorer_<name>.png (width 1100 px). Needs Debian's chromium (/usr/bin/chromium) and
the playwright package (the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
WIDTH = 1100


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, rest = v.partition("=")
        if not sep:
            sys.exit(f"{flag} takes NAME=VALUE, got {v!r}")
        out[name] = rest
    return out


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(cmd: list[str], port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"{' '.join(cmd)} exited with {proc.returncode}; see {log}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return proc
        except OSError:
            time.sleep(1)
    proc.terminate()
    sys.exit(f"the studio did not answer on port {port}; see {log}")


class Page:
    def __init__(self, page) -> None:
        self.page = page

    def status(self, text: str) -> str:
        self.page.wait_for_function(
            "t => (document.querySelector('#status textarea') || {}).value?.includes(t)", arg=text)
        self.page.wait_for_timeout(1500)  # let the images load (Gradio dims pending outputs)
        value = self.page.locator("#status textarea").input_value()
        if value.startswith("Error"):
            sys.exit(value)
        print("  ", value.splitlines()[0][:160], flush=True)
        return value

    def changed(self, before: str) -> str:
        """Wait until the status line differs from ``before``."""
        self.page.wait_for_function(
            "t => (document.querySelector('#status textarea') || {}).value !== t", arg=before)
        return self.status("")

    def upload(self, path: str, elem: str) -> None:
        clear = self.page.locator(f"#{elem} button[aria-label=Clear]")
        if clear.count():
            clear.click()
        self.page.locator(f"#{elem} input[type=file]").set_input_files(path)

    def slider(self, elem: str, value: float) -> None:
        s = self.page.locator(f"#{elem} input[type=range]")
        s.fill(str(value))
        s.dispatch_event("pointerup")

    def number(self, elem: str, value: int) -> None:
        box = self.page.locator(f"#{elem} input[type=number]")
        box.fill(str(value))
        box.press("Tab")

    def shot(self, name: str) -> Path:
        from PIL import Image

        path = HERE / f"explorer_{name}.png"
        tmp = path.with_suffix(".full.png")
        self.page.screenshot(path=str(tmp), full_page=True)
        with Image.open(tmp) as im:
            im = im.convert("RGB")
            if im.width > WIDTH:
                im = im.resize((WIDTH, round(im.height * WIDTH / im.width)), Image.LANCZOS)
            im.save(path, optimize=True)
        tmp.unlink()
        print("wrote", path, flush=True)
        return path


def explore(p: Page, name: str, input_path: str | None, *, reference: bool) -> None:
    """Sample, encode, interpolate and move a slider in the explorer's view."""
    page = p.page
    page.locator("#seeds textarea, #seeds input").first.fill("0-7")
    page.click("#sample")
    p.status("Sampled 8 latent(s)")
    first = 0
    if input_path:
        p.upload(input_path, "input-file")
        p.status("Encoded")
        first = 8  # the encoded input, to seed 0's sample
        page.locator("#path-from input, #path-from textarea").first.fill(str(first))
        page.locator("#path-to input, #path-to textarea").first.fill("0")
    p.number("path-steps", 8)
    page.click("#interpolate")
    p.status(f"slerp from latent {first} to latent {0 if first else 1}")
    p.slider("pc-pc0", 2)
    p.status("pc0")
    if reference:
        labels = page.locator("[id^=label-] input[type=range]")
        if labels.count():
            before = page.locator("#status textarea").input_value()
            labels.first.fill("2")
            labels.first.dispatch_event("pointerup")
            p.changed(before)
        page.click("#nearest")
        p.status("Nearest training examples")


def run_family(name: str, model: str, input_path: str | None, args, directions: str | None) -> None:
    from playwright.sync_api import sync_playwright

    port = _port()
    cmd = [str(Path(sys.executable).with_name("latentstudio")), "studio", "--model", model, "--port", str(port)]
    reference = name in args.reference
    if reference:
        cmd += ["--reference", "--limit", str(args.limit)] + (["--data-root", args.data_root] if args.data_root else [])
    if directions:
        cmd += ["--directions", directions] + (["--only", args.only] if args.only else [])
    if name == "face":
        cmd += ["--steps", str(args.projection_steps)]
    print(f"{name}: latentstudio {' '.join(cmd[1:])}", flush=True)
    proc = _serve(cmd, port, Path(tempfile.gettempdir()) / f"explorer_screenshots_{name}.log")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.set_default_timeout(900_000)
            page.goto(f"http://127.0.0.1:{port}/")
            p = Page(page)
            if name == "face":
                page.wait_for_selector("#generate")
                page.locator("#seed input").fill("7")
                page.click("#generate")
                p.status("Face from seed 7")
                if input_path:
                    page.get_by_role("tab", name="Upload photo").click()
                    p.upload(input_path, "upload")
                    page.click("#project")
                    p.status("Projected the photo")
                sliders = page.locator("[id^=dir-] input[type=range]")
                for i in range(min(2, sliders.count())):
                    sliders.nth(i).fill("2" if i == 0 else "-1.5")
                    sliders.nth(i).dispatch_event("pointerup")
                    page.wait_for_timeout(4000)
                p.shot("face_view")
                page.get_by_role("tab", name="Latent explorer").click()
                page.wait_for_selector("#sample", state="visible")
                explore(p, name, None, reference=False)
                p.shot("face_explorer")
                return
            page.wait_for_selector("#sample")
            explore(p, name, input_path, reference=reference)
            if page.locator("#latent-steps").count():  # DRAW: the canvas after each step of an encoded latent
                p.number("steps-latent", 8)
                page.click("#latent-steps")
                p.status("for latent 8")
            if page.locator("#canvas canvas").count():  # sketch-rnn: draw with the mouse, complete
                page.locator("#canvas canvas").scroll_into_view_if_needed()
                box = page.locator("#canvas canvas").bounding_box()
                # a sheep's back and two legs, roughly
                for stroke in (((0.25, 0.45), (0.35, 0.3), (0.55, 0.28), (0.72, 0.35), (0.75, 0.5)),
                               ((0.35, 0.55), (0.35, 0.75)), ((0.62, 0.55), (0.62, 0.75))):
                    page.mouse.move(box["x"] + stroke[0][0] * box["width"], box["y"] + stroke[0][1] * box["height"])
                    page.mouse.down()
                    for x, y in stroke[1:]:
                        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=5)
                    page.mouse.up()
                page.click("#encode-drawing")
                p.status("from the drawing")
                p.number("completions", 4)
                page.click("#complete")
                p.status("completion(s) of the drawing")
            p.shot(name)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=[], help="NAME=PATH (face: the face model)")
    ap.add_argument("--input", action="append", default=[], help="NAME=FILE to encode (image, stroke file, photo)")
    ap.add_argument("--directions", action="append", default=[], help="NAME=FILE: a direction library (face)")
    ap.add_argument("--reference", action="append", default=[], help="NAME: open with --reference (training data)")
    ap.add_argument("--only", default="Smiling,Male,Young,Eyeglasses,Blond_Hair,Bangs",
                    help="face: the directions shown (the first two are moved)")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--projection-steps", type=int, default=100)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    models, inputs, dirs = (_pairs(args.model, "--model"), _pairs(args.input, "--input"),
                            _pairs(args.directions, "--directions"))
    for name, path in models.items():
        run_family(name, path, inputs.get(name), args, dirs.get(name))


if __name__ == "__main__":
    main()
