import sys

from medviewer.launcher import main

sys.exit(main())
