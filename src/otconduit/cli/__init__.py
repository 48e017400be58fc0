"""The `conduit` command line: a thin layer over the library."""
