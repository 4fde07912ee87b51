"""The API reference: every public name has a docstring, and the built site shows the API.

The site itself is built with warnings as errors by ``make docs`` (part of ``make test``), so a
broken cross-reference or a docstring whose parameters do not match the signature fails CI; a
missing docstring is caught here.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from paperlab.core import registry

ROOT = Path(__file__).resolve().parents[2]
STUDIES = ROOT / "docs" / "studies"
CORE_MODULES = ("claims", "stats", "results", "registry", "config", "parts", "data", "seed",
                "timing", "plots", "checks", "checkpoint", "jobs", "report", "fetch")
PACKAGES = ("vision", "merging", *registry.PACKAGES)


def _exports(package: str) -> dict[str, str]:
    return dict(getattr(importlib.import_module(f"paperlab.{package}"), "_EXPORTS", {}))


def _public_objects():
    """(qualified name, object) of every documented function and class."""
    for package in PACKAGES:
        for name, module in _exports(package).items():
            yield f"{module}.{name}", getattr(importlib.import_module(module), name)
    for module_name in [f"paperlab.core.{m}" for m in CORE_MODULES] + [
            f"paperlab.text.{m}" for m in ("data", "minilm", "train")]:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if not name.startswith("_") and getattr(obj, "__module__", None) == module_name:
                yield f"{module_name}.{name}", obj


def _documented(obj: object) -> bool:
    """Its own docstring: not inherited, and not the signature a dataclass writes for itself."""
    doc = vars(obj).get("__doc__") if inspect.isclass(obj) else obj.__doc__
    if not doc or not doc.strip():
        return False
    return not (inspect.isclass(obj) and doc.startswith(f"{obj.__name__}("))


def test_every_public_function_and_class_has_a_docstring():
    missing = [name for name, obj in _public_objects()
               if (inspect.isfunction(obj) or inspect.isclass(obj)) and not _documented(obj)]
    assert missing == []


def test_the_docstring_check_can_fail():
    from dataclasses import dataclass

    @dataclass
    class Bare:
        x: int

    class Child(Bare):
        pass

    def bare() -> None:
        pass

    assert not any(_documented(o) for o in (Bare, Child, bare))
    assert _documented(registry.System) and _documented(registry.get)


def test_the_site_lists_every_package_the_hook_documents():
    hooks = (ROOT / "docs" / "hooks.py").read_text()
    for package in PACKAGES:
        if package in registry.PACKAGES:
            assert f'"{package}"' in hooks  # the hook's SYSTEMS tuple names it


def _hooks():
    """docs/hooks.py as a module (it imports mkdocs, a dev dependency)."""
    pytest.importorskip("mkdocs")
    spec = importlib.util.spec_from_file_location("paperlab_docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _readmes() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "paperlab").glob("*/README.md"))]


def test_study_pages_and_readme_links_become_site_pages():
    hooks = _hooks()
    assert hooks._page_of(STUDIES / "mowst-selection.md") == "studies/mowst-selection.md"
    page = "studies/x.md"
    text = ("[r](../../paperlab/mowst/README.md#not-done) [s](other.md) "
            "[c](../../paperlab/mowst/training.py) [w](https://example.org/a.md)")
    assert hooks._links(text, STUDIES / "x.md", page) == (
        "[r](../systems/mowst.md#not-done) [s](../studies/other.md) c "
        "[w](https://example.org/a.md)")
    rewritten = hooks._links("[study](../../docs/studies/x.md)",
                             ROOT / "paperlab" / "zloss" / "README.md", "systems/zloss.md")
    assert rewritten == "[study](../studies/x.md)"


def test_every_study_page_exists_where_linked_and_is_linked_from_a_readme():
    link = re.compile(r"\]\(([^)#\s]*docs/studies/[^)#\s]+)")
    linked = set()
    for readme in _readmes():
        for target in link.findall(readme.read_text(encoding="utf-8")):
            path = (readme.parent / target).resolve()
            assert path.is_file(), f"{readme.relative_to(ROOT)} links to a missing {target}"
            linked.add(path)
    pages = {p.resolve() for p in STUDIES.glob("*.md")}
    assert pages, "no study pages"
    assert pages - linked == set(), "study pages no README links to"
    for page in pages:
        assert page.read_text(encoding="utf-8").startswith("# "), f"{page.name}: no title"


def _chromium() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None or shutil.which("mkdocs") is None
                    and not (ROOT / ".venv" / "bin" / "mkdocs").exists(),
                    reason="no chromium (apt-get install chromium) or no mkdocs")
def test_built_site_shows_an_api_signature_in_headless_chromium(tmp_path):
    mkdocs = shutil.which("mkdocs") or str(ROOT / ".venv" / "bin" / "mkdocs")
    subprocess.run([mkdocs, "build", "--strict", "--quiet", "--site-dir", str(tmp_path)],
                   cwd=ROOT, check=True, timeout=300)
    for page, needle in ((tmp_path / "index.html", "paperlab"),
                         (tmp_path / "api" / "pitome" / "index.html", "keep_ratio")):
        dom = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                              "--dump-dom", page.as_uri()], capture_output=True, text=True,
                             timeout=120, check=True).stdout
        assert needle in dom
    assert "paperlab.pitome.merge.patch" in (tmp_path / "api" / "pitome" / "index.html"
                                             ).read_text()
    for study in STUDIES.glob("*.md"):  # every study page is built, and in the navigation
        assert (tmp_path / "studies" / study.stem / "index.html").is_file()
        assert f"studies/{study.stem}/" in (tmp_path / "index.html").read_text()
