"""The built-in offline tuner: ``tunables`` finds the module's numeric constants and keyword
arguments (and ``# aide:`` hints), ``proposer`` asks Optuna for values and writes them back.

Imports the proposer interface (``proposers.base``) and the journal; no LLM code.
"""
