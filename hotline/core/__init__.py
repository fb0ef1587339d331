"""The bottom layer: settings, privacy (masking) and text helpers. Imports nothing of the project
(ARCHITECTURE.md; tests/test_layers.py enforces it)."""
