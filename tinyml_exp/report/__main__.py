import sys

from tinyml_exp.report.cli import main

sys.exit(main())
