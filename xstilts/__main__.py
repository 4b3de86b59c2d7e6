"""`python -m xstilts` is the `xstilts` command (used by `accelerate launch -m xstilts ...`)."""

from xstilts.cli.main import main

main()
