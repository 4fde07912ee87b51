"""The ``paperlab`` command line: list, run, reproduce, bench.

Exit codes: 0 success; 1 a system failed while running; 2 bad usage (unknown system,
bad flag, system not implemented yet); 3 a data set is missing.

Only this module prints and configures logging: ``-v`` shows the library's INFO log and the
third-party warnings hidden by default (:data:`HIDDEN_WARNINGS`), ``-vv`` DEBUG, ``--quiet``
errors only (no results table, no progress bars).
"""

from __future__ import annotations

import argparse
import gc
import io
import logging
import os
import sys
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stderr
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table

from paperlab import __version__
from paperlab.core import progress, registry, report, results
from paperlab.core.data import ENV_DATA, GETTING_THE_DATA, DataNotFoundError, candidate_roots
from paperlab.core.seed import seed_everything

EXIT_FAILED, EXIT_USAGE, EXIT_NO_DATA = 1, 2, 3

console = Console()
log = logging.getLogger(__name__)

# Warnings from dependencies that a user can do nothing about; shown only with -v.
HIDDEN_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    (r"Sparse CSR tensor support is in beta", UserWarning),  # PyG's CSR adjacency
    (r"`torch\.jit\.script` is deprecated", FutureWarning),  # PyG / timm modules at import
    (r"Sparse invariant checks are implicitly disabled", UserWarning),  # PyG's CSR adjacency
)


