"""Take the studio screenshots of docs/studio.md with headless Chromium (Playwright).

    python docs/images/studio_screenshots.py --model runs/studio/00000-two-stage-vae-celeba \
        --directions runs/studio/celeba-directions.npz --photo PHOTO.png

Writes docs/images/studio_seed.png (a generated face), studio_upload.png (a real photo aligned and
projected) and studio_edit.png (the projected face after moving sliders). Needs Debian's chromium
(/usr/bin/chromium) and the playwright package.
"""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

HERE = Path(__file__).parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--directions", required=True)
    ap.add_argument("--photo", required=True)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--edits", default="Smiling=2.5,Male=-1.5,Young=1.0",
                    help="Slider moves for the edit screenshot (name=value,...).")
    ap.add_argument("--only", default=None, help="Show only these directions (comma-separated).")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    from latentstudio.studio.adapters import load_latent_model
    from latentstudio.studio.directions import DirectionLibrary
    from latentstudio.studio.projection import default_config
    from latentstudio.studio.session import Studio
    from latentstudio.studio.web.app import serve

    model = load_latent_model(args.model)
    lib = DirectionLibrary.load(args.directions)
    if args.only:
        lib = DirectionLibrary([lib[n] for n in args.only.split(",")], latent_dim=lib.latent_dim)
    studio = Studio(model, lib, projection=default_config(model, steps=args.steps))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo, url = serve(studio, port=port, block=False, quiet=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.set_default_timeout(600_000)
            page.goto(url)
            page.wait_for_selector("#generate")

            def wait_status(text: str) -> None:
                page.wait_for_function("t => document.querySelector('#status textarea')?.value.includes(t)", arg=text)
                page.wait_for_timeout(2500)  # let the images finish loading (Gradio dims pending outputs)

            page.locator("#seed input").fill("7")
            page.click("#generate")
            wait_status("Face from seed 7")
            page.screenshot(path=str(HERE / "studio_seed.png"), full_page=True)
            page.get_by_role("tab", name="Upload photo").click()
            page.locator("#upload input[type=file]").set_input_files(args.photo)
            page.click("#project")
            wait_status("Projected the photo")
            page.screenshot(path=str(HERE / "studio_upload.png"), full_page=True)
            for pair in args.edits.split(","):
                name, value = pair.split("=")
                if name not in lib:
                    continue
                slider = page.locator(f"#dir-{name} input[type=range]")
                slider.fill(value)
                slider.dispatch_event("pointerup")
                wait_status(f"{name} {float(value):+.2f}")  # values are multiples of the slider step
            page.screenshot(path=str(HERE / "studio_edit.png"), full_page=True)
            browser.close()
    finally:
        demo.close()
    print("wrote", *(str(HERE / f"studio_{k}.png") for k in ("seed", "upload", "edit")))


if __name__ == "__main__":
    main()
