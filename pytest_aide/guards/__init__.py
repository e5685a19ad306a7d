"""Guards: what a child reports is true, and the project stays untouched.

The project snapshot and its undo (``boundary``), the static scan and runtime identity checks
(``integrity``), the state fingerprints (``fingerprint``), the parent's clock around each
benchmark (``clock``), the signed results and audit hook (``seal``), the cross-checks of a
child's reports (``verdict``), and reading and ending processes through /proc (``reaper``).
Guards check; they never run a candidate. May import the shared data modules (``study``,
``metrics``, ``journal``) and nothing else of the package: not ``evaluation`` (the runners),
``executors`` or anything above them.
"""
