"""`python -m eventlog` runs the command line."""

from .cli import main

main()
