"""``python -m synclet.bench``: how fast synclet backfills, how cheap an idle run is, how its memory
grows and how much it gains from parallel requests, against the generated sandbox store.

synclet runs as a child process, as cron runs it, so every wall time includes process start and
every peak RSS is that child's own. The figures and the targets they are checked against are
printed as a table and written as JSON; the README shows the last full run.
"""
