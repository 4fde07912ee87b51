"""``python -m paperlab.splitwise run|bench [paperlab flags] [--reference PATH] [--ray-address A]``

The shared ``paperlab`` CLI has no system-specific flags, so this wrapper takes Splitwise's
(``--reference``/``--reference-python`` for the benchmark's peer, ``--ray-address`` for the
provisioning search), passes them on through environment variables, and hands every other
flag to ``paperlab run/bench splitwise``.
"""

from __future__ import annotations

import argparse
import os
import sys

from paperlab import cli


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m paperlab.splitwise")
    p.add_argument("command", choices=("run", "bench"))
    p.add_argument("--reference", help="checkout of github.com/Mutinifni/splitwise-sim")
    p.add_argument("--reference-python", help="interpreter with the reference's requirements")
    p.add_argument("--ray-address", help="Ray cluster for the provisioning search")
    args, rest = p.parse_known_args(argv)
    for flag, var in ((args.reference, "PAPERLAB_SPLITWISE_REFERENCE"),
                      (args.reference_python, "PAPERLAB_SPLITWISE_REFERENCE_PYTHON"),
                      (args.ray_address, "PAPERLAB_SPLITWISE_RAY_ADDRESS")):
        if flag:
            os.environ[var] = flag
    return cli.main([args.command, "splitwise", *rest])


if __name__ == "__main__":
    sys.exit(main())
