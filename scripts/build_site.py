"""Build a static site of the README, the docs and the executed notebooks.

    uv run python scripts/build_site.py OUT

writes ``OUT/index.html`` (the README), ``OUT/docs/NAME.html`` for every
``docs/*.md``, and ``OUT/notebooks/NAME.html`` and ``OUT/notebooks/zh/NAME.html``
for every committed notebook in English and Chinese, as they were executed (the
solutions variants are left out: an exercise page shows the exercise). Links
between those files are rewritten to the pages. Open ``OUT/index.html`` in a
browser; nothing needs a server and nothing is loaded from the network:

* math (``$...$`` and ``$$...$$`` in Markdown) is typeset in the browser by
  MathJax, copied into ``OUT/_static/mathjax`` from the ``django-static-mathjax``
  package (the ``site`` extra), never from a CDN;
* the figures are PNG files beside the page;
* the style sheet is ``OUT/_static/site.css`` (``STYLE`` below): numbers right-aligned in the
  tables that ``explain`` prints, text summaries in a monospace font, and a
  font stack with the common CJK fonts for the Chinese pages.

Notebooks are rendered by a small renderer here (Markdown cells through the same
Markdown parser, code and its outputs as they were saved) rather than nbconvert,
whose default template loads MathJax from a CDN. ``tests/test_site.py`` builds the
site and opens its pages in headless Chromium.
"""

from __future__ import annotations

