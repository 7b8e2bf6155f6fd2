"""Command-line plumbing shared by the data-set generator tools (tools/make_synthetic_*.py).

Every failure is one ``<prog>: error: ...`` line on stderr and an exit status (never a
traceback or argparse's usage block), and main() returns that status rather than exiting, so
in-process callers get it too.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Callable, Dict, NoReturn, TypeVar

from .owned_dir import ForeignContentError
from .synthetic_coco import SyntheticParamError

# The end of each tool's --help epilog.
EXIT_STATUS_HELP = ('Exit status: 0 done; 1 the set exists with other parameters (pass '
                    '--force) or\nwriting failed; 2 invalid arguments or an --out that cannot '
                    'be used.')
FORCE_HELP = 'replace a set this tool generated with other parameters (never anything else)'

Config = TypeVar('Config')


class CliError(Exception):
    """A failure main() reports as one line, with the exit status it returns."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise CliError (status 2) instead of exiting."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        # argparse prints the whole usage block and exits; one line is enough and lets
        # main() return its status to an in-process caller.
        raise CliError(message, 2)


def validated_config(make: Callable[[], Config], args: argparse.Namespace) -> Config:
    """``make()``'s config, validated; a SyntheticParamError becomes a CliError (status 2)
    naming the command-line flags of the parameters (those without a flag by field name)."""
    try:
        cfg = make()
        cfg.validate()  # type: ignore[attr-defined]
    except SyntheticParamError as e:
        flags = '/'.join('--' + name.replace('_', '-') if name in vars(args) else name
                         for name in e.fields)
        raise CliError(f'argument {flags}: {e}', 2) from None
    return cfg


def write_set(out: str, generate: Callable[[], Dict]) -> Dict:
    """``generate()``'s summary; a refused --out or a failed write becomes a CliError."""
    try:
        return generate()
    except ForeignContentError as e:
        raise CliError(f'argument --out: {e}', 2) from None
    except FileExistsError as e:
        # A set with other parameters: --force would replace it.
        raise CliError(f'argument --out: {e}', 1) from None
    except OSError as e:
        # Permission denied, disk full, ...: the message names the path.
        raise CliError(f'could not write the set to {osp.abspath(out)}: {e}', 1) from None


def run_main(prog: str, body: Callable[[], int]) -> int:
    """``body()``'s exit status, or a CliError's after printing it as one line."""
    try:
        return body()
    except CliError as e:
        print(f'{prog}: error: {e}', file=sys.stderr)
        return e.status
