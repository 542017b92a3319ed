"""The notebook widgets in a real browser: `make browser-check` (docs/usage.md, "The widgets in a real browser").

    .venv/bin/python scripts/browser_check.py [--notebook notebooks/02_baseline.ipynb] [--profile smoke]

1. A papermill-parametrised copy of the notebook (``prepare_only``: parameters injected, nothing run) is written
   to a temporary folder with ``profile="smoke"`` and ``run_root`` inside that folder, so the project's ``runs/``
   and the committed notebook are never touched (JupyterLab autosaves what it runs). The smoke data comes from
   ``make data-smoke``; the notebook's relative config paths resolve to this checkout (``config.project_root``,
   and ``PYTHONPATH`` points the kernel at this checkout).
2. JupyterLab starts from the project's venv (``.venv/bin/jupyter lab --no-browser``) on a free port with a random
   token, rooted in that folder; its ``python3`` kernel is the venv's.
3. Debian's chromium, headless, driven through chromedriver by selenium, opens the notebook and runs it with the
   menu (Run > Run All Cells), then waits until every code cell has an execution count (a failing cell is
   reported with its traceback).
4. In the explorer widget (``ssync_lib.lab.widgets.explore``) it drags the "frame" slider and then picks another
   entry of the "slot" selector. After each move the figure the output widget displays (the ``<img>`` in the
   browser, decoded by the browser and by PIL) must change: different PNG bytes and different pixels. Otherwise
   the script fails (exit 1).

``--negative-control`` freezes the explorer's redraw in the temporary copy (every redraw shows frame 0, all
slots): the same check must then fail. It shows the check can fail; it is not part of `make browser-check`.

Screenshots and the figures seen are written to ``--out`` (default ``runs/browser-check/``).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Injected into the temporary copy by --negative-control, right after the notebook's parameters: the explorer's
# redraw then ignores the frame slider and the slot selector (ssync_lib.lab.widgets calls viz.plot_explorer by
# attribute at redraw time).
NEGATIVE_CONTROL = """\
# browser_check.py --negative-control: the explorer always draws frame 0 with all slots
from ssync_lib.lab import viz as _viz
_plot_explorer = _viz.plot_explorer
def _frozen(frames, maps, num_labels, frames_to_show=None, slot=None, **kwargs):
    return _plot_explorer(frames, maps, num_labels, frames_to_show=[0], slot=None, **kwargs)
