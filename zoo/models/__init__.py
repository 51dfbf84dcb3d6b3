"""Model families. Importing this package registers every model (see zoo.registry)."""

from zoo.models import cnn, perceptron, recurrent  # noqa: F401
