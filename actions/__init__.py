"""Rasa SDK custom actions and the records service client they use.

Run with `python -m rasa_sdk --actions actions` (the `hotline run` launcher does this)."""
from actions.privacy import install_log_masking

install_log_masking()