_viz.plot_explorer = _frozen
"""


class CheckFailed(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"browser-check: {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_notebook(source: Path, folder: Path, profile: str, negative_control: bool) -> Path:
    """A copy of `source` in `folder` with papermill's injected parameters; nothing is executed."""
    import nbformat
    import papermill

    target = folder / source.name
    papermill.execute_notebook(str(source), str(target), prepare_only=True, progress_bar=False,
                               parameters={"profile": profile, "run_root": str(folder / "runs"),
                                           "interactive": True})
    nb = nbformat.read(target, as_version=4)
    for cell in nb.cells:  # start from a clean notebook: no outputs or execution counts of the committed run
        cell.get("metadata", {}).pop("papermill", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    if negative_control:
        at = next(i for i, c in enumerate(nb.cells) if "injected-parameters" in c.metadata.get("tags", [])) + 1
        nb.cells.insert(at, nbformat.v4.new_code_cell(NEGATIVE_CONTROL))
    nbformat.write(nb, target)
    return target


def start_lab(folder: Path, port: int, token: str, logfile) -> subprocess.Popen:
    """JupyterLab from the venv, rooted in `folder`, with its own (empty) Jupyter config, data and settings dirs."""
    jupyter = ROOT / ".venv" / "bin" / "jupyter"
    if not jupyter.exists():
        raise CheckFailed(f"{jupyter} is missing: run `make venv` first")
    home = folder / ".jupyter-home"
    settings = home / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # every cell in the DOM (no virtual scrolling), so that execution prompts and outputs can be read
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    apputils = home / "settings" / "@jupyterlab" / "apputils-extension"
    apputils.mkdir(parents=True)
    (apputils / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))  # no news toast
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), IPYTHONDIR=str(home / "ipython"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    cmd = [str(jupyter), "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}",
           f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    return subprocess.Popen(cmd, cwd=folder, env=env, stdout=logfile, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_for_lab(proc: subprocess.Popen, port: int, token: str, timeout: float) -> None:
    url = f"http://127.0.0.1:{port}/api/status?token={token}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CheckFailed(f"JupyterLab exited with code {proc.returncode} before it answered")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise CheckFailed(f"JupyterLab did not answer on port {port} within {timeout:.0f} s")


def stop_lab(proc: subprocess.Popen, port: int, token: str) -> None:
    """Ask the server to shut down (it stops its kernels), then make sure its process group is gone."""
    if proc.poll() is None:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(req, timeout=10).close()
            proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def make_driver(chromium: str, chromedriver: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)


def wait_until(predicate, timeout: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as err:  # stale elements while JupyterLab re-renders: try again
            last_error = err
        time.sleep(poll)
    raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}"
                      + (f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""))


def prompts(driver) -> list[str]:
    """The execution prompts ("[3]:", "[*]:", "[ ]:") of every code cell of the open notebook."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell'))"
        ".map(c => { const p = c.querySelector('.jp-InputArea-prompt'); return p ? p.textContent.trim() : ''; });")


def error_outputs(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.jp-OutputArea-output'))"
        ".map(o => o.textContent).filter(t => t.includes('Traceback') || /\\w+Error\\b/.test(t));")


def dismiss_kernel_dialog(driver) -> bool:
    """JupyterLab may ask "Select Kernel" for a notebook it opens: accept its proposal (the venv's python3)."""
    from selenium.webdriver.common.by import By

    for dialog in driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog"):
        if "Select Kernel" in dialog.text:
            dialog.find_element(By.CSS_SELECTOR, ".jp-Dialog-button.jp-mod-accept").click()
            log("accepted JupyterLab's 'Select Kernel' dialog (Python 3 (ipykernel))")
            return True
    return False


def click_run_all(driver) -> None:
    """Run > Run All Cells, from the menu bar."""
    from selenium.webdriver.common.by import By

    menu = wait_until(lambda: [e for e in driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel")
                               if e.text.strip() == "Run"], 30, "the Run menu")[0]
    menu.click()
    item = wait_until(lambda: driver.find_elements(
        By.XPATH, "//li[contains(@class,'lm-Menu-item')][.//div[contains(@class,'lm-Menu-itemLabel')]"
                  "[normalize-space()='Run All Cells']]"), 10, "the menu item Run All Cells")[0]
    item.click()


def run_all(driver, timeout: float) -> int:
    """Run > Run All Cells from the menu bar; wait until no cell is queued or running. -> number of code cells."""
    from selenium.webdriver.common.by import By

    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"), 120, "the notebook's cells")
    def idle():
        dismiss_kernel_dialog(driver)
        return driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator[data-status='idle']")

    wait_until(idle, 120, "an idle kernel")
    started = clicked = None
    deadline = time.monotonic() + 120
    while started is None:  # a click swallowed by a dialog that opened meanwhile is repeated
        if time.monotonic() > deadline:
            raise CheckFailed("Run All Cells did not start any cell within 120 s")
        dismiss_kernel_dialog(driver)
        ps = prompts(driver)
        if any(p.startswith("[*]") for p in ps) or (ps and all(p[1:-2].strip().isdigit() for p in ps)):
            started = time.monotonic()
        elif clicked is None or time.monotonic() - clicked > 15:
            click_run_all(driver)
            clicked = time.monotonic()
        time.sleep(0.5)

    def finished():
        ps = prompts(driver)
        return not any(p.startswith("[*]") for p in ps) and driver.find_elements(
            By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator[data-status='idle']")

    wait_until(finished, timeout, "Run All Cells to finish", poll=1.0)
    ps = prompts(driver)
    not_run = [i for i, p in enumerate(ps) if not p[1:-2].strip().isdigit()]
    if not_run:
        errors = error_outputs(driver)
        raise CheckFailed(f"code cells {not_run} of {len(ps)} did not run (prompts {ps});\n"
                          + ("\n".join(e[-2000:] for e in errors) or "no traceback in the outputs"))
    log(f"Run All Cells: {len(ps)} code cells ran in {time.monotonic() - started:.1f} s")
    return len(ps)


def explorer(driver):
    """(frame slider, slot <select>, the explorer's VBox) of the first explore() widget on the page."""
    from selenium.webdriver.common.by import By

    slider = driver.find_element(By.XPATH, "//div[contains(@class,'widget-slider')]"
                                           "[.//label[normalize-space()='frame']]")
    box = slider.find_element(By.XPATH, "./ancestor::div[contains(@class,'widget-vbox')][1]")
    select = box.find_element(By.XPATH, ".//div[contains(@class,'widget-dropdown')]"
                                        "[.//label[normalize-space()='slot']]//select")
    return slider, select, box


def figure(driver) -> bytes:
    """The PNG the explorer's output widget shows now, once the browser has decoded it."""
    from selenium.webdriver.common.by import By

    _, _, box = explorer(driver)
    imgs = box.find_elements(By.CSS_SELECTOR, ".widget-output img, .jupyter-widgets-output-area img")
    if len(imgs) != 1:
        return b""
    img = imgs[0]
    if not driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0;", img):
        return b""
    src = img.get_attribute("src") or ""
    prefix = "data:image/png;base64,"
    if not src.startswith(prefix):
        raise CheckFailed(f"the explorer shows an image that is not an inline PNG: {src[:80]}")
    return base64.b64decode(src[len(prefix):])


def pixel_change(a: bytes, b: bytes) -> float:
    """Fraction of pixels that differ between two PNGs (1.0 when their sizes differ)."""
    import numpy as np
    from PIL import Image

    x, y = (np.asarray(Image.open(io.BytesIO(p)).convert("RGB")) for p in (a, b))
    return 1.0 if x.shape != y.shape else float((x != y).any(-1).mean())


def expect_change(driver, before: bytes, what: str, timeout: float) -> bytes:
    """Wait for the explorer's figure to differ from `before`; fail if it does not within `timeout`."""
    try:
        after = wait_until(lambda: (lambda f: f if f and f != before else None)(figure(driver)), timeout,
                           f"the figure to change after {what}")
    except CheckFailed as err:
        raise CheckFailed(f"the rendered figure did not change after {what}: {err}") from None
    changed = pixel_change(before, after)
    if changed == 0.0:
        raise CheckFailed(f"after {what} the PNG bytes changed but not one pixel did")
    log(f"{what}: figure changed ({changed:.1%} of the pixels; sha256 {hashlib.sha256(before).hexdigest()[:12]}"
        f" -> {hashlib.sha256(after).hexdigest()[:12]})")
    return after


def move_frame_slider(driver) -> str:
    """Drag the frame slider's handle to about 60% of its track, as a user would. -> the new readout."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    slider, _, _ = explorer(driver)
    readout = slider.find_element(By.CSS_SELECTOR, ".widget-readout")
    before = readout.text.strip()
    handle = slider.find_element(By.CSS_SELECTOR, ".noUi-handle")
    track = slider.find_element(By.CSS_SELECTOR, ".noUi-target")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", track)
    offset = int(track.size["width"] * 0.6)
    ActionChains(driver).click_and_hold(handle).pause(0.2).move_by_offset(offset // 2, 0).pause(0.2) \
        .move_by_offset(offset - offset // 2, 0).pause(0.2).release().perform()
    after = wait_until(lambda: (lambda t: t if t and t != before else None)(readout.text.strip()), 20,
                       "the frame slider's readout to change")
    return f"frame slider {before} -> {after}"


def choose_slot(driver) -> str:
    from selenium.webdriver.support.ui import Select

    _, select, _ = explorer(driver)
    menu = Select(select)
    before = menu.first_selected_option.text
    options = [o.text for o in menu.options]
    target = next(o for o in options if o != before and o.startswith("slot"))
    menu.select_by_visible_text(target)
    return f"slot selector '{before}' -> '{target}'"


def check(args) -> None:
    total = time.monotonic()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)  # this script's own folder: only this run's files
    out.mkdir(parents=True)
    folder = Path(tempfile.mkdtemp(prefix="ssync-browser-check-"))
    port, token = free_port(), secrets.token_hex(16)
    notebook = prepare_notebook(Path(args.notebook).resolve(), folder, args.profile, args.negative_control)
    log(f"{notebook.name} prepared in {folder} (profile={args.profile!r}"
        + (", NEGATIVE CONTROL: redraw frozen" if args.negative_control else "") + ")")
    logfile = open(folder / "jupyterlab.log", "w")
    lab = start_lab(folder, port, token, logfile)
    driver = None
    ok = False
    try:
        t = time.monotonic()
        wait_for_lab(lab, port, token, args.timeout)
        log(f"JupyterLab {ROOT / '.venv/bin/jupyter'} up on port {port} in {time.monotonic() - t:.1f} s")
        t = time.monotonic()
        driver = make_driver(args.chromium, args.chromedriver)
        log(f"browser: {driver.capabilities.get('browserName')} {driver.capabilities.get('browserVersion')}, "
            f"headless, started in {time.monotonic() - t:.1f} s")
        driver.get(f"http://127.0.0.1:{port}/lab/tree/{notebook.name}?token={token}&reset")
        run_all(driver, args.timeout)
        driver.save_screenshot(str(out / "1-after-run-all.png"))
        first = wait_until(lambda: figure(driver), 60, "the explorer's first figure")
        (out / "figure-0-initial.png").write_bytes(first)
        moved = move_frame_slider(driver)
        second = expect_change(driver, first, moved, args.widget_timeout)
        (out / "figure-1-frame.png").write_bytes(second)
        driver.save_screenshot(str(out / "2-after-frame.png"))
        chosen = choose_slot(driver)
        third = expect_change(driver, second, chosen, args.widget_timeout)
        (out / "figure-2-slot.png").write_bytes(third)
        driver.save_screenshot(str(out / "3-after-slot.png"))
        ok = True
    finally:
        if driver is not None:
            if not ok:
                try:
                    driver.save_screenshot(str(out / "failure.png"))
                except Exception:
                    pass
            driver.quit()
        stop_lab(lab, port, token)
        logfile.close()
        if not ok:
            shutil.copy(folder / "jupyterlab.log", out / "jupyterlab.log")
            log(f"JupyterLab's log and a screenshot are in {out}")
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    log(f"PASSED: the explorer's figure changed after the frame slider and after the slot selector "
        f"({time.monotonic() - total:.0f} s in all; screenshots and figures in {out})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--notebook", default=str(ROOT / "notebooks" / "02_baseline.ipynb"))
    p.add_argument("--profile", default="smoke", help="the notebook's profile parameter (default: smoke)")
    p.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    p.add_argument("--chromedriver", default=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    p.add_argument("--out", default=str(ROOT / "runs" / "browser-check"), help="screenshots and figures")
    p.add_argument("--timeout", type=float, default=600, help="seconds for JupyterLab to start and Run All")
    p.add_argument("--widget-timeout", type=float, default=60, help="seconds for a figure to change")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p.add_argument("--negative-control", action="store_true",
                   help="freeze the explorer's redraw in the copy: the check must FAIL (shows that it can)")
    args = p.parse_args(argv)
    if not Path(args.notebook).is_file():
        p.error(f"--notebook {args.notebook} does not exist")
    try:
        from ssync_lib.config import PROFILES
    except ImportError:  # run outside the project's environment: the notebook itself will say
        PROFILES = {args.profile: None}
    if args.profile not in PROFILES:
        p.error(f"--profile {args.profile}: not one of {', '.join(sorted(PROFILES))}")
    for name in ("chromium", "chromedriver"):
        if not Path(getattr(args, name)).exists():
            log(f"FAILED: {getattr(args, name)} not found (make browser-check installs chromium chromium-driver)")
            return 1
    try:
        check(args)
    except CheckFailed as err:
        log(f"FAILED: {err}")
        return 1
    except Exception as err:  # selenium, JupyterLab or the notebook failed in an unforeseen way
        import traceback
        traceback.print_exc()
        log(f"FAILED: {type(err).__name__}: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
