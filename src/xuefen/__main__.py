import sys

from xuefen.cli import main

sys.exit(main())
