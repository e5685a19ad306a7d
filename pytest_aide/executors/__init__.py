"""Executors: where evaluations run, one or several at once.

``base`` is the protocol the search and the confirmation see (``run_shared``: a slot next to
other evaluations; ``run_isolated``: alone, every slot drained, for timings); ``local`` runs
children on this machine in disjoint ``slots``; ``ray_driver`` sends them to a Ray cluster,
whose nodes run them through ``ray_node``. May import ``evaluation`` (which runs one
candidate), ``guards`` and the shared data modules; nothing above (no search, run or session).
"""
