"""Model families. Importing this package registers every model (see zoo.registry)."""

from zoo.models import cnn, perceptron  # noqa: F401
