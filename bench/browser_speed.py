"""What the user waits for, in a real browser: seconds from navigation until the page has settled.

`bench/dashboard_speed.py` times the pages' scripts (AppTest); a user also waits for the
websocket, the browser's rendering of dozens of tables and charts, and the reruns a page asks
for. This bench starts `streamlit run app.py` as `make run` does (one torch thread), drives
Debian's headless Chromium at 1366 × 900 through Selenium (the end-to-end test's helpers,
tests/browser_support.py), and times:

- server start: from the command's start until the server answers;
- cold home: a fresh server's first page (models and caches as a fresh process has them);
- warm reload: the same page reloaded;
- sidebar change: another task picked in the sidebar's checkpoint picker (on Predictions), from
  the click on the task until the page has settled;
- every page: reached by its sidebar link, until it has settled.

"Settled" is the start of the first 1.5 s in which Streamlit shows neither its running status
nor a spinner nor an element left from the previous run, no element is added, and the page's
title is drawn: the moment the user can read the page. Run it alone (no test run, helper or
other benchmark): the figures are what a 2-core machine gives one user. Last line: key=value
pairs.

    python bench/browser_speed.py [--root CHECKPOINTS]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import browser_support as bs  # noqa: E402  (the end-to-end test's server and browser helpers)

from mmaux.ui import NAV_PAGES  # noqa: E402

SETTLE = 1.5  # seconds without a running status, a spinner or a new element that count as "settled"
ELEMENTS = '[data-testid="stElementContainer"]'  # every element Streamlit draws sits in one
STALE = '[data-stale="true"]'  # an element of the previous run not yet redrawn by this one
BUDGETS = {"home_cold_s": 10.0, "home_warm_s": 3.0, "sidebar_change_s": 2.0, "page_s": 6.0}


def settled(driver, start: float, title: str | None = None, timeout: float = bs.TIMEOUT) -> float:
    """Seconds from `start` until the page is quiet (no status widget, no spinner, an h1 reading
    `title` when given, the same elements drawn, none of them stale) for SETTLE seconds in a row,
    counted to the start of that quiet spell; `timeout` (said on stderr) when it never is, so the
    other pages are still measured. The elements matter: Streamlit shows its running status only
    for runs longer than a moment, and a page still filling in without it is not settled."""
    deadline = start + timeout
    quiet_since, drawn = None, None
    while time.monotonic() < deadline:
        heading = driver.find_elements("css selector", "h1")
        count = driver.execute_script(f"return [document.querySelectorAll('{ELEMENTS}').length, "
                                      f"document.querySelectorAll('{STALE}').length]")
        ready = (heading and (title is None or title in heading[0].text) and not bs._busy(driver)
                 and count == drawn and count[1] == 0)
        drawn = count
        if not ready:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= SETTLE:
            return quiet_since - start
        time.sleep(0.05)
    print(f"{driver.current_url} had not settled after {timeout:.0f} s: recorded as {timeout:.0f}", file=sys.stderr)
    return timeout


def sidebar_link(driver, title: str):
    links = [a for a in driver.find_elements("css selector", '[data-testid="stSidebarNav"] a') if a.text == title]
    if not links:
        raise RuntimeError(f"no sidebar link {title!r}")
    return links[0]


def next_task(driver):
    """Open the sidebar's task list; the option of the next task (the first that is not the
    current one), for the caller to click: the user's wait starts with that click."""
    box = next(e for e in driver.find_elements("css selector", '[data-testid="stSidebar"] [data-testid="stSelectbox"]')
               if e.find_elements("css selector", '[data-testid="stWidgetLabel"]')[0].text.strip() == "Task")
    box.find_element("css selector", 'input[role="combobox"]').click()
    bs.wait_for(driver, '[role="option"]')
    current = box.find_element("css selector", 'input[role="combobox"]').get_attribute("value")
    return next(o for o in driver.find_elements("css selector", '[role="option"]') if o.text and o.text != current)


def measure(root: str | None) -> dict[str, float]:
    paths = bs.find_browser()
    if paths is None:
        sys.exit("chromium and chromedriver are needed: `make browser-deps`")
    env = {"OMP_NUM_THREADS": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    if root:
        env["MMAUX_CHECKPOINTS"] = root
    figures = {}
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, bs.running_server(REPO, Path(tmp) / "server.log", env) as server:
        figures["server_start_s"] = time.monotonic() - start
        driver = bs.make_driver(*paths, Path(tmp) / "profile")
        try:
            start = time.monotonic()
            driver.get(server.url)
            figures["home_cold_s"] = settled(driver, start, NAV_PAGES[0][1])
            start = time.monotonic()
            driver.refresh()
            figures["home_warm_s"] = settled(driver, start, NAV_PAGES[0][1])
            for i, (_, title, url) in enumerate(NAV_PAGES[1:]):
                link = sidebar_link(driver, title)
                start = time.monotonic()
                link.click()
                figures[f"page_{url.lower()}_s"] = settled(driver, start)
                if i == 0:  # Predictions draws the sidebar's checkpoint picker
                    option = next_task(driver)
                    start = time.monotonic()
                    option.click()
                    figures["sidebar_change_s"] = settled(driver, start)
            link = sidebar_link(driver, NAV_PAGES[0][1])
            start = time.monotonic()
            link.click()
            figures["page_checkpoints_s"] = settled(driver, start, NAV_PAGES[0][1])
        finally:
            driver.quit()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", help="checkpoint root (default MMAUX_CHECKPOINTS or checkpoints/)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    figures = measure(args.root)
    print("| what | seconds | budget |\n|---|---|---|")
    for name, seconds in figures.items():
        budget = BUDGETS.get(name, BUDGETS["page_s"] if name.startswith("page_") else None)
        mark = "" if budget is None else (" (over)" if seconds > budget else "")
        print(f"| {name} | {seconds:.2f}{mark} | {budget if budget is not None else '—'} |")
    print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(" ".join(f"{k}={v:.2f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
