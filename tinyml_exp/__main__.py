"""`python -m tinyml_exp`: the same app as `tinyml-exp` (tinyml_exp/cli/main.py)."""

from tinyml_exp.cli.main import main

if __name__ == "__main__":
    main()
