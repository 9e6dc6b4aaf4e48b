"""``python -m batchmark`` is the ``batchmark`` command."""

from batchmark._entry import main

if __name__ == "__main__":
    main()
