"""Privacy and disk use of the web studio: one folder per session, deleted when it ends; nothing left after
the server stops; a size cap; ``--keep-files``.

The end-to-end test starts ``latentstudio studio`` in a child process whose temporary folder
(``TMPDIR``) is new and empty, uploads and projects a photo in headless Chromium, stops the server
with SIGTERM and then searches that folder, Gradio's default folder and this process's temporary
folder for anything created during the test that holds the photo's bytes or name.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_studio_web import CHROMIUM_ARGS, chromium_path, free_port, tiny_vae_dir

# ---------------------------------------------------------------------------------------------- workspace


def test_uploads_move_into_the_session_folder_and_go_with_it(tmp_path):
    from latentstudio.studio.web.workspace import SessionEnded, Workspace

    ws = Workspace(tmp_path / "root", max_session_bytes=10_000)
    gradio_upload = ws.root / "3f2a" / "me.jpg"  # where Gradio puts an upload
    gradio_upload.parent.mkdir()
    gradio_upload.write_bytes(b"photo")
    stored = ws.store_upload("abc", gradio_upload)
    assert stored.read_bytes() == b"photo" and stored.name == "me.jpg"
    assert stored.is_relative_to(ws.session_dir("abc")) and not gradio_upload.parent.exists()
    render = ws.new_render_dir("abc") / "face.png"
    render.write_bytes(b"x" * 100)
    assert ws.end_session("abc")
    assert not ws.session_dir("abc", create=False).exists()
    with pytest.raises(SessionEnded):
        ws.new_render_dir("abc")  # a request still running for a closed tab writes nothing
    ws.close()
    assert not ws.root.exists()


def test_session_folder_cap_removes_the_oldest_renders_first(tmp_path):
    from latentstudio.studio.web.workspace import Workspace

    ws = Workspace(tmp_path / "root", max_session_bytes=2_500)
    folders = []
    for _ in range(5):
        folder = ws.new_render_dir("s")
        (folder / "render.png").write_bytes(b"x" * 1_000)
        folders.append(folder)
    removed = ws.enforce_cap("s", keep=[folders[0] / "render.png"])  # the page still shows the first one
    assert removed == folders[1:4]
    assert folders[0].exists() and folders[4].exists() and ws.session_bytes("s") <= 2_500
    ws.close()


def test_keep_files_keeps_sessions_and_the_folder(tmp_path):
    from latentstudio.studio.web.workspace import Workspace

    ws = Workspace(tmp_path / "root", keep_files=True)
    (ws.new_render_dir("s") / "face.png").write_bytes(b"x")
    assert not ws.end_session("s")
    ws.close()
    assert any((ws.root / "sessions" / "s").rglob("face.png"))


def test_gradio_writes_its_uploads_into_the_server_folder(tmp_path):
    """While the app is being served, Gradio's upload folder and cache are the workspace root."""
    from latentstudio.studio.web.workspace import Workspace

    before = os.environ.get("GRADIO_TEMP_DIR")
    ws = Workspace(tmp_path / "root")
    ws.activate()
    try:
        from gradio.utils import get_upload_folder

        assert Path(get_upload_folder()) == ws.root
    finally:
        ws.close()
    assert os.environ.get("GRADIO_TEMP_DIR") == before


# ---------------------------------------------------------------------------------------------- end to end


def _files_newer_than(root: Path, t0: float, skip: tuple[Path, ...] = ()) -> list[Path]:
    out = []
    for dirpath, dirnames, files in os.walk(root, onerror=lambda e: None):
        here = Path(dirpath)
        if any(here == s or here.is_relative_to(s) for s in skip):
            dirnames[:] = []
            continue
        for f in files:
            p = here / f
            try:
                st = p.lstat()
            except OSError:
                continue
            if st.st_mtime >= t0 or st.st_ctime >= t0:
                out.append(p)
    return out


def _holds(path: Path, needles: list[bytes]) -> bool:
    try:
        if not path.is_file() or path.stat().st_size > 200_000_000:
            return False
        data = path.read_bytes()
    except OSError:
        return False
    return any(n in data for n in needles)


def _wait_for(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the studio exited early:\n{proc.stdout.read()}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("the studio did not start")


def test_nothing_of_the_photo_remains_on_disk_after_the_server_stops(tmp_path):
    if os.environ.get("LATENTSTUDIO_SKIP_BROWSER") == "1":
        pytest.skip("LATENTSTUDIO_SKIP_BROWSER=1")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser test needs the playwright package: pip install -e '.[dev]'")
    exe = chromium_path()
    t0 = time.time() - 1
    server_tmp = tmp_path / "server-tmp"
    server_tmp.mkdir()
    model = tiny_vae_dir(tmp_path)
    # a photo whose bytes and name occur nowhere else
    rng = np.random.default_rng(uuid.uuid4().int % 2**32)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format="PNG")
    data = buf.getvalue()
    source = tmp_path / "source"
    source.mkdir()
    name = f"probe-{uuid.uuid4().hex[:12]}.png"
    photo = source / name
    photo.write_bytes(data)
    needles = [data[len(data) // 2: len(data) // 2 + 256], name.encode()]

    port = free_port()
    env = {**os.environ, "TMPDIR": str(server_tmp), "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1"}
    env.pop("GRADIO_TEMP_DIR", None)
    proc = subprocess.Popen([sys.executable, "-m", "latentstudio.cli", "studio", "--model", str(model), "--port",
                             str(port), "--steps", "5", "--perceptual", "none"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_for(url, proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(url)
            page.get_by_role("tab", name="Upload photo").click()
            page.locator("#already-aligned input").check()
            page.locator("#upload input[type=file]").set_input_files(str(photo))
            page.wait_for_function("t => document.querySelector('#status textarea')?.value.includes(t)", arg=name)
            page.click("#project")
            page.wait_for_function("() => document.querySelector('#status textarea')?.value.includes('Projected')")
            page.wait_for_function("() => [...document.querySelectorAll('img')].every(i => i.complete)")
            # while the server runs, the photo is on disk in its session folder (so the search below can find it)
            held = [p for p in _files_newer_than(server_tmp, t0) if _holds(p, needles)]
            assert held and all("/sessions/" in str(p) for p in held)
            browser.close()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out
    left = [p for p in server_tmp.rglob("*") if not p.is_dir()]  # (torch may leave an empty cache folder)
    assert not left, f"the server left files behind: {left}"
    searched = [Path(tempfile.gettempdir()), Path(tempfile.gettempdir()) / "gradio"]
    found = [p for root in searched if root.is_dir()
             for p in _files_newer_than(root, t0, skip=(source,)) if _holds(p, needles)]
    assert not found, f"the photo is still on disk: {found}"
