"""The ``paperlab`` command line: list, run, reproduce, bench.

Exit codes: 0 success; 1 a system failed while running; 2 bad usage (unknown system,
bad flag, system not implemented yet); 3 a data set is missing.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table

from paperlab.core import registry, results
from paperlab.core.data import DataNotFoundError
from paperlab.core.seed import seed_everything

EXIT_FAILED, EXIT_USAGE, EXIT_NO_DATA = 1, 2, 3

console = Console()


class UsageError(Exception):
    """A usage problem reported in one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"paperlab: error: {message} (see 'paperlab --help')\n")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small size that finishes in minutes")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument(
        "--out", type=Path, default=Path("results"), help="output folder (default results/)"
    )
    p.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="data folder (default: $PAPERLAB_DATA, else ../shared/data, "
        "else ~/.cache/paperlab/data)",
    )


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; for ``run``/``bench`` of a system that declares ``options``, with its flags."""
    system = _named_system(argv or [])
    return _make_parser(system.options if system is not None else (), add_help=True)


def _make_parser(
    options: Sequence[registry.Option], add_help: bool
) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="paperlab",
        add_help=add_help,
        description="Eleven machine-learning papers as tested APIs: run a paper's headline "
        "comparison on real data, or benchmark a system against its peer.",
        epilog="Examples: 'paperlab list', 'paperlab run mowst --quick', "
        "'paperlab run mowst --help' (the system's own options), "
        "'paperlab reproduce --quick', 'paperlab bench softmax'.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="systems, their papers, and which are implemented",
                   add_help=add_help)

    commands = {
        "run": (
            "run one system's reproduction",
            "Run SYSTEM's reproduction: prints a results table and writes OUT/SYSTEM.json, "
            "OUT/SYSTEM.md and plots OUT/SYSTEM*.png.",
        ),
        "reproduce": (
            "run every (or the named) system's reproduction and write REPORT.md",
            "Run the reproductions one after another, go on past failures, and write "
            "OUT/REPORT.md with each paper's claim beside the numbers measured.",
        ),
        "bench": (
            "benchmark one system against its peer",
            "Measure SYSTEM's speed/memory/cost as ratios against its peer in one run and "
            "write OUT/SYSTEM.bench.json.",
        ),
    }
    for command, (short, long) in commands.items():
        p = sub.add_parser(command, help=short, description=long, add_help=add_help)
        if command == "reproduce":
            p.add_argument("systems", nargs="*", help="systems to run (default: all implemented)")
        else:
            p.add_argument("system", help="system name (see 'paperlab list')")
        _common(p)
        if command != "reproduce" and options:
            group = p.add_argument_group("options of this system")
            for option in options:
                group.add_argument(
                    option.flag, dest=f"option_{option.name}", default=None,
                    metavar=option.metavar or option.name.upper(), help=option.help,
                    type=_option_type(option),
                )
    return parser


def _option_type(option: registry.Option) -> Any:
    """argparse ``type=`` for an option: its parser, with errors as one-line usage errors."""

    def convert(text: str) -> Any:
        try:
            return option.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = option.name  # argparse names the converter in some messages
    return convert


def _named_system(argv: Sequence[str]) -> registry.System | None:
    """The system a ``run``/``bench`` command line names, found before full parsing.

    Parsed with the same parser (no system options, no ``--help``), so which flags take a
    value is known in one place only. An unknown or unbuilt system is reported, in one line,
    when the command runs.
    """
    if not argv or argv[0] not in ("run", "bench"):
        return None
    try:
        known, _ = _make_parser((), add_help=False).parse_known_args(argv)
    except SystemExit:  # e.g. no system named yet: the full parse reports it
        return None
    try:
        return registry.get(known.system)
    except LookupError:
        return None


def _context(args: argparse.Namespace, name: str) -> results.RunContext:
    return results.RunContext(
        system=name,
        quick=args.quick,
        seed=args.seed,
        out_dir=args.out,
        data_root=args.data_root,
        options={k[len("option_"):]: v for k, v in vars(args).items() if k.startswith("option_")},
    )


def _print_record(rec: dict[str, Any]) -> None:
    """The results table: a rich table on a terminal, Markdown (nothing cut) elsewhere."""
    size = "quick" if rec["quick"] else "full"
    if console.is_terminal:
        table = Table(title=f"{rec['system']} ({size})")
        cols = results.columns(rec["results"])
        for c in cols:
            table.add_column(c, overflow="fold")
        for row in rec["results"]:
            table.add_row(*(results.fmt(row.get(c)) for c in cols))
        console.print(table)
    else:
        print(f"{rec['system']} ({size})\n\n{results.markdown_table(rec['results'])}")
    for k, v in rec["summary"].items():
        console.print(f"  {k}: {results.fmt(v)}", markup=False, highlight=False)
    for note in rec.get("notes", []):
        console.print(f"  note: {note}", markup=False, highlight=False)


def execute(name: str, which: str, ctx: results.RunContext) -> dict[str, Any]:
    """Run a system's ``run`` or ``bench`` and write its results; return the record."""
    system = registry.get(name)
    fn = system.load(which)
    seed_everything(ctx.seed)
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    start = time.perf_counter()
    try:
        result = fn(ctx)
    finally:  # a system that pins torch's threads must not pin them for the next one
        if threads is not None:
            torch.set_num_threads(threads)
    if not isinstance(result, results.Result):
        raise TypeError(f"{name}.{which} returned {type(result).__name__}, not Result")
    rec = results.record(system, ctx, result, time.perf_counter() - start)
    stem = name if which == "run" else f"{name}.bench"
    path = results.write(rec, ctx.out_dir, stem)
    _print_record(rec)
    console.print(f"[dim]wrote {path}[/dim]")
    return rec


