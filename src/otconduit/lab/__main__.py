"""``python -m otconduit.lab``: the same command as ``conduit lab``."""

from otconduit.lab.command import main

if __name__ == "__main__":
    main()
