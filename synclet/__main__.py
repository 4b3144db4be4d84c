"""``python -m synclet``."""
from synclet.cli import main

main()