class UsageError(Exception):
    """A usage problem reported in one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"paperlab: error: {message} (see 'paperlab --help')\n")


def _verbosity(p: argparse.ArgumentParser, default: Any) -> None:
    """``-v``/``--quiet``, on the main parser and (unset unless given) on each command."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="count", default=default,
                       help="more detail: -v the library's log and third-party warnings, "
                       "-vv debug")
    group.add_argument("--quiet", action="store_true", default=default,
                       help="errors only: no results table, no progress bars")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small size that finishes in minutes")
    p.add_argument("--seed", type=_option_type(registry.Option("seed", int, min=0)), default=0,
                   help="base seed, >= 0 (default 0)")
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
    # The job map's settings (paperlab.core.jobs.run_options), for the systems whose long sweeps
    # run on it; they reach a system as ctx.options like its own options.
    scale = p.add_argument_group(
        "sweeps on the job map (mowst, hierarchy, fourier_head, splitwise)")
    scale.add_argument("--workers", dest="option_workers", default=None, metavar="N",
                       type=_option_type(registry.Option("workers", int, min=1)),
                       help="local worker processes (default: the system's own)")
    scale.add_argument("--ray-address", dest="option_ray_address", default=None,
                       metavar="ADDR", help="run the jobs on a Ray cluster (auto, ray://HOST:PORT)")
    scale.add_argument("--fresh", dest="option_fresh", action="store_const", const=True,
                       default=None, help="start the sweep over instead of resuming it")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; for ``run``/``bench`` of a system that declares ``options``, with its flags;
    for ``paperlab SYSTEM VERB``, with that system's tools' arguments."""
    argv = list(argv or [])
    system = _named_system(argv)
    parser = _make_parser(system.options if system is not None else (), add_help=True)
    _tool_parsers(parser, argv)
    return parser


def _tool_parsers(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """``paperlab SYSTEM VERB ...``: one command per system with tools, one sub-command per
    tool. Only the system the command line names has its tools imported (their arguments);
    the others list their verbs from the light ``SYSTEM`` declaration."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    named = next((a for a in argv if not a.startswith("-")), None)
    for name in registry.names():
        try:
            system = registry.get(name)
        except LookupError:
            continue
        if not system.tools:
            continue
        aliases = [system.name] if system.command != system.name else []
        p = sub.add_parser(system.command, aliases=aliases,
                           help=f"use {system.name} on your own inputs: "
                           + ", ".join(t.name for t in system.tools),
                           description=f"{system.name}'s tools for your own inputs "
                           "('paperlab " + system.command + " VERB --help' shows an example).")
        _verbosity(p, default=argparse.SUPPRESS)
        verbs = p.add_subparsers(dest="verb", required=True, parser_class=_Parser,
                                 metavar="VERB")
        for tool in system.tools:
            q = verbs.add_parser(tool.name, help=tool.help, description=tool.help + ".",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
            _verbosity(q, default=argparse.SUPPRESS)
            if named in (system.command, system.name):
                q.set_defaults(tool_handler=tool.load()(q))


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
    parser.add_argument("--version", action="version", version=f"paperlab {__version__}")
    _verbosity(parser, default=None)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _data_parser(sub, add_help)
    listing = sub.add_parser("list", help="systems, their papers, and which are implemented",
                             add_help=add_help)
    _verbosity(listing, default=argparse.SUPPRESS)
    reporting = sub.add_parser(
        "report", help="rewrite REPORT.md/.html from the JSONs already in OUT",
        description="Judge each paper's claims on the run records OUT/SYSTEM.json and write "
        "OUT/REPORT.md and OUT/REPORT.html; with --readme, also rewrite that README's claims "
        "table between its <!-- paperlab:claims:begin/end --> markers.", add_help=add_help)
    reporting.add_argument("--out", type=Path, default=Path("results"),
                           help="results folder (default results/)")
    reporting.add_argument("--readme", type=Path, default=None,
                           help="README whose claims table is rewritten")
    _verbosity(reporting, default=argparse.SUPPRESS)

    commands = {
        "run": (
            "run one system's reproduction",
            "Run SYSTEM's reproduction: prints a results table and writes OUT/SYSTEM.json, "
            "OUT/SYSTEM.md and plots OUT/SYSTEM*.png.",
        ),
        "reproduce": (
            "run every (or the named) system's reproduction and write REPORT.md/.html",
            "Run the reproductions one after another, go on past failures, and write "
            "OUT/REPORT.md and OUT/REPORT.html: each paper's claims, its figure beside ours, "
            "a verdict and the plots.",
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
        _verbosity(p, default=argparse.SUPPRESS)
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
        except ValueError as exc:  # argparse names the flag already: "argument --x: ..."
            raise argparse.ArgumentTypeError(str(exc).removeprefix(option.flag + " ")) from None

    convert.__name__ = option.name  # argparse names the converter in some messages
    return convert


def _named_system(argv: Sequence[str]) -> registry.System | None:
    """The system a ``run``/``bench`` command line names, found before full parsing.

    Parsed with the same parser (no system options, no ``--help``), so which flags take a
    value is known in one place only. An unknown or unbuilt system is reported, in one line,
    when the command runs.
    """
    if not {"run", "bench"} & set(argv):  # global flags such as -v may come first
        return None
    try:  # silent: the full parse reports any error, once
        with redirect_stderr(io.StringIO()):
            known, _ = _make_parser((), add_help=False).parse_known_args(argv)
    except SystemExit:  # e.g. no system named yet, or a bad common flag
        return None
    if known.command not in ("run", "bench"):
        return None
    try:
        return registry.get(known.system)
    except LookupError:
        return None


def _context(args: argparse.Namespace, name: str, which: str = "run") -> results.RunContext:
    options = {k[len("option_"):]: v for k, v in vars(args).items() if k.startswith("option_")}
    words = ["paperlab", which, name] + (["--quick"] if args.quick else []) + [
        "--seed", str(args.seed)]
    for key, val in options.items():
        if val is not None:
            shown = ",".join(map(str, val)) if isinstance(val, (list, tuple)) else str(val)
            words += [f"--{key.replace('_', '-')}", shown]
    return results.RunContext(
        system=name,
        quick=args.quick,
        seed=args.seed,
        out_dir=args.out,
        data_root=args.data_root,
        options=options,
        command=" ".join(words),
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
    start = time.perf_counter()
    result = fn(ctx)
    if not isinstance(result, results.Result):
        raise TypeError(f"{name}.{which} returned {type(result).__name__}, not Result")
    rec = results.record(system, ctx, result, time.perf_counter() - start)
    stem = name if which == "run" else f"{name}.bench"
    path = results.write(rec, ctx.out_dir, stem)
    if not console.quiet:  # --quiet
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
    execute(args.system, which, _context(args, args.system, which))
    return 0


def _print_verdicts(outcomes: Sequence[report.Outcome]) -> None:
    """The verdict table: each claim, the paper's figure, ours and the verdict."""
    rows = report.claim_rows(outcomes)
    if not rows:
        return
    if console.is_terminal:
        table = Table(title="claims")
        for c in rows[0]:
            table.add_column(c, overflow="fold")
        for row in rows:
            table.add_row(*row.values())
        console.print(table, markup=False, highlight=False)
    else:
        print(f"claims\n\n{report.claims_table(outcomes)}")


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Run each system in turn, going on past failures and missing data; write the reports.

    Exit 1 when a system failed, else 3 when a system lacked data (one line each, as ``run``
    says it, and the ``paperlab data fetch`` command in the summary), else 0.
    """
    if args.systems:
        for name in args.systems:
            registry.get(name)  # unknown / not implemented: one-line usage error up front
        todo = list(args.systems)
    else:
        todo = [n for n in registry.PACKAGES if registry.is_implemented(n)]
    outcomes, no_data = [], []
    for name in todo:
        console.rule(f"[bold]{name}")
        ctx = _context(args, name)
        start = time.perf_counter()
        try:
            rec = execute(name, "run", ctx)
            outcomes.append(report.outcome(rec, args.quick, args.out, args.out / f"{name}.json"))
        except Exception as exc:  # go on past one system's failure, and report it
            if isinstance(exc, DataNotFoundError):  # the user's set-up, not a bug: one line
                print(f"paperlab: {name}: {exc}", file=sys.stderr)
                no_data.append(name)
                reason = f"missing data; run 'paperlab data fetch {name}'"
            else:
                traceback.print_exc()
                reason = f"{type(exc).__name__}: {exc}"
            failure = {"system": name, "ok": False, "error": reason.splitlines()[0],
                       "seed": args.seed, "seconds": time.perf_counter() - start}
            outcomes.append(report.outcome(failure, args.quick))
        gc.collect()
    _print_verdicts(outcomes)
    md, page = report.write_reports(outcomes, args.out)
    failed = [o.system for o in outcomes if o.error and o.system not in no_data]
    ran = len(outcomes) - len(failed) - len(no_data)
    lacked = f", {len(no_data)} lacked data ({', '.join(no_data)})" if no_data else ""
    console.print(f"wrote {md} and {page}; {report.tally_text(outcomes)}; "
                  f"{ran} ran, {len(failed)} failed{lacked}")
    if no_data:
        print(f"paperlab: missing data for {', '.join(no_data)}: run 'paperlab data fetch "
              f"{' '.join(no_data)}' (see {GETTING_THE_DATA})", file=sys.stderr)
    if failed:
        print(f"paperlab: failed: {', '.join(failed)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_NO_DATA if no_data else 0


@contextmanager
def _output(verbose: int, quiet: bool) -> Iterator[None]:
    """How much a command shows, restored afterwards (``main`` may run again in-process): the
    ``paperlab`` log level, the hidden third-party warnings, the console, progress bars."""
    logger = logging.getLogger("paperlab")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    saved = logger.level, logger.propagate, console.quiet
    logger.setLevel(logging.ERROR if quiet else
                    (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)])
    logger.addHandler(handler)
    logger.propagate = False
    console.quiet = quiet
    try:
        with warnings.catch_warnings(), progress.hidden(quiet):
            if not verbose:
                for message, category in HIDDEN_WARNINGS:
                    warnings.filterwarnings("ignore", message=message, category=category)
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate, console.quiet = saved[1], saved[2]


def _data_parser(sub: Any, add_help: bool) -> None:
    """``paperlab data fetch|verify [AREA|SYSTEM ...] [--data-root PATH]``."""
    p = sub.add_parser(
        "data", help="download or verify the data sets", add_help=add_help,
        description="Get the data sets the systems read ('paperlab data fetch') or check them "
        "against the SHA-256 hashes pinned in paperlab ('paperlab data verify').")
    dsub = p.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    for name, short in (
        ("fetch", "download (or regenerate) whatever no data root has yet, into "
                  "~/.cache/paperlab/data or --data-root; resumes partial downloads"),
        ("verify", "check the data the loaders would read against the pinned hashes"),
    ):
        q = dsub.add_parser(name, help=short, description=short[0].upper() + short[1:] + ".",
                            add_help=add_help)
        q.add_argument("names", nargs="*", metavar="AREA|SYSTEM",
                       help="areas (graphs, splitwise, text, vision), systems, or 'all' "
                       "(default: what the systems read)")
        q.add_argument("--data-root", type=Path, default=None,
                       help="only this data folder (default: fetch into ~/.cache/paperlab/data; "
                       "verify wherever the loaders look)")
        if name == "fetch":
            q.add_argument("--retries", type=int, default=4,
                           help="retries per file after a transient failure (default 4)")
            q.add_argument("--mirror", default=None, metavar="URL",
                           help="download from URL/<path> (a data folder served over HTTP) "
                           "instead of the upstream repositories; default $PAPERLAB_DATA_MIRROR")


def cmd_data(args: argparse.Namespace) -> int:
    """``paperlab data fetch|verify``: exit 0 ok, 1 altered/failed, 2 usage, 3 missing/offline."""
    from paperlab.core import fetch

    try:
        entries = fetch.select(args.names)
    except ValueError as exc:
        print(f"paperlab: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.data_command == "verify":
        statuses = fetch.verify(entries, args.data_root)
    else:
        try:
            statuses = fetch.fetch(entries, args.data_root, retries=args.retries,
                                   mirror=args.mirror)
        except fetch.OfflineError as exc:
            todo = fetch.missing(entries, args.data_root)
            print(f"paperlab: {len(todo)} data file(s) missing and {exc} Run "
                  "'paperlab data fetch' on a machine with internet access and copy "
                  f"{fetch.user_root()} here, or pass --data-root / set PAPERLAB_DATA to a "
                  "folder holding the data.", file=sys.stderr)
            return EXIT_NO_DATA
        except fetch.FetchError as exc:
            print(f"paperlab: {exc}", file=sys.stderr)
            return EXIT_FAILED
    _print_data_statuses(args, statuses)
    states = {st.state for st in statuses}
    if "altered" in states:
        return EXIT_FAILED
    return EXIT_NO_DATA if "missing" in states else 0


LIST_MISSING = 5  # more missing files than this are summed up by system, not listed


def _print_data_statuses(args: argparse.Namespace, statuses: Sequence[Any]) -> None:
    """What ``data fetch|verify`` found, in a few lines: each altered, manual or unpinned file;
    the missing ones by name when few, else counted by system; then where it looked and what
    to run; last the count of each state."""

    def line(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    missing = [st.entry for st in statuses if st.state == "missing"]
    listed = ("altered", "manual", "unchecked") + (("missing",) if len(missing) <= LIST_MISSING
                                                   else ())
    same: dict[tuple[str, str], list[str]] = {}  # files with the same state and detail
    for st in statuses:
        if st.state in listed:
            same.setdefault((st.state, st.detail), []).append(str(st.path or st.entry.path))
    for (state, detail), paths in same.items():
        line(f"  {state:9} {', '.join(paths)}{': ' + detail if detail else ''}")
    if len(missing) > LIST_MISSING:
        names = [n for n in args.names if n != "all"]
        by_group = {name: sum(name == e.area or name in e.systems for e in missing)
                    for name in names}
        if not names:  # what the systems read: by system, a file once for each reader
            for entry in missing:
                for group in entry.systems or (entry.area,):
                    by_group[group] = by_group.get(group, 0) + 1
        line(f"  missing   {len(missing)} files ("
             + ", ".join(f"{g}: {n}" for g, n in sorted(by_group.items())) + ")")
    if missing:
        roots = [f"{r}{'' if r.is_dir() else ' (absent)'}" for r in candidate_roots(args.data_root)]
        unset = (f"; ${ENV_DATA} is not set" if args.data_root is None
                 and not os.environ.get(ENV_DATA) else "")
        line(f"  looked in {', '.join(roots)}{unset}")
        command = " ".join(["paperlab data fetch", *args.names]
                           + (["--data-root", str(args.data_root)] if args.data_root else []))
        line(f"  next: '{command}' downloads them (offline: copy a data folder from a machine "
             f"that has one and pass --data-root or set ${ENV_DATA}); see {GETTING_THE_DATA}")
    counts: dict[str, int] = {}
    for st in statuses:
        counts[st.state] = counts.get(st.state, 0) + 1
    line(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``paperlab``; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    with _output(args.verbose or 0, bool(args.quiet)):
        return _dispatch(args)


def _run_tool(args: argparse.Namespace) -> int:
    """A system's tool: a missing input file is exit 3, a malformed one exit 2, in one line."""
    try:
        return int(args.tool_handler(args))
    except FileNotFoundError as exc:
        print(f"paperlab: {exc}", file=sys.stderr)
        return EXIT_NO_DATA
    except (ValueError, TypeError) as exc:
        print(f"paperlab: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _dispatch(args: argparse.Namespace) -> int:
    if getattr(args, "tool_handler", None) is not None:
        return _run_tool(args)
    try:
        if args.command == "list":
            return cmd_list(args)
        if args.command == "data":
            return cmd_data(args)
        if args.command == "reproduce":
            return cmd_reproduce(args)
        if args.command == "report":
            return report.regenerate(args.out, args.readme)
        return cmd_run(args, "run" if args.command == "run" else "bench")
    except (registry.UnknownSystemError, registry.NotImplementedSystemError) as exc:
        print(f"paperlab: {exc.args[0]}", file=sys.stderr)
        return EXIT_USAGE
    except DataNotFoundError as exc:
        print(f"paperlab: {exc}", file=sys.stderr)
        return EXIT_NO_DATA


if __name__ == "__main__":
    sys.exit(main())
