"""The frozen app's entry point (PyInstaller runs this, not ``app.__main__``).

``freeze_support`` must come first: the ingest pool starts worker processes
by re-running this executable, and those must run the worker, not a second
window.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from app.__main__ import main

    sys.exit(main())
