"""``python -m btcmlops`` runs the CLI."""

from btcmlops.cli import main

main()
