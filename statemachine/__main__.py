import sys

from statemachine.cli.main import MODULE_PROG, main

sys.exit(main(prog=MODULE_PROG))
