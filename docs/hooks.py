"""MkDocs hook: the site's pages, generated from the repository at build time.

- ``index.md``: the top README; ``contributing.md``: CONTRIBUTING.md;
- ``systems/<name>.md`` and ``substrates/<name>.md``: each package's README;
- ``api/<package>.md``: one ``::: module`` block per module that defines a public name of the
  package (the names in its lazy ``_EXPORTS``, each module showing just those), and for
  ``paperlab.core`` its public modules whole;
- ``studies/<name>.md``: the hand-written study pages, real files in ``docs/studies/`` (every
  ``.md`` there is a page, listed under "Studies" in the site's navigation).

Links in the READMEs and the study pages that point at another README or at a study page
become links to its page; links to source files become plain text (the site has no copy of
the code). The report is linked from the index when ``results/REPORT.html`` exists at build
time.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
SYSTEMS = ("mowst", "splitwise", "entropic_student", "splitquant", "diffrate", "hierarchy",
           "fourier_head", "softmax", "pitome", "zloss", "alp")
SUBSTRATES = ("vision", "text", "merging")
CORE_MODULES = ("claims", "stats", "results", "registry", "config", "parts", "data", "seed",
                "timing", "plots", "checks", "checkpoint", "jobs", "report", "fetch")
STUDIES = ROOT / "docs" / "studies"
LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)#\s]+)(#[^)\s]*)?\)")


def _exports(package: str) -> dict[str, list[str]]:
    """``{module: [public names]}`` from the package's ``_EXPORTS`` literal (read, not run)."""
    tree = ast.parse((ROOT / "paperlab" / package / "__init__.py").read_text())
    table: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets):
            exports = _literal_exports(node.value)
            for name, module in exports.items():
                table.setdefault(module, []).append(name)
    return table


def _literal_exports(node: ast.expr) -> dict[str, str]:
    """Evaluate ``{"a": "m", **dict.fromkeys(("b", "c"), "n")}`` without running code."""
    out: dict[str, str] = {}
    assert isinstance(node, ast.Dict), "_EXPORTS must be a dict literal"
    for key, value in zip(node.keys, node.values, strict=True):
        if key is None:  # **dict.fromkeys((...), "module")
            assert isinstance(value, ast.Call) and len(value.args) == 2
            names, module = ast.literal_eval(value.args[0]), ast.literal_eval(value.args[1])
            out.update(dict.fromkeys(names, module))
        else:
            out[ast.literal_eval(key)] = ast.literal_eval(value)
    return out


def _api_page(package: str) -> str:
    title = f"# API: `paperlab.{package}`\n\n"
    if package == "core":
        return title + "".join(f"::: paperlab.core.{m}\n\n" for m in CORE_MODULES)
    blocks = []
    for module, names in sorted(_exports(package).items()):
        members = ", ".join(f'"{n}"' for n in names)
        blocks.append(f"::: {module}\n    options:\n      members: [{members}]\n\n")
    return title + "".join(blocks)


def _page_of(target: Path) -> str | None:
    """The site page of a repository file a README links to, if the site has one."""
    try:
        rel = target.resolve().relative_to(ROOT)
    except ValueError:
        return None
    parts = rel.parts
    if rel == Path("README.md"):
        return "index.md"
    if rel == Path("CONTRIBUTING.md"):
        return "contributing.md"
    if len(parts) == 3 and parts[0] == "paperlab" and parts[2] == "README.md":
        kind = "systems" if parts[1] in SYSTEMS else "substrates"
        return f"{kind}/{parts[1]}.md"
    if len(parts) >= 3 and parts[:2] == ("docs", "studies") and rel.suffix == ".md":
        return "/".join(("studies", *parts[2:]))
    return None


def _readme(source: Path, page: str) -> str:
    """A README as a page (see ``_links``)."""
    return _links(source.read_text(encoding="utf-8"), source, page)


def _links(markdown: str, source: Path, page: str) -> str:
    """``markdown`` (the text of the repository file ``source``) as the site page ``page``:
    links to READMEs and study pages point at their pages, links to other repository files
    keep their text only (the site has no copy of the code)."""
    depth = page.count("/")

    def fix(match: re.Match[str]) -> str:
        text, target, anchor = match.group(1), match.group(2), match.group(3) or ""
        if "://" in target or target.startswith("mailto:"):
            return match.group(0)
        other = _page_of(source.parent / target)
        if other is None:
            return text
        return f"[{text}]({'../' * depth}{other}{anchor})"

    return LINK.sub(fix, markdown)


def on_files(files: Files, config: Any) -> Files:
    pages: dict[str, str] = {
        "index.md": _readme(ROOT / "README.md", "index.md"),
        "contributing.md": _readme(ROOT / "CONTRIBUTING.md", "contributing.md"),
    }
    for name in SYSTEMS:
        pages[f"systems/{name}.md"] = _readme(ROOT / "paperlab" / name / "README.md",
                                              f"systems/{name}.md")
    for name in SUBSTRATES:
        pages[f"substrates/{name}.md"] = _readme(ROOT / "paperlab" / name / "README.md",
                                                 f"substrates/{name}.md")
    for package in ("core", *SUBSTRATES, *SYSTEMS):
        if package == "text":
            continue  # the text substrate has no lazy API; its modules are documented below
        pages[f"api/{package}.md"] = _api_page(package)
    pages["api/text.md"] = "# API: `paperlab.text`\n\n" + "".join(
        f"::: paperlab.text.{m}\n\n" for m in ("data", "minilm", "train"))
    report = ROOT / "results" / "REPORT.html"
    if report.exists():
        pages["report.html"] = report.read_text(encoding="utf-8")
        pages["index.md"] += ("\n\n## The last report\n\n[REPORT.html](report.html): the "
                              "verdicts and plots of the last `paperlab reproduce` into "
                              "`results/`.\n")
    for uri, content in pages.items():
        files.append(File.generated(config, uri, content=content))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """A study page's links, rewritten as the READMEs' are (the other pages come rewritten)."""
    src = page.file.src_uri
    if src.startswith("studies/"):
        return _links(markdown, STUDIES / src.removeprefix("studies/"), src)
    return markdown
