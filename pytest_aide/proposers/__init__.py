"""Proposers: where candidates come from, behind ``propose(request) -> Proposal``.

``base`` is the interface; ``tune/`` the offline tuner; ``llm`` the provider-neutral LLM
proposer over one backend per SDK (``openai``, ``gemini``, ``anthropic``) with ``prompts``,
``replies`` and ``prices``; ``select`` picks one from the user's settings. Imports only the
journal; never evaluation or search.
"""
