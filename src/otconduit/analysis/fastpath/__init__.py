"""The fast path: compiled lanes that carry the common case of each protocol's
connections, with the per-packet engine (:mod:`otconduit.analysis.engine`) as the
authority for everything else (see :mod:`.path`, :mod:`.lane`, :mod:`.kernels`)."""
