import sys

from mnist_lite.cli import main

sys.exit(main())
