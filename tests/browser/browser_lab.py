"""JupyterLab on 127.0.0.1 driven by Playwright with Debian's Chromium: shared by tests/browser and the benchmarks.

:func:`start_lab` serves a folder with a fresh configuration (its own ``JUPYTER_CONFIG_DIR``, ``JUPYTER_DATA_DIR``
and runtime dir, no token, no announcements); :func:`launch_chromium` starts the system's Chromium (never a
downloaded browser); :func:`open_notebook` opens a notebook, runs all its cells and waits for a widget's first
frame; :func:`change_and_wait` makes one change in a widget and waits for the frame that answers it.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_04 = ROOT / "notebooks" / "04_numerics_of_gans.ipynb"
NOTEBOOK_03 = ROOT / "notebooks" / "03_wasserstein_and_wgan.ipynb"
NOTEBOOK_05B = ROOT / "notebooks" / "05b_gan_lab.ipynb"
NOTEBOOK_07 = ROOT / "notebooks" / "07_dcgan.ipynb"
NOTEBOOK_21 = ROOT / "notebooks" / "21_draggan.ipynb"
EXPLORER_TAG = "explorer"

#: lecture 7's image explorer without lecture 7's training run: what its cell needs (numpy, and a generator in
#: ``trainer``), with an untrained generator whose random weights are large enough that its images differ from code
#: to code (the browser tests and the latency benchmark check the widget, not the training)
IMAGE_STANDIN_SETUP = """import numpy as np
import torch

from gancourse.deep.train_gan import GANTrainer, dcgan_preset

trainer = GANTrainer(dcgan_preset(tier="smoke"), torch.rand(64, 1, 32, 32) * 2 - 1, "cpu")
with torch.no_grad():  # an untrained generator whose images differ from code to code
    for p in trainer.G.parameters():
        if p.dim() > 1:
            p.normal_(0.0, 0.1, generator=torch.Generator().manual_seed(p.numel()))"""

#: what the widget front end shows when a widget cannot be displayed
WIDGET_ERRORS = ("Error displaying widget", "model not found")


def chromium_path() -> str | None:
    """The system's Chromium (Debian's ``chromium`` package), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab server: its base URL, the folder it serves and its process."""

    url: str
    root: Path
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _settings(config: Path) -> None:
    """No announcements, no update checks: nothing pops up over the notebook."""
    (config / "jupyter_server_config.json").write_text(json.dumps({
        "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
    }))
    notes = config / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    notes.mkdir(parents=True)
    (notes / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false",
                                                                        "checkForUpdates": False}))


def start_lab(root: Path, work: Path, timeout: float = 120.0) -> Lab:
    """Serve ``root`` with JupyterLab on a free port of 127.0.0.1, configured from scratch under ``work``."""
    dirs = {name: work / name for name in ("config", "data", "runtime")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    _settings(dirs["config"])
    port = free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(dirs["config"]), "JUPYTER_DATA_DIR": str(dirs["data"]),
           "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]), "JUPYTER_PLATFORM_DIRS": "1",
           "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    log = work / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--port-retries=0", "--IdentityProvider.token=", "--ServerApp.password=",
           f"--ServerApp.root_dir={root}", "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI and containers run as root
        cmd.append("--allow-root")
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    lab = Lab(f"http://127.0.0.1:{port}/", root, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(lab.url + "api/status", timeout=5) as r:
                if r.status == 200:
                    return lab
        except OSError:
            time.sleep(0.3)
    lab.stop()
    raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def tagged_cell_source(notebook: Path, tag: str) -> str:
    """The source of the one cell tagged ``tag`` in ``notebook``."""
    nb = nbformat.read(notebook, as_version=4)
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{notebook.name} needs exactly one cell tagged {tag!r}, has {len(cells)}")
    return cells[0].source


def explorer_cell_source(notebook: Path = NOTEBOOK_04) -> str:
    """The source of the cell tagged ``explorer`` in ``notebook`` (the cell that shows the explorer)."""
    return tagged_cell_source(notebook, EXPLORER_TAG)


def write_notebook(path: Path, *sources: str) -> Path:
    """A notebook of code cells with a python3 kernel (so that JupyterLab asks nothing when it opens)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, path)
    return path


def launch_chromium(playwright, executable: str):
    """Debian's Chromium, headless, at a fixed window size."""
    return playwright.chromium.launch(executable_path=executable, headless=True,
                                      args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])


