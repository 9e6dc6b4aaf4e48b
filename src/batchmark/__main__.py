"""``python -m batchmark`` is the ``batchmark`` command."""

from batchmark.cli import main

if __name__ == "__main__":
    main()
