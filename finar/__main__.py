"""``python -m finar`` runs the ``finar`` command."""

from finar.cli import main

if __name__ == "__main__":
    main()