def open_notebook(browser, lab: Lab, name: str, timeout_ms: float = 150_000, root: str = ".gc-explorer"):
    """A page with notebook ``name`` open in JupyterLab, all its cells run, and the widget ``root`` (a CSS
    selector) drawn; the page's script errors are collected in ``page.script_errors``. Each notebook opens in a
    fresh workspace of its own, so that no notebook opened earlier in the session comes back beside it."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.script_errors = []
    page.on("pageerror", lambda exc: page.script_errors.append(str(exc)))
    page.set_default_timeout(timeout_ms)
    page.goto(f"{lab.url}lab/workspaces/{Path(name).stem}/tree/{name}?reset")
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
    page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for()  # the kernel is up and idle
    run_all(page)
    page.locator(f"{root}[data-frame]").first.wait_for()
    return page


def run_all(page) -> None:
    """Run every cell of the notebook in the page (JupyterLab's Run menu)."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def widget_errors(page) -> list[str]:
    """The widget error messages shown anywhere on the page."""
    text = page.locator("body").inner_text()
    return [e for e in WIDGET_ERRORS if e.lower() in text.lower()]


def frame_state(explorer, canvases: bool = True, text: str | None = None) -> dict:
    """The explorer's frame counter, the request it answers, its latency (and the kernel's and the drawing's
    shares), its error message, and the pixels of its canvases (as data URLs) if ``canvases``, followed by the
    text of the element ``text`` (a CSS selector inside the widget) if given."""
    state = explorer.evaluate("""(el, withCanvases) => ({
        frame: Number(el.dataset.frame || 0),
        request: Number(el.dataset.request || 0),
        latency: Number(el.dataset.latencyMs || NaN),
        compute: Number(el.dataset.computeMs || NaN),
        draw: Number(el.dataset.drawMs || NaN),
        canvases: withCanvases ? Array.from(el.querySelectorAll('canvas')).map(c => c.toDataURL()).join('|') : '',
        error: el.querySelector('.gc-error') ? el.querySelector('.gc-error').textContent : '',
    })""", canvases)
    if canvases and text is not None:
        state["canvases"] += "|" + explorer.locator(text).first.inner_text()
    return state


def canvas_hash(state: dict) -> str:
    return hashlib.sha256(state["canvases"].encode()).hexdigest()[:16]


def change_and_wait(explorer, action: Callable[[], None], timeout_ms: float = 60_000, *, hash: bool = True,
                    text: str | None = None) -> dict:
    """Do ``action`` (one control change), wait for the frame that answers it, and return that frame's state:
    ``latency`` (ms, measured in the page from the change to the drawn frame), ``compute`` and ``draw`` (the
    kernel's and the drawing's shares), and ``hash`` (of the canvases, and of the element ``text`` if given)
    unless ``hash`` is False."""
    before = explorer.evaluate("el => Number(el.dataset.request || 0)")
    action()
    explorer.page.wait_for_function(
        "([el, r]) => Number(el.dataset.request || 0) > r", arg=[explorer.element_handle(), before],
        timeout=timeout_ms)
    state = frame_state(explorer, canvases=hash, text=text)
    if hash:
        state["hash"] = canvas_hash(state)
    state.pop("canvases", None)
    return state


def control(explorer, name: str):
    """The wrapper element of control ``name`` in the explorer."""
    return explorer.locator(f'.gc-control[data-control="{name}"]')


def visible_controls(explorer) -> set[str]:
    return set(explorer.evaluate("""el => Array.from(el.querySelectorAll('.gc-control[data-control]'))
        .filter(c => !c.hidden && c.offsetParent !== null).map(c => c.dataset.control)"""))


def set_value(explorer, name: str, value) -> Callable[[], None]:
    """An action that sets control ``name``: a select's option, a checkbox, a slider's value (on a log slider, the
    nearest of its values), or one entry of A (``value`` = (index, number))."""
    wrap = control(explorer, name)

    def act() -> None:
        if wrap.locator("select").count():
            wrap.locator("select").select_option(str(value))
        elif wrap.locator("input[type=checkbox]").count():
            wrap.locator("input[type=checkbox]").set_checked(bool(value))
        elif wrap.locator("input[type=number]").count():
            index, number = value
            wrap.locator("input[type=number]").nth(index).fill(str(number))
        else:
            slider = wrap.locator("input[type=range]")
            raw = value
            values = slider.get_attribute("data-values")
            if values is not None:  # a slider over a list of values (log scale): move to the nearest one
                grid = json.loads(values)
                raw = min(range(len(grid)), key=lambda i: abs(math.log(grid[i] / float(value))))
            slider.fill(str(raw))

    return act


def click_field(explorer, fx: float, fy: float, canvas: str = "canvas.gc-field") -> Callable[[], None]:
    """An action that clicks the canvas ``canvas`` (a CSS selector; the explorer's field by default) at fractions
    (fx, fy) of its width and height."""
    canvas = explorer.locator(canvas)

    def act() -> None:
        box = canvas.bounding_box()
        canvas.click(position={"x": fx * box["width"], "y": fy * box["height"]})

    return act


def shrink_png(path: Path, limit: int, colors: int = 192) -> int:
    """Re-save a screenshot larger than ``limit`` bytes with a palette of ``colors`` (line art loses little);
    returns its size in bytes."""
    from PIL import Image

    if path.stat().st_size > limit:
        with Image.open(path) as im:
            small = im.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
        small.save(path, optimize=True)
    return path.stat().st_size


def dataset(widget) -> dict[str, str]:
    """The ``data-*`` attributes of a widget's root element."""
    return widget.evaluate("el => ({...el.dataset})")


def widget_screenshot(page, widget, path: Path, limit: int, height: int = 1700) -> int:
    """A picture of ``widget`` into ``path``, taken with the page made ``height`` pixels tall so that a tall widget
    fits in the notebook's scrolling area, then shrunk to at most ``limit`` bytes (:func:`shrink_png`); returns
    its size in bytes. The page's size is restored afterwards."""
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": height})
    try:
        widget.scroll_into_view_if_needed()
        widget.screenshot(path=str(path))
    finally:
        page.set_viewport_size(size)
    return shrink_png(path, limit)
