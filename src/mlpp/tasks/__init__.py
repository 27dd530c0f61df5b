"""The course's data threads: each module owns the card, the split, the features and the
preprocessing that several notebooks share.

Import a thread by name, e.g. ``from mlpp.tasks import jets5``.
"""
