"""One lane per protocol the fast path carries: its kernel, and what the generic lane
needs to know of its decoder (eligibility, exported state, which fields are holes)."""
