"""Helpers of the end-to-end browser test (tests/test_browser.py): the Streamlit server in a
subprocess, headless Chromium through Selenium, waits for Streamlit's asynchronous reruns,
full-page screenshots, and the browser-console filter.

Console filter (what counts as an error "from our app"): entries of level SEVERE whose source
is `javascript` (an uncaught exception in the page) or `console-api` (the app's frontend calling
console.error: React, plotly, Streamlit's element renderers, all fed by our pages' Python). Not
counted: WARNING/INFO entries; `network` entries (a failed request: the missing favicon, hosts
that --disable-background-networking and the sandbox without network block, the 404s of
`/<Page>/_stcore/health` that Streamlit's frontend probes first when a page URL is opened
directly) and any other source
(`security`, `deprecation`, `worker`, ...), which the browser emits, not the app; and SEVERE
console messages that only report such a blocked request to a host other than the local server
(`NOISE` below).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Seconds for any one wait: the CPU is slow and shared, and a first load reads models (and may
# generate the SynthPosts test split). MMAUX_BROWSER_TIMEOUT raises it on a slower machine.
TIMEOUT = float(os.environ.get("MMAUX_BROWSER_TIMEOUT", 120))
START_TIMEOUT = 180  # seconds for the server to answer /_stcore/health
WINDOW = (1366, 900)
MAX_PNG_BYTES = 1_500_000
CONSOLE_SOURCES = ("javascript", "console-api")
# SEVERE console messages that are about the network, not the app: a request to some host other
# than localhost that failed (the test machine has no network) or a blocked resource.
NOISE = re.compile(r"(https?://(?!localhost|127\.0\.0\.1)[^\s\"']+.*(failed|ERR_|net::))"
                   r"|favicon\.ico|net::ERR_(NAME_NOT_RESOLVED|INTERNET_DISCONNECTED|CONNECTION_REFUSED|BLOCKED)",
                   re.IGNORECASE)


def find_browser() -> tuple[str, str] | None:
    """(chromium, chromedriver) paths: Debian's, else whatever is on PATH; None when missing."""
    chromium = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium") or shutil.which("chromium-browser")
    driver = CHROMEDRIVER if os.access(CHROMEDRIVER, os.X_OK) else shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`streamlit run app.py` on a free localhost port, output in `log`."""

    def __init__(self, repo: Path, log: Path, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self.log = log
        command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                   "--server.port", str(self.port), "--server.address", "localhost",
                   "--browser.gatherUsageStats", "false"]
        environment = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                                    "PYTHONUNBUFFERED": "1"} | (env or {})
        self._out = open(log, "wb")
        self.process = subprocess.Popen(command, cwd=repo, env=environment, stdout=self._out,
                                        stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"streamlit not healthy after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """terminate → wait → kill; always closes the log."""
        try:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=15)
        finally:
            self._out.close()


@contextmanager
def running_server(repo: Path, log: Path, env: dict[str, str] | None = None):
    server = Server(repo, log, env)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


# Headless Chromium reports a device without hover (CSS `hover: none`), and plotly then shows
# every chart's toolbar all the time, over the plot; a desktop browser shows it only under the
# mouse. Blink's settings make the page see a mouse (hover = 2, fine pointer = 4).
MOUSE = "--blink-settings=primaryHoverType=2,availableHoverTypes=2,primaryPointerType=4,availablePointerTypes=4"


def make_driver(chromium: str, chromedriver: str, user_data_dir: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                 f"--user-data-dir={user_data_dir}", "--hide-scrollbars", MOUSE):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(TIMEOUT)
    return driver


# --- waiting for Streamlit -----------------------------------------------------------------------

STATUS = '[data-testid="stStatusWidget"]'
EXCEPTION = '[data-testid="stException"]'
SPINNERS = '[data-testid="stSpinner"], [data-testid="stSkeleton"]'


def _busy(driver) -> bool:
    return bool(driver.find_elements("css selector", STATUS) or driver.find_elements("css selector", SPINNERS))


def wait_idle(driver, timeout: float = TIMEOUT, settle: float = 1.5) -> None:
    """Wait until the app has finished its rerun: no "Running…" status widget and no spinner,
    for `settle` seconds in a row (a rerun starts a moment after the click that asks for it)."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        if _busy(driver):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= settle:
            return
        time.sleep(0.25)
    busy = [f"{e.get_attribute('data-testid')}: {e.text[:80]!r}"
            for e in driver.find_elements("css selector", f"{STATUS}, {SPINNERS}")]
    raise TimeoutError(f"the app was still running after {timeout:.0f} s ({'; '.join(busy)}) on "
                       f"{driver.current_url}; the page ends with:\n{page_text(driver)[-1500:]}")


