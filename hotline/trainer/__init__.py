"""Training data, training, evaluation, reports, the retrain job and the inbox: what trainers use,
from the command line and from the gateway's trainer page (ARCHITECTURE.md)."""
