"""`python -m minidl ...`: the same as the `minidl` command."""
import sys

from minidl.cli import main

sys.exit(main())
