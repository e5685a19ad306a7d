"""Search: AIDE's tree search over candidates, and how it decides that one is better.

``loop`` holds the policy (draft, debug, improve) and the step loop; ``judge``, ``objective``
and ``noise`` decide a node's verdict and whether a difference is real; ``confirm`` re-measures
the best against the baseline. May import ``proposers``, ``evaluation`` and the shared data
modules; nothing from ``run``, ``session`` or ``report``.
"""
