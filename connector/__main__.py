"""`python -m connector ARGS`: the `leadscore` command, for a checkout without the script on
PATH (a virtualenv not activated, another working tree on PYTHONPATH)."""

from connector.cli import main

if __name__ == "__main__":
    main()
