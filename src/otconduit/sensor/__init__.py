"""The sensor: continuous capture and analysis (`conduit sense`)."""
