"""Start the QTS Observer: ``python observer.py --help`` documents everything."""

import sys

from qts_observer.cli import main

if __name__ == "__main__":
    sys.exit(main())
