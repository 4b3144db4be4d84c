"""Entry point for ``python synclet.py``."""
from synclet.startup import main

if __name__ == "__main__":
    main()
