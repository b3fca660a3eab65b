"""Entry point of the frozen MedViewer application (PyInstaller runs this script).

``MEDVIEWER_BUNDLE_PROBE=1 MedViewer`` prints, as JSON, what the built folder
can load (component versions, codec plugins, execution providers, Qt
plugins) instead of starting the app; ``packaging/smoke_check.py`` uses it,
and so can support staff on a user's machine.
"""

import multiprocessing
import os
import sys

if __name__ == "__main__":
    # Large imports scan headers in worker processes (medviewer.services.parallel_scan); in a
    # frozen app a worker starts this executable again, and this hands it to multiprocessing.
    multiprocessing.freeze_support()
    if os.environ.get("MEDVIEWER_BUNDLE_PROBE"):
        from medviewer_bundle_probe import main as probe_main

        sys.exit(probe_main())
    from medviewer.launcher import main

    sys.exit(main())
