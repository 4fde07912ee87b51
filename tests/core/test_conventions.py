"""The conventions every system follows: typed options, resolve_config, lazy exports, the
command line's light --help, one-line usage errors, verbosity flags."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from paperlab import __version__, cli
from paperlab.core import registry
from paperlab.core.config import resolve_config
from paperlab.core.lazy import lazy_exports
from paperlab.core.registry import Option, System, comma_list, register
from paperlab.core.results import Result, RunContext


def _declared(name: str) -> bool:
    try:
        return registry.get(name).name == name
    except LookupError:  # planned, or being built
        return False


SYSTEMS = [name for name in registry.PACKAGES if _declared(name)]


# ---- Option ----------------------------------------------------------------------------
def test_option_converts_and_keeps_bounds():
    seeds = Option("seeds", int, "how many", min=1, max=10)
    assert seeds.flag == "--seeds" and seeds.parse("3") == 3
    assert Option("max_epochs", int).flag == "--max-epochs"
    assert Option("lr", float, min=0).parse("1e-3") == pytest.approx(1e-3)
    assert Option("where", Path).parse("a/b") == Path("a/b")


@pytest.mark.parametrize("option, text, words", [
    (Option("seeds", int, min=1), "x", ["--seeds", "integer", "'x'"]),
    (Option("seeds", int, min=1), "2.5", ["--seeds", "integer"]),
    (Option("seeds", int, min=1), "0", ["--seeds", ">= 1", "0"]),
    (Option("seeds", int, max=5), "6", ["--seeds", "<= 5", "6"]),
    (Option("lr", float), "nan", ["--lr", "finite"]),
    (Option("lr", float), "fast", ["--lr", "a number"]),
    (Option("mode", str, choices=("a", "b")), "c", ["--mode", "one of a, b", "'c'"]),
    (Option("names", comma_list), "a,,b", ["--names", "empty items"]),
])
def test_bad_option_value_is_one_line_value_error(option, text, words):
    with pytest.raises(ValueError) as exc:
        option.parse(text)
    message = str(exc.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_comma_list():
    assert comma_list("cora, texas ,wisconsin") == ("cora", "texas", "wisconsin")
    assert comma_list("cora") == ("cora",)
    for bad in ("", "a,", ",a"):
        with pytest.raises(ValueError):
            comma_list(bad)


def test_system_rejects_untyped_options():
    with pytest.raises(TypeError, match="Option"):
        System("x", "p", "c", run="m:f", options=("seeds",))  # type: ignore[arg-type]


# ---- resolve_config --------------------------------------------------------------------
@dataclass(frozen=True)
class _Config:
    size: int
    seeds: int = 1

    @classmethod
    def quick(cls) -> _Config:
        return cls(size=10)

    @classmethod
    def full(cls) -> _Config:
        return cls(size=1000, seeds=5)


@dataclass(frozen=True)
class _HookConfig(_Config):
    @classmethod
    def quick(cls) -> _HookConfig:
        return cls(size=10)

    @classmethod
    def full(cls) -> _HookConfig:
        return cls(size=1000)

    def with_options(self, options: dict) -> _HookConfig:
        return _HookConfig(size=self.size * options.get("scale", 1), seeds=self.seeds)


def _ctx(quick: bool = True, **options) -> RunContext:
    return RunContext(system="toy", quick=quick, seed=0, out_dir=Path("."), options=options)


def test_resolve_config_picks_quick_or_full():
    assert resolve_config(_ctx(quick=True), _Config) == _Config(size=10)
    assert resolve_config(_ctx(quick=False), _Config) == _Config(size=1000, seeds=5)


def test_resolve_config_uses_an_override_as_is():
    tiny = _Config(size=2, seeds=1)
    assert resolve_config(_ctx(quick=False, seeds=9), _Config, tiny) is tiny


def test_resolve_config_rejects_another_type():
    with pytest.raises(TypeError, match="_Config"):
        resolve_config(_ctx(), _Config, {"size": 2})  # type: ignore[arg-type]


def test_resolve_config_options_replace_fields_of_the_same_name():
    assert resolve_config(_ctx(seeds=4), _Config) == _Config(size=10, seeds=4)
    # unset options (None) and options that are not fields leave the size's values alone
    assert resolve_config(_ctx(seeds=None, reference="x"), _Config) == _Config(size=10)


def test_resolve_config_with_options_hook():
    assert resolve_config(_ctx(scale=3), _HookConfig) == _HookConfig(size=30)
    assert resolve_config(_ctx(), _HookConfig) == _HookConfig(size=10)


@pytest.mark.parametrize("name", SYSTEMS)
def test_every_system_has_one_config_with_quick_and_full(name):
    import importlib

    experiment = importlib.import_module(f"paperlab.{name}.experiment")
    config_cls = experiment.Config
    quick, full = config_cls.quick(), config_cls.full()
    assert isinstance(quick, config_cls) and isinstance(full, config_cls)
    assert quick != full  # quick is a smaller size, not the same one
    others = [n for n, v in vars(experiment).items()
              if isinstance(v, type) and v.__module__ == experiment.__name__
              and hasattr(v, "quick") and n != "Config"]
    assert not others, f"{name}: a second sized config: {others}"


# ---- lazy exports ----------------------------------------------------------------------
def test_lazy_exports_import_on_first_use():
    getattr_, dir_ = lazy_exports("paperlab.core", {"derive_seed": "paperlab.core.seed"})
    from paperlab.core.seed import derive_seed

    assert getattr_("derive_seed") is derive_seed
    assert "derive_seed" in dir_() and "registry" in dir_()  # its own names too
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr_("no_such_name")


@pytest.mark.parametrize("name", SYSTEMS)
def test_importing_a_system_imports_no_torch_and_exports_resolve(name):
    code = (f"import sys, paperlab.{name} as m\n"
            "assert 'torch' not in sys.modules, sorted(k for k in sys.modules if 'torch' in k)\n"
            "assert isinstance(m.SYSTEM.name, str)\n"
            "print(' '.join(m.__all__))")
    names = _python(code).split()
    assert "SYSTEM" in names
    module = __import__(f"paperlab.{name}", fromlist=["SYSTEM"])
    assert all(hasattr(module, n) for n in names)


# ---- the command line ------------------------------------------------------------------
def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return done.stdout


def test_run_help_lists_options_without_importing_torch():
    code = ("import sys\nfrom paperlab import cli\n"
            "try:\n    cli.main(['run', 'mowst', '--help'])\nexcept SystemExit as e:\n"
            "    assert e.code == 0\n"
            "assert 'torch' not in sys.modules\n"
            "assert 'paperlab.mowst.experiment' not in sys.modules\n")
    out = _python(code)
    assert "--seeds" in out and "--max-epochs" in out and "options of this system" in out


@pytest.mark.parametrize("argv, words", [
    (["run", "mowst", "--seeds", "x"], ["--seeds", "integer", "'x'"]),
    (["run", "mowst", "--seeds", "0"], ["--seeds", ">= 1"]),
    (["bench", "mowst", "--datasets", "cora,"], ["--datasets", "empty items"]),
])
def test_bad_option_value_exits_2_with_one_line(argv, words, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and all(w in err for w in words), err
    assert err.count("--seeds") <= 1  # the flag is named once


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0 and __version__ in capsys.readouterr().out


def _talk(ctx: RunContext) -> Result:
    import warnings

    logging.getLogger("paperlab.toy_talk").info("an info line")
    warnings.warn("Sparse CSR tensor support is in beta state", UserWarning, stacklevel=1)
    time.sleep(0.05)
    return Result(results=[{"method": "talk"}], summary={"answer": 42})


register(System(name="toy_talk", paper="Talk paper", claim="logs", run=f"{__name__}:_talk"))


def test_verbosity_flags(tmp_path, capsys):
    out = ["--out", str(tmp_path)]
    assert cli.main(["run", "toy_talk", *out]) == 0
    normal = capsys.readouterr()
    assert "answer" in normal.out and "an info line" not in normal.err
    assert "beta" not in normal.err  # the third-party notice is hidden by default

    with pytest.warns(UserWarning, match="beta"):
        assert cli.main(["run", "toy_talk", "-v", *out]) == 0
    assert "an info line" in capsys.readouterr().err

    assert cli.main(["run", "toy_talk", "--quiet", *out]) == 0
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    assert json.loads((tmp_path / "toy_talk.json").read_text())["summary"] == {"answer": 42}
    # the run's own time is recorded: it slept 50 ms
    assert 0.05 <= json.loads((tmp_path / "toy_talk.json").read_text())["seconds"] < 30
    assert logging.getLogger("paperlab").level == logging.NOTSET  # restored after main


def test_one_parser_names_the_system():
    assert cli._named_system(["run", "--seed", "3", "mowst", "--seeds", "2"]).name == "mowst"
    assert cli._named_system(["run", "--out", "mowst", "toy_talk"]).name == "toy_talk"
    assert cli._named_system(["list"]) is None



# ---- import structure ------------------------------------------------------------------
def _import_graph() -> dict[str, set[str]]:
    """Module -> the paperlab modules it imports (at the top or inside functions)."""
    import ast

    root = Path(__file__).resolve().parents[2] / "paperlab"
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                edges.add(node.module)
                edges |= {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def test_no_import_cycles():
    graph = _import_graph()
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for nxt in sorted(graph[name]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert "paperlab.softmax.torch_op" in graph["paperlab.softmax.functional"]


# ---- plots -----------------------------------------------------------------------------
@pytest.mark.parametrize("env, expected", [({}, "agg"), ({"MPLBACKEND": "svg"}, "svg")])
def test_plots_choose_agg_only_when_no_backend_was_chosen(env, expected):
    import os

    code = ("import sys\nimport paperlab.core.plots as plots\n"
            "assert 'matplotlib' not in sys.modules\n"
            "fig, ax = plots.figure()\nimport matplotlib\nprint(matplotlib.get_backend())\n")
    clean = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={**clean, **env})
    assert done.stdout.strip().lower() == expected


def test_a_negative_seed_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "toy_talk", "--seed", "-1"])
    assert exc.value.code == cli.EXIT_USAGE and ">= 0" in capsys.readouterr().err


def test_only_core_sets_torch_threads():
    """Thread counts go through paperlab.core.seed (torch_threads, set_torch_threads): a
    module that sets them itself leaks the setting, or times it inside a timed call."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [str(p.relative_to(root)) for folder in ("paperlab", "tests")
                 for p in (root / folder).rglob("*.py")
                 if p.name != "test_conventions.py"
                 and p != root / "paperlab" / "core" / "seed.py"
                 and re.search(r"\.set_num_threads\(", p.read_text())]
    assert offenders == []
