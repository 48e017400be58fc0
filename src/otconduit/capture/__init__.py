"""Capture input: file readers, link/network/transport decoding and TCP reassembly."""
