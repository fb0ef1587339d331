"""Rasa SDK custom actions and the records service client they use.

Run by `python -m hotline.action_server` (the launcher and `hotline serve actions` do this), which
also installs the log masking (hotline/core/privacy.py): importing this package changes nothing."""
