"""Evaluation: one candidate's tests run in a child pytest, and what comes back.

The parent side (``evaluator``) launches the child (``worker``, a pytest plugin loaded with
``-p``), cold or forked from a warm interpreter (``warm``, ``zygote``), inside an OS sandbox
(``sandbox``), placed on a slot's cores (``placement``), and reads back signed results;
``plain`` is the final check's plain pytest; ``speed`` probes the machine's speed. What
keeps the candidate from lying lives in ``guards``. May import ``guards`` and the shared
data modules (``study``, ``metrics``, ``journal``); nothing above them (no executors,
search, run or session).
"""

#: Set in an evaluation's child process: the path of the worker's settings (worker.py). The
#: worker removes it, and every other ``PYTEST_AIDE_*`` variable, once it has read them.
WORKER_ENV = "PYTEST_AIDE_WORKER"
#: The worker plugin, loaded in the child with ``-p``.
WORKER_PLUGIN = "pytest_aide.evaluation.worker"
