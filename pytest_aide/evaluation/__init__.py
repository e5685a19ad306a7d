"""Evaluation: one candidate's tests run in a child pytest, and what guards that run.

The parent side (``evaluator``) starts the child (``worker``, a pytest plugin loaded with
``-p``) and reads back signed results; ``boundary``, ``integrity``, ``seal`` and ``speed`` keep
the candidate from touching what judges it. May import the shared data modules
(``study``, ``metrics``, ``journal``) and nothing above them (no search, run or session).
"""

#: Set in an evaluation's child process: the path of the worker's settings (worker.py). The
#: worker removes it, and every other ``PYTEST_AIDE_*`` variable, once it has read them.
WORKER_ENV = "PYTEST_AIDE_WORKER"
#: The worker plugin, loaded in the child with ``-p``.
WORKER_PLUGIN = "pytest_aide.evaluation.worker"
