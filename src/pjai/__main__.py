"""``python -m pjai``: the PJai command line."""

from pjai.cli import main

main()