_WATCH = """
if (!window.__mmauxWatch) {
  window.__mmauxWatch = new MutationObserver(() => {
    if (document.querySelector(arguments[0])) window.__mmauxRan = true;
  });
  window.__mmauxWatch.observe(document.body, {childList: true, subtree: true, attributes: true});
}
window.__mmauxRan = false;
"""


def rerun_after(driver, action, start_timeout: float = 10, timeout: float = TIMEOUT) -> None:
    """Do `action()` (a click, a key) and wait for the rerun it asks for: until Streamlit's
    status widget has shown up (watched by a MutationObserver, so a short run is not missed; at
    most `start_timeout` s, a rerun too quick to show it is done by then) and gone again."""
    driver.execute_script(_WATCH, STATUS)
    action()
    deadline = time.monotonic() + start_timeout
    while time.monotonic() < deadline and not driver.execute_script("return window.__mmauxRan === true"):
        time.sleep(0.1)
    wait_idle(driver, timeout)


def wait_for(driver, css: str, timeout: float = TIMEOUT, text: str | None = None):
    """The first visible element matching `css` (and containing `text`), waiting for it."""
    from selenium.webdriver.support.ui import WebDriverWait

    def found(d):
        for element in d.find_elements("css selector", css):
            try:
                if element.is_displayed() and (text is None or text in element.text):
                    return element
            except Exception:  # stale: the rerun replaced it; look again
                continue
        if d.find_elements("css selector", EXCEPTION):
            raise AssertionError("Streamlit exception on the page:\n" + exception_text(d))
        return False

    return WebDriverWait(driver, timeout, poll_frequency=0.25).until(
        found, message=f"no {css!r}" + (f" with text {text!r}" if text else "") + f" after {timeout} s")


def page_text(driver) -> str:
    return "\n".join(e.text for e in driver.find_elements("css selector", '[data-testid="stMain"]'))


def exception_text(driver) -> str:
    return "\n---\n".join(e.text for e in driver.find_elements("css selector", EXCEPTION))


# --- console -------------------------------------------------------------------------------------

def app_errors(entries: list[dict]) -> list[dict]:
    """The console entries that are errors from our app (see the module docstring)."""
    return [e for e in entries if e.get("level") == "SEVERE" and e.get("source") in CONSOLE_SOURCES
            and not NOISE.search(e.get("message", ""))]


# --- screenshots ---------------------------------------------------------------------------------

SCROLLER = '[data-testid="stMain"]'  # Streamlit's main column scrolls inside the window


def page_height(driver) -> int:
    """The height the whole page needs: the document's, or the main column's scroll height
    (Streamlit scrolls the main column, not the document), whichever is larger."""
    return int(driver.execute_script(
        "const m = document.querySelector(arguments[0]);"
        "const inner = m ? m.scrollHeight + m.getBoundingClientRect().top : 0;"
        "return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight, inner);",
        SCROLLER))


def full_page_screenshot(driver, path: Path, max_height: int = 12000, element: str | None = None) -> Path:
    """A PNG of the whole page at the window's width (or of the `element` matching that CSS
    selector only): the window is made as tall as the page, captured, and set back. Downscaled
    with Pillow when larger than MAX_PNG_BYTES."""
    width, height = driver.get_window_size()["width"], driver.get_window_size()["height"]
    driver.execute_script("document.activeElement && document.activeElement.blur()")  # no focus ring
    try:
        needed = min(max(page_height(driver), WINDOW[1]), max_height)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": WINDOW[0], "height": needed, "deviceScaleFactor": 1, "mobile": False})
        time.sleep(1.0)  # charts re-lay out on resize
        wait_idle(driver, settle=0.5)
        needed = min(max(page_height(driver), WINDOW[1]), max_height)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": WINDOW[0], "height": needed, "deviceScaleFactor": 1, "mobile": False})
        time.sleep(0.5)
        path.parent.mkdir(parents=True, exist_ok=True)
        if element:
            driver.find_element("css selector", element).screenshot(str(path))
        else:
            driver.save_screenshot(str(path))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.set_window_size(width, height)
    shrink(path)
    return path


def shrink(path: Path, limit: int = MAX_PNG_BYTES) -> None:
    """Downscale (and re-save optimised, as a 256-colour PNG if need be) until under `limit`."""
    from PIL import Image

    if path.stat().st_size <= limit:
        return
    image = Image.open(path).convert("RGB")
    image.save(path, optimize=True)
    scale = 1.0
    while path.stat().st_size > limit and scale > 0.3:
        scale *= 0.85
        smaller = image.resize((int(image.width * scale), int(image.height * scale)), Image.LANCZOS)
        smaller.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
