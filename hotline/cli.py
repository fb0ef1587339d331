"""The `hotline` command: the front door for operators, trainers and developers. Each command is a
module of hotline/commands/ (ARCHITECTURE.md, "How to add a command")."""
from __future__ import annotations

import argparse
import sys

from hotline.commands import (call, chat, cluster, evaluate, inbox, nlu, purge, run, seed, serve, setup, train,
                              voices)

COMMANDS = [run, setup, serve, cluster, train, seed, chat, evaluate, call, nlu, inbox, purge, voices]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description="Apple 400 hotline assistant")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
