"""One module per `hotline` command. Each has `register(subparsers)`, which adds the command's
parser and sets `func` (the function that runs it, returning the exit code); hotline/cli.py lists them."""
