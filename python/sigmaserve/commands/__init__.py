"""Everyday tasks as subcommands of ``sigmaserve`` (schedule, explain, sample)."""
