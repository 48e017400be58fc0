"""Known vulnerabilities from CSAF 2.0 advisories, matched against the inventory.

The modules are small and layered: :mod:`versions` (firmware versions and the ranges
advisories state), :mod:`normalise` (how vendors write names, order and catalog
numbers), :mod:`csaf` and :mod:`tree` (a document and its product tree, flattened),
:mod:`match` (product entries against an asset's identity claims), :mod:`importer`
and :mod:`sync` (documents into the store, from files or a provider), :mod:`vulns`
(the rows ``conduit vulns`` prints). Nothing here imports the store except the
importer, the sync client and :mod:`vulns`.
"""
