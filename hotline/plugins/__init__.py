"""Classes Rasa loads by module path: the phone input channel (bot/credentials.yml) and the atomic
Redis lock store (the generated endpoints.yml). The NLU components are in hotline/nlu/."""
