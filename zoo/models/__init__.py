"""Model families. Importing this package registers every model (see zoo.registry)."""

from zoo.models import perceptron  # noqa: F401
