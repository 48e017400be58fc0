"""Analysis: packets → connections → protocol decoders → operations, assets, conversations."""
