"""The project's own Rasa NLU components (referenced from bot/config.yml) and the text functions
they are built on, kept free of Rasa imports so benchmarks and tests can use them directly."""