import base64
import html
import json
import posixpath
import re
import shutil
import sys
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MATHJAX_FILES = ("tex-svg.js", "input/tex/extensions", "ui", "a11y", "LICENSE")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CJK = re.compile("[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
_HREF = re.compile(r'(href|src)="([^"#:]+?\.(?:md|ipynb))(#[^"]*)?"')
_NUMBER_CELL = re.compile(
    r"<td>\s*([-+]?(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?%?|[-+]?inf|nan)\s*</td>")


def pages(root: Path = ROOT) -> dict[str, str]:
    """Every source file of the site (relative to ``root``) -> its page (relative to OUT)."""
    found = {"README.md": "index.html"}
    for path in sorted(root.glob("README.*.md")):  # a translated README: README.zh.md
        found[path.name] = f"index.{path.name.split('.')[1]}.html"
    for path in sorted((root / "docs").rglob("*.md")):
        rel = path.relative_to(root).as_posix()
        found[rel] = rel[: -len(".md")] + ".html"
    for folder in ("notebooks", "notebooks/zh"):
        for path in sorted((root / folder).glob("*.ipynb")):
            rel = path.relative_to(root).as_posix()
            found[rel] = rel[: -len(".ipynb")] + ".html"
    return found


def language(source: str) -> str:
    """The language a source file is written in: ``zh`` for the Chinese ones."""
    parts = source.split("/")
    return "zh" if "zh" in parts[:-1] or ".zh." in parts[-1] else "en"


def markdown():
    """A CommonMark parser with tables, raw HTML, and $math$ left for MathJax."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    def math(content: str, options: dict) -> str:
        # the plugin wraps this in <span class="math inline"> or <div class="math block">
        if options.get("display_mode"):
            return f"\\[{html.escape(content)}\\]"
        return f"\\({html.escape(content)}\\)"

    def softbreak(self, tokens, idx, options, env) -> str:
        # A line break between two Chinese characters is no space: the source wraps
        # its lines, the reader must not see a gap in the middle of a sentence.
        before = tokens[idx - 1].content[-1:] if idx else ""
        after = tokens[idx + 1].content[:1] if idx + 1 < len(tokens) else ""
        return "" if _CJK.match(before) and _CJK.match(after) else "\n"

    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    md.add_render_rule("softbreak", softbreak)
    return md.use(dollarmath_plugin, allow_digits=False, double_inline=True, renderer=math)


def relink(body: str, source: str, known: dict[str, str]) -> str:
    """Point links to a ``.md`` or ``.ipynb`` file of the site at its page."""
    page = known[source]

    def repl(match: re.Match) -> str:
        target = posixpath.normpath(posixpath.join(posixpath.dirname(source), match.group(2)))
        if target not in known:
            return match.group(0)
        href = posixpath.relpath(known[target], posixpath.dirname(page) or ".")
        return f'{match.group(1)}="{href}{match.group(3) or ""}"'

    return _HREF.sub(repl, body)


def style_tables(body: str) -> str:
    """Mark the table cells that hold a number, for the style sheet to right-align."""
    return _NUMBER_CELL.sub(lambda m: f'<td class="num">{m.group(1)}</td>', body)


def _output(out: dict, images: Path, stem: str, number: int) -> str:
    """One saved output of a code cell as HTML (figures written beside the page)."""
    kind = out["output_type"]
    if kind == "stream":
        return f'<pre class="output {out["name"]}">{html.escape(_text(out["text"]))}</pre>'
    if kind == "error":
        trace = _ANSI.sub("", "\n".join(out.get("traceback", [])))
        return f'<pre class="output error">{html.escape(trace)}</pre>'
    data = out.get("data", {})
    if "text/html" in data:
        return f'<div class="output html">{style_tables(_text(data["text/html"]))}</div>'
    if "image/png" in data:
        images.mkdir(parents=True, exist_ok=True)
        name = f"{stem}-{number}.png"
        (images / name).write_bytes(base64.b64decode(data["image/png"]))
        return f'<div class="output image"><img src="{images.name}/{name}" alt="figure"></div>'
    if "text/plain" in data:
        return f'<pre class="output result">{html.escape(_text(data["text/plain"]))}</pre>'
    return ""


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else value


def notebook(path: Path, out_page: Path, md) -> tuple[str, str]:
    """The title and the HTML body of an executed notebook."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    parts, title, figures = [], path.stem, 0
    images = out_page.parent / f"{path.stem}_files"
    for cell in nb["cells"]:
        source = _text(cell["source"])
        if cell["cell_type"] == "markdown":
            if title == path.stem and source.startswith("# "):
                title = source.splitlines()[0][2:].strip()
            parts.append(f'<div class="markdown">{md.render(source)}</div>')
        elif cell["cell_type"] == "code":
            parts.append(f'<pre class="code"><code>{html.escape(source)}</code></pre>')
            for out in cell.get("outputs", []):
                figures += 1
                parts.append(_output(out, images, path.stem, figures))
    return title, "\n".join(parts)


def document(path: Path, md) -> tuple[str, str]:
    """The title and the HTML body of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    heading = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")),
                   path.stem)
    return heading, style_tables(md.render(text))


STYLE = """\
body { margin: 0; display: flex; color: #1f2328; line-height: 1.55;
  font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans", "Helvetica Neue", Arial,
    "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "PingFang SC",
    "Microsoft YaHei", sans-serif; }
nav { flex: 0 0 16rem; padding: 1rem; background: #f6f8fa; border-right: 1px solid #d0d7de;
  font-size: 0.9rem; height: 100vh; overflow-y: auto; position: sticky; top: 0; box-sizing: border-box; }
nav ul { padding-left: 1rem; margin: 0.3rem 0 0.8rem; }
nav summary { font-weight: 600; cursor: pointer; }
nav a[aria-current] { font-weight: 600; }
main { flex: 1; max-width: 60rem; padding: 1rem 2rem 4rem; min-width: 0; }
a { color: #0969da; }
pre, code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas,
  "Noto Sans Mono CJK SC", "WenQuanYi Zen Hei Mono", monospace; font-size: 0.85rem; }
pre { padding: 0.6rem 0.8rem; overflow-x: auto; background: #f6f8fa; border-radius: 6px; }
pre.code { border-left: 3px solid #0969da; }
pre.output { background: #fff; border: 1px solid #d0d7de; }
pre.output.stderr, pre.output.error { background: #fff5f5; }
table { border-collapse: collapse; margin: 0.8rem 0; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-family: ui-monospace, "DejaVu Sans Mono", monospace;
  font-variant-numeric: tabular-nums; white-space: nowrap; }
.output.html table { font-size: 0.85rem; }
.output.html tr:nth-child(even) td { background: #fafbfc; }
.output.image img, main img { max-width: 100%; height: auto; }
div.math.block { overflow-x: auto; margin: 0.8rem 0; }
"""

PAGE = """<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{static}/site.css">
<script>
window.MathJax = {{
  tex: {{inlineMath: [["\\\\(", "\\\\)"]], displayMath: [["\\\\[", "\\\\]"]]}},
  options: {{ignoreHtmlClass: "page", processHtmlClass: "math", enableMenu: false}},
  svg: {{fontCache: "global"}},
  loader: {{paths: {{mathjax: "{static}/mathjax"}}}}
}};
</script>
<script defer src="{static}/mathjax/tex-svg.js"></script>
</head>
<body class="page lang-{lang}">
<nav>{nav}</nav>
<main>
{body}
</main>
</body>
</html>
"""


def navigation(page: str, known: dict[str, str], titles: dict[str, str]) -> str:
    """Links to every page, grouped: the README, the docs, the notebooks per language."""
    here = posixpath.dirname(page) or "."
    groups: dict[str, list[str]] = {"xent-ref": [], "docs": [], "notebooks": [], "笔记本（中文）": []}
    for source, target in known.items():
        group = ("xent-ref" if source.startswith("README") else "docs"
                 if source.startswith("docs/") else "笔记本（中文）"
                 if language(source) == "zh" else "notebooks")
        label = html.escape(titles[source])
        current = ' aria-current="page"' if target == page else ""
        groups[group].append(
            f'<li><a href="{posixpath.relpath(target, here)}"{current}>{label}</a></li>')
    return "".join(f"<details open><summary>{name}</summary><ul>{''.join(items)}</ul></details>"
                   for name, items in groups.items() if items)


def copy_mathjax(out: Path) -> None:
    """MathJax's browser files, from the package that ships them, into OUT/_static/mathjax."""
    base = resources.files("mathjax") / "static" / "mathjax"
    for name in MATHJAX_FILES:
        source = Path(str(base / ("es5/" + name if name != "LICENSE" else name)))
        target = out / "_static" / "mathjax" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)


# A Markdown image with a relative address: ``![alt](img/plot.png)``
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s:]+)\)")


def copy_images(known: dict, out: Path, root: Path) -> None:
    """Every image a Markdown page shows, copied to the same place beside its page (the
    plots docs/benchmarks.md shows live in docs/img/)."""
    for source, page in known.items():
        if not source.endswith(".md"):
            continue
        for address in _IMAGE.findall((root / source).read_text(encoding="utf-8")):
            image = (root / source).parent / address
            if image.is_file():
                target = (out / page).parent / address
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(image, target)


def build(out: Path, root: Path = ROOT) -> list[Path]:
    """Write the site into ``out``; the pages written."""
    md = markdown()
    known = pages(root)
    rendered = {}
    for source, page in known.items():
        path = root / source
        if source.endswith(".ipynb"):
            rendered[source] = notebook(path, out / page, md)
        else:
            rendered[source] = document(path, md)
    titles = {source: title.replace("`", "") for source, (title, _body) in rendered.items()}
    written = []
    for source, page in known.items():
        title, body = rendered[source]
        static = posixpath.relpath("_static", posixpath.dirname(page) or ".")
        text = PAGE.format(lang="zh-CN" if language(source) == "zh" else "en",
                           title=html.escape(title), static=static,
                           nav=navigation(page, known, titles),
                           body=relink(body, source, known))
        (out / page).parent.mkdir(parents=True, exist_ok=True)
        (out / page).write_text(text, encoding="utf-8")
        written.append(out / page)
    (out / "_static").mkdir(parents=True, exist_ok=True)
    (out / "_static" / "site.css").write_text(STYLE, encoding="utf-8")
    copy_mathjax(out)
    copy_images(known, out, root)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: build_site.py OUT", file=sys.stderr)
        return 2
    out = Path(argv[0])
    written = build(out)
    print(f"{len(written)} pages written to {out}; open {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
