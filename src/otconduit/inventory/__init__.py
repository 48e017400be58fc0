"""Asset inventory: who is on the network, what they are and how we know."""
