"""Entry point for ``python synclet.py``."""
from synclet.cli import main

if __name__ == "__main__":
    main()
