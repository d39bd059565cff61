"""`python -m minidl.cli`: the `minidl` command."""
import sys

from minidl.cli import main

sys.exit(main())