def cmd_list(_: argparse.Namespace) -> int:
    table = Table(title="paperlab systems")
    table.add_column("system")
    table.add_column("paper")
    table.add_column("implemented")
    for name in registry.names():
        try:
            title, built = registry.get(name).paper, "yes"
        except registry.NotImplementedSystemError:
            title, built = "(planned)", "not yet"
        table.add_row(name, title, built)
    console.print(table)
    return 0


def cmd_run(args: argparse.Namespace, which: str) -> int:
    execute(args.system, which, _context(args, args.system))
    return 0


def _claim(name: str) -> str:
    try:
        return registry.get(name).claim
    except Exception:  # the failure being reported may be this very import
        return "-"


def cmd_reproduce(args: argparse.Namespace) -> int:
    if args.systems:
        for name in args.systems:
            registry.get(name)  # unknown / not implemented: one-line usage error up front
        todo = list(args.systems)
    else:
        todo = [n for n in registry.PACKAGES if registry.is_implemented(n)]
    outcomes = []
    for name in todo:
        console.rule(f"[bold]{name}")
        ctx = _context(args, name)
        start = time.perf_counter()
        try:
            rec = execute(name, "run", ctx)
            outcomes.append({**rec, "ok": True})
        except Exception as exc:  # go on past one system's failure, and report it
            traceback.print_exc()
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            outcomes.append(
                {
                    "system": name,
                    "claim": _claim(name),
                    "ok": False,
                    "error": reason,
                    "seconds": time.perf_counter() - start,
                }
            )
        gc.collect()
    path = results.atomic_write_text(args.out / "REPORT.md", results.report(outcomes, args.quick))
    failed = [o["system"] for o in outcomes if not o["ok"]]
    console.print(f"wrote {path}; {len(outcomes) - len(failed)} ok, {len(failed)} failed")
    if failed:
        print(f"paperlab: failed: {', '.join(failed)}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``paperlab``; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list(args)
        if args.command == "reproduce":
            return cmd_reproduce(args)
        return cmd_run(args, "run" if args.command == "run" else "bench")
    except (registry.UnknownSystemError, registry.NotImplementedSystemError) as exc:
        print(f"paperlab: {exc.args[0]}", file=sys.stderr)
        return EXIT_USAGE
    except DataNotFoundError as exc:
        print(f"paperlab: {exc}", file=sys.stderr)
        return EXIT_NO_DATA


if __name__ == "__main__":
    sys.exit(main())
