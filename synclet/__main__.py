"""``python -m synclet``."""
from synclet.startup import main

main()
