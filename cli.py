"""`python cli.py ...` runs the `diffcode` command (diffcode/cli.py) from a checkout."""
from diffcode.cli import app, main  # noqa: F401  (tests and scripts use cli.app)

if __name__ == "__main__":
    main()
