"""``python -m nnrecipe``: the command line (what torchrun starts in each process)."""

from .cli import main

main()
