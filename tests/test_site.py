"""The static site (scripts/build_site.py) renders offline, in a real browser.

Builds the site into a temporary folder and opens its pages in headless Chromium
(Debian's package, /usr/bin/chromium; the browser tests skip where it is absent),
driven over the DevTools protocol by the small client below. For each page: no raw
``$`` or ``\\frac`` left in the visible text, the math typeset by the MathJax the
site serves itself (its elements present), every image loaded, no request to
another host, and on the Chinese pages the CJK text drawn with a font that has
its glyphs (no boxes in place of characters).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from scripts import build_site

ROOT = Path(__file__).resolve().parent.parent
# Debian's package; XENT_REF_CHROMIUM names another build (or a missing one, to see the skips)
CHROMIUM = Path(os.environ.get("XENT_REF_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]

pytest.importorskip("markdown_it")
pytest.importorskip("mdit_py_plugins")
pytest.importorskip("mathjax")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    build_site.build(out)
    return out


def test_the_site_has_every_page_and_no_solutions(site):
    known = build_site.pages()
    assert "README.md" in known and any(s.startswith("docs/") for s in known)
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    for stem in notebooks:
        assert (site / "notebooks" / f"{stem}.html").is_file(), stem
    for path in (ROOT / "notebooks" / "zh").glob("*.ipynb"):
        assert (site / "notebooks" / "zh" / f"{path.stem}.html").is_file(), path.stem
    assert not (site / "notebooks" / "solutions").exists()
    # the exercises page shows the blank exercise, not its answer
    exercises = (site / "notebooks" / "06_exercises.html").read_text(encoding="utf-8")
    assert "not attempted yet" in exercises
    assert "(solutions)" not in exercises
    port = (site / "notebooks" / "11_c_port.html").read_text(encoding="utf-8")
    assert "your code here" in port and "shifted_sum" not in port  # the C answer's helper


def test_pages_load_nothing_from_another_host(site):
    """Everything a page loads (scripts, style sheets, images) is a relative path
    inside the site; only links a reader may follow point elsewhere."""
    loaded = re.compile(r'<(?:script|img|link)\b[^>]*?\b(?:src|href)="([^"]*)"')
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        sources = loaded.findall(text)
        assert sources, page
        for source in sources:
            assert not re.match(r"[a-z][a-z0-9+.-]*:|//|/", source), (page, source)
            assert (page.parent / source).resolve().is_file(), (page, source)
    assert (site / "_static" / "mathjax" / "tex-svg.js").stat().st_size > 100_000


def test_links_between_pages_point_at_pages(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="docs/teaching.html"' in index or "teaching.md" not in index
    for page in site.rglob("*.html"):
        for href in re.findall(r'href="([^"#:]+)', page.read_text(encoding="utf-8")):
            if href.endswith(".html"):
                assert (page.parent / href).resolve().is_file(), (page, href)


def test_explain_tables_are_styled(site):
    css = (site / "_static" / "site.css").read_text(encoding="utf-8")
    assert re.search(r"td\.num \{[^}]*text-align: right", css)
    assert re.search(r"pre, code \{[^}]*monospace", css)
    page = (site / "notebooks" / "02_worked_examples.html").read_text(encoding="utf-8")
    assert '<td class="num">' in page
    assert build_site.style_tables("<td>1.5e-3</td><td>p</td><td>-inf</td>") == (
        '<td class="num">1.5e-3</td><td>p</td><td class="num">-inf</td>')


# ---------------------------------------------------------------- the browser


class DevTools:
    """A minimal DevTools-protocol client: send a command, wait for its answer,
    keep the events that arrive meanwhile."""

    def __init__(self, url: str):
        import websocket  # websocket-client, the test extra

        self.socket = websocket.create_connection(url, timeout=60, suppress_origin=True)
        self.events: list[dict] = []
        self._id = 0

    def call(self, method: str, **params):
        self._id += 1
        self.socket.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for number, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(number)
            self.events.append(json.loads(self.socket.recv()))
        raise TimeoutError(method)

    def close(self):
        self.socket.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM} (Debian: apt-get install chromium)")
    pytest.importorskip("websocket")
    profile = tempfile.mkdtemp(prefix="xent-ref-chromium-")
    process = subprocess.Popen(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
         "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            match = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            port = match and match.group(1)
            if not line and process.poll() is not None:
                break
        assert port, "Chromium did not start its DevTools endpoint"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as answer:
            targets = json.load(answer)
        page = next(t for t in targets if t["type"] == "page")
        client = DevTools(page["webSocketDebuggerUrl"])
        for domain in ("Page", "Network", "DOM", "CSS", "Runtime"):
            client.call(f"{domain}.enable")
        yield client
        client.close()
    finally:
        process.terminate()
        process.stderr.close()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(profile, ignore_errors=True)


# What a page reports once MathJax has typeset it: the math elements, what is left of
# the visible text outside code and math, and every image's loaded size.
_PROBE = """
(async () => {
  if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
  const main = document.querySelector("main").cloneNode(true);
  main.querySelectorAll("pre, code, mjx-container, script, style").forEach(e => e.remove());
  const images = [...document.images].map(i => [i.getAttribute("src"), i.complete, i.naturalWidth]);
  return JSON.stringify({
    mathjax: !!(window.MathJax && MathJax.version),
    sources: document.querySelectorAll("span.math, div.math").length,
    typeset: document.querySelectorAll("mjx-container").length,
    merrors: document.querySelectorAll("mjx-merror, [data-mjx-error]").length,
    text: main.innerText || main.textContent,
    images: images,
  });
})()
"""


def _open(browser: DevTools, path: Path) -> tuple[dict, list[str], list[dict]]:
    browser.events.clear()
    browser.call("Page.navigate", url=path.as_uri())
    browser.wait_for("Page.loadEventFired")
    result = browser.call("Runtime.evaluate", expression=_PROBE, awaitPromise=True,
                          returnByValue=True)
    report = json.loads(result["result"]["value"])
    requests = [e["params"]["request"]["url"] for e in browser.events
                if e.get("method") == "Network.requestWillBeSent"]
    failed = [e["params"] for e in browser.events if e.get("method") == "Network.loadingFailed"]
    return report, requests, failed


def _cjk_fonts() -> set[str]:
    """The font families fontconfig says cover Chinese."""
    if shutil.which("fc-list") is None:
        return set()
    listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True,
                            check=False).stdout
    return {name.strip() for line in listed.splitlines() for name in line.split(",")}


BROWSED = sorted(build_site.pages().values())
# pages whose math the test counts: it must be there, not merely absent from the text
MATH = {"notebooks/05_gradients.html": 50, "notebooks/zh/05_gradients.html": 50,
        "notebooks/09_backprop_by_hand.html": 10, "notebooks/10_training.html": 10}


@pytest.mark.parametrize("page", BROWSED)
def test_page_renders_offline_in_chromium(site, browser, page):
    path = site / page
    report, requests, failed = _open(browser, path)
    assert report["mathjax"], "MathJax did not load"
    foreign = [url for url in requests if not url.startswith(("file://", "data:"))]
    assert not foreign, foreign
    assert not failed, failed
    text = report["text"]
    assert "$" not in text and "\\frac" not in text and "\\(" not in text, re.findall(
        r".{0,30}(?:\$|\\frac|\\\().{0,30}", text)
    assert report["typeset"] == report["sources"], report
    assert report["typeset"] >= MATH.get(page, 0), report
    assert not report["merrors"]
    assert len(report["images"]) == path.read_text(encoding="utf-8").count("<img ")
    for src, complete, width in report["images"]:
        assert complete and width > 0, src


@pytest.mark.parametrize("page", [p for p in BROWSED if "/zh/" in p])
def test_chinese_text_is_drawn_with_a_cjk_font(site, browser, page):
    cjk = _cjk_fonts()
    if not cjk:
        pytest.fail("no font covering Chinese is installed (Debian: fonts-wqy-microhei "
                    "or fonts-noto-cjk): the Chinese pages would show boxes")
    _open(browser, site / page)
    root = browser.call("DOM.getDocument", depth=-1)["root"]["nodeId"]
    heading = browser.call("DOM.querySelector", nodeId=root, selector="main h1")["nodeId"]
    assert heading, "no heading"
    fonts = browser.call("CSS.getPlatformFontsForNode", nodeId=heading)["fonts"]
    used = {font["familyName"] for font in fonts if font["glyphCount"] > 0}
    assert used & cjk, (used, sorted(cjk))


def test_markdown_math_is_left_for_mathjax_and_chinese_lines_join():
    md = build_site.markdown()
    rendered = md.render("the loss $-\\log p_t$ and\n$$\\frac{a}{b}$$\n\n$$c$$\n\n再一个\n一个 and\nnext")
    assert '<span class="math inline">\\(-\\log p_t\\)</span>' in rendered
    assert '<div class="math inline">\\[\\frac{a}{b}\\]</div>' in rendered  # $$ inside a paragraph
    assert '<div class="math block">\n\\[c\\]\n</div>' in rendered
    assert "再一个一个 and\nnext" in rendered
    assert "$" not in rendered


def test_the_browser_checks_can_fail(browser, tmp_path):
    """A page with raw TeX, a missing image and an image from another host: the probe
    sees all three (the host name is reserved, so nothing leaves the machine)."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><main><p>raw $\\frac{a}{b}$</p>'
                   '<img src="missing.png"><img src="http://xent-ref.invalid/x.png">'
                   "</main></body></html>", encoding="utf-8")
    report, requests, failed = _open(browser, bad)
    assert "$\\frac{a}{b}$" in report["text"]
    assert not report["mathjax"]
    assert [width for _src, _complete, width in report["images"]] == [0, 0]
    assert any(url.startswith("http://xent-ref.invalid") for url in requests)
    assert failed
