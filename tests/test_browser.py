"""End to end in a real browser: `streamlit run app.py` on a free port, driven by Debian's headless
Chromium through Selenium, page by page as a user would (sidebar links, the checkpoint
multiselect, a post's detail, an uploaded image and a typed text on "Your post").

Each page must show its title and key elements, no Streamlit exception box, and no browser
console error from the app (the filter is documented in tests/browser_support.py). A full-page
screenshot of every page goes to pytest's tmp dir, or with MMAUX_SCREENSHOTS=<dir> (`make
screenshots`) to <dir>/<n>_<page>.png for the README.

The tests share one server and one browser session (module fixtures) and run in file order: the
checkpoints chosen on the Predictions page and the post opened there carry over to the later
pages, as they do for a user. Each test still reaches its page from wherever the browser is, so
one may be run alone (`-k your_post`).

Skips, saying why, when Chromium or chromedriver is missing (`make browser-deps`) or when the
checkpoint root (MMAUX_CHECKPOINTS, else checkpoints/) holds no usable checkpoint yet.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import browser_support as bs
from mmaux.checkpoint import VAL_OUTPUTS

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS_ENV = "MMAUX_SCREENSHOTS"
DATAFRAME = '[data-testid="stDataFrame"]'
CHART = ".js-plotly-plot"
IMAGE = '[data-testid="stImage"] img'
SIDEBAR = '[data-testid="stSidebar"]'
MAIN = '[data-testid="stMain"]'
UPLOAD_NAME = "my_browser_post.png"
TYPED_TEXT = "just got my new guitar, best day ever!! #music"


# --- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser_paths() -> tuple[str, str]:
    paths = bs.find_browser()
    if paths is None:
        pytest.skip("chromium not installed: run `make browser-deps` (Debian: apt-get install chromium "
                    "chromium-driver) for the end-to-end browser test")
    return paths


@pytest.fixture(scope="module")
def app_runs():
    """(root, usable runs) of the checkpoints the app will open; skips when there are none."""
    from mmaux.analysis.runs import discover_runs, usable
    from mmaux.ui import default_roots

    roots = default_roots()
    runs = usable(discover_runs(roots))
    if runs.empty:
        pytest.skip(f"no usable checkpoints under {os.pathsep.join(roots)} yet: run `make checkpoints` "
                    "(or set MMAUX_CHECKPOINTS) before the browser test")
    return roots, runs


@pytest.fixture(scope="module")
def server(browser_paths, app_runs, tmp_path_factory):
    """The app on a free localhost port; stopped (terminate → wait → kill) whatever happens."""
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    # The browser and the server share the machine's cores: one torch thread keeps the server's
    # forward passes from waiting on each other while Chromium renders (see bench/dashboard.py).
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    with bs.running_server(REPO, log, env) as running:
        yield running


@pytest.fixture(scope="module")
def driver(server, browser_paths, tmp_path_factory):
    chrome = bs.make_driver(*browser_paths, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where the screenshots go: MMAUX_SCREENSHOTS when set, else pytest's tmp dir."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def pair(app_runs) -> list[str]:
    """Labels of the two checkpoints chosen on the Predictions page: the CE run and the +ITC+ITM
    run of the first group, lowest seed (else an ITM run, else any other run of that group)."""
    from mmaux.analysis.runs import GROUP_COLUMNS
    from mmaux.ui import checkpoint_labels

    _, runs = app_runs
    labels = checkpoint_labels(runs)
    group = runs[(runs[GROUP_COLUMNS] == runs[GROUP_COLUMNS].iloc[0]).all(axis=1)].sort_values(["seed", "itm", "itc"])
    if len(group) < 2:
        pytest.skip("the side-by-side pages need two checkpoints of one dataset and task; the sweep has "
                    "written one so far")
    ce = group[~group["itc"] & ~group["itm"]]
    both = group[group["itc"] & group["itm"]]
    first = (ce if len(ce) else group).iloc[0]["folder"]
    candidates = list(both["folder"]) + list(group[group["itm"]]["folder"]) + list(group["folder"])
    second = next(f for f in candidates if f != first)
    return [labels[first], labels[second]]


# --- steps ---------------------------------------------------------------------------------------

def open_app(driver, server) -> None:
    """Load the app (a new Streamlit session) unless this browser is already on it."""
    if not driver.current_url.startswith(server.url):
        driver.get(server.url)
        bs.wait_for(driver, "h1")
        bs.wait_idle(driver)


def go_to(driver, server, link: str, title: str) -> None:
    """Click the sidebar navigation link `link` and wait for the page titled `title` to finish."""
    open_app(driver, server)
    links = [a for a in driver.find_elements("css selector", '[data-testid="stSidebarNav"] a') if a.text == link]
    assert links, f"no sidebar link {link!r}: " + ", ".join(
        a.text for a in driver.find_elements("css selector", '[data-testid="stSidebarNav"] a'))
    links[0].click()
    bs.wait_for(driver, "h1", text=title)
    bs.wait_idle(driver)


def check_page(driver, title: str, dataframes: int = 1, charts: int = 1) -> None:
    """The page's title, at least `dataframes` tables and `charts` plotly charts, no exception box,
    and no console error from the app (read since the last check)."""
    bs.wait_idle(driver)
    assert title in driver.find_element("css selector", "h1").text
    exceptions = bs.exception_text(driver)
    assert not exceptions, f"Streamlit exception on {title!r}:\n{exceptions}"
    for css, n in ((DATAFRAME, dataframes), (CHART, charts)):
        found = [e for e in driver.find_elements("css selector", f"{MAIN} {css}") if e.is_displayed()]
        assert len(found) >= n, f"{title!r}: {len(found)} × {css}, expected at least {n}"
    errors = bs.app_errors(driver.get_log("browser"))
    assert not errors, f"browser console errors on {title!r}: {errors}"


def tables_cut(driver) -> list[list]:
    """The tables shown in the main area that scroll sideways or reach past the window's right edge
    (at 1366 px a reader would miss their right-hand columns): [its column headers, scrollWidth,
    clientWidth, right edge, window width] of each."""
    return driver.execute_script(
        f"return [...document.querySelectorAll('{MAIN} {DATAFRAME}')].filter(e => e.offsetParent !== null)"
        ".map(e => { const s = e.querySelector('.dvn-scroller'); const r = e.getBoundingClientRect();"
        "const h = [...e.querySelectorAll('[role=\"columnheader\"]')].map(c => c.textContent).join(' | ');"
        "return [h, s ? s.scrollWidth : -1, s ? s.clientWidth : -1, r.right, window.innerWidth]; })"
        ".filter(([, scroll, client, right, width]) => scroll > client + 1 || right > width)")


def widget(driver, testid: str, label: str, scope: str = ""):
    """The widget (data-testid `testid`) whose label reads `label`."""
    for element in driver.find_elements("css selector", f"{scope} [data-testid={testid!r}]".strip()):
        labels = element.find_elements("css selector", '[data-testid="stWidgetLabel"]')
        if labels and labels[0].text.strip() == label:
            return element
    raise AssertionError(f"no {testid} labelled {label!r}")


def widget_starting(driver, testid: str, prefix: str, scope: str = ""):
    """The widget (data-testid `testid`) whose label starts with `prefix`."""
    for element in driver.find_elements("css selector", f"{scope} [data-testid={testid!r}]".strip()):
        labels = element.find_elements("css selector", '[data-testid="stWidgetLabel"]')
        if labels and labels[0].text.strip().startswith(prefix):
            return element
    raise AssertionError(f"no {testid} labelled {prefix!r}…")


def selected_text(element) -> str:
    """The text a selectbox shows as its value (its combobox input's value)."""
    return (element.find_element("css selector", 'input[role="combobox"]').get_attribute("value") or "").strip()


def multiselect_tags(element) -> list[str]:
    return [t.get_attribute("aria-label") for t in element.find_elements("css selector", "[data-tag]")]


def choose(driver, element, option: str | None = None, index: int | None = None) -> str:
    """Open the selectbox / multiselect `element`, click the option reading `option` (or the
    `index`-th), wait for the rerun; returns the option's text."""
    from selenium.webdriver.common.keys import Keys

    element.find_element("css selector", 'input[role="combobox"]').click()
    bs.wait_for(driver, '[role="option"]')
    options = [o for o in driver.find_elements("css selector", '[role="option"]') if o.text != "Select all"]
    if option is not None:
        matches = [o for o in options if o.text == option]
        assert matches, f"no option {option!r} among {[o.text for o in options]}"
        chosen = matches[0]
    else:
        chosen = options[index]
    text = chosen.text
    bs.rerun_after(driver, chosen.click)
    if driver.find_elements("css selector", '[role="listbox"]'):  # a multiselect stays open
        driver.switch_to.active_element.send_keys(Keys.ESCAPE)
        bs.wait_idle(driver)
    return text


def screenshot(driver, shots: Path, name: str) -> None:
    path = bs.full_page_screenshot(driver, shots / f"{name}.png")
    assert path.stat().st_size > 10_000, f"{path} looks empty"


# --- the pages -----------------------------------------------------------------------------------

def test_home(driver, server, shots):
    driver.get(server.url)  # a fresh session: the default choice of checkpoints
    bs.wait_for(driver, "h1", text="Checkpoints")
    bs.wait_idle(driver)
    check_page(driver, "Checkpoints", dataframes=1, charts=1)  # variants table; effects or slice bars
    assert "checkpoints" in driver.find_element("css selector", MAIN).text
    # every variant column of every group's slice table (and every column of the findings, when
    # there are any) is within the 1366 px viewport: the grid neither scrolls sideways nor reaches
    # past the window's right edge
    widths = driver.execute_script(
        "return [...document.querySelectorAll('[class*=\"st-key-heatmap-\"], .st-key-findings, .st-key-claims-glance, "
        ".st-key-claims-pooled')].map(e => {"
        "const s = e.querySelector('.dvn-scroller'); const r = e.getBoundingClientRect();"
        "return [s ? s.scrollWidth : -1, s ? s.clientWidth : -1, r.right, window.innerWidth]; })")
    assert widths, "no slice × variant table on the home page"
    for scroll, client, right, window in widths:
        assert 0 < scroll <= client + 1 and right <= window, (scroll, client, right, window)
    screenshot(driver, shots, "0_Checkpoints")
    # the claims at a glance, alone, as a reader sees them at 1366 px
    path = bs.full_page_screenshot(driver, shots / "claims.png", element=".st-key-claims-section")
    assert path.stat().st_size > 10_000, f"{path} looks empty"


def test_predictions_side_by_side(driver, server, shots):
    from selenium.webdriver.support.ui import WebDriverWait

    go_to(driver, server, "Predictions", "Predictions")
    # the structured picker: one task, its architectures, loss variants × seeds, full names
    for label in ("Task", "Architecture", "Loss variants", "Seeds"):
        widget(driver, "stSelectbox" if label == "Task" else "stMultiSelect", label, SIDEBAR)
    variants = multiselect_tags(widget(driver, "stMultiSelect", "Loss variants", SIDEBAR))
    assert variants and variants[0] == "CE" and all(v.startswith("CE") for v in variants), variants
    WebDriverWait(driver, bs.TIMEOUT).until(lambda d: "task=" in d.current_url and "variant=" in d.current_url,
                                            "the URL does not name the comparison")
    check_page(driver, "Predictions", dataframes=3, charts=2)  # posts, counts, detail; confusion, probs
    # the posts grid (the default comparison: four checkpoints) fits 1366 px without scrolling sideways
    scroll, client = driver.execute_script(
        "const s = document.querySelector('[class*=\"st-key-_posts_table\"] .dvn-scroller');"
        "return s ? [s.scrollWidth, s.clientWidth] : [-1, -1];")
    assert 0 < scroll <= client + 1, (scroll, client)
    assert not tables_cut(driver)  # the counts, the effect table, the post's detail

    # A post's detail: choose another post than the first (the picker searches every matching post)
    post = choose(driver, widget_starting(driver, "stSelectbox", "Post (", MAIN), index=1)
    post_id = post.split(":")[0]
    WebDriverWait(driver, bs.TIMEOUT).until(lambda d: f"post={post_id}" in d.current_url,
                                            f"the URL does not name the chosen post {post_id}")
    bs.wait_idle(driver)
    bs.wait_for(driver, f"{MAIN} [data-testid='stMarkdownContainer']", text="Text: ")
    assert driver.find_elements("css selector", f"{MAIN} {IMAGE}"), "the post's image is not shown"
    links = [a.text for a in driver.find_elements("css selector", f"{MAIN} [data-testid='stPageLink'] a")]
    assert any("Match scores" in a for a in links), links
    check_page(driver, "Predictions", dataframes=3, charts=2)
    screenshot(driver, shots, "1_Predictions")

    # a reload restores the view exactly (the URL holds it)
    url = driver.current_url
    driver.get(url)
    bs.wait_for(driver, "h1", text="Predictions")
    bs.wait_idle(driver)
    assert selected_text(widget_starting(driver, "stSelectbox", "Post (", MAIN)).startswith(post_id)
    assert multiselect_tags(widget(driver, "stMultiSelect", "Loss variants", SIDEBAR)) == variants

    # the contrast of two slices, tested: its result fits 1366 px as well
    driver.get(url + "&contrast=1")
    bs.wait_for(driver, "h1", text="Predictions")
    bs.wait_for(driver, f".st-key-contrast-result {DATAFRAME}")
    bs.wait_idle(driver)
    assert not tables_cut(driver)


def test_walk_from_a_finding_to_its_posts_and_their_attributions(driver, server, app_runs, shots):
    """Home's heatmap → the posts behind one cell (the link a click opens) → a post's detail →
    Attributions of that post: every page names the same post, and Attributions explains the
    class that the stored predictions (what Predictions shows) give, with the same probability."""
    import re
    import urllib.parse

    from selenium.webdriver.support.ui import WebDriverWait

    from mmaux import views
    from mmaux.analysis import effects
    from mmaux.analysis import runs as runs_lib

    _, runs = app_runs
    driver.get(server.url)
    bs.wait_for(driver, "h1", text="Checkpoints")
    bs.wait_idle(driver)
    assert "Where each auxiliary loss helps" in bs.page_text(driver)
    key, group = runs_lib.groups(runs)[0]
    frame = effects.effects_table(group)
    cell = frame[(frame["kind"] == effects.VS_CE) & (frame["slicing"] == "evidence") & (frame["effect"] != "CE")]
    if cell.empty:
        pytest.skip("the first group has no per-evidence effect")
    row = cell.iloc[0]
    link = views.cell_link(runs, key, row["effect"], "evidence", row["slice"])
    driver.get(f"{server.url}/Predictions?{urllib.parse.urlencode(link)}")
    bs.wait_for(driver, "h1", text="Predictions")
    bs.wait_idle(driver)
    assert selected_text(widget(driver, "stSelectbox", "Slice value", MAIN)) == row["slice"]
    assert selected_text(widget(driver, "stSelectbox", "Order", MAIN)) == views.FLIPS_FIRST
    WebDriverWait(driver, bs.TIMEOUT).until(lambda d: "post=" in d.current_url, "no post in the URL")
    post_id = urllib.parse.parse_qs(urllib.parse.urlparse(driver.current_url).query)["post"][0]

    attributions = [a for a in driver.find_elements("css selector", f"{MAIN} [data-testid='stPageLink'] a")
                    if "Attributions" in a.text]
    assert attributions, "the detail links to Attributions"
    attributions[0].click()
    bs.wait_for(driver, "h1", text="Attributions")
    bs.wait_idle(driver)
    assert f"post={post_id}" in driver.current_url
    assert selected_text(widget(driver, "stSelectbox", "Post", SIDEBAR)).startswith(post_id)  # sidebar
    assert f"Post {post_id}" in bs.page_text(driver)  # main area
    explained = re.findall(r"(.+?) explains (\S+) \(P = ([0-9.]+)\)", bs.page_text(driver))
    assert explained, "no 'explains' line on Attributions"
    compared = runs[(runs[runs_lib.GROUP_COLUMNS] == list(key)).all(axis=1) & (runs["seed"] == int(link["seed"]))
                    & runs["variant"].isin(link["variant"].split(","))]  # in page order: CE, then the variant
    assert len(explained) == len(compared), explained
    screenshot(driver, shots, "4_Attributions")
    # Checkpoints written before features were always computed in eval mode (they have no
    # val_outputs.parquet) stored predictions of train-mode features: theirs may differ live.
    reproducible = [(folder, line) for folder, line in zip(compared["folder"], explained)
                    if (Path(folder) / VAL_OUTPUTS).is_file()]
    for folder, (name, label, probability) in reproducible:
        stored = runs_lib.load_test_table(folder).set_index("post_id").loc[post_id]  # what Predictions shows
        assert label == stored["pred_label"], f"{name}: Predictions shows {stored['pred_label']}, Attributions {label}"
        assert abs(float(probability) - float(stored["confidence"])) < 0.02, (name, probability, stored["confidence"])
    if not reproducible:
        pytest.xfail("these checkpoints predate eval-mode feature caching (no val_outputs.parquet): their "
                     "stored predictions are not comparable with live ones until `make checkpoints` rebuilds them")


def test_match_scores(driver, server, shots):
    go_to(driver, server, "Match scores", "Match scores")
    check_page(driver, "Match scores", dataframes=1, charts=3)  # ranked texts, heatmap, health
    assert not tables_cut(driver)
    screenshot(driver, shots, "2_Match_Scores")


def test_embeddings(driver, server, shots):
    go_to(driver, server, "Embeddings", "Embeddings")
    check_page(driver, "Embeddings", dataframes=1, charts=1)  # the fused space's numbers; the maps
    assert "UMAP of" in driver.find_element("css selector", MAIN).text
    assert not tables_cut(driver)  # the spaces' numbers, the nearest posts
    screenshot(driver, shots, "3_Embeddings")


def test_attributions(driver, server, shots):
    go_to(driver, server, "Attributions", "Attributions")
    check_page(driver, "Attributions", dataframes=1, charts=1)  # reliance table; image attribution
    assert "explains" in driver.find_element("css selector", MAIN).text
    assert not tables_cut(driver)
    screenshot(driver, shots, "4_Attributions")


def test_your_post(driver, server, shots, tmp_path):
    from PIL import Image, ImageDraw
    from selenium.webdriver.common.keys import Keys

    go_to(driver, server, "Your post", "Your post")
    image = Image.new("RGB", (224, 224), (250, 200, 80))
    draw = ImageDraw.Draw(image)
    draw.ellipse((40, 40, 184, 184), fill=(40, 90, 200))
    draw.rectangle((90, 20, 134, 204), fill=(230, 60, 60))
    upload = tmp_path / UPLOAD_NAME
    image.save(upload)

    uploader = widget_starting(driver, "stFileUploader", "…or upload an image", MAIN)
    field = uploader.find_element("css selector", 'input[type="file"]')
    bs.rerun_after(driver, lambda: field.send_keys(str(upload)))
    bs.wait_for(driver, f"{MAIN} [data-testid='stImageCaption']", text=UPLOAD_NAME)
    # the upload empties the text box: the page asks for the text instead of predicting an image alone
    assert "Type the post's text in the box above" in bs.page_text(driver)
    assert not [t for t in driver.find_elements("css selector", f"{MAIN} {DATAFRAME}") if t.is_displayed()]

    box = widget(driver, "stTextArea", "Text of the post", MAIN).find_element("css selector", "textarea")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(TYPED_TEXT)
    bs.rerun_after(driver, lambda: box.send_keys(Keys.CONTROL, Keys.ENTER))  # commit the text: a rerun

    bs.wait_for(driver, f"{MAIN} [data-testid='stImageCaption']", text=UPLOAD_NAME)
    box = widget(driver, "stTextArea", "Text of the post", MAIN).find_element("css selector", "textarea")
    assert box.get_attribute("value") == TYPED_TEXT
    check_page(driver, "Your post", dataframes=1, charts=1)  # predictions table and bars
    # the out-of-distribution table's last column is inside the page: no sideways scroll, right edge in the window
    scroll, client, right, window = driver.execute_script(
        "const e = document.querySelector('.st-key-ood'); const s = e.querySelector('.dvn-scroller');"
        "return [s.scrollWidth, s.clientWidth, e.getBoundingClientRect().right, window.innerWidth];")
    assert scroll <= client + 1 and right <= window, (scroll, client, right, window)
    screenshot(driver, shots, "5_Your_Post")
