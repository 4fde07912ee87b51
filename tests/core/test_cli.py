import json

import pytest

from paperlab import cli
from paperlab.core import registry, results
from tests.core import toy_system  # noqa: F401  (registers the toy systems)


def test_run_writes_schema_json_md_and_plot(tmp_path, capsys):
    assert cli.main(["run", "toy", "--quick", "--seed", "3", "--out", str(tmp_path)]) == 0
    rec = json.loads((tmp_path / "toy.json").read_text())
    assert list(rec)[: len(results.SCHEMA_KEYS)] == list(results.SCHEMA_KEYS)
    assert rec["system"] == "toy" and rec["quick"] is True and rec["seed"] == 3
    assert rec["results"][0]["method"] == "baseline"
    assert set(rec["environment"]) == {"python", "torch", "cpu", "threads", "commit", "date"}
    assert rec["command"] == "paperlab run toy --quick --seed 3"
    assert "gain" in rec["summary"]
    assert (tmp_path / "toy.md").read_text().startswith("# toy: Toy paper")
    assert (tmp_path / "toy_means.png").read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers
    assert "ours" in capsys.readouterr().out


def test_same_seed_same_numbers(tmp_path):
    for d in ("a", "b"):
        cli.main(["run", "toy", "--seed", "7", "--out", str(tmp_path / d)])
    a, b = (json.loads((tmp_path / d / "toy.json").read_text()) for d in ("a", "b"))
    assert a["results"] == b["results"]


def test_bench_writes_bench_json(tmp_path):
    assert cli.main(["bench", "toy", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "toy.bench.json").read_text())["system"] == "toy"


def test_unknown_system_exits_nonzero_with_one_line(capsys):
    assert cli.main(["run", "no_such_system"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert "unknown system 'no_such_system'" in err and "\n" not in err


def test_bad_flag_exits_nonzero():
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "toy", "--no-such-flag"])
    assert exc.value.code == cli.EXIT_USAGE


def test_missing_data_names_places_looked(tmp_path, capsys):
    code = cli.main(["run", "toy_data", "--data-root", str(tmp_path), "--out", str(tmp_path)])
    assert code == cli.EXIT_NO_DATA
    err = capsys.readouterr().err
    assert str(tmp_path / "toy" / "values.txt") in err and "Create toy/values.txt" in err


def test_data_root_flag_is_used(tmp_path):
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "values.txt").write_text("1 2 3.5")
    assert cli.main(["run", "toy_data", "--data-root", str(tmp_path), "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "toy_data.json").read_text())["results"][0]["value"] == 6.5


def test_list_shows_catalogue(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in registry.PACKAGES:
        assert name in out
    assert "not yet" in out or all(registry.is_implemented(n) for n in registry.PACKAGES)


def test_reproduce_goes_on_past_failure_and_reports(tmp_path):
    code = cli.main(["reproduce", "toy_broken", "toy", "--out", str(tmp_path)])
    assert code == cli.EXIT_FAILED
    report = (tmp_path / "REPORT.md").read_text()
    assert "FAILED: RuntimeError: toy failure" in report
    assert "## toy" in report and "(no claims declared)" in report  # the toy declares none
    assert (tmp_path / "toy.json").exists()


def test_reproduce_unknown_system_is_usage_error(tmp_path):
    assert cli.main(["reproduce", "nope", "--out", str(tmp_path)]) == cli.EXIT_USAGE
    assert not (tmp_path / "REPORT.md").exists()


def test_not_implemented_system_is_usage_error(monkeypatch, capsys):
    monkeypatch.setattr(registry, "is_implemented", lambda name: False)
    assert cli.main(["run", "alp"]) == cli.EXIT_USAGE
    assert "not implemented yet" in capsys.readouterr().err


def test_python_m_paperlab_help():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "paperlab", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "reproduce" in out and "bench" in out


def test_system_declared_flags_reach_ctx_options(tmp_path):
    out = str(tmp_path)
    assert cli.main(["run", "toy_options", "--peer-path", "/x/y", "--out", out]) == 0
    assert json.loads((tmp_path / "toy_options.json").read_text())["results"][0] == {
        "method": "echo", "peer_path": "/x/y", "workers": None, "ray_address": None,
        "fresh": None}
    assert cli.main(["run", "toy_options", "--out", out]) == 0  # unset -> None
    assert json.loads((tmp_path / "toy_options.json").read_text())["results"][0][
        "peer_path"] is None
    with pytest.raises(SystemExit):  # another system's flag is still a bad flag
        cli.main(["run", "toy", "--peer-path", "/x/y", "--out", out])
    # global flags before the command do not hide the system's own flags
    assert cli.main(["-v", "run", "toy_options", "--peer-path", "/a", "--out", out]) == 0
    assert cli.main(["--quiet", "run", "toy_options", "--peer-path", "/b", "--out", out]) == 0
    assert json.loads((tmp_path / "toy_options.json").read_text())["results"][0][
        "peer_path"] == "/b"


def test_job_map_flags_reach_every_system_as_options(tmp_path, capsys):
    out = str(tmp_path)
    assert cli.main(["run", "toy_options", "--workers", "3", "--ray-address", "auto", "--fresh",
                     "--out", out]) == 0
    row = json.loads((tmp_path / "toy_options.json").read_text())["results"][0]
    assert (row["workers"], row["ray_address"], row["fresh"]) == (3, "auto", True)
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "toy_options", "--workers", "0", "--out", out])
    assert exc.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--workers: must be >= 1, got 0" in err  # one line, once


# ---------------------------------------------------------------------------------------------
# A system's tools: paperlab SYSTEM VERB


def _echo_tool(parser):
    parser.add_argument("word")

    def handle(args):
        if args.word == "missing":
            raise FileNotFoundError("no file at missing.csv")
        if args.word == "bad":
            raise ValueError("bad.csv, line 3, column 2: not a number")
        print(f"echo {args.word}")
        return 0

    return handle


def test_a_systems_tool_runs_with_its_exit_codes(capsys):
    from paperlab.core.registry import System, Tool, register

    register(System("toy_tools", "Toy tools paper", "echoes", run="m:f",
                    tools=(Tool("echo", "print a word", f"{__name__}:_echo_tool"),)))
    assert cli.main(["toy-tools", "echo", "hi"]) == 0  # the command is the name with dashes
    assert capsys.readouterr().out == "echo hi\n"
    assert cli.main(["toy_tools", "echo", "hi"]) == 0  # and the name itself
    assert cli.main(["toy-tools", "echo", "missing"]) == 3
    assert "paperlab: no file at missing.csv" in capsys.readouterr().err
    assert cli.main(["toy-tools", "echo", "bad"]) == 2
    assert "line 3, column 2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["toy-tools"])  # no verb
    assert exc.value.code == 2


def test_tool_declarations_are_checked():
    from paperlab.core.registry import System, Tool

    with pytest.raises(ValueError):
        Tool("two words", "x", "m:f")
    with pytest.raises(ValueError):
        Tool("fit", "x", "no_colon")
    with pytest.raises(TypeError):
        System("s", "p", "c", run="m:f", tools=("fit",))
    with pytest.raises(ValueError, match="repeat"):
        System("s", "p", "c", run="m:f", tools=(Tool("a", "x", "m:f"), Tool("a", "y", "m:g")))
