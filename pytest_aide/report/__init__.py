"""What a person sees of a run: terminal lines, the summary, ``report.md``, ``tree.html``,
and the run directory's files (``artifacts``: run ids, the patch, the atomic write-back).

Everything here is a function of the journal (plus paths and code to diff), so a report can
be rebuilt from ``journal.json`` long after the run. Imports only the shared data modules.
"""
