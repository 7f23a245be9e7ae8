"""The widgets in a real browser: JupyterLab on localhost, driven by headless Chromium through Playwright.

It checks what Python-level tests cannot: that the widget JavaScript loads offline in JupyterLab 4, the
sliders and images appear, and moving a slider reaches the kernel and changes the picture; and that the
live loss plot appears and updates while a cell is still training. It saves screenshots too: the README's
pictures come from ``GPTMINI_SCREENSHOTS=assets python -m pytest tests/test_browser.py``.

Needs Debian's ``chromium`` (``apt-get install -y chromium``); Playwright is only the driver, it never
downloads a browser. Without Chromium the test fails when ``$CI`` is set and is skipped, loudly, otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "tests" / "data" / "widgets_demo.ipynb"
# Screenshots go to a temporary folder, so running the tests leaves the checkout clean;
# GPTMINI_SCREENSHOTS=assets refreshes the README's pictures.
ASSETS = Path(os.environ["GPTMINI_SCREENSHOTS"]).resolve() if os.environ.get("GPTMINI_SCREENSHOTS") else None
CHROMIUM = Path(os.environ.get("GPTMINI_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 90_000


def require(condition: bool, message: str) -> None:
    """Missing browser tooling fails in CI (which installs it) and is skipped, with the reason, elsewhere."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this is an error: .ci/run installs it)")
    pytest.skip(f"BROWSER TEST NOT RUN: {message}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited early (code {proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """Stop the server and its kernels (they share its process group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 (random port, token auth) serving a copy of the demo notebook."""
    require(CHROMIUM.exists(), f"{CHROMIUM} is missing; install Debian's chromium: apt-get install -y chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require(False, "the playwright Python package is missing (pip install playwright)")
    work = tmp_path_factory.mktemp("lab")
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    config = work / "config"
    (config / "labconfig").mkdir(parents=True)
    # no "subscribe to Jupyter news?" toast over the screenshots, and no update check (we are offline)
    page_config = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}
    (config / "labconfig" / "page_config.json").write_text(json.dumps(page_config))
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(work / "runtime"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "MPLBACKEND": "Agg",
        "GPTMINI_MODE": "fast",
    }
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={work}",
        f"--LabApp.workspaces_dir={work / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log = work / "jupyterlab.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_server(f"{base}/api/status?token={token}", proc, log)
        yield base, token, log
    finally:
        stop(proc)


def image_digest(page, image) -> str:
    """SHA-256 of the PNG an <img> shows, read back inside the page (its src is a blob: URL)."""
    data = page.evaluate(
        """async (img) => {
            const buffer = await (await fetch(img.src)).arrayBuffer();
            return Array.from(new Uint8Array(buffer));
        }""",
        image.element_handle(),
    )
    return hashlib.sha256(bytes(data)).hexdigest()


def wait_for_new_image(page, image, old_digest: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        digest = image_digest(page, image)
        if digest != old_digest:
            return digest
        page.wait_for_timeout(250)
    raise AssertionError("moving the slider did not change the picture")


def move_slider(page, slider) -> str:
    """Press → on the slider's handle; returns the readout after the move."""
    readout = slider.locator(".widget-readout")
    before = readout.inner_text()
    handle = slider.locator(".noUi-handle").first
    handle.focus()
    handle.press("ArrowRight")
    page.wait_for_function(
        "([el, old]) => el.innerText !== old", arg=[readout.element_handle(), before], timeout=10_000
    )
    return readout.inner_text()


def test_widgets_render_and_react_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    base, token, log = lab
    shots = ASSETS or tmp_path
    shots.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell")
            page.wait_for_function(
                """() => {
                    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                    const kernel = w && w.sessionContext && w.sessionContext.session
                        && w.sessionContext.session.kernel;
                    return kernel && kernel.status === 'idle';
                }"""
            )
            page.evaluate("window.jupyterapp.shell.collapseLeft(); window.jupyterapp.shell.collapseRight()")
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

            outputs = page.locator(".jp-OutputArea-output:has(.widget-image)")
            outputs.nth(1).wait_for()  # both widget outputs: the attention explorer, then the sampling one
            attention, sampling = outputs.nth(0), outputs.nth(1)
            attention.scroll_into_view_if_needed()

            # --- attention explorer: sliders, clickable query tokens, an image that follows the sliders
            assert attention.locator(".widget-slider").count() == 2
            assert attention.locator(".widget-toggle-button").count() >= 10  # one per token + the view toggle
            att_image = attention.locator("img.widget-image")
            att_image.wait_for()
            first = image_digest(page, att_image)
            layer = attention.locator(".widget-slider").filter(has_text="layer")
            assert move_slider(page, layer) == "1"
            wait_for_new_image(page, att_image, first)
            query = attention.locator(".widget-toggle-buttons").filter(has_text="query")
            token = query.locator("button[title='position 18']")  # the second 'e' (repeated labels are tricky)
            first = image_digest(page, att_image)
            token.click()
            page.wait_for_function("(el) => el.classList.contains('mod-active')", arg=token.element_handle())
            assert query.locator("button.mod-active").count() == 1
            wait_for_new_image(page, att_image, first)
            assert "query 18" in attention.locator(".widget-html").last.inner_text()
            attention.screenshot(path=str(shots / "attention_explorer.png"))

            # --- sampling explorer: three filter sliders, the chart follows them, the button samples
            sampling.scroll_into_view_if_needed()
            assert sampling.locator(".widget-slider").count() == 4  # temperature, top-k, top-p, N
            samp_image = sampling.locator("img.widget-image")
            samp_image.wait_for()
            first = image_digest(page, samp_image)
            top_k = sampling.locator(".widget-slider").filter(has_text="top-k")
            assert move_slider(page, top_k) == "1"
            changed = wait_for_new_image(page, samp_image, first)
            readouts = [move_slider(page, top_k) for _ in range(4)]  # top-k = 5: a more telling screenshot
            assert readouts == ["2", "3", "4", "5"]
            changed = wait_for_new_image(page, samp_image, changed)
            text_area = sampling.locator("textarea")
            before = text_area.input_value()
            sampling.get_by_role("button", name="generate N").click()
            page.wait_for_function(
                "([el, old]) => el.value.length > old.length && el.value.startsWith(old)",
                arg=[text_area.element_handle(), before],
            )
            wait_for_new_image(page, samp_image, changed)  # the chart now shows the next token's distribution
            sampling.screenshot(path=str(shots / "sampling_explorer.png"))

            # --- the live loss plot: shown by the trainer's first callback, redrawn while it trains
            live = outputs.nth(2)
            live.wait_for()
            live.scroll_into_view_if_needed()
            page.wait_for_function("(el) => el.innerText.includes('step 20')", arg=live.element_handle())
            assert "val loss" in live.inner_text()
            live.screenshot(path=str(shots / "live_loss_plot.png"))
        finally:
            browser.close()
    errors = [line for line in log.read_text().splitlines() if "Traceback" in line]
    assert not errors, f"the server logged errors:\n{log.read_text()[-3000:]}"
    for name in ("attention_explorer.png", "sampling_explorer.png", "live_loss_plot.png"):
        assert (shots / name).read_bytes().startswith(b"\x89PNG")
