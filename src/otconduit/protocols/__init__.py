"""Sans-I/O industrial protocol decoders: bytes in, typed events out.

Each protocol package frames one TCP direction at a time and never touches sockets,
files or clocks; the capture layer feeds it and the analysis layer consumes its events.
"""
