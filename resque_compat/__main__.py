"""``python -m resque_compat``: the ``resque-compat`` command line."""

from resque_compat.cli import main

if __name__ == "__main__":
    main(prog_name="resque-compat")
