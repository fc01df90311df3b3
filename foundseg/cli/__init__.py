"""The ``foundseg`` command line.

Every expected failure prints one line, ``foundseg <command>: <what is wrong>``, and exits with status 2 (a
traceback only with ``--debug``); so does an option that the chosen mode would ignore. The model libraries'
logging, loading bars and warnings stay off stderr (``--debug`` shows them); foundseg's own warnings, which
the user can act on, are printed as one line each. Outputs are written to a hidden folder inside ``--out``
and moved into place only when the command succeeds, so a failed run leaves nothing behind.

The arguments and which options each mode reads are in :mod:`foundseg.cli.parser`; the command bodies, the
staged outputs and JSON cleaning in :mod:`foundseg.cli.commands`.
"""
from __future__ import annotations

import sys
import warnings

from .commands import COMMANDS, finish_outputs
from .parser import CommandError, build_parser, refuse_ignored

EXPECTED_ERRORS = (CommandError, ValueError, OSError)
"""Failures of bad input (arguments, files, models): one line and exit status 2, not a traceback."""


def main(argv=None) -> int:
    """Run the command that ``argv`` (default: the process's arguments) names; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    name = " ".join(filter(None, [args.command, getattr(args, "action", None)]))
    command = "foundseg " + name
    if not args.debug:
        from ..progress import silence_libraries

        silence_libraries()

    def one_line_warning(message, category, filename, lineno, file=None, line=None):
        if args.debug or category.__module__.startswith("foundseg"):  # the model libraries' only with --debug
            print(f"{command}: warning: {message}", file=sys.stderr)

    if args.command != "zoo":  # training sets its own threads
        from ..config import apply_thread_policy

        apply_thread_policy()
    succeeded = False
    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warning
            refuse_ignored(args, argv)
            COMMANDS[name](args)
        succeeded = True
    except EXPECTED_ERRORS as err:
        if args.debug:
            raise
        print(f"{command}: {err}", file=sys.stderr)
        return 2
    finally:
        written = finish_outputs(args, succeeded)
    if written:
        print(f"wrote {', '.join(written)}")
    return 0

