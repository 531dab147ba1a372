import sys

from tinyml_exp.cli.report import main

sys.exit(main())
